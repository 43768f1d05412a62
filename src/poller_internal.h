/*
 * poller_internal.h - what the poller's files share, and nothing else includes.
 *
 * The poller (poller.h) is spread over a few files, each one concern:
 *   poller.c    the API: start and stop, bus setup, the serial bus threads, the remote
 *               request queue (poller_execute) and the status;
 *   schedule.c  the instants: which device is due, one message per instant, clock steps;
 *   tcp_pool.c  the elastic pool of workers for the Modbus TCP endpoints (tcp_pool.h);
 *   devread.c   reading one device with its request plan (devread.h);
 *   devhealth.c up, down, backing off and late episodes, pure (devhealth.h).
 *
 * Locks: a bus's lock guards its request queue, its stop flag and its devices' status;
 * the pool's lock guards the pool and the pooled buses' pool fields. Lock order: a bus,
 * then the pool (pool workers never hold both). Everything else of a bus (its link, its
 * devices' schedule and health) belongs to the one worker serving it at the time.
 */
#ifndef MODBRIDGE_POLLER_INTERNAL_H
#define MODBRIDGE_POLLER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devhealth.h"
#include "devread.h"
#include "liveness.h"
#include "poller.h"
#include "tcp_pool.h"

/* Stack of each worker thread (see tcp_pool.c): a worker's deepest path (a read, its JSON, a
 * log line) needs tens of KB; the 8 MB default would reserve that much address space per
 * worker. */
#define POLLER_STACK_BYTES ((size_t)256 * 1024)

/* The longest a poller thread sleeps at a time. The schedule is on the wall clock and the
 * waits are on the monotonic one, so a wall-clock step is noticed within this. */
#define POLLER_WAIT_SLICE_MS 1000

/* A wall clock that moved this much more, or less, than the monotonic clock between two
 * looks was stepped (NTP on a gateway without a battery-backed clock, an operator) or the
 * system was suspended: the schedule restarts from the new time instead of publishing an
 * ERR for every instant in between (years of them after a first NTP sync). */
#define POLLER_CLOCK_STEP_MS 1000

/* A wait of delta_ms cut to [1, POLLER_WAIT_SLICE_MS]. */
static inline int64_t poller_wait_slice_ms(int64_t delta_ms)
{
	return delta_ms < 1 ? 1 : delta_ms > POLLER_WAIT_SLICE_MS ? POLLER_WAIT_SLICE_MS : delta_ms;
}

struct scheduled_device {
	const struct device_config *dev;
	int64_t next_ms; /* wall-clock instant of the next message (aligned) */
	/* When next_ms was set, on both clocks: a wall clock that since moved more than the
	 * monotonic one was stepped (see clock_stepped in schedule.c). */
	int64_t anchor_wall_ms, anchor_mono_ms;
	struct devread rd;       /* its request plans */
	struct devhealth health; /* up, down, backing off; late episodes */
	char last_error[READING_ERROR_MAX];
	struct poll_device_status status; /* for remote status; guarded by the bus lock */
};

struct bus {
	struct poller *owner;
	struct tcp_pool *pool; /* NULL: a serial bus, with its own thread */
	/* Pooled buses only; guarded by the pool lock. */
	bool busy;    /* a worker is serving it */
	bool kick;    /* a remote request is queued: due now */
	bool failing; /* a device failed its last poll: served after healthy buses */
	bool queued;  /* waits in the pool's ready queue */
	struct bus *ready_next;
	int64_t due_ms;            /* earliest next_ms of its devices (wall clock) */
	int64_t longest_period_ms; /* of its devices: due_ms beyond now + this is a clock step */
	struct mbio *io;
	struct scheduled_device *devices;
	size_t device_count;
	pthread_t thread;
	bool started;
	struct liveness beat; /* a serial bus's thread: each turn of its loop, each request */
	/* Busy time (polls and remote requests) for metrics: the total, written by the worker
	 * serving the bus, and its share of the last window (window fields: that worker). */
	_Atomic int64_t busy_us;
	_Atomic int64_t busy_ratio_ppm;
	int64_t window_start_ms, window_start_busy_us;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	pthread_cond_t done; /* a remote request finished */
	struct poll_request *queue, *queue_tail;
};

struct direct_bus;

struct poller {
	struct tcp_pool pool;
	struct bus *buses;
	size_t bus_count;
	poll_sink_fn sink;
	void *sink_ctx;
	pthread_mutex_t users_lock; /* callers inside poller_execute, so stop can wait for them */
	pthread_cond_t users_gone;
	int users;
	bool stopping;
	/* Buses without a polled device that remote requests used (poller.c); users_lock. */
	struct direct_bus *direct;
	/* The last clock-step warning (any worker): when, and the step it reported. */
	_Atomic int64_t step_logged_mono_ms; /* 0: none yet */
	_Atomic int64_t step_logged_ms;
};

/* poller.c: counts us of busy time on the bus (by the worker serving it). */
void poller_add_busy(struct bus *bus, int64_t us);

/* poller.c: runs the queued remote requests of a bus. Called with the bus lock held;
 * returns with it held (it is released during each request). */
void poller_serve_requests(struct bus *bus);

/* poller.c: fails the requests still queued on a bus that stops: they will never run. */
void poller_fail_queued(struct bus *bus);

/* schedule.c: sets the next instant of a device, with the clocks' readings it was computed
 * from. */
void schedule_set_next(struct scheduled_device *sd, int64_t next_ms, int64_t wall_ms,
		       int64_t mono_ms);

/* schedule.c: the wall-clock instant at which the bus has work next: its earliest device. */
int64_t schedule_next_due_ms(const struct bus *bus);

/* schedule.c: reschedules the devices of a bus whose wall clock was set back. Run by the
 * bus's worker, without the bus lock. */
void schedule_resync(struct bus *bus, int64_t now);

/* schedule.c: reads every device of the bus that is due at now, serving queued remote
 * requests before each. Run by the bus's worker, without the bus lock. */
void schedule_run_due(struct bus *bus, int64_t now);

#endif
