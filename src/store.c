/*
 * store.c - SQLite queue of readings; see store.h.
 *
 * Durability: the database runs in WAL mode with synchronous=FULL. In WAL mode,
 * synchronous=NORMAL already survives a crash of the process (kill -9), but may lose the
 * last commits on power loss or a kernel crash; FULL fsyncs the WAL at every commit, so a
 * reading that store_put() reported as stored survives pulling the plug, which is exactly
 * what an edge box on a DIN rail meets. The cost is one fsync per commit; callers batch
 * deletes to keep the number of commits low.
 *
 * Schema version 1:
 *   meta(key TEXT PRIMARY KEY, value INTEGER)  -- schema_version, sent, dropped
 *   queue(id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms, device, payload)
 * AUTOINCREMENT keeps ids from being reused after deletes, so id order is insertion
 * order for the lifetime of the file (FIFO/LIFO rely on it).
 */
#include "store.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "log.h"

#define STORE_SCHEMA_VERSION 1

struct store {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock;
	sqlite3_stmt *insert;
	sqlite3_stmt *fetch_fifo;
	sqlite3_stmt *fetch_lifo;
	sqlite3_stmt *remove;
	sqlite3_stmt *add_counter;
};

static int fail_sql(struct store *s, const char *what)
{
	log_error("store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
	return MB_ERR_STORE;
}

static int exec_sql(struct store *s, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("store %s: %s: %s", s->path, sql, msg ? msg : "?");
		sqlite3_free(msg);
		return MB_ERR_STORE;
	}
	return 0;
}

static int make_parent_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return MB_ERR_NOMEM;
	char *dir = dirname(copy);
	int rc = 0;
	struct stat st;
	if (stat(dir, &st) != 0) {
		if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
			log_error("store %s: cannot create directory %s: %s", path, dir, strerror(errno));
			rc = MB_ERR_STORE;
		}
	}
	free(copy);
	return rc;
}

static int migrate(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int version = 0;
	if (exec_sql(s, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"))
		return MB_ERR_STORE;
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
			       NULL) != SQLITE_OK)
		return fail_sql(s, "read schema version");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);

	if (version > STORE_SCHEMA_VERSION) {
		log_error("store %s: schema version %d is newer than this modbridge supports (%d)",
			  s->path, version, STORE_SCHEMA_VERSION);
		return MB_ERR_STORE;
	}
	if (version < 1) {
		if (exec_sql(s, "BEGIN IMMEDIATE") ||
		    exec_sql(s, "CREATE TABLE IF NOT EXISTS queue("
				"id INTEGER PRIMARY KEY AUTOINCREMENT,"
				"ts_ms INTEGER NOT NULL,"
				"device TEXT NOT NULL,"
				"payload TEXT NOT NULL)") ||
		    exec_sql(s, "INSERT OR IGNORE INTO meta VALUES('sent',0),('dropped',0)") ||
		    exec_sql(s, "INSERT OR REPLACE INTO meta VALUES('schema_version',1)") ||
		    exec_sql(s, "COMMIT")) {
			exec_sql(s, "ROLLBACK");
			return MB_ERR_STORE;
		}
	}
	return 0;
}

int store_open(const char *path, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return MB_ERR_NOMEM;
	s->path = strdup(path);
	pthread_mutex_init(&s->lock, NULL);
	if (!s->path)
		goto fail;
	if (make_parent_dir(path))
		goto fail;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		log_error("store %s: cannot open: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL: readers (modbridge queue) never block the daemon; see the durability note above. */
	if (exec_sql(s, "PRAGMA journal_mode=WAL") || exec_sql(s, "PRAGMA synchronous=FULL") ||
	    migrate(s))
		goto fail;
	if (sqlite3_prepare_v2(s->db, "INSERT INTO queue(ts_ms, device, payload) VALUES(?,?,?)", -1,
			       &s->insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT id, ts_ms, payload FROM queue ORDER BY id ASC LIMIT ?",
			       -1, &s->fetch_fifo, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT id, ts_ms, payload FROM queue ORDER BY id DESC LIMIT ?",
			       -1, &s->fetch_lifo, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM queue WHERE id=?", -1, &s->remove, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE meta SET value=value+? WHERE key=?", -1, &s->add_counter,
			       NULL) != SQLITE_OK) {
		fail_sql(s, "prepare statements");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	store_close(s);
	return MB_ERR_STORE;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->fetch_fifo);
	sqlite3_finalize(s->fetch_lifo);
	sqlite3_finalize(s->remove);
	sqlite3_finalize(s->add_counter);
	if (s->db)
		sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

int store_put(struct store *s, int64_t ts_ms, const char *device_id, const char *payload,
	      size_t len, int64_t *id)
{
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	sqlite3_reset(s->insert);
	sqlite3_bind_int64(s->insert, 1, ts_ms);
	sqlite3_bind_text(s->insert, 2, device_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->insert, 3, payload, (int)len, SQLITE_STATIC);
	if (sqlite3_step(s->insert) != SQLITE_DONE)
		rc = fail_sql(s, "store reading");
	else if (id)
		*id = sqlite3_last_insert_rowid(s->db);
	sqlite3_reset(s->insert);
	sqlite3_clear_bindings(s->insert);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static bool in_list(int64_t id, const int64_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == id)
			return true;
	return false;
}

int store_fetch(struct store *s, enum send_mode mode, const int64_t *skip, size_t nskip,
		size_t max, struct store_item *items, size_t *n)
{
	int rc = 0, step;
	size_t filled = 0;
	sqlite3_stmt *st = mode == SEND_LIFO ? s->fetch_lifo : s->fetch_fifo;

	pthread_mutex_lock(&s->lock);
	sqlite3_reset(st);
	/* In-flight readings are still in the table; ask for enough rows to skip them. */
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(max + nskip));
	while (filled < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (in_list(id, skip, nskip))
			continue;
		const unsigned char *text = sqlite3_column_text(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		char *copy = malloc(len + 1);
		if (!copy) {
			rc = MB_ERR_NOMEM;
			break;
		}
		memcpy(copy, text, len);
		copy[len] = '\0';
		items[filled].id = id;
		items[filled].ts_ms = sqlite3_column_int64(st, 1);
		items[filled].payload = copy;
		items[filled].len = len;
		filled++;
	}
	if (rc == 0 && filled < max && step != SQLITE_DONE)
		rc = fail_sql(s, "read queue");
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		store_items_clear(items, filled);
		return rc;
	}
	*n = filled;
	return 0;
}

void store_items_clear(struct store_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].payload);
		items[i].payload = NULL;
	}
}

int store_delete(struct store *s, const int64_t *ids, size_t n)
{
	int rc = 0;
	int64_t removed = 0;
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (exec_sql(s, "BEGIN IMMEDIATE")) {
		pthread_mutex_unlock(&s->lock);
		return MB_ERR_STORE;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		sqlite3_reset(s->remove);
		sqlite3_bind_int64(s->remove, 1, ids[i]);
		if (sqlite3_step(s->remove) != SQLITE_DONE)
			rc = fail_sql(s, "delete sent reading");
		else
			removed += sqlite3_changes(s->db);
	}
	sqlite3_reset(s->remove);
	if (rc == 0) {
		sqlite3_reset(s->add_counter);
		sqlite3_bind_int64(s->add_counter, 1, removed);
		sqlite3_bind_text(s->add_counter, 2, "sent", -1, SQLITE_STATIC);
		if (sqlite3_step(s->add_counter) != SQLITE_DONE)
			rc = fail_sql(s, "count sent readings");
		sqlite3_reset(s->add_counter);
	}
	if (rc == 0 && exec_sql(s, "COMMIT"))
		rc = MB_ERR_STORE;
	if (rc)
		exec_sql(s, "ROLLBACK");
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int64_t query_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t file_size(const char *path, const char *suffix)
{
	char name[4096];
	struct stat st;
	snprintf(name, sizeof(name), "%s%s", path, suffix);
	return stat(name, &st) == 0 ? (int64_t)st.st_size : 0;
}

int store_stats(struct store *s, struct store_stats *st)
{
	pthread_mutex_lock(&s->lock);
	st->count = query_int(s, "SELECT count(*) FROM queue");
	st->oldest_ts_ms = query_int(s, "SELECT ts_ms FROM queue ORDER BY id ASC LIMIT 1");
	st->newest_ts_ms = query_int(s, "SELECT ts_ms FROM queue ORDER BY id DESC LIMIT 1");
	st->sent = query_int(s, "SELECT value FROM meta WHERE key='sent'");
	st->dropped = query_int(s, "SELECT value FROM meta WHERE key='dropped'");
	st->size_bytes = file_size(s->path, "") + file_size(s->path, "-wal");
	pthread_mutex_unlock(&s->lock);
	return 0;
}
