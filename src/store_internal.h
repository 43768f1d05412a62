/*
 * store_internal.h - what the store's files share (store.c: the queue; store_inspect.c: the
 * read-only look of `modbridge queue`). Nothing outside the store module includes it.
 */
#ifndef MODBRIDGE_STORE_INTERNAL_H
#define MODBRIDGE_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "store.h"

struct store {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock;
	sqlite3_stmt *insert;
	sqlite3_stmt *fetch_fifo;
	sqlite3_stmt *fetch_lifo;
	sqlite3_stmt *remove;
	sqlite3_stmt *add_counter;
	sqlite3_stmt *oldest;
	struct store_limits limits;
	/* Changed under lock; atomic so that store_backlog can read them without it. */
	_Atomic int64_t count; /* rows in queue */
	_Atomic int64_t bytes; /* sum of payload lengths */
	/* The last failure, kept for store_open's message (the handle is closed by then). */
	int failed_errno;
	char failed[256];
	/* The highest id this process has seen; a fresh file after a recovery starts above it,
	 * so an id the forwarder still holds from the damaged file never names a new reading. */
	int64_t max_id;
};

#define STORE_SCHEMA_VERSION 2

/* Size of the file path+suffix in bytes, 0 when it does not exist. */
int64_t store_file_size(const char *path, const char *suffix);

/* Maps an SQLite result code to an mb_error (MB_ERR_DISK_FULL, MB_ERR_READONLY, ...). */
int store_classify(int sqlite_rc);

#endif
