/*
 * config_ftp.c - the `ftp` section of the configuration (logger.mode: ftp, the router's
 * FTP mode): server URL and directory, credentials, SFTP key and known_hosts, FTPS files,
 * how files are named and cut; see docs/configuration.md, docs/logger.md and
 * config_internal.h.
 *
 * The file name pattern is checked here with the same expansion the uplink uses
 * (ftpname.h), so a pattern that would make a path, or name no file, is a load error. The
 * section is read whatever the mode; its URL is required only in ftp mode. Runs on the
 * loading thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "curlx.h"
#include "ftpname.h"

static const char *const ftp_keys[] = {
	"url",         "username", "password",     "key_file",
	"known_hosts", "ca_file",  "cert_file",    "allow_all_certificates",
	"file_name",   "interval", "max_readings", "format",
	"timeout_ms",
};

_Static_assert(ARRAY_SIZE(ftp_keys) <= CONFIG_MAX_KEYS,
	       "struct config_obj holds at most CONFIG_MAX_KEYS keys");

static const struct config_choice formats[] = {
	{"jsonl", FTP_JSONL},
	{"array", FTP_ARRAY},
};

static void parse_url(const struct config_obj *o, struct ftp_config *f, bool required)
{
	static const struct {
		const char *scheme;
		enum ftp_protocol protocol;
	} schemes[] = {{"ftp://", FTP_PLAIN}, {"ftps://", FTP_TLS}, {"sftp://", FTP_SFTP}};
	const char *t;
	int rc = config_get_text(o, "url", &t);
	size_t i;

	if (rc == 0 && required)
		config_obj_error(
			o, "url",
			"required when logger.mode is ftp (such as ftps://ftp.example.com/incoming/)");
	if (rc <= 0)
		return;
	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		if (!strncasecmp(t, schemes[i].scheme, strlen(schemes[i].scheme)))
			break;
	if (i == ARRAY_SIZE(schemes)) {
		config_obj_error(o, "url",
				 "'%.64s' is not a supported URL (allowed: ftp://, ftps://, sftp://)",
				 t);
		return;
	}
	const char *host = t + strlen(schemes[i].scheme);
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
	if (strchr(host, '?') || strchr(host, '#')) {
		config_obj_error(o, "url", "'%.64s': a query or fragment is not allowed", t);
		return;
	}
	if (i == FTP_SFTP && !curlx_supports("sftp")) {
		config_obj_error(o, "url", "this libcurl cannot speak sftp (%s)", curlx_version());
		return;
	}
	f->protocol = schemes[i].protocol;
	/* Always a directory: "ftp://host/dir" and "ftp://host/dir/" mean the same. */
	size_t len = strlen(t);
	bool slash = strchr(host, '/') && t[len - 1] == '/';
	f->url = config_fmt("%s%s", t, slash ? "" : "/");
	if (!f->url)
		o->c->nomem = true;
}

/* "1d", "2d" (days), or the router's period syntax (bare minutes, 30s, 1h). */
static void parse_interval(const struct config_obj *o, struct ftp_config *f)
{
	const char *t;
	int64_t ms = 0;
	if (config_get_text(o, "interval", &t) != 1)
		return;
	size_t len = strlen(t);
	char *end = NULL;
	if (len > 1 && (t[len - 1] == 'd' || t[len - 1] == 'D')) {
		long days = strtol(t, &end, 10);
		if (end != t + len - 1 || days < 1 || days > 7) {
			config_obj_error(o, "interval", "'%.64s' is not 1d..7d", t);
			return;
		}
		ms = days * 86400000LL;
	} else if (config_parse_period(t, &ms) != 0 || ms < 1000) {
		config_obj_error(o, "interval",
				 "'%.64s' is not a period of 1 s to 7 days (bare minutes, 30s, 1h, 1d)",
				 t);
		return;
	}
	f->interval_ms = ms;
}

static void parse_file_name(const struct config_obj *o, struct ftp_config *f)
{
	const char *t;
	char why[200];
	if (config_get_text(o, "file_name", &t) != 1)
		return;
	if (ftpname_check(t, why, sizeof(why)) != 0) {
		config_obj_error(o, "file_name", "%s", why);
		return;
	}
	char *copy = strdup(t);
	if (!copy) {
		o->c->nomem = true;
		return;
	}
	free(f->file_name);
	f->file_name = copy;
}

static void parse_sftp_files(const struct config_obj *o, struct ftp_config *f)
{
	static const char *const tls_keys[] = {"ca_file", "cert_file"};
	for (size_t i = 0; i < ARRAY_SIZE(tls_keys); i++)
		if (config_obj_get(o, tls_keys[i]))
			config_obj_warn(o, tls_keys[i], "ignored: the URL is sftp://");
	config_get_path(o, "key_file", true, false, &f->key_file);
	if (f->allow_all_certificates) {
		config_obj_warn(o, "allow_all_certificates",
				"the server's host key is not checked; use only for tests");
		return;
	}
	if (config_get_path(o, "known_hosts", true, false, &f->known_hosts) != 0)
		return;
	const char *home = getenv("HOME");
	char *def = config_fmt("%s/.ssh/known_hosts", home && *home ? home : "/root");
	if (!def) {
		o->c->nomem = true;
		return;
	}
	FILE *fp = fopen(def, "r");
	if (!fp) {
		config_obj_error(
			o, "known_hosts",
			"not set, and '%s' cannot be read: the server's host key is checked against it (ssh-keyscan the server into a file after checking its fingerprint)",
			def);
		free(def);
		return;
	}
	fclose(fp);
	f->known_hosts = def;
}

void config_parse_ftp(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "ftp", "FTP keys (url, username, file_name, ...)");
	struct ftp_config *f = &c->cfg->ftp;
	bool used = c->cfg->logger.mode == LOGGER_FTP;
	struct config_obj o;
	int v;

	config_obj_scan(&o, c, map, "ftp", config_obj_line(top, "ftp"), ftp_keys,
			ARRAY_SIZE(ftp_keys));
	if (map && !used)
		config_report(c, CONFIG_WARNING, config_obj_line(top, "ftp"), "ftp",
			      "ignored: logger.mode is not ftp");
	parse_url(&o, f, used);
	config_get_login(&o, &f->username, &f->password);
	parse_file_name(&o, f);
	parse_interval(&o, f);
	config_get_int(&o, "max_readings", 1, 100000, " readings", &f->max_readings);
	if (config_get_choice(&o, "format", formats, ARRAY_SIZE(formats), "jsonl, array", &v) == 1)
		f->format = (enum ftp_format)v;
	config_get_int(&o, "timeout_ms", 1000, 3600000, " ms", &f->timeout_ms);
	config_get_bool(&o, "allow_all_certificates", &f->allow_all_certificates);
	if (!f->url)
		return;

	if (f->protocol == FTP_SFTP) {
		if (!f->username)
			config_obj_error(&o, "username", "required for sftp://");
		parse_sftp_files(&o, f);
		if (used && !f->key_file && !f->password)
			config_obj_error(&o, "key_file",
					 "sftp:// needs key_file (key authentication) or a password");
		return;
	}
	if (config_obj_get(&o, "known_hosts"))
		config_obj_warn(&o, "known_hosts", "ignored: the URL is not sftp://");
	if (f->protocol == FTP_PLAIN) {
		config_warn_tls_ignored(&o, "ignored: the URL is not ftps://");
		f->allow_all_certificates = false;
		if (f->password)
			config_obj_warn(&o, "password",
					"sent in clear over ftp://; use ftps:// or sftp://");
		return;
	}
	config_warn_unverified(&o, f->allow_all_certificates);
	config_get_path(&o, "ca_file", true, false, &f->ca_file);
	config_get_path(&o, "cert_file", true, false, &f->cert_file);
	config_get_path(&o, "key_file", true, false, &f->key_file);
	config_check_tls_files(&o, f->ca_file, f->cert_file, f->key_file);
}
