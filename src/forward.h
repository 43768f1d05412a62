/*
 * forward.h - the forwarder: moves readings from the store to the uplink.
 *
 * It keeps a window of messages in flight (logger.inflight_window), sends in FIFO or LIFO
 * order, one reading per message or a JSON array of several (array mode), and removes a
 * reading from the store only once the uplink reports it delivered. While the uplink is
 * down, readings simply stay in the store; after it comes back, the backlog drains.
 *
 * Guarantees (docs/logger.md):
 *  - at most `window` messages are in flight, whatever array mode cuts;
 *  - a reading the server confirmed is never sent again by this process, even when its
 *    removal from the store fails: such readings are remembered (as id ranges, see
 *    idset.h) and their removal retried with back-off, logged once per episode;
 *  - while the store cannot be written, readings waiting in memory (ingest.h) are sent
 *    from memory, before the stored backlog, because they are the ones a crash would lose;
 *  - every failure (fetch, send, removal) is retried with back-off, never in a tight loop.
 *
 * Threading: one forwarder thread does all the work. Uplink events (any thread) and
 * forwarder_notify (any thread) only record and wake it.
 * Ownership: the forwarder borrows the queue, the ingest and the uplink; they must outlive
 * it, and the uplink must be stopped (no more events) before forwarder_free.
 * Errors: functions return 0 or a negative mb_error.
 */
#ifndef MODBRIDGE_FORWARD_H
#define MODBRIDGE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "idset.h"
#include "ingest.h"
#include "store.h"
#include "uplink.h"
#include "uplink_stats.h"

struct forwarder;

struct forward_options {
	int window; /* messages in flight, >= 1 */
	enum send_mode send_mode;
	bool array;             /* several readings per message */
	int array_max_count;    /* readings per array, >= 1 */
	size_t array_max_bytes; /* bytes per array payload (one reading may exceed it) */
	/* Counts each confirmed message and its readings (`queue`, AT+MBSTATUS); the
	 * uplinks record their errors there. NULL: none. Borrowed. */
	struct uplink_stats *stats;
};

/* The durable queue the forwarder sends from (a seam: unit tests inject failures here).
 * fetch and remove behave as store_fetch and store_delete_ranges. */
struct forward_queue {
	int (*fetch)(void *ctx, enum send_mode mode, const struct id_range *skip, size_t nskip,
		     size_t max, struct store_item *items, size_t *n);
	int (*remove)(void *ctx, const struct id_range *ranges, size_t n);
	const char *name; /* for messages: the store's path */
	void *ctx;
};

/* The forward_queue of an open store (borrowed). */
struct forward_queue forward_queue_of(struct store *s);

/*
 * Creates the forwarder and binds it to the uplink's events (before the uplink starts).
 * memory may be NULL (nothing is ever sent from memory). Returns 0 or MB_ERR_NOMEM.
 */
int forwarder_new(const struct forward_options *opt, const struct forward_queue *queue,
		  struct ingest *memory, struct uplink *up, struct forwarder **out);

/* Starts the forwarder thread (the uplink is started by its owner). */
int forwarder_start(struct forwarder *fw);

/* Wakes the forwarder: readings are ready (stored, or in memory). Safe from any thread. */
void forwarder_notify(struct forwarder *fw);

/*
 * Stops sending from the store, goes on sending readings that only exist in memory, and
 * waits up to flush_ms for the messages in flight to be confirmed (so they are not sent
 * twice after a restart); then joins. Stored readings not yet confirmed stay in the store;
 * memory readings not confirmed are given back to the ingest. Accepts NULL.
 */
void forwarder_stop(struct forwarder *fw, int flush_ms);

/* Frees a stopped forwarder. Accepts NULL. */
void forwarder_free(struct forwarder *fw);

#endif
