/*
 * remote.h - remote commands over MQTT: the AT topics, a bounded queue, one worker.
 *
 * remote_new() subscribes the MQTT link to the configured AT topics and script topics
 * (with [IMEI] replaced). Each message is copied on the MQTT network thread into a queue; one worker
 * thread executes the commands in arrival order (command.c) and publishes each reply on
 * the topic paired with the one the command came in on, or, for an MQTT 5 request that
 * names a response topic, there, with the request's correlation data. Every command gets
 * one audit log line: topic, command (secrets hidden), result.
 *
 * Ownership: the remote borrows cfg, link, store and modem, which must outlive it. The
 * daemon stops it in two steps so that a command waiting for a bus never blocks the stop:
 * remote_stop() (no new command starts), then the poller is stopped (poller_execute then
 * returns MB_ERR_BUSY to a command still waiting for its bus), then remote_free() (joins
 * the worker).
 *
 * Threading: remote_new, remote_start, remote_stop and remote_free from the daemon's
 * thread; the MQTT network thread only queues. Errors: the functions return 0 or
 * MB_ERR_NOMEM. A command that cannot run is answered, never dropped: "busy" when 16
 * commands already wait, an ERROR when the gateway is stopping, and "the bus is
 * busy or stopping" when its Modbus request was withdrawn (MB_ERR_BUSY).
 */
#ifndef MODBRIDGE_REMOTE_H
#define MODBRIDGE_REMOTE_H

#include "config.h"
#include "modem.h"
#include "mqtt.h"
#include "poller.h"
#include "store.h"

struct remote;

struct remote_hooks {
	/* A command (REBOOT, SETPARAM) asked for a restart; its reply has been published.
	 * Runs on the worker thread: it must only signal the daemon. */
	void (*restart)(void *ctx);
	void *ctx;
};

/*
 * Creates the remote for cfg's AT topics and script topics (loading the scripts) and
 * subscribes link to them; call before the link starts. modem may be NULL. Returns 0,
 * MB_ERR_NOMEM, or MB_ERR_SCRIPT when a script cannot be loaded (logged).
 */
int remote_new(const struct config *cfg, struct mqtt_link *link, struct store *store,
	       struct modem *modem, const struct remote_hooks *hooks, struct remote **out);

/* Starts the worker. Commands that arrived before are waiting in the queue. poller may be
 * NULL (no device is polled). */
int remote_start(struct remote *r, struct poller *poller);

/* No command starts after this; commands still queued are answered with an ERROR.
 * Returns at once. Accepts NULL. */
void remote_stop(struct remote *r);

/* Commands answered since remote_new, and how many of them were answered ERROR (refused:
 * not allowed, invalid, or failed). Any thread; r may be NULL (zeros). */
void remote_stats(struct remote *r, uint64_t *received, uint64_t *refused);

/* Joins the worker (after remote_stop) and frees. Accepts NULL. */
void remote_free(struct remote *r);

#endif
