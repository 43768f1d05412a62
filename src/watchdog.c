/*
 * watchdog.c - feeding systemd's watchdog only while the work goes on; see watchdog.h.
 */
#include "watchdog.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "forward.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "poller.h"
#include "store.h"
#include "timeutil.h"

/* The status line is refreshed this often without a watchdog. */
#define STATUS_TICK_MS 5000
/* Added to twice the longest Modbus time-out for the stall limit: one request can wait for
 * its time-out and then for the late-reply window (modbus_io.c), and the threads beat once
 * a second when idle. */
#define STALL_MARGIN_MS 4000

void watchdog_init(struct watchdog *w, const struct config *cfg)
{
	int64_t longest = 0;

	memset(w, 0, sizeof(*w));
	w->period_ms = notify_watchdog_ms();
	for (size_t i = 0; i < cfg->device_count; i++)
		if (cfg->devices[i].timeout_ms > longest)
			longest = cfg->devices[i].timeout_ms;
	w->stall_ms = 2 * longest + STALL_MARGIN_MS;
	if (w->period_ms / 2 > w->stall_ms)
		w->stall_ms = w->period_ms / 2;
	if (w->period_ms)
		log_debug("systemd watchdog: pinged every %lld ms while no thread has been silent "
			  "for %lld ms",
			  (long long)watchdog_tick_ms(w), (long long)w->stall_ms);
}

int64_t watchdog_tick_ms(const struct watchdog *w)
{
	if (w->period_ms)
		return w->period_ms / 2 < STATUS_TICK_MS
			       ? (w->period_ms / 2 > 0 ? w->period_ms / 2 : 1)
			       : STATUS_TICK_MS;
	return notify_active() ? STATUS_TICK_MS : 0;
}

void watchdog_status(const struct watchdog_parts *parts, char *buf, size_t len)
{
	int64_t count = 0, bytes = 0;
	const char *uplink = !parts->fw || !parts->mode ? "off (readings are stored, not sent)"
			     : forwarder_connected(parts->fw) ? "connected"
							      : "not connected";

	if (parts->store)
		store_backlog(parts->store, &count, &bytes);
	snprintf(buf, len, "%zu device(s); backlog %" PRId64 " reading(s); uplink %s%s%s%s",
		 parts->devices, count, parts->fw && parts->mode ? parts->mode : "",
		 parts->fw && parts->mode ? " " : "", uplink,
		 parts->ingest && ingest_store_failing(parts->ingest)
			 ? "; the store cannot be written (see the log)"
			 : "");
}

/* The part silent for longest beyond the stall limit (*silent_ms: how long), or NULL. */
static const char *stalled_part(const struct watchdog *w, const struct watchdog_parts *parts,
				int64_t now, int64_t *silent_ms)
{
	struct {
		const char *name;
		int64_t at;
	} beats[] = {
		{"a Modbus worker", poller_last_beat_ms(parts->poller)},
		{"the store writer",
		 parts->ingest ? ingest_last_beat_ms(parts->ingest) : INT64_MAX},
		{"the forwarder", parts->fw ? forwarder_last_beat_ms(parts->fw) : INT64_MAX},
	};

	/* The longest silent: a thread stuck with a lock held can silence the others after it. */
	const char *name = NULL;
	for (size_t i = 0; i < sizeof(beats) / sizeof(beats[0]); i++) {
		if (beats[i].at != INT64_MAX && now - beats[i].at > w->stall_ms &&
		    now - beats[i].at > *silent_ms) {
			*silent_ms = now - beats[i].at;
			name = beats[i].name;
		}
	}
	return name;
}

void watchdog_tick(struct watchdog *w, const struct watchdog_parts *parts)
{
	char status[sizeof(w->last_status)];

	if (w->period_ms) {
		int64_t silent_ms = 0;
		const char *stalled = stalled_part(w, parts, time_mono_ms(), &silent_ms);
		if (!stalled) {
			notify_watchdog();
			if (w->stalled[0])
				log_info("watchdog: %s shows signs of life again; telling systemd we "
					 "are alive",
					 w->stalled);
			w->stalled[0] = '\0';
		} else if (strcmp(stalled, w->stalled) != 0) {
			log_error("watchdog: %s has shown no sign of life for %lld ms; no longer "
				  "telling systemd we are alive (it restarts the service after "
				  "WatchdogSec=)",
				  stalled, (long long)silent_ms);
			snprintf(w->stalled, sizeof(w->stalled), "%s", stalled);
		}
	}
	watchdog_status(parts, status, sizeof(status));
	if (strcmp(status, w->last_status) != 0) {
		notify_status(status);
		snprintf(w->last_status, sizeof(w->last_status), "%s", status);
	}
}
