/*
 * ingest.h - the path from bus workers into the store: group commit and fallback.
 *
 * Bus workers hand each encoded reading to ingest_push(), which only appends it to a
 * bounded in-memory list and wakes the writer thread. The writer commits everything that
 * is pending in ONE store transaction (so a burst of readings from many devices costs one
 * fsync, not one each) and then tells the forwarder. When the store cannot take writes
 * (disk full, read-only file system, a damaged file) readings stay in memory, the problem
 * is logged once per episode, and the writer retries with back-off; a damaged file is
 * moved aside and a fresh store started. If the memory list fills meanwhile, the policy
 * (drop oldest or newest) applies and every drop is logged once per episode and counted
 * in the store's "dropped" counter as soon as the store is writable again.
 *
 * Threading: ingest_push() from any thread; one writer thread. Ownership: ingest_push
 * takes the payload (malloc'd) in all cases.
 */
#ifndef MODBRIDGE_INGEST_H
#define MODBRIDGE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct ingest;

struct ingest_options {
	size_t memory_max_messages; /* bound of the in-memory list */
	size_t memory_max_bytes;
	enum store_full_policy policy; /* applied when the list is full */
	void (*committed)(void *ctx);  /* called (writer thread) after readings are stored */
	void *ctx;
};

/* Starts the writer thread for store s (borrowed; must outlive the ingest). */
int ingest_start(struct store *s, const struct ingest_options *opt, struct ingest **out);

/* Queues one reading; takes ownership of payload (malloc'd, len bytes + NUL). */
void ingest_push(struct ingest *in, int64_t ts_ms, const char *device_id, char *payload,
		 size_t len);

/* Readings waiting in memory (not yet in the store). */
size_t ingest_pending(struct ingest *in);

/*
 * Stops the writer after a last attempt to store what is pending (up to timeout_ms when
 * the store keeps failing), then frees. Readings that could not be stored are logged as
 * lost with their count. Accepts NULL.
 */
void ingest_stop(struct ingest *in, int timeout_ms);

#endif
