/*
 * store.h - the crash-safe reading queue (SQLite, WAL mode).
 *
 * Every reading is committed here before anything tries to send it, and it is removed
 * only when the forwarder says it was delivered (broker acknowledgement for QoS 1/2, or
 * written to the socket for QoS 0). The queue can be bounded in messages and bytes; when
 * it is full, the configured policy drops the oldest or the newest readings, and every
 * drop is counted in the file. This is the only module that includes <sqlite3.h>.
 *
 * Thread-safety: all functions may be called from any thread; one mutex serializes them.
 * Ownership: store_fetch fills caller-provided items whose payloads the caller frees with
 * store_items_clear. Errors are classified (MB_ERR_DISK_FULL, MB_ERR_READONLY,
 * MB_ERR_CORRUPT, MB_ERR_STORE) so the caller can decide how to recover.
 */
#ifndef MODBRIDGE_STORE_H
#define MODBRIDGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_logger.h"
#include "idset.h"

struct store;

struct store_item {
	int64_t id;    /* increases with insertion order; never reused */
	int64_t ts_ms; /* reading time */
	char *payload; /* NUL-terminated JSON (or a script's text) */
	size_t len;
	char *topic; /* the message's own destination (a script chose it), NULL: the logger's */
};

/* One reading to append (borrowed by store_put_batch). */
struct store_record {
	int64_t ts_ms;
	const char *device;
	const char *payload;
	size_t len;
	const char *topic; /* NULL: the logger's destination */
};

struct store_limits {
	int64_t max_messages; /* 0: unlimited */
	int64_t max_bytes;    /* payload bytes; 0: unlimited */
	enum store_full_policy policy;
};

struct store_stats {
	int64_t count;         /* readings waiting to be sent */
	int64_t payload_bytes; /* their JSON bytes */
	int64_t oldest_ts_ms;  /* 0 when empty */
	int64_t newest_ts_ms;
	int64_t sent;       /* readings delivered since the store was created */
	int64_t dropped;    /* readings dropped since the store was created */
	int64_t filtered;   /* readings the transformer script dropped (returned nil) */
	int64_t size_bytes; /* database + WAL size on disk */
};

/*
 * Opens (creating if needed, with its missing parent directories) the store at path, checks it
 * (PRAGMA quick_check) and migrates its schema. A damaged file is moved aside to
 * "<path>.corrupt-<time>" (never deleted) and a fresh store is started, with an error
 * logged. Returns 0, or a classified error (the reason is logged: what failed, on which
 * path, the OS's reason and what to do). It does not lock the store against a second
 * daemon: `modbridge run` holds the lock (lockfile.h).
 */
int store_open(const char *path, struct store **out);

/* Sets the bounds applied by later store_put_batch calls (default: unlimited). */
void store_set_limits(struct store *s, const struct store_limits *limits);

/* Closes the store. Accepts NULL. */
void store_close(struct store *s);

/*
 * Appends n readings in one durable transaction (synchronous=FULL: they survive a power
 * cut once this returns 0), then applies the limits; *dropped (if not NULL) receives how
 * many readings the policy dropped in this call (old rows deleted, or new ones refused).
 * On failure nothing of the batch is stored; returns a classified error.
 */
int store_put_batch(struct store *s, const struct store_record *records, size_t n,
		    int64_t *dropped);

/* store_put_batch for one reading; writes its id to *id if id != NULL and it was stored. */
int store_put(struct store *s, int64_t ts_ms, const char *device_id, const char *payload,
	      size_t len, int64_t *id);

/*
 * Fills items[0..max) with the next readings to send in send order (oldest first for FIFO,
 * newest first for LIFO), leaving out the ids in the sorted, disjoint ranges skip[0..nskip)
 * (in flight, or delivered and waiting to be removed). Writes the number filled to *n.
 * Returns 0 or an error (then nothing is filled).
 */
int store_fetch(struct store *s, enum send_mode mode, const struct id_range *skip, size_t nskip,
		size_t max, struct store_item *items, size_t *n);

/* Frees the payloads (and topics) of n items. */
void store_items_clear(struct store_item *items, size_t n);

/* Removes delivered readings (one transaction) and counts them as sent. Ids that are no
 * longer there (dropped meanwhile, or confirmed twice) are ignored. */
int store_delete(struct store *s, const int64_t *ids, size_t n);

/* store_delete for the ids of sorted, disjoint ranges (one transaction; missing ids are
 * ignored). */
int store_delete_ranges(struct store *s, const struct id_range *ranges, size_t n);

/* Adds to the sent counter: readings delivered from memory without being stored. */
int store_count_sent(struct store *s, int64_t n);

/* Adds to the dropped counter: readings lost before they could be stored. */
int store_count_dropped(struct store *s, int64_t n);

/* Adds to the filtered counter: readings the transformer script chose not to send. */
int store_count_filtered(struct store *s, int64_t n);

/*
 * Recovers from MB_ERR_CORRUPT at run time: closes the database, moves the damaged file
 * aside (never deletes it) and starts a fresh store at the same path. Returns 0 or an error.
 */
int store_recover(struct store *s);

/*
 * Reads the figures of the store at path without writing anything (`modbridge queue`):
 * it never creates, moves, repairs or initialises a file, and leaves no -wal/-shm file
 * behind. It works beside a running daemon (as a WAL reader, never blocking it) and,
 * when no daemon runs, in a directory the caller cannot write. Checks the file as
 * store_open does (PRAGMA quick_check). Returns 0 with *st filled (zeros for a store that
 * was created but not initialised yet); MB_ERR_NOTFOUND when there is no such file,
 * MB_ERR_CORRUPT when it is damaged (store_open would move it aside), or another error
 * when it cannot be read. why receives one line naming the store and the reason.
 * Thread-safe (it uses its own connection). Logs nothing above debug level.
 */
int store_inspect(const char *path, struct store_stats *st, char *why, size_t len);

/*
 * Creates the missing directories of the store's path (like mkdir -p, mode 0750), as
 * store_open does; for the daemon, which locks the store (lockfile.h) before opening it.
 * Returns 0 or an error; the failure is logged with the directory and the OS's reason.
 */
int store_make_parent_dirs(const char *path);

/* What to do about an OS error met on the store's path (EACCES, EROFS, ENOTDIR,
 * ENOSPC...), for messages; NULL when there is no advice. */
const char *store_os_hint(int os_errno);

/* The backlog (readings waiting, their JSON bytes), without taking the store's lock: for the
 * status line and metrics, which must not wait behind a slow write. Any thread. */
void store_backlog(struct store *s, int64_t *count, int64_t *bytes);

/* Current figures for `modbridge queue` and the status command. */
int store_stats(struct store *s, struct store_stats *st);

/* The store's path (for messages). */
const char *store_path(const struct store *s);

#endif
