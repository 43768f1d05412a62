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
 * "connection lost: ..."), never once per retry. Passwords are never logged.
 */
#ifndef MODBRIDGE_MQTT_H
#define MODBRIDGE_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct mqtt_link;

struct mqtt_events {
	void (*connected)(void *ctx);
	void (*disconnected)(void *ctx);
	/* The message with this mid is delivered: PUBACK (QoS 1), PUBCOMP (QoS 2), or
	 * written to the socket (QoS 0). */
	void (*published)(void *ctx, int mid);
};

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

/* True while a CONNACK-accepted session is up. */
bool mqtt_link_connected(struct mqtt_link *link);

/* Disconnects cleanly, stops the network thread. Safe to call twice. */
void mqtt_link_stop(struct mqtt_link *link);

/* Frees a stopped link. Accepts NULL. */
void mqtt_link_free(struct mqtt_link *link);

#endif
