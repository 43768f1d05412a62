/*
 * mqtt.h - the MQTT client link, over libmosquitto.
 *
 * This is the only module that includes <mosquitto.h>. A link owns one network thread
 * that connects (TLS verified by default), reconnects with exponential back-off, and
 * reports state changes and delivery confirmations through callbacks. Callbacks run on
 * that network thread: they must be short and must not call back into the link except
 * mqtt_link_publish().
 *
 * Errors are logged once per change of state ("connected", "cannot connect: ...",
 * "connection lost: ..."), never once per retry, with the cause when it can be told: the
 * broker's certificate expired / is for another host / is not signed by our CA (OpenSSL's
 * verification result, through certinfo.h), a tcp:// URL at a TLS port (probed), a broker
 * that accepted us before dropping connections while it restarts, another client taking
 * our session (MQTT 5 reason 0x8E, or sessions lost again and again right after being
 * accepted; the repeats of such a fight go to the debug level). Passwords are never logged.
 *
 * The link speaks MQTT 5 (so a request's response topic and correlation data can be
 * honoured), or MQTT 3.1.1 when a persistent session is configured (libmosquitto 2.0
 * cannot send the session expiry an MQTT 5 persistent session needs on an asynchronous
 * connect) or when the broker turns MQTT 5 down. With a status topic configured, the
 * broker holds "offline" as the last will, and the link publishes a retained "online"
 * after each connection and a retained "offline" before a clean disconnect.
 * Subscriptions (mqtt_link_subscribe) are made again after every reconnection.
 *
 * Threads: the daemon's main thread creates, starts, stops and frees a link; any thread may
 * publish (libmosquitto's threaded mode). Ownership: the link borrows its configuration,
 * which must outlive it; it copies topics and filters it keeps; received messages are lent
 * to the handler for the call only. Errors: functions return 0 or a negative mb_error
 * (MB_ERR_MQTT when not connected or refused, MB_ERR_TLS for unusable TLS files at
 * creation, MB_ERR_NOMEM).
 */
#ifndef MODBRIDGE_MQTT_H
#define MODBRIDGE_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_mqtt.h"

struct mqtt_link;

struct mqtt_events {
	void (*connected)(void *ctx);
	void (*disconnected)(void *ctx);
	/* The message with this mid is delivered: PUBACK (QoS 1), PUBCOMP (QoS 2), or
	 * written to the socket (QoS 0). */
	void (*published)(void *ctx, int mid);
};

/* A message received on one of the link's subscriptions; borrowed for the callback. */
struct mqtt_message {
	const char *topic;
	const void *payload;
	size_t len;
	const char *response_topic; /* MQTT 5 "response topic" property, NULL when absent */
	const void *correlation;    /* MQTT 5 "correlation data" property, NULL when absent */
	size_t correlation_len;
};

/* Runs on the network thread: must be short (copy what is kept, hand the work over). */
typedef void (*mqtt_message_fn)(void *ctx, const struct mqtt_message *msg);

/* Library set-up and tear-down; call once per process. */
void mqtt_global_init(void);
void mqtt_global_cleanup(void);

/*
 * Creates a link for cfg, with [IMEI] replaced by imei in the client id. Checks the TLS
 * files (fatal at start-up). Does not connect yet. cfg must outlive the link.
 */
int mqtt_link_new(const struct mqtt_config *cfg, const char *imei, const struct mqtt_events *ev,
		  void *ctx, struct mqtt_link **out);

/* Starts the network thread, which connects and keeps reconnecting until stopped. */
int mqtt_link_start(struct mqtt_link *link);

/*
 * Queues one message. Returns 0 and writes the message id to *mid, or MB_ERR_MQTT when
 * the link is not connected or the library refuses (the reason is logged at debug level).
 */
int mqtt_link_publish(struct mqtt_link *link, const char *topic, const void *payload, size_t len,
		      int qos, int *mid);

/* mqtt_link_publish with the retain flag (topic scripts' modbridge.publish). Any thread. */
int mqtt_link_publish_ex(struct mqtt_link *link, const char *topic, const void *payload, size_t len,
			 int qos, bool retain, int *mid);

/*
 * Before mqtt_link_start: subscribe to filter (copied) at qos after every connection.
 * Under MQTT 5 with the "no local" option, so the link never receives its own messages.
 * Returns 0 or MB_ERR_NOMEM.
 */
int mqtt_link_subscribe(struct mqtt_link *link, const char *filter, int qos);

/* Before mqtt_link_start: where messages of the subscriptions go. */
void mqtt_link_on_message(struct mqtt_link *link, mqtt_message_fn fn, void *ctx);

/*
 * Like mqtt_link_publish (never retained), adding the correlation data (when not NULL)
 * under MQTT 5; under MQTT 3.1.1 it is left out. Any thread, callbacks included.
 */
int mqtt_link_publish_reply(struct mqtt_link *link, const char *topic, const void *payload,
			    size_t len, int qos, const void *correlation, size_t correlation_len,
			    int *mid);

/* True while a CONNACK-accepted session is up. */
bool mqtt_link_connected(struct mqtt_link *link);

/*
 * The last connection failure the link reported ("cannot connect: ...", "connection lost:
 * ...") into buf ("" when none), for the web UI's status page; it stays after a
 * reconnection. Returns its wall-clock time in ms, 0 when none. Any thread.
 */
int64_t mqtt_link_last_error(struct mqtt_link *link, char *buf, size_t len);

/* Disconnects cleanly, stops the network thread. Safe to call twice. */
void mqtt_link_stop(struct mqtt_link *link);

/* Frees a stopped link. Accepts NULL. */
void mqtt_link_free(struct mqtt_link *link);

#endif
