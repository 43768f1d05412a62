/*
 * poller.c - bus workers and the aligned schedule; see poller.h.
 *
 * Threading: one pthread per bus. A worker touches only its own struct bus and the
 * read-only config; it sleeps on its own condition variable (monotonic clock) so that
 * poller_stop() can wake it at once. Remote requests (poller_execute) are queued on the
 * bus under its lock; the worker serves them before each device read, and signals `done`.
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

#include "error.h"
#include "log.h"
#include "modbus_io.h"
#include "timeutil.h"

struct scheduled_device {
	const struct device_config *dev;
	int64_t next_ms;   /* wall-clock instant of the next read */
	bool failing;      /* last read failed: log only the change of state */
	bool overrunning;  /* last schedule slipped: log only the change of state */
	struct poll_device_status status; /* guarded by the bus lock */
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
	pthread_cond_t done;               /* a remote request finished */
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

static int read_device(struct mbio *io, const struct device_config *dev, struct reading *r)
{
	size_t total = blocks_total(dev->blocks, dev->block_count);
	memset(r, 0, sizeof(*r));
	r->device = dev;
	r->ts_ms = time_now_ms();
	r->values = calloc(total ? total : 1, sizeof(uint16_t));
	if (!r->values)
		return MB_ERR_NOMEM;
	r->value_count = total;

	int timeout_ms = dev->transport == TRANSPORT_RTU ? dev->serial->timeout_ms : dev->timeout_ms;
	size_t position = 0;
	for (size_t i = 0; i < dev->block_count; i++) {
		const struct block *b = &dev->blocks[i];
		char reason[READING_ERROR_MAX - 32];
		int rc = mbio_read(io, dev->slave, dev->function, b->start, b->count, timeout_ms,
				   r->values + position, reason, sizeof(reason));
		if (rc != 0) {
			/* Name the block only when the block itself failed, not the link. */
			if (dev->block_count > 1 && rc == MB_ERR_MODBUS)
				snprintf(r->error, sizeof(r->error), "block %u+%u: %s", b->start,
					 b->count, reason);
			else
				snprintf(r->error, sizeof(r->error), "%s", reason);
			/* A failed reading carries no values: the JSON has ERR instead of V. */
			free(r->values);
			r->values = NULL;
			r->value_count = 0;
			return 0;
		}
		position += b->count;
	}
	return 0;
}

static void note_result(struct mbio *io, struct scheduled_device *sd, const struct reading *r)
{
	if (r->error[0] && !sd->failing) {
		sd->failing = true;
		log_warn("device %s (address %s on %s): not answering: %s", sd->dev->id,
			 sd->dev->address_text, mbio_name(io), r->error);
	} else if (!r->error[0] && sd->failing) {
		sd->failing = false;
		log_info("device %s (address %s on %s): back", sd->dev->id, sd->dev->address_text,
			 mbio_name(io));
	}
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

static void *bus_main(void *arg)
{
	struct bus *bus = arg;
	struct poller *p = bus->owner;

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
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(wait_ms / 1000);
			ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&bus->wake, &bus->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&bus->lock);

		/* Read every due device, in configuration order, one request at a time. */
		for (size_t i = 0; i < bus->device_count; i++) {
			struct scheduled_device *sd = &bus->devices[i];
			if (sd->next_ms > now)
				continue;
			pthread_mutex_lock(&bus->lock);
			serve_requests(bus); /* a remote request waits for one read at most */
			pthread_mutex_unlock(&bus->lock);
			struct reading r;
			if (read_device(bus->io, sd->dev, &r) != 0) {
				log_error("device %s: out of memory; reading lost", sd->dev->id);
			} else {
				note_result(bus->io, sd, &r);
				record_status(bus, sd, &r);
				p->sink(p->sink_ctx, &r);
			}
			reading_clear(&r);
			schedule_next(sd);
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
	int rc = first->transport == TRANSPORT_RTU ? mbio_new_rtu(first->serial, &bus->io)
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
		struct bus *bus = NULL;
		for (size_t b = 0; b < p->bus_count && !bus; b++)
			if (same_bus(p->buses[b].devices[0].dev, dev))
				bus = &p->buses[b];
		if (!bus) {
			bus = &p->buses[p->bus_count];
			if (bus_init(bus, p, dev) != 0)
				goto nomem;
			bus->devices = calloc(cfg->device_count, sizeof(struct scheduled_device));
			p->bus_count++;
			if (!bus->devices)
				goto nomem;
		}
		struct scheduled_device *sd = &bus->devices[bus->device_count++];
		sd->dev = dev;
		sd->next_ms = time_next_aligned_ms(now, dev->period_ms);
	}

	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		if (pthread_create(&bus->thread, NULL, bus_main, bus) != 0) {
			log_error("cannot start the worker for %s", mbio_name(bus->io));
			poller_stop(p);
			return MB_ERR_NOMEM;
		}
		bus->started = true;
		log_info("bus %s: %zu device(s)", mbio_name(bus->io), bus->device_count);
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
	/* Every request is done now; let its caller leave before the bus goes away. */
	pthread_mutex_lock(&p->users_lock);
	while (p->users > 0)
		pthread_cond_wait(&p->users_gone, &p->users_lock);
	pthread_mutex_unlock(&p->users_lock);
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		mbio_free(bus->io);
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
	rc = read_device(io, dev, out);
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
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(step / 1000);
			ts.tv_nsec += (long)(step % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
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
