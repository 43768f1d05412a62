/*
 * forward.h - the forwarder: moves readings from the store to the MQTT broker.
 *
 * It keeps a window of messages in flight (logger.inflight_window), publishes in FIFO or
 * LIFO order, and deletes a reading from the store only when its message is delivered
 * (PUBACK/PUBCOMP for QoS 1/2; written to the socket for QoS 0). While the broker is away
 * readings simply stay in the store; after reconnecting the backlog drains.
 *
 * Threading: one forwarder thread; the MQTT network thread only records delivery
 * confirmations and wakes it; bus workers call forwarder_notify() after each stored
 * reading. Ownership: the forwarder borrows cfg and store, which must outlive it.
 */
#ifndef MODBRIDGE_FORWARD_H
#define MODBRIDGE_FORWARD_H

#include "config.h"
#include "store.h"

struct forwarder;
struct mqtt_link;

/* Creates the forwarder and its MQTT link (TLS files are checked here). */
int forwarder_new(const struct config *cfg, struct store *store, struct forwarder **out);

/* The forwarder's MQTT link, for the remote commands that share the connection (they
 * subscribe before forwarder_start). Valid until forwarder_free. */
struct mqtt_link *forwarder_link(struct forwarder *fw);

/* Starts the MQTT link and the forwarder thread. */
int forwarder_start(struct forwarder *fw);

/* Wakes the forwarder: a new reading is in the store. Safe from any thread. */
void forwarder_notify(struct forwarder *fw);

/*
 * Stops publishing new messages, waits up to flush_ms for the messages in flight to be
 * confirmed (so they are not sent twice after a restart), then disconnects and joins.
 * Readings not yet confirmed stay in the store.
 */
void forwarder_stop(struct forwarder *fw, int flush_ms);

/* Frees a stopped forwarder. Accepts NULL. */
void forwarder_free(struct forwarder *fw);

#endif
