/*
 * poller.c - the poller's API: start and stop, the buses, the remote request queue; see
 * poller.h.
 *
 * Threading. Each serial bus has its own thread (bus_main), which owns the line: its
 * requests are strictly serialized. Modbus TCP endpoints (one bus per host:port, each with
 * its own connection) are all served by one event loop on one thread (tcpbus.c,
 * tcploop.h). Whichever thread serves a bus runs its due devices (schedule.c), each read
 * with its plan (devread.c) and its health kept by a pure state machine (devhealth.c).
 * poller_internal.h has the shared structures and the lock order.
 *
 * Remote requests (poller_execute) are queued on the bus under its lock; the thread
 * serving it runs them before the next device read, and signals `done`. A bus without a
 * polled device has no thread of its own: its requests run one at a time per bus (struct
 * direct_bus), a serial one on the caller's thread on a link opened for it, a Modbus TCP
 * one on the event loop (started for it if no TCP device is polled), so the commands never
 * open a bus themselves.
 * The per-device status is written by the worker and read by poller_device_status(), both
 * under the bus lock. poller_stop() fails the requests still queued and waits until no
 * caller is inside poller_execute() before it frees the buses.
 */
#include "poller.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "modbus_io.h"
#include "poller_internal.h"
#include "timeutil.h"

/*
 * A bus without a polled device, which remote requests use: no worker owns it, so each
 * request opens it on a link of its own, and requests take turns (busy) so that two never
 * share the line. Listed in the poller; guarded by its users_lock.
 */
struct direct_bus {
	char *device; /* RTU: the serial device's path, or NULL */
	char *host;   /* TCP */
	int tcp_port;
	bool busy;           /* a request is on the bus */
	pthread_cond_t free; /* busy went false, or the poller stops */
	struct direct_bus *next;
};

const char *bus_name(const struct bus *bus)
{
	return bus->io ? mbio_name(bus->io) : tcploop_ep_name(bus->ep);
}

/* Executes one request on a serial link io and records its outcome in req. */
static void run_request(struct mbio *io, struct poll_request *req)
{
	req->reason[0] = '\0';
	if (req->device) {
		struct devread rd;
		req->rc = devread_plan(&rd, req->device);
		if (req->rc == 0)
			req->rc = devread_read(&rd, io, false, req->reading);
		devread_free(&rd);
	} else if (req->write)
		req->rc = mbio_write(io, req->slave, req->function, req->address, req->values[0],
				     req->timeout_ms, req->reason, sizeof(req->reason));
	else
		req->rc = mbio_read(io, req->slave, req->function, req->address, req->count,
				    req->timeout_ms, req->values, req->reason, sizeof(req->reason));
}

/* The busy ratio is the share of this window, the last one completed. */
#define BUSY_WINDOW_MS 60000

void poller_add_busy(struct bus *bus, int64_t us)
{
	int64_t now = time_mono_ms();
	int64_t total = atomic_fetch_add(&bus->busy_us, us) + us;

	if (now - bus->window_start_ms >= BUSY_WINDOW_MS) {
		atomic_store(&bus->busy_ratio_ppm, (total - bus->window_start_busy_us) * 1000 /
							   (now - bus->window_start_ms));
		bus->window_start_ms = now;
		bus->window_start_busy_us = total;
	}
}

/* With the bus lock held (released around each request): see poller_internal.h. */
void poller_serve_requests(struct bus *bus)
{
	while (bus->queue && !bus->stop) {
		struct poll_request *req = bus->queue;
		bus->queue = req->next;
		if (!bus->queue)
			bus->queue_tail = NULL;
		req->state = REQ_RUNNING;
		pthread_mutex_unlock(&bus->lock);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		run_request(bus->io, req);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		poller_add_busy(bus, (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
					     (t1.tv_nsec - t0.tv_nsec) / 1000);
		pthread_mutex_lock(&bus->lock);
		req->state = REQ_DONE;
		pthread_cond_broadcast(&bus->done);
	}
}

/* Fails the requests still queued on a bus that stops: they will never run. */
void poller_fail_queued(struct bus *bus)
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

	thread_set_name("mb-rtu");
	liveness_attach(&bus->beat); /* Modbus requests beat it too (modbus_io.c) */
	pthread_mutex_lock(&bus->lock);
	while (!bus->stop) {
		liveness_beat(&bus->beat);
		poller_serve_requests(bus);
		if (bus->stop)
			break;
		int64_t now = time_now_ms();
		schedule_resync(bus, now);
		int64_t due = schedule_next_due_ms(bus);
		if (due > now) {
			/* Sleep at most a slice at a time so a wall-clock step is noticed soon. */
			struct timespec ts;
			time_mono_deadline(poller_wait_slice_ms(due - now), &ts);
			pthread_cond_timedwait(&bus->wake, &bus->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&bus->lock);
		schedule_run_due(bus, now);
		pthread_mutex_lock(&bus->lock);
	}
	pthread_mutex_unlock(&bus->lock);
	poller_fail_queued(bus);
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
	/* A Modbus TCP bus gets its endpoint on the event loop (tcpside_start). */
	if (first->transport == TRANSPORT_RTU) {
		int rc = mbio_new_rtu(first->serial, &bus->io);
		if (rc)
			return rc;
	}
	bus->owner = p;
	bus->window_start_ms = time_mono_ms();
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
		if (dev->period_ms > bus->longest_period_ms)
			bus->longest_period_ms = dev->period_ms;
		devhealth_init(&sd->health, dev->period_ms, dev->backoff_max_ms);
		schedule_set_next(sd, time_next_aligned_ms(now, dev->period_ms), now,
				  time_mono_ms());
		if (devread_plan(&sd->rd, dev) != 0)
			goto nomem;
	}

	/* Serial buses: a thread each. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POLLER_STACK_BYTES);
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		if (bus->io) {
			liveness_beat(&bus->beat);
			if (pthread_create(&bus->thread, &attr, bus_main, bus) != 0) {
				pthread_attr_destroy(&attr);
				log_error("cannot start the worker for %s", mbio_name(bus->io));
				poller_stop(p);
				return MB_ERR_NOMEM;
			}
			bus->started = true;
			log_info("bus %s: %zu device(s)", mbio_name(bus->io), bus->device_count);
		}
	}
	pthread_attr_destroy(&attr);
	/* TCP endpoints: the event loop, when there are any (else started for the first
	 * remote request to an endpoint, see execute_direct). */
	bool tcp = false;
	for (size_t b = 0; b < p->bus_count; b++)
		tcp = tcp || !p->buses[b].io;
	if (tcp && tcpside_start(p) != 0) {
		log_error("cannot start the Modbus TCP event loop");
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
	for (struct direct_bus *d = p->direct; d; d = d->next)
		pthread_cond_broadcast(&d->free); /* requests waiting for their turn give up */
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
	tcpside_halt(p->tcp);
	/* Every request is done now; let its caller leave before the bus goes away (and the
	 * TCP side: a caller of execute_direct may hold it and not have entered it yet). */
	pthread_mutex_lock(&p->users_lock);
	while (p->users > 0)
		pthread_cond_wait(&p->users_gone, &p->users_lock);
	pthread_mutex_unlock(&p->users_lock);
	tcpside_stop(p->tcp);
	for (size_t b = 0; b < p->bus_count; b++) {
		struct bus *bus = &p->buses[b];
		mbio_free(bus->io);
		for (size_t i = 0; i < bus->device_count; i++)
			devread_free(&bus->devices[i].rd);
		free(bus->devices);
		pthread_mutex_destroy(&bus->lock);
		pthread_cond_destroy(&bus->wake);
		pthread_cond_destroy(&bus->done);
	}
	free(p->buses);
	while (p->direct) {
		struct direct_bus *d = p->direct;
		p->direct = d->next;
		free(d->host);
		free(d->device);
		pthread_cond_destroy(&d->free);
		free(d);
	}
	pthread_mutex_destroy(&p->users_lock);
	pthread_cond_destroy(&p->users_gone);
	free(p);
}

size_t poller_bus_count(struct poller *p)
{
	return p ? p->bus_count : 0;
}

int poller_bus_status(struct poller *p, size_t i, struct poll_bus_status *out)
{
	if (!p || i >= p->bus_count)
		return MB_ERR_NOTFOUND;
	const struct bus *bus = &p->buses[i];
	const struct device_config *first = bus->devices[0].dev;
	*out = (struct poll_bus_status){
		.name = bus_name(bus),
		.port = first->transport == TRANSPORT_RTU ? first->serial : NULL,
		.devices = bus->device_count,
		.busy_s = (double)atomic_load(&bus->busy_us) / 1e6,
		.busy_ratio = (double)atomic_load(&bus->busy_ratio_ppm) / 1e6,
	};
	return 0;
}

int64_t poller_last_beat_ms(struct poller *p)
{
	int64_t oldest = p ? tcpside_last_beat_ms(p->tcp) : INT64_MAX;

	for (size_t b = 0; p && b < p->bus_count; b++) {
		int64_t at = liveness_last(&p->buses[b].beat);
		if (p->buses[b].started && at < oldest)
			oldest = at;
	}
	return oldest;
}

int poll_device_now(const struct device_config *dev, struct reading *out)
{
	struct mbio *io = NULL;
	if (dev->transport == TRANSPORT_TCP) {
		struct poll_request req = {.device = dev, .reading = out};
		memset(out, 0, sizeof(*out));
		int rc = tcp_execute_alone(dev->host, dev->port, &req);
		return rc ? rc : req.rc;
	}
	int rc = mbio_new_rtu(dev->serial, &io);
	if (rc)
		return rc;
	struct devread rd;
	rc = devread_plan(&rd, dev);
	if (rc == 0)
		rc = devread_read(&rd, io, false, out);
	devread_free(&rd);
	mbio_free(io);
	return rc;
}

static struct bus *find_bus(struct poller *p, const struct serial_port_config *port,
			    const char *host, int tcp_port)
{
	for (size_t b = 0; b < p->bus_count; b++) {
		const struct device_config *d = p->buses[b].devices[0].dev;
		/* By path too: a port of another configuration (a Test) is the same line. */
		if (port && d->transport == TRANSPORT_RTU &&
		    (d->serial == port || !strcmp(d->serial->device, port->device)))
			return &p->buses[b];
		if (!port && host && d->transport == TRANSPORT_TCP && d->port == tcp_port &&
		    strcmp(d->host, host) == 0)
			return &p->buses[b];
	}
	return NULL;
}

/*
 * Queues req on a bus that a worker serves and waits until the worker has executed it, or
 * withdraws it after wait_ms in the queue. Returns 0 or MB_ERR_BUSY.
 */
static int queue_and_wait(struct bus *bus, struct poll_request *req, int wait_ms)
{
	int rc = 0;

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
		if (bus->ep)
			tcpside_kick(bus);
		else
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
				rc = MB_ERR_BUSY;
				break;
			}
			/* While it runs, wait for the worker: its own time-out bounds the wait. */
			int64_t step = req->state == REQ_QUEUED ? poller_wait_slice_ms(left)
								: POLLER_WAIT_SLICE_MS;
			struct timespec ts;
			time_mono_deadline(step, &ts);
			pthread_cond_timedwait(&bus->done, &bus->lock, &ts);
		}
	}
	pthread_mutex_unlock(&bus->lock);
	return rc;
}

/* A request on a link of its own, opened for it and closed after (Modbus TCP: on an event
 * loop of its own, on this thread). Returns 0 or MB_ERR_NOMEM. */
static int execute_on_fresh_link(const struct serial_port_config *port, const char *host,
				 int tcp_port, struct poll_request *req)
{
	struct mbio *io = NULL;
	if (!port)
		return tcp_execute_alone(host, tcp_port, req);
	int rc = mbio_new_rtu(port, &io);
	if (rc)
		return rc;
	run_request(io, req);
	mbio_free(io);
	return 0;
}

/* With users_lock held: the direct bus for port or host:tcp_port, made on first use (NULL
 * when out of memory). */
static struct direct_bus *direct_bus_for(struct poller *p, const struct serial_port_config *port,
					 const char *host, int tcp_port)
{
	struct direct_bus *d;

	for (d = p->direct; d; d = d->next)
		if (port ? d->device && !strcmp(d->device, port->device)
			 : !d->device && d->tcp_port == tcp_port && strcmp(d->host, host) == 0)
			return d;
	d = calloc(1, sizeof(*d));
	if (!d || (!port && !(d->host = strdup(host))) ||
	    (port && !(d->device = strdup(port->device)))) {
		if (d)
			free(d->host);
		free(d);
		return NULL;
	}
	d->tcp_port = tcp_port;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->free, &attr);
	pthread_condattr_destroy(&attr);
	d->next = p->direct;
	p->direct = d;
	return d;
}

/*
 * A request for a bus that no worker serves (no polled device on it): it waits, at most
 * wait_ms, until no other request is on that bus, then runs on a fresh link. Returns 0,
 * MB_ERR_BUSY (its turn did not come, or the poller stops: nothing was sent) or
 * MB_ERR_NOMEM.
 */
static int execute_direct(struct poller *p, const struct serial_port_config *port, const char *host,
			  int tcp_port, struct poll_request *req, int wait_ms)
{
	int rc = 0;
	int64_t deadline = time_mono_ms() + wait_ms;

	pthread_mutex_lock(&p->users_lock);
	struct direct_bus *d = direct_bus_for(p, port, host, tcp_port);
	if (!d)
		rc = MB_ERR_NOMEM;
	while (rc == 0 && (d->busy || p->stopping)) {
		int64_t left = deadline - time_mono_ms();
		if (p->stopping || left <= 0) {
			rc = MB_ERR_BUSY;
			break;
		}
		struct timespec ts;
		time_mono_deadline(poller_wait_slice_ms(left), &ts);
		pthread_cond_timedwait(&d->free, &p->users_lock, &ts);
	}
	if (rc == 0)
		d->busy = true;
	/* Modbus TCP goes through the event loop, started for it if need be. */
	if (rc == 0 && !port && !p->tcp && tcpside_start(p) != 0)
		rc = MB_ERR_NOMEM;
	struct tcpside *tcp = p->tcp;
	if (rc == MB_ERR_NOMEM && d)
		d->busy = false;
	pthread_mutex_unlock(&p->users_lock);
	if (rc)
		return rc;

	rc = port ? execute_on_fresh_link(port, NULL, 0, req)
		  : tcpside_execute(tcp, host, tcp_port, req);

	pthread_mutex_lock(&p->users_lock);
	d->busy = false;
	pthread_cond_signal(&d->free);
	pthread_mutex_unlock(&p->users_lock);
	return rc;
}

int poller_execute(struct poller *p, const struct serial_port_config *port, const char *host,
		   int tcp_port, struct poll_request *req, int wait_ms)
{
	/* No poller, no daemon in this process (`modbridge at`): nobody else uses the bus. */
	if (!p)
		return execute_on_fresh_link(port, host, tcp_port, req);

	struct bus *bus = find_bus(p, port, host, tcp_port);
	pthread_mutex_lock(&p->users_lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->users_lock);
		return MB_ERR_BUSY;
	}
	p->users++;
	pthread_mutex_unlock(&p->users_lock);

	int rc = bus ? queue_and_wait(bus, req, wait_ms)
		     : execute_direct(p, port, host, tcp_port, req, wait_ms);

	pthread_mutex_lock(&p->users_lock);
	if (--p->users == 0)
		pthread_cond_broadcast(&p->users_gone);
	pthread_mutex_unlock(&p->users_lock);
	return rc;
}

int poller_read_device(struct poller *p, const struct device_config *dev, struct reading *out,
		       int wait_ms)
{
	struct poll_request req = {.device = dev, .reading = out};

	memset(out, 0, sizeof(*out));
	int rc = poller_execute(p, dev->transport == TRANSPORT_RTU ? dev->serial : NULL, dev->host,
				dev->port, &req, wait_ms);
	if (rc == 0 && req.rc == MB_ERR_BUSY)
		rc = MB_ERR_BUSY; /* queued when the poller stopped: never read */
	else if (rc == 0)
		rc = req.rc;
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
