/*
 * forward.c - store (and memory) -> uplink with a window of messages in flight; see
 * forward.h.
 *
 * In-flight bookkeeping: each message sent has an entry {token, the readings it carries}.
 * A stored reading is identified by its store id, a memory reading by the ingest's record
 * of it. Uplink events (delivered, failed) are appended to `events` by whatever thread
 * reports them, and applied only by the forwarder thread between rounds. Because an entry
 * is added right after the uplink's send() returns, on this same thread, an event can
 * never be applied before its entry exists; an event whose token matches nothing is stale
 * and is discarded (MQTT message ids are reused after 65535, so keeping it could wrongly
 * remove a reading that was never delivered).
 *
 * Ids the forwarder must not fetch again live in `held`: those in flight, and those
 * delivered whose removal from the store has not succeeded yet (`to_remove`). The store
 * skips them range by range, so a failing removal never causes a resend, and never a
 * storm: each failure has its own back-off and is logged once per episode.
 *
 * On a lost connection, entries stay when the uplink keeps unconfirmed messages (MQTT
 * QoS 1/2: libmosquitto sends them again after reconnecting and confirms them then).
 * Otherwise (QoS 0) they are released: their readings are sent again (at most a window
 * of duplicates, never a loss).
 *
 * Everything in the "forwarder thread only" part of the struct is touched by that thread
 * alone (and by forwarder_stop/free after the join), so it needs no lock even while the
 * lock is released around store and uplink calls.
 */
#include "forward.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "forward_batch.h"
#include "liveness.h"
#include "log.h"
#include "timeutil.h"
#include "tokmap.h"

/* Longest a confirmation waits before it is applied to the store. */
#define ACK_DELAY_MS 20
/* Readings fetched from the store at once. */
#define FETCH_MAX 4096
/* Retry intervals after a failure: fetch, send, removal. A removal is retried more often
 * (it is cheap, and every delivered reading it leaves behind is sent again after a crash). */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 30000
#define REMOVE_RETRY_MAX_MS 5000
/* While removals fail, delivered ids pile up in `held`; past this many ranges (each a
 * run of ids, 16 bytes) the store is not read any more until a removal succeeds. */
#define HELD_RANGES_MAX 4096

enum event_kind { EV_DELIVERED, EV_FAILED };

struct event {
	int token;
	enum event_kind kind;
	int retry_after_ms;
};

struct entry {
	int token;
	int64_t *ids; /* stored readings ... */
	size_t nids;
	struct ingest_reading *mem; /* ... or readings sent from memory */
	size_t count;
};

/* One failure kind's back-off and episode (logged once when it starts and ends). */
struct retry {
	int failing; /* the mb_error of the current episode, 0: none */
	int64_t at_ms;
	int64_t delay_ms;
	uint64_t attempts;
};

struct forwarder {
	struct forward_options opt;
	struct forward_queue q;
	struct ingest *memory;
	struct uplink *up;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock; /* guards this part */
	pthread_cond_t wake;
	bool connected;
	atomic_bool link_up; /* connected, for readers that must not wait for the lock */
	/* For forwarder_stats, read without the lock. */
	atomic_uint_fast64_t published, published_readings, acknowledged, failed, connects;
	atomic_size_t inflight_now;
	_Atomic int64_t last_failure_ms;
	bool pending; /* readings may be waiting that are not in flight */
	bool stopping;
	bool release_unconfirmed; /* disconnected and the uplink forgot what was in flight */
	int64_t stop_deadline_ms;
	struct event *events;
	size_t nevents, events_cap;
	int64_t first_event_ms;

	/* Forwarder thread only. */
	struct entry *inflight;
	size_t ninflight;
	struct tokmap slot_of;  /* token -> index in inflight */
	struct idset held;      /* in flight, or delivered and not removed yet */
	struct idset to_remove; /* delivered, removal pending */
	struct retry fetch_retry, send_retry, remove_retry;
	/* The server did not take messages (uplink failed() events); ends with a delivery. */
	struct retry reject_retry;
	bool held_full_logged;
	bool memory_episode;       /* sending from memory since the store failed */
	uint64_t sent_from_memory; /* readings delivered from memory, for the stop's summary */
	size_t ack_batch;          /* a quarter of the window, at least 1 */
	struct liveness beat;      /* the forwarder thread's; it waits 1 s at most */
};

static int queue_fetch(void *ctx, enum send_mode mode, const struct id_range *skip, size_t nskip,
		       size_t max, struct store_item *items, size_t *n)
{
	return store_fetch(ctx, mode, skip, nskip, max, items, n);
}

static int queue_remove(void *ctx, const struct id_range *ranges, size_t n)
{
	return store_delete_ranges(ctx, ranges, n);
}

struct forward_queue forward_queue_of(struct store *s)
{
	return (struct forward_queue){
		.fetch = queue_fetch,
		.remove = queue_remove,
		.name = store_path(s),
		.ctx = s,
	};
}

/* Uplink events: record and wake. */

static void on_connected(void *ctx)
{
	struct forwarder *fw = ctx;
	pthread_mutex_lock(&fw->lock);
	fw->connected = true;
	atomic_store(&fw->link_up, true);
	atomic_fetch_add(&fw->connects, 1);
	fw->pending = true;
	pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
}

static void on_disconnected(void *ctx)
{
	struct forwarder *fw = ctx;
	pthread_mutex_lock(&fw->lock);
	fw->connected = false;
	atomic_store(&fw->link_up, false);
	atomic_store(&fw->last_failure_ms, time_now_ms());
	if (!fw->up->keeps_unconfirmed)
		fw->release_unconfirmed = true;
	pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
}

static void add_event(struct forwarder *fw, int token, enum event_kind kind, int retry_after_ms)
{
	pthread_mutex_lock(&fw->lock);
	if (fw->nevents == fw->events_cap) {
		size_t cap = fw->events_cap ? fw->events_cap * 2 : 64;
		struct event *grown = realloc(fw->events, cap * sizeof(*grown));
		if (!grown) {
			/* Not applying a confirmation only means the reading is sent again later. */
			log_error(
				"forwarder: out of memory recording a delivery; the reading will be "
				"sent again");
			pthread_mutex_unlock(&fw->lock);
			return;
		}
		fw->events = grown;
		fw->events_cap = cap;
	}
	fw->events[fw->nevents++] = (struct event){token, kind, retry_after_ms};
	if (fw->nevents == 1)
		fw->first_event_ms = time_mono_ms();
	/* Wake the forwarder to start the batch timer, or when the batch is complete. */
	if (fw->nevents == 1 || fw->nevents >= fw->ack_batch || kind == EV_FAILED)
		pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
}

static void on_delivered(void *ctx, int token)
{
	add_event(ctx, token, EV_DELIVERED, 0);
}

static void on_failed(void *ctx, int token, int retry_after_ms)
{
	add_event(ctx, token, EV_FAILED, retry_after_ms);
}

/* Back-off bookkeeping. */

static void retry_failed(struct retry *r, int rc, int64_t min_delay_ms, int64_t max_delay_ms)
{
	r->failing = rc;
	r->attempts++;
	r->delay_ms = r->delay_ms ? r->delay_ms * 2 : RETRY_MIN_MS;
	if (r->delay_ms > max_delay_ms)
		r->delay_ms = max_delay_ms;
	int64_t delay = r->delay_ms > min_delay_ms ? r->delay_ms : min_delay_ms;
	r->at_ms = time_mono_ms() + delay;
}

static void retry_ok(struct retry *r)
{
	*r = (struct retry){0};
}

/* Releasing entries. Forwarder thread; called with the lock held, returns with it held. */

static void free_entry(struct entry *e)
{
	free(e->ids);
	e->ids = NULL;
}

/* Drops entry i (already released) by moving the last one into its place; the vacated
 * slot is cleared so no pointer is ever held twice. */
static void remove_entry(struct forwarder *fw, size_t i)
{
	tokmap_del(&fw->slot_of, fw->inflight[i].token);
	fw->ninflight--;
	if (i != fw->ninflight) {
		fw->inflight[i] = fw->inflight[fw->ninflight];
		tokmap_put(&fw->slot_of, fw->inflight[i].token, i);
	}
	fw->inflight[fw->ninflight] = (struct entry){0};
}

/* The entry's readings were not delivered: stored ones may be fetched again, memory ones
 * go back to the ingest (*giveback collects them, handed over without the lock). */
static void release_entry(struct forwarder *fw, struct entry *e, struct ingest_reading **giveback)
{
	for (size_t k = 0; k < e->nids; k++)
		if (idset_remove_range(&fw->held, e->ids[k], e->ids[k]) != 0)
			log_error("forwarder: out of memory releasing reading %lld; it is sent again "
				  "after a restart",
				  (long long)e->ids[k]);
	if (e->mem) {
		struct ingest_reading *last = e->mem;
		while (last->next)
			last = last->next;
		last->next = *giveback;
		*giveback = e->mem;
		e->mem = NULL;
	}
	free_entry(e);
}

static void give_back(struct forwarder *fw, struct ingest_reading *list)
{
	if (!list)
		return;
	pthread_mutex_unlock(&fw->lock);
	ingest_unclaim(fw->memory, list);
	pthread_mutex_lock(&fw->lock);
}

static void release_all(struct forwarder *fw)
{
	struct ingest_reading *giveback = NULL;
	for (size_t i = 0; i < fw->ninflight; i++)
		release_entry(fw, &fw->inflight[i], &giveback);
	fw->ninflight = 0;
	tokmap_clear(&fw->slot_of);
	fw->pending = true;
	give_back(fw, giveback);
}

/* Removal of delivered readings: one transaction for all that are pending. */
static void try_remove(struct forwarder *fw)
{
	uint64_t n = fw->to_remove.count;
	pthread_mutex_unlock(&fw->lock);
	int rc = fw->q.remove(fw->q.ctx, fw->to_remove.r, fw->to_remove.n);
	pthread_mutex_lock(&fw->lock);
	if (rc != 0) {
		if (!fw->remove_retry.failing)
			log_error("store %s: cannot remove %llu delivered reading(s): %s; they will not "
				  "be sent again, and the removal is retried with back-off",
				  fw->q.name, (unsigned long long)n, mb_strerror(rc));
		retry_failed(&fw->remove_retry, rc, 0, REMOVE_RETRY_MAX_MS);
		return;
	}
	if (fw->remove_retry.failing) {
		log_info("store %s: delivered readings removed again (%llu pending, after %llu "
			 "failed attempt(s))",
			 fw->q.name, (unsigned long long)n,
			 (unsigned long long)fw->remove_retry.attempts);
		fw->pending = true; /* the store may be read again if it was paused */
	}
	retry_ok(&fw->remove_retry);
	if (idset_remove_set(&fw->held, &fw->to_remove) != 0)
		log_error("forwarder: out of memory; some delivered readings are not fetched again "
			  "until a restart");
	idset_clear(&fw->to_remove);
	if (fw->held_full_logged && fw->held.n < HELD_RANGES_MAX) {
		log_info("forwarder: reading the store again");
		fw->held_full_logged = false;
	}
}

/* Applies the recorded uplink events. */
static void process_events(struct forwarder *fw)
{
	struct event *events = fw->events;
	size_t nevents = fw->nevents;
	struct ingest_reading *delivered = NULL, *giveback = NULL;
	int64_t pause_ms = -1;
	bool delivered_any = false;

	fw->events = NULL;
	fw->nevents = fw->events_cap = 0;
	for (size_t a = 0; a < nevents; a++) {
		size_t i;
		/* A token that matches nothing is stale (its entry was released). */
		if (tokmap_get(&fw->slot_of, events[a].token, &i)) {
			struct entry *e = &fw->inflight[i];
			if (events[a].kind == EV_FAILED) {
				atomic_fetch_add(&fw->failed, 1);
				atomic_store(&fw->last_failure_ms, time_now_ms());
				release_entry(fw, e, &giveback);
				if (events[a].retry_after_ms > pause_ms)
					pause_ms = events[a].retry_after_ms;
			} else {
				atomic_fetch_add(&fw->acknowledged, 1);
				delivered_any = true;
				uplink_stats_ok(fw->opt.stats, e->count);
				for (size_t k = 0; k < e->nids; k++)
					if (idset_add(&fw->to_remove, e->ids[k]) != 0)
						log_error("forwarder: out of memory; reading %lld is "
							  "delivered but stays in the store",
							  (long long)e->ids[k]);
				if (e->mem) {
					struct ingest_reading *last = e->mem;
					fw->sent_from_memory += e->count;
					while (last->next)
						last = last->next;
					last->next = delivered;
					delivered = e->mem;
					e->mem = NULL;
				}
				free_entry(e);
			}
			remove_entry(fw, i);
		}
	}
	free(events);
	fw->pending = true;
	/* One episode from the first refusal to the next delivery: logged once, and its
	 * back-off grows (accepting the next send() does not mean the server took it). */
	if (delivered_any && fw->reject_retry.failing && pause_ms < 0) {
		log_info("forwarder: the server accepts messages again (after %llu refused "
			 "round(s))",
			 (unsigned long long)fw->reject_retry.attempts);
		retry_ok(&fw->reject_retry);
	}
	if (pause_ms >= 0) {
		if (!fw->reject_retry.failing)
			log_warn(
				"forwarder: the server did not accept a message; its readings stay "
				"and are sent again with back-off");
		retry_failed(&fw->reject_retry, MB_ERR_IO, pause_ms, RETRY_MAX_MS);
	}
	if (delivered) {
		pthread_mutex_unlock(&fw->lock);
		ingest_delivered(fw->memory, delivered);
		pthread_mutex_lock(&fw->lock);
	}
	give_back(fw, giveback);
	if (fw->to_remove.n && time_mono_ms() >= fw->remove_retry.at_ms)
		try_remove(fw);
}

/* Sending. */

/* Sends parts[0..n) as one message; on success the caller records the entry. */
static int send_parts(struct forwarder *fw, const struct forward_part *parts, size_t n, int *token)
{
	size_t len = 0;
	char *payload = forward_batch_payload(&fw->opt, parts, n, &len);
	if (!payload)
		return MB_ERR_NOMEM;
	struct uplink_message msg = {.payload = payload,
				     .len = len,
				     .count = n,
				     .topic = parts[0].topic,
				     .first_id = parts[0].id,
				     .first_ts_ms = parts[0].ts_ms};
	pthread_mutex_unlock(&fw->lock);
	int rc = fw->up->ops->send(fw->up->impl, &msg, token);
	pthread_mutex_lock(&fw->lock);
	if (payload != parts[0].payload)
		free(payload);
	if (rc == 0) {
		atomic_fetch_add(&fw->published, 1);
		atomic_fetch_add(&fw->published_readings, n);
	}
	if (rc != 0 && fw->connected) {
		atomic_store(&fw->last_failure_ms, time_now_ms());
		/* Connected, yet refused (too large for the broker, out of memory...). */
		if (!fw->send_retry.failing)
			log_warn("forwarder: cannot send a message of %zu reading(s) (%zu bytes): %s; "
				 "retrying with back-off",
				 n, len, mb_strerror(rc));
		retry_failed(&fw->send_retry, rc, 0, RETRY_MAX_MS);
	} else if (rc == 0 && fw->send_retry.failing) {
		log_info("forwarder: sending again");
		retry_ok(&fw->send_retry);
	}
	return rc;
}

static bool can_send(const struct forwarder *fw)
{
	int64_t now = time_mono_ms();
	return fw->connected && fw->ninflight < (size_t)fw->opt.window &&
	       now >= fw->send_retry.at_ms && now >= fw->reject_retry.at_ms;
}

/* Sends readings claimed from memory; gives back what was not sent. */
static void send_from_memory(struct forwarder *fw, size_t max)
{
	size_t n = 0;
	pthread_mutex_unlock(&fw->lock);
	struct ingest_reading *list = ingest_claim(fw->memory, fw->opt.send_mode, max, &n);
	pthread_mutex_lock(&fw->lock);
	if (!list) {
		if (fw->memory_episode && !ingest_store_failing(fw->memory))
			fw->memory_episode = false;
		return;
	}
	if (!fw->memory_episode)
		log_warn(
			"forwarder: the store cannot take readings; sending those waiting in memory "
			"directly, before the stored backlog (they would not survive a crash)");
	fw->memory_episode = true;
	struct forward_part *parts = calloc(n, sizeof(*parts));
	struct ingest_reading **readings = calloc(n, sizeof(struct ingest_reading *));
	if (!parts || !readings) {
		free(parts);
		free(readings);
		give_back(fw, list);
		return;
	}
	size_t i = 0;
	for (struct ingest_reading *p = list; p && i < n; p = p->next, i++) {
		parts[i] = (struct forward_part){p->payload, p->len, p->topic, 0, p->ts_ms};
		readings[i] = p;
	}
	n = i;

	size_t pos = 0;
	struct ingest_reading *rest = list;
	while (pos < n && can_send(fw)) {
		size_t span = forward_batch_span(&fw->opt, parts + pos, n - pos);
		int token = 0;
		if (send_parts(fw, parts + pos, span, &token) != 0)
			break;
		/* Cut the span's readings off the list: they belong to the entry now. */
		struct ingest_reading *last = readings[pos + span - 1];
		rest = last->next;
		last->next = NULL;
		tokmap_put(&fw->slot_of, token, fw->ninflight);
		fw->inflight[fw->ninflight++] =
			(struct entry){.token = token, .mem = readings[pos], .count = span};
		pos += span;
	}
	free(readings);
	free(parts);
	give_back(fw, rest);
}

/* Sends stored readings until the window is full. */
static void send_from_store(struct forwarder *fw, size_t max)
{
	size_t want = max < FETCH_MAX ? max : FETCH_MAX;
	struct store_item *items = calloc(want, sizeof(*items));
	struct forward_part *parts = calloc(want, sizeof(*parts));
	size_t n = 0;
	if (!items || !parts)
		goto out;

	pthread_mutex_unlock(&fw->lock);
	int rc = fw->q.fetch(fw->q.ctx, fw->opt.send_mode, fw->held.r, fw->held.n, want, items, &n);
	pthread_mutex_lock(&fw->lock);
	if (rc != 0) {
		n = 0;
		if (!fw->fetch_retry.failing)
			log_error("store %s: cannot read readings to send: %s; retrying with back-off",
				  fw->q.name, mb_strerror(rc));
		retry_failed(&fw->fetch_retry, rc, 0, RETRY_MAX_MS);
		goto out;
	}
	if (fw->fetch_retry.failing) {
		log_info("store %s: readable again", fw->q.name);
		retry_ok(&fw->fetch_retry);
	}
	if (n == 0) {
		fw->pending = false;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		parts[i] = (struct forward_part){items[i].payload, items[i].len, items[i].topic,
						 items[i].id, items[i].ts_ms};

	size_t pos = 0;
	while (pos < n && can_send(fw) && !fw->stopping) {
		size_t span = forward_batch_span(&fw->opt, parts + pos, n - pos);
		int64_t *ids = malloc(span * sizeof(*ids));
		int token = 0;
		if (!ids)
			break;
		for (size_t k = 0; k < span; k++)
			ids[k] = items[pos + k].id;
		if (send_parts(fw, parts + pos, span, &token) != 0) {
			free(ids);
			break; /* the readings stay in the store */
		}
		for (size_t k = 0; k < span; k++)
			if (idset_add(&fw->held, ids[k]) != 0)
				log_error("forwarder: out of memory; reading %lld may be sent twice",
					  (long long)ids[k]);
		tokmap_put(&fw->slot_of, token, fw->ninflight);
		fw->inflight[fw->ninflight++] =
			(struct entry){.token = token, .ids = ids, .nids = span, .count = span};
		pos += span;
	}
out:
	store_items_clear(items, n);
	free(items);
	free(parts);
}

/* One round: memory first (at risk), then the store. Lock held. */
static void send_round(struct forwarder *fw)
{
	size_t per_msg = fw->opt.array ? (size_t)fw->opt.array_max_count : 1;
	size_t free_slots = (size_t)fw->opt.window - fw->ninflight;

	if (fw->memory)
		send_from_memory(fw, free_slots * per_msg);
	if (fw->stopping || !can_send(fw)) {
		if (fw->stopping)
			fw->pending = false; /* woken again by the ingest or a confirmation */
		return;
	}
	if (time_mono_ms() < fw->fetch_retry.at_ms) {
		fw->pending = false; /* the wait below wakes at the retry time */
		return;
	}
	if (fw->held.n >= HELD_RANGES_MAX) {
		if (!fw->held_full_logged)
			log_error("forwarder: %zu runs of delivered readings wait to be removed from the "
				  "store; not reading it until a removal succeeds",
				  fw->held.n);
		fw->held_full_logged = true;
		fw->pending = false;
		return;
	}
	free_slots = (size_t)fw->opt.window - fw->ninflight;
	send_from_store(fw, free_slots * per_msg);
}

static int64_t earliest(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/*
 * Batching: while a backlog drains, confirmations arrive one by one. Removing each in its
 * own transaction, and refilling the window one message at a time, would cost more than
 * the sending itself. So confirmations are applied once a quarter of the window has come
 * back (or ACK_DELAY_MS after the first), and the window is refilled in steps of a
 * quarter. At low rates the window is mostly empty, so a new reading is still sent at once.
 */
static void *forward_main(void *arg)
{
	struct forwarder *fw = arg;
	size_t window = (size_t)fw->opt.window;
	thread_set_name("mb-forward");
	pthread_mutex_lock(&fw->lock);
	for (;;) {
		liveness_beat(&fw->beat);
		atomic_store(&fw->inflight_now, fw->ninflight);
		int64_t now = time_mono_ms();
		if (fw->nevents &&
		    (fw->nevents >= fw->ack_batch || now - fw->first_event_ms >= ACK_DELAY_MS ||
		     fw->stopping || !fw->connected || fw->release_unconfirmed)) {
			process_events(fw);
			continue;
		}
		if (fw->release_unconfirmed) {
			fw->release_unconfirmed = false;
			release_all(fw);
			continue;
		}
		if (fw->to_remove.n && now >= fw->remove_retry.at_ms) {
			try_remove(fw);
			continue;
		}
		if (fw->stopping) {
			bool memory_left =
				fw->memory && fw->connected && ingest_claimable(fw->memory);
			if ((fw->ninflight == 0 && !memory_left) || now >= fw->stop_deadline_ms)
				break;
		}
		size_t free_slots = window - fw->ninflight;
		if (fw->connected && fw->pending && free_slots > 0 &&
		    (free_slots >= fw->ack_batch || fw->ninflight == 0) &&
		    now >= fw->send_retry.at_ms && now >= fw->reject_retry.at_ms) {
			send_round(fw);
			continue;
		}
		int64_t until = now + 1000;
		if (fw->nevents)
			until = earliest(until, fw->first_event_ms + ACK_DELAY_MS);
		if (fw->to_remove.n)
			until = earliest(until, fw->remove_retry.at_ms);
		if (fw->send_retry.at_ms > now)
			until = earliest(until, fw->send_retry.at_ms);
		if (fw->reject_retry.at_ms > now)
			until = earliest(until, fw->reject_retry.at_ms);
		if (fw->fetch_retry.at_ms > now)
			until = earliest(until, fw->fetch_retry.at_ms);
		if (fw->stopping)
			until = earliest(until, fw->stop_deadline_ms);
		struct timespec ts;
		time_mono_deadline(until > now ? until - now : 1, &ts);
		if (pthread_cond_timedwait(&fw->wake, &fw->lock, &ts) != 0 && !fw->nevents)
			fw->pending = true; /* periodic re-check, e.g. after a failed fetch */
	}
	pthread_mutex_unlock(&fw->lock);
	return NULL;
}

int forwarder_new(const struct forward_options *opt, const struct forward_queue *queue,
		  struct ingest *memory, struct uplink *up, struct forwarder **out)
{
	static const struct uplink_events events = {
		.connected = on_connected,
		.disconnected = on_disconnected,
		.delivered = on_delivered,
		.failed = on_failed,
	};
	if (opt->window < 1 || (opt->array && opt->array_max_count < 1))
		return MB_ERR_INVAL;
	struct forwarder *fw = calloc(1, sizeof(*fw));
	if (!fw)
		return MB_ERR_NOMEM;
	fw->opt = *opt;
	fw->q = *queue;
	fw->memory = memory;
	fw->up = up;
	fw->pending = true;
	fw->ack_batch = opt->window / 4 > 0 ? (size_t)opt->window / 4 : 1;
	idset_init(&fw->held);
	idset_init(&fw->to_remove);
	pthread_mutex_init(&fw->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&fw->wake, &attr);
	pthread_condattr_destroy(&attr);
	fw->inflight = calloc((size_t)opt->window, sizeof(struct entry));
	if (!fw->inflight || tokmap_init(&fw->slot_of, (size_t)opt->window) != 0) {
		free(fw->inflight);
		pthread_mutex_destroy(&fw->lock);
		pthread_cond_destroy(&fw->wake);
		free(fw);
		return MB_ERR_NOMEM;
	}
	up->ops->bind(up->impl, &events, fw);
	*out = fw;
	return 0;
}

int forwarder_start(struct forwarder *fw)
{
	liveness_beat(&fw->beat);
	if (pthread_create(&fw->thread, NULL, forward_main, fw) != 0)
		return MB_ERR_NOMEM;
	fw->started = true;
	log_info("forwarder: sending to %s, %s order, window %d%s", fw->up->description,
		 fw->opt.send_mode == SEND_LIFO ? "LIFO" : "FIFO", fw->opt.window,
		 fw->opt.array ? ", array mode" : "");
	return 0;
}

int64_t forwarder_last_beat_ms(struct forwarder *fw)
{
	return liveness_last(&fw->beat);
}

bool forwarder_connected(struct forwarder *fw)
{
	return atomic_load(&fw->link_up);
}

void forwarder_stats(struct forwarder *fw, struct forward_stats *out)
{
	uint64_t connects = atomic_load(&fw->connects);

	*out = (struct forward_stats){
		.published = atomic_load(&fw->published),
		.published_readings = atomic_load(&fw->published_readings),
		.acknowledged = atomic_load(&fw->acknowledged),
		.failed = atomic_load(&fw->failed),
		.in_flight = atomic_load(&fw->inflight_now),
		.last_failure_ms = atomic_load(&fw->last_failure_ms),
		.reconnects = connects ? connects - 1 : 0,
		.connected = atomic_load(&fw->link_up),
	};
}

void forwarder_notify(struct forwarder *fw)
{
	pthread_mutex_lock(&fw->lock);
	fw->pending = true;
	pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
}

void forwarder_stop(struct forwarder *fw, int flush_ms)
{
	if (!fw || !fw->started)
		return;
	pthread_mutex_lock(&fw->lock);
	fw->stopping = true;
	fw->pending = true;
	fw->stop_deadline_ms = time_mono_ms() + flush_ms;
	pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
	pthread_join(fw->thread, NULL);
	fw->started = false;

	/* The thread is gone: what it owned is ours now. */
	pthread_mutex_lock(&fw->lock);
	if (fw->nevents)
		process_events(fw);
	size_t stored = 0, memory = 0;
	struct ingest_reading *giveback = NULL;
	for (size_t i = 0; i < fw->ninflight; i++) {
		if (fw->inflight[i].mem)
			memory += fw->inflight[i].count;
		else
			stored += fw->inflight[i].count;
		release_entry(fw, &fw->inflight[i], &giveback);
	}
	fw->ninflight = 0;
	tokmap_clear(&fw->slot_of);
	give_back(fw, giveback);
	if (fw->to_remove.n)
		try_remove(fw);
	if (fw->to_remove.n)
		log_error("store %s: %llu delivered reading(s) could not be removed before shutdown; "
			  "they will be sent again after a restart",
			  fw->q.name, (unsigned long long)fw->to_remove.count);
	pthread_mutex_unlock(&fw->lock);
	if (fw->sent_from_memory)
		log_info("forwarder: %llu reading(s) were delivered from memory while the store could "
			 "not take them",
			 (unsigned long long)fw->sent_from_memory);
	if (stored)
		log_info("forwarder: %zu reading(s) unconfirmed at shutdown stay in the store and will "
			 "be sent again",
			 stored);
	if (memory)
		log_warn("forwarder: %zu reading(s) sent from memory were not confirmed before "
			 "shutdown; they are given back to be stored",
			 memory);
}

void forwarder_free(struct forwarder *fw)
{
	if (!fw)
		return;
	forwarder_stop(fw, 0);
	for (size_t i = 0; i < fw->ninflight; i++)
		/* False positive: ninflight is 0 when inflight could not be allocated.
		 * NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		free_entry(&fw->inflight[i]);
	free(fw->inflight);
	tokmap_free(&fw->slot_of);
	free(fw->events);
	idset_free(&fw->held);
	idset_free(&fw->to_remove);
	pthread_mutex_destroy(&fw->lock);
	pthread_cond_destroy(&fw->wake);
	free(fw);
}
