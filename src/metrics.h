/*
 * metrics.h - Prometheus metrics: GET /metrics in the text exposition format (0.0.4).
 *
 * Off unless metrics.listen is set (config_metrics.h). Every name starts with modbridge_:
 * per device the polls, the failures by reason, the instants without a poll, a histogram
 * of read durations and the last success; per bus the busy time (and its ratio over the
 * last minute) and the planner's scan time; the store's backlog, bytes, oldest reading
 * and drops; the uplink's (whichever logger.mode chose: MQTT, HTTP or FTP, as a label)
 * messages published, confirmed, failed and in flight, its reconnections, last success and
 * last error; the remote commands received and refused; the process's CPU and RSS.
 * docs/operations.md lists them; examples/grafana-dashboard.json shows them.
 *
 * The figures are read when a scrape comes, from the parts the daemon runs (nothing is
 * counted here): the counters of the poller, the forwarder and the remote commands start
 * again from 0 after a restart in place (SIGHUP, SETPARAM, REBOOT), which Prometheus'
 * rate() takes as a counter reset; the store's sent and dropped counts live in the store
 * file and never go back.
 *
 * Threading: metrics_start and metrics_stop from the daemon's main thread; scrapes run on
 * the HTTP server's threads (httpd.h), several at once, and only read. Ownership: the
 * sources are borrowed from metrics_start until metrics_stop, which waits for the scrapes
 * in progress. Errors: metrics_start returns 0 or an mb_error (the address cannot be
 * listened on: logged).
 */
#ifndef MODBRIDGE_METRICS_H
#define MODBRIDGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct forwarder;
struct ingest;
struct metrics;
struct mqtt_link;
struct poller;
struct remote;
struct store;
struct uplink_stats;

/* What the daemon runs now; any part but cfg may be NULL (not running, no uplink). */
struct metrics_sources {
	const struct config *cfg;
	struct poller *poller;
	struct store *store;
	struct ingest *ingest;
	struct forwarder *fw;       /* sends the readings on the uplink of logger.mode */
	const char *mode;           /* that uplink: "mqtt", "http", "ftp"; NULL: none */
	struct uplink_stats *stats; /* its outcomes (uplink_stats.h) */
	struct mqtt_link *link;     /* the MQTT link when it is that uplink, else NULL */
	struct remote *remote;
	int64_t started_ms; /* wall clock when the process started its work */
};

/* Listens on cfg->metrics (which must be set) and serves src. */
int metrics_start(const struct metrics_sources *src, struct metrics **out);

/* Stops listening, waits for scrapes in progress. Accepts NULL. */
void metrics_stop(struct metrics *m);

/* One scrape's text (malloc'd; *len its length), or NULL when out of memory. Any thread. */
char *metrics_render(const struct metrics_sources *src, size_t *len);

/* Appends s to out as a label value: \, " and newline escaped (the exposition format's
 * rule). out has room for len bytes; the result is cut, never unterminated. */
void metrics_escape_label(const char *s, char *out, size_t len);

#endif
