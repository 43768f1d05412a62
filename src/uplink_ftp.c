/*
 * uplink_ftp.c - messages into files on an FTP/FTPS/SFTP server; see uplink_ftp.h.
 *
 * The batch (ftpbatch.h) is shared with the forwarder thread under the lock; the file
 * being uploaded, the episode and the log state belong to the curlx thread. tick() cuts
 * the open file when its time has come and starts the next upload when none runs.
 */
#include "uplink_ftp.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "curlx.h"
#include "error.h"
#include "ftpbatch.h"
#include "ftpname.h"
#include "log.h"
#include "timeutil.h"
#include "uplink_stats.h"

struct ftp_uplink {
	struct uplink up; /* first: the uplink handed out is this struct */
	const struct config *cfg;
	const struct ftp_config *f;
	struct uplink_stats *stats;
	struct curlx *cx;
	char *base_url; /* the directory URL as libcurl takes it (ftps:// -> ftp:// + AUTH TLS) */
	char *dir_path; /* SFTP: the directory's path on the server, for the rename */
	const char *pattern;
	char description[400];
	const struct uplink_events *ev;
	void *ctx;

	pthread_mutex_t lock; /* guards the batch and next_token */
	struct ftpbatch batch;
	int next_token;

	/* curlx thread only */
	struct ftpfile *uploading;
	char name[FTPNAME_MAX], tmp[FTPNAME_MAX + 8];
	char *url;
	char *quote[2];
	bool failing;
	char problem[300];
	unsigned long long failed_attempts;
};

/* The strings of a NULL-terminated list, one after the other (malloc'd; NULL: no memory). */
static char *join(const char *const *parts)
{
	size_t n = 1;
	for (const char *const *p = parts; *p; p++)
		n += strlen(*p);
	char *out = malloc(n);
	if (!out)
		return NULL;
	size_t pos = 0;
	for (const char *const *p = parts; *p; p++) {
		size_t len = strlen(*p);
		memcpy(out + pos, *p, len);
		pos += len;
	}
	out[pos] = '\0';
	return out;
}

#define JOIN(...) join((const char *const[]){__VA_ARGS__, NULL})

static void free_upload(struct ftp_uplink *u)
{
	ftpfile_free(u->uploading);
	u->uploading = NULL;
	free(u->url);
	u->url = NULL;
	for (size_t i = 0; i < 2; i++) {
		free(u->quote[i]);
		u->quote[i] = NULL;
	}
}

static void fail_files(struct ftp_uplink *u, struct ftpfile *list)
{
	while (list) {
		struct ftpfile *next = list->next;
		for (size_t i = 0; i < list->ntokens; i++)
			if (u->ev && u->ev->failed)
				u->ev->failed(u->ctx, list->tokens[i], 0);
		ftpfile_free(list);
		list = next;
	}
}

static void upload_failed(struct ftp_uplink *u, const char *why)
{
	u->failed_attempts++;
	uplink_stats_error(u->stats, false, why);
	if (!u->failing || strcmp(u->problem, why) != 0) {
		snprintf(u->problem, sizeof(u->problem), "%s", why);
		log_warn("ftp: cannot upload %s to %s: %s; its readings stay in the store and are "
			 "sent again with back-off",
			 u->name, u->f->url, why);
	}
	u->failing = true;
	struct ftpfile *file = u->uploading;
	u->uploading = NULL;
	free_upload(u);
	pthread_mutex_lock(&u->lock);
	struct ftpfile *rest = ftpbatch_take_all(&u->batch);
	pthread_mutex_unlock(&u->lock);
	if (file) {
		file->next = rest;
		rest = file;
	}
	fail_files(u, rest);
}

static void on_done(void *ctx, struct curlx *cx, const struct curlx_result *res)
{
	(void)cx;
	struct ftp_uplink *u = ctx;
	struct ftpfile *file = u->uploading;
	if (!file)
		return;
	if (res->error) {
		char why[400];
		if (res->status)
			snprintf(why, sizeof(why), "%s (last reply %ld)", res->message,
				 res->status);
		else
			snprintf(why, sizeof(why), "%s", res->message);
		upload_failed(u, why);
		return;
	}
	if (u->failing)
		log_info("ftp: uploading to %s again (after %llu failed attempt(s))", u->f->url,
			 u->failed_attempts);
	u->failing = false;
	u->failed_attempts = 0;
	log_debug("ftp: %s uploaded (%zu reading(s), %zu bytes)", u->name, file->readings,
		  file->len);
	for (size_t i = 0; i < file->ntokens; i++)
		if (u->ev && u->ev->delivered)
			u->ev->delivered(u->ctx, file->tokens[i]);
	free_upload(u);
}

static int start_upload(struct ftp_uplink *u, struct curlx *cx)
{
	const struct ftp_config *f = u->f;
	struct ftpfile *file = u->uploading;
	if (ftpname_format(u->pattern, u->cfg->imei, u->cfg->logger.id, file->first_id,
			   file->first_ts_ms, u->name, sizeof(u->name)) != 0 ||
	    ftpname_temp(u->name, u->tmp, sizeof(u->tmp)) != 0)
		return MB_ERR_INVAL;
	char *esc = curlx_escape(u->tmp, strlen(u->tmp));
	u->url = esc ? JOIN(u->base_url, esc) : NULL;
	free(esc);
	if (f->protocol == FTP_SFTP) {
		/* SFTP servers (OpenSSH) do not rename over an existing file: remove it first
		 * ('*': a missing file is fine). It exists only when this is a re-upload. */
		u->quote[0] = JOIN("*rm ", u->dir_path, u->name);
		u->quote[1] = JOIN("rename ", u->dir_path, u->tmp, " ", u->dir_path, u->name);
	} else {
		u->quote[0] = JOIN("RNFR ", u->tmp);
		u->quote[1] = JOIN("RNTO ", u->name);
	}
	if (!u->url || !u->quote[0] || !u->quote[1])
		return MB_ERR_NOMEM;
	struct curlx_request req = {
		.url = u->url,
		.method = CURLX_UPLOAD,
		.body = file->body,
		.len = file->len,
		.username = f->username,
		.password = f->password,
		.ca_file = f->ca_file,
		.cert_file = f->protocol == FTP_TLS ? f->cert_file : NULL,
		.key_file = f->protocol == FTP_TLS ? f->key_file : NULL,
		.insecure = f->allow_all_certificates,
		.ftp_tls = f->protocol == FTP_TLS,
		.ssh_key_file = f->protocol == FTP_SFTP ? f->key_file : NULL,
		.known_hosts = f->known_hosts,
		.ssh_insecure = f->protocol == FTP_SFTP && f->allow_all_certificates,
		.postquote = (const char *const *)u->quote,
		.npostquote = 2,
		.timeout_ms = f->timeout_ms,
		.user = file,
	};
	return curlx_submit(cx, &req);
}

static int64_t on_tick(void *ctx, struct curlx *cx)
{
	struct ftp_uplink *u = ctx;
	int64_t now = time_now_ms();
	uplink_stats_flush(u->stats);
	pthread_mutex_lock(&u->lock);
	ftpbatch_tick(&u->batch, now);
	if (!u->uploading)
		u->uploading = ftpbatch_take(&u->batch);
	int64_t cut = ftpbatch_next_cut(&u->batch);
	bool fresh = u->uploading && !u->url;
	pthread_mutex_unlock(&u->lock);
	if (fresh) {
		int rc = start_upload(u, cx);
		if (rc) {
			char why[120];
			snprintf(why, sizeof(why), "cannot start the upload: %s", mb_strerror(rc));
			upload_failed(u, why);
		}
	}
	return cut > now ? cut - now : 1000;
}

static void ftp_bind(void *impl, const struct uplink_events *ev, void *ctx)
{
	struct ftp_uplink *u = impl;
	u->ev = ev;
	u->ctx = ctx;
}

static int ftp_start(void *impl)
{
	struct ftp_uplink *u = impl;
	int rc = curlx_start(u->cx);
	if (rc)
		return rc;
	log_info("ftp: %s", u->description);
	if (u->ev && u->ev->connected)
		u->ev->connected(u->ctx);
	return 0;
}

static int ftp_send(void *impl, const struct uplink_message *msg, int *token)
{
	struct ftp_uplink *u = impl;
	pthread_mutex_lock(&u->lock);
	int t = u->next_token == INT_MAX ? 1 : u->next_token + 1;
	int rc = ftpbatch_add(&u->batch, msg->payload, msg->len, msg->count, msg->first_id,
			      msg->first_ts_ms, t, time_now_ms());
	bool ready = u->batch.ready != NULL;
	if (rc == 0)
		u->next_token = *token = t;
	pthread_mutex_unlock(&u->lock);
	if (ready)
		curlx_wake(u->cx);
	return rc;
}

static void ftp_stop(void *impl)
{
	struct ftp_uplink *u = impl;
	curlx_stop(u->cx);
	/* No events after stop: the readings of unfinished files stay in the store. */
	free_upload(u);
	pthread_mutex_lock(&u->lock);
	ftpbatch_clear(&u->batch);
	pthread_mutex_unlock(&u->lock);
}

static const struct uplink_ops ftp_ops = {
	.bind = ftp_bind,
	.start = ftp_start,
	.send = ftp_send,
	.stop = ftp_stop,
};

/* ftps:// is explicit TLS for us (AUTH TLS on the FTP port), but implicit TLS (port 990)
 * for libcurl: give libcurl ftp:// and require TLS instead. */
static int split_url(struct ftp_uplink *u)
{
	const char *url = u->f->url;
	const char *rest = strstr(url, "://") + 3;
	u->base_url = u->f->protocol == FTP_TLS ? JOIN("ftp://", rest) : strdup(url);
	const char *path = strchr(rest, '/');
	u->dir_path = strdup(path ? path : "/");
	return u->base_url && u->dir_path ? 0 : MB_ERR_NOMEM;
}

int uplink_ftp_new(const struct config *cfg, bool array_messages, struct uplink_stats *stats,
		   struct uplink **out)
{
	struct ftp_uplink *u = calloc(1, sizeof(*u));
	if (!u)
		return MB_ERR_NOMEM;
	u->cfg = cfg;
	u->f = &cfg->ftp;
	u->stats = stats;
	u->pattern = u->f->file_name ? u->f->file_name : FTPNAME_DEFAULT;
	pthread_mutex_init(&u->lock, NULL);
	struct ftpbatch_options bo = {
		.max_readings = u->f->max_readings,
		.interval_ms = u->f->interval_ms,
		.format = u->f->format,
		.array_messages = array_messages,
	};
	ftpbatch_init(&u->batch, &bo);
	struct curlx_hooks hooks = {.tick = on_tick, .done = on_done, .ctx = u};
	int rc = split_url(u);
	if (rc == 0)
		rc = curlx_new(&hooks, &u->cx);
	u->up.impl = u;
	if (rc) {
		uplink_ftp_free(&u->up);
		return rc;
	}
	const char *tls = u->f->protocol == FTP_PLAIN ? "no TLS"
			  : u->f->protocol == FTP_SFTP
				  ? (u->f->allow_all_certificates
					     ? "SSH, host key NOT checked (allow_all_certificates)"
					     : "SSH, host key checked")
			  : u->f->allow_all_certificates
				  ? "TLS WITHOUT certificate verification (allow_all_certificates)"
				  : "TLS verified";
	snprintf(u->description, sizeof(u->description),
		 "files in %s (%s, %s; cut every %lld s or at %d readings)", u->f->url,
		 u->f->format == FTP_ARRAY ? "JSON array" : "JSON lines", tls,
		 (long long)(u->f->interval_ms / 1000), u->f->max_readings);
	u->up = (struct uplink){
		.ops = &ftp_ops,
		.impl = u,
		.description = u->description,
		.keeps_unconfirmed = true, /* every message is reported delivered or failed */
	};
	*out = &u->up;
	return 0;
}

void uplink_ftp_free(struct uplink *up)
{
	if (!up)
		return;
	struct ftp_uplink *u = up->impl;
	if (u->cx) {
		ftp_stop(u);
		curlx_free(u->cx);
	}
	ftpbatch_clear(&u->batch);
	free_upload(u);
	free(u->base_url);
	free(u->dir_path);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
