/*
 * store.h - the crash-safe reading queue (SQLite, WAL mode).
 *
 * Every reading is committed here before anything tries to send it, and it is removed
 * only when the forwarder says it was delivered (broker acknowledgement for QoS 1/2, or
 * written to the socket for QoS 0). This is the only module that includes <sqlite3.h>.
 *
 * Thread-safety: all functions may be called from any thread; one mutex serializes them.
 * Ownership: store_fetch fills caller-provided items whose payloads the caller frees with
 * store_items_clear.
 */
#ifndef MODBRIDGE_STORE_H
#define MODBRIDGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct store;

struct store_item {
	int64_t id;      /* increases with insertion order; never reused */
	int64_t ts_ms;   /* reading time */
	char *payload;   /* NUL-terminated JSON */
	size_t len;
};

struct store_stats {
	int64_t count;          /* readings waiting to be sent */
	int64_t oldest_ts_ms;   /* 0 when empty */
	int64_t newest_ts_ms;
	int64_t sent;           /* readings delivered since the store was created */
	int64_t dropped;        /* readings dropped since the store was created */
	int64_t size_bytes;     /* database + WAL size on disk */
};

/*
 * Opens (creating if needed, with its parent directory) the store at path, and migrates
 * its schema. Returns 0 or MB_ERR_STORE (the reason is logged).
 */
int store_open(const char *path, struct store **out);

/* Closes the store (checkpointing the WAL). Accepts NULL. */
void store_close(struct store *s);

/* Appends one reading and commits it durably. On success writes its id to *id if id != NULL. */
int store_put(struct store *s, int64_t ts_ms, const char *device_id, const char *payload,
	      size_t len, int64_t *id);

/*
 * Fills items[0..max) with the next readings to send in send order (oldest first for FIFO,
 * newest first for LIFO), leaving out the ids in skip (those in flight). Writes the number
 * filled to *n. Returns 0 or MB_ERR_STORE / MB_ERR_NOMEM.
 */
int store_fetch(struct store *s, enum send_mode mode, const int64_t *skip, size_t nskip,
		size_t max, struct store_item *items, size_t *n);

/* Frees the payloads of n items. */
void store_items_clear(struct store_item *items, size_t n);

/* Removes delivered readings (one transaction) and counts them as sent. */
int store_delete(struct store *s, const int64_t *ids, size_t n);

/* Current figures for `modbridge queue` and the status command. */
int store_stats(struct store *s, struct store_stats *st);

#endif
