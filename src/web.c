/*
 * web.c - the web UI's public API, routing and pages; see web.h and web_internal.h.
 *
 * Every request is routed here. Public: the login form and the static script and style
 * files (they hold no data). Everything else needs a session: a page without one redirects
 * to /login, an /api/ path answers 401; a change (POST) also needs the session's CSRF
 * token, or it answers 403 before anything is read. The pages are static HTML served from
 * memory; their data comes from the API, so no page embeds anything of the configuration.
 */
#include "web.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "timeutil.h"
#include "web_internal.h"

/* How long a request waits for the gateway to come back from a restart. */
#define ENTER_WAIT_MS 15000

static const char *const pages[] = {"status", "serial", "devices", "logger",
				    "mqtt",   "certs",  "console", "log"};

static const char *mime_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	return "application/octet-stream";
}

static const struct web_asset *asset(const char *name)
{
	for (const struct web_asset *a = web_assets; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

static void serve_asset(struct web_req *r, const struct web_asset *a, bool cacheable)
{
	httpd_respond_static(r->resp, 200, mime_of(a->name), (const char *)a->data, a->len);
	httpd_add_header(r->resp, "Cache-Control", "%s", cacheable ? "max-age=300" : "no-store");
}

void web_reply_json(struct web_req *r, int status, char *json, size_t len)
{
	httpd_respond_owned(r->resp, status, "application/json", json, len);
	httpd_add_header(r->resp, "Cache-Control", "no-store");
}

void web_reply_error(struct web_req *r, int status, const char *fmt, ...)
{
	struct web_json j = {0};
	char msg[1024];
	va_list ap;
	size_t len = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	web_json_obj(&j);
	web_json_kbool(&j, "ok", false);
	web_json_kstr(&j, "error", msg);
	web_json_obj_end(&j);
	char *text = web_json_finish(&j, &len);
	web_reply_json(r, status, text, len);
}

void web_audit(const struct web_req *r, const char *fmt, ...)
{
	char what[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_info("web: user '%s' from %s: %s", r->user[0] ? r->user : "-", r->http->client, what);
}

static void redirect(struct web_req *r, const char *to)
{
	static const char body[] = "see other\n";

	httpd_respond_static(r->resp, 303, "text/plain; charset=utf-8", body, sizeof(body) - 1);
	httpd_add_header(r->resp, "Location", "%s", to);
	httpd_add_header(r->resp, "Cache-Control", "no-store");
}

static bool web_enter(struct web_req *r)
{
	struct web *w = r->w;
	int64_t deadline = time_mono_ms() + ENTER_WAIT_MS;
	bool ok;

	pthread_mutex_lock(&w->lock);
	while (!w->attached && !w->closing) {
		int64_t left = deadline - time_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		time_mono_deadline(left > 1000 ? 1000 : left, &ts);
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	}
	ok = w->attached;
	if (ok) {
		w->users_in++;
		r->env = &w->env;
	}
	pthread_mutex_unlock(&w->lock);
	return ok;
}

static void web_leave(struct web_req *r)
{
	struct web *w = r->w;

	if (!r->env)
		return;
	pthread_mutex_lock(&w->lock);
	if (--w->users_in == 0)
		pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	r->env = NULL;
}

/* The API's routes, behind the session (and, for changes, the CSRF token). */
static void route_api(struct web_req *r, const char *path, bool post)
{
	static const struct {
		const char *path;
		bool post;
		void (*fn)(struct web_req *r);
	} routes[] = {
		{"/api/session", false, web_handle_session},
		{"/api/status", false, web_handle_status},
		{"/api/log", false, web_handle_log},
		{"/api/config", false, web_handle_config_get},
		{"/api/config", true, web_handle_config_post},
		{"/api/plan", false, web_handle_plan},
		{"/api/test", true, web_handle_test},
		{"/api/at", true, web_handle_at},
		{"/api/certs", false, web_handle_certs_get},
		{"/api/certs", true, web_handle_certs_post},
		{"/api/certs/delete", true, web_handle_certs_delete},
	};
	bool known = false;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		known = true;
		if (routes[i].post != post)
			continue;
		routes[i].fn(r);
		return;
	}
	if (known)
		web_reply_error(r, 405, "method not allowed");
	else
		web_reply_error(r, 404, "no such API path: %.100s", path);
}

static void parse_body(struct web_req *r, bool *ok)
{
	char why[256];
	int rc = httpform_parse(r->http->content_type, r->http->body, r->http->body_len, &r->form,
				why, sizeof(why));

	*ok = rc == 0;
	if (rc == MB_ERR_NOMEM)
		r->resp->nomem = true;
	else if (rc)
		web_reply_error(r, 400, "malformed request body: %s", why);
}

static void handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct web_req r = {.w = ctx, .http = req, .resp = resp};
	const char *path = req->path;
	bool post = !strcmp(req->method, "POST");
	bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
	char csrf[WEB_ID_HEX + 1] = "";
	bool ok = true;
	const struct web_asset *a;

	if (!post && !get) {
		web_reply_error(&r, 405, "method not allowed");
		return;
	}
	/* Static scripts and styles: public, they hold no data. */
	if (get && path[0] == '/' && !strchr(path + 1, '/') && (a = asset(path + 1)) != NULL &&
	    !strstr(a->name, ".html")) {
		serve_asset(&r, a, true);
		return;
	}
	bool logged_in = web_session_get(&r.w->sessions, req, r.user, csrf);
	bool api = !strncmp(path, "/api/", 5) || !strcmp(path, "/api");

	if (!strcmp(path, "/login")) {
		if (get) {
			serve_asset(&r, asset("login.html"), false);
			return;
		}
		parse_body(&r, &ok);
		if (ok && web_enter(&r)) {
			web_handle_login(&r, &r.env->cfg->web);
			web_leave(&r);
		} else if (ok) {
			web_reply_error(&r, 503, "the gateway is restarting; try again");
		}
		httpform_free(&r.form);
		return;
	}
	if (!logged_in) {
		if (api)
			web_reply_error(&r, 401,
					"log in first (POST /login with user and password)");
		else
			redirect(&r, "/login");
		return;
	}
	if (post) {
		parse_body(&r, &ok);
		if (!ok) {
			httpform_free(&r.form);
			return;
		}
		/* The token arrives in a header (fetch) or a form field (a plain form). */
		const char *sent = httpd_header(req, "X-CSRF-Token");
		if (!sent)
			sent = httpform_get(&r.form, "csrf");
		size_t n = strlen(csrf);
		unsigned char diff = (unsigned char)(!sent || strlen(sent) != n);
		for (size_t i = 0; sent && i < n && sent[i]; i++)
			diff |= (unsigned char)(sent[i] ^ csrf[i]);
		if (diff) {
			log_warn("web: user '%s' from %s: %s %s refused: no valid CSRF token",
				 r.user, req->client, req->method, path);
			web_reply_error(
				&r, 403,
				"refused: the request does not carry this session's CSRF token (reload the page)");
			httpform_free(&r.form);
			return;
		}
	}
	if (!strcmp(path, "/logout") && post) {
		web_handle_logout(&r);
	} else if (api) {
		if (web_enter(&r)) {
			route_api(&r, path, post);
			web_leave(&r);
		} else {
			web_reply_error(&r, 503, "the gateway is restarting; try again");
		}
	} else if (get && !strcmp(path, "/")) {
		redirect(&r, "/status");
	} else {
		const struct web_asset *page = NULL;
		char name[32];

		for (size_t i = 0; get && i < sizeof(pages) / sizeof(pages[0]); i++) {
			if (!strcmp(path + 1, pages[i])) {
				snprintf(name, sizeof(name), "%s.html", pages[i]);
				page = asset(name);
			}
		}
		if (page)
			serve_asset(&r, page, false);
		else
			web_reply_error(&r, 404, "no such page");
	}
	httpform_free(&r.form);
}

int web_new(struct web **out)
{
	struct web *w = calloc(1, sizeof(*w));

	if (!w)
		return MB_ERR_NOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&w->op_lock, NULL);
	pthread_mutex_init(&w->last_lock, NULL);
	web_sessions_init(&w->sessions, 1800);
	*out = w;
	return 0;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Forgets the readings of devices that are no longer configured. */
static void prune_last(struct web *w, const struct config *cfg)
{
	pthread_mutex_lock(&w->last_lock);
	size_t keep = 0;
	for (size_t i = 0; i < w->last_count; i++) {
		if (config_find_device(cfg, w->last[i].id)) {
			w->last[keep++] = w->last[i];
			continue;
		}
		free(w->last[i].id);
		free(w->last[i].json);
		free(w->last[i].err_json);
	}
	w->last_count = keep;
	pthread_mutex_unlock(&w->last_lock);
}

int web_attach(struct web *w, const struct web_env *env)
{
	const struct web_config *wc = &env->cfg->web;
	struct httpd *old = NULL;
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	w->env = *env;
	w->attached = true;
	bool restart = !w->httpd || !same(w->host, wc->host) || w->port != wc->port ||
		       !same(w->tls_cert, wc->tls_cert_file) || !same(w->tls_key, wc->tls_key_file);
	if (restart) {
		old = w->httpd;
		w->httpd = NULL;
	}
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);

	pthread_mutex_lock(&w->sessions.lock);
	w->sessions.idle_s = wc->session_timeout_s;
	pthread_mutex_unlock(&w->sessions.lock);
	web_sessions_prune(&w->sessions, wc);
	prune_last(w, env->cfg);
	if (!restart)
		return 0;

	/* The old server's requests finish with the new parts; then it goes. */
	httpd_stop(old);
	struct httpd_options o = {
		.name = "web",
		.host = wc->host,
		.port = wc->port,
		.tls_cert_file = wc->tls_cert_file,
		.tls_key_file = wc->tls_key_file,
		.max_body = WEB_MAX_BODY,
		.max_connections = 16,
		.idle_timeout_s = 60,
		.handler = handle,
		.ctx = w,
	};
	struct httpd *h = NULL;
	rc = httpd_start(&o, &h);
	pthread_mutex_lock(&w->lock);
	free(w->host);
	free(w->tls_cert);
	free(w->tls_key);
	w->host = w->tls_cert = w->tls_key = NULL;
	w->port = 0;
	if (rc == 0) {
		w->httpd = h;
		w->host = strdup(wc->host);
		w->port = wc->port;
		w->tls_cert = wc->tls_cert_file ? strdup(wc->tls_cert_file) : NULL;
		w->tls_key = wc->tls_key_file ? strdup(wc->tls_key_file) : NULL;
	}
	pthread_mutex_unlock(&w->lock);
	if (rc == 0 && !wc->loopback && !wc->tls_cert_file)
		log_warn(
			"web: listening beyond this gateway without TLS: passwords and session cookies cross the network in clear");
	return rc;
}

void web_detach(struct web *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->attached = false;
	while (w->users_in > 0)
		pthread_cond_wait(&w->cond, &w->lock);
	memset(&w->env, 0, sizeof(w->env));
	pthread_mutex_unlock(&w->lock);
}

void web_note_reading(struct web *w, const char *device_id, int64_t ts_ms, const char *json,
		      bool error)
{
	if (!w || !device_id || !json)
		return;
	char *copy = strdup(json);
	if (!copy)
		return; /* only the status page misses it */
	pthread_mutex_lock(&w->last_lock);
	struct web_last *l = NULL;
	for (size_t i = 0; i < w->last_count && !l; i++)
		if (!strcmp(w->last[i].id, device_id))
			l = &w->last[i];
	if (!l) {
		struct web_last *grown = realloc(w->last, (w->last_count + 1) * sizeof(*grown));
		char *id = strdup(device_id);
		if (grown)
			w->last = grown;
		if (!grown || !id) {
			pthread_mutex_unlock(&w->last_lock);
			free(id);
			free(copy);
			return;
		}
		l = &w->last[w->last_count++];
		*l = (struct web_last){.id = id};
	}
	if (error) {
		free(l->err_json);
		l->err_json = copy;
		l->err_ts_ms = ts_ms;
	} else {
		free(l->json);
		l->json = copy;
		l->ts_ms = ts_ms;
	}
	pthread_mutex_unlock(&w->last_lock);
}

int web_port(const struct web *w)
{
	return w ? httpd_port(w->httpd) : 0;
}

void web_free(struct web *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->closing = true; /* requests waiting for an attach give up now */
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	httpd_stop(w->httpd);
	web_sessions_destroy(&w->sessions);
	for (size_t i = 0; i < w->last_count; i++) {
		free(w->last[i].id);
		free(w->last[i].json);
		free(w->last[i].err_json);
	}
	free(w->last);
	free(w->host);
	free(w->tls_cert);
	free(w->tls_key);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->op_lock);
	pthread_mutex_destroy(&w->last_lock);
	free(w);
}
