/*
 * ingest.c - group commit into the store, with a bounded in-memory fallback; see ingest.h.
 *
 * The pending list is a singly linked FIFO guarded by one mutex. The writer swaps the
 * whole list out under the lock, writes it without holding the lock (so bus workers never
 * wait for an fsync), and on failure splices it back in front of anything that arrived
 * meanwhile, preserving order.
 */
#include "ingest.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
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

struct pending {
	struct pending *next;
	int64_t ts_ms;
	char *device;
	char *payload;
	size_t len;
};

struct ingest {
	struct store *store;
	struct ingest_options opt;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	int64_t stop_deadline_ms;
	struct pending *head, *tail;
	size_t count, bytes;
	/* Drops in memory not yet added to the store's counter; episode bookkeeping. */
	int64_t dropped_unrecorded;
	bool memory_full;
	int64_t memory_dropped_episode;
	int failing; /* the mb_error of the current store failure, 0 when writes work */
	int64_t store_full_dropped; /* drops by the store's limits in the current episode */
};

static void free_pending(struct pending *p)
{
	free(p->device);
	free(p->payload);
	free(p);
}

void ingest_push(struct ingest *in, int64_t ts_ms, const char *device_id, char *payload, size_t len)
{
	struct pending *p = calloc(1, sizeof(*p));
	char *device = strdup(device_id);
	if (!p || !device) {
		log_error("device %s: out of memory; reading lost", device_id);
		free(p);
		free(device);
		free(payload);
		return;
	}
	p->ts_ms = ts_ms;
	p->device = device;
	p->payload = payload;
	p->len = len;

	pthread_mutex_lock(&in->lock);
	bool full = in->count + 1 > in->opt.memory_max_messages ||
		    in->bytes + len > in->opt.memory_max_bytes;
	if (full && in->opt.policy == STORE_DROP_NEWEST) {
		free_pending(p);
		p = NULL;
	} else if (full) {
		while (in->head && (in->count + 1 > in->opt.memory_max_messages ||
				    in->bytes + len > in->opt.memory_max_bytes)) {
			struct pending *old = in->head;
			in->head = old->next;
			if (!in->head)
				in->tail = NULL;
			in->count--;
			in->bytes -= old->len;
			free_pending(old);
			in->dropped_unrecorded++;
			in->memory_dropped_episode++;
		}
	}
	if (full) {
		if (!p) {
			in->dropped_unrecorded++;
			in->memory_dropped_episode++;
		}
		if (!in->memory_full)
			log_error("memory buffer full (%zu readings, the store is not writable): dropping "
				  "the %s readings until the store recovers",
				  in->count,
				  in->opt.policy == STORE_DROP_NEWEST ? "newest" : "oldest");
		in->memory_full = true;
	}
	if (p) {
		if (in->tail)
			in->tail->next = p;
		else
			in->head = p;
		in->tail = p;
		in->count++;
		in->bytes += len;
	}
	pthread_cond_signal(&in->wake);
	pthread_mutex_unlock(&in->lock);
}

size_t ingest_pending(struct ingest *in)
{
	pthread_mutex_lock(&in->lock);
	size_t n = in->count;
	pthread_mutex_unlock(&in->lock);
	return n;
}

/* Writes up to BATCH_MAX readings from list; returns 0 or the store's error. */
static int write_batch(struct ingest *in, struct pending *list, size_t n, int64_t *dropped)
{
	struct store_record *r = malloc(n * sizeof(*r));
	if (!r)
		return MB_ERR_NOMEM;
	size_t i = 0;
	for (struct pending *p = list; p && i < n; p = p->next, i++)
		r[i] = (struct store_record){p->ts_ms, p->device, p->payload, p->len};
	int rc = store_put_batch(in->store, r, n, dropped);
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
				 store_path(in->store),
				 in->opt.policy == STORE_DROP_NEWEST ? "newest" : "oldest");
		in->store_full_dropped += dropped;
	} else if (n > 0 && in->store_full_dropped > 0) {
		log_info("store %s is no longer full; %lld reading(s) were dropped meanwhile",
			 store_path(in->store), (long long)in->store_full_dropped);
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
	log_error("store %s: cannot store readings: %s (%s); keeping them in memory (up to %zu) "
		  "and retrying",
		  store_path(in->store), mb_strerror(rc), hint, in->opt.memory_max_messages);
	in->failing = rc;
}

static void *writer_main(void *arg)
{
	struct ingest *in = arg;
	int64_t retry_ms = RETRY_MIN_MS;

	pthread_mutex_lock(&in->lock);
	for (;;) {
		if (!in->head && in->dropped_unrecorded == 0) {
			if (in->stop)
				break;
			pthread_cond_wait(&in->wake, &in->lock);
			continue;
		}
		if (in->count < GATHER_MIN && !in->stop && in->dropped_unrecorded == 0 &&
		    !in->failing) {
			pthread_mutex_unlock(&in->lock);
			time_sleep_ms(GATHER_MS);
			pthread_mutex_lock(&in->lock);
		}
		/* Take up to BATCH_MAX readings off the front. */
		struct pending *batch = in->head, *last = NULL;
		size_t n = 0, bytes = 0;
		for (struct pending *p = in->head; p && n < BATCH_MAX; p = p->next) {
			last = p;
			n++;
			bytes += p->len;
		}
		if (last) {
			in->head = last->next;
			if (!in->head)
				in->tail = NULL;
			last->next = NULL;
		}
		in->count -= n;
		in->bytes -= bytes;
		int64_t unrecorded = in->dropped_unrecorded;
		pthread_mutex_unlock(&in->lock);

		int64_t dropped = 0;
		int rc = n ? write_batch(in, batch, n, &dropped) : 0;
		int rc_counter =
			rc == 0 && unrecorded ? store_count_dropped(in->store, unrecorded) : 0;
		if (rc == MB_ERR_CORRUPT)
			store_recover(
				in->store); /* moves the file aside; the retry goes to a fresh one */

		pthread_mutex_lock(&in->lock);
		if (rc == 0) {
			while (batch) {
				struct pending *next = batch->next;
				free_pending(batch);
				batch = next;
			}
			last = NULL;
			note_store_limit(in, dropped, n);
		}
		if (rc == 0 && rc_counter == 0) {
			in->dropped_unrecorded -= unrecorded;
			if (in->failing)
				log_info("store %s: writable again; %zu reading(s) kept in memory are being "
					 "stored",
					 store_path(in->store), in->count + n);
			if (in->memory_full && in->count < in->opt.memory_max_messages) {
				log_warn("memory buffer no longer full; %lld reading(s) were dropped while the "
					 "store was not writable",
					 (long long)in->memory_dropped_episode);
				in->memory_full = false;
				in->memory_dropped_episode = 0;
			}
			in->failing = 0;
			retry_ms = RETRY_MIN_MS;
			if (in->opt.committed && n > 0) {
				pthread_mutex_unlock(&in->lock);
				in->opt.committed(in->opt.ctx);
				pthread_mutex_lock(&in->lock);
			}
			continue;
		}
		if (rc == 0)
			rc = rc_counter;
		/* Put the batch back in front, in order. */
		if (last) {
			last->next = in->head;
			in->head = batch;
			if (!in->tail)
				in->tail = last;
			in->count += n;
			in->bytes += bytes;
		}
		note_failure(in, rc);
		if (in->stop) {
			if (time_mono_ms() >= in->stop_deadline_ms)
				break;
			pthread_mutex_unlock(&in->lock);
			time_sleep_ms(100);
			pthread_mutex_lock(&in->lock);
			continue;
		}
		struct timespec ts;
		time_mono_deadline(retry_ms, &ts);
		/* Wakes early only for stop; new readings just join the list. */
		while (!in->stop && pthread_cond_timedwait(&in->wake, &in->lock, &ts) == 0)
			;
		retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
	}
	pthread_mutex_unlock(&in->lock);
	return NULL;
}

int ingest_start(struct store *s, const struct ingest_options *opt, struct ingest **out)
{
	struct ingest *in = calloc(1, sizeof(*in));
	if (!in)
		return MB_ERR_NOMEM;
	in->store = s;
	in->opt = *opt;
	pthread_mutex_init(&in->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&in->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&in->thread, NULL, writer_main, in) != 0) {
		pthread_mutex_destroy(&in->lock);
		pthread_cond_destroy(&in->wake);
		free(in);
		return MB_ERR_NOMEM;
	}
	*out = in;
	return 0;
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
	pthread_join(in->thread, NULL);

	if (in->count)
		log_error("store %s: %zu reading(s) could not be stored before shutdown and are lost "
			  "(%s)",
			  store_path(in->store), in->count, mb_strerror(in->failing));
	while (in->head) {
		struct pending *next = in->head->next;
		free_pending(in->head);
		in->head = next;
	}
	pthread_mutex_destroy(&in->lock);
	pthread_cond_destroy(&in->wake);
	free(in);
}
