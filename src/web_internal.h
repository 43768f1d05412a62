/*
 * web_internal.h - what the web UI's files share, and nothing else includes.
 *
 *   web.c          the public API (web.h), routing, pages and assets, entering the env
 *   web_session.c  logins, sessions, CSRF tokens, slow-down and lock-out of failed logins
 *   web_config.c   the configuration as JSON for the forms; changes -> file, checked, saved
 *   web_api.c      /api/status, /api/log, /api/at, /api/test, /api/plan
 *   web_certs.c    /api/certs: uploads checked and stored under cert_dir, listed, deleted
 *   web_json.c     the JSON writer (web_json.h)
 *
 * Threading: handlers run on the HTTP server's connection threads, several at once. The
 * env (the running parts) is used only between web_enter and web_leave; sessions have
 * their own lock; op_lock serializes what writes (configuration saves, certificate files,
 * console commands), so two saves never interleave their read-modify-write of the file.
 */
#ifndef MODBRIDGE_WEB_INTERNAL_H
#define MODBRIDGE_WEB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "httpd.h"
#include "httpform.h"
#include "web_assets.h"
#include "web.h"
#include "web_json.h"

#define WEB_SESSIONS_MAX 32
#define WEB_FAILURES_MAX 64
#define WEB_ID_HEX 64 /* session ids and CSRF tokens: 32 random bytes in hex */
#define WEB_USER_MAX 64
/* Failed logins: each one waits WEB_SLOW_MS more (up to WEB_SLOW_MAX_MS); after
 * WEB_LOCK_AFTER within WEB_LOCK_S, the user name and the address are locked WEB_LOCK_S. */
#define WEB_SLOW_MS 250
#define WEB_SLOW_MAX_MS 2000
#define WEB_LOCK_AFTER 5
#define WEB_LOCK_S 300
/* Request bodies: certificates are a few KB; a configuration form far less. */
#define WEB_MAX_BODY ((size_t)256 * 1024)
#define WEB_MAX_UPLOAD ((size_t)64 * 1024)

struct web_session {
	bool used;
	char id[WEB_ID_HEX + 1];
	char csrf[WEB_ID_HEX + 1];
	char user[WEB_USER_MAX + 1];
	int64_t last_ms; /* monotonic: the idle time-out */
};

struct web_failure {
	bool used;
	char key[96]; /* "user:NAME" or "addr:ADDRESS" */
	int count;
	int64_t first_ms, locked_until_ms; /* monotonic */
};

struct web_sessions {
	pthread_mutex_t lock;
	struct web_session s[WEB_SESSIONS_MAX];
	struct web_failure f[WEB_FAILURES_MAX];
	int idle_s;
};

struct web_last {
	char *id;
	int64_t ts_ms;
	char *json; /* last good reading */
	int64_t err_ts_ms;
	char *err_json; /* last ERR reading */
};

struct web {
	pthread_mutex_t lock; /* env, attached, users_in, the server's settings */
	pthread_cond_t cond;
	struct web_env env;
	bool attached;
	bool closing; /* web_free: nothing waits for an attach any more */
	int users_in;
	struct httpd *httpd;
	char *host, *tls_cert, *tls_key; /* what the running server was started with */
	int port;
	struct web_sessions sessions;
	pthread_mutex_t op_lock; /* config saves, certificate files, console commands */
	pthread_mutex_t last_lock;
	struct web_last *last;
	size_t last_count;
};

/* One request as the handlers see it: the parsed form and the session (when logged in). */
struct web_req {
	struct web *w;
	const struct httpd_request *http;
	struct httpd_response *resp;
	struct httpform form;
	char user[WEB_USER_MAX + 1]; /* "" without a session */
	const struct web_env *env;   /* set between web_enter and web_leave */
};

/* ---------------------------------------------------------------- web.c */

/* Answers with JSON text (taken over; NULL: out of memory). */
void web_reply_json(struct web_req *r, int status, char *json, size_t len);
/* Answers {"ok":false,"error":msg} with status. */
void web_reply_error(struct web_req *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* One audit line: "web: user 'u' from ADDR: what". */
void web_audit(const struct web_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- web_session.c */

void web_sessions_init(struct web_sessions *ws, int idle_s);
void web_sessions_destroy(struct web_sessions *ws);
/* Ends the sessions of users not in cfg (on attach). */
void web_sessions_prune(struct web_sessions *ws, const struct web_config *cfg);
/* The session of the request's cookie: true with the user and CSRF token copied. */
bool web_session_get(struct web_sessions *ws, const struct httpd_request *req, char *user,
		     char *csrf);
/* POST /login and POST /logout. */
void web_handle_login(struct web_req *r, const struct web_config *cfg);
void web_handle_logout(struct web_req *r);
/* GET /api/session: the user and the CSRF token the page needs for changes. */
void web_handle_session(struct web_req *r);
/* Random bytes as hex into out (2 * n + 1 bytes). Returns 0 or MB_ERR_IO. */
int web_random_hex(char *out, size_t n);

/* ---------------------------------------------------------------- web_config.c */

/* GET /api/config: the file's configuration for the forms (secrets only as "set"). */
void web_handle_config_get(struct web_req *r);
/* POST /api/config: apply the form's changes, check, save with a backup, restart. */
void web_handle_config_post(struct web_req *r);
/* A hash of the file's text (its version for the forms), 16 hex digits into out[17]. */
void web_text_version(const char *text, size_t len, char *out);
/* web_config_view.c: cfg's sections as the forms show them, members of the open object j;
 * text/len is the file's text (file keys shown as the file spells them). */
void web_config_json(struct web_json *j, const struct config *cfg, const char *text, size_t len);

/*
 * The file with the form's changes applied and checked, staged next to it: *cfg is the
 * loaded result (the caller frees both). On failure the reply has been sent (errors next
 * to their keys). for_save: also checks the version and reports a stale form (409).
 */
int web_config_stage(struct web_req *r, bool for_save, char **staged, struct config **cfg,
		     char **text_out, size_t *len_out);

/*
 * Saves text over the configuration file (with the previous one kept as FILE.bak), after
 * checking it with the loader. On failure the reply has been sent. Called with op_lock.
 */
int web_config_commit_text(struct web_req *r, const char *text, size_t len, const char *what);

/* ---------------------------------------------------------------- web_api.c */

void web_handle_status(struct web_req *r);
void web_handle_log(struct web_req *r);
void web_handle_at(struct web_req *r);
void web_handle_test(struct web_req *r);
void web_handle_plan(struct web_req *r);

/* ---------------------------------------------------------------- web_certs.c */

void web_handle_certs_get(struct web_req *r);
void web_handle_certs_post(struct web_req *r);
void web_handle_certs_delete(struct web_req *r);

#endif
