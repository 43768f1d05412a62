/*
 * uplink_http.h - the HTTP uplink (logger.mode: http, the router's WEB mode): each message
 * is one request to http.url.
 *
 * post/put send the message (a reading, or a JSON array in array mode) as the body with
 * Content-Type: application/json; get sends it URL-encoded in the query parameter
 * http.query_parameter (one reading per request: the daemon turns array mode off).
 * Requests go one at a time over one kept-alive connection (curlx.h), in the order sent,
 * so the server sees the readings in the forwarder's order; the next ones wait, queued.
 *
 * What becomes of a message (uplink_http_classify):
 *  - 2xx: delivered;
 *  - no answer (network, TLS, time-out), 408, 429, 5xx: failed, with the server's
 *    Retry-After when it gives one; the forwarder backs off and sends again;
 *  - any other status (4xx, 3xx): the server refuses what we send. Logged once with the
 *    status and the first bytes of the reply, counted as refused; failed with the slowest
 *    back-off (30 s), so the readings stay and flow once the server or the config is fixed.
 * A failure also fails every message queued behind it, so they are sent again in order.
 * Secrets (password, bearer_token) are never logged.
 *
 * Threading: created, started, stopped and freed by the daemon's main thread; send() from
 * the forwarder thread; requests and events on the curlx thread.
 */
#ifndef MODBRIDGE_UPLINK_HTTP_H
#define MODBRIDGE_UPLINK_HTTP_H

#include <stdint.h>

#include "uplink.h"

struct config;
struct uplink_stats;

enum http_verdict { HTTP_DELIVERED, HTTP_RETRY, HTTP_REJECTED };

/* The slowest back-off, asked for when the server refuses what we send. */
#define UPLINK_SLOWEST_RETRY_MS 30000
/* The longest Retry-After honoured. */
#define UPLINK_RETRY_AFTER_MAX_MS 3600000

/* What a finished request means: error is curlx's (0: an answer came), status the HTTP
 * status. Pure. */
enum http_verdict uplink_http_classify(int error, long status);

/* The pause to ask of the forwarder for a verdict and a Retry-After (ms, -1: none). Pure. */
int uplink_http_pause_ms(enum http_verdict v, int64_t retry_after_ms);

/*
 * Creates the uplink for cfg->http (cfg and stats must outlive it; stats may be NULL).
 * Returns 0 and *out, or a negative mb_error.
 */
int uplink_http_new(const struct config *cfg, struct uplink_stats *stats, struct uplink **out);

/* Stops (if still running) and frees. Accepts NULL. */
void uplink_http_free(struct uplink *up);

#endif
