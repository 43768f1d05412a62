/* timeutil.c - clocks, aligned schedule and ISO-8601 formatting; see timeutil.h. */
#include "timeutil.h"

#include <errno.h>
#include <time.h>

#include "error.h"

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t time_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

void time_mono_deadline(int64_t delay_ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(delay_ms / 1000);
	ts->tv_nsec += (long)(delay_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int64_t time_next_aligned_ms(int64_t now_ms, int64_t period_ms)
{
	int64_t base = now_ms - (now_ms % period_ms);
	if (now_ms % period_ms < 0) /* before 1970: keep floor semantics */
		base -= period_ms;
	return base + period_ms;
}

int64_t time_floor_s(int64_t ms)
{
	/* Not (ms - 999) / 1000: that overflows for the most negative values. */
	return ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
}

int time_format_iso8601(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)time_floor_s(ms);
	struct tm tm;
	if (!gmtime_r(&secs, &tm))
		return MB_ERR_INVAL;
	if (strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return MB_ERR_INVAL;
	return 0;
}

void time_sleep_ms(int64_t ms)
{
	struct timespec req = {.tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&req, &req) != 0 && errno == EINTR)
		;
}
