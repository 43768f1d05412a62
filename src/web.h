/*
 * web.h - the local web UI: the router's screens (status, serial ports, Modbus devices with
 * a Test button, logger, MQTT client, certificates, AT console, log) as pages served from
 * the daemon, with a small JSON API under /api/ that the pages and scripts use.
 *
 * Off by default (web.enabled). The pages are embedded in the binary (web/ at build time);
 * everything they change goes through the same code as the rest of the gateway: the
 * configuration file is edited with confedit.h (comments and key order kept), checked with
 * the loader `modbridge check` uses, written atomically with a backup, and applied by the
 * daemon's restart (the SIGHUP path); a Test reads through the poller's queue; the AT
 * console runs command_execute with the permissions of the AT topics; every change is one
 * audit line in the log. docs/web-ui.md walks through the screens.
 *
 * Lifetime: the daemon makes one struct web when the configuration enables it and keeps it
 * across restarts, so sessions survive a save. Each start of the gateway lends it the
 * running parts (web_attach); each stop takes them back (web_detach), which waits until no
 * request uses them; requests meanwhile wait a few seconds for the next attach, then get
 * 503. The HTTP server is restarted only when web.listen or its TLS files change.
 *
 * Threading: web_new, web_attach, web_detach and web_free on the daemon's main thread;
 * web_note_reading from the bus threads; requests run on the HTTP server's threads
 * (httpd.h). Errors: 0 or a negative mb_error; a server that cannot listen is a start-up
 * error (logged).
 */
#ifndef MODBRIDGE_WEB_H
#define MODBRIDGE_WEB_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct poller;
struct store;
struct modem;
struct mqtt_link;
struct uplink_stats;
struct web;

/* What the running gateway lends to the web UI between web_attach and web_detach. */
struct web_env {
	const struct config *cfg; /* the running configuration */
	struct poller *poller;
	struct store *store;
	struct modem *modem;    /* NULL: none */
	struct mqtt_link *link; /* NULL: MQTT off */
	/* The readings' uplink figures (logger.mode: mqtt, http or ftp); NULL: none. */
	struct uplink_stats *stats;
	/* Asks the daemon to restart with the file (as SETPARAM does); any thread. */
	void (*restart)(void *ctx);
	void *restart_ctx;
	int64_t started_ms; /* when the daemon started (wall clock), for the uptime */
};

/* Makes the web UI (nothing listens yet). Returns 0 or MB_ERR_NOMEM. */
int web_new(struct web **out);

/*
 * Lends env to the web UI and serves env->cfg->web: starts the HTTP server, or restarts it
 * when the listener or its TLS files changed. Sessions of users no longer configured end.
 * Returns 0, or an error when the server cannot start (logged).
 */
int web_attach(struct web *w, const struct web_env *env);

/* Takes the running parts back; returns once no request uses them. Accepts NULL. */
void web_detach(struct web *w);

/*
 * Notes a device's latest reading for the status page (its JSON message; error: an ERR
 * message). Copies what it keeps. Any thread; accepts w NULL.
 */
void web_note_reading(struct web *w, const char *device_id, int64_t ts_ms, const char *json,
		      bool error);

/* Stops the server (after web_detach) and frees. Accepts NULL. */
void web_free(struct web *w);

/* The port the server listens on, 0 when none (for the log and tests). */
int web_port(const struct web *w);

#endif
