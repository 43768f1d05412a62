/*
 * poller.c - bus workers and the aligned schedule; see poller.h.
 *
 * Threading: one pthread per bus. A worker touches only its own struct bus and the
 * read-only config; it sleeps on its own condition variable (monotonic clock) so that
 * poller_stop() can wake it at once.
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
 * Remote requests (poller_execute) are queued on the bus under its lock; the worker
 * serves them before each device read, and signals `done`.
 * The per-device status is written by the worker and read by poller_device_status(), both
 * under the bus lock. poller_stop() fails the requests still queued and waits until no
 * caller is inside poller_execute() before it frees the buses.
 */
#include "poller.h"

#include <pthread.h>
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

/* Failed polls in a row after which a device is polled less often. */
#define BACKOFF_AFTER_FAILURES 3

struct scheduled_device {
	const struct device_config *dev;
	int64_t next_ms;  /* wall-clock instant of the next read */
	bool failing;     /* last read failed: log only the change of state */
	bool overrunning; /* last schedule slipped: log only the change of state */
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

struct bus {
	struct poller *owner;
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

struct poller {
	struct bus *buses;
	size_t bus_count;
	poll_sink_fn sink;
	void *sink_ctx;
	pthread_mutex_t users_lock; /* callers inside poller_execute, so stop can wait for them */
	pthread_cond_t users_gone;
	int users;
	bool stopping;
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
		log_warn("device %s (address %s on %s): down: not answering: %s", dev->id,
			 dev->address_text, mbio_name(io), r->error);
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

/*
 * A due instant of a device that is backing off, before its next probe: no request goes
 * on the bus, but the instant still gets its message, so a server sees every period.
 */
static void skip_reading(struct scheduled_device *sd, struct reading *r)
{
	memset(r, 0, sizeof(*r));
	r->device = sd->dev;
	r->ts_ms = time_now_ms();
	snprintf(r->error, sizeof(r->error), "not polled: device down (last error: %.100s)",
		 sd->last_error);
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

static void schedule_next(struct scheduled_device *sd)
{
	int64_t now = time_now_ms();
	int64_t period = sd->dev->period_ms;
	int64_t next = time_next_aligned_ms(sd->next_ms, period);
	if (next <= now) {
		/* The read overran one or more instants: skip them instead of drifting. */
		if (!sd->overrunning)
			log_warn("device %s: read took longer than its period; skipping missed instants",
				 sd->dev->id);
		sd->overrunning = true;
		next = time_next_aligned_ms(now, period);
	} else {
		sd->overrunning = false;
	}
	sd->next_ms = next;
}

/* Polls one due device (or skips it while it backs off), hands over the reading, and
 * schedules its next instant. */
static void poll_due_device(struct bus *bus, struct scheduled_device *sd)
{
	struct poller *p = bus->owner;
	int64_t instant = sd->next_ms;
	struct reading r;

	if (sd->backing_off && instant < sd->probe_ms) {
		skip_reading(sd, &r);
		p->sink(p->sink_ctx, &r);
	} else {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (read_device(bus->io, sd, &r) != 0) {
			log_error("device %s: out of memory; reading lost", sd->dev->id);
		} else {
			/* bench/modbus_bus.py reads this line: keep its form. */
			clock_gettime(CLOCK_MONOTONIC, &t1);
			log_debug("device %s: read in %.1f ms with %zu request(s)", sd->dev->id,
				  (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
					  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
				  sd->requests);
			note_result(bus->io, sd, &r, instant);
			record_status(bus, sd, &r);
			p->sink(p->sink_ctx, &r);
		}
	}
	reading_clear(&r);
	schedule_next(sd);
}

static void *bus_main(void *arg)
{
	struct bus *bus = arg;

	pthread_mutex_lock(&bus->lock);
	while (!bus->stop) {
		serve_requests(bus);
		if (bus->stop)
			break;
		int64_t now = time_now_ms();
		int64_t due = INT64_MAX;
		for (size_t i = 0; i < bus->device_count; i++)
			if (bus->devices[i].next_ms < due)
				due = bus->devices[i].next_ms;
		if (due > now) {
			/* Sleep at most 1 s at a time so a wall-clock step is noticed soon. */
			int64_t wait_ms = due - now < 1000 ? due - now : 1000;
			struct timespec ts;
			time_mono_deadline(wait_ms, &ts);
			pthread_cond_timedwait(&bus->wake, &bus->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&bus->lock);

		/*
		 * Read every due device, one request at a time: first those in good standing,
		 * then those that failed last time, each pass in configuration order, so a
		 * device that times out never delays a healthy one due at the same instant.
		 * Queued remote requests are served before each device read, so one waits for
		 * at most one read and is never interleaved with a poll on the line.
		 */
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
		pthread_mutex_lock(&bus->lock);
	}
	/* Requests still queued will never run: tell their callers. */
	while (bus->queue) {
		struct poll_request *req = bus->queue;
		bus->queue = req->next;
		req->rc = MB_ERR_IO;
		snprintf(req->reason, sizeof(req->reason), "the gateway is stopping");
		req->state = REQ_DONE;
	}
	bus->queue_tail = NULL;
	pthread_cond_broadcast(&bus->done);
	pthread_mutex_unlock(&bus->lock);
	return NULL;
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
		sd->next_ms = time_next_aligned_ms(now, dev->period_ms);
		if (plan_device(sd) != 0)
			goto nomem;
	}

	/* A worker's deepest path (a read, its JSON, a log line) needs tens of KB; the 8 MB
	 * default would reserve 4 GB of address space for 500 TCP endpoints, more than a
	 * 32-bit gateway has. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, BUS_STACK_BYTES);
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		if (pthread_create(&bus->thread, &attr, bus_main, bus) != 0) {
			pthread_attr_destroy(&attr);
			log_error("cannot start the worker for %s", mbio_name(bus->io));
			poller_stop(p);
			return MB_ERR_NOMEM;
		}
		bus->started = true;
		log_info("bus %s: %zu device(s)", mbio_name(bus->io), bus->device_count);
	}
	pthread_attr_destroy(&attr);
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
		return MB_ERR_IO;
	}
	p->users++;
	pthread_mutex_unlock(&p->users_lock);

	pthread_mutex_lock(&bus->lock);
	if (bus->stop) {
		rc = MB_ERR_IO;
	} else {
		req->state = REQ_QUEUED;
		req->next = NULL;
		if (bus->queue_tail)
			bus->queue_tail->next = req;
		else
			bus->queue = req;
		bus->queue_tail = req;
		pthread_cond_signal(&bus->wake);
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
				rc = MB_ERR_IO;
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
