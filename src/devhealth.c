/*
 * devhealth.c - the device health state machine; see devhealth.h.
 *
 * This is the state behind the poller's "down", "back", "polling it less often" and "read
 * took longer than its period" log lines, moved out of the worker so that it can be tested
 * with instants chosen by the test instead of a clock. The caller (schedule.c) passes the
 * aligned instant each poll was for and logs the changes returned here.
 */
#include "devhealth.h"

#include <string.h>

int64_t devhealth_backoff_cap_ms(int64_t period_ms, int64_t backoff_max_ms)
{
	/* A whole number of periods, so probes stay on the aligned instants. */
	int64_t periods = (backoff_max_ms + period_ms - 1) / period_ms;
	return (periods < 1 ? 1 : periods) * period_ms;
}

void devhealth_init(struct devhealth *h, int64_t period_ms, int64_t backoff_max_ms)
{
	memset(h, 0, sizeof(*h));
	h->period_ms = period_ms;
	h->backoff_cap_ms = devhealth_backoff_cap_ms(period_ms, backoff_max_ms);
}

struct devhealth_change devhealth_poll_ok(struct devhealth *h, int64_t instant_ms)
{
	struct devhealth_change c = {0};

	if (h->failing) {
		c.back = true;
		c.down_ms = instant_ms - h->down_since_ms;
		c.failed_polls = h->failed_polls;
	}
	h->failing = false;
	h->backing_off = false;
	h->fail_streak = 0;
	h->failed_polls = 0;
	return c;
}

struct devhealth_change devhealth_poll_failed(struct devhealth *h, int64_t instant_ms, bool refused)
{
	struct devhealth_change c = {0};

	h->fail_streak++;
	h->failed_polls++;
	if (!h->failing) {
		h->failing = true;
		h->down_since_ms = instant_ms;
		c.down = true;
	}
	int64_t cap = h->backoff_cap_ms;
	/* A device that answers with an exception is alive and says why: it costs one short
	 * transaction, and its reason is worth publishing every period. Back off only from
	 * devices that do not answer. */
	if (refused)
		h->fail_streak = 0;
	if (!h->backing_off && h->fail_streak >= DEVHEALTH_BACKOFF_AFTER && cap > h->period_ms) {
		h->backing_off = true;
		h->backoff_ms = h->period_ms;
		c.backoff_started = true;
	}
	if (h->backing_off) {
		h->backoff_ms = h->backoff_ms * 2 < cap ? h->backoff_ms * 2 : cap;
		h->probe_ms = instant_ms + h->backoff_ms;
	}
	return c;
}

bool devhealth_skips(const struct devhealth *h, int64_t instant_ms)
{
	return h->backing_off && instant_ms < h->probe_ms;
}

bool devhealth_single_attempt(const struct devhealth *h)
{
	return h->backing_off;
}

bool devhealth_failed_last(const struct devhealth *h)
{
	return h->fail_streak > 0;
}

void devhealth_reschedule(struct devhealth *h, int64_t next_ms)
{
	if (h->backing_off)
		h->probe_ms = next_ms; /* its probe was on the old time too */
}

bool devhealth_skipped(struct devhealth *h)
{
	bool starts = !h->late;

	h->on_time_reads = 0;
	h->late = true;
	return starts;
}

bool devhealth_on_time(struct devhealth *h, int64_t instant_ms)
{
	if (!h->late)
		return false;
	if (h->on_time_reads++ == 0)
		h->on_time_since_ms = instant_ms;
	if (h->on_time_reads < 2 || instant_ms - h->on_time_since_ms < DEVHEALTH_QUIET_MS)
		return false;
	h->late = false;
	h->on_time_reads = 0;
	return true;
}
