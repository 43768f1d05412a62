/*
 * ingest.h - the path from bus workers into the store: group commit, and a memory fallback
 * that the forwarder can send from.
 *
 * Bus workers hand each encoded reading to ingest_push(), which only appends it to a
 * bounded in-memory list and wakes the writer thread. The writer commits everything that
 * is pending in ONE store transaction (so a burst of readings from many devices costs one
 * fsync, not one each) and then notifies the forwarder.
 *
 * When the store cannot take writes (disk full, read-only file system, a damaged file)
 * readings stay in memory, the problem is logged once per episode, and the writer retries
 * with back-off; a damaged file is moved aside and a fresh store started. Meanwhile the
 * forwarder may claim readings from memory and send them directly (ingest_claim): a
 * reading that cannot be made durable is at least delivered. A claimed reading belongs to
 * the forwarder until it gives it back (ingest_unclaim: not delivered, store it after all)
 * or reports it delivered (ingest_delivered: counted as sent, never stored). So a reading
 * is either stored or sent from memory, never both. If the memory list fills meanwhile,
 * the policy (drop oldest or newest) applies, each drop is counted (in the store's
 * "dropped" counter as soon as it is writable again) and logged once per episode.
 *
 * Threading: ingest_push() from any thread; the claim functions from the forwarder; one
 * writer thread. The notify callback never runs with the ingest's lock held.
 * Ownership: ingest_push takes the payload (malloc'd) in all cases; the ingest borrows the
 * store and must be stopped before it is closed.
 */
#ifndef MODBRIDGE_INGEST_H
#define MODBRIDGE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct ingest;

/* A reading waiting in memory. Fields are read-only to a claimant, except that it may
 * follow `next` through a claimed list (NULL-terminated, in send order). */
struct ingest_reading {
	struct ingest_reading *next, *prev;
	uint64_t seq; /* arrival order */
	int64_t ts_ms;
	char *device;
	char *payload; /* NUL-terminated JSON (or a script's text) */
	size_t len;
	char *topic; /* its own destination (a transformer script chose it), NULL: the logger's */
};

/* What the writer needs from the store (a seam: unit tests inject failures here). Each
 * function returns 0 or a classified mb_error as store.h describes. */
struct ingest_store {
	int (*put_batch)(void *ctx, const struct store_record *records, size_t n, int64_t *dropped);
	int (*add_counts)(void *ctx, int64_t sent, int64_t dropped);
	int (*recover)(void *ctx); /* after MB_ERR_CORRUPT: move the file aside, start afresh */
	const char *name;          /* for messages: the store's path */
	void *ctx;
	/* Readings a transformer script dropped; NULL: not counted. */
	int (*add_filtered)(void *ctx, int64_t filtered);
};

/* The ingest_store of an open store (borrowed). */
struct ingest_store ingest_store_of(struct store *s);

struct ingest_options {
	size_t memory_max_messages; /* bound of the in-memory list */
	size_t memory_max_bytes;
	enum store_full_policy policy; /* applied when the list is full */
	/* Readings are ready for the forwarder: committed to the store, or waiting in memory
	 * while the store fails. Called from the writer or from ingest_push's caller. */
	void (*notify)(void *ctx);
	void *ctx;
};

/* Creates the ingest for st (copied; what it points to must outlive the ingest). Readings
 * pushed before ingest_start wait in memory. Returns 0 or MB_ERR_NOMEM. */
int ingest_new(const struct ingest_store *st, const struct ingest_options *opt,
	       struct ingest **out);

/* Starts the writer thread. Returns 0 or MB_ERR_NOMEM. */
int ingest_start(struct ingest *in);

/* When the writer thread last showed a sign of life (CLOCK_MONOTONIC ms; liveness.h): it
 * beats at least every second while it waits, and after every store write. Any thread. */
int64_t ingest_last_beat_ms(struct ingest *in);

/* Queues one reading; takes ownership of payload (malloc'd, len bytes + NUL). */
void ingest_push(struct ingest *in, int64_t ts_ms, const char *device_id, char *payload,
		 size_t len);

/* ingest_push for a message with its own destination; takes topic too (malloc'd or NULL). */
void ingest_push_to(struct ingest *in, int64_t ts_ms, const char *device_id, char *topic,
		    char *payload, size_t len);

/* Counts n readings the transformer script dropped (stored with the next commit). */
void ingest_count_filtered(struct ingest *in, int64_t n);

/* True while the store cannot take readings (from the last failed write until the next
 * successful one). */
bool ingest_store_failing(struct ingest *in);

/* True when readings wait in memory because the store cannot take them. */
bool ingest_claimable(struct ingest *in);

/*
 * Takes up to max readings that wait in memory because the store cannot take them, in
 * send order (the oldest first for FIFO, the newest first for LIFO), and writes their
 * number to *n. Returns NULL (and *n = 0) when the store is writable: the writer will
 * store them, and the forwarder sends them from there.
 */
struct ingest_reading *ingest_claim(struct ingest *in, enum send_mode mode, size_t max, size_t *n);

/* Gives claimed readings back (not delivered): they rejoin the list in arrival order. */
void ingest_unclaim(struct ingest *in, struct ingest_reading *list);

/* Claimed readings were delivered: frees them and counts them as sent. */
void ingest_delivered(struct ingest *in, struct ingest_reading *list);

/*
 * Stops the writer after a last attempt to store what is pending (up to timeout_ms when
 * the store keeps failing), then frees. Readings that could not be stored are logged as
 * lost with their count. Claimed readings must have been given back or delivered first.
 * Also frees an ingest that was never started. Accepts NULL.
 */
void ingest_stop(struct ingest *in, int timeout_ms);

#endif
