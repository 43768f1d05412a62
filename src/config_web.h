/*
 * config_web.h - the `web` part of the configuration: the local web UI's listener, TLS
 * files, users and where uploaded certificates live.
 *
 * What the web UI (web*.c) and its HTTP server (httpd.c) consume, filled by the loader
 * (config_web.c; docs/configuration.md and docs/web-ui.md document every key). Off by
 * default. Part of a struct config (config.h): immutable once loaded, so any thread may
 * read it; the loader owns every pointer in it. password_hash is never logged nor sent to
 * a browser.
 */
#ifndef MODBRIDGE_CONFIG_WEB_H
#define MODBRIDGE_CONFIG_WEB_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_WEB_MAX_USERS 16

struct web_user {
	char *name;
	char *password_hash; /* crypt(3) hash, "$y$..." from `modbridge passwd` */
};

struct web_config {
	bool enabled;        /* default false */
	char *listen;        /* as written, default "127.0.0.1:8080" */
	char *host;          /* numeric address to bind */
	int port;            /* default 8080 */
	bool loopback;       /* host is 127.0.0.0/8 or ::1 */
	char *tls_cert_file; /* HTTPS when both are set (resolved, checked) */
	char *tls_key_file;
	struct web_user *users;
	size_t user_count;
	int session_timeout_s; /* idle time after which a session ends, default 1800 */
	/* Uploaded certificates; default: "certs" beside logger.store (a directory the daemon
	 * owns, as it owns the store's). */
	char *cert_dir;
	int line;
};

#endif
