/*
 * command_status.c - AT+MBSTATUS: the logger's own status in a few lines.
 *
 * Version and identity, the MQTT link, the store's backlog, and what the poller knows of
 * each device. Without a daemon in this process (`modbridge at`) it only looks at the
 * store (store_inspect never creates or repairs it) and says so for the devices. Runs on
 * the thread executing the command; the poller and the store are read under their locks.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "command.h"
#include "command_internal.h"
#include "mqtt.h"
#include "poller.h"
#include "store.h"
#include "timeutil.h"
#include "uplink_stats.h"

static void add_time(struct command_reply *r, const char *label, int64_t ms)
{
	char text[40] = "-";

	if (ms)
		time_format_iso8601(ms, text, sizeof(text));
	command_reply_line(r, "%s: %s", label, text);
}

static void status_line(void *ctx, const char *text)
{
	command_reply_line(ctx, "%s", text);
}

void command_do_status(const struct command_env *env, struct command_reply *r)
{
	const struct config *cfg = env->cfg;
	struct store *s = env->store;
	struct store_stats st;

	command_reply_line(r, "version: modbridge %s", MODBRIDGE_VERSION);
	command_reply_line(r, "identity: %s", cfg->imei);
	if (!cfg->mqtt.enabled)
		command_reply_line(r, "mqtt: disabled");
	else if (!env->link)
		command_reply_line(r, "mqtt: no link in this process");
	else
		command_reply_line(r, "mqtt: %s",
				   mqtt_link_connected(env->link) ? "connected" : "not connected");

	/* The send mode's figures, as the daemon last wrote them (as `modbridge queue`). */
	struct uplink_status us;
	char *path = uplink_status_path(cfg->logger.store_path);
	if (path && uplink_status_read(path, &us) == 0)
		uplink_status_lines(&us, status_line, r);
	else
		command_reply_line(r, "mode: %s (no figures yet)",
				   cfg->logger.mode == LOGGER_HTTP  ? "http"
				   : cfg->logger.mode == LOGGER_FTP ? "ftp"
								    : "mqtt");
	free(path);

	char why[256] = "";
	/* Without the daemon's store (`modbridge at`): only look, never create or repair it. */
	int rc = s ? store_stats(s, &st)
		   : store_inspect(cfg->logger.store_path, &st, why, sizeof(why));
	if (rc == 0) {
		command_reply_line(r, "backlog: %" PRId64, st.count);
		add_time(r, "oldest", st.oldest_ts_ms);
		add_time(r, "newest", st.newest_ts_ms);
		command_reply_line(r, "sent: %" PRId64, st.sent);
		command_reply_line(r, "dropped: %" PRId64, st.dropped);
	} else {
		command_reply_line(r, "store: %s", why[0] ? why : "cannot be read");
	}

	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *d = &cfg->devices[i];
		struct poll_device_status ds;
		char last[40] = "-";

		if (!env->poller) {
			command_reply_line(r, "device %s: no daemon in this process", d->id);
			continue;
		}
		if (poller_device_status(env->poller, d, &ds) != 0) {
			command_reply_line(r, "device %s: not polled", d->id);
			continue;
		}
		if (ds.last_ok_ms)
			time_format_iso8601(ds.last_ok_ms, last, sizeof(last));
		if (ds.reads == 0)
			command_reply_line(r, "device %s: waiting for its first poll", d->id);
		else if (ds.last_error[0])
			command_reply_line(r,
					   "device %s: failing: %s (last good read %s; %" PRIu64
					   " of %" PRIu64 " polls failed)",
					   d->id, ds.last_error, last, ds.failures, ds.reads);
		else
			command_reply_line(r,
					   "device %s: ok (last read %s; %" PRIu64 " of %" PRIu64
					   " polls failed)",
					   d->id, last, ds.failures, ds.reads);
	}
	r->ok = true;
}
