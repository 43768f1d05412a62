/* test_timeutil.c - the aligned schedule, monotonic deadlines and ISO-8601 formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "timeutil.h"

static void ten_minute_period_aligns_to_the_clock(void **state)
{
	(void)state;
	/* 2022-07-15T10:09:01Z -> the next 10-minute instant is 10:10:00. */
	assert_int_equal(time_next_aligned_ms(1657879741000LL, 600000), 1657879800000LL);
	/* Exactly on an instant: the *next* one, never the same one twice. */
	assert_int_equal(time_next_aligned_ms(1657879800000LL, 600000), 1657880400000LL);
	assert_int_equal(time_next_aligned_ms(1657879799999LL, 600000), 1657879800000LL);
}

static void sub_second_periods(void **state)
{
	(void)state;
	assert_int_equal(time_next_aligned_ms(1234, 500), 1500);
	assert_int_equal(time_next_aligned_ms(1500, 500), 2000);
	assert_int_equal(time_next_aligned_ms(0, 1000), 1000);
}

static void floor_seconds(void **state)
{
	(void)state;
	assert_int_equal(time_floor_s(1999), 1);
	assert_int_equal(time_floor_s(0), 0);
	assert_int_equal(time_floor_s(-1), -1);
	assert_int_equal(time_floor_s(-1000), -1);
	assert_int_equal(time_floor_s(-1001), -2);
	/* Found by fuzz/fuzz_message: the old (ms - 999) / 1000 overflowed here. */
	assert_true(time_floor_s(INT64_MIN) == -9223372036854776LL);
	assert_true(time_floor_s(INT64_MAX) == 9223372036854775LL);
}

/* ns since an arbitrary origin, for comparing timespecs. */
static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void monotonic_deadlines(void **state)
{
	(void)state;
	const int64_t delays_ms[] = {0, 1, 999, 1000, 1500, 30000};
	for (size_t i = 0; i < sizeof(delays_ms) / sizeof(delays_ms[0]); i++) {
		struct timespec before, deadline, after;
		clock_gettime(CLOCK_MONOTONIC, &before);
		time_mono_deadline(delays_ms[i], &deadline);
		clock_gettime(CLOCK_MONOTONIC, &after);
		/* Normalised, and delay_ms after a moment between the two clock reads. */
		assert_true(deadline.tv_nsec >= 0 && deadline.tv_nsec < 1000000000L);
		assert_true(ts_ns(&deadline) >= ts_ns(&before) + delays_ms[i] * 1000000LL);
		assert_true(ts_ns(&deadline) <= ts_ns(&after) + delays_ms[i] * 1000000LL);
	}
}

static void iso8601_format(void **state)
{
	(void)state;
	char buf[32];
	assert_int_equal(time_format_iso8601(1657880042999LL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2022-07-15T10:14:02Z");
	assert_int_equal(time_format_iso8601(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_not_equal(time_format_iso8601(0, buf, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ten_minute_period_aligns_to_the_clock),
		cmocka_unit_test(sub_second_periods),
		cmocka_unit_test(floor_seconds),
		cmocka_unit_test(monotonic_deadlines),
		cmocka_unit_test(iso8601_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
