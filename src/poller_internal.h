/*
 * poller_internal.h - what the poller's files share, and nothing else includes.
 *
 * The poller (poller.h) is spread over a few files, each one concern:
 *   poller.c    the API: start and stop, bus setup, the serial bus threads, the remote
 *               request queue (poller_execute) and the status;
 *   schedule.c  the instants: which device is due, one message per instant, clock steps;
 *   tcpbus.c    the Modbus TCP buses, all served by one event loop (tcploop.h);
 *   devread.c   reading one device with its request plan (devread.h);
 *   devhealth.c up, down, backing off and late episodes, pure (devhealth.h).
 *
 * Locks: a bus's lock guards its request queue, its stop flag and its devices' status;
 * the TCP side's lock guards its inbox (kicked buses, requests for unpolled endpoints)
 * and its stop flag. Lock order: a bus, then the TCP side. Everything else of a bus (its
 * link, its devices' schedule and health) belongs to the one thread serving it: its own
 * thread for a serial bus, the event loop's for Modbus TCP.
 */
#ifndef MODBRIDGE_POLLER_INTERNAL_H
#define MODBRIDGE_POLLER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "devhealth.h"
#include "devread.h"
#include "liveness.h"
#include "poller.h"
#include "tcploop.h"

/* Stack of each poller thread: its deepest path (a read, its JSON, a log line) needs tens
 * of KB; the 8 MB default would reserve that much address space per thread. */
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

/* A remote request's state (poller.c, tcpbus.c). */
enum { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct bus;

/* The clocks of a poll that schedule_claim started (schedule_complete ends it). */
struct poll_claim {
	int64_t instant; /* the aligned instant it is for (wall clock) */
	int64_t now, mono;
	struct timespec t0;
};

/* A Modbus TCP device's poll on the event loop (tcpbus.c). */
struct devjob {
	struct tcp_client client;
	struct bus *bus;
	struct poll_claim claim;
	struct reading r;
	bool active; /* waiting for its turn, or reading */
};

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
	struct devjob job;                /* Modbus TCP: its poll in progress */
};

struct remote_job;
struct tcpside;

struct bus {
	struct poller *owner;
	struct mbio *io;   /* a serial bus: its link (NULL for Modbus TCP) */
	struct tcp_ep *ep; /* Modbus TCP: its endpoint on the event loop (NULL for serial) */
	struct scheduled_device *devices;
	size_t device_count;
	int64_t longest_period_ms; /* of its devices */
	/* Modbus TCP only, the event loop's (tcpbus.c). */
	struct tcploop_timer due_timer; /* its earliest idle device is due */
	struct remote_job *remote;      /* serves the queued remote requests */
	bool kicked;                    /* in the TCP side's inbox; its lock */
	struct bus *kicked_next;
	/* Serial only: its thread. */
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
	struct tcpside *tcp; /* the Modbus TCP side: buses and unpolled endpoints; users_lock */
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

/* poller.c: the bus's name for logs: "com2 (/dev/ttyS1)" or "192.168.1.20:502". */
const char *bus_name(const struct bus *bus);

/* tcpbus.c: starts the event loop for p's Modbus TCP buses (there may be none: it then
 * serves unpolled endpoints only) and sets p->tcp, before the loop's thread starts (which
 * reads it). Returns 0 or MB_ERR_NOMEM (nothing left running, p->tcp NULL). */
int tcpside_start(struct poller *p);

/* tcpbus.c: stops the loop: polls and requests on the bus finish first, queued remote
 * requests fail (MB_ERR_BUSY), and so does every later tcpside_execute; joins its thread.
 * Callers of tcpside_execute may still be on their way out (or in): free with
 * tcpside_stop only when none can be. Accepts NULL; a second call does nothing. */
void tcpside_halt(struct tcpside *t);

/* tcpbus.c: when the event loop's thread last beat (liveness.h); INT64_MAX without one.
 * Any thread (the daemon's watchdog check). */
int64_t tcpside_last_beat_ms(const struct tcpside *t);

/* tcpbus.c: tcpside_halt, then frees. Accepts NULL. */
void tcpside_stop(struct tcpside *t);

/* tcpbus.c: a remote request was queued on a Modbus TCP bus: its turn comes next. Called
 * with the bus lock held. */
void tcpside_kick(struct bus *bus);

/*
 * tcpbus.c: executes req on the unpolled endpoint host:port through the loop, and waits
 * for its outcome. Returns 0 (the outcome in req), MB_ERR_BUSY (the loop stops: never
 * sent) or MB_ERR_NOMEM.
 */
int tcpside_execute(struct tcpside *t, const char *host, int port, struct poll_request *req);

/* tcpbus.c: executes req on host:port on a loop of its own, run by the calling thread (no
 * poller in this process). Returns 0 (the outcome in req) or MB_ERR_NOMEM. */
int tcp_execute_alone(const char *host, int port, struct poll_request *req);

/* schedule.c: sets the next instant of a device, with the clocks' readings it was computed
 * from. */
void schedule_set_next(struct scheduled_device *sd, int64_t next_ms, int64_t wall_ms,
		       int64_t mono_ms);

/* schedule.c: the first half of a due device's poll, when it has its turn on the bus:
 * publishes the instants it missed, and returns true with the poll's clocks in *pc when it
 * is to be read now (false: its instant was published without a read, backing off). */
bool schedule_claim(struct bus *bus, struct scheduled_device *sd, struct poll_claim *pc);

/* schedule.c: the second half: publishes r (NULL: it could not be allocated), logs the
 * changes of state, publishes the instants the read overran, sets the next instant. */
void schedule_complete(struct bus *bus, struct scheduled_device *sd, const struct poll_claim *pc,
		       struct reading *r);

/* schedule.c: the wall-clock instant at which the bus has work next: its earliest device. */
int64_t schedule_next_due_ms(const struct bus *bus);

/* schedule.c: reschedules the devices of a bus whose wall clock was set back (not those
 * being polled: their poll does it when it ends). Run by the bus's thread, without the bus
 * lock. */
void schedule_resync(struct bus *bus, int64_t now);

/* schedule.c: reads every device of the bus that is due at now, serving queued remote
 * requests before each. Run by the bus's worker, without the bus lock. */
void schedule_run_due(struct bus *bus, int64_t now);

#endif
