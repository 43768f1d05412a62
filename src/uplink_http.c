/*
 * uplink_http.c - messages as HTTP requests; see uplink_http.h.
 *
 * send() copies the message into a queue (the forwarder frees its buffer when send
 * returns) and wakes the curlx thread; tick() starts the head of the queue when no request
 * is running; done() reports it and, on failure, fails everything queued too. The queue is
 * the only thing shared with the forwarder thread (under the lock); the request running,
 * the episode and the log state belong to the curlx thread.
 */
#include "uplink_http.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "curlx.h"
#include "error.h"
#include "log.h"
#include "uplink_stats.h"

struct msg {
	int token;
	char *body; /* post/put */
	size_t len;
	size_t count;
	char *url; /* get: the URL with the message in its query */
	struct msg *next;
};

struct http_uplink {
	struct uplink up; /* first: the uplink handed out is this struct */
	const struct config *cfg;
	const struct http_config *h;
	struct uplink_stats *stats;
	struct curlx *cx;
	char **headers;
	size_t nheaders;
	char *bearer;
	char description[300];
	const struct uplink_events *ev;
	void *ctx;

	pthread_mutex_t lock; /* guards the queue and next_token */
	struct msg *head, **tail;
	int next_token;

	/* curlx thread only */
	struct msg *running;
	bool failing;
	char problem[320]; /* the current episode's kind, logged once */
	unsigned long long failed_attempts;
};

enum http_verdict uplink_http_classify(int error, long status)
{
	if (error != 0 || status == 0)
		return HTTP_RETRY;
	if (status >= 200 && status <= 299)
		return HTTP_DELIVERED;
	if (status == 408 || status == 429 || status >= 500)
		return HTTP_RETRY;
	return HTTP_REJECTED;
}

int uplink_http_pause_ms(enum http_verdict v, int64_t retry_after_ms)
{
	if (v == HTTP_REJECTED)
		return UPLINK_SLOWEST_RETRY_MS;
	if (retry_after_ms < 0)
		return 0;
	return retry_after_ms > UPLINK_RETRY_AFTER_MAX_MS ? UPLINK_RETRY_AFTER_MAX_MS
							  : (int)retry_after_ms;
}

static void msg_free(struct msg *m)
{
	if (!m)
		return;
	free(m->body);
	free(m->url);
	free(m);
}

/* The reply's first bytes, printable, for the log. */
static void printable(const char *in, size_t len, char *out, size_t outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[n++] = in[i];
		if (ch < 0x20 || ch >= 0x7f)
			out[n - 1] = ' ';
	}
	out[n] = '\0';
}

/* Fails every message: the one that ran and those queued behind it, oldest first. */
static void fail_all(struct http_uplink *u, struct msg *first, int pause_ms)
{
	pthread_mutex_lock(&u->lock);
	struct msg *rest = u->head;
	u->head = NULL;
	u->tail = &u->head;
	pthread_mutex_unlock(&u->lock);
	if (first) {
		first->next = rest;
		rest = first;
	}
	while (rest) {
		struct msg *next = rest->next;
		if (u->ev && u->ev->failed)
			u->ev->failed(u->ctx, rest->token, pause_ms);
		msg_free(rest);
		rest = next;
	}
}

/*
 * A server that refuses our client certificate under TLS 1.3 says so after the handshake,
 * and often only by closing: libcurl then reports a send or receive failure, not a TLS
 * error. With a client certificate configured, say what it probably means.
 */
static bool closed_after_tls(const struct http_uplink *u, const struct curlx_result *res)
{
	static const char *const signs[] = {"Broken pipe",    "reset by peer",        "getpeername",
					    "Send failure",   "Recv failure",         "Empty reply",
					    "unexpected eof", "certificate required", "unknown ca"};
	if (!u->h->tls || !u->h->cert_file)
		return false;
	for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++)
		if (strstr(res->message, signs[i]))
			return true;
	return false;
}

static void report_failure(struct http_uplink *u, enum http_verdict v,
			   const struct curlx_result *res)
{
	char why[400], kind[sizeof(((struct http_uplink *)0)->problem)], reply[96];

	if (res->error) {
		snprintf(kind, sizeof(kind), "%s", res->message);
		snprintf(why, sizeof(why), "%s%s", res->message,
			 closed_after_tls(u, res)
				 ? " (the server closed the TLS connection: does it "
				   "accept the client certificate in http.cert_file?)"
				 : "");
	} else {
		printable(res->reply, res->reply_len, reply, sizeof(reply));
		snprintf(kind, sizeof(kind), "HTTP %ld", res->status);
		snprintf(why, sizeof(why), "HTTP %ld%s%s%s", res->status, reply[0] ? " '" : "",
			 reply, reply[0] ? "'" : "");
	}
	u->failed_attempts++;
	uplink_stats_error(u->stats, v == HTTP_REJECTED, why);
	if (u->failing && !strcmp(u->problem, kind))
		return; /* the same episode: logged already */
	snprintf(u->problem, sizeof(u->problem), "%s", kind);
	u->failing = true;
	if (v == HTTP_REJECTED)
		log_error("http: %s refuses what we send: %s; the readings stay in the store and "
			  "are offered again every %d s until the server or the configuration is "
			  "fixed",
			  u->h->url, why, UPLINK_SLOWEST_RETRY_MS / 1000);
	else
		log_warn("http: %s: %s; the readings stay and are sent again with back-off%s",
			 u->h->url, why,
			 res->retry_after_ms >= 0 ? " (the server's Retry-After)" : "");
}

static void on_done(void *ctx, struct curlx *cx, const struct curlx_result *res)
{
	(void)cx;
	struct http_uplink *u = ctx;
	struct msg *m = u->running;
	u->running = NULL;
	if (!m)
		return;
	enum http_verdict v = uplink_http_classify(res->error, res->status);
	if (v == HTTP_DELIVERED) {
		if (u->failing)
			log_info("http: %s accepts readings again (HTTP %ld, after %llu failed "
				 "attempt(s))",
				 u->h->url, res->status, u->failed_attempts);
		u->failing = false;
		u->failed_attempts = 0;
		if (u->ev && u->ev->delivered)
			u->ev->delivered(u->ctx, m->token);
		msg_free(m);
		return;
	}
	report_failure(u, v, res);
	fail_all(u, m, uplink_http_pause_ms(v, res->retry_after_ms));
}

static int64_t on_tick(void *ctx, struct curlx *cx)
{
	struct http_uplink *u = ctx;
	uplink_stats_flush(u->stats);
	if (u->running)
		return 1000;
	pthread_mutex_lock(&u->lock);
	struct msg *m = u->head;
	if (m) {
		u->head = m->next;
		if (!u->head)
			u->tail = &u->head;
		m->next = NULL;
	}
	pthread_mutex_unlock(&u->lock);
	if (!m)
		return 1000;
	const struct http_config *h = u->h;
	struct curlx_request req = {
		.url = m->url ? m->url : h->url,
		.method = h->method == HTTP_GET   ? CURLX_GET
			  : h->method == HTTP_PUT ? CURLX_PUT
						  : CURLX_POST,
		.body = m->body,
		.len = m->len,
		.headers = (const char *const *)u->headers,
		.nheaders = u->nheaders,
		.username = h->username,
		.password = h->password,
		.bearer = u->bearer,
		.ca_file = h->ca_file,
		.cert_file = h->cert_file,
		.key_file = h->key_file,
		.insecure = h->allow_all_certificates,
		.timeout_ms = h->timeout_ms,
		.user = m,
	};
	u->running = m;
	int rc = curlx_submit(cx, &req);
	if (rc) {
		struct curlx_result res = {.error = rc, .retry_after_ms = -1};
		snprintf(res.message, sizeof(res.message), "cannot start a request: %s",
			 mb_strerror(rc));
		on_done(u, cx, &res);
	}
	return 0;
}

static void http_bind(void *impl, const struct uplink_events *ev, void *ctx)
{
	struct http_uplink *u = impl;
	u->ev = ev;
	u->ctx = ctx;
}

static int http_start(void *impl)
{
	struct http_uplink *u = impl;
	int rc = curlx_start(u->cx);
	if (rc)
		return rc;
	log_info("http: sending to %s (%s%s)", u->h->url,
		 u->h->method == HTTP_GET   ? "GET"
		 : u->h->method == HTTP_PUT ? "PUT"
					    : "POST",
		 !u->h->tls ? ", no TLS"
		 : u->h->allow_all_certificates
			 ? ", TLS WITHOUT certificate verification (allow_all_certificates)"
			 : ", TLS verified");
	/* Nothing to connect to in advance: requests say whether the server is there. */
	if (u->ev && u->ev->connected)
		u->ev->connected(u->ctx);
	return 0;
}

static int http_send(void *impl, const struct uplink_message *msg, int *token)
{
	struct http_uplink *u = impl;
	struct msg *m = calloc(1, sizeof(*m));
	if (!m)
		return MB_ERR_NOMEM;
	m->count = msg->count;
	if (u->h->method == HTTP_GET) {
		char *q = curlx_escape(msg->payload, msg->len);
		const char *param = u->h->query_parameter ? u->h->query_parameter : "data";
		size_t n = strlen(u->h->url) + strlen(param) + (q ? strlen(q) : 0) + 3;
		m->url = q ? malloc(n) : NULL;
		if (m->url)
			snprintf(m->url, n, "%s%c%s=%s", u->h->url,
				 strchr(u->h->url, '?') ? '&' : '?', param, q);
		free(q);
		if (!m->url) {
			free(m);
			return MB_ERR_NOMEM;
		}
	} else {
		m->body = malloc(msg->len + 1);
		if (!m->body) {
			free(m);
			return MB_ERR_NOMEM;
		}
		memcpy(m->body, msg->payload, msg->len);
		m->body[msg->len] = '\0';
		m->len = msg->len;
	}
	pthread_mutex_lock(&u->lock);
	u->next_token = u->next_token == INT_MAX ? 1 : u->next_token + 1;
	m->token = *token = u->next_token;
	*u->tail = m;
	u->tail = &m->next;
	pthread_mutex_unlock(&u->lock);
	curlx_wake(u->cx);
	return 0;
}

static void http_stop(void *impl)
{
	struct http_uplink *u = impl;
	curlx_stop(u->cx);
	/* No events after stop: what was queued or running simply stays in the store. */
	msg_free(u->running);
	u->running = NULL;
	pthread_mutex_lock(&u->lock);
	while (u->head) {
		struct msg *next = u->head->next;
		msg_free(u->head);
		u->head = next;
	}
	u->tail = &u->head;
	pthread_mutex_unlock(&u->lock);
}

static const struct uplink_ops http_ops = {
	.bind = http_bind,
	.start = http_start,
	.send = http_send,
	.stop = http_stop,
};

static bool has_header(const struct http_config *h, const char *name)
{
	for (size_t i = 0; i < h->header_count; i++)
		if (!strcasecmp(h->headers[i].name, name))
			return true;
	return false;
}

static int add_header(struct http_uplink *u, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);
	if (!line)
		return MB_ERR_NOMEM;
	/* "Name;" is how libcurl sends a header with an empty value. */
	if (*value)
		snprintf(line, n, "%s: %s", name, value);
	else
		snprintf(line, n, "%s;", name);
	u->headers[u->nheaders++] = line;
	return 0;
}

static int make_headers(struct http_uplink *u)
{
	const struct http_config *h = u->h;
	u->headers = calloc(h->header_count + 2, sizeof(char *));
	if (!u->headers)
		return MB_ERR_NOMEM;
	if (h->method != HTTP_GET && !has_header(h, "Content-Type") &&
	    add_header(u, "Content-Type", "application/json") != 0)
		return MB_ERR_NOMEM;
	if (!has_header(h, "User-Agent") &&
	    add_header(u, "User-Agent", "modbridge/" MODBRIDGE_VERSION) != 0)
		return MB_ERR_NOMEM;
	for (size_t i = 0; i < h->header_count; i++) {
		char *value = config_subst_imei(h->headers[i].value, u->cfg->imei);
		int rc = value ? add_header(u, h->headers[i].name, value) : MB_ERR_NOMEM;
		free(value);
		if (rc)
			return rc;
	}
	return 0;
}

int uplink_http_new(const struct config *cfg, struct uplink_stats *stats, struct uplink **out)
{
	struct http_uplink *u = calloc(1, sizeof(*u));
	if (!u)
		return MB_ERR_NOMEM;
	u->cfg = cfg;
	u->h = &cfg->http;
	u->stats = stats;
	u->tail = &u->head;
	pthread_mutex_init(&u->lock, NULL);
	struct curlx_hooks hooks = {.tick = on_tick, .done = on_done, .ctx = u};
	int rc = make_headers(u);
	if (rc == 0 && u->h->bearer_token &&
	    !(u->bearer = config_subst_imei(u->h->bearer_token, cfg->imei)))
		rc = MB_ERR_NOMEM;
	if (rc == 0)
		rc = curlx_new(&hooks, &u->cx);
	if (rc) {
		u->up.impl = u;
		uplink_http_free(&u->up);
		return rc;
	}
	snprintf(u->description, sizeof(u->description), "HTTP %s %s",
		 u->h->method == HTTP_GET   ? "GET"
		 : u->h->method == HTTP_PUT ? "PUT"
					    : "POST",
		 u->h->url);
	u->up = (struct uplink){
		.ops = &http_ops,
		.impl = u,
		.description = u->description,
		.keeps_unconfirmed = true, /* every message is reported delivered or failed */
	};
	*out = &u->up;
	return 0;
}

void uplink_http_free(struct uplink *up)
{
	if (!up)
		return;
	struct http_uplink *u = up->impl;
	if (u->cx) {
		http_stop(u);
		curlx_free(u->cx);
	}
	for (size_t i = 0; i < u->nheaders; i++)
		free(u->headers[i]);
	free(u->headers);
	free(u->bearer);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
