/*
 * timeutil.h - clocks, the aligned schedule, and time stamp formatting.
 * Pure functions apart from the clock reads; no shared state.
 */
#ifndef MODBRIDGE_TIMEUTIL_H
#define MODBRIDGE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t time_now_ms(void);

/* Monotonic time in milliseconds (CLOCK_MONOTONIC), for time-outs and intervals. */
int64_t time_mono_ms(void);

/*
 * The CLOCK_MONOTONIC instant delay_ms (>= 0) from now, as the absolute time that
 * pthread_cond_timedwait() takes for a condition variable on that clock.
 */
void time_mono_deadline(int64_t delay_ms, struct timespec *ts);

/*
 * The first instant strictly after now_ms that is a whole multiple of period_ms since the
 * epoch (UTC): a 10-minute period gives xx:00, xx:10, ... as the router does.
 * period_ms must be > 0.
 */
int64_t time_next_aligned_ms(int64_t now_ms, int64_t period_ms);

/*
 * Whole seconds at or before ms (floor division: -1 ms is second -1), for every int64
 * without overflow.
 */
int64_t time_floor_s(int64_t ms);

/* Writes "yyyy-mm-ddTHH:MM:SSZ" (UTC, seconds precision) into buf; returns 0 or MB_ERR_INVAL. */
int time_format_iso8601(int64_t ms, char *buf, size_t len);

/* Sleeps for ms milliseconds (restarting after signals). */
void time_sleep_ms(int64_t ms);

#endif
