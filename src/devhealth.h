/*
 * devhealth.h - the health of one polled device, as a pure state machine.
 *
 * Two questions about a device are answered here, and nothing else: is it up, down, or
 * down long enough to be polled less often (the back-off); and is it in an episode of
 * skipped instants (a read that took longer than its period, a bus busy for a whole
 * period). The state changes only through the calls below, each given the aligned instant
 * the poll was for (wall clock, ms): the module reads no clock, does no I/O and logs
 * nothing. Each call returns what changed, and the caller (schedule.c) writes the log line,
 * so every change of state is logged once per episode, not once per attempt.
 * tests/unit/test_devhealth.c walks every transition.
 *
 * The rules (docs/modbus.md): the first failed poll of an episode is a "down" (or "answers
 * with <exception>" when the device refused); after DEVHEALTH_BACKOFF_AFTER failed polls in
 * a row without an answer the device is polled only at probe instants, the interval
 * doubling from its period up to backoff_max rounded up to whole periods; a device that
 * answers with an exception is alive and never backs off; the first good poll is a "back"
 * and resets everything. A late episode starts at the first skipped instant and ends when
 * at least two instants in a row, spanning DEVHEALTH_QUIET_MS, were read within their period.
 *
 * Threading: a struct devhealth belongs to the worker serving its device's bus; not
 * thread-safe. Ownership: plain values, nothing to free. Errors: none.
 */
#ifndef MODBRIDGE_DEVHEALTH_H
#define MODBRIDGE_DEVHEALTH_H

#include <stdbool.h>
#include <stdint.h>

/* Failed polls in a row after which a device is polled less often. */
#define DEVHEALTH_BACKOFF_AFTER 3

/* An episode of skipped instants ends when instants in a row were read within their
 * period, at least two (one would end it between every two skips of a device that overruns
 * every other instant) and for at least this long (at a 100 ms period, a loaded bus made an
 * episode start and end several times a second). */
#define DEVHEALTH_QUIET_MS 10000

struct devhealth {
	int64_t period_ms;
	int64_t backoff_cap_ms; /* longest interval between polls while backing off */
	/* Fault isolation: up, down, backing off. */
	bool failing;          /* the last poll failed: log only the change of state */
	unsigned fail_streak;  /* failed polls in a row that count towards back-off */
	unsigned failed_polls; /* failed polls since the device was last seen well */
	int64_t down_since_ms; /* instant of the first failed poll of the episode */
	bool backing_off;      /* polled only at probe_ms and later */
	int64_t backoff_ms;    /* current interval between polls while backing off */
	int64_t probe_ms;      /* instant of the next poll while backing off */
	/* Skipped instants (overrun or busy bus): an episode, ended as DEVHEALTH_QUIET_MS says. */
	bool late;
	unsigned on_time_reads;   /* instants in a row read within their period */
	int64_t on_time_since_ms; /* the first of them */
};

/* What a poll's outcome changed: what the caller logs. All false: nothing to log. */
struct devhealth_change {
	bool down;             /* the first failed poll of an episode */
	bool back;             /* the first good poll after failed ones */
	int64_t down_ms;       /* back: from the first failed instant to this one */
	unsigned failed_polls; /* back: failed polls in the episode */
	bool backoff_started;  /* polled less often from now on (every backoff_cap_ms at most) */
};

/* The longest interval between polls of a device that is backing off: backoff_max_ms
 * rounded up to whole periods (at least one), so probes stay on the aligned instants.
 * period_ms > 0. */
int64_t devhealth_backoff_cap_ms(int64_t period_ms, int64_t backoff_max_ms);

/* A device in good standing, never polled yet. period_ms > 0. */
void devhealth_init(struct devhealth *h, int64_t period_ms, int64_t backoff_max_ms);

/* The poll for instant_ms succeeded. */
struct devhealth_change devhealth_poll_ok(struct devhealth *h, int64_t instant_ms);

/* The poll for instant_ms failed; refused: the device answered with an exception. */
struct devhealth_change devhealth_poll_failed(struct devhealth *h, int64_t instant_ms,
					      bool refused);

/* Whether the instant goes without a request: the device backs off and it is not a probe. */
bool devhealth_skips(const struct devhealth *h, int64_t instant_ms);

/* Whether a poll gets a single attempt, without retries (the device backs off). */
bool devhealth_single_attempt(const struct devhealth *h);

/* Whether the last poll failed without an answer (such devices are polled last). */
bool devhealth_failed_last(const struct devhealth *h);

/* The wall clock was set back and the device rescheduled at next_ms: a probe planned on
 * the old time moves there too. */
void devhealth_reschedule(struct devhealth *h, int64_t next_ms);

/* Instants were skipped. Returns true when this starts an episode (log why). */
bool devhealth_skipped(struct devhealth *h);

/* The instant was read within its period. Returns true when this ends an episode. */
bool devhealth_on_time(struct devhealth *h, int64_t instant_ms);

#endif
