/*
 * busplan.c - the bus-time report of `modbridge check`; see busplan.h.
 *
 * Two things decide whether a serial bus keeps its schedule, and both are checked:
 *   - the share of the line's time that all polls need on average, the sum over devices
 *     of (line time of one poll) / (period): above 100 % nothing can keep up;
 *   - the burst when every device is due at once (aligned periods all meet at the top of
 *     the hour): if that scan takes longer than the shortest period, the devices with that
 *     period skip an instant there (the poller skips missed instants rather than drift).
 * Every device, on a serial line or Modbus TCP, is also checked against the time-outs: when
 * its worst read (time-out x attempts x requests per poll) is not shorter than its
 * period, the instants such a read overruns are skipped (published as ERR).
 */
#include "busplan.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "planner.h"

static void fmt_period(int64_t ms, char *buf, size_t len)
{
	if (ms % 3600000 == 0)
		snprintf(buf, len, "%" PRId64 " h", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%" PRId64 " min", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%" PRId64 " s", ms / 1000);
	else
		snprintf(buf, len, "%" PRId64 " ms", ms);
}

/* Plans a device as the poller does; fills cost (line may be NULL) and the unmerged count. */
static int plan_cost(const struct device_config *dev, const struct line_timing *line,
		     struct plan_cost *cost, size_t *unmerged)
{
	struct plan plan;
	int rc = planner_plan(dev->blocks, dev->block_count, dev->function,
			      (unsigned)dev->max_per_read, false, line, &plan);
	if (rc)
		return rc;
	*unmerged = plan.count;
	planner_plan_free(&plan);
	rc = planner_plan(dev->blocks, dev->block_count, dev->function, (unsigned)dev->max_per_read,
			  dev->optimize, line, &plan);
	if (rc)
		return rc;
	planner_estimate(&plan, dev->function, line, cost);
	planner_plan_free(&plan);
	return 0;
}

static void print_device(FILE *out, const struct device_config *dev, const struct plan_cost *c,
			 size_t unmerged, bool rtu)
{
	char period[32];
	fmt_period(dev->period_ms, period, sizeof(period));
	fprintf(out, "    device %s: every %s: %zu block%s -> %zu request%s per poll", dev->id,
		period, dev->block_count, dev->block_count == 1 ? "" : "s", c->transactions,
		c->transactions == 1 ? "" : "s");
	if (c->transactions != unmerged)
		fprintf(out, " (%zu without merging)", unmerged);
	else if (!dev->optimize)
		fprintf(out, " (optimize off)");
	if (rtu)
		fprintf(out, ", %zu bytes, %.1f ms", c->request_bytes + c->response_bytes,
			(double)c->time_ns / 1e6);
	fprintf(out, "\n");
}

/*
 * Warns when one read of dev can take as long as its period: each request may wait its
 * time-out on every attempt (an answer just in time, or a retry that succeeds), and the
 * poller then skips the instants the read overran. Returns the number of warnings (0, 1).
 */
static int warn_slow_read(const struct config *cfg, const struct device_config *dev,
			  const char *bus, int timeout_ms, size_t requests, FILE *warn)
{
	int attempts = 1 + dev->retries;
	int64_t worst_ms = (int64_t)timeout_ms * attempts * (int64_t)requests;
	if (worst_ms < dev->period_ms)
		return 0;
	char period[32];
	fmt_period(dev->period_ms, period, sizeof(period));
	fprintf(warn,
		"%s:%d: bus %s: device %s: a read can take up to %" PRId64
		" ms (time-out %d ms x %d attempt%s x %zu request%s), not shorter than its period (%s): instants will be skipped (warning)\n",
		cfg->path, dev->line, bus, dev->id, worst_ms, timeout_ms, attempts,
		attempts == 1 ? "" : "s", requests, requests == 1 ? "" : "s", period);
	return 1;
}

static int report_serial(const struct config *cfg, const struct serial_port_config *port, FILE *out,
			 FILE *warn)
{
	struct line_timing line;
	int64_t periods[64];
	size_t nperiods = 0, devices = 0;
	int64_t burst_ns = 0, shortest_ms = INT64_MAX, worst_dead_ms = 0;
	double share = 0;
	int warnings = 0;

	planner_line_timing(port, &line);
	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *dev = &cfg->devices[i];
		if (dev->transport != TRANSPORT_RTU || dev->serial != port || !dev->logger)
			continue;
		if (devices++ == 0)
			fprintf(out,
				"  bus %s (%s): %d baud, %d%c%d (%d bits per character), time-out %d ms\n",
				port->name, port->device, port->baudrate, port->data_bits,
				port->parity, port->stop_bits, planner_char_bits(port),
				port->timeout_ms);
		struct plan_cost c;
		size_t unmerged;
		int rc = plan_cost(dev, &line, &c, &unmerged);
		if (rc)
			return rc;
		print_device(out, dev, &c, unmerged, true);
		warnings += warn_slow_read(cfg, dev, port->name, port->timeout_ms, c.transactions,
					   warn);
		burst_ns += c.time_ns;
		share += (double)c.time_ns / 1e6 / (double)dev->period_ms;
		if (dev->period_ms < shortest_ms)
			shortest_ms = dev->period_ms;
		int64_t dead_ms = (int64_t)port->timeout_ms * (1 + dev->retries);
		if (dead_ms > worst_dead_ms)
			worst_dead_ms = dead_ms;
		bool known = false;
		for (size_t k = 0; k < nperiods; k++)
			known |= periods[k] == dev->period_ms;
		if (!known && nperiods < sizeof(periods) / sizeof(periods[0]))
			periods[nperiods++] = dev->period_ms;
	}
	if (devices == 0)
		return 0;

	/* One line per distinct period: what is due at its instants, and its share. */
	for (size_t k = 0; k < nperiods; k++) {
		size_t requests = 0;
		int64_t ns = 0;
		for (size_t i = 0; i < cfg->device_count; i++) {
			const struct device_config *dev = &cfg->devices[i];
			if (dev->transport != TRANSPORT_RTU || dev->serial != port ||
			    !dev->logger || dev->period_ms != periods[k])
				continue;
			struct plan_cost c;
			size_t unmerged;
			int rc = plan_cost(dev, &line, &c, &unmerged);
			if (rc)
				return rc;
			requests += c.transactions;
			ns += c.time_ns;
		}
		char period[32];
		fmt_period(periods[k], period, sizeof(period));
		fprintf(out,
			"    every %s: %zu request%s, %.1f ms of line time (%.2f %% of the period)\n",
			period, requests, requests == 1 ? "" : "s", (double)ns / 1e6,
			100.0 * (double)ns / 1e6 / (double)periods[k]);
	}
	if (nperiods > 1)
		fprintf(out,
			"    in all: %.2f %% of the line's time; %.1f ms when all devices are due at once\n",
			100.0 * share, (double)burst_ns / 1e6);
	fprintf(out,
		"    a device that does not answer costs up to %" PRId64
		" ms per poll (time-out x attempts)\n",
		worst_dead_ms);

	char shortest[32];
	fmt_period(shortest_ms, shortest, sizeof(shortest));
	if (share > 1.0) {
		fprintf(warn,
			"%s:%d: bus %s: the schedule cannot fit: its polls need %.0f %% of the line's time (fewer blocks, longer periods or a faster baud rate would help) (warning)\n",
			cfg->path, port->line, port->name, 100.0 * share);
		warnings++;
	} else if (burst_ns / 1000000 > shortest_ms) {
		fprintf(warn,
			"%s:%d: bus %s: when all devices are due at once a scan takes %.1f ms, longer than the shortest period (%s): instants will be skipped then (warning)\n",
			cfg->path, port->line, port->name, (double)burst_ns / 1e6, shortest);
		warnings++;
	}
	return warnings;
}

static bool same_endpoint(const struct device_config *a, const struct device_config *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int busplan_scan_ns(const struct config *cfg, const struct serial_port_config *port, int64_t *ns)
{
	struct line_timing line;

	*ns = 0;
	planner_line_timing(port, &line);
	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *dev = &cfg->devices[i];
		struct plan_cost c;
		size_t unmerged;
		if (dev->transport != TRANSPORT_RTU || dev->serial != port || !dev->logger)
			continue;
		int rc = plan_cost(dev, &line, &c, &unmerged);
		if (rc)
			return rc;
		*ns += c.time_ns;
	}
	return 0;
}

int busplan_report(const struct config *cfg, FILE *out, FILE *warn)
{
	int warnings = 0;

	if (!cfg->modbus_enabled)
		return 0;
	for (size_t p = 0; p < cfg->serial_port_count; p++) {
		int rc = report_serial(cfg, &cfg->serial_ports[p], out, warn);
		if (rc < 0)
			return rc;
		warnings += rc;
	}
	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *dev = &cfg->devices[i];
		if (dev->transport != TRANSPORT_TCP || !dev->logger)
			continue;
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			if (cfg->devices[j].transport == TRANSPORT_TCP && cfg->devices[j].logger &&
			    same_endpoint(&cfg->devices[j], dev))
				first = false;
		if (!first)
			continue;
		char bus[300];
		snprintf(bus, sizeof(bus), "%s%s%s:%d", strchr(dev->host, ':') ? "[" : "",
			 dev->host, strchr(dev->host, ':') ? "]" : "", dev->port);
		fprintf(out, "  bus %s (Modbus TCP)\n", bus);
		int64_t worst_dead_ms = 0;
		for (size_t j = i; j < cfg->device_count; j++) {
			const struct device_config *d = &cfg->devices[j];
			if (d->transport != TRANSPORT_TCP || !d->logger || !same_endpoint(d, dev))
				continue;
			struct plan_cost c;
			size_t unmerged;
			int rc = plan_cost(d, NULL, &c, &unmerged);
			if (rc)
				return rc;
			print_device(out, d, &c, unmerged, false);
			warnings +=
				warn_slow_read(cfg, d, bus, d->timeout_ms, c.transactions, warn);
			int64_t dead_ms = (int64_t)d->timeout_ms * (1 + d->retries);
			if (dead_ms > worst_dead_ms)
				worst_dead_ms = dead_ms;
		}
		fprintf(out,
			"    a device that does not answer costs up to %" PRId64
			" ms per poll (time-out x attempts)\n",
			worst_dead_ms);
	}
	return warnings;
}
