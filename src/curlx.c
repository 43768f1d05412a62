/*
 * curlx.c - libcurl's multi interface on one thread; see curlx.h.
 *
 * One struct xfer per transfer: its easy handle, header lists, the error buffer and the
 * result being filled. Easy handles are kept in a small pool and reset for the next
 * transfer (cheaper than creating them); connections live in the multi handle's cache, so
 * they are reused whichever easy handle runs next. Nothing is shared with other threads
 * except the stop flag and curl_multi_wakeup (both thread-safe).
 */
#include "curlx.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"

#define POOL_MAX 8
/* The longest a connection attempt may take, whatever the transfer's own time-out. */
#define CONNECT_TIMEOUT_MS 10000

struct xfer {
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *postquote;
	const char *body;
	size_t len, pos;
	char errbuf[CURL_ERROR_SIZE];
	int khmatch; /* SFTP host key check: -1 not called, else enum curl_khmatch */
	struct curlx_result res;
	struct xfer *next;
};

struct curlx {
	struct curlx_hooks hooks;
	CURLM *multi;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	struct xfer *running; /* list */
	size_t nrunning;
	CURL *pool[POOL_MAX];
	size_t npool;
};

int curlx_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : MB_ERR_NOMEM;
}

void curlx_global_cleanup(void)
{
	curl_global_cleanup();
}

const char *curlx_version(void)
{
	return curl_version();
}

bool curlx_supports(const char *scheme)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	for (const char *const *p = v->protocols; p && *p; p++)
		if (!strcasecmp(*p, scheme))
			return true;
	return false;
}

char *curlx_escape(const char *text, size_t len)
{
	char *e = curl_easy_escape(NULL, text, (int)len);
	char *copy = e ? strdup(e) : NULL;
	curl_free(e);
	return copy;
}

int64_t curlx_retry_after_ms(const char *value, int64_t now_s)
{
	while (*value == ' ' || *value == '\t')
		value++;
	if (!*value)
		return -1;
	if (isdigit((unsigned char)*value)) {
		char *end;
		long long s = strtoll(value, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end || s < 0)
			return -1;
		if (s > 86400LL * 365)
			s = 86400LL * 365;
		return (int64_t)s * 1000;
	}
	time_t t = curl_getdate(value, NULL);
	if (t == (time_t)-1)
		return -1;
	return t > now_s ? ((int64_t)t - now_s) * 1000 : 0;
}

/* Callbacks of one transfer. */

static size_t read_body(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	size_t want = size * nitems, left = x->len - x->pos;
	size_t n = want < left ? want : left;
	memcpy(buf, x->body + x->pos, n);
	x->pos += n;
	return n;
}

static size_t keep_reply(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, room = sizeof(x->res.reply) - 1 - x->res.reply_len;
	size_t take = n < room ? n : room;
	memcpy(x->res.reply + x->res.reply_len, data, take);
	x->res.reply_len += take;
	x->res.reply[x->res.reply_len] = '\0';
	return n; /* the rest is read and dropped */
}

static size_t keep_header(char *data, size_t size, size_t nmemb, void *arg)
{
	static const char name[] = "retry-after:";
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (n > sizeof(name) && !strncasecmp(data, name, sizeof(name) - 1)) {
		char value[96];
		size_t len = n - (sizeof(name) - 1);
		if (len >= sizeof(value))
			len = sizeof(value) - 1;
		memcpy(value, data + sizeof(name) - 1, len);
		value[len] = '\0';
		x->res.retry_after_ms = curlx_retry_after_ms(value, (int64_t)time(NULL));
	} else if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
		x->res.retry_after_ms = -1; /* a new response (after a redirect or 100) */
	}
	return n;
}

static int check_host_key(CURL *easy, const struct curl_khkey *known,
			  const struct curl_khkey *found, enum curl_khmatch match, void *arg)
{
	(void)easy;
	(void)known;
	(void)found;
	struct xfer *x = arg;
	x->khmatch = (int)match;
	return match == CURLKHMATCH_OK ? CURLKHSTAT_FINE : CURLKHSTAT_REJECT;
}

static struct curl_slist *list_of(const char *const *items, size_t n, bool *nomem)
{
	struct curl_slist *list = NULL;
	for (size_t i = 0; i < n; i++) {
		struct curl_slist *grown = curl_slist_append(list, items[i]);
		if (!grown) {
			*nomem = true;
			return list;
		}
		list = grown;
	}
	return list;
}

static void xfer_free(struct curlx *cx, struct xfer *x)
{
	if (x->easy) {
		if (cx->npool < POOL_MAX) {
			curl_easy_reset(x->easy);
			cx->pool[cx->npool++] = x->easy;
		} else {
			curl_easy_cleanup(x->easy);
		}
	}
	curl_slist_free_all(x->headers);
	curl_slist_free_all(x->postquote);
	free(x);
}

#define SET(opt, val) \
	do { \
		if (curl_easy_setopt(e, opt, val) != CURLE_OK) \
			return MB_ERR_INVAL; \
	} while (0)

static int set_tls(CURL *e, const struct curlx_request *r)
{
	if (r->ca_file)
		SET(CURLOPT_CAINFO, r->ca_file);
	if (r->cert_file)
		SET(CURLOPT_SSLCERT, r->cert_file);
	if (r->key_file)
		SET(CURLOPT_SSLKEY, r->key_file);
	SET(CURLOPT_SSL_VERIFYPEER, r->insecure ? 0L : 1L);
	SET(CURLOPT_SSL_VERIFYHOST, r->insecure ? 0L : 2L);
	return 0;
}

static int set_options(struct xfer *x, const struct curlx_request *r)
{
	CURL *e = x->easy;
	bool nomem = false;

	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(r->timeout_ms < CONNECT_TIMEOUT_MS ? r->timeout_ms : CONNECT_TIMEOUT_MS));
	SET(CURLOPT_WRITEFUNCTION, keep_reply);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, keep_header);
	SET(CURLOPT_HEADERDATA, x);
	if (r->username)
		SET(CURLOPT_USERNAME, r->username);
	if (r->password)
		SET(CURLOPT_PASSWORD, r->password);
	if (set_tls(e, r) != 0)
		return MB_ERR_INVAL;

	switch (r->method) {
	case CURLX_POST:
	case CURLX_PUT:
		SET(CURLOPT_POSTFIELDS, r->body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
		if (r->method == CURLX_PUT)
			SET(CURLOPT_CUSTOMREQUEST, "PUT");
		break;
	case CURLX_GET: SET(CURLOPT_HTTPGET, 1L); break;
	case CURLX_UPLOAD:
		x->body = r->body;
		x->len = r->len;
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, read_body);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
		break;
	}
	if (r->method != CURLX_UPLOAD) {
		if (r->bearer) {
			SET(CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
			SET(CURLOPT_XOAUTH2_BEARER, r->bearer);
		} else if (r->username) {
			SET(CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		}
		x->headers = list_of(r->headers, r->nheaders, &nomem);
		/* No "Expect: 100-continue" round trip before large bodies. */
		struct curl_slist *grown = nomem ? NULL : curl_slist_append(x->headers, "Expect:");
		if (!grown)
			return MB_ERR_NOMEM;
		x->headers = grown;
		SET(CURLOPT_HTTPHEADER, x->headers);
	} else {
		if (r->ftp_tls)
			SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		if (r->ssh_key_file) {
			SET(CURLOPT_SSH_PRIVATE_KEYFILE, r->ssh_key_file);
			SET(CURLOPT_SSH_AUTH_TYPES,
			    (long)(CURLSSH_AUTH_PUBLICKEY |
				   (r->password ? CURLSSH_AUTH_PASSWORD : 0)));
		}
		if (!r->ssh_insecure && r->known_hosts) {
			SET(CURLOPT_SSH_KNOWNHOSTS, r->known_hosts);
			SET(CURLOPT_SSH_KEYFUNCTION, check_host_key);
			SET(CURLOPT_SSH_KEYDATA, x);
		}
		x->postquote = list_of(r->postquote, r->npostquote, &nomem);
		if (nomem)
			return MB_ERR_NOMEM;
		if (x->postquote)
			SET(CURLOPT_POSTQUOTE, x->postquote);
	}
	return 0;
}

#undef SET

int curlx_submit(struct curlx *cx, const struct curlx_request *req)
{
	if (!req->url || req->timeout_ms <= 0)
		return MB_ERR_INVAL;
	struct xfer *x = calloc(1, sizeof(*x));
	if (!x)
		return MB_ERR_NOMEM;
	x->khmatch = -1;
	x->res.user = req->user;
	x->res.retry_after_ms = -1;
	x->easy = cx->npool ? cx->pool[--cx->npool] : curl_easy_init();
	if (!x->easy) {
		free(x);
		return MB_ERR_NOMEM;
	}
	int rc = set_options(x, req);
	if (rc == 0 && curl_multi_add_handle(cx->multi, x->easy) != CURLM_OK)
		rc = MB_ERR_NOMEM;
	if (rc) {
		xfer_free(cx, x);
		return rc;
	}
	x->next = cx->running;
	cx->running = x;
	cx->nrunning++;
	return 0;
}

size_t curlx_running(const struct curlx *cx)
{
	return cx->nrunning;
}

static bool is_tls_error(CURLcode c)
{
	switch (c) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return true;
	default: return false;
	}
}

static void describe_failure(struct xfer *x, CURLcode c)
{
	const char *text = x->errbuf[0] ? x->errbuf : curl_easy_strerror(c);
	if (x->khmatch == CURLKHMATCH_MISSING)
		text = "the server's host key is not in known_hosts (add it, e.g. with "
		       "ssh-keyscan, after checking its fingerprint)";
	else if (x->khmatch == CURLKHMATCH_MISMATCH)
		text = "the server's host key does NOT match the one in known_hosts (a "
		       "different server, or its key changed)";
	snprintf(x->res.message, sizeof(x->res.message), "%s", text);
	size_t n = strlen(x->res.message);
	while (n && (x->res.message[n - 1] == '\n' || x->res.message[n - 1] == '\r'))
		x->res.message[--n] = '\0';
	x->res.error = is_tls_error(c) || x->khmatch > 0 ? MB_ERR_TLS : MB_ERR_IO;
}

static void finish(struct curlx *cx, CURL *easy, CURLcode code)
{
	struct xfer *x = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	curl_multi_remove_handle(cx->multi, easy);
	for (struct xfer **p = &cx->running; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			cx->nrunning--;
			break;
		}
	long status = 0;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	x->res.status = status;
	if (code != CURLE_OK)
		describe_failure(x, code);
	cx->hooks.done(cx->hooks.ctx, cx, &x->res);
	xfer_free(cx, x);
}

static void *loop(void *arg)
{
	struct curlx *cx = arg;
	while (!atomic_load(&cx->stop)) {
		int64_t wait_ms = cx->hooks.tick(cx->hooks.ctx, cx);
		int still = 0, left = 0;
		bool finished = false;
		curl_multi_perform(cx->multi, &still);
		CURLMsg *m;
		while ((m = curl_multi_info_read(cx->multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			finish(cx, m->easy_handle, m->data.result);
			finished = true;
		}
		if (finished || atomic_load(&cx->stop))
			continue;
		long curl_ms = -1;
		curl_multi_timeout(cx->multi, &curl_ms);
		if (curl_ms >= 0 && curl_ms < wait_ms)
			wait_ms = curl_ms;
		if (wait_ms > 1000)
			wait_ms = 1000;
		if (wait_ms < 0)
			wait_ms = 0;
		curl_multi_poll(cx->multi, NULL, 0, (int)wait_ms, NULL);
	}
	return NULL;
}

int curlx_new(const struct curlx_hooks *hooks, struct curlx **out)
{
	struct curlx *cx = calloc(1, sizeof(*cx));
	if (!cx)
		return MB_ERR_NOMEM;
	cx->hooks = *hooks;
	cx->multi = curl_multi_init();
	if (!cx->multi) {
		free(cx);
		return MB_ERR_NOMEM;
	}
	atomic_init(&cx->stop, false);
	*out = cx;
	return 0;
}

int curlx_start(struct curlx *cx)
{
	if (pthread_create(&cx->thread, NULL, loop, cx) != 0)
		return MB_ERR_NOMEM;
	cx->started = true;
	return 0;
}

void curlx_wake(struct curlx *cx)
{
	curl_multi_wakeup(cx->multi);
}

void curlx_stop(struct curlx *cx)
{
	if (!cx || !cx->started)
		return;
	atomic_store(&cx->stop, true);
	curl_multi_wakeup(cx->multi);
	pthread_join(cx->thread, NULL);
	cx->started = false;
	while (cx->running) {
		struct xfer *x = cx->running;
		cx->running = x->next;
		curl_multi_remove_handle(cx->multi, x->easy);
		xfer_free(cx, x);
	}
	cx->nrunning = 0;
}

void curlx_free(struct curlx *cx)
{
	if (!cx)
		return;
	curlx_stop(cx);
	while (cx->running) { /* submitted but never started */
		struct xfer *x = cx->running;
		cx->running = x->next;
		curl_multi_remove_handle(cx->multi, x->easy);
		xfer_free(cx, x);
	}
	for (size_t i = 0; i < cx->npool; i++)
		curl_easy_cleanup(cx->pool[i]);
	curl_multi_cleanup(cx->multi);
	free(cx);
}
