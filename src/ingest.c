/*
 * ingest.c - group commit into the store, with a bounded in-memory fallback; see ingest.h.
 *
 * The pending list is a doubly linked list in arrival order (each reading has a sequence
 * number), guarded by one mutex. The writer takes a batch off the front under the lock,
 * writes it without holding the lock (so bus workers never wait for an fsync), and on
 * failure merges it back. The forwarder may take readings off either end while the store
 * fails, and give back what it could not deliver. Everything that comes back is merged by
 * sequence number, so the list stays in arrival order whatever the interleaving.
 */
#include "ingest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "liveness.h"
#include "log.h"
#include "timeutil.h"

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
/* Largest group committed at once: bounds the transaction and the record array. */
#define BATCH_MAX 4096
/* A small group waits GATHER_MS for more before it is committed: the TCP pool hands in
 * readings one by one, and committing each trickle cost an fdatasync per 3 readings
 * (Neuron's workload: about a fifth of the daemon's CPU; docs/performance.md). */
#define GATHER_MIN 64
#define GATHER_MS 3
/* The longest the writer waits without a sign of life (liveness.h). */
#define BEAT_MS 1000

struct ingest {
	struct ingest_store st;
	struct ingest_options opt;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	int64_t stop_deadline_ms;
	struct ingest_reading *head, *tail;
	size_t count, bytes; /* of the list (claimed readings are the forwarder's) */
	uint64_t next_seq;
	size_t claimed;
	/* Counts not yet added to the store's counters; episode bookkeeping. */
	int64_t dropped_unrecorded, sent_unrecorded, filtered_unrecorded;
	bool memory_full;
	int64_t memory_dropped_episode;
	int failing; /* the mb_error of the current store failure, 0 when writes work */
	int64_t store_full_dropped; /* drops by the store's limits in the current episode */
	struct liveness beat;       /* the writer thread's */
};

static int sqlite_put_batch(void *ctx, const struct store_record *r, size_t n, int64_t *dropped)
{
	return store_put_batch(ctx, r, n, dropped);
}

static int sqlite_add_counts(void *ctx, int64_t sent, int64_t dropped)
{
	int rc = sent ? store_count_sent(ctx, sent) : 0;
	if (rc == 0 && dropped)
		rc = store_count_dropped(ctx, dropped);
	return rc;
}

static int sqlite_recover(void *ctx)
{
	return store_recover(ctx);
}

static int sqlite_add_filtered(void *ctx, int64_t filtered)
{
	return store_count_filtered(ctx, filtered);
}

struct ingest_store ingest_store_of(struct store *s)
{
	return (struct ingest_store){
		.put_batch = sqlite_put_batch,
		.add_counts = sqlite_add_counts,
		.recover = sqlite_recover,
		.add_filtered = sqlite_add_filtered,
		.name = store_path(s),
		.ctx = s,
	};
}

static void free_reading(struct ingest_reading *p)
{
	free(p->device);
	free(p->payload);
	free(p->topic);
	free(p);
}

static void free_list(struct ingest_reading *p)
{
	while (p) {
		struct ingest_reading *next = p->next;
		free_reading(p);
		p = next;
	}
}

/* List primitives; the lock is held. */
static void unlink_reading(struct ingest *in, struct ingest_reading *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		in->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		in->tail = p->prev;
	p->next = p->prev = NULL;
	in->count--;
	in->bytes -= p->len;
}

/* Takes the oldest reading off the list (the list is not empty). */
static struct ingest_reading *pop_front(struct ingest *in)
{
	struct ingest_reading *p = in->head;
	in->head = p->next;
	if (in->head)
		in->head->prev = NULL;
	else
		in->tail = NULL;
	p->next = p->prev = NULL;
	in->count--;
	in->bytes -= p->len;
	return p;
}

static void insert_before(struct ingest *in, struct ingest_reading *pos, struct ingest_reading *p)
{
	p->next = pos;
	p->prev = pos ? pos->prev : in->tail;
	if (p->prev)
		p->prev->next = p;
	else
		in->head = p;
	if (pos)
		pos->prev = p;
	else
		in->tail = p;
	in->count++;
	in->bytes += p->len;
}

/* Merges a NULL-terminated list sorted by ascending seq into the list: O(n + m). */
static void merge_back(struct ingest *in, struct ingest_reading *run)
{
	struct ingest_reading *pos = in->head;
	while (run) {
		struct ingest_reading *next = run->next;
		while (pos && pos->seq < run->seq)
			pos = pos->next;
		insert_before(in, pos, run);
		run = next;
	}
}

static int by_seq(const void *a, const void *b)
{
	uint64_t x = (*(struct ingest_reading *const *)a)->seq;
	uint64_t y = (*(struct ingest_reading *const *)b)->seq;
	return x < y ? -1 : x > y;
}

/* Sorts a NULL-terminated list by seq: given-back lists come in any order (a LIFO claim,
 * messages confirmed out of order). Returns NULL when out of memory (list untouched). */
static struct ingest_reading *sorted(struct ingest_reading *list, size_t n)
{
	struct ingest_reading **v = malloc(n * sizeof(struct ingest_reading *));
	if (!v)
		return NULL;
	size_t i = 0;
	for (struct ingest_reading *p = list; p; p = p->next)
		v[i++] = p;
	qsort(v, n, sizeof(struct ingest_reading *), by_seq);
	for (i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	struct ingest_reading *first = v[0];
	free(v);
	return first;
}

static void notify(struct ingest *in)
{
	if (in->opt.notify)
		in->opt.notify(in->opt.ctx);
}

void ingest_push(struct ingest *in, int64_t ts_ms, const char *device_id, char *payload, size_t len)
{
	ingest_push_to(in, ts_ms, device_id, NULL, payload, len);
}

void ingest_count_filtered(struct ingest *in, int64_t n)
{
	if (!in->st.add_filtered)
		return; /* nowhere to count them: the writer must not wait for it */
	pthread_mutex_lock(&in->lock);
	in->filtered_unrecorded += n;
	pthread_cond_signal(&in->wake);
	pthread_mutex_unlock(&in->lock);
}

void ingest_push_to(struct ingest *in, int64_t ts_ms, const char *device_id, char *topic,
		    char *payload, size_t len)
{
	struct ingest_reading *p = calloc(1, sizeof(*p));
	char *device = strdup(device_id);
	if (!p || !device) {
		log_error("device %s: out of memory; reading lost", device_id);
		free(p);
		free(device);
		free(payload);
		free(topic);
		return;
	}
	p->ts_ms = ts_ms;
	p->device = device;
	p->payload = payload;
	p->len = len;
	p->topic = topic;

	pthread_mutex_lock(&in->lock);
	p->seq = in->next_seq++;
	bool full = in->count + 1 > in->opt.memory_max_messages ||
		    in->bytes + len > in->opt.memory_max_bytes;
	if (full && in->opt.policy == STORE_DROP_NEWEST) {
		free_reading(p);
		p = NULL;
		in->dropped_unrecorded++;
		in->memory_dropped_episode++;
	} else if (full) {
		while (in->head && (in->count + 1 > in->opt.memory_max_messages ||
				    in->bytes + len > in->opt.memory_max_bytes)) {
			free_reading(pop_front(in));
			in->dropped_unrecorded++;
			in->memory_dropped_episode++;
		}
	}
	if (full && !in->memory_full) {
		log_error("memory buffer full (logger.memory_max_messages %zu / memory_max_bytes "
			  "%zu; the store is not writable): dropping the %s readings until the "
			  "store recovers",
			  in->opt.memory_max_messages, in->opt.memory_max_bytes,
			  in->opt.policy == STORE_DROP_NEWEST ? "newest" : "oldest");
		in->memory_full = true;
	}
	if (p)
		insert_before(in, NULL, p);
	bool failing = in->failing != 0;
	pthread_cond_signal(&in->wake);
	pthread_mutex_unlock(&in->lock);
	if (failing)
		notify(in); /* the forwarder may send it from memory */
}

bool ingest_store_failing(struct ingest *in)
{
	pthread_mutex_lock(&in->lock);
	bool yes = in->failing != 0;
	pthread_mutex_unlock(&in->lock);
	return yes;
}

bool ingest_claimable(struct ingest *in)
{
	pthread_mutex_lock(&in->lock);
	bool yes = in->failing && in->head;
	pthread_mutex_unlock(&in->lock);
	return yes;
}

struct ingest_reading *ingest_claim(struct ingest *in, enum send_mode mode, size_t max, size_t *n)
{
	struct ingest_reading *first = NULL, **link = &first;
	size_t taken = 0;
	pthread_mutex_lock(&in->lock);
	while (in->failing && taken < max && in->head) {
		struct ingest_reading *p = mode == SEND_LIFO ? in->tail : in->head;
		unlink_reading(in, p);
		*link = p;
		link = &p->next;
		taken++;
	}
	in->claimed += taken;
	pthread_mutex_unlock(&in->lock);
	*n = taken;
	return first;
}

void ingest_unclaim(struct ingest *in, struct ingest_reading *list)
{
	size_t n = 0;
	for (struct ingest_reading *p = list; p; p = p->next)
		n++;
	if (n == 0)
		return;
	struct ingest_reading *run = n > 1 ? sorted(list, n) : list;
	pthread_mutex_lock(&in->lock);
	if (run) {
		merge_back(in, run);
	} else {
		/* Out of memory sorting: one at a time (slow, but in order and nothing lost). */
		while (list) {
			struct ingest_reading *next = list->next;
			list->next = NULL;
			merge_back(in, list);
			list = next;
		}
	}
	in->claimed -= n;
	pthread_cond_signal(&in->wake); /* the writer stores them if it can */
	pthread_mutex_unlock(&in->lock);
}

void ingest_delivered(struct ingest *in, struct ingest_reading *list)
{
	size_t n = 0;
	for (struct ingest_reading *p = list; p; p = p->next)
		n++;
	free_list(list);
	pthread_mutex_lock(&in->lock);
	in->claimed -= n;
	in->sent_unrecorded += (int64_t)n;
	pthread_mutex_unlock(&in->lock);
}

/* Writes n readings of list; returns 0 or the store's error. */
static int write_batch(struct ingest *in, struct ingest_reading *list, size_t n, int64_t *dropped)
{
	struct store_record *r = malloc(n * sizeof(*r));
	if (!r)
		return MB_ERR_NOMEM;
	size_t i = 0;
	for (struct ingest_reading *p = list; p && i < n; p = p->next, i++)
		r[i] = (struct store_record){p->ts_ms, p->device, p->payload, p->len, p->topic};
	int rc = in->st.put_batch(in->st.ctx, r, n, dropped);
	free(r);
	return rc;
}

/* Logs the store's size limit being hit, and cleared, once per episode. */
static void note_store_limit(struct ingest *in, int64_t dropped, size_t n)
{
	if (dropped > 0) {
		if (in->store_full_dropped == 0)
			log_warn("store %s is full (its limit is reached): dropping the %s readings; "
				 "`modbridge queue` shows the count",
				 in->st.name,
				 in->opt.policy == STORE_DROP_NEWEST ? "newest" : "oldest");
		in->store_full_dropped += dropped;
	} else if (n > 0 && in->store_full_dropped > 0) {
		log_info("store %s is no longer full; %lld reading(s) were dropped meanwhile",
			 in->st.name, (long long)in->store_full_dropped);
		in->store_full_dropped = 0;
	}
}

static void note_failure(struct ingest *in, int rc)
{
	if (rc == in->failing)
		return;
	const char *hint = rc == MB_ERR_DISK_FULL  ? "free some space"
			   : rc == MB_ERR_READONLY ? "the file system or file is read-only"
						   : "see the debug log (-v) for SQLite's message";
	log_error("store %s: cannot store readings: %s (%s); keeping them in memory (up to %zu), "
		  "sending them from there while the uplink is up, and retrying",
		  in->st.name, mb_strerror(rc), hint, in->opt.memory_max_messages);
	in->failing = rc;
}

static void note_recovery(struct ingest *in, size_t stored)
{
	if (in->failing)
		log_info("store %s: writable again; %zu reading(s) kept in memory are being stored",
			 in->st.name, in->count + stored);
	if (in->memory_full && in->count < in->opt.memory_max_messages) {
		log_warn("memory buffer no longer full; %lld reading(s) were dropped while the store "
			 "was not writable",
			 (long long)in->memory_dropped_episode);
		in->memory_full = false;
		in->memory_dropped_episode = 0;
	}
	in->failing = 0;
}

/* Takes up to BATCH_MAX readings off the front (lock held); returns the detached list. */
static struct ingest_reading *take_batch(struct ingest *in, size_t *n)
{
	struct ingest_reading *batch = in->head, *last = NULL;
	size_t count = 0, bytes = 0;
	for (struct ingest_reading *p = in->head; p && count < BATCH_MAX; p = p->next) {
		last = p;
		count++;
		bytes += p->len;
	}
	if (last) {
		in->head = last->next;
		if (in->head)
			in->head->prev = NULL;
		else
			in->tail = NULL;
		last->next = NULL;
	}
	in->count -= count;
	in->bytes -= bytes;
	*n = count;
	return count ? batch : NULL;
}

/* Waits until retry_at_ms (lock held): new readings only join the list; a stop ends the
 * back-off, and while stopping the retries come every 100 ms until the deadline. */
static void wait_for_retry(struct ingest *in, int64_t retry_at_ms)
{
	int64_t now = time_mono_ms();
	if (in->stop) {
		int64_t ms = retry_at_ms - now < 100 ? retry_at_ms - now : 100;
		pthread_mutex_unlock(&in->lock);
		time_sleep_ms(ms);
		pthread_mutex_lock(&in->lock);
		return;
	}
	/* At most BEAT_MS at a time; the caller's loop comes back until retry_at_ms. */
	struct timespec ts;
	time_mono_deadline(retry_at_ms - now < BEAT_MS ? retry_at_ms - now : BEAT_MS, &ts);
	while (!in->stop && pthread_cond_timedwait(&in->wake, &in->lock, &ts) == 0)
		;
}

static void *writer_main(void *arg)
{
	struct ingest *in = arg;
	int64_t retry_ms = RETRY_MIN_MS, retry_at_ms = 0;

	thread_set_name("mb-writer");
	pthread_mutex_lock(&in->lock);
	for (;;) {
		liveness_beat(&in->beat);
		if (in->failing && time_mono_ms() < retry_at_ms) {
			wait_for_retry(in, retry_at_ms);
			if (in->stop)
				retry_at_ms = 0; /* stopping: try again now */
			continue;
		}
		/* Stopping with only counters left: not worth holding the shutdown for. */
		if (!in->head &&
		    (in->stop || (in->dropped_unrecorded == 0 && in->sent_unrecorded == 0 &&
				  in->filtered_unrecorded == 0))) {
			if (in->stop)
				break;
			struct timespec ts;
			time_mono_deadline(BEAT_MS, &ts); /* idle, but alive: beat now and then */
			pthread_cond_timedwait(&in->wake, &in->lock, &ts);
			continue;
		}
		if (in->count < GATHER_MIN && !in->stop && in->dropped_unrecorded == 0 &&
		    !in->failing) {
			pthread_mutex_unlock(&in->lock);
			time_sleep_ms(GATHER_MS);
			pthread_mutex_lock(&in->lock);
		}
		size_t n = 0;
		struct ingest_reading *batch = take_batch(in, &n);
		int64_t dropped_unrec = in->dropped_unrecorded, sent_unrec = in->sent_unrecorded;
		int64_t filtered_unrec = in->st.add_filtered ? in->filtered_unrecorded : 0;
		pthread_mutex_unlock(&in->lock);

		int64_t dropped = 0;
		int rc = n ? write_batch(in, batch, n, &dropped) : 0;
		int rc_counter = rc == 0 && (dropped_unrec || sent_unrec)
					 ? in->st.add_counts(in->st.ctx, sent_unrec, dropped_unrec)
					 : 0;
		if (rc == 0 && rc_counter == 0 && filtered_unrec)
			rc_counter = in->st.add_filtered(in->st.ctx, filtered_unrec);
		if (rc == MB_ERR_CORRUPT && in->st.recover)
			in->st.recover(
				in->st.ctx); /* moves the file aside; the retry goes to a fresh
						       one */

		pthread_mutex_lock(&in->lock);
		if (rc == 0) {
			free_list(batch);
			batch = NULL;
			note_store_limit(in, dropped, n);
		}
		if (rc == 0 && rc_counter == 0) {
			in->dropped_unrecorded -= dropped_unrec;
			in->sent_unrecorded -= sent_unrec;
			in->filtered_unrecorded -= filtered_unrec;
			note_recovery(in, n);
			retry_ms = RETRY_MIN_MS;
			if (n > 0) {
				pthread_mutex_unlock(&in->lock);
				notify(in);
				pthread_mutex_lock(&in->lock);
			}
			continue;
		}
		if (rc == 0)
			rc = rc_counter;
		merge_back(in, batch);
		note_failure(in, rc);
		if (in->stop && time_mono_ms() >= in->stop_deadline_ms)
			break;
		retry_at_ms = time_mono_ms() + (in->stop ? 100 : retry_ms);
		if (!in->stop)
			retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
		if (in->head) {
			/* The forwarder may send them from memory meanwhile. */
			pthread_mutex_unlock(&in->lock);
			notify(in);
			pthread_mutex_lock(&in->lock);
		}
	}
	pthread_mutex_unlock(&in->lock);
	return NULL;
}

int ingest_new(const struct ingest_store *st, const struct ingest_options *opt, struct ingest **out)
{
	struct ingest *in = calloc(1, sizeof(*in));
	if (!in)
		return MB_ERR_NOMEM;
	in->st = *st;
	in->opt = *opt;
	pthread_mutex_init(&in->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&in->wake, &attr);
	pthread_condattr_destroy(&attr);
	*out = in;
	return 0;
}

int ingest_start(struct ingest *in)
{
	liveness_beat(&in->beat);
	if (pthread_create(&in->thread, NULL, writer_main, in) != 0)
		return MB_ERR_NOMEM;
	in->started = true;
	return 0;
}

int64_t ingest_last_beat_ms(struct ingest *in)
{
	return liveness_last(&in->beat);
}

void ingest_stop(struct ingest *in, int timeout_ms)
{
	if (!in)
		return;
	pthread_mutex_lock(&in->lock);
	in->stop = true;
	in->stop_deadline_ms = time_mono_ms() + timeout_ms;
	pthread_cond_broadcast(&in->wake);
	pthread_mutex_unlock(&in->lock);
	if (in->started)
		pthread_join(in->thread, NULL);

	if (in->count)
		log_error("store %s: %zu reading(s) could not be stored or sent before shutdown and "
			  "are lost (%s)",
			  in->st.name, in->count, mb_strerror(in->failing));
	if (in->claimed)
		log_error("store %s: %zu reading(s) were still claimed by the forwarder at shutdown",
			  in->st.name, in->claimed);
	if (in->sent_unrecorded || in->dropped_unrecorded)
		log_debug("store %s: could not add %lld sent and %lld dropped to its counters",
			  in->st.name, (long long)in->sent_unrecorded,
			  (long long)in->dropped_unrecorded);
	free_list(in->head);
	pthread_mutex_destroy(&in->lock);
	pthread_cond_destroy(&in->wake);
	free(in);
}
