/*
 * uplink.h - what the forwarder needs from the connection that carries readings away.
 *
 * The forwarder (forward.c) decides what to send and when to delete; an uplink only sends
 * one message at a time and reports what became of it. MQTT is one uplink (uplink_mqtt.c);
 * the HTTP and FTP modes are others; a unit test is another that injects failures. This is
 * the seam libmodbus has with its backend table.
 *
 * Contract for an implementation:
 *  - bind() is called once, before start(), with the events to report and their context.
 *  - send() queues one message and returns 0 with a token that identifies it in later
 *    events, or a negative mb_error when it cannot take it now (not connected, refused);
 *    the forwarder then keeps the readings and tries again later.
 *  - Every token sent is later reported exactly once as delivered() (the server confirmed
 *    it: MQTT PUBACK/PUBCOMP, an HTTP 2xx, a completed FTP rename) or failed() (the server
 *    did not take it; the readings stay and are sent again), except when keeps_unconfirmed
 *    is false and a disconnected() event comes first: then every unconfirmed message is
 *    forgotten by the uplink and the forwarder sends its readings again.
 *  - failed() carries retry_after_ms: the forwarder sends nothing for at least that long
 *    (its own back-off doubles while failures go on, until a delivered() ends the
 *    episode). An uplink asks for the slowest back-off (30000) when the server refuses
 *    what we send, and for the server's Retry-After when it gives one.
 *  - Events may come from any thread; they must be quick (the forwarder only records them).
 *
 * Ownership: whoever creates an uplink frees it (after the forwarder that uses it is
 * stopped); the forwarder only borrows it.
 */
#ifndef MODBRIDGE_UPLINK_H
#define MODBRIDGE_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uplink_events {
	void (*connected)(void *ctx);
	void (*disconnected)(void *ctx);
	void (*delivered)(void *ctx, int token);
	/* The server refused or lost this message; retry_after_ms (>= 0) asks for a pause. */
	void (*failed)(void *ctx, int token, int retry_after_ms);
};

/* One message: a reading's JSON, or a JSON array of count readings (array mode). */
struct uplink_message {
	const char *payload;
	size_t len;
	size_t count;
	/* The first reading's store id (0 when it was sent from memory) and time: what an
	 * uplink needs to name a file the same way when it is sent again after a crash. */
	int64_t first_id;
	int64_t first_ts_ms;
};

struct uplink_ops {
	void (*bind)(void *impl, const struct uplink_events *ev, void *ctx);
	int (*start)(void *impl);
	int (*send)(void *impl, const struct uplink_message *msg, int *token);
	/* Disconnects and stops reporting events. */
	void (*stop)(void *impl);
};

struct uplink {
	const struct uplink_ops *ops;
	void *impl;
	/* Where the readings go, for the log ("MQTT topic 'x/logger' at QoS 1"). */
	const char *description;
	/* True when messages in flight at a disconnection are still confirmed after the
	 * reconnection (MQTT QoS 1/2: the session resends them); false when they are lost
	 * with the connection (MQTT QoS 0). */
	bool keeps_unconfirmed;
};

#endif
