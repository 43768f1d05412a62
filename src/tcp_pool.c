/*
 * tcp_pool.c - the elastic pool of workers for the Modbus TCP buses; see tcp_pool.h.
 *
 * Modbus TCP endpoints (one bus per host:port, each with its own connection) are served by
 * one elastic pool of threads: a pool worker takes the next due bus from a ready queue
 * (healthy buses first, see pool_take), runs its due devices, and gives it back; a bus is
 * served by one worker at a time, so its requests are serialized. A dispatcher thread,
 * which does no I/O, watches the schedule: when a due bus has waited POOL_LATE_MS with
 * every worker busy (a device that times out holds its worker for its time-out), it starts
 * another worker, up to one per endpoint; a worker idle for POOL_IDLE_EXIT_MS ends (one
 * always stays). So dead devices delay the others by about POOL_LATE_MS each, only until
 * the pool has grown (and failing buses go last after their first failure), and 500
 * healthy endpoints cost a few threads instead of 500 (each thread was a stack and a timer
 * wake-up every period: bench/run.sh, docs/performance.md).
 *
 * Workers sleep on condition variables (monotonic clock), at most POLLER_WAIT_SLICE_MS at a
 * time, so that tcp_pool_stop() wakes them at once and a wall-clock step is noticed soon.
 */
#include "tcp_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "poller_internal.h"
#include "timeutil.h"

/* How long a due bus may wait for a worker before another is started (also the shortest
 * time between two starts), and how long a surplus worker stays idle. */
#define POOL_LATE_MS 100
#define POOL_IDLE_EXIT_MS 60000

struct pool_worker {
	struct tcp_pool *pool;
	pthread_t thread;
	bool started; /* a thread runs, or ran and was not joined yet */
	bool exited;  /* it returned; join it before reusing the slot */
	/* Read without the lock by tcp_pool_last_beat_ms: */
	atomic_bool running; /* its beats count */
	struct liveness beat;
};

void tcp_pool_init(struct tcp_pool *pool)
{
	pthread_mutex_init(&pool->lock, NULL);
	pthread_condattr_t cattr;
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->wake, &cattr);
	pthread_cond_init(&pool->tick, &cattr);
	pthread_condattr_destroy(&cattr);
}

/* When a pooled bus is due: now if a remote request waits or the wall clock was set back
 * (its worker reschedules it, see schedule_resync), else its earliest device. */
static int64_t pooled_due_ms(const struct bus *bus, int64_t now)
{
	if (bus->kick || bus->due_ms - now > bus->longest_period_ms + POLLER_CLOCK_STEP_MS)
		return now;
	return bus->due_ms;
}

/* With the pool lock held: appends a due bus to the ready queue. */
static void ready_append(struct tcp_pool *pool, struct bus *bus)
{
	bus->queued = true;
	bus->ready_next = NULL;
	if (pool->ready_tail)
		pool->ready_tail->ready_next = bus;
	else
		pool->ready_head = bus;
	pool->ready_tail = bus;
}

/* With the pool lock held: puts a bus with a remote request first in the ready queue. */
static void ready_push_front(struct tcp_pool *pool, struct bus *bus)
{
	bus->queued = true;
	bus->ready_next = pool->ready_head;
	pool->ready_head = bus;
	if (!pool->ready_tail)
		pool->ready_tail = bus;
}

/*
 * With the pool lock held: the bus to serve now (NULL if none is due), and in *earliest
 * the first instant at which a free bus falls due. Due buses wait in a FIFO ready queue:
 * when it is empty, one scan of the free buses appends every due one, those whose devices
 * answer before failing ones (a failing one would hold its worker for its time-outs). One
 * scan per instant instead of one per pick keeps the cost linear in the number of
 * endpoints (a scan per pick made pool_worker_main 2.3% of the daemon's CPU at 500).
 */
static struct bus *pool_take(struct tcp_pool *pool, int64_t now, int64_t *earliest)
{
	*earliest = INT64_MAX;
	if (!pool->ready_head) {
		/* Two passes, like schedule_run_due: healthy buses first, then failing ones. */
		for (int pass = 0; pass < 2; pass++) {
			for (size_t b = 0; b < pool->count; b++) {
				struct bus *bus = pool->buses[b];
				if (bus->busy || bus->queued)
					continue;
				int64_t due = pooled_due_ms(bus, now);
				if (due > now) {
					if (due < *earliest)
						*earliest = due;
					continue;
				}
				if (bus->failing == (pass == 1))
					ready_append(pool, bus);
			}
		}
	}
	struct bus *bus = pool->ready_head;
	if (bus) {
		pool->ready_head = bus->ready_next;
		if (!pool->ready_head)
			pool->ready_tail = NULL;
		bus->queued = false;
	}
	return bus;
}

/* Whether a device of the bus failed its last poll. */
static bool bus_failing(const struct bus *bus)
{
	for (size_t i = 0; i < bus->device_count; i++)
		if (devhealth_failed_last(&bus->devices[i].health))
			return true;
	return false;
}

/* With the pool lock held: a wait of delta_ms, kept within [1, POLLER_WAIT_SLICE_MS] so
 * that a wall-clock step is noticed soon. */
static void pool_wait(pthread_cond_t *cond, struct tcp_pool *pool, int64_t delta_ms)
{
	struct timespec ts;
	time_mono_deadline(poller_wait_slice_ms(delta_ms), &ts);
	pthread_cond_timedwait(cond, &pool->lock, &ts);
}

static void *pool_worker_main(void *arg)
{
	struct pool_worker *self = arg;
	struct tcp_pool *pool = self->pool;
	int64_t idle_since = time_mono_ms();

	thread_set_name("mb-tcp");
	liveness_attach(&self->beat); /* Modbus requests beat it too (modbus_io.c) */
	pthread_mutex_lock(&pool->lock);
	while (!pool->stop) {
		liveness_beat(&self->beat);
		int64_t now = time_now_ms();
		int64_t earliest;
		struct bus *bus = pool_take(pool, now, &earliest);
		if (bus) {
			bus->busy = true;
			bus->kick = false;
			/* More buses are due: hand over to an idle worker, which does the same. */
			if (pool->ready_head && pool->idle > 0)
				pthread_cond_signal(&pool->wake);
			pthread_mutex_unlock(&pool->lock);
			pthread_mutex_lock(&bus->lock);
			poller_serve_requests(bus);
			pthread_mutex_unlock(&bus->lock);
			schedule_run_due(bus, now);
			int64_t due = schedule_next_due_ms(bus);
			bool failing = bus_failing(bus);
			pthread_mutex_lock(&pool->lock);
			bus->due_ms = due;
			bus->failing = failing;
			bus->busy = false;
			if (bus->kick) /* a remote request came in meanwhile */
				ready_push_front(pool, bus);
			idle_since = time_mono_ms();
			continue;
		}
		if (pool->live > 1 && time_mono_ms() - idle_since >= POOL_IDLE_EXIT_MS)
			break; /* a surplus worker: the pool shrinks back after a burst of slow reads */
		pool->idle++;
		pool_wait(&pool->wake, pool,
			  earliest == INT64_MAX ? POLLER_WAIT_SLICE_MS : earliest - now);
		pool->idle--;
	}
	pool->live--;
	self->exited = true;
	atomic_store(&self->running, false);
	pthread_cond_signal(&pool->tick); /* the dispatcher joins it */
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* With the pool lock held: joins the workers that ended, so their slots can be reused. */
static void pool_reap(struct tcp_pool *pool)
{
	for (size_t i = 0; i < pool->count; i++) {
		struct pool_worker *w = &pool->workers[i];
		if (w->started && w->exited) {
			pthread_join(w->thread, NULL);
			w->started = false;
		}
	}
}

/* With the pool lock held: starts one more worker if a slot is free. */
static int pool_spawn(struct tcp_pool *pool)
{
	for (size_t i = 0; i < pool->count; i++) {
		struct pool_worker *w = &pool->workers[i];
		if (w->started)
			continue;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, POLLER_STACK_BYTES);
		/* Field by field: running and beat are read without the lock. */
		w->pool = pool;
		w->exited = false;
		liveness_beat(&w->beat);
		atomic_store(&w->running, true);
		int rc = pthread_create(&w->thread, &attr, pool_worker_main, w);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			atomic_store(&w->running, false);
			return MB_ERR_NOMEM;
		}
		w->started = true;
		pool->live++;
		return 0;
	}
	return MB_ERR_NOMEM;
}

/* Grows the pool when a due endpoint waits because every worker is busy. */
static void *pool_dispatcher_main(void *arg)
{
	struct tcp_pool *pool = arg;
	bool warned = false;

	thread_set_name("mb-tcp-pool");
	pthread_mutex_lock(&pool->lock);
	while (!pool->stop) {
		liveness_beat(&pool->dispatcher_beat);
		pool_reap(pool);
		int64_t now = time_now_ms();
		int64_t oldest = INT64_MAX;
		for (size_t b = 0; b < pool->count; b++) {
			const struct bus *bus = pool->buses[b];
			int64_t due = pooled_due_ms(bus, now);
			if (!bus->busy && due < oldest)
				oldest = due;
		}
		int64_t wait_ms =
			oldest == INT64_MAX ? POLLER_WAIT_SLICE_MS : oldest + POOL_LATE_MS - now;
		if (oldest <= now - POOL_LATE_MS && pool->idle == 0 && pool->live < pool->count) {
			if (pool_spawn(pool) == 0) {
				log_debug("modbus tcp: %zu worker(s) for %zu endpoint(s)",
					  pool->live, pool->count);
			} else if (!warned) {
				log_warn("modbus tcp: cannot start another worker; endpoints wait for the "
					 "%zu running",
					 pool->live);
				warned = true;
			}
			wait_ms = POOL_LATE_MS;
		} else if (wait_ms < POOL_LATE_MS / 4) {
			wait_ms = POOL_LATE_MS / 4; /* a worker is about to take it */
		}
		pool_wait(&pool->tick, pool, wait_ms);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

int tcp_pool_start(struct tcp_pool *pool, struct bus *buses, size_t n)
{
	for (size_t b = 0; b < n; b++)
		if (buses[b].pool)
			pool->count++;
	if (pool->count == 0)
		return 0;
	pool->buses = calloc(pool->count, sizeof(struct bus *));
	pool->workers = calloc(pool->count, sizeof(*pool->workers));
	if (!pool->buses || !pool->workers)
		return MB_ERR_NOMEM;
	size_t k = 0;
	for (size_t b = 0; b < n; b++)
		if (buses[b].pool)
			pool->buses[k++] = &buses[b];
	pthread_mutex_lock(&pool->lock);
	int rc = pool_spawn(pool);
	pthread_mutex_unlock(&pool->lock);
	if (rc != 0)
		return rc;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POLLER_STACK_BYTES);
	liveness_beat(&pool->dispatcher_beat);
	rc = pthread_create(&pool->dispatcher, &attr, pool_dispatcher_main, pool);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return MB_ERR_NOMEM;
	pool->dispatcher_started = true;
	log_info("modbus tcp: %zu endpoint(s), served by a pool of workers that grows while "
		 "devices are slow to answer",
		 pool->count);
	return 0;
}

void tcp_pool_stop(struct tcp_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_cond_signal(&pool->tick);
	pthread_mutex_unlock(&pool->lock);
	if (pool->dispatcher_started)
		pthread_join(pool->dispatcher, NULL);
	for (size_t i = 0; pool->workers && i < pool->count; i++)
		if (pool->workers[i].started)
			pthread_join(pool->workers[i].thread, NULL);
	for (size_t b = 0; b < pool->count && pool->buses; b++)
		if (pool->buses[b])
			poller_fail_queued(pool->buses[b]);
	free(pool->buses);
	free(pool->workers);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->tick);
}

int64_t tcp_pool_last_beat_ms(struct tcp_pool *pool)
{
	int64_t oldest = INT64_MAX;

	for (size_t i = 0; pool->workers && i < pool->count; i++) {
		struct pool_worker *w = &pool->workers[i];
		int64_t at = liveness_last(&w->beat);
		if (atomic_load(&w->running) && at < oldest)
			oldest = at;
	}
	if (pool->dispatcher_started && liveness_last(&pool->dispatcher_beat) < oldest)
		oldest = liveness_last(&pool->dispatcher_beat);
	return oldest;
}

void tcp_pool_kick(struct bus *bus)
{
	/* Lock order: a bus, then the pool (pool workers never hold both). */
	pthread_mutex_lock(&bus->pool->lock);
	bus->kick = true;
	/* Served next: ahead of the buses already waiting for a worker (a busy bus is put
	 * there when its worker gives it back). */
	if (!bus->busy && !bus->queued)
		ready_push_front(bus->pool, bus);
	pthread_cond_signal(&bus->pool->wake);
	pthread_mutex_unlock(&bus->pool->lock);
}
