/*
 * poller.c - bus workers and the aligned schedule; see poller.h.
 *
 * Threading. Each serial bus has its own thread, which owns the line: its requests are
 * strictly serialized. Modbus TCP endpoints (one bus per host:port, each with its own
 * connection) are served by one elastic pool of threads (struct tcp_pool): a pool worker
 * takes the next due bus from a ready queue (healthy buses first, see pool_take), runs its
 * due devices, and gives it back; a bus is served by one worker at a time, so its
 * requests are serialized too. A dispatcher thread, which does no I/O, watches the
 * schedule: when a due bus has waited POOL_LATE_MS with every worker busy (a device that
 * times out holds its worker for its time-out), it starts another worker, up to one per
 * endpoint; a worker idle for POOL_IDLE_EXIT_MS ends (one always stays). So dead devices
 * delay the others by about POOL_LATE_MS each, only until the pool has grown (and failing
 * buses go last after their first failure), and 500 healthy endpoints cost a few threads
 * instead of 500 (each thread was a stack and a timer wake-up every period: bench/run.sh,
 * docs/performance.md).
 * Workers sleep on condition variables (monotonic clock) so that poller_stop() can wake
 * them at once.
 *
 * Reading a device (read_device): its blocks are read with the transactions of its plan
 * (planner.h: merged across small gaps, split at the request limit), each transaction's
 * values are scattered back into the blocks' places, and typed devices are decoded
 * (decode.h), so the reading is the same whatever the plan. A transaction that fails on a
 * time-out or a garbled answer is retried (the device's `retries`); a merged transaction
 * the device refuses as an illegal address makes the device fall back, for good, to its
 * exact blocks. The first failed transaction ends the reading: a device that does not
 * answer costs its bus (1 + retries) time-outs per poll, no more.
 *
 * Fault isolation (note_result): a device that fails is logged once as down; after
 * BACKOFF_AFTER_FAILURES failed polls in a row it is polled less often (doubling
 * intervals up to its backoff_max), with an ERR reading published for each instant it is
 * not polled, until it answers ("back" is logged once). Within one instant, devices in
 * good standing are read before failing ones, so a dead device never delays a healthy
 * device that is due at the same instant.
 *
 * One message per instant (poll_due_device): a device's next_ms is the next instant that
 * has no message yet, and only the worker serving its bus publishes its messages, in instant
 * order: a late reading for T comes before the ERR for T+1, and no instant gets two.
 * Instants skipped because the device's own read ran past them, or because the bus was
 * busy for their whole period, get ERR readings; both episodes are logged once. The
 * monotonic clock tells a clock step from a late bus, so setting the wall clock forward does
 * not flood the store with ERR readings for the instants in between, and setting it back
 * reschedules the devices at once (resync_devices) instead of leaving them silent until
 * the clock is back where it was.
 *
 * Remote requests (poller_execute) are queued on the bus under its lock; the worker
 * serves them before each device read, and signals `done`.
 * The per-device status is written by the worker and read by poller_device_status(), both
 * under the bus lock. poller_stop() fails the requests still queued and waits until no
 * caller is inside poller_execute() before it frees the buses.
 */
#include "poller.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "error.h"
#include "log.h"
#include "modbus_io.h"
#include "planner.h"
#include "timeutil.h"

/* Stack of each bus worker (see poller_start). */
#define BUS_STACK_BYTES ((size_t)256 * 1024)

/* TCP pool: how long a due bus may wait for a worker before another is started (also the
 * shortest time between two starts), and how long a surplus worker stays idle. */
#define POOL_LATE_MS 100
#define POOL_IDLE_EXIT_MS 60000

/* Failed polls in a row after which a device is polled less often. */
#define BACKOFF_AFTER_FAILURES 3

/* An episode of skipped instants ends when instants in a row were read within their
 * period, at least two (one would end it between every two skips of a device that overruns
 * every other instant) and for at least this long (at a 100 ms period, a loaded bus made an
 * episode start and end several times a second). */
#define LATE_EPISODE_QUIET_MS 10000

/* A wall clock that moved this much more, or less, than the monotonic clock between two
 * looks was stepped (NTP on a gateway without a battery-backed clock, an operator) or the
 * system was suspended: the schedule restarts from the new time instead of publishing an
 * ERR for every instant in between (years of them after a first NTP sync). */
#define CLOCK_STEP_MS 1000

/* The ERR reasons of instants that were not read (docs/json-format.md). */
#define SKIP_OVERRAN "skipped: previous read still running"
#define SKIP_BUSY "skipped: bus busy"

struct scheduled_device {
	const struct device_config *dev;
	int64_t next_ms; /* wall-clock instant of the next message (aligned) */
	/* When next_ms was set, on both clocks: a wall clock that since moved more than the
	 * monotonic one was stepped (see clock_stepped). */
	int64_t anchor_wall_ms, anchor_mono_ms;
	bool failing; /* last read failed: log only the change of state */
	/* Skipped instants (overrun or busy bus): the episode is logged once, and ends as
	 * LATE_EPISODE_QUIET_MS says. */
	bool late;
	unsigned on_time_reads;   /* instants in a row read within their period */
	int64_t on_time_since_ms; /* the first of them */
	/* Request plans (planner.h): plan is what we read with; exact is the blocks as
	 * configured, the fallback when the device refuses a merged read. */
	struct plan plan;
	struct plan exact;
	bool use_exact;
	/* Fault isolation: the state behind note_result's log lines and the back-off. */
	unsigned fail_streak;  /* failed polls in a row that count towards back-off */
	unsigned failed_polls; /* failed polls since the device was last seen well */
	int64_t down_since_ms; /* wall clock of the first failed poll of the streak */
	bool backing_off;      /* polled only at probe_ms and later */
	int64_t backoff_ms;    /* current interval between polls while backing off */
	int64_t probe_ms;      /* wall-clock instant of the next poll while backing off */
	char last_error[READING_ERROR_MAX];
	size_t requests; /* requests sent by the last read (retries included) */
	bool refused;    /* the last read failed on an exception: the device answered */
	struct poll_device_status status; /* for remote status; guarded by the bus lock */
};

enum { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct tcp_pool;

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
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	pthread_cond_t done; /* a remote request finished */
	struct poll_request *queue, *queue_tail;
};

struct pool_worker {
	struct tcp_pool *pool;
	pthread_t thread;
	bool started; /* a thread runs, or ran and was not joined yet */
	bool exited;  /* it returned; join it before reusing the slot */
};

struct tcp_pool {
	pthread_mutex_t lock; /* guards everything below and the pooled buses' pool fields */
	pthread_cond_t wake;  /* idle workers */
	pthread_cond_t tick;  /* the dispatcher */
	struct bus **buses;
	size_t count;
	struct bus *ready_head, *ready_tail; /* due buses, in the order they will be served */
	struct pool_worker *workers;         /* count slots: at most one worker per endpoint */
	size_t live, idle;
	bool stop;
	pthread_t dispatcher;
	bool dispatcher_started;
};

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
	/* The last clock-step warning (any worker): when, and the step it reported. */
	_Atomic int64_t step_logged_mono_ms; /* 0: none yet */
	_Atomic int64_t step_logged_ms;
};

static int device_timeout_ms(const struct device_config *dev)
{
	return dev->transport == TRANSPORT_RTU ? dev->serial->timeout_ms : dev->timeout_ms;
}

/* Makes both plans of a device. Returns 0 or MB_ERR_NOMEM. */
static int plan_device(struct scheduled_device *sd)
{
	const struct device_config *dev = sd->dev;
	struct line_timing line;
	const struct line_timing *lp = NULL;
	int rc;

	if (dev->transport == TRANSPORT_RTU) {
		planner_line_timing(dev->serial, &line);
		lp = &line;
	}
	rc = planner_plan(dev->blocks, dev->block_count, dev->function, (unsigned)dev->max_per_read,
			  false, lp, &sd->exact);
	if (rc == 0)
		rc = planner_plan(dev->blocks, dev->block_count, dev->function,
				  (unsigned)dev->max_per_read, dev->optimize, lp, &sd->plan);
	if (rc == 0)
		log_debug("device %s: %zu block(s) read with %zu request(s) per poll%s", dev->id,
			  dev->block_count, sd->plan.count, dev->optimize ? "" : " (optimize off)");
	return rc;
}

static void unplan_device(struct scheduled_device *sd)
{
	planner_plan_free(&sd->plan);
	planner_plan_free(&sd->exact);
}

/* Fills r->decoded for a typed device from its registers. Returns 0 or MB_ERR_NOMEM. */
static int decode_reading(struct reading *r)
{
	const struct device_config *dev = r->device;
	/* Plain words (the router's V) stay on the seed's path, byte for byte; a word with
	 * swapped bytes (BADC, DCBA) is decoded like any other type. */
	bool swapped = dev->order == REG_ORDER_BADC || dev->order == REG_ORDER_DCBA;
	if (dev->function <= 2 || (dev->type == REG_TYPE_WORD && !swapped))
		return 0;
	size_t n = r->value_count / decode_width(dev->type);
	r->decoded = calloc(n ? n : 1, sizeof(*r->decoded));
	if (!r->decoded)
		return MB_ERR_NOMEM;
	/* Every block holds whole values (config.c checks it), so the concatenation does. */
	r->decoded_count =
		decode_registers(dev->type, dev->order, r->values, r->value_count, r->decoded);
	return 0;
}

/*
 * One transaction, with the device's retries: a time-out, a garbled answer or a lost
 * connection is tried again; an exception (the device's considered refusal) or a link
 * that cannot even be opened is not. A device that is backing off gets one attempt.
 */
static int read_tx(struct mbio *io, struct scheduled_device *sd, const struct plan_tx *tx,
		   uint16_t *buf, char *reason, size_t reason_len)
{
	const struct device_config *dev = sd->dev;
	int attempts = sd->backing_off ? 1 : 1 + dev->retries;
	int rc = MB_ERR_MODBUS;

	for (int a = 0; a < attempts; a++) {
		sd->requests++;
		rc = mbio_read(io, dev->slave, dev->function, tx->start, tx->count,
			       device_timeout_ms(dev), buf, reason, reason_len);
		if (rc == 0 || rc == MB_ERR_IO || rc == MB_ERR_INVAL || mbio_last_exception(io))
			break;
	}
	return rc;
}

static int read_device(struct mbio *io, struct scheduled_device *sd, struct reading *r)
{
	const struct device_config *dev = sd->dev;
	size_t total = blocks_total(dev->blocks, dev->block_count);
	uint16_t buf[BLOCKS_MAX_BITS]; /* one transaction's values */

	memset(r, 0, sizeof(*r));
	r->device = dev;
	r->ts_ms = time_now_ms();
	r->values = calloc(total ? total : 1, sizeof(uint16_t));
	if (!r->values)
		return MB_ERR_NOMEM;
	r->value_count = total;
	sd->requests = 0;
	sd->refused = false;

again:;
	const struct plan *plan = sd->use_exact ? &sd->exact : &sd->plan;
	for (size_t k = 0; k < plan->count; k++) {
		const struct plan_tx *tx = &plan->tx[k];
		char reason[READING_ERROR_MAX - 32];
		int rc = read_tx(io, sd, tx, buf, reason, sizeof(reason));
		if (rc == 0) {
			planner_scatter(dev->blocks, dev->block_count, tx, buf, r->values);
			continue;
		}
		int exception = mbio_last_exception(io);
		if (tx->merged && !sd->use_exact && (exception == 2 || exception == 3)) {
			/* The merged read touched addresses the device does not serve (or more
			 * than it serves at once). Its exact blocks are what the user asked for:
			 * read those, now and from now on. */
			log_warn("device %s: refused the merged read %u+%u (%s); reading its blocks as configured from now on",
				 dev->id, tx->start, tx->count, reason);
			sd->use_exact = true;
			goto again;
		}
		sd->refused = exception != 0;
		/* Name the block only when the block itself failed, not the link. */
		const struct block *b = &dev->blocks[tx->first_block];
		if (dev->block_count > 1 && rc == MB_ERR_MODBUS)
			snprintf(r->error, sizeof(r->error), "block %u+%u: %s", b->start, b->count,
				 reason);
		else
			snprintf(r->error, sizeof(r->error), "%s", reason);
		/* A failed reading carries no values: the JSON has ERR instead of V. */
		free(r->values);
		r->values = NULL;
		r->value_count = 0;
		return 0;
	}
	if (decode_reading(r) != 0) {
		reading_clear(r);
		return MB_ERR_NOMEM;
	}
	return 0;
}

/* The longest interval between polls of a device that is backing off: backoff_max
 * rounded up to whole periods. */
static int64_t backoff_cap_ms(const struct device_config *dev)
{
	/* A whole number of periods, so probes stay on the aligned instants. */
	int64_t periods = (dev->backoff_max_ms + dev->period_ms - 1) / dev->period_ms;
	return (periods < 1 ? 1 : periods) * dev->period_ms;
}

/*
 * Logs changes of state and runs the back-off. instant_ms is the aligned instant the
 * poll was for.
 */
static void note_result(struct mbio *io, struct scheduled_device *sd, const struct reading *r,
			int64_t instant_ms)
{
	const struct device_config *dev = sd->dev;

	if (!r->error[0]) {
		if (sd->failing)
			log_info("device %s (address %s on %s): back after %lld s (%u failed poll%s)",
				 dev->id, dev->address_text, mbio_name(io),
				 (long long)((r->ts_ms - sd->down_since_ms) / 1000),
				 sd->failed_polls, sd->failed_polls == 1 ? "" : "s");
		sd->failing = false;
		sd->backing_off = false;
		sd->fail_streak = 0;
		sd->failed_polls = 0;
		return;
	}
	snprintf(sd->last_error, sizeof(sd->last_error), "%s", r->error);
	sd->fail_streak++;
	sd->failed_polls++;
	if (!sd->failing) {
		sd->failing = true;
		sd->down_since_ms = r->ts_ms;
		if (sd->refused) { /* it did answer, with its reason */
			char what[160];
			mbio_exception_text(io, what, sizeof(what));
			log_warn("device %s (address %s on %s): answers with %s", dev->id,
				 dev->address_text, mbio_name(io), what);
		} else {
			log_warn("device %s (address %s on %s): down: not answering: %s", dev->id,
				 dev->address_text, mbio_name(io), r->error);
		}
	}
	int64_t cap = backoff_cap_ms(dev);
	/* A device that answers with an exception is alive and says why: it costs one short
	 * transaction, and its reason is worth publishing every period. Back off only from
	 * devices that do not answer. */
	if (sd->refused)
		sd->fail_streak = 0;
	if (!sd->backing_off && sd->fail_streak >= BACKOFF_AFTER_FAILURES && cap > dev->period_ms) {
		sd->backing_off = true;
		sd->backoff_ms = dev->period_ms;
		log_info("device %s: polling it less often (at most every %lld s) until it answers",
			 dev->id, (long long)(cap / 1000));
	}
	if (sd->backing_off) {
		sd->backoff_ms = sd->backoff_ms * 2 < cap ? sd->backoff_ms * 2 : cap;
		sd->probe_ms = instant_ms + sd->backoff_ms;
	}
}

/* A message for an instant that was not read: its own TS and the reason. */
static void publish_unread(struct poller *p, const struct scheduled_device *sd, int64_t instant,
			   const char *reason)
{
	struct reading r = {.device = sd->dev, .ts_ms = instant};
	snprintf(r.error, sizeof(r.error), "%s", reason);
	p->sink(p->sink_ctx, &r);
}

/* Called with the bus lock held; returns with it held. Runs queued remote requests. */
static void serve_requests(struct bus *bus)
{
	while (bus->queue && !bus->stop) {
		struct poll_request *req = bus->queue;
		bus->queue = req->next;
		if (!bus->queue)
			bus->queue_tail = NULL;
		req->state = REQ_RUNNING;
		pthread_mutex_unlock(&bus->lock);
		req->reason[0] = '\0';
		if (req->write)
			req->rc = mbio_write(bus->io, req->slave, req->function, req->address,
					     req->values[0], req->timeout_ms, req->reason,
					     sizeof(req->reason));
		else
			req->rc = mbio_read(bus->io, req->slave, req->function, req->address,
					    req->count, req->timeout_ms, req->values, req->reason,
					    sizeof(req->reason));
		pthread_mutex_lock(&bus->lock);
		req->state = REQ_DONE;
		pthread_cond_broadcast(&bus->done);
	}
}

static void record_status(struct bus *bus, struct scheduled_device *sd, const struct reading *r)
{
	pthread_mutex_lock(&bus->lock);
	sd->status.reads++;
	sd->status.last_read_ms = r->ts_ms;
	if (r->error[0]) {
		sd->status.failures++;
		snprintf(sd->status.last_error, sizeof(sd->status.last_error), "%s", r->error);
	} else {
		sd->status.last_ok_ms = r->ts_ms;
		sd->status.last_error[0] = '\0';
	}
	pthread_mutex_unlock(&bus->lock);
}

/* The instant a time belongs to: the latest aligned instant at or before it. */
static int64_t aligned_floor_ms(int64_t t_ms, int64_t period_ms)
{
	return time_next_aligned_ms(t_ms, period_ms) - period_ms;
}

/*
 * Whether the wall clock was stepped between two looks at both clocks (any worker). Every
 * device notices the same step, a device with a long period later: it is logged for the
 * whole poller, again only for a different step or after a minute.
 */
static bool clock_stepped(struct poller *p, int64_t wall0, int64_t mono0, int64_t wall1,
			  int64_t mono1)
{
	int64_t step = (wall1 - wall0) - (mono1 - mono0);
	if (step <= CLOCK_STEP_MS && step >= -CLOCK_STEP_MS)
		return false;
	int64_t last = atomic_load(&p->step_logged_mono_ms);
	int64_t same = step - atomic_load(&p->step_logged_ms);
	if ((last == 0 || mono1 - last >= 60000 || same > CLOCK_STEP_MS || same < -CLOCK_STEP_MS) &&
	    atomic_compare_exchange_strong(&p->step_logged_mono_ms, &last, mono1)) {
		atomic_store(&p->step_logged_ms, step);
		log_warn("the wall clock moved %+lld s against the monotonic clock (set, or the system "
			 "was suspended): schedules go on from the new time, %s",
			 (long long)(step / 1000),
			 step > 0 ? "without messages for the instants in between"
				  : "and the instants it goes through again get messages again");
	}
	return true;
}

/* Sets the next instant of a device, with the clocks' readings it was computed from. */
static void set_next(struct scheduled_device *sd, int64_t next_ms, int64_t wall_ms, int64_t mono_ms)
{
	sd->next_ms = next_ms;
	sd->anchor_wall_ms = wall_ms;
	sd->anchor_mono_ms = mono_ms;
}

/* Instants were skipped: the first skip of an episode is logged (why), the rest are not. */
static void note_late(struct scheduled_device *sd, const char *why)
{
	sd->on_time_reads = 0;
	if (!sd->late)
		log_warn("device %s: %s", sd->dev->id, why);
	sd->late = true;
}

/* An instant was read within its period; enough of them in a row end the episode. */
static void note_on_time(struct scheduled_device *sd, int64_t instant)
{
	if (!sd->late)
		return;
	if (sd->on_time_reads++ == 0)
		sd->on_time_since_ms = instant;
	if (sd->on_time_reads < 2 || instant - sd->on_time_since_ms < LATE_EPISODE_QUIET_MS)
		return;
	log_info("device %s: reads fit their period again", sd->dev->id);
	sd->late = false;
	sd->on_time_reads = 0;
}

/*
 * Gives every instant of a due device, from its next_ms to now, exactly one message, in
 * instant order: an ERR "skipped: bus busy" for each instant whose whole period went by
 * before the bus got to the device, then the reading of the current instant (an ERR
 * "not polled" one while the device backs off), then an ERR "skipped: previous read still
 * running" for each instant that came while that read ran. The next read is at the first
 * instant after the read ended, so an overrun never makes the schedule drift. Every
 * message's TS is its instant. Only the bus's current worker runs this for the device, so
 * nothing else can publish one of its instants meanwhile.
 */
static void poll_due_device(struct bus *bus, struct scheduled_device *sd)
{
	struct poller *p = bus->owner;
	const struct device_config *dev = sd->dev;
	int64_t period = dev->period_ms;
	int64_t now = time_now_ms();
	int64_t mono = time_mono_ms();
	struct reading r;
	char why[160];

	if (clock_stepped(p, sd->anchor_wall_ms, sd->anchor_mono_ms, now, mono))
		sd->next_ms = aligned_floor_ms(now, period);
	int64_t instant = sd->next_ms;
	if (instant + period <= now) {
		for (; instant + period <= now; instant += period)
			publish_unread(p, sd, instant, SKIP_BUSY);
		snprintf(why, sizeof(why),
			 "its bus was busy for a whole period (other devices' reads or remote "
			 "requests); the instants it missed get ERR \"%s\"",
			 SKIP_BUSY);
		note_late(sd, why);
	}

	if (sd->backing_off && instant < sd->probe_ms) {
		/* No request goes on the bus, but the instant still gets its message. */
		snprintf(why, sizeof(why), "not polled: device down (last error: %.100s)",
			 sd->last_error);
		publish_unread(p, sd, instant, why);
		set_next(sd, instant + period, now, mono);
		return;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (read_device(bus->io, sd, &r) != 0) {
		log_error("device %s: out of memory reading it", dev->id);
		publish_unread(p, sd, instant, "out of memory");
	} else {
		r.ts_ms = instant;
		/* bench/modbus_bus.py reads this line: keep its form. */
		clock_gettime(CLOCK_MONOTONIC, &t1);
		log_debug("device %s: read in %.1f ms with %zu request(s)", dev->id,
			  (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
				  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
			  sd->requests);
		note_result(bus->io, sd, &r, instant);
		record_status(bus, sd, &r);
		p->sink(p->sink_ctx, &r);
		reading_clear(&r);
	}
	/* Where the read ended on the instants' clock, even if the wall clock was set
	 * meanwhile (the next look sees that step). */
	int64_t end_mono = time_mono_ms();
	int64_t end = now + (end_mono - mono);
	int64_t next = instant + period;
	if (next <= end) {
		for (; next <= end; next += period)
			publish_unread(p, sd, next, SKIP_OVERRAN);
		snprintf(why, sizeof(why),
			 "read took longer than its period (ended %lld ms after its instant, period "
			 "%lld ms); the instants it overran get ERR \"%s\"",
			 (long long)(end - instant), (long long)period, SKIP_OVERRAN);
		note_late(sd, why);
	} else if (instant == sd->next_ms) {
		note_on_time(sd, instant);
	}
	set_next(sd, next, end, end_mono);
}

/*
 * A device's next instant is never more than a period ahead of the time it was set at, so
 * one further ahead means the wall clock was set back: reschedule it from the new time
 * rather than wait, without messages, until the clock is back where it was. (The instants
 * between the new time and the old one get messages again: the clock repeats them.) Run
 * by the bus's worker before it looks at what is due.
 */
static void resync_devices(struct bus *bus, int64_t now)
{
	for (size_t i = 0; i < bus->device_count; i++) {
		struct scheduled_device *sd = &bus->devices[i];
		int64_t period = sd->dev->period_ms;
		if (sd->next_ms - now <= period + CLOCK_STEP_MS)
			continue;
		int64_t mono = time_mono_ms();
		clock_stepped(bus->owner, sd->anchor_wall_ms, sd->anchor_mono_ms, now, mono);
		set_next(sd, time_next_aligned_ms(now, period), now, mono);
		if (sd->backing_off)
			sd->probe_ms = sd->next_ms; /* its probe was on the old time too */
	}
}

/* The wall-clock instant at which the bus has work next: its earliest device. */
static int64_t bus_next_due_ms(const struct bus *bus)
{
	int64_t due = INT64_MAX;
	for (size_t i = 0; i < bus->device_count; i++)
		if (bus->devices[i].next_ms < due)
			due = bus->devices[i].next_ms;
	return due;
}

/*
 * Reads every device of the bus that is due at `now`, one request at a time: first those
 * in good standing, then those that failed last time, each pass in configuration order, so
 * a device that times out never delays a healthy one due at the same instant. Queued
 * remote requests are served before each device read, so one waits for at most one read
 * and is never interleaved with a poll on the line. Called without the bus lock.
 */
static void run_due_devices(struct bus *bus, int64_t now)
{
	resync_devices(bus, now);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < bus->device_count; i++) {
			struct scheduled_device *sd = &bus->devices[i];
			if (sd->next_ms > now || (sd->fail_streak > 0) != (pass == 1))
				continue;
			pthread_mutex_lock(&bus->lock);
			serve_requests(bus);
			pthread_mutex_unlock(&bus->lock);
			poll_due_device(bus, sd);
		}
	}
}

/* Fails the requests still queued on a bus that stops: they will never run. */
static void fail_queued_requests(struct bus *bus)
{
	pthread_mutex_lock(&bus->lock);
	while (bus->queue) {
		struct poll_request *req = bus->queue;
		bus->queue = req->next;
		req->rc = MB_ERR_BUSY;
		snprintf(req->reason, sizeof(req->reason), "the gateway is stopping");
		req->state = REQ_DONE;
	}
	bus->queue_tail = NULL;
	pthread_cond_broadcast(&bus->done);
	pthread_mutex_unlock(&bus->lock);
}

/* The thread of a serial bus. */
static void *bus_main(void *arg)
{
	struct bus *bus = arg;

	pthread_mutex_lock(&bus->lock);
	while (!bus->stop) {
		serve_requests(bus);
		if (bus->stop)
			break;
		int64_t now = time_now_ms();
		resync_devices(bus, now);
		int64_t due = bus_next_due_ms(bus);
		if (due > now) {
			/* Sleep at most 1 s at a time so a wall-clock step is noticed soon. */
			int64_t wait_ms = due - now < 1000 ? due - now : 1000;
			struct timespec ts;
			time_mono_deadline(wait_ms, &ts);
			pthread_cond_timedwait(&bus->wake, &bus->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&bus->lock);
		run_due_devices(bus, now);
		pthread_mutex_lock(&bus->lock);
	}
	pthread_mutex_unlock(&bus->lock);
	fail_queued_requests(bus);
	return NULL;
}

/* ---- the TCP pool ---- */

/* When a pooled bus is due: now if a remote request waits or the wall clock was set back
 * (its worker reschedules it, see resync_devices), else its earliest device. */
static int64_t pooled_due_ms(const struct bus *bus, int64_t now)
{
	if (bus->kick || bus->due_ms - now > bus->longest_period_ms + CLOCK_STEP_MS)
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
		/* Two passes, like run_due_devices: healthy buses first, then failing ones. */
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
		if (bus->devices[i].fail_streak > 0)
			return true;
	return false;
}

/* With the pool lock held: a wait of delta_ms, kept within [1, 1000] ms so that a
 * wall-clock step is noticed soon. */
static void pool_wait(pthread_cond_t *cond, struct tcp_pool *pool, int64_t delta_ms)
{
	struct timespec ts;
	time_mono_deadline(delta_ms < 1 ? 1 : delta_ms > 1000 ? 1000 : delta_ms, &ts);
	pthread_cond_timedwait(cond, &pool->lock, &ts);
}

static void *pool_worker_main(void *arg)
{
	struct pool_worker *self = arg;
	struct tcp_pool *pool = self->pool;
	int64_t idle_since = time_mono_ms();

	pthread_mutex_lock(&pool->lock);
	while (!pool->stop) {
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
			serve_requests(bus);
			pthread_mutex_unlock(&bus->lock);
			run_due_devices(bus, now);
			int64_t due = bus_next_due_ms(bus);
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
		pool_wait(&pool->wake, pool, earliest == INT64_MAX ? 1000 : earliest - now);
		pool->idle--;
	}
	pool->live--;
	self->exited = true;
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
		/* A worker's deepest path (a read, its JSON, a log line) needs tens of KB; the
		 * 8 MB default would reserve that much address space per worker. */
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, BUS_STACK_BYTES);
		*w = (struct pool_worker){.pool = pool};
		int rc = pthread_create(&w->thread, &attr, pool_worker_main, w);
		pthread_attr_destroy(&attr);
		if (rc != 0)
			return MB_ERR_NOMEM;
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

	pthread_mutex_lock(&pool->lock);
	while (!pool->stop) {
		pool_reap(pool);
		int64_t now = time_now_ms();
		int64_t oldest = INT64_MAX;
		for (size_t b = 0; b < pool->count; b++) {
			const struct bus *bus = pool->buses[b];
			int64_t due = pooled_due_ms(bus, now);
			if (!bus->busy && due < oldest)
				oldest = due;
		}
		int64_t wait_ms = oldest == INT64_MAX ? 1000 : oldest + POOL_LATE_MS - now;
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

/* Starts the pool for the TCP buses of p: the dispatcher and one worker. */
static int pool_start(struct poller *p)
{
	struct tcp_pool *pool = &p->pool;
	for (size_t b = 0; b < p->bus_count; b++)
		if (p->buses[b].pool)
			pool->count++;
	if (pool->count == 0)
		return 0;
	pool->buses = calloc(pool->count, sizeof(struct bus *));
	pool->workers = calloc(pool->count, sizeof(*pool->workers));
	if (!pool->buses || !pool->workers)
		return MB_ERR_NOMEM;
	size_t n = 0;
	for (size_t b = 0; b < p->bus_count; b++)
		if (p->buses[b].pool)
			pool->buses[n++] = &p->buses[b];
	pthread_mutex_lock(&pool->lock);
	int rc = pool_spawn(pool);
	pthread_mutex_unlock(&pool->lock);
	if (rc != 0)
		return rc;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, BUS_STACK_BYTES);
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

/* Stops the pool's threads (reads in progress finish first) and frees it. */
static void pool_stop(struct tcp_pool *pool)
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
			fail_queued_requests(pool->buses[b]);
	free(pool->buses);
	free(pool->workers);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->tick);
}

/* Two devices share a bus when they use the same serial port, or the same host:port. */
static bool same_bus(const struct device_config *a, const struct device_config *b)
{
	if (a->transport != b->transport)
		return false;
	if (a->transport == TRANSPORT_RTU)
		return a->serial == b->serial;
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int bus_init(struct bus *bus, struct poller *p, const struct device_config *first)
{
	int rc = first->transport == TRANSPORT_RTU
			 ? mbio_new_rtu(first->serial, &bus->io)
			 : mbio_new_tcp(first->host, first->port, &bus->io);
	if (rc)
		return rc;
	bus->owner = p;
	if (first->transport == TRANSPORT_TCP)
		bus->pool = &p->pool;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&bus->wake, &attr);
	pthread_cond_init(&bus->done, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

/* How many of cfg's polled devices share dev's bus: the size of that bus's table. Sizing
 * each table for every device of the config made 500 TCP endpoints cost 500 x 500
 * entries, most of a 89 MB peak RSS (bench/run.sh). */
static size_t devices_on_bus(const struct config *cfg, const struct device_config *dev)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->device_count; i++)
		if (cfg->devices[i].logger && same_bus(&cfg->devices[i], dev))
			n++;
	return n;
}

/* The bus that dev belongs to: an existing one, or a new one (NULL when out of memory). */
static struct bus *bus_for(struct poller *p, const struct config *cfg,
			   const struct device_config *dev)
{
	for (size_t b = 0; b < p->bus_count; b++)
		if (p->buses[b].devices && same_bus(p->buses[b].devices[0].dev, dev))
			return &p->buses[b];
	struct scheduled_device *devices = calloc(devices_on_bus(cfg, dev), sizeof(*devices));
	if (!devices)
		return NULL;
	struct bus *bus = &p->buses[p->bus_count];
	if (bus_init(bus, p, dev) != 0) {
		free(devices);
		return NULL;
	}
	bus->devices = devices;
	p->bus_count++;
	return bus;
}

int poller_start(const struct config *cfg, poll_sink_fn sink, void *sink_ctx, struct poller **out)
{
	struct poller *p = calloc(1, sizeof(*p));
	if (!p)
		return MB_ERR_NOMEM;
	p->sink = sink;
	p->sink_ctx = sink_ctx;
	pthread_mutex_init(&p->users_lock, NULL);
	pthread_cond_init(&p->users_gone, NULL);
	pthread_mutex_init(&p->pool.lock, NULL);
	pthread_condattr_t cattr;
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->pool.wake, &cattr);
	pthread_cond_init(&p->pool.tick, &cattr);
	pthread_condattr_destroy(&cattr);
	p->buses = calloc(cfg->device_count ? cfg->device_count : 1, sizeof(struct bus));
	if (!p->buses)
		goto nomem;

	int64_t now = time_now_ms();
	for (size_t i = 0; cfg->modbus_enabled && i < cfg->device_count; i++) {
		const struct device_config *dev = &cfg->devices[i];
		if (!dev->logger)
			continue;
		struct bus *bus = bus_for(p, cfg, dev);
		if (!bus)
			goto nomem;
		struct scheduled_device *sd = &bus->devices[bus->device_count++];
		sd->dev = dev;
		if (dev->period_ms > bus->longest_period_ms)
			bus->longest_period_ms = dev->period_ms;
		set_next(sd, time_next_aligned_ms(now, dev->period_ms), now, time_mono_ms());
		if (plan_device(sd) != 0)
			goto nomem;
		bus->due_ms = bus_next_due_ms(bus);
	}

	/* Serial buses: a thread each. See pool_spawn for the stack size. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, BUS_STACK_BYTES);
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		if (!bus->pool) {
			if (pthread_create(&bus->thread, &attr, bus_main, bus) != 0) {
				pthread_attr_destroy(&attr);
				log_error("cannot start the worker for %s", mbio_name(bus->io));
				poller_stop(p);
				return MB_ERR_NOMEM;
			}
			bus->started = true;
		}
		log_info("bus %s: %zu device(s)", mbio_name(bus->io), bus->device_count);
	}
	pthread_attr_destroy(&attr);
	/* TCP endpoints: the pool. */
	if (pool_start(p) != 0) {
		log_error("cannot start the Modbus TCP workers");
		poller_stop(p);
		return MB_ERR_NOMEM;
	}
	*out = p;
	return 0;
nomem:
	poller_stop(p);
	return MB_ERR_NOMEM;
}

void poller_stop(struct poller *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->users_lock);
	p->stopping = true;
	pthread_mutex_unlock(&p->users_lock);
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		pthread_mutex_lock(&bus->lock);
		bus->stop = true;
		pthread_cond_signal(&bus->wake);
		pthread_mutex_unlock(&bus->lock);
	}
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		if (bus->started)
			pthread_join(bus->thread, NULL);
	}
	pool_stop(&p->pool);
	/* Every request is done now; let its caller leave before the bus goes away. */
	pthread_mutex_lock(&p->users_lock);
	while (p->users > 0)
		pthread_cond_wait(&p->users_gone, &p->users_lock);
	pthread_mutex_unlock(&p->users_lock);
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		mbio_free(bus->io);
		for (size_t i = 0; i < bus->device_count; i++)
			unplan_device(&bus->devices[i]);
		free(bus->devices);
		pthread_mutex_destroy(&bus->lock);
		pthread_cond_destroy(&bus->wake);
		pthread_cond_destroy(&bus->done);
	}
	free(p->buses);
	pthread_mutex_destroy(&p->users_lock);
	pthread_cond_destroy(&p->users_gone);
	free(p);
}

int poll_device_now(const struct device_config *dev, struct reading *out)
{
	struct mbio *io = NULL;
	int rc = dev->transport == TRANSPORT_RTU ? mbio_new_rtu(dev->serial, &io)
						 : mbio_new_tcp(dev->host, dev->port, &io);
	if (rc)
		return rc;
	struct scheduled_device sd = {.dev = dev};
	rc = plan_device(&sd);
	if (rc == 0)
		rc = read_device(io, &sd, out);
	unplan_device(&sd);
	mbio_free(io);
	return rc;
}

static struct bus *find_bus(struct poller *p, const struct serial_port_config *port,
			    const char *host, int tcp_port)
{
	for (size_t b = 0; b < p->bus_count; b++) {
		const struct device_config *d = p->buses[b].devices[0].dev;
		if (port && d->transport == TRANSPORT_RTU && d->serial == port)
			return &p->buses[b];
		if (!port && host && d->transport == TRANSPORT_TCP && d->port == tcp_port &&
		    strcmp(d->host, host) == 0)
			return &p->buses[b];
	}
	return NULL;
}

int poller_execute(struct poller *p, const struct serial_port_config *port, const char *host,
		   int tcp_port, struct poll_request *req, int wait_ms)
{
	struct bus *bus = p ? find_bus(p, port, host, tcp_port) : NULL;
	int rc = 0;

	if (!bus)
		return MB_ERR_NOTFOUND;
	pthread_mutex_lock(&p->users_lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->users_lock);
		return MB_ERR_BUSY;
	}
	p->users++;
	pthread_mutex_unlock(&p->users_lock);

	pthread_mutex_lock(&bus->lock);
	if (bus->stop) {
		rc = MB_ERR_BUSY;
	} else {
		req->state = REQ_QUEUED;
		req->next = NULL;
		if (bus->queue_tail)
			bus->queue_tail->next = req;
		else
			bus->queue = req;
		bus->queue_tail = req;
		if (bus->pool) {
			/* Lock order: a bus, then the pool (pool workers never hold both). */
			pthread_mutex_lock(&bus->pool->lock);
			bus->kick = true;
			/* Served next: ahead of the buses already waiting for a worker (a busy
			 * bus is put there when its worker gives it back). */
			if (!bus->busy && !bus->queued)
				ready_push_front(bus->pool, bus);
			pthread_cond_signal(&bus->pool->wake);
			pthread_mutex_unlock(&bus->pool->lock);
		} else {
			pthread_cond_signal(&bus->wake);
		}
		int64_t deadline = time_mono_ms() + wait_ms;
		while (req->state != REQ_DONE) {
			int64_t left = deadline - time_mono_ms();
			if (req->state == REQ_QUEUED && left <= 0) {
				/* Withdraw it: a command answered "busy" must not run later. */
				struct poll_request **pp = &bus->queue;
				bus->queue_tail = NULL;
				while (*pp) {
					if (*pp == req) {
						*pp = req->next;
						continue;
					}
					bus->queue_tail = *pp;
					pp = &(*pp)->next;
				}
				rc = MB_ERR_BUSY;
				break;
			}
			/* While it runs, wait for the worker: its own time-out bounds the wait. */
			int64_t step = req->state == REQ_QUEUED && left < 1000 ? left : 1000;
			struct timespec ts;
			time_mono_deadline(step, &ts);
			pthread_cond_timedwait(&bus->done, &bus->lock, &ts);
		}
	}
	pthread_mutex_unlock(&bus->lock);

	pthread_mutex_lock(&p->users_lock);
	if (--p->users == 0)
		pthread_cond_broadcast(&p->users_gone);
	pthread_mutex_unlock(&p->users_lock);
	return rc;
}

int poller_device_status(struct poller *p, const struct device_config *dev,
			 struct poll_device_status *out)
{
	for (size_t b = 0; p && b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		for (size_t i = 0; i < bus->device_count; i++) {
			if (bus->devices[i].dev != dev)
				continue;
			pthread_mutex_lock(&bus->lock);
			*out = bus->devices[i].status;
			pthread_mutex_unlock(&bus->lock);
			return 0;
		}
	}
	return MB_ERR_NOTFOUND;
}
