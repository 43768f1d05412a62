/*
 * watchdog.h - the daemon's side of systemd's watchdog, and its status line.
 *
 * systemd kills a unit with WatchdogSec= when WATCHDOG=1 stops coming. We send it only
 * while the threads that do the work are alive: the poller's threads, the store writer
 * and the forwarder (each beats its struct liveness, liveness.h). A thread that has not
 * beaten for the stall limit stops the pings: a deadlock, or a call that never returns,
 * ends in a restart by systemd instead of a gateway that looks up and logs nothing. The
 * stall limit is half the watchdog period, but never less than twice the longest Modbus
 * time-out of the configuration plus 4 s (one request is one sign of life, and a
 * healthy bus thread can spend that long in one). A stall is logged once when it starts
 * and once when it ends.
 *
 * The status line (systemctl status) says how many devices are polled, the backlog and
 * the uplink's state; it is sent when it changes.
 *
 * Threads: the daemon's main thread only; the parts are read without taking their locks,
 * so a stuck thread cannot stop the main thread too. Errors: none (notify.h).
 */
#ifndef MODBRIDGE_WATCHDOG_H
#define MODBRIDGE_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct forwarder;
struct ingest;
struct poller;
struct store;

/* What the daemon runs now; any part may be NULL (not running, or MQTT off). */
struct watchdog_parts {
	struct poller *poller;
	struct ingest *ingest;
	struct forwarder *fw;
	struct store *store;
	size_t devices;
	const char *mode; /* the readings' uplink (logger.mode), NULL: none (not sent) */
};

struct watchdog {
	int64_t period_ms; /* systemd's, 0: no watchdog */
	int64_t stall_ms;
	char stalled[32]; /* the part that stalled, "" while all are alive */
	char last_status[160];
};

/* Sets w up for cfg, with the watchdog period that notify.h found. */
void watchdog_init(struct watchdog *w, const struct config *cfg);

/* How often the main thread should call watchdog_tick (ms), 0 when there is no one to
 * tell (no NOTIFY_SOCKET). */
int64_t watchdog_tick_ms(const struct watchdog *w);

/* Feeds systemd's watchdog if every part is alive, and sends the status if it changed. */
void watchdog_tick(struct watchdog *w, const struct watchdog_parts *parts);

/* The status line now ("12 device(s); backlog 340; uplink mqtt connected"). */
void watchdog_status(const struct watchdog_parts *parts, char *buf, size_t len);

#endif
