/*
 * test_ingest.c - the writer between the bus workers and the store, driven through its
 * store seam: group commit, a store that fails, fills up, is damaged and recovers, the
 * memory bound and its policies, and the forwarder's claims on readings held in memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest.h"
#include "timeutil.h"

#define KEPT_MAX 1000

struct fake_store {
	pthread_mutex_t lock;
	int fail;          /* error for every write, 0: works */
	int fail_once;     /* error for the next write only */
	int64_t drop_next; /* the next successful batch reports this many dropped */
	int put_calls, recover_calls;
	char *kept[KEPT_MAX]; /* payloads stored, in order */
	size_t nkept;
	int64_t sent, dropped;
	int notified;
};

static int fs_put(void *ctx, const struct store_record *r, size_t n, int64_t *dropped)
{
	struct fake_store *s = ctx;
	pthread_mutex_lock(&s->lock);
	s->put_calls++;
	int rc = s->fail_once ? s->fail_once : s->fail;
	s->fail_once = 0;
	if (!rc) {
		for (size_t i = 0; i < n && s->nkept < KEPT_MAX; i++)
			s->kept[s->nkept++] = strdup(r[i].payload);
		*dropped = s->drop_next;
		s->drop_next = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int fs_counts(void *ctx, int64_t sent, int64_t dropped)
{
	struct fake_store *s = ctx;
	pthread_mutex_lock(&s->lock);
	int rc = s->fail;
	if (!rc) {
		s->sent += sent;
		s->dropped += dropped;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int fs_recover(void *ctx)
{
	struct fake_store *s = ctx;
	pthread_mutex_lock(&s->lock);
	s->recover_calls++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void on_notify(void *ctx)
{
	struct fake_store *s = ctx;
	pthread_mutex_lock(&s->lock);
	s->notified++;
	pthread_mutex_unlock(&s->lock);
}

/* Reads one field of the fake store under its lock. */
#define FS(f, field) \
	(pthread_mutex_lock(&(f)->st.lock), (f)->tmp = (int64_t)(f)->st.field, \
	 pthread_mutex_unlock(&(f)->st.lock), (f)->tmp)

#define ASSERT_EVENTUALLY(cond, timeout_ms) \
	do { \
		int64_t deadline_ = time_mono_ms() + (timeout_ms); \
		while (!(cond) && time_mono_ms() < deadline_) \
			time_sleep_ms(2); \
		assert_true(cond); \
	} while (0)

struct fixture {
	struct fake_store st;
	struct ingest *in;
	int64_t tmp;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	pthread_mutex_init(&f->st.lock, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ingest_stop(f->in, 0);
	for (size_t i = 0; i < f->st.nkept; i++)
		free(f->st.kept[i]);
	pthread_mutex_destroy(&f->st.lock);
	free(f);
	return 0;
}

static void start(struct fixture *f, size_t max_messages, enum store_full_policy policy)
{
	struct ingest_store ist = {fs_put, fs_counts, fs_recover, "fake", &f->st, NULL};
	struct ingest_options io = {.memory_max_messages = max_messages,
				    .memory_max_bytes = 1 << 20,
				    .policy = policy,
				    .notify = on_notify,
				    .ctx = &f->st};
	assert_int_equal(ingest_new(&ist, &io, &f->in), 0);
	assert_int_equal(ingest_start(f->in), 0);
}

static void push(struct fixture *f, int n)
{
	char *json = malloc(32);
	assert_non_null(json);
	snprintf(json, 32, "{\"n\":%d}", n);
	ingest_push(f->in, n, "dev", json, strlen(json));
}

/* The stored payloads are exactly {"n":from} .. {"n":to}, in order. */
static void assert_kept(struct fixture *f, int from, int to)
{
	pthread_mutex_lock(&f->st.lock);
	assert_int_equal(f->st.nkept, (size_t)(to - from + 1));
	for (int n = from; n <= to; n++) {
		char want[32];
		snprintf(want, sizeof(want), "{\"n\":%d}", n);
		assert_string_equal(f->st.kept[n - from], want);
	}
	pthread_mutex_unlock(&f->st.lock);
}

/* A burst is committed in a few transactions, in order, and the forwarder is told. */
static void burst_is_group_committed(void **state)
{
	struct fixture *f = *state;
	start(f, 10000, STORE_DROP_OLDEST);
	for (int n = 1; n <= 300; n++)
		push(f, n);
	ASSERT_EVENTUALLY(FS(f, nkept) == 300, 5000);
	assert_kept(f, 1, 300);
	assert_true(FS(f, put_calls) < 300);
	assert_true(FS(f, notified) >= 1);
	size_t n = 0;
	assert_null(ingest_claim(f->in, SEND_FIFO, 10, &n)); /* writable: nothing to claim */
	assert_int_equal(n, 0);
	assert_false(ingest_claimable(f->in));
}

/* Disk full: readings stay in memory, the writer backs off, and after the disk is freed
 * every reading is stored, in order. */
static void failing_store_backs_off_then_recovers(void **state)
{
	struct fixture *f = *state;
	f->st.fail = MB_ERR_DISK_FULL;
	start(f, 10000, STORE_DROP_OLDEST);
	for (int n = 1; n <= 10; n++)
		push(f, n);
	ASSERT_EVENTUALLY(ingest_claimable(f->in), 2000);
	time_sleep_ms(1200);
	/* 0, 0.5 s, 1.5 s ...: two or three attempts, not one per reading or per millisecond. */
	assert_true(FS(f, put_calls) <= 4);
	for (int n = 11; n <= 20; n++)
		push(f, n);
	pthread_mutex_lock(&f->st.lock);
	f->st.fail = 0;
	pthread_mutex_unlock(&f->st.lock);
	ASSERT_EVENTUALLY(FS(f, nkept) == 20, 10000);
	assert_kept(f, 1, 20);
	assert_false(ingest_claimable(f->in));
}

static void memory_full(struct fixture *f, enum store_full_policy policy)
{
	f->st.fail = MB_ERR_READONLY;
	start(f, 5, policy);
	for (int n = 1; n <= 8; n++)
		push(f, n);
	pthread_mutex_lock(&f->st.lock);
	f->st.fail = 0;
	pthread_mutex_unlock(&f->st.lock);
	ASSERT_EVENTUALLY(FS(f, nkept) == 5 && FS(f, dropped) == 3, 10000);
}

static void memory_full_drops_oldest(void **state)
{
	struct fixture *f = *state;
	memory_full(f, STORE_DROP_OLDEST);
	assert_kept(f, 4, 8);
}

static void memory_full_drops_newest(void **state)
{
	struct fixture *f = *state;
	memory_full(f, STORE_DROP_NEWEST);
	assert_kept(f, 1, 5);
}

/* Claims from both ends, given back in any order, leave the list in arrival order. */
static void claims_given_back_keep_order(void **state)
{
	struct fixture *f = *state;
	f->st.fail = MB_ERR_DISK_FULL;
	start(f, 10000, STORE_DROP_OLDEST);
	for (int n = 1; n <= 10; n++)
		push(f, n);
	ASSERT_EVENTUALLY(ingest_claimable(f->in), 2000);
	size_t n1 = 0, n2 = 0, n3 = 0;
	struct ingest_reading *oldest = ingest_claim(f->in, SEND_FIFO, 3, &n1);
	struct ingest_reading *newest = ingest_claim(f->in, SEND_LIFO, 2, &n2);
	assert_int_equal(n1, 3);
	assert_int_equal(n2, 2);
	assert_string_equal(oldest->payload, "{\"n\":1}");
	assert_string_equal(oldest->next->next->payload, "{\"n\":3}");
	assert_string_equal(newest->payload, "{\"n\":10}");
	assert_string_equal(newest->next->payload, "{\"n\":9}");
	/* A list shuffled the way confirmations come back: 2, 1, 3. */
	struct ingest_reading *a = oldest, *b = oldest->next, *c = oldest->next->next;
	b->next = a;
	a->next = c;
	c->next = NULL;
	ingest_unclaim(f->in, newest);
	ingest_unclaim(f->in, b);
	/* One more claim, delivered: counted as sent and never stored. */
	struct ingest_reading *sent = ingest_claim(f->in, SEND_FIFO, 1, &n3);
	assert_int_equal(n3, 1);
	assert_string_equal(sent->payload, "{\"n\":1}");
	ingest_delivered(f->in, sent);
	pthread_mutex_lock(&f->st.lock);
	f->st.fail = 0;
	pthread_mutex_unlock(&f->st.lock);
	ASSERT_EVENTUALLY(FS(f, nkept) == 9 && FS(f, sent) == 1, 10000);
	assert_kept(f, 2, 10);
}

/* A damaged store is moved aside (recover) and the batch goes to the fresh one. */
static void damaged_store_is_recovered(void **state)
{
	struct fixture *f = *state;
	f->st.fail_once = MB_ERR_CORRUPT;
	start(f, 10000, STORE_DROP_OLDEST);
	for (int n = 1; n <= 5; n++)
		push(f, n);
	ASSERT_EVENTUALLY(FS(f, nkept) == 5, 5000);
	assert_int_equal(FS(f, recover_calls), 1);
	assert_kept(f, 1, 5);
}

/* The store's own limit drops readings: the writer goes on (the drop is the store's). */
static void store_limit_drops_are_not_failures(void **state)
{
	struct fixture *f = *state;
	f->st.drop_next = 2;
	start(f, 10000, STORE_DROP_OLDEST);
	push(f, 1);
	ASSERT_EVENTUALLY(FS(f, nkept) == 1, 2000);
	push(f, 2);
	ASSERT_EVENTUALLY(FS(f, nkept) == 2, 2000);
	assert_false(ingest_claimable(f->in));
}

/* Stopping stores what is pending; with a store that keeps failing, the stop still ends
 * within its time-out. */
static void stop_flushes_or_gives_up_in_time(void **state)
{
	struct fixture *f = *state;
	start(f, 10000, STORE_DROP_OLDEST);
	for (int n = 1; n <= 50; n++)
		push(f, n);
	ingest_stop(f->in, 2000);
	f->in = NULL;
	assert_kept(f, 1, 50);

	struct fixture g = {0};
	pthread_mutex_init(&g.st.lock, NULL);
	g.st.fail = MB_ERR_DISK_FULL;
	start(&g, 10000, STORE_DROP_OLDEST);
	push(&g, 1);
	int64_t t0 = time_mono_ms();
	ingest_stop(g.in, 300);
	int64_t took = time_mono_ms() - t0;
	assert_true(took < 1500);
	assert_int_equal(g.st.nkept, 0);
	assert_true(g.st.put_calls >= 2); /* it did try again while stopping */
	pthread_mutex_destroy(&g.st.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(burst_is_group_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(failing_store_backs_off_then_recovers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(memory_full_drops_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(memory_full_drops_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(claims_given_back_keep_order, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_store_is_recovered, setup, teardown),
		cmocka_unit_test_setup_teardown(store_limit_drops_are_not_failures, setup,
						teardown),
		cmocka_unit_test_setup_teardown(stop_flushes_or_gives_up_in_time, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
