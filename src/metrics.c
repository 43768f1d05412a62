/*
 * metrics.c - the Prometheus exporter; see metrics.h.
 *
 * A scrape takes every device's status once (so that the families of one scrape agree),
 * renders the whole text into one buffer and answers it in one go: about 1.8 KB per device
 * (900 KB for 500 devices, most of it the histogram), which streaming would not make
 * cheaper, only more complex. Each
 * family has its HELP and TYPE lines even while it has no sample, so that a dashboard
 * finds every name from the first scrape on; counters of every reason are written even
 * when 0, so that rate() works from the first failure on.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "busplan.h"
#include "config.h"
#include "error.h"
#include "forward.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "mqtt.h"
#include "poller.h"
#include "remote.h"
#include "store.h"
#include "timeutil.h"
#include "uplink_stats.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics {
	struct metrics_sources src;
	struct httpd *httpd;
};

/* A growing text; nomem once an allocation failed (then everything else is ignored). */
struct text {
	char *buf;
	size_t len, cap;
	bool nomem;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	for (int round = 0; round < 2 && !t->nomem; round++) {
		va_start(ap, fmt);
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0,
				  fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->nomem = true;
			return;
		}
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap : 4096;
		while (cap <= t->len + (size_t)n)
			cap *= 2;
		char *grown = realloc(t->buf, cap);
		if (!grown) {
			t->nomem = true;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_escape_label(const char *s, char *out, size_t len)
{
	size_t o = 0;

	if (!len)
		return;
	for (; s && *s; s++) {
		const char *rep = *s == '\\'   ? "\\\\"
				  : *s == '"'  ? "\\\""
				  : *s == '\n' ? "\\n"
					       : NULL;
		size_t need = rep ? 2 : 1;
		if (o + need >= len)
			break;
		if (rep) {
			out[o++] = rep[0];
			out[o++] = rep[1];
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

/* One device's figures, taken once per scrape so that every family agrees. */
struct dev_snap {
	bool polled; /* false: not polled (logger off, Modbus disabled): no samples */
	char id[256];
	struct poll_device_status st;
};

/* The status of every device of cfg, or NULL when out of memory. */
static struct dev_snap *snapshot_devices(const struct metrics_sources *src)
{
	const struct config *cfg = src->cfg;
	struct dev_snap *snap = calloc(cfg->device_count ? cfg->device_count : 1, sizeof(*snap));

	for (size_t i = 0; snap && i < cfg->device_count; i++) {
		const struct device_config *dev = &cfg->devices[i];
		snap[i].polled =
			src->poller && poller_device_status(src->poller, dev, &snap[i].st) == 0;
		metrics_escape_label(dev->id, snap[i].id, sizeof(snap[i].id));
	}
	return snap;
}

static void render_devices(struct text *t, const struct metrics_sources *src)
{
	size_t n = src->cfg->device_count;
	struct dev_snap *snap = snapshot_devices(src);

	if (!snap) {
		t->nomem = true;
		return;
	}
	family(t, "modbridge_device_polls_total", "counter", "Polls of the device (reads tried).");
	for (size_t i = 0; i < n; i++)
		if (snap[i].polled)
			put(t, "modbridge_device_polls_total{device=\"%s\"} %" PRIu64 "\n",
			    snap[i].id, snap[i].st.reads);
	family(t, "modbridge_device_failures_total", "counter",
	       "Polls that failed, by reason: timeout, exception, connection, bad_answer, other.");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < POLL_FAIL_KINDS && snap[i].polled; k++)
			put(t,
			    "modbridge_device_failures_total{device=\"%s\",reason=\"%s\"} %" PRIu64
			    "\n",
			    snap[i].id, poll_failure_name((enum poll_failure)k),
			    snap[i].st.failures_by[k]);
	family(t, "modbridge_device_skipped_total", "counter",
	       "Instants that got an ERR message without a poll, by reason: not_polled (down, "
	       "backing off), bus_busy, overran.");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < POLL_SKIP_KINDS && snap[i].polled; k++)
			put(t,
			    "modbridge_device_skipped_total{device=\"%s\",reason=\"%s\"} %" PRIu64
			    "\n",
			    snap[i].id, poll_skip_name((enum poll_skip)k), snap[i].st.skipped[k]);
	family(t, "modbridge_device_read_duration_seconds", "histogram",
	       "How long a poll took, retries included.");
	for (size_t i = 0; i < n; i++) {
		if (!snap[i].polled)
			continue;
		const char *id = snap[i].id;
		uint64_t cumulative = 0;
		for (int b = 0; b < POLL_LATENCY_BUCKETS; b++) {
			cumulative += snap[i].st.latency_count[b];
			put(t,
			    "modbridge_device_read_duration_seconds_bucket{device=\"%s\",le=\"%g\"} "
			    "%" PRIu64 "\n",
			    id, poll_latency_bounds_s[b], cumulative);
		}
		cumulative += snap[i].st.latency_count[POLL_LATENCY_BUCKETS];
		put(t,
		    "modbridge_device_read_duration_seconds_bucket{device=\"%s\",le=\"+Inf\"} "
		    "%" PRIu64 "\n"
		    "modbridge_device_read_duration_seconds_sum{device=\"%s\"} %.6f\n"
		    "modbridge_device_read_duration_seconds_count{device=\"%s\"} %" PRIu64 "\n",
		    id, cumulative, id, snap[i].st.latency_sum_s, id, cumulative);
	}
	family(t, "modbridge_device_last_success_timestamp_seconds", "gauge",
	       "When the last successful poll was (its instant, Unix time); 0 before the first.");
	for (size_t i = 0; i < n; i++)
		if (snap[i].polled)
			put(t,
			    "modbridge_device_last_success_timestamp_seconds{device=\"%s\"} %.3f\n",
			    snap[i].id, (double)snap[i].st.last_ok_ms / 1e3);
	family(t, "modbridge_device_up", "gauge", "1 when the device's last poll succeeded.");
	for (size_t i = 0; i < n; i++)
		if (snap[i].polled)
			put(t, "modbridge_device_up{device=\"%s\"} %d\n", snap[i].id,
			    snap[i].st.reads > 0 && !snap[i].st.last_error[0]);
	free(snap);
}

static void render_buses(struct text *t, const struct metrics_sources *src)
{
	size_t n = poller_bus_count(src->poller);
	struct poll_bus_status st;
	char name[256];

	family(t, "modbridge_bus_busy_seconds_total", "counter",
	       "Time the bus spent in polls and remote requests.");
	for (size_t i = 0; i < n; i++)
		if (poller_bus_status(src->poller, i, &st) == 0) {
			metrics_escape_label(st.name, name, sizeof(name));
			put(t, "modbridge_bus_busy_seconds_total{bus=\"%s\"} %.6f\n", name,
			    st.busy_s);
		}
	family(t, "modbridge_bus_busy_ratio", "gauge",
	       "Share of the last minute the bus was busy (0..1; updated as polls end).");
	for (size_t i = 0; i < n; i++)
		if (poller_bus_status(src->poller, i, &st) == 0) {
			metrics_escape_label(st.name, name, sizeof(name));
			put(t, "modbridge_bus_busy_ratio{bus=\"%s\"} %.6f\n", name, st.busy_ratio);
		}
	family(t, "modbridge_bus_planned_scan_seconds", "gauge",
	       "The planner's estimate of the line time to read every device of a serial bus "
	       "once.");
	for (size_t i = 0; i < n; i++) {
		int64_t ns;
		if (poller_bus_status(src->poller, i, &st) != 0 || !st.port ||
		    busplan_scan_ns(src->cfg, st.port, &ns) != 0)
			continue;
		metrics_escape_label(st.name, name, sizeof(name));
		put(t, "modbridge_bus_planned_scan_seconds{bus=\"%s\"} %.6f\n", name,
		    (double)ns / 1e9);
	}
}

static void render_store(struct text *t, const struct metrics_sources *src)
{
	struct store_stats st = {0};
	int64_t now = time_now_ms();
	bool have = src->store && store_stats(src->store, &st) == 0;

	family(t, "modbridge_store_backlog_readings", "gauge", "Readings in the store, not sent.");
	family(t, "modbridge_store_backlog_bytes", "gauge", "Their JSON bytes.");
	family(t, "modbridge_store_file_bytes", "gauge",
	       "The store's size on disk (with its WAL).");
	family(t, "modbridge_store_oldest_age_seconds", "gauge",
	       "Age of the oldest reading waiting (0 when none).");
	family(t, "modbridge_store_sent_total", "counter",
	       "Readings delivered since the store file was made.");
	family(t, "modbridge_store_dropped_total", "counter",
	       "Readings dropped (store or memory full) since the store file was made.");
	family(t, "modbridge_store_writable", "gauge",
	       "0 while the store cannot be written (readings wait in memory).");
	if (!have)
		return;
	put(t,
	    "modbridge_store_backlog_readings %" PRId64 "\nmodbridge_store_backlog_bytes %" PRId64
	    "\nmodbridge_store_file_bytes %" PRId64 "\nmodbridge_store_oldest_age_seconds %.3f\n"
	    "modbridge_store_sent_total %" PRId64 "\nmodbridge_store_dropped_total %" PRId64
	    "\nmodbridge_store_writable %d\n",
	    st.count, st.payload_bytes, st.size_bytes,
	    st.oldest_ts_ms && now > st.oldest_ts_ms ? (double)(now - st.oldest_ts_ms) / 1e3 : 0.0,
	    st.sent, st.dropped, src->ingest ? !ingest_store_failing(src->ingest) : 1);
}

static void render_uplink(struct text *t, const struct metrics_sources *src)
{
	struct forward_stats fs = {0};
	struct uplink_status us = {0};
	char why[8];
	int64_t link_error = src->link ? mqtt_link_last_error(src->link, why, sizeof(why)) : 0;

	if (src->fw)
		forwarder_stats(src->fw, &fs);
	if (src->stats)
		uplink_stats_get(src->stats, &us);
	int64_t last = fs.last_failure_ms > link_error ? fs.last_failure_ms : link_error;
	if (us.last_error_ms > last)
		last = us.last_error_ms;
	family(t, "modbridge_uplink_connected", "gauge",
	       "1 while the uplink can send (MQTT: connected to the broker; HTTP, FTP: always).");
	family(t, "modbridge_uplink_published_total", "counter", "Messages handed to the uplink.");
	family(t, "modbridge_uplink_published_readings_total", "counter",
	       "Readings in those messages (several per message in array mode).");
	family(t, "modbridge_uplink_acknowledged_total", "counter",
	       "Messages the server confirmed (MQTT PUBACK/PUBCOMP or written at QoS 0; HTTP 2xx; "
	       "FTP a whole file).");
	family(t, "modbridge_uplink_failed_total", "counter",
	       "Messages the server refused or that were lost (their readings are sent again).");
	family(t, "modbridge_uplink_errors_total", "counter",
	       "Failed attempts, by kind: failure (network, 5xx, lost connection), rejected (the "
	       "server refused what was sent: 4xx).");
	family(t, "modbridge_uplink_in_flight", "gauge", "Messages sent and not confirmed yet.");
	family(t, "modbridge_uplink_reconnects_total", "counter",
	       "Connections after the first (MQTT sessions; 0 for HTTP and FTP).");
	family(t, "modbridge_uplink_last_success_timestamp_seconds", "gauge",
	       "When a message was last confirmed (Unix time), 0: never.");
	family(t, "modbridge_uplink_last_error_timestamp_seconds", "gauge",
	       "When the uplink last failed (cannot connect, lost, refused; Unix time), 0: never.");
	if (!src->fw || !src->mode)
		return;
	const char *m = src->mode;
	put(t,
	    "modbridge_uplink_connected{mode=\"%s\"} %d\n"
	    "modbridge_uplink_published_total{mode=\"%s\"} %" PRIu64 "\n"
	    "modbridge_uplink_published_readings_total{mode=\"%s\"} %" PRIu64 "\n"
	    "modbridge_uplink_acknowledged_total{mode=\"%s\"} %" PRIu64 "\n"
	    "modbridge_uplink_failed_total{mode=\"%s\"} %" PRIu64 "\n"
	    "modbridge_uplink_errors_total{mode=\"%s\",kind=\"failure\"} %" PRIu64 "\n"
	    "modbridge_uplink_errors_total{mode=\"%s\",kind=\"rejected\"} %" PRIu64 "\n"
	    "modbridge_uplink_in_flight{mode=\"%s\"} %zu\n"
	    "modbridge_uplink_reconnects_total{mode=\"%s\"} %" PRIu64 "\n"
	    "modbridge_uplink_last_success_timestamp_seconds{mode=\"%s\"} %.3f\n"
	    "modbridge_uplink_last_error_timestamp_seconds{mode=\"%s\"} %.3f\n",
	    m, fs.connected, m, fs.published, m, fs.published_readings, m, fs.acknowledged, m,
	    fs.failed, m, us.failures, m, us.rejected, m, fs.in_flight, m, fs.reconnects, m,
	    (double)us.last_ok_ms / 1e3, m, (double)last / 1e3);
}

static void render_process(struct text *t, const struct metrics_sources *src)
{
	struct rusage ru;
	uint64_t received, refused;
	long resident = 0;
	char line[128];
	FILE *f = fopen("/proc/self/statm", "r");

	/* statm: size resident shared ... in pages. */
	if (f) {
		if (fgets(line, sizeof(line), f)) {
			char *end;
			(void)strtol(line, &end, 10);
			resident = strtol(end, NULL, 10);
		}
		fclose(f);
	}
	remote_stats(src->remote, &received, &refused);
	family(t, "modbridge_remote_commands_total", "counter",
	       "Remote AT commands answered (MQTT).");
	family(t, "modbridge_remote_commands_refused_total", "counter",
	       "Of them, answered ERROR (not allowed, invalid, or failed).");
	put(t,
	    "modbridge_remote_commands_total %" PRIu64
	    "\nmodbridge_remote_commands_refused_total %" PRIu64 "\n",
	    received, refused);
	family(t, "modbridge_process_cpu_seconds_total", "counter",
	       "User and system CPU time of the process.");
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		put(t, "modbridge_process_cpu_seconds_total %.6f\n",
		    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	family(t, "modbridge_process_resident_memory_bytes", "gauge", "Resident set size.");
	if (resident > 0)
		put(t, "modbridge_process_resident_memory_bytes %lld\n",
		    (long long)resident * sysconf(_SC_PAGESIZE));
	family(t, "modbridge_process_start_time_seconds", "gauge",
	       "When the process started its work (Unix time).");
	put(t, "modbridge_process_start_time_seconds %.3f\n", (double)src->started_ms / 1e3);
	family(t, "modbridge_build_info", "gauge", "The running version (the value is 1).");
	put(t, "modbridge_build_info{version=\"%s\"} 1\n", MODBRIDGE_VERSION);
}

char *metrics_render(const struct metrics_sources *src, size_t *len)
{
	/* Room for the usual size at once: no doubling copies of a large text. */
	size_t guess = 16384 + src->cfg->device_count * 2048;
	struct text t = {.buf = malloc(guess), .cap = guess};

	if (!t.buf)
		return NULL;

	render_devices(&t, src);
	render_buses(&t, src);
	render_store(&t, src);
	render_uplink(&t, src);
	render_process(&t, src);
	if (t.nomem) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

static void handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct metrics *m = ctx;
	static const char not_found[] = "not found: the metrics are at /metrics\n";
	static const char bad_method[] = "only GET\n";

	if (strcmp(req->path, "/metrics") != 0) {
		httpd_respond_static(resp, 404, "text/plain; charset=utf-8", not_found,
				     sizeof(not_found) - 1);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		httpd_respond_static(resp, 405, "text/plain; charset=utf-8", bad_method,
				     sizeof(bad_method) - 1);
		httpd_add_header(resp, "Allow", "GET, HEAD");
		return;
	}
	size_t len = 0;
	char *text = metrics_render(&m->src, &len);
	httpd_respond_owned(resp, text ? 200 : 500, CONTENT_TYPE, text, len);
}

int metrics_start(const struct metrics_sources *src, struct metrics **out)
{
	const struct metrics_config *mc = &src->cfg->metrics;
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return MB_ERR_NOMEM;
	m->src = *src;
	struct httpd_options o = {
		.name = "metrics",
		.host = mc->host,
		.port = mc->port,
		.max_body = 0,
		.max_connections = 4,
		.idle_timeout_s = 30,
		.handler = handle,
		.ctx = m,
	};
	int rc = httpd_start(&o, &m->httpd);
	if (rc) {
		free(m);
		return rc;
	}
	log_info("metrics: Prometheus metrics on http://%s%s%s:%d/metrics",
		 strchr(mc->host, ':') ? "[" : "", mc->host, strchr(mc->host, ':') ? "]" : "",
		 httpd_port(m->httpd));
	*out = m;
	return 0;
}

void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	httpd_stop(m->httpd);
	free(m);
}
