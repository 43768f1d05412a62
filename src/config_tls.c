/*
 * config_tls.c - what the sections with a TLS client (mqtt, http, ftp) check alike: the
 * user name and password pair, the TLS files, the warnings for verification turned off and
 * for TLS keys a plain URL ignores; see config_internal.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "certinfo.h"
#include "config_internal.h"

/* A blank user name or password is the router's "not set". */
void config_get_login(const struct config_obj *o, char **username, char **password)
{
	const char *t;

	if (config_get_text(o, "username", &t) == 1 && *t && !(*username = strdup(t)))
		o->c->nomem = true;
	if (config_get_text(o, "password", &t) == 1 && *t) {
		if (!*username)
			config_obj_error(o, "password",
					 "set without username (set username too, or remove password)");
		else if (!(*password = strdup(t)))
			o->c->nomem = true;
	}
}

void config_warn_unverified(const struct config_obj *o, bool allow_all_certificates)
{
	if (allow_all_certificates)
		config_obj_warn(
			o, "allow_all_certificates",
			"TLS certificate and host name verification are disabled; use only for tests");
}

void config_warn_tls_ignored(const struct config_obj *o, const char *why)
{
	static const char *const tls_keys[] = {"ca_file", "cert_file", "key_file",
					       "allow_all_certificates"};
	for (size_t i = 0; i < sizeof(tls_keys) / sizeof(tls_keys[0]); i++)
		if (config_obj_get(o, tls_keys[i]))
			config_obj_warn(o, tls_keys[i], "%s", why);
}

void config_check_tls_files(const struct config_obj *o, const char *ca, const char *cert,
			    const char *key)
{
	char why[512];
	bool cert_ok = cert != NULL, key_ok = key != NULL;

	if (ca && certinfo_check_cert_file(ca, why, sizeof(why)) != 0)
		config_obj_error(o, "ca_file", "%s", why);
	if (cert && certinfo_check_cert_file(cert, why, sizeof(why)) != 0) {
		config_obj_error(o, "cert_file", "%s", why);
		cert_ok = false;
	}
	if (key && certinfo_check_key_file(key, why, sizeof(why)) != 0) {
		config_obj_error(o, "key_file", "%s", why);
		key_ok = false;
	}
	if (cert_ok && key_ok && certinfo_check_key_pair(cert, key, why, sizeof(why)) != 0)
		config_obj_error(o, "key_file", "%s (cert_file, line %d)", why,
				 config_obj_line(o, "cert_file"));
	if (config_obj_get(o, "cert_file") && !config_obj_get(o, "key_file"))
		config_obj_error(o, "cert_file",
				 "set without key_file (a client certificate needs its private key)");
	if (config_obj_get(o, "key_file") && !config_obj_get(o, "cert_file"))
		config_obj_error(o, "key_file",
				 "set without cert_file (a private key needs its client certificate)");
}
