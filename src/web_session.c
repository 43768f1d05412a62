/*
 * web_session.c - logins and sessions of the web UI; see web_internal.h.
 *
 * A session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie (Secure under
 * HTTPS), ended by logout, by WEB idle time-out (web.session_timeout) or when its user is
 * removed from the file. Every login makes a new id and ends the session the browser came
 * with (no fixation). Each session has its own CSRF token, which the pages fetch from
 * /api/session and send with every change.
 *
 * Failed logins: each failure of a user name or an address makes the next answer slower,
 * and WEB_LOCK_AFTER failures within WEB_LOCK_S lock both for WEB_LOCK_S: a locked login
 * is refused (429) without the password being checked. An unknown user name costs the same
 * hash as a known one. The tables are bounded; the oldest entry is reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "passwd.h"
#include "timeutil.h"
#include "web_internal.h"

#define COOKIE "mb_session"

/* A yescrypt hash of a password nobody knows: unknown users cost as much as known ones. */
static const char dummy_hash[] =
	"$y$j9T$HzyF6fUyTpwPp5H2OQ/6e/$Glt/9F80DGDzZLlPgYNKaL/fhhK79bf7yqzMbgDE6yB";

int web_random_hex(char *out, size_t n)
{
	unsigned char b[64];
	size_t got = 0;

	if (n > sizeof(b))
		return MB_ERR_INVAL;
	while (got < n) {
		ssize_t r = getrandom(b + got, n - got, 0);
		if (r <= 0)
			return MB_ERR_IO;
		got += (size_t)r;
	}
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	explicit_bzero(b, sizeof(b));
	return 0;
}

void web_sessions_init(struct web_sessions *ws, int idle_s)
{
	memset(ws, 0, sizeof(*ws));
	pthread_mutex_init(&ws->lock, NULL);
	ws->idle_s = idle_s;
}

void web_sessions_destroy(struct web_sessions *ws)
{
	explicit_bzero(ws->s, sizeof(ws->s));
	pthread_mutex_destroy(&ws->lock);
}

static bool user_configured(const struct web_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->user_count; i++)
		if (!strcmp(cfg->users[i].name, name))
			return true;
	return false;
}

void web_sessions_prune(struct web_sessions *ws, const struct web_config *cfg)
{
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		if (ws->s[i].used && !user_configured(cfg, ws->s[i].user)) {
			log_info("web: session of user '%s' ended: the user is no longer configured",
				 ws->s[i].user);
			memset(&ws->s[i], 0, sizeof(ws->s[i]));
		}
	}
	pthread_mutex_unlock(&ws->lock);
}

/* Constant-time equality of two ids of WEB_ID_HEX characters. */
static bool id_equal(const char *a, const char *b)
{
	unsigned char diff = 0;

	if (strlen(a) != WEB_ID_HEX || strlen(b) != WEB_ID_HEX)
		return false;
	for (size_t i = 0; i < WEB_ID_HEX; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* With the lock held: the live session of id, or NULL (an expired one is ended). */
static struct web_session *find(struct web_sessions *ws, const char *id, int64_t now)
{
	struct web_session *found = NULL;

	if (!id)
		return NULL;
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		struct web_session *s = &ws->s[i];
		if (s->used && now - s->last_ms > (int64_t)ws->idle_s * 1000)
			memset(s, 0, sizeof(*s)); /* expired */
		else if (s->used && id_equal(s->id, id))
			found = s;
	}
	return found;
}

bool web_session_get(struct web_sessions *ws, const struct httpd_request *req, char *user,
		     char *csrf)
{
	const char *id = httpd_cookie(req, COOKIE);
	int64_t now = time_mono_ms();
	bool ok = false;

	pthread_mutex_lock(&ws->lock);
	struct web_session *s = find(ws, id, now);
	if (s) {
		s->last_ms = now;
		memcpy(user, s->user, sizeof(s->user));
		memcpy(csrf, s->csrf, sizeof(s->csrf));
		ok = true;
	}
	pthread_mutex_unlock(&ws->lock);
	return ok;
}

/* With the lock held: the failure entry of key (made when create), or NULL. */
static struct web_failure *failure(struct web_sessions *ws, const char *key, bool create,
				   int64_t now)
{
	struct web_failure *oldest = NULL;

	for (size_t i = 0; i < WEB_FAILURES_MAX; i++) {
		struct web_failure *f = &ws->f[i];
		if (f->used && now - f->first_ms > (int64_t)WEB_LOCK_S * 1000 &&
		    now >= f->locked_until_ms)
			memset(f, 0, sizeof(*f)); /* old news */
		if (f->used && !strcmp(f->key, key))
			return f;
		if (!oldest || !f->used || (oldest->used && f->first_ms < oldest->first_ms))
			oldest = f;
	}
	if (!create || !oldest)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	oldest->used = true;
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->first_ms = now;
	return oldest;
}

/* Seconds a key stays locked, 0 when it is not. */
static int locked_for(struct web_sessions *ws, const char *key, int64_t now)
{
	struct web_failure *f = failure(ws, key, false, now);

	if (!f || now >= f->locked_until_ms)
		return 0;
	return (int)((f->locked_until_ms - now + 999) / 1000);
}

/* Counts a failure of key; returns its count. */
static int count_failure(struct web_sessions *ws, const char *key, int64_t now)
{
	struct web_failure *f = failure(ws, key, true, now);

	if (!f)
		return 1;
	f->count++;
	if (f->count >= WEB_LOCK_AFTER)
		f->locked_until_ms = now + (int64_t)WEB_LOCK_S * 1000;
	return f->count;
}

static void clear_failures(struct web_sessions *ws, const char *key, int64_t now)
{
	struct web_failure *f = failure(ws, key, false, now);

	if (f)
		memset(f, 0, sizeof(*f));
}

static void set_cookie(struct web_req *r, const char *value, int max_age)
{
	httpd_add_header(r->resp, "Set-Cookie",
			 "%s=%s; Path=/; HttpOnly; SameSite=Strict%s; Max-Age=%d", COOKIE, value,
			 r->http->tls ? "; Secure" : "", max_age);
}

/* A login answer: JSON for scripts (Accept: application/json), a redirect for the form. */
static void login_answer(struct web_req *r, int status, const char *error, const char *next)
{
	const char *accept = httpd_header(r->http, "Accept");

	if (accept && strstr(accept, "application/json")) {
		if (error) {
			web_reply_error(r, status, "%s", error);
		} else {
			char *ok = strdup("{\"ok\":true}");
			web_reply_json(r, 200, ok, ok ? strlen(ok) : 0);
		}
		return;
	}
	static const char body[] = "see other\n";
	httpd_respond_static(r->resp, 303, "text/plain; charset=utf-8", body, sizeof(body) - 1);
	if (error)
		httpd_add_header(r->resp, "Location", "/login?failed=%s",
				 status == 429 ? "locked" : "1");
	else
		httpd_add_header(r->resp, "Location", "%s", next);
	httpd_add_header(r->resp, "Cache-Control", "no-store");
}

void web_handle_login(struct web_req *r, const struct web_config *cfg)
{
	struct web_sessions *ws = &r->w->sessions;
	const char *user = httpform_get(&r->form, "user");
	const char *password = httpform_get(&r->form, "password");
	char ukey[96], akey[96];
	int64_t now = time_mono_ms();

	if (!user || !password || !*user || strlen(user) > WEB_USER_MAX) {
		login_answer(r, 400, "give user and password", NULL);
		return;
	}
	snprintf(ukey, sizeof(ukey), "user:%s", user);
	snprintf(akey, sizeof(akey), "addr:%s", r->http->client);
	pthread_mutex_lock(&ws->lock);
	int lu = locked_for(ws, ukey, now), la = locked_for(ws, akey, now);
	pthread_mutex_unlock(&ws->lock);
	if (lu || la) {
		int wait = lu > la ? lu : la;
		log_warn("web: login of '%.64s' from %s refused: locked for %d s after repeated failures",
			 user, r->http->client, wait);
		httpd_add_header(r->resp, "Retry-After", "%d", wait);
		login_answer(r, 429, "too many failed logins: locked for a while", NULL);
		return;
	}

	const char *hash = dummy_hash;
	for (size_t i = 0; i < cfg->user_count; i++)
		if (!strcmp(cfg->users[i].name, user))
			hash = cfg->users[i].password_hash;
	bool ok = passwd_verify(password, hash) && hash != dummy_hash;

	if (!ok) {
		pthread_mutex_lock(&ws->lock);
		int nu = count_failure(ws, ukey, now), na = count_failure(ws, akey, now);
		pthread_mutex_unlock(&ws->lock);
		int n = nu > na ? nu : na;
		log_warn("web: failed login of '%.64s' from %s (%d in a row%s)", user,
			 r->http->client, n, n >= WEB_LOCK_AFTER ? "; locked" : "");
		/* Slow down: each failure waits longer; the connection's own thread sleeps. */
		int64_t ms = (int64_t)n * WEB_SLOW_MS;
		struct timespec ts = {(time_t)((ms > WEB_SLOW_MAX_MS ? WEB_SLOW_MAX_MS : ms) /
					       1000),
				      (long)((ms > WEB_SLOW_MAX_MS ? WEB_SLOW_MAX_MS : ms) % 1000) *
					      1000000L};
		nanosleep(&ts, NULL);
		login_answer(r, 401, "wrong user or password", NULL);
		return;
	}

	struct web_session fresh = {.used = true, .last_ms = now};
	if (web_random_hex(fresh.id, WEB_ID_HEX / 2) != 0 ||
	    web_random_hex(fresh.csrf, WEB_ID_HEX / 2) != 0) {
		login_answer(r, 500, "no randomness for a session", NULL);
		return;
	}
	snprintf(fresh.user, sizeof(fresh.user), "%s", user);
	const char *old = httpd_cookie(r->http, COOKIE);
	pthread_mutex_lock(&ws->lock);
	clear_failures(ws, ukey, now);
	clear_failures(ws, akey, now);
	/* The session the browser came with ends: a login always gets a new id. */
	struct web_session *prev = find(ws, old, now);
	if (prev)
		memset(prev, 0, sizeof(*prev));
	struct web_session *slot = NULL;
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		if (!ws->s[i].used) {
			slot = &ws->s[i];
			break;
		}
		if (!slot || ws->s[i].last_ms < slot->last_ms)
			slot = &ws->s[i]; /* full: the least recently used one ends */
	}
	*slot = fresh;
	int max_age = ws->idle_s;
	pthread_mutex_unlock(&ws->lock);
	snprintf(r->user, sizeof(r->user), "%s", user);
	web_audit(r, "logged in");
	set_cookie(r, fresh.id, max_age);
	explicit_bzero(&fresh, sizeof(fresh));
	login_answer(r, 200, NULL, "/status");
}

void web_handle_logout(struct web_req *r)
{
	struct web_sessions *ws = &r->w->sessions;
	const char *id = httpd_cookie(r->http, COOKIE);

	pthread_mutex_lock(&ws->lock);
	struct web_session *s = find(ws, id, time_mono_ms());
	if (s)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&ws->lock);
	web_audit(r, "logged out");
	set_cookie(r, "", 0);
	login_answer(r, 200, NULL, "/login");
}

void web_handle_session(struct web_req *r)
{
	struct web_json j = {0};
	char csrf[WEB_ID_HEX + 1] = "", user[WEB_USER_MAX + 1];
	size_t len = 0;

	web_session_get(&r->w->sessions, r->http, user, csrf);
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kstr(&j, "user", r->user);
	web_json_kstr(&j, "csrf", csrf);
	web_json_kstr(&j, "identity", r->env->cfg->imei);
	web_json_kstr(&j, "version", MODBRIDGE_VERSION);
	web_json_obj_end(&j);
	char *text = web_json_finish(&j, &len);
	web_reply_json(r, 200, text, len);
}
