/*
 * notify.c - the sd_notify protocol over libsystemd; see notify.h.
 *
 * libsystemd's sd_notify() already does nothing without NOTIFY_SOCKET; the checks here only
 * spare the formatting. The environment is left as it is (unset_environment 0): the daemon
 * starts no children, and a restart in place is the same process, which must keep talking
 * to systemd.
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "timeutil.h"

static bool active;
static int64_t watchdog_ms;
static bool send_failed_logged;

void notify_init(void)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t usec = 0;

	active = sock && *sock;
	/* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is this process. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		watchdog_ms = (int64_t)(usec / 1000) > 0 ? (int64_t)(usec / 1000) : 1;
	else
		watchdog_ms = 0;
	if (active)
		log_debug("systemd: notifications to %s%s", sock,
			  watchdog_ms ? ", with a watchdog" : "");
	if (watchdog_ms)
		log_info("systemd watchdog: every %lld ms", (long long)watchdog_ms);
}

bool notify_active(void)
{
	return active;
}

int64_t notify_watchdog_ms(void)
{
	return watchdog_ms;
}

static void send_state(const char *state)
{
	if (!active)
		return;
	int rc = sd_notify(0, state);
	if (rc < 0 && !send_failed_logged) {
		log_debug("systemd: cannot notify: %s", strerror(-rc));
		send_failed_logged = true;
	}
}

/* "PREFIX\nSTATUS=status" (or PREFIX alone) into one datagram. */
static void send_with_status(const char *prefix, const char *status)
{
	char buf[512];

	if (!active)
		return;
	if (status)
		snprintf(buf, sizeof(buf), "%s%sSTATUS=%s", prefix, *prefix ? "\n" : "", status);
	else
		snprintf(buf, sizeof(buf), "%s", prefix);
	send_state(buf);
}

void notify_ready(const char *status)
{
	send_with_status("READY=1", status);
}

void notify_reloading(const char *status)
{
	char prefix[80];

	snprintf(prefix, sizeof(prefix), "RELOADING=1\nMONOTONIC_USEC=%lld",
		 (long long)time_mono_ms() * 1000);
	send_with_status(prefix, status);
}

void notify_stopping(const char *status)
{
	send_with_status("STOPPING=1", status);
}

void notify_status(const char *status)
{
	if (status)
		send_with_status("", status);
}

void notify_watchdog(void)
{
	send_state("WATCHDOG=1");
}
