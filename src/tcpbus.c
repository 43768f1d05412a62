/*
 * tcpbus.c - the poller's Modbus TCP buses, all served by one event loop (tcploop.h); see
 * poller_internal.h.
 *
 * One thread runs the loop for every TCP endpoint of the configuration, whatever their
 * number (the elastic pool of workers it replaces grew a thread per slow endpoint, and
 * libmodbus's select() aborted the process past 1024 descriptors). Each bus has a timer
 * at its earliest idle device's next instant; when it fires, every device due is queued
 * for a turn on its endpoint (devices in good standing first, then those that failed
 * last time, as on a serial line), and each poll then runs in steps: schedule_claim when
 * it has its turn, the plan's requests one after the other (devread's steps), and
 * schedule_complete with the reading. All endpoints' requests are in flight at once, and
 * a device that times out holds only its own endpoint's turn: dead endpoints never delay
 * healthy ones.
 *
 * Remote requests (poller_execute) are queued on the bus under its lock as for a serial
 * bus; the kick puts the bus in the loop's inbox, and the bus's remote job then asks for a
 * turn ahead of the devices waiting, so a request waits for at most the reads holding the
 * endpoint's turns. Requests for endpoints nobody polls come through the same inbox and
 * run on an endpoint the loop makes for them (its connection closed after each), and
 * without a poller (`modbridge at`, `read`) on a loop of their own, driven by the caller.
 *
 * A wall-clock step is noticed by a tick every POLLER_WAIT_SLICE_MS, which sets every bus
 * due at once (schedule_resync and schedule_claim then deal with it as on a serial line).
 *
 * Stopping: polls waiting for their turn are dropped, queued remote requests fail with
 * MB_ERR_BUSY, and the loop runs until the polls and requests on the wire have ended.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "poller_internal.h"
#include "timeutil.h"

struct direct_req;

/* Serves remote requests on a bus (its queue) or one direct request, a turn at a time. */
struct remote_job {
	struct tcp_client client;
	struct tcpside *side;      /* NULL: on a loop of the caller's own */
	struct bus *bus;           /* NULL: a direct request */
	struct direct_req *direct; /* bus NULL: the request */
	bool direct_taken;         /* its request was started */
	struct poll_request *req;  /* being executed */
	struct devread rd;         /* req->device: its plans */
	bool rd_made;
	bool active; /* waiting for a turn, or holding one */
};

/* A request for an endpoint nobody polls, handed to the loop by another thread (which
 * owns it, on its stack, and waits until done: after that the loop never touches it). */
struct direct_req {
	struct direct_req *next;
	const char *host;
	int port;
	struct poll_request *req;
	struct remote_job job;
	bool done; /* the side's lock (or the caller's own loop) */
	int rc;
};

struct tcpside {
	struct poller *p;
	struct tcploop *loop;
	pthread_t thread;
	bool started;
	/* The inbox: guarded by lock. */
	pthread_mutex_t lock;
	pthread_cond_t direct_done;
	bool stop;
	struct bus *kicked;
	struct direct_req *inbox;
	/* The loop's own. */
	bool stopping;
	size_t active; /* polls and remote jobs in progress */
	struct tcploop_timer tick;
	int64_t clock_offset_ms;    /* wall - monotonic at the last tick */
	struct remote_job *remotes; /* one per bus */
	struct liveness beat;       /* the loop's thread: every step (at most a slice apart) */
};

static struct devjob *job_of(struct tcp_client *c)
{
	return (struct devjob *)((char *)c - offsetof(struct devjob, client));
}

static struct scheduled_device *device_of(struct devjob *job)
{
	return (struct scheduled_device *)((char *)job - offsetof(struct scheduled_device, job));
}

static struct remote_job *remote_of(struct tcp_client *c)
{
	return (struct remote_job *)((char *)c - offsetof(struct remote_job, client));
}

/* ---------------------------------------------------------------------------------- */
/* Device polls. */

/* Arms the bus's timer at its earliest idle device's next instant. */
static void arm_bus(struct bus *bus)
{
	struct tcpside *t = bus->owner->tcp;
	int64_t due = INT64_MAX;

	if (t->stopping)
		return;
	for (size_t i = 0; i < bus->device_count; i++)
		if (!bus->devices[i].job.active && bus->devices[i].next_ms < due)
			due = bus->devices[i].next_ms;
	if (due == INT64_MAX) {
		tcploop_timer_cancel(t->loop, &bus->due_timer);
		return;
	}
	int64_t wait = due - time_now_ms();
	tcploop_timer_set(t->loop, &bus->due_timer, time_mono_ms() + (wait > 0 ? wait : 0));
}

/* Sends the read's next transaction; false when the read is complete. */
static bool send_next(struct tcp_client *c, struct devread *rd)
{
	struct devread_tx tx;
	if (!devread_next(rd, &tx))
		return false;
	struct mbtcp_request rq = {
		.unit = (uint8_t)tx.slave,
		.function = (uint8_t)tx.function,
		.address = tx.start,
		.count = tx.count,
	};
	tcploop_send(c, &rq, tx.timeout_ms);
	return true;
}

static void poll_ended(struct devjob *job)
{
	struct bus *bus = job->bus;
	job->active = false;
	bus->owner->tcp->active--;
	tcploop_end_turn(&job->client);
	arm_bus(bus);
}

static void poll_on_answer(struct tcp_client *c, const struct tcp_outcome *o)
{
	struct devjob *job = job_of(c);
	struct scheduled_device *sd = device_of(job);

	devread_result(&sd->rd, &job->r, o->rc, o->exception, o->values, o->reason);
	if (send_next(c, &sd->rd))
		return;
	bool ok = devread_finish(&sd->rd, &job->r) == 0;
	schedule_complete(job->bus, sd, &job->claim, ok ? &job->r : NULL);
	reading_clear(&job->r);
	poll_ended(job);
}

static void poll_on_turn(struct tcp_client *c)
{
	struct devjob *job = job_of(c);
	struct scheduled_device *sd = device_of(job);

	if (!schedule_claim(job->bus, sd, &job->claim)) {
		poll_ended(job); /* backing off: the instant was published without a read */
		return;
	}
	if (devread_start(&sd->rd, devhealth_single_attempt(&sd->health), &job->r) != 0) {
		schedule_complete(job->bus, sd, &job->claim, NULL);
		poll_ended(job);
		return;
	}
	send_next(c, &sd->rd);
}

/* The bus's timer: every device due asks for a turn, those in good standing first. */
static void bus_due(struct tcploop_timer *timer)
{
	struct bus *bus = (struct bus *)((char *)timer - offsetof(struct bus, due_timer));
	struct tcpside *t = bus->owner->tcp;
	int64_t now = time_now_ms();

	if (t->stopping)
		return;
	schedule_resync(bus, now);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < bus->device_count; i++) {
			struct scheduled_device *sd = &bus->devices[i];
			if (sd->job.active || sd->next_ms > now ||
			    devhealth_failed_last(&sd->health) != (pass == 1))
				continue;
			sd->job.active = true;
			t->active++;
			tcploop_wait_turn(bus->ep, &sd->job.client, false);
		}
	}
	arm_bus(bus);
}

/* Every POLLER_WAIT_SLICE_MS: a wall clock that moved against the monotonic one makes
 * every bus look at its schedule now. */
static void tick(struct tcploop_timer *timer)
{
	struct tcpside *t = (struct tcpside *)((char *)timer - offsetof(struct tcpside, tick));
	int64_t offset = time_now_ms() - time_mono_ms();
	int64_t moved = offset - t->clock_offset_ms;

	t->clock_offset_ms = offset;
	if (t->stopping)
		return;
	if (moved > POLLER_CLOCK_STEP_MS || moved < -POLLER_CLOCK_STEP_MS) {
		for (size_t b = 0; b < t->p->bus_count; b++) {
			struct bus *bus = &t->p->buses[b];
			if (bus->ep)
				tcploop_timer_set(t->loop, &bus->due_timer, time_mono_ms());
		}
	}
	tcploop_timer_set(t->loop, &t->tick, time_mono_ms() + POLLER_WAIT_SLICE_MS);
}

/* ---------------------------------------------------------------------------------- */
/* Remote requests. */

/* Sends the remote request's (next) transaction, or ends it at once when it cannot be
 * sent. Returns true when a request went out. */
static bool remote_send(struct remote_job *rj)
{
	struct poll_request *req = rj->req;

	if (req->device)
		return send_next(&rj->client, &rj->rd);
	struct mbtcp_request rq = {
		.unit = (uint8_t)req->slave,
		.function = (uint8_t)req->function,
		.address = req->address,
		.count = req->write ? 1 : req->count,
		.value = req->write ? req->values[0] : 0,
	};
	bool write_fn = req->function == 5 || req->function == 6 || req->function == 15 ||
			req->function == 16;
	if (req->write ? !write_fn : req->function < 1 || req->function > 4) {
		snprintf(req->reason, sizeof(req->reason), "unsupported %sfunction 0x%02x",
			 req->write ? "write " : "", (unsigned)req->function);
		req->rc = MB_ERR_INVAL;
		return false;
	}
	if (req->write && (req->function == 5 || req->function == 15) && req->values[0] > 1) {
		snprintf(req->reason, sizeof(req->reason), "a coil is 0 or 1, not %u",
			 (unsigned)req->values[0]);
		req->rc = MB_ERR_INVAL;
		return false;
	}
	if (!mbtcp_request_valid(&rq) || req->slave < 0 || req->slave > 255) {
		snprintf(req->reason, sizeof(req->reason), "invalid request");
		req->rc = MB_ERR_INVAL;
		return false;
	}
	tcploop_send(&rj->client, &rq, req->timeout_ms);
	return true;
}

/* The request being executed is done (its outcome in rj->req): tell its caller (for a
 * direct request, once the job let go of everything: see remote_next). */
static void remote_done(struct remote_job *rj)
{
	struct poll_request *req = rj->req;
	rj->req = NULL;
	if (rj->rd_made) {
		devread_free(&rj->rd);
		rj->rd_made = false;
	}
	if (rj->bus) {
		pthread_mutex_lock(&rj->bus->lock);
		req->state = REQ_DONE;
		pthread_cond_broadcast(&rj->bus->done);
		pthread_mutex_unlock(&rj->bus->lock);
	}
}

/* A direct request's job let go of its turn: its caller may go on (and free it). */
static void direct_done(struct direct_req *d, struct tcpside *t)
{
	if (!t) {
		d->done = true; /* a loop of the caller's own, on this thread */
		return;
	}
	pthread_mutex_lock(&t->lock);
	d->done = true;
	pthread_cond_broadcast(&t->direct_done);
	pthread_mutex_unlock(&t->lock);
}

/* Starts req; false when it ended at once (its outcome set). */
static bool remote_start(struct remote_job *rj, struct poll_request *req)
{
	rj->req = req;
	req->reason[0] = '\0';
	req->rc = 0;
	if (req->device) {
		req->rc = devread_plan(&rj->rd, req->device);
		rj->rd_made = true;
		if (req->rc == 0)
			req->rc = devread_start(&rj->rd, false, req->reading);
		if (req->rc != 0)
			return false;
	}
	return remote_send(rj);
}

/* With a turn: executes the bus's queued requests one after the other, then gives the
 * turn back. */
static void remote_next(struct remote_job *rj)
{
	for (;;) {
		struct poll_request *req = NULL;
		if (rj->bus) {
			struct bus *bus = rj->bus;
			pthread_mutex_lock(&bus->lock);
			if (bus->queue && !bus->stop) {
				req = bus->queue;
				bus->queue = req->next;
				if (!bus->queue)
					bus->queue_tail = NULL;
				req->state = REQ_RUNNING;
			}
			pthread_mutex_unlock(&bus->lock);
		} else if (!rj->direct_taken) {
			rj->direct_taken = true;
			req = rj->direct->req;
		}
		if (!req)
			break;
		if (remote_start(rj, req))
			return; /* its answer continues */
		remote_done(rj);
	}
	struct tcpside *t = rj->side;
	struct tcp_ep *ep = rj->client.ep;
	rj->active = false;
	if (t)
		t->active--;
	tcploop_end_turn(&rj->client);
	if (!rj->bus) {
		tcploop_close_idle(ep);     /* a link opened for the request */
		direct_done(rj->direct, t); /* the last touch of rj */
	}
}

static void remote_on_turn(struct tcp_client *c)
{
	remote_next(remote_of(c));
}

static void remote_on_answer(struct tcp_client *c, const struct tcp_outcome *o)
{
	struct remote_job *rj = remote_of(c);
	struct poll_request *req = rj->req;

	if (req->device) {
		devread_result(&rj->rd, req->reading, o->rc, o->exception, o->values, o->reason);
		if (remote_send(rj))
			return;
		req->rc = devread_finish(&rj->rd, req->reading);
	} else {
		req->rc = o->rc;
		if (o->rc == 0 && !req->write)
			memcpy(req->values, o->values, sizeof(uint16_t) * req->count);
		else if (o->rc != 0)
			snprintf(req->reason, sizeof(req->reason), "%s", o->reason);
	}
	remote_done(rj);
	remote_next(rj);
}

static void remote_init(struct remote_job *rj, struct tcpside *t, struct bus *bus)
{
	memset(rj, 0, sizeof(*rj));
	rj->side = t;
	rj->bus = bus;
	rj->client.on_turn = remote_on_turn;
	rj->client.on_answer = remote_on_answer;
}

/* ---------------------------------------------------------------------------------- */
/* The loop's thread. */

/* Stopping: no new polls or requests; the queued ones fail. */
static void begin_stop(struct tcpside *t)
{
	t->stopping = true;
	tcploop_timer_cancel(t->loop, &t->tick);
	for (size_t b = 0; b < t->p->bus_count; b++) {
		struct bus *bus = &t->p->buses[b];
		if (!bus->ep)
			continue;
		tcploop_timer_cancel(t->loop, &bus->due_timer);
		for (size_t i = 0; i < bus->device_count; i++) {
			struct devjob *job = &bus->devices[i].job;
			if (job->active && tcploop_cancel_wait(&job->client)) {
				job->active = false;
				t->active--;
			}
		}
		poller_fail_queued(bus);
	}
}

static void on_wake(void *ctx)
{
	struct tcpside *t = ctx;

	pthread_mutex_lock(&t->lock);
	bool stop = t->stop;
	struct bus *kicked = t->kicked;
	struct direct_req *inbox = t->inbox;
	t->kicked = NULL;
	t->inbox = NULL;
	for (struct bus *b = kicked; b; b = b->kicked_next)
		b->kicked = false;
	if (stop) {
		/* Direct requests that came too late never run. */
		for (struct direct_req *d = inbox; d; d = d->next) {
			d->rc = MB_ERR_BUSY;
			d->done = true;
		}
		if (inbox)
			pthread_cond_broadcast(&t->direct_done);
		inbox = NULL;
	}
	pthread_mutex_unlock(&t->lock);

	if (stop && !t->stopping)
		begin_stop(t);
	for (struct bus *bus = kicked; bus; bus = bus->kicked_next) {
		if (!bus->remote->active && !t->stopping) {
			bus->remote->active = true;
			t->active++;
			tcploop_wait_turn(bus->ep, &bus->remote->client, true);
		}
	}
	while (inbox) {
		struct direct_req *d = inbox;
		inbox = d->next;
		struct tcp_ep *ep = NULL;
		if (tcploop_endpoint(t->loop, d->host, d->port, 1, &ep) != 0) {
			d->rc = MB_ERR_NOMEM;
			direct_done(d, t);
			continue;
		}
		remote_init(&d->job, t, NULL);
		d->job.direct = d;
		d->job.active = true;
		t->active++;
		tcploop_wait_turn(ep, &d->job.client, true);
	}
}

static void *side_main(void *arg)
{
	struct tcpside *t = arg;

	thread_set_name("mb-tcp");
	while (!(t->stopping && t->active == 0)) {
		liveness_beat(&t->beat);
		tcploop_step(t->loop, POLLER_WAIT_SLICE_MS);
	}
	return NULL;
}

int64_t tcpside_last_beat_ms(const struct tcpside *t)
{
	return t && t->started ? liveness_last(&t->beat) : INT64_MAX;
}

int tcpside_start(struct poller *p)
{
	struct tcpside *t = calloc(1, sizeof(*t));
	size_t endpoints = 0, devices = 0;

	if (!t)
		return MB_ERR_NOMEM;
	t->p = p;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t cattr;
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->direct_done, &cattr);
	pthread_condattr_destroy(&cattr);
	for (size_t b = 0; b < p->bus_count; b++) {
		if (p->buses[b].devices[0].dev->transport == TRANSPORT_TCP) {
			endpoints++;
			devices += p->buses[b].device_count;
		}
	}
	t->remotes = calloc(endpoints ? endpoints : 1, sizeof(*t->remotes));
	/* Timers: each bus's and its remote job's, each device's, each endpoint's connect,
	 * the tick; and a few for endpoints that remote requests open. */
	if (!t->remotes || tcploop_new(on_wake, t, &t->loop) != 0 ||
	    tcploop_reserve_timers(t->loop, 3 * endpoints + devices + 64) != 0)
		goto nomem;
	tcploop_reserve_fds(endpoints);
	/* Set before the loop's thread starts, which reads it (bus->owner->tcp), and never
	 * written again while it runs. */
	p->tcp = t;
	size_t k = 0;
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		const struct device_config *first = bus->devices[0].dev;
		if (first->transport != TRANSPORT_TCP)
			continue;
		int window = 1;
		for (size_t i = 0; i < bus->device_count; i++)
			if (bus->devices[i].dev->max_outstanding > window)
				window = bus->devices[i].dev->max_outstanding;
		if (tcploop_endpoint(t->loop, first->host, first->port, window, &bus->ep) != 0)
			goto nomem;
		bus->remote = &t->remotes[k++];
		remote_init(bus->remote, t, bus);
		bus->due_timer.fire = bus_due;
		for (size_t i = 0; i < bus->device_count; i++) {
			struct devjob *job = &bus->devices[i].job;
			job->bus = bus;
			job->client.on_turn = poll_on_turn;
			job->client.on_answer = poll_on_answer;
		}
		arm_bus(bus);
	}
	t->tick.fire = tick;
	t->clock_offset_ms = time_now_ms() - time_mono_ms();
	tcploop_timer_set(t->loop, &t->tick, time_mono_ms() + POLLER_WAIT_SLICE_MS);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POLLER_STACK_BYTES);
	liveness_beat(&t->beat);
	t->started = pthread_create(&t->thread, &attr, side_main, t) == 0;
	pthread_attr_destroy(&attr);
	if (!t->started)
		goto nomem;
	if (endpoints)
		log_info("modbus tcp: %zu endpoint(s) with %zu device(s), served by one event loop",
			 endpoints, devices);
	return 0;
nomem:
	p->tcp = NULL;
	tcpside_stop(t);
	return MB_ERR_NOMEM;
}

void tcpside_halt(struct tcpside *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_mutex_unlock(&t->lock);
	if (t->started) {
		tcploop_wake(t->loop);
		pthread_join(t->thread, NULL);
		t->started = false;
	}
}

void tcpside_stop(struct tcpside *t)
{
	if (!t)
		return;
	tcpside_halt(t);
	tcploop_free(t->loop);
	free(t->remotes);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->direct_done);
	free(t);
}

void tcpside_kick(struct bus *bus)
{
	/* Lock order: a bus, then the side. */
	struct tcpside *t = bus->owner->tcp;
	pthread_mutex_lock(&t->lock);
	if (!bus->kicked) {
		bus->kicked = true;
		bus->kicked_next = t->kicked;
		t->kicked = bus;
	}
	pthread_mutex_unlock(&t->lock);
	tcploop_wake(t->loop);
}

int tcpside_execute(struct tcpside *t, const char *host, int port, struct poll_request *req)
{
	struct direct_req d = {.host = host, .port = port, .req = req};

	pthread_mutex_lock(&t->lock);
	if (t->stop) {
		pthread_mutex_unlock(&t->lock);
		return MB_ERR_BUSY;
	}
	d.next = t->inbox;
	/* d lives on this stack until the loop has answered it (d.done), below. */
	// cppcheck-suppress autoVariables
	t->inbox = &d;
	tcploop_wake(t->loop);
	/* Its own time-out bounds the wait once it runs; the loop answers when it stops. */
	while (!d.done)
		pthread_cond_wait(&t->direct_done, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return d.rc;
}

int tcp_execute_alone(const char *host, int port, struct poll_request *req)
{
	struct tcploop *loop = NULL;
	struct tcp_ep *ep = NULL;
	struct direct_req d = {.host = host, .port = port, .req = req};

	if (tcploop_new(NULL, NULL, &loop) != 0 ||
	    tcploop_endpoint(loop, host, port, 1, &ep) != 0) {
		tcploop_free(loop);
		return MB_ERR_NOMEM;
	}
	remote_init(&d.job, NULL, NULL);
	d.job.direct = &d;
	d.job.active = true;
	tcploop_wait_turn(ep, &d.job.client, true);
	while (!d.done)
		tcploop_step(loop, POLLER_WAIT_SLICE_MS);
	tcploop_free(loop);
	return 0;
}
