/*
 * forward.c - store -> MQTT with a window of messages in flight; see forward.h.
 *
 * In-flight bookkeeping: each published message has an entry {mid, qos, reading ids}.
 * The MQTT thread appends confirmed mids to `acked` and wakes us; this thread matches
 * them to entries and deletes the readings in one store transaction per batch. Because
 * entries are added right after mosquitto_publish() returns, on this same thread, and
 * `acked` is processed only between publishing rounds, a confirmation can never be
 * matched before its entry exists; a mid that matches nothing at processing time is
 * stale and is discarded (mids are reused after 65535, so keeping it could wrongly
 * delete a reading that was never delivered).
 *
 * On a lost connection, QoS 1/2 entries stay: libmosquitto re-sends those messages
 * itself after reconnecting and confirms them then. QoS 0 entries are released: the
 * library drops unsent QoS 0 packets, so those readings are published again from the
 * store (at most a window of duplicates, never a loss).
 */
#include "forward.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "mqtt.h"
#include "timeutil.h"

/* Longest a confirmation waits before it is applied to the store. */
#define ACK_DELAY_MS 20

struct inflight {
	int mid;
	int64_t *ids;
	size_t nids;
};

struct forwarder {
	const struct config *cfg;
	struct store *store;
	struct mqtt_link *link;
	char *topic;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t wake;
	bool connected;
	bool pending; /* the store may hold readings that are not in flight */
	bool stopping;
	int64_t stop_deadline_ms;
	struct inflight *inflight;
	size_t ninflight;
	int *acked;
	size_t nacked, acked_cap;
	int64_t first_ack_ms; /* when the oldest unapplied confirmation arrived */
	size_t ack_batch;     /* a quarter of the window, at least 1 */
};

static void on_connected(void *ctx)
{
	struct forwarder *fw = ctx;
	pthread_mutex_lock(&fw->lock);
	fw->connected = true;
	fw->pending = true;
	pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
}

static void on_disconnected(void *ctx)
{
	struct forwarder *fw = ctx;
	pthread_mutex_lock(&fw->lock);
	fw->connected = false;
	if (fw->cfg->mqtt.qos == 0) {
		for (size_t i = 0; i < fw->ninflight; i++)
			free(fw->inflight[i].ids);
		fw->ninflight = 0;
		fw->pending = true;
	}
	pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
}

static void on_published(void *ctx, int mid)
{
	struct forwarder *fw = ctx;
	pthread_mutex_lock(&fw->lock);
	if (fw->nacked == fw->acked_cap) {
		size_t cap = fw->acked_cap ? fw->acked_cap * 2 : 64;
		int *grown = realloc(fw->acked, cap * sizeof(int));
		if (!grown) {
			/* Not confirming only means the reading is sent again later. */
			log_error(
				"forwarder: out of memory recording a delivery; the reading will be resent");
			pthread_mutex_unlock(&fw->lock);
			return;
		}
		fw->acked = grown;
		fw->acked_cap = cap;
	}
	fw->acked[fw->nacked++] = mid;
	if (fw->nacked == 1)
		fw->first_ack_ms = time_mono_ms();
	/* Wake the forwarder to start the batch timer, or when the batch is complete. */
	if (fw->nacked == 1 || fw->nacked >= fw->ack_batch)
		pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
}

/* Called with the lock held; returns with it held. */
static void process_acks(struct forwarder *fw)
{
	size_t total = 0;
	for (size_t i = 0; i < fw->ninflight; i++)
		total += fw->inflight[i].nids;
	int64_t *ids = malloc((total ? total : 1) * sizeof(int64_t));
	size_t nids = 0;
	if (!ids)
		return; /* retried at the next wake-up */

	for (size_t a = 0; a < fw->nacked; a++) {
		for (size_t i = 0; i < fw->ninflight; i++) {
			if (fw->inflight[i].mid != fw->acked[a])
				continue;
			/* False positive: a freed entry is replaced by the last one, never
			 * visited again. NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
			memcpy(ids + nids, fw->inflight[i].ids,
			       fw->inflight[i].nids * sizeof(int64_t));
			nids += fw->inflight[i].nids;
			free(fw->inflight[i].ids);
			fw->inflight[i] = fw->inflight[--fw->ninflight];
			break;
		}
	}
	fw->nacked = 0;
	fw->pending = true;

	pthread_mutex_unlock(&fw->lock);
	if (nids && store_delete(fw->store, ids, nids) != 0)
		log_error("forwarder: could not remove %zu delivered reading(s) from the store; they "
			  "may be sent again",
			  nids);
	free(ids);
	pthread_mutex_lock(&fw->lock);
}

/* Builds one payload from items[0..n): the item itself, or a JSON array of them. */
static char *build_payload(struct store_item *items, size_t n, bool array, size_t *len)
{
	if (!array) {
		*len = items[0].len;
		return items[0].payload;
	}
	size_t total = 2;
	for (size_t i = 0; i < n; i++)
		total += items[i].len + 1;
	char *buf = malloc(total + 1);
	if (!buf)
		return NULL;
	size_t pos = 0;
	buf[pos++] = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf[pos++] = ',';
		memcpy(buf + pos, items[i].payload, items[i].len);
		pos += items[i].len;
	}
	buf[pos++] = ']';
	buf[pos] = '\0';
	*len = pos;
	return buf;
}

/* How many of items[0..n) go into the next array message (at least one). */
static size_t array_span(const struct logger_config *lg, const struct store_item *items, size_t n)
{
	size_t count = 0, bytes = 2;
	while (count < n && count < (size_t)lg->array_max_count) {
		size_t next = bytes + items[count].len + (count ? 1 : 0);
		if (count > 0 && next > lg->array_max_bytes)
			break;
		bytes = next;
		count++;
	}
	return count ? count : 1;
}

/* Called with the lock held; returns with it held. Publishes until the window is full. */
static void publish_round(struct forwarder *fw)
{
	const struct logger_config *lg = &fw->cfg->logger;
	size_t free_slots = (size_t)lg->inflight_window - fw->ninflight;
	size_t per_msg = lg->array ? (size_t)lg->array_max_count : 1;
	size_t want = free_slots * per_msg;
	size_t nskip = 0;
	for (size_t i = 0; i < fw->ninflight; i++)
		nskip += fw->inflight[i].nids;
	int64_t *skip = malloc((nskip ? nskip : 1) * sizeof(int64_t));
	struct store_item *items = calloc(want, sizeof(*items));
	size_t n = 0;
	if (!skip || !items)
		goto out;
	nskip = 0;
	for (size_t i = 0; i < fw->ninflight; i++)
		for (size_t k = 0; k < fw->inflight[i].nids; k++)
			skip[nskip++] = fw->inflight[i].ids[k];

	pthread_mutex_unlock(&fw->lock);
	int rc = store_fetch(fw->store, lg->send_mode, skip, nskip, want, items, &n);
	pthread_mutex_lock(&fw->lock);
	if (rc != 0) {
		n = 0;
		goto out;
	}
	if (n == 0) {
		fw->pending = false;
		goto out;
	}

	size_t pos = 0;
	while (pos < n && fw->connected && !fw->stopping) {
		size_t span = lg->array ? array_span(lg, items + pos, n - pos) : 1;
		size_t len = 0;
		char *payload = build_payload(items + pos, span, lg->array, &len);
		int64_t *ids = malloc(span * sizeof(int64_t));
		int mid = 0;
		if (!payload || !ids) {
			free(ids);
			if (payload != items[pos].payload)
				free(payload);
			break;
		}
		for (size_t k = 0; k < span; k++)
			ids[k] = items[pos + k].id;

		pthread_mutex_unlock(&fw->lock);
		rc = mqtt_link_publish(fw->link, fw->topic, payload, len, fw->cfg->mqtt.qos, &mid);
		pthread_mutex_lock(&fw->lock);
		if (payload != items[pos].payload)
			free(payload);
		if (rc != 0) {
			free(ids);
			break; /* not connected any more: the readings stay in the store */
		}
		fw->inflight[fw->ninflight++] =
			(struct inflight){.mid = mid, .ids = ids, .nids = span};
		pos += span;
	}
out:
	store_items_clear(items, n);
	free(items);
	free(skip);
}

/*
 * Batching: while a backlog drains, confirmations arrive one by one. Deleting each in its
 * own transaction, and refilling the window one message at a time (each refill scans the
 * in-flight ids), would cost more than the publishing itself. So confirmations are applied
 * once a quarter of the window has come back (or ACK_DELAY_MS after the first), and the
 * window is refilled in steps of a quarter. At low rates the window is mostly empty, so a
 * new reading is still published at once.
 */
static void *forward_main(void *arg)
{
	struct forwarder *fw = arg;
	size_t window = (size_t)fw->cfg->logger.inflight_window;
	pthread_mutex_lock(&fw->lock);
	for (;;) {
		int64_t now = time_mono_ms();
		if (fw->nacked &&
		    (fw->nacked >= fw->ack_batch || now - fw->first_ack_ms >= ACK_DELAY_MS ||
		     fw->stopping || !fw->connected)) {
			process_acks(fw);
			continue;
		}
		if (fw->stopping && (fw->ninflight == 0 || now >= fw->stop_deadline_ms))
			break;
		size_t free_slots = window - fw->ninflight;
		if (!fw->stopping && fw->connected && fw->pending && free_slots > 0 &&
		    (free_slots >= fw->ack_batch || fw->ninflight == 0)) {
			publish_round(fw);
			continue;
		}
		int64_t wait_ms = fw->nacked ? fw->first_ack_ms + ACK_DELAY_MS - now : 1000;
		if (wait_ms < 1)
			wait_ms = 1;
		struct timespec ts;
		time_mono_deadline(wait_ms, &ts);
		if (pthread_cond_timedwait(&fw->wake, &fw->lock, &ts) != 0 && !fw->nacked)
			fw->pending = true; /* periodic re-check, e.g. after a failed fetch */
	}
	pthread_mutex_unlock(&fw->lock);
	return NULL;
}

int forwarder_new(const struct config *cfg, struct store *store, struct forwarder **out)
{
	static const struct mqtt_events events = {
		.connected = on_connected,
		.disconnected = on_disconnected,
		.published = on_published,
	};
	struct forwarder *fw = calloc(1, sizeof(*fw));
	if (!fw)
		return MB_ERR_NOMEM;
	fw->cfg = cfg;
	fw->store = store;
	fw->pending = true;
	fw->ack_batch =
		cfg->logger.inflight_window / 4 > 0 ? (size_t)cfg->logger.inflight_window / 4 : 1;
	pthread_mutex_init(&fw->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&fw->wake, &attr);
	pthread_condattr_destroy(&attr);
	fw->inflight = calloc((size_t)cfg->logger.inflight_window, sizeof(struct inflight));
	fw->topic = config_subst_imei(cfg->logger.topic, cfg->imei);
	if (!fw->inflight || !fw->topic) {
		forwarder_free(fw);
		return MB_ERR_NOMEM;
	}
	int rc = mqtt_link_new(&cfg->mqtt, cfg->imei, &events, fw, &fw->link);
	if (rc) {
		forwarder_free(fw);
		return rc;
	}
	*out = fw;
	return 0;
}

struct mqtt_link *forwarder_link(struct forwarder *fw)
{
	return fw->link;
}

int forwarder_start(struct forwarder *fw)
{
	if (pthread_create(&fw->thread, NULL, forward_main, fw) != 0)
		return MB_ERR_NOMEM;
	fw->started = true;
	log_info("forwarder: publishing to topic '%s' at QoS %d, %s order, window %d%s", fw->topic,
		 fw->cfg->mqtt.qos, fw->cfg->logger.send_mode == SEND_LIFO ? "LIFO" : "FIFO",
		 fw->cfg->logger.inflight_window, fw->cfg->logger.array ? ", array mode" : "");
	return mqtt_link_start(fw->link);
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
	fw->stop_deadline_ms = time_mono_ms() + flush_ms;
	pthread_cond_signal(&fw->wake);
	pthread_mutex_unlock(&fw->lock);
	pthread_join(fw->thread, NULL);
	fw->started = false;
	mqtt_link_stop(fw->link);
	if (fw->ninflight)
		log_info("forwarder: %zu message(s) unconfirmed at shutdown stay in the store and will "
			 "be sent again",
			 fw->ninflight);
}

void forwarder_free(struct forwarder *fw)
{
	if (!fw)
		return;
	forwarder_stop(fw, 0);
	mqtt_link_free(fw->link);
	for (size_t i = 0; i < fw->ninflight; i++)
		/* False positive: ninflight is 0 when inflight could not be allocated.
		 * NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		free(fw->inflight[i].ids);
	free(fw->inflight);
	free(fw->acked);
	free(fw->topic);
	pthread_mutex_destroy(&fw->lock);
	pthread_cond_destroy(&fw->wake);
	free(fw);
}
