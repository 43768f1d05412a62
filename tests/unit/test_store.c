/*
 * test_store.c - the SQLite queue: FIFO/LIFO order, in-flight skipping, deletion on
 * delivery, counters, and survival across close/reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

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

static void put_n(struct store *s, int n)
{
	for (int i = 1; i <= n; i++) {
		char payload[32];
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		assert_int_equal(store_put(s, 1000 * i, "dev", payload, strlen(payload), NULL), 0);
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
	assert_int_equal(store_put(f->s, 9000, "dev", "{}", 2, &id), 0);
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
	assert_int_equal(store_put(s, 1, "d", "{}", 2, NULL), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fifo_and_lifo_order, setup, teardown),
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
