/*
 * test_forward.c - the forwarder driven through its seams: a fake uplink whose
 * confirmations the test hands out in any order, a fake queue whose removals can fail,
 * and a real ingest over a fake store that can refuse writes.
 *
 * Each test runs the real forwarder thread; the test thread plays the server and waits
 * for conditions with a deadline (never a fixed sleep where a condition exists).
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
#include "forward.h"
#include "ingest.h"
#include "timeutil.h"

#define ROWS_MAX 2000
#define SENT_MAX 20000

/* ---- the fake queue (the store as the forwarder sees it) ---- */

struct fake_queue {
	pthread_mutex_t lock;
	int64_t ids[ROWS_MAX];
	char *payloads[ROWS_MAX];
	bool present[ROWS_MAX];
	size_t nrows;
	int fail_fetch;  /* error to return from fetch, 0: none */
	int fail_remove; /* error to return from remove, 0: none */
	int fetch_calls, remove_calls, removed;
	int removed_times[ROWS_MAX]; /* how often each row was removed */
};

static int fq_fetch(void *ctx, enum send_mode mode, const struct id_range *skip, size_t nskip,
		    size_t max, struct store_item *items, size_t *n)
{
	struct fake_queue *q = ctx;
	pthread_mutex_lock(&q->lock);
	q->fetch_calls++;
	if (q->fail_fetch) {
		int rc = q->fail_fetch;
		pthread_mutex_unlock(&q->lock);
		return rc;
	}
	size_t filled = 0;
	for (size_t k = 0; k < q->nrows && filled < max; k++) {
		size_t i = mode == SEND_LIFO ? q->nrows - 1 - k : k;
		if (!q->present[i] || idset_ranges_find(skip, nskip, q->ids[i]))
			continue;
		items[filled].id = q->ids[i];
		items[filled].ts_ms = 0;
		items[filled].payload = strdup(q->payloads[i]);
		items[filled].len = strlen(q->payloads[i]);
		filled++;
	}
	pthread_mutex_unlock(&q->lock);
	*n = filled;
	return 0;
}

static int fq_remove(void *ctx, const struct id_range *ranges, size_t n)
{
	struct fake_queue *q = ctx;
	pthread_mutex_lock(&q->lock);
	q->remove_calls++;
	int rc = q->fail_remove;
	if (!rc) {
		for (size_t i = 0; i < q->nrows; i++) {
			if (q->present[i] && idset_ranges_find(ranges, n, q->ids[i])) {
				q->present[i] = false;
				q->removed++;
				q->removed_times[i]++;
			}
		}
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Rows with ids 1..n; payload {"n":i} padded to pad bytes when pad > 0. */
static void fq_fill(struct fake_queue *q, size_t n, size_t pad)
{
	for (size_t i = 0; i < n; i++) {
		char buf[4096];
		int len = snprintf(buf, sizeof(buf), "{\"n\":%zu", i + 1);
		while (pad && (size_t)len < pad - 1 && len < (int)sizeof(buf) - 2)
			buf[len++] = ' ';
		buf[len++] = '}';
		buf[len] = '\0';
		q->ids[q->nrows] = (int64_t)i + 1;
		q->payloads[q->nrows] = strdup(buf);
		q->present[q->nrows] = true;
		q->nrows++;
	}
}

static size_t fq_left(struct fake_queue *q)
{
	pthread_mutex_lock(&q->lock);
	size_t left = 0;
	for (size_t i = 0; i < q->nrows; i++)
		left += q->present[i];
	pthread_mutex_unlock(&q->lock);
	return left;
}

/* ---- the fake uplink (the server) ---- */

struct sent {
	int token;
	char *payload;
	bool settled; /* delivered or failed */
	int64_t first_id;
	int64_t at_ms; /* when it was sent */
};

struct fake_uplink {
	struct uplink up;
	pthread_mutex_t lock;
	const struct uplink_events *ev;
	void *ctx;
	struct sent sent[SENT_MAX];
	size_t nsent;
	int next_token;
	int fail_send; /* error to return from send, 0: none */
	int send_calls;
	size_t outstanding, max_outstanding;
};

static void fu_bind(void *impl, const struct uplink_events *ev, void *ctx)
{
	struct fake_uplink *u = impl;
	u->ev = ev;
	u->ctx = ctx;
}

static int fu_start(void *impl)
{
	(void)impl;
	return 0;
}

static int fu_send(void *impl, const struct uplink_message *msg, int *token)
{
	struct fake_uplink *u = impl;
	pthread_mutex_lock(&u->lock);
	u->send_calls++;
	if (u->fail_send || u->nsent == SENT_MAX) {
		int rc = u->fail_send ? u->fail_send : MB_ERR_NOMEM;
		pthread_mutex_unlock(&u->lock);
		return rc;
	}
	/* The payload must be exactly len bytes of JSON. */
	assert_int_equal(strlen(msg->payload), msg->len);
	struct sent *s = &u->sent[u->nsent++];
	s->token = ++u->next_token;
	s->payload = strdup(msg->payload);
	s->first_id = msg->first_id;
	s->at_ms = time_mono_ms();
	s->settled = false;
	u->outstanding++;
	if (u->outstanding > u->max_outstanding)
		u->max_outstanding = u->outstanding;
	*token = s->token;
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static void fu_stop(void *impl)
{
	(void)impl;
}

static const struct uplink_ops fake_ops = {fu_bind, fu_start, fu_send, fu_stop};

static void fu_connect(struct fake_uplink *u, bool up)
{
	if (up)
		u->ev->connected(u->ctx);
	else
		u->ev->disconnected(u->ctx);
}

/* Settles sent message i: delivered, or failed with a pause. */
static void fu_settle(struct fake_uplink *u, size_t i, bool delivered, int retry_after_ms)
{
	pthread_mutex_lock(&u->lock);
	assert_false(u->sent[i].settled);
	u->sent[i].settled = true;
	u->outstanding--;
	int token = u->sent[i].token;
	pthread_mutex_unlock(&u->lock);
	if (delivered)
		u->ev->delivered(u->ctx, token);
	else
		u->ev->failed(u->ctx, token, retry_after_ms);
}

/* The server forgets everything unsettled (a QoS 0 connection lost). */
static void fu_forget_unsettled(struct fake_uplink *u)
{
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->nsent; i++)
		u->sent[i].settled = true;
	u->outstanding = 0;
	pthread_mutex_unlock(&u->lock);
}

static size_t fu_count(struct fake_uplink *u)
{
	pthread_mutex_lock(&u->lock);
	size_t n = u->nsent;
	pthread_mutex_unlock(&u->lock);
	return n;
}

/* Delivers every unsettled message, newest first (out of order); returns how many. */
static size_t fu_deliver_all_reversed(struct fake_uplink *u)
{
	size_t n = fu_count(u), done = 0;
	for (size_t k = n; k-- > 0;) {
		pthread_mutex_lock(&u->lock);
		bool settled = u->sent[k].settled;
		pthread_mutex_unlock(&u->lock);
		if (!settled) {
			fu_settle(u, k, true, 0);
			done++;
		}
	}
	return done;
}

/* How many times reading n (its "n" field) was sent, counting arrays. */
static int times_sent(struct fake_uplink *u, int n)
{
	char needle[32];
	int times = 0;
	snprintf(needle, sizeof(needle), "{\"n\":%d", n);
	size_t nlen = strlen(needle);
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->nsent; i++) {
		for (const char *p = u->sent[i].payload; (p = strstr(p, needle)) != NULL; p += nlen)
			if (p[nlen] == '}' || p[nlen] == ' ')
				times++;
	}
	pthread_mutex_unlock(&u->lock);
	return times;
}

/* ---- a fake store under a real ingest ---- */

struct fake_store {
	pthread_mutex_t lock;
	int fail; /* error for put_batch, 0: works */
	int put_calls;
	size_t stored;
	int64_t sent, dropped;
};

static int fs_put(void *ctx, const struct store_record *r, size_t n, int64_t *dropped)
{
	struct fake_store *s = ctx;
	(void)r;
	pthread_mutex_lock(&s->lock);
	s->put_calls++;
	int rc = s->fail;
	if (!rc)
		s->stored += n;
	pthread_mutex_unlock(&s->lock);
	*dropped = 0;
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

static int64_t store_sent(struct fake_store *s)
{
	pthread_mutex_lock(&s->lock);
	int64_t n = s->sent;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- the fixture ---- */

struct fixture {
	struct fake_queue q;
	struct fake_uplink u;
	struct fake_store st;
	struct ingest *in;
	struct forwarder *fw;
};

static void notify_forwarder(void *ctx)
{
	struct fixture *f = ctx;
	if (f->fw)
		forwarder_notify(f->fw);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	pthread_mutex_init(&f->q.lock, NULL);
	pthread_mutex_init(&f->u.lock, NULL);
	pthread_mutex_init(&f->st.lock, NULL);
	f->u.up = (struct uplink){.ops = &fake_ops,
				  .impl = &f->u,
				  .description = "fake",
				  .keeps_unconfirmed = true};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	forwarder_stop(f->fw, 0);
	ingest_stop(f->in, 0);
	forwarder_free(f->fw);
	for (size_t i = 0; i < f->q.nrows; i++)
		free(f->q.payloads[i]);
	for (size_t i = 0; i < f->u.nsent; i++)
		free(f->u.sent[i].payload);
	free(f);
	return 0;
}

/* Starts the forwarder; with_memory adds a real ingest over the fake store. */
static void start(struct fixture *f, const struct forward_options *o, bool with_memory)
{
	struct forward_queue fq = {fq_fetch, fq_remove, "fake", &f->q};
	if (with_memory) {
		struct ingest_store ist = {fs_put, fs_counts, NULL, "fake", &f->st};
		struct ingest_options io = {.memory_max_messages = 10000,
					    .memory_max_bytes = 1 << 24,
					    .policy = STORE_DROP_OLDEST,
					    .notify = notify_forwarder,
					    .ctx = f};
		assert_int_equal(ingest_new(&ist, &io, &f->in), 0);
	}
	assert_int_equal(forwarder_new(o, &fq, f->in, &f->u.up, &f->fw), 0);
	assert_int_equal(forwarder_start(f->fw), 0);
	if (f->in)
		assert_int_equal(ingest_start(f->in), 0);
}

/* Asserts that cond becomes true within timeout_ms (polled every 2 ms). */
#define ASSERT_EVENTUALLY(cond, timeout_ms) \
	do { \
		int64_t deadline_ = time_mono_ms() + (timeout_ms); \
		while (!(cond) && time_mono_ms() < deadline_) \
			time_sleep_ms(2); \
		assert_true(cond); \
	} while (0)

/* Plays the server until the queue is empty: delivers everything sent, out of order. */
static void drain(struct fixture *f, int timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	while (fq_left(&f->q) > 0 && time_mono_ms() < deadline) {
		fu_deliver_all_reversed(&f->u);
		time_sleep_ms(2);
	}
	assert_int_equal(fq_left(&f->q), 0);
}

/* ---- tests ---- */

/* Array mode whose byte bound cuts every array to one reading: the window (4 messages) is
 * never exceeded. On the old forwarder this wrote past its in-flight array. */
static void window_holds_when_arrays_are_cut_by_bytes(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 300, 700); /* two readings never fit in 1024 bytes */
	struct forward_options o = {.window = 4,
				    .send_mode = SEND_FIFO,
				    .array = true,
				    .array_max_count = 50,
				    .array_max_bytes = 1024};
	start(f, &o, false);
	fu_connect(&f->u, true);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 4, 2000);
	time_sleep_ms(100); /* give it time to overfill, were it to */
	assert_int_equal(fu_count(&f->u), 4);
	drain(f, 10000);
	assert_true(f->u.max_outstanding <= 4);
	for (int n = 1; n <= 300; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
	for (size_t i = 0; i < f->q.nrows; i++)
		assert_int_equal(f->q.removed_times[i], 1);
}

/* Arrays cut by count and by bytes hold the readings in order, each exactly once. */
static void arrays_by_count_and_bytes(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 500, 100);
	struct forward_options o = {.window = 3,
				    .send_mode = SEND_FIFO,
				    .array = true,
				    .array_max_count = 7,
				    .array_max_bytes = 450};
	start(f, &o, false);
	fu_connect(&f->u, true);
	drain(f, 10000);
	assert_true(f->u.max_outstanding <= 3);
	size_t count_cut = 0;
	for (size_t i = 0; i < f->u.nsent; i++) {
		const char *p = f->u.sent[i].payload;
		assert_int_equal(p[0], '[');
		assert_true(strlen(p) <= 450);
		size_t items = 1;
		for (; *p; p++)
			items += *p == ',' && p[1] == '{';
		assert_true(items <= 7);
		count_cut += items == 4; /* 4 x 100 bytes + brackets + commas fit, 5 do not */
	}
	assert_true(count_cut > 0);
	for (int n = 1; n <= 500; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
}

/* Confirmations in any order remove exactly the confirmed readings, and nothing is sent
 * twice. */
static void confirmations_out_of_order(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 40, 0);
	struct forward_options o = {.window = 8, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 8, 2000);
	/* Confirm the 2nd, 5th and 8th only: exactly their readings leave the queue. */
	fu_settle(&f->u, 1, true, 0);
	fu_settle(&f->u, 4, true, 0);
	fu_settle(&f->u, 7, true, 0);
	ASSERT_EVENTUALLY(fq_left(&f->q) == 37, 2000);
	pthread_mutex_lock(&f->q.lock);
	assert_false(f->q.present[1]);
	assert_false(f->q.present[4]);
	assert_true(f->q.present[0]);
	pthread_mutex_unlock(&f->q.lock);
	/* A confirmation nobody waits for (stale message id) changes nothing. */
	f->u.ev->delivered(f->u.ctx, 99999);
	drain(f, 5000);
	for (int n = 1; n <= 40; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
	assert_true(f->u.max_outstanding <= 8);
}

/* A full window: nothing more is sent until something is confirmed. */
static void full_window_waits(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 10, 0);
	struct forward_options o = {.window = 2, .send_mode = SEND_LIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 2, 2000);
	time_sleep_ms(150);
	assert_int_equal(fu_count(&f->u), 2);
	/* LIFO: the newest first. */
	assert_string_equal(f->u.sent[0].payload, "{\"n\":10}");
	assert_string_equal(f->u.sent[1].payload, "{\"n\":9}");
	fu_settle(&f->u, 0, true, 0);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 3, 2000);
	assert_string_equal(f->u.sent[2].payload, "{\"n\":8}");
	drain(f, 5000);
}

/* The removal of delivered readings fails (disk full): they are never sent again, the
 * backlog keeps draining, the removal is retried with back-off, and succeeds later. */
static void failed_removal_never_resends(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 600, 0);
	f->q.fail_remove = MB_ERR_DISK_FULL;
	struct forward_options o = {.window = 16, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	int64_t t0 = time_mono_ms();
	/* Everything is sent once and confirmed, although nothing can be removed. */
	int64_t deadline = t0 + 10000;
	while (fu_count(&f->u) < 600 && time_mono_ms() < deadline) {
		fu_deliver_all_reversed(&f->u);
		time_sleep_ms(1);
	}
	fu_deliver_all_reversed(&f->u);
	assert_int_equal(fu_count(&f->u), 600);
	time_sleep_ms(300); /* were it to resend, it would now */
	assert_int_equal(fu_count(&f->u), 600);
	for (int n = 1; n <= 600; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
	assert_int_equal(fq_left(&f->q), 600);
	/* Back-off: a few attempts per second, not one per confirmation. */
	pthread_mutex_lock(&f->q.lock);
	int calls = f->q.remove_calls;
	pthread_mutex_unlock(&f->q.lock);
	int64_t elapsed = time_mono_ms() - t0;
	assert_true(calls <= 2 + elapsed / 100);
	/* The disk has room again: everything delivered is removed, once. */
	pthread_mutex_lock(&f->q.lock);
	f->q.fail_remove = 0;
	pthread_mutex_unlock(&f->q.lock);
	ASSERT_EVENTUALLY(fq_left(&f->q) == 0, 10000);
	for (size_t i = 0; i < f->q.nrows; i++)
		assert_int_equal(f->q.removed_times[i], 1);
}

/* The uplink refuses to send while claiming to be connected: back-off, no storm, no loss. */
static void send_failure_backs_off(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 20, 0);
	f->u.fail_send = MB_ERR_MQTT;
	struct forward_options o = {.window = 4, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	time_sleep_ms(800);
	pthread_mutex_lock(&f->u.lock);
	int calls = f->u.send_calls;
	f->u.fail_send = 0;
	pthread_mutex_unlock(&f->u.lock);
	/* 100, 200, 400 ms...: a handful in 800 ms, not thousands. */
	assert_true(calls >= 2);
	assert_true(calls <= 8);
	drain(f, 10000);
	for (int n = 1; n <= 20; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
}

/* The fetch fails (an I/O error reading the store): retried with back-off, then drains. */
static void fetch_failure_backs_off(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 5, 0);
	f->q.fail_fetch = MB_ERR_STORE;
	struct forward_options o = {.window = 4, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	time_sleep_ms(800);
	pthread_mutex_lock(&f->q.lock);
	int calls = f->q.fetch_calls;
	f->q.fail_fetch = 0;
	pthread_mutex_unlock(&f->q.lock);
	assert_true(calls >= 2);
	assert_true(calls <= 8);
	drain(f, 10000);
}

/* A message the server refused (HTTP 5xx, 429): its readings are sent again after the
 * pause it asked for. */
static void refused_message_is_sent_again_after_pause(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 1, 0);
	struct forward_options o = {.window = 4, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 1, 2000);
	int64_t t0 = time_mono_ms();
	fu_settle(&f->u, 0, false, 300);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 2, 3000);
	assert_true(time_mono_ms() - t0 >= 290);
	assert_string_equal(f->u.sent[1].payload, "{\"n\":1}");
	assert_int_equal(fq_left(&f->q), 1);
	fu_settle(&f->u, 1, true, 0);
	ASSERT_EVENTUALLY(fq_left(&f->q) == 0, 2000);
}

/*
 * An uplink that reports failures without a pause (HTTP: connection refused) gets a
 * growing back-off: the episode lasts until a message is delivered, not until the next
 * send() is accepted (which for a queueing uplink is at once). Before, every failure was
 * followed by a resend 100 ms later, forever. Each message also names its first reading.
 */
static void refusals_back_off_until_a_delivery(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 3, 0);
	struct forward_options o = {.window = 1, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	for (size_t k = 0; k < 5; k++) {
		ASSERT_EVENTUALLY(fu_count(&f->u) == k + 1, 5000);
		assert_int_equal(f->u.sent[k].first_id, 1);
		fu_settle(&f->u, k, false, 0);
	}
	ASSERT_EVENTUALLY(fu_count(&f->u) == 6, 8000);
	/* 100, 200, 400, 800, 1600 ms: the fifth gap is far above the first. */
	int64_t first_gap = f->u.sent[1].at_ms - f->u.sent[0].at_ms;
	int64_t fifth_gap = f->u.sent[5].at_ms - f->u.sent[4].at_ms;
	assert_true(first_gap >= 90);
	assert_true(fifth_gap >= 1400);
	/* A delivery ends the episode: the next message goes at once. */
	fu_settle(&f->u, 5, true, 0);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 7, 2000);
	assert_true(f->u.sent[6].at_ms - f->u.sent[5].at_ms < 500);
	assert_int_equal(f->u.sent[6].first_id, 2);
	fu_settle(&f->u, 6, true, 0);
	drain(f, 5000);
}

/* QoS 0: a lost connection loses what was unconfirmed; it is sent again (never lost, at
 * most a window of duplicates). */
static void unconfirmed_resent_when_uplink_forgets(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 30, 0);
	f->u.up.keeps_unconfirmed = false;
	struct forward_options o = {.window = 5, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 5, 2000);
	fu_settle(&f->u, 0, true, 0);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 6, 2000); /* the window refilled */
	fu_forget_unsettled(&f->u);
	fu_connect(&f->u, false);
	time_sleep_ms(50);
	assert_int_equal(fu_count(&f->u), 6); /* nothing is sent while down */
	fu_connect(&f->u, true);
	drain(f, 5000);
	int dup = 0;
	for (int n = 1; n <= 30; n++) {
		int t = times_sent(&f->u, n);
		assert_true(t >= 1);
		dup += t - 1;
	}
	assert_true(dup <= 5);                     /* at most the window */
	assert_int_equal(times_sent(&f->u, 1), 1); /* confirmed before the loss */
}

/* QoS 1/2: after a reconnection the session resends, so the forwarder does not; the late
 * confirmations still remove the readings. */
static void unconfirmed_kept_when_uplink_resends(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 10, 0);
	struct forward_options o = {.window = 4, .send_mode = SEND_FIFO};
	start(f, &o, false);
	fu_connect(&f->u, true);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 4, 2000);
	fu_connect(&f->u, false);
	fu_connect(&f->u, true);
	time_sleep_ms(100);
	assert_int_equal(fu_count(&f->u), 4);
	drain(f, 5000);
	for (int n = 1; n <= 10; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
}

static void push(struct fixture *f, int n)
{
	char *json = malloc(32);
	assert_non_null(json);
	snprintf(json, 32, "{\"n\":%d}", n);
	ingest_push(f->in, n, "dev", json, strlen(json));
}

/* The store cannot be written: readings waiting in memory are sent from memory, counted
 * as sent, and never stored; the stored backlog keeps draining too. */
static void memory_readings_sent_while_store_fails(void **state)
{
	struct fixture *f = *state;
	fq_fill(&f->q, 50, 0); /* the stored backlog: n = 1..50 */
	f->st.fail = MB_ERR_DISK_FULL;
	struct forward_options o = {.window = 8, .send_mode = SEND_FIFO};
	start(f, &o, true);
	fu_connect(&f->u, true);
	for (int n = 101; n <= 130; n++)
		push(f, n);
	int64_t deadline = time_mono_ms() + 10000;
	while ((fq_left(&f->q) > 0 || fu_count(&f->u) < 80) && time_mono_ms() < deadline) {
		fu_deliver_all_reversed(&f->u);
		time_sleep_ms(2);
	}
	assert_int_equal(fq_left(&f->q), 0);
	for (int n = 1; n <= 50; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
	for (int n = 101; n <= 130; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
	pthread_mutex_lock(&f->st.lock);
	assert_int_equal(f->st.stored, 0);
	f->st.fail = 0; /* the store recovers: the 30 sent from memory are counted */
	pthread_mutex_unlock(&f->st.lock);
	ASSERT_EVENTUALLY(store_sent(&f->st) == 30, 10000);
}

struct stop_args {
	struct forwarder *fw;
	int flush_ms;
	bool done;
	pthread_mutex_t lock;
};

static void *stop_thread(void *arg)
{
	struct stop_args *a = arg;
	forwarder_stop(a->fw, a->flush_ms);
	pthread_mutex_lock(&a->lock);
	a->done = true;
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static bool stop_done(struct stop_args *a)
{
	pthread_mutex_lock(&a->lock);
	bool d = a->done;
	pthread_mutex_unlock(&a->lock);
	return d;
}

/* Shutdown while the store cannot be written: readings in memory are still sent and
 * confirmed before the forwarder stops, and the stop ends as soon as that is done. */
static void shutdown_flushes_memory(void **state)
{
	struct fixture *f = *state;
	f->st.fail = MB_ERR_READONLY;
	struct forward_options o = {.window = 4, .send_mode = SEND_FIFO};
	start(f, &o, true);
	for (int n = 1; n <= 20; n++)
		push(f, n);
	/* Not connected yet: they wait in memory. */
	ASSERT_EVENTUALLY(ingest_claimable(f->in), 2000);
	fu_connect(&f->u, true);
	ASSERT_EVENTUALLY(fu_count(&f->u) >= 4, 2000);
	struct stop_args a = {.fw = f->fw, .flush_ms = 10000};
	pthread_mutex_init(&a.lock, NULL);
	pthread_t t;
	int64_t t0 = time_mono_ms();
	assert_int_equal(pthread_create(&t, NULL, stop_thread, &a), 0);
	while (!stop_done(&a) && time_mono_ms() - t0 < 10000) {
		fu_deliver_all_reversed(&f->u);
		time_sleep_ms(2);
	}
	pthread_join(t, NULL);
	assert_true(time_mono_ms() - t0 < 5000); /* ended when memory was empty */
	for (int n = 1; n <= 20; n++)
		assert_int_equal(times_sent(&f->u, n), 1);
	assert_false(ingest_claimable(f->in));
	pthread_mutex_destroy(&a.lock);
}

/* Shutdown with the uplink down: memory readings go back to the ingest, nothing waits
 * past the flush time. */
static void shutdown_gives_memory_back(void **state)
{
	struct fixture *f = *state;
	f->st.fail = MB_ERR_DISK_FULL;
	struct forward_options o = {.window = 4, .send_mode = SEND_FIFO};
	start(f, &o, true);
	fu_connect(&f->u, true);
	for (int n = 1; n <= 3; n++)
		push(f, n);
	ASSERT_EVENTUALLY(fu_count(&f->u) == 3, 2000);
	fu_connect(&f->u, false); /* QoS 1: the entries stay until the stop */
	int64_t t0 = time_mono_ms();
	forwarder_stop(f->fw, 300);
	assert_true(time_mono_ms() - t0 < 2000);
	/* The three are back in memory, in order, for the ingest's last attempt. */
	size_t n = 0;
	struct ingest_reading *list = ingest_claim(f->in, SEND_FIFO, 10, &n);
	assert_int_equal(n, 3);
	assert_string_equal(list->payload, "{\"n\":1}");
	assert_string_equal(list->next->next->payload, "{\"n\":3}");
	ingest_unclaim(f->in, list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(window_holds_when_arrays_are_cut_by_bytes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(arrays_by_count_and_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(confirmations_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(full_window_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_removal_never_resends, setup, teardown),
		cmocka_unit_test_setup_teardown(send_failure_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(fetch_failure_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(refusals_back_off_until_a_delivery, setup,
						teardown),
		cmocka_unit_test_setup_teardown(refused_message_is_sent_again_after_pause, setup,
						teardown),
		cmocka_unit_test_setup_teardown(unconfirmed_resent_when_uplink_forgets, setup,
						teardown),
		cmocka_unit_test_setup_teardown(unconfirmed_kept_when_uplink_resends, setup,
						teardown),
		cmocka_unit_test_setup_teardown(memory_readings_sent_while_store_fails, setup,
						teardown),
		cmocka_unit_test_setup_teardown(shutdown_flushes_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(shutdown_gives_memory_back, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
