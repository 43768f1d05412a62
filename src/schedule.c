/*
 * schedule.c - the instants of the poller: which device is due, and one message for each
 * of its instants; see poller_internal.h.
 *
 * Each device is read at the instants that are whole multiples of its period (wall clock,
 * UTC). One message per instant (poll_due_device): a device's next_ms is the next instant
 * that has no message yet, and only the worker serving its bus publishes its messages, in
 * instant order: a late reading for T comes before the ERR for T+1, and no instant gets
 * two. Instants skipped because the device's own read ran past them, or because the bus
 * was busy for their whole period, get ERR readings; both episodes are logged once. The
 * monotonic clock tells a clock step from a late bus, so setting the wall clock forward
 * does not flood the store with ERR readings for the instants in between, and setting it
 * back reschedules the devices at once (schedule_resync) instead of leaving them silent
 * until the clock is back where it was.
 *
 * Fault isolation (devhealth.h): a device that fails is logged once as down; after a few
 * failed polls in a row it is polled less often, with an ERR reading published for each
 * instant it is not polled, until it answers ("back" is logged once). Within one instant,
 * devices in good standing are read before failing ones, so a dead device never delays a
 * healthy device that is due at the same instant.
 *
 * Threading: everything here runs on the thread serving the bus (a serial bus's own, or
 * the Modbus TCP event loop's, tcpbus.c), which owns the bus's devices and link; the bus
 * lock is taken only for the remote requests and the status.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "poller_internal.h"
#include "timeutil.h"

/* The ERR reasons of instants that were not read (docs/json-format.md). */
#define SKIP_OVERRAN "skipped: previous read still running"
#define SKIP_BUSY "skipped: bus busy"

const double poll_latency_bounds_s[POLL_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

/* The words are modbus_io.c's (describe_error, link_open) and devread.c's. */
enum poll_failure poll_failure_of(const char *error)
{
	static const struct {
		const char *word;
		enum poll_failure kind;
	} words[] = {
		{"exception", POLL_FAIL_EXCEPTION},
		{"timeout", POLL_FAIL_TIMEOUT},
		{"connection", POLL_FAIL_CONNECTION}, /* refused, lost */
		{"connect:", POLL_FAIL_CONNECTION},
		{"cannot open", POLL_FAIL_CONNECTION},
		{"cannot lock", POLL_FAIL_CONNECTION},
		{"in use by another process", POLL_FAIL_CONNECTION},
		{"crc error", POLL_FAIL_BAD_ANSWER},
		{"invalid", POLL_FAIL_BAD_ANSWER}, /* data in response, exception code */
		{"too many data", POLL_FAIL_BAD_ANSWER},
		{"wrong slave", POLL_FAIL_BAD_ANSWER},
	};
	for (size_t i = 0; error && i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(error, words[i].word))
			return words[i].kind;
	return POLL_FAIL_OTHER;
}

const char *poll_failure_name(enum poll_failure f)
{
	static const char *const names[POLL_FAIL_KINDS] = {
		"timeout", "exception", "connection", "bad_answer", "other",
	};
	return f < POLL_FAIL_KINDS ? names[f] : "other";
}

const char *poll_skip_name(enum poll_skip s)
{
	static const char *const names[POLL_SKIP_KINDS] = {"not_polled", "bus_busy", "overran"};
	return s < POLL_SKIP_KINDS ? names[s] : "other";
}

/*
 * Logs the changes of state a poll's outcome made (devhealth.h) and keeps the last error.
 * instant_ms is the aligned instant the poll was for.
 */
static void note_result(const struct bus *bus, struct scheduled_device *sd, const struct reading *r,
			int64_t instant_ms)
{
	const struct device_config *dev = sd->dev;

	if (!r->error[0]) {
		struct devhealth_change c = devhealth_poll_ok(&sd->health, instant_ms);
		if (c.back)
			log_info("device %s (address %s on %s): back after %lld s (%u failed poll%s)",
				 dev->id, dev->address_text, bus_name(bus),
				 (long long)(c.down_ms / 1000), c.failed_polls,
				 c.failed_polls == 1 ? "" : "s");
		return;
	}
	snprintf(sd->last_error, sizeof(sd->last_error), "%s", r->error);
	struct devhealth_change c = devhealth_poll_failed(&sd->health, instant_ms, sd->rd.refused);
	if (c.down) {
		if (sd->rd.refused) { /* it did answer, with its reason */
			char what[160];
			devread_exception_text(&sd->rd, what, sizeof(what));
			log_warn("device %s (address %s on %s): answers with %s", dev->id,
				 dev->address_text, bus_name(bus), what);
		} else {
			log_warn("device %s (address %s on %s): down: not answering: %s", dev->id,
				 dev->address_text, bus_name(bus), r->error);
		}
	}
	if (c.backoff_started)
		log_info("device %s: polling it less often (at most every %lld s) until it answers",
			 dev->id, (long long)(sd->health.backoff_cap_ms / 1000));
}

/* A message for an instant that was not read: its own TS and the reason; counted by why
 * (POLL_SKIP_KINDS: not counted, an instant lost to a lack of memory). */
static void publish_unread(struct bus *bus, struct scheduled_device *sd, int64_t instant,
			   const char *reason, enum poll_skip why)
{
	struct reading r = {.device = sd->dev, .ts_ms = instant};
	snprintf(r.error, sizeof(r.error), "%s", reason);
	if (why < POLL_SKIP_KINDS) {
		pthread_mutex_lock(&bus->lock);
		sd->status.skipped[why]++;
		pthread_mutex_unlock(&bus->lock);
	}
	bus->owner->sink(bus->owner->sink_ctx, &r);
}

static void record_status(struct bus *bus, struct scheduled_device *sd, const struct reading *r,
			  double seconds)
{
	size_t b = 0;

	while (b < POLL_LATENCY_BUCKETS && seconds > poll_latency_bounds_s[b])
		b++;
	pthread_mutex_lock(&bus->lock);
	sd->status.reads++;
	sd->status.last_read_ms = r->ts_ms;
	sd->status.latency_count[b]++;
	sd->status.latency_sum_s += seconds;
	if (r->error[0]) {
		sd->status.failures++;
		sd->status.failures_by[poll_failure_of(r->error)]++;
		snprintf(sd->status.last_error, sizeof(sd->status.last_error), "%s", r->error);
	} else {
		sd->status.last_ok_ms = r->ts_ms;
		sd->status.last_error[0] = '\0';
	}
	pthread_mutex_unlock(&bus->lock);
}

/* The instant a time belongs to: the latest aligned instant at or before it. */
static int64_t aligned_floor_ms(int64_t t_ms, int64_t period_ms)
{
	return time_next_aligned_ms(t_ms, period_ms) - period_ms;
}

/*
 * Whether the wall clock was stepped between two looks at both clocks (any worker). Every
 * device notices the same step, a device with a long period later: it is logged for the
 * whole poller, again only for a different step or after a minute.
 */
static bool clock_stepped(struct poller *p, int64_t wall0, int64_t mono0, int64_t wall1,
			  int64_t mono1)
{
	int64_t step = (wall1 - wall0) - (mono1 - mono0);
	if (step <= POLLER_CLOCK_STEP_MS && step >= -POLLER_CLOCK_STEP_MS)
		return false;
	int64_t last = atomic_load(&p->step_logged_mono_ms);
	int64_t same = step - atomic_load(&p->step_logged_ms);
	if ((last == 0 || mono1 - last >= 60000 || same > POLLER_CLOCK_STEP_MS ||
	     same < -POLLER_CLOCK_STEP_MS) &&
	    atomic_compare_exchange_strong(&p->step_logged_mono_ms, &last, mono1)) {
		atomic_store(&p->step_logged_ms, step);
		log_warn("the wall clock moved %+lld s against the monotonic clock (set, or the system "
			 "was suspended): schedules go on from the new time, %s",
			 (long long)(step / 1000),
			 step > 0 ? "without messages for the instants in between"
				  : "and the instants it goes through again get messages again");
	}
	return true;
}

void schedule_set_next(struct scheduled_device *sd, int64_t next_ms, int64_t wall_ms,
		       int64_t mono_ms)
{
	sd->next_ms = next_ms;
	sd->anchor_wall_ms = wall_ms;
	sd->anchor_mono_ms = mono_ms;
}

/* Instants were skipped: the first skip of an episode is logged (why), the rest are not. */
static void note_late(struct scheduled_device *sd, const char *why)
{
	if (devhealth_skipped(&sd->health))
		log_warn("device %s: %s", sd->dev->id, why);
}

/* An instant was read within its period; enough of them in a row end the episode. */
static void note_on_time(struct scheduled_device *sd, int64_t instant)
{
	if (devhealth_on_time(&sd->health, instant))
		log_info("device %s: reads fit their period again", sd->dev->id);
}

/*
 * Every instant of a due device, from its next_ms to now, gets exactly one message, in
 * instant order: an ERR "skipped: bus busy" for each instant whose whole period went by
 * before the bus got to the device, then the reading of the current instant (an ERR
 * "not polled" one while the device backs off), then an ERR "skipped: previous read still
 * running" for each instant that came while that read ran. The next read is at the first
 * instant after the read ended, so an overrun never makes the schedule drift. Every
 * message's TS is its instant. Only the bus's current worker (or, for Modbus TCP, the
 * event loop) runs a device's poll, so nothing else can publish one of its instants
 * meanwhile.
 *
 * A poll is two halves, so that the event loop can send the requests in between:
 * schedule_claim, when the device gets its turn on the bus, and schedule_complete, when
 * the read ended.
 */
bool schedule_claim(struct bus *bus, struct scheduled_device *sd, struct poll_claim *pc)
{
	struct poller *p = bus->owner;
	int64_t period = sd->dev->period_ms;
	int64_t now = time_now_ms();
	int64_t mono = time_mono_ms();
	char why[160];

	if (clock_stepped(p, sd->anchor_wall_ms, sd->anchor_mono_ms, now, mono))
		sd->next_ms = aligned_floor_ms(now, period);
	int64_t instant = sd->next_ms;
	if (instant + period <= now) {
		for (; instant + period <= now; instant += period)
			publish_unread(bus, sd, instant, SKIP_BUSY, POLL_SKIP_BUS_BUSY);
		snprintf(why, sizeof(why),
			 "its bus was busy for a whole period (other devices' reads or remote "
			 "requests); the instants it missed get ERR \"%s\"",
			 SKIP_BUSY);
		note_late(sd, why);
	}

	if (devhealth_skips(&sd->health, instant)) {
		/* No request goes on the bus, but the instant still gets its message. */
		snprintf(why, sizeof(why), "not polled: device down (last error: %.100s)",
			 sd->last_error);
		publish_unread(bus, sd, instant, why, POLL_SKIP_NOT_POLLED);
		schedule_set_next(sd, instant + period, now, mono);
		return false;
	}
	pc->instant = instant;
	pc->now = now;
	pc->mono = mono;
	clock_gettime(CLOCK_MONOTONIC, &pc->t0);
	return true;
}

void schedule_complete(struct bus *bus, struct scheduled_device *sd, const struct poll_claim *pc,
		       struct reading *r)
{
	struct poller *p = bus->owner;
	const struct device_config *dev = sd->dev;
	int64_t period = dev->period_ms;
	int64_t instant = pc->instant;
	char why[160];

	if (!r) {
		log_error("device %s: out of memory reading it", dev->id);
		publish_unread(bus, sd, instant, "out of memory", POLL_SKIP_KINDS);
	} else {
		struct timespec t1;
		r->ts_ms = instant;
		/* bench/modbus_bus.py reads this line: keep its form. */
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double seconds = (double)(t1.tv_sec - pc->t0.tv_sec) +
				 (double)(t1.tv_nsec - pc->t0.tv_nsec) / 1e9;
		log_debug("device %s: read in %.1f ms with %zu request(s)", dev->id, seconds * 1e3,
			  sd->rd.requests);
		poller_add_busy(bus, (int64_t)(seconds * 1e6));
		note_result(bus, sd, r, instant);
		record_status(bus, sd, r, seconds);
		p->sink(p->sink_ctx, r);
	}
	/* Where the read ended on the instants' clock, even if the wall clock was set
	 * meanwhile (the next look sees that step). */
	int64_t end_mono = time_mono_ms();
	int64_t end = pc->now + (end_mono - pc->mono);
	int64_t next = instant + period;
	if (next <= end) {
		for (; next <= end; next += period)
			publish_unread(bus, sd, next, SKIP_OVERRAN, POLL_SKIP_OVERRAN);
		snprintf(why, sizeof(why),
			 "read took longer than its period (ended %lld ms after its instant, period "
			 "%lld ms); the instants it overran get ERR \"%s\"",
			 (long long)(end - instant), (long long)period, SKIP_OVERRAN);
		note_late(sd, why);
	} else if (instant == sd->next_ms) {
		note_on_time(sd, instant);
	}
	schedule_set_next(sd, next, end, end_mono);
}

/* A due device's poll, start to end, on a bus whose thread does the I/O (a serial line). */
static void poll_due_device(struct bus *bus, struct scheduled_device *sd)
{
	struct poll_claim pc;
	struct reading r;

	if (!schedule_claim(bus, sd, &pc))
		return;
	if (devread_read(&sd->rd, bus->io, devhealth_single_attempt(&sd->health), &r) != 0) {
		schedule_complete(bus, sd, &pc, NULL);
		return;
	}
	schedule_complete(bus, sd, &pc, &r);
	reading_clear(&r);
}

/*
 * A device's next instant is never more than a period ahead of the time it was set at, so
 * one further ahead means the wall clock was set back: reschedule it from the new time
 * rather than wait, without messages, until the clock is back where it was. (The instants
 * between the new time and the old one get messages again: the clock repeats them.) Run
 * by the bus's worker before it looks at what is due.
 */
void schedule_resync(struct bus *bus, int64_t now)
{
	for (size_t i = 0; i < bus->device_count; i++) {
		struct scheduled_device *sd = &bus->devices[i];
		int64_t period = sd->dev->period_ms;
		if (sd->job.active || sd->next_ms - now <= period + POLLER_CLOCK_STEP_MS)
			continue;
		int64_t mono = time_mono_ms();
		clock_stepped(bus->owner, sd->anchor_wall_ms, sd->anchor_mono_ms, now, mono);
		schedule_set_next(sd, time_next_aligned_ms(now, period), now, mono);
		devhealth_reschedule(&sd->health, sd->next_ms);
	}
}

/* The wall-clock instant at which the bus has work next: its earliest device. */
int64_t schedule_next_due_ms(const struct bus *bus)
{
	int64_t due = INT64_MAX;
	for (size_t i = 0; i < bus->device_count; i++)
		if (bus->devices[i].next_ms < due)
			due = bus->devices[i].next_ms;
	return due;
}

/*
 * Reads every device of the bus that is due at `now`, one request at a time: first those
 * in good standing, then those that failed last time, each pass in configuration order, so
 * a device that times out never delays a healthy one due at the same instant. Queued
 * remote requests are served before each device read, so one waits for at most one read
 * and is never interleaved with a poll on the line. Called without the bus lock.
 */
void schedule_run_due(struct bus *bus, int64_t now)
{
	schedule_resync(bus, now);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < bus->device_count; i++) {
			struct scheduled_device *sd = &bus->devices[i];
			if (sd->next_ms > now || devhealth_failed_last(&sd->health) != (pass == 1))
				continue;
			pthread_mutex_lock(&bus->lock);
			poller_serve_requests(bus);
			pthread_mutex_unlock(&bus->lock);
			poll_due_device(bus, sd);
		}
	}
}
