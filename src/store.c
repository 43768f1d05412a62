/*
 * store.c - SQLite queue of readings; see store.h.
 *
 * Durability: the database runs in WAL mode. Inserts commit with synchronous=FULL, which
 * fsyncs the WAL at every commit: a reading that store_put_batch() reported as stored
 * survives pulling the plug, which is exactly what an edge box on a DIN rail meets.
 * (synchronous=NORMAL would survive kill -9 but may lose the last commits on power loss.)
 * Deletes of delivered readings commit with synchronous=NORMAL: losing one to a power cut
 * only means that reading is sent again (at-least-once), and it saves an fsync per
 * confirmation batch; the next FULL commit makes them durable too. Callers batch inserts
 * (one transaction per group of readings) to keep the number of fsyncs low.
 *
 * Schema version 2:
 *   meta(key TEXT PRIMARY KEY, value INTEGER)  -- schema_version, sent, dropped, filtered
 *   queue(id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms, device, payload, topic)
 * Version 2 added queue.topic (a message's own destination, chosen by a transformer
 * script; NULL: the logger's) and the filtered counter. A version 1 file is migrated at
 * open (one ALTER TABLE: its rows keep NULL); a modbridge that only knows version 1
 * refuses a version 2 file rather than drop the destinations.
 * AUTOINCREMENT keeps ids from being reused after deletes, so id order is insertion
 * order for the lifetime of the file (FIFO/LIFO rely on it).
 *
 * The queue's length and payload bytes are kept in memory (loaded at open, updated by
 * every change) so the limits cost nothing per insert.
 */

#include "store.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "idset.h"
#include "log.h"
#include "store_internal.h"

/* Maps an SQLite result code to our classification. */
int store_classify(int sqlite_rc)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_FULL: return MB_ERR_DISK_FULL;
	case SQLITE_READONLY: return MB_ERR_READONLY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return MB_ERR_CORRUPT;
	case SQLITE_NOMEM: return MB_ERR_NOMEM;
	/* SQLITE_IOERR and the rest: fail_sql() asks the OS, which knows a full disk better. */
	default: return MB_ERR_STORE;
	}
}

/* Logs at debug level: callers log the failure once per episode with their context. */
static int fail_sql(struct store *s, const char *what, int sqlite_rc)
{
	int err = sqlite3_system_errno(s->db);
	int rc = store_classify(sqlite_rc);
	if (rc == MB_ERR_STORE && (err == ENOSPC || err == EDQUOT))
		rc = MB_ERR_DISK_FULL;
	else if (rc == MB_ERR_STORE && err == EROFS)
		rc = MB_ERR_READONLY;
	log_debug("store %s: %s: %s (%s)", s->path, what, sqlite3_errmsg(s->db),
		  err ? strerror(err) : "-");
	s->failed_errno = err;
	snprintf(s->failed, sizeof(s->failed), "%s", sqlite3_errmsg(s->db));
	return rc;
}

static int exec_sql(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : fail_sql(s, sql, rc);
}

const char *store_os_hint(int os_errno)
{
	switch (os_errno) {
	case EACCES:
	case EPERM:
		return "the user running modbridge must be able to create and write files in the "
		       "store's directory (the store keeps its -wal, -shm and .lock files next to "
		       "it): change the directory's owner or mode, or set logger.store to a "
		       "writable place";
	case EROFS: return "the file system is read-only: set logger.store to a writable place";
	case ENOTDIR: return "a part of the path is a file, not a directory: fix logger.store";
	case EISDIR: return "logger.store names a directory: give the file's name";
	case ENOSPC:
	case EDQUOT: return "the file system is full: free some space";
	default: return NULL;
	}
}

/* Logs what failed, on which path, the OS's reason and, when known, what to do. */
static void log_os_failure(const char *store, const char *what, const char *path, int err)
{
	const char *hint = store_os_hint(err);
	log_error("store %s: %s %s: %s%s%s", store, what, path, strerror(err), hint ? "; " : "",
		  hint ? hint : "");
}

/* mkdir -p of the store's directory (mode 0750 for what it creates). */
static int make_parent_dir(const char *path)
{
	char *dir = strdup(path);
	if (!dir)
		return MB_ERR_NOMEM;
	char *slash = strrchr(dir, '/');
	int rc = 0;
	if (!slash || slash == dir) { /* "store.db" or "/store.db": nothing to create */
		free(dir);
		return 0;
	}
	*slash = '\0';
	/* Each prefix ending before a '/', then the whole directory. */
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		struct stat st;
		*p = '\0';
		int err = 0;
		if (stat(dir, &st) == 0)
			err = S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
		else if (errno != ENOENT || (mkdir(dir, 0750) != 0 && errno != EEXIST))
			err = errno;
		if (err) {
			log_os_failure(path, "cannot create the directory", dir, err);
			rc = err == EROFS ? MB_ERR_READONLY : MB_ERR_STORE;
			if (err == ENOSPC || err == EDQUOT)
				rc = MB_ERR_DISK_FULL;
			break;
		}
		*p = c;
		if (!c)
			break;
	}
	free(dir);
	return rc;
}

int store_make_parent_dirs(const char *path)
{
	return make_parent_dir(path);
}

static int64_t query_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int migrate(struct store *s)
{
	int rc = exec_sql(
		s, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
	if (rc)
		return rc;
	int64_t version = query_int(s, "SELECT value FROM meta WHERE key='schema_version'");
	if (version > STORE_SCHEMA_VERSION) {
		log_error("store %s: schema version %lld is newer than this modbridge supports (%d)",
			  s->path, (long long)version, STORE_SCHEMA_VERSION);
		return MB_ERR_STORE;
	}
	if (version < 1) {
		if ((rc = exec_sql(s, "BEGIN IMMEDIATE")) ||
		    (rc = exec_sql(s, "CREATE TABLE IF NOT EXISTS queue("
				      "id INTEGER PRIMARY KEY AUTOINCREMENT,"
				      "ts_ms INTEGER NOT NULL,"
				      "device TEXT NOT NULL,"
				      "payload TEXT NOT NULL)")) ||
		    (rc = exec_sql(s,
				   "INSERT OR IGNORE INTO meta VALUES('sent',0),('dropped',0)")) ||
		    (rc = exec_sql(s, "INSERT OR REPLACE INTO meta VALUES('schema_version',1)")) ||
		    (rc = exec_sql(s, "COMMIT"))) {
			exec_sql(s, "ROLLBACK");
			return rc;
		}
		version = 1;
	}
	if (version < 2) {
		if ((rc = exec_sql(s, "BEGIN IMMEDIATE")) ||
		    (rc = exec_sql(s, "ALTER TABLE queue ADD COLUMN topic TEXT")) ||
		    (rc = exec_sql(s, "INSERT OR IGNORE INTO meta VALUES('filtered',0)")) ||
		    (rc = exec_sql(s, "INSERT OR REPLACE INTO meta VALUES('schema_version',2)")) ||
		    (rc = exec_sql(s, "COMMIT"))) {
			exec_sql(s, "ROLLBACK");
			return rc;
		}
		log_debug("store %s: schema migrated to version 2 (message destinations)", s->path);
	}
	return 0;
}

static void close_db(struct store *s)
{
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->fetch_fifo);
	sqlite3_finalize(s->fetch_lifo);
	sqlite3_finalize(s->remove);
	sqlite3_finalize(s->add_counter);
	sqlite3_finalize(s->oldest);
	s->insert = s->fetch_fifo = s->fetch_lifo = s->remove = s->add_counter = s->oldest = NULL;
	if (s->db)
		sqlite3_close(s->db);
	s->db = NULL;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
	return rc == SQLITE_OK ? 0 : fail_sql(s, "prepare", rc);
}

/* Opens s->path into s->db and checks it; on failure the handle is closed again. */
static int open_db(struct store *s)
{
	int rc = sqlite3_open_v2(s->path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		rc = s->db ? fail_sql(s, "open", rc) : MB_ERR_NOMEM;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL: readers (modbridge queue) never block the daemon; see the durability note above. */
	if ((rc = exec_sql(s, "PRAGMA journal_mode=WAL")) ||
	    (rc = exec_sql(s, "PRAGMA synchronous=FULL")))
		goto fail;
	/* quick_check reads every page once: affordable at start-up, and it catches a damaged
	 * file before it fails in the middle of a transaction. */
	sqlite3_stmt *check = NULL;
	if ((rc = prepare(s, "PRAGMA quick_check(1)", &check)))
		goto fail;
	int step = sqlite3_step(check);
	const unsigned char *verdict = step == SQLITE_ROW ? sqlite3_column_text(check, 0) : NULL;
	if (step != SQLITE_ROW || !verdict || strcmp((const char *)verdict, "ok") != 0) {
		rc = step == SQLITE_ROW ? MB_ERR_CORRUPT : fail_sql(s, "quick_check", step);
		sqlite3_finalize(check);
		goto fail;
	}
	sqlite3_finalize(check);
	if ((rc = migrate(s)) ||
	    (rc = prepare(s, "INSERT INTO queue(ts_ms, device, payload, topic) VALUES(?,?,?,?)",
			  &s->insert)) ||
	    (rc = prepare(s,
			  "SELECT id, ts_ms, payload, topic FROM queue WHERE id >= ?1 ORDER BY id ASC "
			  "LIMIT ?2",
			  &s->fetch_fifo)) ||
	    (rc = prepare(s,
			  "SELECT id, ts_ms, payload, topic FROM queue WHERE id <= ?1 ORDER BY id DESC "
			  "LIMIT ?2",
			  &s->fetch_lifo)) ||
	    (rc = prepare(s,
			  "DELETE FROM queue WHERE id BETWEEN ?1 AND ?2 RETURNING length(payload)",
			  &s->remove)) ||
	    (rc = prepare(s, "UPDATE meta SET value=value+? WHERE key=?", &s->add_counter)) ||
	    (rc = prepare(s, "SELECT id, length(payload) FROM queue ORDER BY id ASC LIMIT 256",
			  &s->oldest)))
		goto fail;
	int64_t seq = query_int(s, "SELECT seq FROM sqlite_sequence WHERE name='queue'");
	if (seq > s->max_id)
		s->max_id = seq;
	s->count = query_int(s, "SELECT count(*) FROM queue");
	s->bytes = query_int(s, "SELECT coalesce(sum(length(payload)),0) FROM queue");
	return 0;
fail:
	close_db(s);
	return rc;
}

/* Renames the database and its WAL/SHM files to "<path>.corrupt-<UTC time>". */
static int move_aside(struct store *s)
{
	char stamp[32], from[4200], to[4300];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(from, sizeof(from), "%s%s", s->path, suffixes[i]);
		snprintf(to, sizeof(to), "%s.corrupt-%s%s", s->path, stamp, suffixes[i]);
		if (rename(from, to) != 0 && errno != ENOENT) {
			log_error("store %s: cannot move the damaged file aside: %s", s->path,
				  strerror(errno));
			return MB_ERR_STORE;
		}
	}
	log_error("store %s: the database file is damaged; moved it aside to %s.corrupt-%s and "
		  "started a fresh store (the old file is kept for recovery)",
		  s->path, s->path, stamp);
	return 0;
}

/* store_open's one error line: SQLite's words, the OS's reason and what to do. */
static void log_open_failure(const struct store *s, const char *path, int rc)
{
	const char *hint = store_os_hint(s->failed_errno);
	if (!hint && rc == MB_ERR_READONLY)
		hint = "the file or its file system is read-only to this user: fix its owner or "
		       "mode, or set logger.store to a writable place";
	if (!s->failed[0]) /* make_parent_dir or move_aside said it already */
		log_error("store %s: cannot open: %s", path, mb_strerror(rc));
	else
		log_error("store %s: cannot open the database: %s (%s)%s%s", path, s->failed,
			  s->failed_errno ? strerror(s->failed_errno) : mb_strerror(rc),
			  hint ? "; " : "", hint ? hint : "");
}

int store_open(const char *path, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return MB_ERR_NOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->path = strdup(path);
	int rc = s->path ? make_parent_dir(path) : MB_ERR_NOMEM;
	if (rc == 0)
		rc = open_db(s);
	if (rc == MB_ERR_CORRUPT && (rc = move_aside(s)) == 0)
		rc = open_db(s);
	if (rc) {
		log_open_failure(s, path, rc);
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_set_limits(struct store *s, const struct store_limits *limits)
{
	pthread_mutex_lock(&s->lock);
	s->limits = *limits;
	pthread_mutex_unlock(&s->lock);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	close_db(s);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

const char *store_path(const struct store *s)
{
	return s->path;
}

static int add_counter(struct store *s, const char *key, int64_t n)
{
	sqlite3_reset(s->add_counter);
	sqlite3_bind_int64(s->add_counter, 1, n);
	sqlite3_bind_text(s->add_counter, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s->add_counter);
	sqlite3_reset(s->add_counter);
	return rc == SQLITE_DONE ? 0 : fail_sql(s, "update counter", rc);
}

static bool over_limits(const struct store *s, int64_t extra_count, int64_t extra_bytes)
{
	const struct store_limits *l = &s->limits;
	return (l->max_messages > 0 && s->count + extra_count > l->max_messages) ||
	       (l->max_bytes > 0 && s->bytes + extra_bytes > l->max_bytes);
}

/* Inside a transaction: deletes the oldest rows until the queue is within its limits. */
static int drop_oldest(struct store *s, int64_t *dropped)
{
	while (over_limits(s, 0, 0) && s->count > 0) {
		int64_t ids[256], lens[256];
		size_t n = 0;
		int step;
		sqlite3_reset(s->oldest);
		while (n < 256 && sqlite3_step(s->oldest) == SQLITE_ROW) {
			ids[n] = sqlite3_column_int64(s->oldest, 0);
			lens[n] = sqlite3_column_int64(s->oldest, 1);
			n++;
		}
		sqlite3_reset(s->oldest);
		if (n == 0)
			break;
		for (size_t i = 0; i < n && over_limits(s, 0, 0); i++) {
			sqlite3_reset(s->remove);
			sqlite3_bind_int64(s->remove, 1, ids[i]);
			sqlite3_bind_int64(s->remove, 2, ids[i]);
			step = sqlite3_step(s->remove);
			sqlite3_reset(s->remove);
			if (step != SQLITE_ROW && step != SQLITE_DONE)
				return fail_sql(s, "drop oldest reading", step);
			s->count--;
			s->bytes -= lens[i];
			(*dropped)++;
		}
	}
	return 0;
}

int store_put_batch(struct store *s, const struct store_record *records, size_t n, int64_t *dropped)
{
	int64_t count0, bytes0, lost = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	if (!s->db) {
		pthread_mutex_unlock(&s->lock);
		return MB_ERR_STORE;
	}
	count0 = s->count;
	bytes0 = s->bytes;
	if ((rc = exec_sql(s, "BEGIN IMMEDIATE")))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct store_record *r = &records[i];
		if (s->limits.policy == STORE_DROP_NEWEST && over_limits(s, 1, (int64_t)r->len)) {
			lost++;
			continue;
		}
		sqlite3_reset(s->insert);
		sqlite3_bind_int64(s->insert, 1, r->ts_ms);
		sqlite3_bind_text(s->insert, 2, r->device, -1, SQLITE_STATIC);
		sqlite3_bind_text(s->insert, 3, r->payload, (int)r->len, SQLITE_STATIC);
		if (r->topic)
			sqlite3_bind_text(s->insert, 4, r->topic, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s->insert, 4);
		int step = sqlite3_step(s->insert);
		sqlite3_reset(s->insert);
		sqlite3_clear_bindings(s->insert);
		if (step != SQLITE_DONE) {
			rc = fail_sql(s, "store reading", step);
			goto rollback;
		}
		int64_t id = sqlite3_last_insert_rowid(s->db);
		if (id > s->max_id)
			s->max_id = id;
		s->count++;
		s->bytes += (int64_t)r->len;
	}
	if (s->limits.policy == STORE_DROP_OLDEST && (rc = drop_oldest(s, &lost)))
		goto rollback;
	if (lost && (rc = add_counter(s, "dropped", lost)))
		goto rollback;
	if ((rc = exec_sql(s, "COMMIT")))
		goto rollback;
	if (dropped)
		*dropped = lost;
	pthread_mutex_unlock(&s->lock);
	return 0;
rollback:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->count = count0;
	s->bytes = bytes0;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_fetch(struct store *s, enum send_mode mode, const struct id_range *skip, size_t nskip,
		size_t max, struct store_item *items, size_t *n)
{
	int rc = 0, step;
	size_t filled = 0;
	bool lifo = mode == SEND_LIFO;
	/* Next id to look at: the query asks for ids from here on, in send order. */
	int64_t cursor = lifo ? INT64_MAX : INT64_MIN;

	pthread_mutex_lock(&s->lock);
	if (!s->db) {
		pthread_mutex_unlock(&s->lock);
		return MB_ERR_STORE;
	}
	sqlite3_stmt *st = lifo ? s->fetch_lifo : s->fetch_fifo;
	bool more = true;
	while (rc == 0 && more && filled < max) {
		/* One query per stretch between skipped ranges: an in-flight or delivered run
		 * costs one restart, not a row each. */
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, cursor);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(max - filled));
		more = false;
		while (filled < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0);
			const struct id_range *r = idset_ranges_find(skip, nskip, id);
			if (r) {
				if (lifo ? r->lo == INT64_MIN : r->hi == INT64_MAX)
					break;
				cursor = lifo ? r->lo - 1 : r->hi + 1;
				more = true;
				break;
			}
			const unsigned char *text = sqlite3_column_text(st, 2);
			size_t len = (size_t)sqlite3_column_bytes(st, 2);
			char *copy = malloc(len + 1);
			if (!copy) {
				rc = MB_ERR_NOMEM;
				break;
			}
			memcpy(copy, text ? (const char *)text : "", len);
			copy[len] = '\0';
			const unsigned char *topic = sqlite3_column_text(st, 3);
			char *topic_copy = topic ? strdup((const char *)topic) : NULL;
			if (topic && !topic_copy) {
				free(copy);
				rc = MB_ERR_NOMEM;
				break;
			}
			items[filled].topic = topic_copy;
			items[filled].id = id;
			items[filled].ts_ms = sqlite3_column_int64(st, 1);
			items[filled].payload = copy;
			items[filled].len = len;
			filled++;
			cursor = lifo ? id - 1 : id + 1;
		}
		if (rc == 0 && !more && filled < max && step != SQLITE_DONE && step != SQLITE_ROW)
			rc = fail_sql(s, "read queue", step);
	}
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
		free(items[i].topic);
		items[i].payload = NULL;
		items[i].topic = NULL;
	}
}

/*
 * Removes the rows of ranges r[0..nr) and of ids[0..nids) in one transaction and counts
 * them as sent. Called with the lock held.
 */
static int delete_locked(struct store *s, const struct id_range *r, size_t nr, const int64_t *ids,
			 size_t nids)
{
	int rc = 0;
	int64_t removed = 0, removed_bytes = 0;
	if (!s->db)
		return MB_ERR_STORE;
	/* See the durability note at the top: a lost delete only means a resend. */
	exec_sql(s, "PRAGMA synchronous=NORMAL");
	if ((rc = exec_sql(s, "BEGIN IMMEDIATE")))
		goto out;
	for (size_t i = 0; i < nr + nids && rc == 0; i++) {
		sqlite3_reset(s->remove);
		sqlite3_bind_int64(s->remove, 1, i < nr ? r[i].lo : ids[i - nr]);
		sqlite3_bind_int64(s->remove, 2, i < nr ? r[i].hi : ids[i - nr]);
		int step;
		while ((step = sqlite3_step(s->remove)) == SQLITE_ROW) {
			removed++;
			removed_bytes += sqlite3_column_int64(s->remove, 0);
		}
		if (step != SQLITE_DONE)
			rc = fail_sql(s, "delete sent reading", step);
	}
	sqlite3_reset(s->remove);
	if (rc == 0)
		rc = add_counter(s, "sent", removed);
	if (rc == 0)
		rc = exec_sql(s, "COMMIT");
	if (rc) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	} else {
		s->count -= removed;
		s->bytes -= removed_bytes;
	}
out:
	exec_sql(s, "PRAGMA synchronous=FULL");
	return rc;
}

int store_delete(struct store *s, const int64_t *ids, size_t n)
{
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	int rc = delete_locked(s, NULL, 0, ids, n);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_delete_ranges(struct store *s, const struct id_range *ranges, size_t n)
{
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	int rc = delete_locked(s, ranges, n, NULL, 0);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_count_sent(struct store *s, int64_t n)
{
	pthread_mutex_lock(&s->lock);
	int rc = s->db ? add_counter(s, "sent", n) : MB_ERR_STORE;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_count_dropped(struct store *s, int64_t n)
{
	pthread_mutex_lock(&s->lock);
	int rc = s->db ? add_counter(s, "dropped", n) : MB_ERR_STORE;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_count_filtered(struct store *s, int64_t n)
{
	pthread_mutex_lock(&s->lock);
	int rc = s->db ? add_counter(s, "filtered", n) : MB_ERR_STORE;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_recover(struct store *s)
{
	pthread_mutex_lock(&s->lock);
	close_db(s);
	int rc = move_aside(s);
	if (rc == 0)
		rc = open_db(s);
	if (rc == 0 && s->max_id > 0) {
		char sql[128];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO sqlite_sequence(name, seq) VALUES('queue', %lld)",
			 (long long)s->max_id);
		rc = exec_sql(s, sql);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int64_t store_file_size(const char *path, const char *suffix)
{
	char name[4200];
	struct stat st;
	snprintf(name, sizeof(name), "%s%s", path, suffix);
	return stat(name, &st) == 0 ? (int64_t)st.st_size : 0;
}

void store_backlog(struct store *s, int64_t *count, int64_t *bytes)
{
	*count = s->count;
	*bytes = s->bytes;
}

int store_stats(struct store *s, struct store_stats *st)
{
	pthread_mutex_lock(&s->lock);
	if (!s->db) {
		pthread_mutex_unlock(&s->lock);
		return MB_ERR_STORE;
	}
	st->count = s->count;
	st->payload_bytes = s->bytes;
	st->oldest_ts_ms = query_int(s, "SELECT ts_ms FROM queue ORDER BY id ASC LIMIT 1");
	st->newest_ts_ms = query_int(s, "SELECT ts_ms FROM queue ORDER BY id DESC LIMIT 1");
	st->sent = query_int(s, "SELECT value FROM meta WHERE key='sent'");
	st->dropped = query_int(s, "SELECT value FROM meta WHERE key='dropped'");
	st->filtered = query_int(s, "SELECT value FROM meta WHERE key='filtered'");
	st->size_bytes = store_file_size(s->path, "") + store_file_size(s->path, "-wal");
	pthread_mutex_unlock(&s->lock);
	return 0;
}
