/*
 * config_http.c - the `http` section of the configuration (logger.mode: http, the
 * router's WEB mode): URL, method, headers, credentials, TLS files, time-out; see
 * docs/configuration.md and config_internal.h.
 *
 * TLS files are checked as for MQTT (config_check_tls_files): a certificate, an
 * unencrypted key of that certificate. Secrets are kept for the uplink and never appear
 * in a diagnostic. The section is read whatever the mode (so `check` finds its mistakes
 * before the switch); its URL is required only in http mode. Runs on the loading thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

static const char *const http_keys[] = {
	"url",       "method",   "query_parameter",        "headers",
	"username",  "password", "bearer_token",           "ca_file",
	"cert_file", "key_file", "allow_all_certificates", "timeout_ms",
};

_Static_assert(ARRAY_SIZE(http_keys) <= CONFIG_MAX_KEYS,
	       "struct config_obj holds at most CONFIG_MAX_KEYS keys");

static const struct config_choice methods[] = {
	{"post", HTTP_POST},
	{"put", HTTP_PUT},
	{"get", HTTP_GET},
};

/* A header name is an HTTP token; a value has no line break (it would smuggle a header). */
static bool header_name_ok(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (!isalnum((unsigned char)*t) && !strchr("!#$%&'*+-.^_`|~", *t))
			return false;
	return true;
}

static void parse_headers(struct config_ctx *c, const struct config_obj *o, struct http_config *h)
{
	const struct yamldoc_node *v = config_obj_get(o, "headers");
	if (!v)
		return;
	if (yamldoc_kind(v) != YAMLDOC_MAPPING) {
		config_obj_error(o, "headers",
				 "expected a mapping of header names to values, got %s",
				 config_kind_name(v));
		return;
	}
	size_t n = yamldoc_map_len(v);
	h->headers = calloc(n ? n : 1, sizeof(*h->headers));
	if (!h->headers) {
		c->nomem = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct yamldoc_node *k = yamldoc_map_key(c->doc, v, i);
		const struct yamldoc_node *val = yamldoc_map_value(c->doc, v, i);
		const char *name = k && yamldoc_kind(k) == YAMLDOC_SCALAR ? yamldoc_scalar(k) : "";
		char path[CONFIG_KEY_LEN];

		snprintf(path, sizeof(path), "http.headers.%.100s", name);
		if (!header_name_ok(name)) {
			config_report(c, CONFIG_ERROR, yamldoc_line(k), path,
				      "'%.64s' is not a valid header name", name);
			continue;
		}
		if (!strcasecmp(name, "Authorization"))
			config_report(
				c, CONFIG_WARNING, yamldoc_line(k), path,
				"set in clear in the file; username/password or bearer_token keep it out of the log");
		if (!val || yamldoc_kind(val) != YAMLDOC_SCALAR) {
			config_report(c, CONFIG_ERROR, yamldoc_line(k), path,
				      "expected a single value, got %s",
				      val ? config_kind_name(val) : "nothing");
			continue;
		}
		const char *text = yamldoc_is_null(val) ? "" : yamldoc_scalar(val);
		if (strpbrk(text, "\r\n")) {
			config_report(c, CONFIG_ERROR, yamldoc_line(val), path,
				      "a header value must be one line");
			continue;
		}
		struct http_header hd = {strdup(name), strdup(text)};
		if (!hd.name || !hd.value) {
			free(hd.name);
			free(hd.value);
			c->nomem = true;
			return;
		}
		h->headers[h->header_count++] = hd;
	}
}

static void parse_url(const struct config_obj *o, struct http_config *h, bool required)
{
	const char *t;
	int rc = config_get_text(o, "url", &t);

	if (rc == 0 && required)
		config_obj_error(
			o, "url",
			"required when logger.mode is http (such as https://collector.example.com/readings)");
	if (rc <= 0)
		return;
	if (!strncasecmp(t, "https://", 8))
		h->tls = true;
	else if (strncasecmp(t, "http://", 7) != 0) {
		config_obj_error(o, "url", "'%.64s' is not an http:// or https:// URL", t);
		return;
	}
	const char *host = strstr(t, "://") + 3;
	size_t authority = strcspn(host, "/");
	if (memchr(host, '@', authority)) {
		config_obj_error(
			o, "url",
			"holds a user name or password: use the username and password keys (they are never logged)");
		return;
	}
	if (!*host || *host == '/' || *host == ':' || strpbrk(t, " \t\r\n")) {
		config_obj_error(o, "url", "'%.64s': no host, or a space in it", t);
		return;
	}
	if (!(h->url = strdup(t)))
		o->c->nomem = true;
}

void config_parse_http(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "http", "HTTP keys (url, method, headers, ...)");
	struct http_config *h = &c->cfg->http;
	bool used = c->cfg->logger.mode == LOGGER_HTTP;
	struct config_obj o;
	const char *t;
	int v;

	config_obj_scan(&o, c, map, "http", config_obj_line(top, "http"), http_keys,
			ARRAY_SIZE(http_keys));
	if (map && !used)
		config_report(c, CONFIG_WARNING, config_obj_line(top, "http"), "http",
			      "ignored: logger.mode is not http");
	parse_url(&o, h, used);
	if (config_get_choice(&o, "method", methods, ARRAY_SIZE(methods), "post, put, get", &v) ==
	    1)
		h->method = (enum http_method)v;
	if (config_get_text(&o, "query_parameter", &t) == 1) {
		char *q;
		if (!*t || strpbrk(t, "&=?# \t\r\n"))
			config_obj_error(&o, "query_parameter",
					 "'%.64s' is not a query parameter name", t);
		else if (!(q = strdup(t)))
			c->nomem = true;
		else {
			free(h->query_parameter);
			h->query_parameter = q;
		}
		if (h->method != HTTP_GET)
			config_obj_warn(&o, "query_parameter", "ignored: method is not get");
	}
	parse_headers(c, &o, h);
	config_get_login(&o, &h->username, &h->password);
	if (config_get_text(&o, "bearer_token", &t) == 1 && *t) {
		if (h->username)
			config_obj_error(
				&o, "bearer_token",
				"set together with username: choose basic or token authentication");
		else if (!(h->bearer_token = strdup(t)))
			c->nomem = true;
	}
	config_get_int(&o, "timeout_ms", 100, 600000, " ms", &h->timeout_ms);
	config_get_bool(&o, "allow_all_certificates", &h->allow_all_certificates);

	bool checks = !h->url || h->tls;
	if (h->url && !h->tls) {
		config_warn_tls_ignored(&o, "ignored: the URL is not https://");
		h->allow_all_certificates = false;
		if (h->password || h->bearer_token)
			config_obj_warn(&o, h->password ? "password" : "bearer_token",
					"sent in clear over http://; use https://");
		return;
	}
	config_warn_unverified(&o, h->allow_all_certificates);
	config_get_path(&o, "ca_file", checks, false, &h->ca_file);
	config_get_path(&o, "cert_file", checks, false, &h->cert_file);
	config_get_path(&o, "key_file", checks, false, &h->key_file);
	config_check_tls_files(&o, h->ca_file, h->cert_file, h->key_file);
}
