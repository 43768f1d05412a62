/*
 * poller.c - bus workers and the aligned schedule; see poller.h.
 *
 * Threading: one pthread per bus. A worker touches only its own struct bus and the
 * read-only config; it sleeps on its own condition variable (monotonic clock) so that
 * poller_stop() can wake it at once.
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
};

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
};

struct poller {
	struct bus *buses;
	size_t bus_count;
	poll_sink_fn sink;
	void *sink_ctx;
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
			struct reading r;
			if (read_device(bus->io, sd->dev, &r) != 0) {
				log_error("device %s: out of memory; reading lost", sd->dev->id);
			} else {
				note_result(bus->io, sd, &r);
				p->sink(p->sink_ctx, &r);
			}
			reading_clear(&r);
			schedule_next(sd);
		}
		pthread_mutex_lock(&bus->lock);
	}
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
		mbio_free(bus->io);
		free(bus->devices);
		pthread_mutex_destroy(&bus->lock);
		pthread_cond_destroy(&bus->wake);
	}
	free(p->buses);
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
