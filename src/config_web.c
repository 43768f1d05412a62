/*
 * config_web.c - the `web` section of the configuration: the web UI's listener, HTTPS
 * files, users and certificate directory; see config_web.h, docs/configuration.md and
 * config_internal.h.
 *
 * The listener is a numeric address (or localhost) so that what `check` says about
 * loopback is what the daemon binds. Password hashes are checked for a method libcrypt
 * knows (passwd.h), never shown. Runs on the loading thread, after the logger section
 * (the certificate directory defaults to the store's).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "certinfo.h"
#include "config_internal.h"
#include "error.h"
#include "passwd.h"

static const char *const web_keys[] = {
	"enabled", "listen",          "tls_cert_file", "tls_key_file",
	"users",   "session_timeout", "cert_dir",
};
static const char *const user_keys[] = {"name", "password_hash"};

#define USER_NAME_MAX 64

static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > USER_NAME_MAX)
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-@", *p)))
			return false;
	return true;
}

static void parse_listen(const struct config_obj *o, struct web_config *w)
{
	const char *t;
	char err[256];
	unsigned char addr[16];
	int rc = config_get_text(o, "listen", &t);

	if (rc < 0)
		return;
	if (rc == 1) {
		char *copy = strdup(t);

		if (!copy) {
			o->c->nomem = true;
			return;
		}
		free(w->listen);
		w->listen = copy;
	}
	free(w->host);
	w->host = NULL;
	rc = config_parse_host_port(w->listen, 8080, &w->host, &w->port, err, sizeof(err));
	if (rc == MB_ERR_NOMEM) {
		o->c->nomem = true;
		return;
	}
	if (rc < 0) {
		config_obj_error(o, "listen", "%s (expected address:port, such as 127.0.0.1:8080)",
				 err);
		return;
	}
	if (!strcasecmp(w->host, "localhost")) {
		free(w->host);
		if (!(w->host = strdup("127.0.0.1"))) {
			o->c->nomem = true;
			return;
		}
	}
	if (inet_pton(AF_INET, w->host, addr) == 1) {
		w->loopback = addr[0] == 127;
	} else if (inet_pton(AF_INET6, w->host, addr) == 1) {
		static const unsigned char one[16] = {[15] = 1};
		w->loopback = memcmp(addr, one, 16) == 0;
	} else {
		config_obj_error(
			o, "listen",
			"'%.64s' is not an IP address (allowed: an address of this gateway such as 127.0.0.1, 0.0.0.0 or ::, or localhost)",
			w->host);
	}
}

static void parse_users(struct config_ctx *c, const struct config_obj *o, struct web_config *w)
{
	const struct yamldoc_node *v = config_obj_get(o, "users");
	size_t n;

	if (!v)
		return;
	if (yamldoc_kind(v) != YAMLDOC_SEQUENCE) {
		config_obj_error(o, "users", "expected a list of {name, password_hash}, got %s",
				 config_kind_name(v));
		return;
	}
	n = yamldoc_seq_len(v);
	if (n > CONFIG_WEB_MAX_USERS) {
		config_obj_error(o, "users", "%zu users (allowed: at most %d)", n,
				 CONFIG_WEB_MAX_USERS);
		return;
	}
	w->users = calloc(n ? n : 1, sizeof(*w->users));
	if (!w->users) {
		c->nomem = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct yamldoc_node *item = yamldoc_seq_item(c->doc, v, i);
		struct web_user *u = &w->users[w->user_count];
		char path[CONFIG_KEY_LEN];
		struct config_obj p;
		const char *t, *why;

		snprintf(path, sizeof(path), "web.users[%zu]", i);
		if (!item || yamldoc_kind(item) != YAMLDOC_MAPPING) {
			config_report(c, CONFIG_ERROR, yamldoc_line(item), path,
				      "expected a mapping {name, password_hash}, got %s",
				      item ? config_kind_name(item) : "nothing");
			continue;
		}
		config_obj_scan(&p, c, item, path, yamldoc_line(item), user_keys,
				ARRAY_SIZE(user_keys));
		int rn = config_get_text(&p, "name", &t);
		if (rn == 0) {
			config_obj_error(&p, "name", "required (the login name)");
		} else if (rn == 1 && !name_ok(t)) {
			config_obj_error(
				&p, "name",
				"'%.64s' is not valid (allowed: 1..%d letters, digits and . _ - @)",
				t, USER_NAME_MAX);
		} else if (rn == 1) {
			for (size_t j = 0; j < w->user_count; j++)
				if (w->users[j].name && !strcmp(w->users[j].name, t)) {
					config_obj_error(&p, "name", "duplicate user '%s'", t);
					rn = -1;
					break;
				}
			if (rn == 1 && !(u->name = strdup(t)))
				c->nomem = true;
		}
		int rh = config_get_text(&p, "password_hash", &t);
		if (rh == 0)
			config_obj_error(&p, "password_hash",
					 "required (make one with: modbridge passwd)");
		else if (rh == 1 && (why = passwd_hash_problem(t)) != NULL)
			config_obj_error(&p, "password_hash", "%s", why);
		else if (rh == 1 && !(u->password_hash = strdup(t)))
			c->nomem = true;
		if (u->name && u->password_hash) {
			w->user_count++;
		} else {
			free(u->name);
			free(u->password_hash);
			u->name = u->password_hash = NULL;
		}
	}
}

static void parse_tls(const struct config_obj *o, struct web_config *w)
{
	char why[512];
	int cert = config_get_path(o, "tls_cert_file", true, false, &w->tls_cert_file);
	int key = config_get_path(o, "tls_key_file", true, false, &w->tls_key_file);

	if (cert == 1 && certinfo_check_cert_file(w->tls_cert_file, why, sizeof(why)) != 0) {
		config_obj_error(o, "tls_cert_file", "%s", why);
		cert = -1;
	}
	if (key == 1 && certinfo_check_key_file(w->tls_key_file, why, sizeof(why)) != 0) {
		config_obj_error(o, "tls_key_file", "%s", why);
		key = -1;
	}
	if (cert == 1 && key == 1 &&
	    certinfo_check_key_pair(w->tls_cert_file, w->tls_key_file, why, sizeof(why)) != 0)
		config_obj_error(o, "tls_key_file", "%s (tls_cert_file, line %d)", why,
				 config_obj_line(o, "tls_cert_file"));
	if (config_obj_get(o, "tls_cert_file") && !config_obj_get(o, "tls_key_file"))
		config_obj_error(o, "tls_cert_file",
				 "set without tls_key_file (HTTPS needs the certificate's key)");
	if (config_obj_get(o, "tls_key_file") && !config_obj_get(o, "tls_cert_file"))
		config_obj_error(o, "tls_key_file",
				 "set without tls_cert_file (HTTPS needs a certificate)");
}

/* "certs" beside the store file: the daemon creates and owns that directory. */
static char *default_cert_dir(const char *store_path)
{
	const char *slash = store_path ? strrchr(store_path, '/') : NULL;

	if (!slash)
		return strdup("certs");
	return config_fmt("%.*s/certs", (int)(slash - store_path), store_path);
}

void config_parse_web(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "web", "web UI keys (enabled, listen, users, ...)");
	struct web_config *w = &c->cfg->web;
	struct config_obj o;

	config_obj_scan(&o, c, map, "web", config_obj_line(top, "web"), web_keys,
			ARRAY_SIZE(web_keys));
	w->line = o.line;
	w->session_timeout_s = 1800;
	if (!(w->listen = strdup("127.0.0.1:8080"))) {
		c->nomem = true;
		return;
	}
	config_get_bool(&o, "enabled", &w->enabled);
	parse_listen(&o, w);
	parse_tls(&o, w);
	parse_users(c, &o, w);
	config_get_int(&o, "session_timeout", 60, 7 * 86400, " seconds", &w->session_timeout_s);
	if (config_get_path(&o, "cert_dir", false, true, &w->cert_dir) == 0 &&
	    !(w->cert_dir = default_cert_dir(c->cfg->logger.store_path)))
		c->nomem = true;
	if (!w->enabled)
		return;
	if (w->user_count == 0 && !config_obj_get(&o, "users"))
		config_obj_warn(
			&o, "users",
			"no users: nobody can log in (add one: name and the password_hash that `modbridge passwd` prints)");
	if (w->host && !w->loopback && !w->tls_cert_file)
		config_obj_warn(
			&o, "listen",
			"'%s' listens beyond this gateway without TLS: passwords and session cookies cross the network in clear (set tls_cert_file and tls_key_file)",
			w->listen);
}

void config_web_free(struct web_config *w)
{
	free(w->listen);
	free(w->host);
	free(w->tls_cert_file);
	free(w->tls_key_file);
	for (size_t i = 0; i < w->user_count; i++) {
		free(w->users[i].name);
		free(w->users[i].password_hash);
	}
	free(w->users);
	free(w->cert_dir);
}
