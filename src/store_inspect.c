/*
 * store_inspect.c - the read-only look at a store that `modbridge queue` and AT+MBSTATUS
 * without a daemon take; see store_inspect() in store.h.
 */
#include "store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "store_internal.h"

/* ---------------------------------------------------------------------------------------
 * store_inspect: the read-only look of `modbridge queue`. Nothing below writes, creates,
 * moves or repairs a file, and nothing above calls it.
 *
 * A daemon that has the store open in WAL mode always has its -wal and -shm files. With
 * them present, the store is opened with SQLITE_OPEN_READONLY: a WAL reader, which never
 * blocks the daemon. Without them, a read-only connection would create both (and leave
 * them behind), and could not open the store at all in a directory the caller cannot
 * write; so the file is read as an immutable snapshot instead, and the snapshot is kept
 * only if the file is unchanged and still has no WAL afterwards (a daemon that started
 * meanwhile): otherwise it is read again as a WAL reader.
 * --------------------------------------------------------------------------------------- */

static bool wal_files_exist(const char *path)
{
	char name[4200];
	static const char *const suffixes[] = {"-wal", "-shm"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
		if (access(name, F_OK) == 0)
			return true;
	}
	return false;
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* "file:<path>?immutable=1" with the path percent-encoded where URIs need it. */
static char *immutable_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *uri = malloc(3 * n + sizeof("file:?immutable=1"));
	if (!uri)
		return NULL;
	char *o = uri + sprintf(uri, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/._~-", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	memcpy(o, "?immutable=1", sizeof("?immutable=1"));
	return uri;
}

/* Describes a failed SQLite call: damage (as `run` would judge it) or a read failure. */
static int inspect_fail(const struct store *s, int sqlite_rc, char *why, size_t len)
{
	int rc = store_classify(sqlite_rc);
	int err = s->db ? sqlite3_system_errno(s->db) : 0;
	const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(sqlite_rc);
	if (rc == MB_ERR_CORRUPT) {
		snprintf(why, len, "store %s is damaged: %s", s->path, msg);
		return rc;
	}
	const char *hint = store_os_hint(err);
	if (!hint && rc == MB_ERR_READONLY)
		hint = "a reader needs to write the store's -shm file; run this as the daemon's user";
	snprintf(why, len, "store %s: cannot read it: %s%s%s%s%s%s", s->path, msg, err ? " (" : "",
		 err ? strerror(err) : "", err ? ")" : "", hint ? "; " : "", hint ? hint : "");
	return rc == MB_ERR_NOMEM || rc == MB_ERR_READONLY ? rc : MB_ERR_STORE;
}

/* One integer from sql (0 when it returns no row), or a classified error. */
static int inspect_int(const struct store *s, const char *sql, int64_t *v, char *why, size_t len)
{
	sqlite3_stmt *st = NULL;
	int step = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (step == SQLITE_OK)
		step = sqlite3_step(st);
	*v = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : inspect_fail(s, step, why, len);
}

/* Checks the file as store_open does (quick_check, schema) and reads the figures. */
static int inspect_db(const struct store *s, struct store_stats *st, char *why, size_t len)
{
	sqlite3_stmt *check = NULL;
	int step = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &check, NULL);
	if (step == SQLITE_OK)
		step = sqlite3_step(check);
	if (step == SQLITE_ROW) {
		const unsigned char *verdict = sqlite3_column_text(check, 0);
		if (!verdict || strcmp((const char *)verdict, "ok") != 0) {
			snprintf(why, len, "store %s is damaged: quick_check found: %s", s->path,
				 verdict ? (const char *)verdict : "(no verdict)");
			sqlite3_finalize(check);
			return MB_ERR_CORRUPT;
		}
	}
	sqlite3_finalize(check);
	if (step != SQLITE_ROW)
		return inspect_fail(s, step, why, len);

	int64_t tables = 0, has_meta = 0, version = 0;
	int rc;
	memset(st, 0, sizeof(*st));
	if ((rc = inspect_int(s, "SELECT count(*) FROM sqlite_master", &tables, why, len)) ||
	    (rc = inspect_int(s, "SELECT count(*) FROM sqlite_master WHERE name='meta'", &has_meta,
			      why, len)))
		return rc;
	if (tables == 0)
		return 0; /* created, not initialised yet: run does that; nothing is queued */
	if (!has_meta) {
		snprintf(why, len, "store %s is an SQLite database, but not a modbridge store",
			 s->path);
		return MB_ERR_STORE;
	}
	if ((rc = inspect_int(s, "SELECT value FROM meta WHERE key='schema_version'", &version, why,
			      len)))
		return rc;
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(why, len,
			 "store %s: schema version %lld is newer than this modbridge supports (%d)",
			 s->path, (long long)version, STORE_SCHEMA_VERSION);
		return MB_ERR_STORE;
	}
	if (version < 1)
		return 0; /* killed while creating it: run finishes that; nothing is queued */
	if ((rc = inspect_int(s, "SELECT count(*) FROM queue", &st->count, why, len)) ||
	    (rc = inspect_int(s, "SELECT coalesce(sum(length(payload)),0) FROM queue",
			      &st->payload_bytes, why, len)) ||
	    (rc = inspect_int(s, "SELECT ts_ms FROM queue ORDER BY id ASC LIMIT 1",
			      &st->oldest_ts_ms, why, len)) ||
	    (rc = inspect_int(s, "SELECT ts_ms FROM queue ORDER BY id DESC LIMIT 1",
			      &st->newest_ts_ms, why, len)) ||
	    (rc = inspect_int(s, "SELECT value FROM meta WHERE key='sent'", &st->sent, why, len)) ||
	    (rc = inspect_int(s, "SELECT value FROM meta WHERE key='dropped'", &st->dropped, why,
			      len)) ||
	    (rc = inspect_int(s, "SELECT value FROM meta WHERE key='filtered'", &st->filtered, why,
			      len)))
		return rc;
	return 0;
}

/* One read-only pass: as an immutable snapshot or as a WAL reader. */
static int inspect_once(struct store *s, bool snapshot, struct store_stats *st, char *why,
			size_t len)
{
	char *uri = snapshot ? immutable_uri(s->path) : NULL;
	if (snapshot && !uri) {
		snprintf(why, len, "store %s: out of memory", s->path);
		return MB_ERR_NOMEM;
	}
	int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | (snapshot ? SQLITE_OPEN_URI : 0);
	int rc = sqlite3_open_v2(snapshot ? uri : s->path, &s->db, flags, NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		rc = inspect_fail(s, rc, why, len);
	} else {
		/* A reader waits for the daemon's checkpoint or WAL recovery, never the reverse. */
		sqlite3_busy_timeout(s->db, 5000);
		/* A transaction, so the figures come from one moment of the daemon's queue. */
		int begin = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
		rc = begin == SQLITE_OK ? inspect_db(s, st, why, len)
					: inspect_fail(s, begin, why, len);
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	}
	sqlite3_close(s->db);
	s->db = NULL;
	return rc;
}

int store_inspect(const char *path, struct store_stats *st, char *why, size_t len)
{
	struct stat before, after;
	struct store s = {.path = (char *)path};

	if (stat(path, &before) != 0) {
		int err = errno;
		if (err == ENOENT || err == ENOTDIR)
			snprintf(why, len, "store %s does not exist", path);
		else
			snprintf(why, len, "store %s: cannot read it: %s", path, strerror(err));
		return err == ENOENT || err == ENOTDIR ? MB_ERR_NOTFOUND : MB_ERR_IO;
	}
	if (!S_ISREG(before.st_mode)) {
		snprintf(why, len, "store %s is not a regular file", path);
		return MB_ERR_STORE;
	}
	int rc;
	if (!wal_files_exist(path)) {
		rc = inspect_once(&s, true, st, why, len);
		if (stat(path, &after) == 0 && same_file_state(&before, &after) &&
		    !wal_files_exist(path))
			goto done;
		log_debug("store %s: changed while it was read; reading it again", path);
	}
	rc = inspect_once(&s, false, st, why, len);
done:
	if (rc == 0)
		st->size_bytes = store_file_size(path, "") + store_file_size(path, "-wal");
	return rc;
}
