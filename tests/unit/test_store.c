/*
 * test_store.c - the SQLite queue: FIFO/LIFO order, in-flight skipping, deletion on
 * delivery, counters, and survival across close/reopen; store_open's directories and
 * error messages; store_inspect, the read-only look of `modbridge queue`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "error.h"
#include "store.h"
#include "test_helpers.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/modbridge-store-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	/* A sub-directory that does not exist yet: store_open creates it. */
	snprintf(f->path, sizeof(f->path), "%s/state/store.db", f->dir);
	if (store_open(f->path, &f->s) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];
	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Stores one reading and returns its id (the newest in the store), or 0. */
static int put_one(struct store *s, int64_t ts_ms, const char *payload, int64_t *id)
{
	struct store_record r = {ts_ms, "dev", payload, strlen(payload), NULL};
	struct store_item item;
	size_t n = 0;
	int rc = store_put_batch(s, &r, 1, NULL);
	if (rc == 0 && id) {
		*id = 0;
		if (store_fetch(s, SEND_LIFO, NULL, 0, 1, &item, &n) == 0 && n == 1) {
			*id = item.id;
			store_items_clear(&item, n);
		}
	}
	return rc;
}

static void put_n(struct store *s, int n)
{
	for (int i = 1; i <= n; i++) {
		char payload[32];
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		assert_int_equal(put_one(s, 1000 * i, payload, NULL), 0);
	}
}

static void fifo_and_lifo_order(void **state)
{
	struct fixture *f = *state;
	struct store_item items[10];
	size_t n = 0;
	put_n(f->s, 5);

	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 3, items, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(items[0].payload, "{\"n\":1}");
	assert_string_equal(items[2].payload, "{\"n\":3}");
	assert_int_equal(items[0].ts_ms, 1000);
	store_items_clear(items, n);

	assert_int_equal(store_fetch(f->s, SEND_LIFO, NULL, 0, 10, items, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(items[0].payload, "{\"n\":5}");
	assert_string_equal(items[4].payload, "{\"n\":1}");
	store_items_clear(items, n);
}

static void in_flight_ids_are_skipped(void **state)
{
	struct fixture *f = *state;
	struct store_item items[10];
	size_t n = 0;
	put_n(f->s, 5);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 2, items, &n), 0);
	struct id_range inflight[] = {{items[0].id, items[1].id}};
	store_items_clear(items, n);

	assert_int_equal(store_fetch(f->s, SEND_FIFO, inflight, 1, 2, items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].payload, "{\"n\":3}");
	assert_string_equal(items[1].payload, "{\"n\":4}");
	store_items_clear(items, n);
}

static void delivered_readings_are_deleted_and_counted(void **state)
{
	struct fixture *f = *state;
	struct store_item items[10];
	struct store_stats st;
	size_t n = 0;
	put_n(f->s, 4);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 2, items, &n), 0);
	int64_t done[] = {items[0].id, items[1].id};
	store_items_clear(items, n);
	assert_int_equal(store_delete(f->s, done, 2), 0);
	/* Deleting again (a duplicate confirmation) changes nothing. */
	assert_int_equal(store_delete(f->s, done, 2), 0);

	assert_int_equal(store_stats(f->s, &st), 0);
	assert_int_equal(st.count, 2);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.oldest_ts_ms, 3000);
	assert_int_equal(st.newest_ts_ms, 4000);
	assert_true(st.size_bytes > 0);
}

static void readings_survive_reopen_and_ids_are_not_reused(void **state)
{
	struct fixture *f = *state;
	struct store_item items[10];
	size_t n = 0;
	int64_t last = 0;
	put_n(f->s, 3);
	assert_int_equal(store_fetch(f->s, SEND_LIFO, NULL, 0, 1, items, &n), 0);
	last = items[0].id;
	int64_t newest[] = {last};
	store_items_clear(items, n);
	assert_int_equal(store_delete(f->s, newest, 1), 0);

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(f->path, &f->s), 0);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 10, items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].payload, "{\"n\":1}");
	store_items_clear(items, n);

	int64_t id = 0;
	assert_int_equal(put_one(f->s, 9000, "{}", &id), 0);
	assert_true(id > last); /* AUTOINCREMENT: FIFO order holds across deletes */
	struct store_stats st;
	store_stats(f->s, &st);
	assert_int_equal(st.sent, 1);
}

static int64_t backlog(struct store *s)
{
	struct store_stats st;
	assert_int_equal(store_stats(s, &st), 0);
	return st.count;
}

static void full_store_drops_oldest_and_counts(void **state)
{
	struct fixture *f = *state;
	struct store_limits lim = {.max_messages = 3, .policy = STORE_DROP_OLDEST};
	struct store_item items[10];
	size_t n = 0;
	store_set_limits(f->s, &lim);
	put_n(f->s, 5);
	assert_int_equal(backlog(f->s), 3);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 10, items, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(items[0].payload, "{\"n\":3}"); /* 1 and 2 were dropped */
	store_items_clear(items, n);
	struct store_stats st;
	store_stats(f->s, &st);
	assert_int_equal(st.dropped, 2);
}

static void full_store_drops_newest_when_asked(void **state)
{
	struct fixture *f = *state;
	struct store_limits lim = {.max_messages = 3, .policy = STORE_DROP_NEWEST};
	struct store_item items[10];
	size_t n = 0;
	store_set_limits(f->s, &lim);
	put_n(f->s, 5);
	assert_int_equal(store_fetch(f->s, SEND_LIFO, NULL, 0, 10, items, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(items[0].payload, "{\"n\":3}"); /* 4 and 5 were refused */
	store_items_clear(items, n);
	struct store_stats st;
	store_stats(f->s, &st);
	assert_int_equal(st.dropped, 2);
}

static void byte_limit_and_batch(void **state)
{
	struct fixture *f = *state;
	/* Each payload is 7 bytes ({"n":1}); 20 bytes hold two of them. */
	struct store_limits lim = {.max_bytes = 20, .policy = STORE_DROP_OLDEST};
	store_set_limits(f->s, &lim);
	struct store_record recs[4];
	const char *payloads[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}"};
	for (int i = 0; i < 4; i++)
		recs[i] = (struct store_record){.ts_ms = i,
						.device = "d",
						.payload = payloads[i],
						.len = 7};
	int64_t dropped = -1;
	assert_int_equal(store_put_batch(f->s, recs, 4, &dropped), 0);
	assert_int_equal(dropped, 2);
	struct store_stats st;
	store_stats(f->s, &st);
	assert_int_equal(st.count, 2);
	assert_int_equal(st.payload_bytes, 14);
	assert_int_equal(st.oldest_ts_ms, 2);
	/* Deleting updates the byte count too. */
	struct store_item items[4];
	size_t n = 0;
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 4, items, &n), 0);
	int64_t ids[] = {items[0].id};
	store_items_clear(items, n);
	assert_int_equal(store_delete(f->s, ids, 1), 0);
	store_stats(f->s, &st);
	assert_int_equal(st.payload_bytes, 7);
}

static void damaged_file_is_moved_aside(void **state)
{
	struct fixture *f = *state;
	char path[160], cmd[400];
	snprintf(path, sizeof(path), "%s/bad.db", f->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 512; i++)
		fputs("this is not an SQLite database. ", fp);
	fclose(fp);

	struct store *s = NULL;
	assert_int_equal(store_open(path, &s), 0);
	assert_int_equal(put_one(s, 1, "{}", NULL), 0);
	assert_int_equal(backlog(s), 1);
	store_close(s);
	/* The damaged file is kept, renamed, for forensics. */
	snprintf(cmd, sizeof(cmd), "ls '%s'/bad.db.corrupt-* >/dev/null 2>&1", f->dir);
	assert_int_equal(system(cmd), 0);
}

static void unopenable_path_fails_cleanly(void **state)
{
	(void)state;
	struct store *s = NULL;
	assert_int_not_equal(store_open("/proc/modbridge-no/such/store.db", &s), 0);
	assert_null(s);
}

/* ---- store_open: directories and messages (issue 9 item 6) ---- */

/* store_open(path) with stderr captured; returns the logged text (the caller frees). */
static char *open_capturing_log(const char *dir, const char *path, int *rc, struct store **s)
{
	char logfile[200];
	snprintf(logfile, sizeof(logfile), "%s/captured.log", dir);
	int saved = dup(STDERR_FILENO);
	int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	*s = NULL;
	*rc = store_open(path, s);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	char *text = read_text_file(logfile);
	assert_non_null(text);
	unlink(logfile);
	return text;
}

static void missing_parent_directories_are_created(void **state)
{
	struct fixture *f = *state;
	char path[200], dir[200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/two/levels/store.db", f->dir);
	struct store *s = NULL;
	assert_int_equal(store_open(path, &s), 0);
	assert_int_equal(put_one(s, 1, "{}", NULL), 0);
	store_close(s);
	snprintf(dir, sizeof(dir), "%s/two/levels", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
}

static void a_path_through_a_file_names_it(void **state)
{
	struct fixture *f = *state;
	char file[200], path[240];
	snprintf(file, sizeof(file), "%s/plainfile", f->dir);
	FILE *fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/sub/store.db", file);
	struct store *s = NULL;
	int rc = 0;
	char *log = open_capturing_log(f->dir, path, &rc, &s);
	assert_int_not_equal(rc, 0);
	assert_null(s);
	assert_non_null(strstr(log, file));
	assert_non_null(strstr(log, "Not a directory"));
	assert_non_null(strstr(log, "fix logger.store"));
	free(log);
}

static void open_failure_names_the_os_reason(void **state)
{
	struct fixture *f = *state;
	char path[200];
	/* A directory where the database should be: SQLite cannot open it (EISDIR). */
	snprintf(path, sizeof(path), "%s/store.db", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	struct store *s = NULL;
	int rc = 0;
	char *log = open_capturing_log(f->dir, path, &rc, &s);
	assert_int_not_equal(rc, 0);
	assert_null(s);
	/* Before: "store ...: cannot open: store error", with no cause. */
	assert_non_null(strstr(log, path));
	assert_non_null(strstr(log, "Is a directory"));
	assert_non_null(strstr(log, "give the file's name"));
	free(log);
}

/* ---- store_inspect: looks, never touches (issue 9 item 4) ---- */

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	assert_non_null(d);
	for (const struct dirent *e; (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static bool exists(const char *path, const char *suffix)
{
	char name[300];
	snprintf(name, sizeof(name), "%s%s", path, suffix);
	return access(name, F_OK) == 0;
}

static void inspect_a_missing_store_creates_nothing(void **state)
{
	struct fixture *f = *state;
	char path[200], why[512] = "";
	struct store_stats st;
	snprintf(path, sizeof(path), "%s/nothing/here/store.db", f->dir);
	int before = count_entries(f->dir);
	assert_int_equal(store_inspect(path, &st, why, sizeof(why)), MB_ERR_NOTFOUND);
	assert_non_null(strstr(why, "does not exist"));
	assert_non_null(strstr(why, path));
	assert_int_equal(count_entries(f->dir), before);
}

static void inspect_a_damaged_store_leaves_it_alone(void **state)
{
	struct fixture *f = *state;
	char dir[200], path[240], why[512] = "";
	struct store_stats st;
	snprintf(dir, sizeof(dir), "%s/damaged", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	/* The right magic, then garbage (what a failing SD card leaves). */
	char garbage[4096];
	memcpy(garbage, "SQLite format 3", 16);
	for (size_t i = 16; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 7);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(garbage, 1, sizeof(garbage), fp), sizeof(garbage));
	fclose(fp);

	assert_int_equal(store_inspect(path, &st, why, sizeof(why)), MB_ERR_CORRUPT);
	assert_non_null(strstr(why, "is damaged"));
	assert_int_equal(count_entries(dir), 1); /* no .corrupt-*, no -wal, no -shm */
	char *after = NULL;
	fp = fopen(path, "rb");
	assert_non_null(fp);
	after = malloc(sizeof(garbage) + 1);
	assert_int_equal(fread(after, 1, sizeof(garbage) + 1, fp), sizeof(garbage));
	fclose(fp);
	assert_memory_equal(after, garbage, sizeof(garbage));
	free(after);
}

static void inspect_beside_an_open_store_sees_its_figures(void **state)
{
	struct fixture *f = *state;
	struct store_item items[2];
	struct store_stats mine, seen;
	char why[512] = "";
	size_t n = 0;
	put_n(f->s, 5);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 2, items, &n), 0);
	int64_t ids[] = {items[0].id, items[1].id};
	store_items_clear(items, n);
	assert_int_equal(store_delete(f->s, ids, 2), 0);
	assert_int_equal(store_count_dropped(f->s, 4), 0);

	/* The store is open (WAL, as in a running daemon): inspect reads as a WAL reader. */
	assert_true(exists(f->path, "-wal"));
	assert_int_equal(store_inspect(f->path, &seen, why, sizeof(why)), 0);
	assert_int_equal(store_stats(f->s, &mine), 0);
	assert_int_equal(seen.count, 3);
	assert_int_equal(seen.count, mine.count);
	assert_int_equal(seen.payload_bytes, mine.payload_bytes);
	assert_int_equal(seen.oldest_ts_ms, 3000);
	assert_int_equal(seen.newest_ts_ms, 5000);
	assert_int_equal(seen.sent, 2);
	assert_int_equal(seen.dropped, 4);
	assert_true(seen.size_bytes > 0);
	/* And the writer goes on. */
	assert_int_equal(put_one(f->s, 6000, "{}", NULL), 0);
}

static void inspect_a_closed_store_leaves_no_wal_files(void **state)
{
	struct fixture *f = *state;
	struct stat before, after;
	struct store_stats st;
	char why[512] = "";
	put_n(f->s, 4);
	store_close(f->s);
	f->s = NULL;
	assert_false(exists(f->path, "-wal"));
	assert_int_equal(stat(f->path, &before), 0);

	assert_int_equal(store_inspect(f->path, &st, why, sizeof(why)), 0);
	assert_int_equal(st.count, 4);
	assert_int_equal(st.oldest_ts_ms, 1000);
	assert_int_equal(st.newest_ts_ms, 4000);
	/* A read-only SQLite connection would have left -wal and -shm behind. */
	assert_false(exists(f->path, "-wal"));
	assert_false(exists(f->path, "-shm"));
	assert_int_equal(stat(f->path, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_int_equal(store_open(f->path, &f->s), 0); /* for teardown */
}

static void inspect_an_empty_file_reports_nothing_queued(void **state)
{
	struct fixture *f = *state;
	char path[200], why[512] = "";
	struct store_stats st;
	struct stat sb;
	snprintf(path, sizeof(path), "%s/empty.db", f->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(store_inspect(path, &st, why, sizeof(why)), 0);
	assert_int_equal(st.count, 0);
	assert_int_equal(st.sent, 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 0); /* not initialised by a look */
}

/* Several skipped runs, in both orders: every reading outside them comes, in order. */
static void skipped_ranges_in_both_orders(void **state)
{
	struct fixture *f = *state;
	struct store_item items[20];
	size_t n = 0;
	put_n(f->s, 12);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 12, items, &n), 0);
	assert_int_equal(n, 12);
	int64_t first = items[0].id;
	store_items_clear(items, n);
	/* Skip readings 1, 3..5 and 9..12 (1-based, as put_n numbers them). */
	struct id_range skip[] = {{first, first}, {first + 2, first + 4}, {first + 8, first + 11}};

	assert_int_equal(store_fetch(f->s, SEND_FIFO, skip, 3, 20, items, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(items[0].payload, "{\"n\":2}");
	assert_string_equal(items[1].payload, "{\"n\":6}");
	assert_string_equal(items[3].payload, "{\"n\":8}");
	store_items_clear(items, n);

	assert_int_equal(store_fetch(f->s, SEND_LIFO, skip, 3, 3, items, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(items[0].payload, "{\"n\":8}");
	assert_string_equal(items[1].payload, "{\"n\":7}");
	assert_string_equal(items[2].payload, "{\"n\":6}");
	store_items_clear(items, n);

	/* A range open to the end skips everything after it. */
	struct id_range tail[] = {{first + 1, INT64_MAX}};
	assert_int_equal(store_fetch(f->s, SEND_FIFO, tail, 1, 20, items, &n), 0);
	assert_int_equal(n, 1);
	store_items_clear(items, n);
}

/* Deleting ranges removes exactly their rows and counts them as sent. */
static void delete_ranges_counts_sent(void **state)
{
	struct fixture *f = *state;
	struct store_item items[20];
	struct store_stats st;
	size_t n = 0;
	put_n(f->s, 10);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 10, items, &n), 0);
	int64_t first = items[0].id;
	store_items_clear(items, n);
	struct id_range done[] = {{first, first + 3},
				  {first + 6, first + 6},
				  {first + 100, first + 200}};
	assert_int_equal(store_delete_ranges(f->s, done, 3), 0);
	assert_int_equal(store_stats(f->s, &st), 0);
	assert_int_equal(st.count, 5);
	assert_int_equal(st.sent, 5);
	assert_int_equal(store_count_sent(f->s, 7), 0);
	assert_int_equal(store_stats(f->s, &st), 0);
	assert_int_equal(st.sent, 12);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 10, items, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(items[0].payload, "{\"n\":5}");
	assert_string_equal(items[2].payload, "{\"n\":8}");
	store_items_clear(items, n);
}

/* After a damaged file is moved aside at run time, the fresh file's ids start above every
 * id handed out before: an id the forwarder still holds never names a new reading. */
static void ids_after_recovery_are_new(void **state)
{
	struct fixture *f = *state;
	struct store_item items[10];
	size_t n = 0;
	put_n(f->s, 5);
	assert_int_equal(store_fetch(f->s, SEND_LIFO, NULL, 0, 1, items, &n), 0);
	int64_t old_max = items[0].id;
	store_items_clear(items, n);
	assert_int_equal(store_recover(f->s), 0);
	put_n(f->s, 1);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 10, items, &n), 0);
	assert_int_equal(n, 1);
	assert_true(items[0].id > old_max);
	store_items_clear(items, n);
}

/* A message's own destination (schema 2) is kept and given back; NULL stays NULL. */
static void destinations_round_trip(void **state)
{
	struct fixture *f = *state;
	struct store_record r[2] = {
		{1, "dev", "{\"a\":1}", 7, NULL},
		{2, "dev", "line 2", 6, "homeassistant/sensor/x/config"},
	};
	struct store_item items[2];
	size_t n = 0;
	assert_int_equal(store_put_batch(f->s, r, 2, NULL), 0);
	assert_int_equal(store_fetch(f->s, SEND_FIFO, NULL, 0, 2, items, &n), 0);
	assert_int_equal(n, 2);
	assert_null(items[0].topic);
	assert_string_equal(items[1].topic, "homeassistant/sensor/x/config");
	assert_string_equal(items[1].payload, "line 2");
	store_items_clear(items, n);
	assert_int_equal(store_count_filtered(f->s, 3), 0);
	struct store_stats st;
	assert_int_equal(store_stats(f->s, &st), 0);
	assert_int_equal(st.filtered, 3);
}

/* A store of schema version 1 (before destinations) is migrated at open, keeping its
 * readings, ids and counters; `queue` reads it before and after. */
static void version_1_store_is_migrated(void **state)
{
	struct fixture *f = *state;
	char path[160], why[256];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/v1.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "PRAGMA journal_mode=WAL;"
			     "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
			     "CREATE TABLE queue(id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER "
			     "NOT NULL, device TEXT NOT NULL, payload TEXT NOT NULL);"
			     "INSERT INTO meta VALUES('sent',5),('dropped',2),('schema_version',1);"
			     "INSERT INTO queue(ts_ms, device, payload) VALUES(10,'d','{\"old\":1}'),"
			     "(20,'d','{\"old\":2}');",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	struct store_stats st;
	assert_int_equal(store_inspect(path, &st, why, sizeof(why)), 0);
	assert_int_equal(st.count, 2);
	assert_int_equal(st.filtered, 0);

	struct store *s = NULL;
	assert_int_equal(store_open(path, &s), 0);
	struct store_item items[3];
	size_t n = 0;
	assert_int_equal(store_fetch(s, SEND_FIFO, NULL, 0, 3, items, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(items[0].id, 1);
	assert_string_equal(items[1].payload, "{\"old\":2}");
	assert_null(items[0].topic);
	store_items_clear(items, n);
	int64_t id = 0;
	assert_int_equal(put_one(s, 30, "{\"new\":3}", &id), 0);
	assert_int_equal(id, 3);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.sent, 5);
	assert_int_equal(st.dropped, 2);
	store_close(s);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'",
					    -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 2);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fifo_and_lifo_order, setup, teardown),
		cmocka_unit_test_setup_teardown(destinations_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(version_1_store_is_migrated, setup, teardown),
		cmocka_unit_test_setup_teardown(in_flight_ids_are_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(skipped_ranges_in_both_orders, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_ranges_counts_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(ids_after_recovery_are_new, setup, teardown),
		cmocka_unit_test_setup_teardown(delivered_readings_are_deleted_and_counted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(readings_survive_reopen_and_ids_are_not_reused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(full_store_drops_oldest_and_counts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(full_store_drops_newest_when_asked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(byte_limit_and_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_file_is_moved_aside, setup, teardown),
		cmocka_unit_test(unopenable_path_fails_cleanly),
		cmocka_unit_test_setup_teardown(missing_parent_directories_are_created, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_path_through_a_file_names_it, setup, teardown),
		cmocka_unit_test_setup_teardown(open_failure_names_the_os_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(inspect_a_missing_store_creates_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(inspect_a_damaged_store_leaves_it_alone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(inspect_beside_an_open_store_sees_its_figures,
						setup, teardown),
		cmocka_unit_test_setup_teardown(inspect_a_closed_store_leaves_no_wal_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(inspect_an_empty_file_reports_nothing_queued, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
