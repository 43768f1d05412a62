/*
 * test_devhealth.c - the device health state machine (src/devhealth.c): down, back-off
 * growth and cap, probes, recovery, refusals, clock resets and late episodes, with the
 * instants chosen here instead of read from a clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devhealth.h"

#define PERIOD 1000   /* ms */
#define T0 1000000000 /* an aligned instant */

/* The poll for the n-th instant after T0 failed without an answer. */
static struct devhealth_change fail_at(struct devhealth *h, int n)
{
	return devhealth_poll_failed(h, T0 + (int64_t)n * PERIOD, false);
}

static void cap_is_backoff_max_in_whole_periods(void **state)
{
	(void)state;
	assert_int_equal(devhealth_backoff_cap_ms(1000, 60000), 60000);
	assert_int_equal(devhealth_backoff_cap_ms(1000, 60001), 61000); /* rounded up */
	assert_int_equal(devhealth_backoff_cap_ms(7000, 60000), 63000);
	assert_int_equal(devhealth_backoff_cap_ms(1000, 0), 1000); /* at least one period */
	assert_int_equal(devhealth_backoff_cap_ms(600000, 60000), 600000);
}

static void first_failure_is_down_once(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, PERIOD, 60000);
	assert_false(devhealth_failed_last(&h));
	assert_false(devhealth_skips(&h, T0));

	struct devhealth_change c = fail_at(&h, 0);
	assert_true(c.down);
	assert_false(c.back);
	assert_false(c.backoff_started);
	assert_true(devhealth_failed_last(&h));
	assert_false(devhealth_single_attempt(&h)); /* retries until it backs off */

	c = fail_at(&h, 1); /* the same episode: nothing new to log */
	assert_false(c.down);
	assert_false(c.backoff_started);
	assert_false(devhealth_skips(&h, T0 + 2 * PERIOD));
}

static void backoff_starts_doubles_and_stops_at_the_cap(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, PERIOD, 10000); /* cap: 10 periods */

	assert_false(fail_at(&h, 0).backoff_started);
	assert_false(fail_at(&h, 1).backoff_started);
	struct devhealth_change c = fail_at(&h, 2); /* DEVHEALTH_BACKOFF_AFTER in a row */
	assert_int_equal(DEVHEALTH_BACKOFF_AFTER, 3);
	assert_true(c.backoff_started);
	assert_false(c.down);
	assert_true(devhealth_single_attempt(&h));

	/* The next probe is 2 periods on; the instant between gets no request. */
	assert_true(devhealth_skips(&h, T0 + 3 * PERIOD));
	assert_false(devhealth_skips(&h, T0 + 4 * PERIOD));

	/* Each failed probe doubles the interval: 4, 8, then the cap of 10, and it stays. */
	int64_t probe = T0 + 4 * PERIOD;
	const int64_t want[] = {4, 8, 10, 10, 10};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		c = devhealth_poll_failed(&h, probe, false);
		assert_false(c.down);
		assert_false(c.backoff_started); /* logged once per episode */
		assert_int_equal(h.backoff_ms, want[i] * PERIOD);
		assert_true(devhealth_skips(&h, probe + want[i] * PERIOD - PERIOD));
		assert_false(devhealth_skips(&h, probe + want[i] * PERIOD));
		probe += want[i] * PERIOD;
	}
}

static void no_backoff_when_the_cap_is_one_period(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, 60000, 30000); /* backoff_max below the period */
	for (int i = 0; i < 10; i++) {
		struct devhealth_change c =
			devhealth_poll_failed(&h, T0 + (int64_t)i * 60000, false);
		assert_false(c.backoff_started);
		assert_false(devhealth_skips(&h, T0 + (int64_t)(i + 1) * 60000));
	}
	assert_false(devhealth_single_attempt(&h));
}

static void recovery_is_back_once_and_resets(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, PERIOD, 60000);
	for (int i = 0; i < 5; i++)
		fail_at(&h, i);
	assert_true(devhealth_single_attempt(&h));

	struct devhealth_change c = devhealth_poll_ok(&h, T0 + 12 * PERIOD);
	assert_true(c.back);
	assert_int_equal(c.down_ms, 12 * PERIOD); /* from the first failed instant */
	assert_int_equal(c.failed_polls, 5);
	assert_false(devhealth_failed_last(&h));
	assert_false(devhealth_single_attempt(&h));
	assert_false(devhealth_skips(&h, T0 + 13 * PERIOD));

	c = devhealth_poll_ok(&h, T0 + 13 * PERIOD); /* already up: nothing to log */
	assert_false(c.back);

	/* A new episode starts afresh: down again, back-off only after three more. */
	assert_true(fail_at(&h, 14).down);
	assert_false(fail_at(&h, 15).backoff_started);
	assert_true(fail_at(&h, 16).backoff_started);
	c = devhealth_poll_ok(&h, T0 + 18 * PERIOD);
	assert_true(c.back);
	assert_int_equal(c.failed_polls, 3);
	assert_int_equal(c.down_ms, 4 * PERIOD);
}

static void a_refusing_device_never_backs_off(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, PERIOD, 60000);
	struct devhealth_change c = devhealth_poll_failed(&h, T0, true);
	assert_true(c.down); /* logged as "answers with ..." by the caller */
	for (int i = 1; i < 10; i++) {
		c = devhealth_poll_failed(&h, T0 + (int64_t)i * PERIOD, true);
		assert_false(c.down);
		assert_false(c.backoff_started);
	}
	assert_false(devhealth_single_attempt(&h));
	/* It answered: it is not put behind the silent devices. */
	assert_false(devhealth_failed_last(&h));
	c = devhealth_poll_ok(&h, T0 + 10 * PERIOD);
	assert_true(c.back);
	assert_int_equal(c.failed_polls, 10);

	/* Two silent failures, then a refusal: the silent streak starts over. */
	fail_at(&h, 11);
	fail_at(&h, 12);
	devhealth_poll_failed(&h, T0 + 13 * PERIOD, true);
	assert_false(fail_at(&h, 14).backoff_started);
	assert_false(fail_at(&h, 15).backoff_started);
	assert_true(fail_at(&h, 16).backoff_started);
}

static void a_clock_set_back_moves_the_probe(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, PERIOD, 60000);
	for (int i = 0; i < 4; i++)
		fail_at(&h, i);
	assert_true(devhealth_skips(&h, T0 + 4 * PERIOD)); /* probe at T0 + 7 periods */

	/* The clock went back an hour: the device is rescheduled there, probe included. */
	int64_t next = T0 - 3600 * 1000;
	devhealth_reschedule(&h, next);
	assert_false(devhealth_skips(&h, next));
	assert_true(devhealth_single_attempt(&h)); /* still backing off */

	/* A device in good standing has no probe to move. */
	struct devhealth ok;
	devhealth_init(&ok, PERIOD, 60000);
	devhealth_reschedule(&ok, next);
	assert_false(devhealth_skips(&ok, next - PERIOD));
}

static void late_episode_starts_once_and_ends_after_quiet_reads(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, PERIOD, 60000);

	assert_false(devhealth_on_time(&h, T0)); /* no episode: nothing ends */
	assert_true(devhealth_skipped(&h));      /* starts: logged */
	assert_false(devhealth_skipped(&h));     /* the same episode */

	/* On-time reads end it only when at least two span DEVHEALTH_QUIET_MS. */
	int64_t t = T0 + PERIOD;
	assert_false(devhealth_on_time(&h, t));
	for (t += PERIOD; t < T0 + PERIOD + DEVHEALTH_QUIET_MS; t += PERIOD)
		assert_false(devhealth_on_time(&h, t));
	assert_true(devhealth_on_time(&h, t)); /* ends: logged */
	assert_false(devhealth_on_time(&h, t + PERIOD));

	/* A new episode; a skip before the quiet time is over restarts the count, without a
	 * second log line. */
	assert_true(devhealth_skipped(&h));
	t = T0 + 100 * PERIOD;
	for (int i = 0; i < 5; i++)
		assert_false(devhealth_on_time(&h, t + (int64_t)i * PERIOD));
	assert_false(devhealth_skipped(&h));
	t += 10 * PERIOD;
	assert_false(devhealth_on_time(&h, t)); /* the count starts again here */
	assert_false(devhealth_on_time(&h, t + DEVHEALTH_QUIET_MS - PERIOD));
	assert_true(devhealth_on_time(&h, t + DEVHEALTH_QUIET_MS));
}

static void one_on_time_read_with_a_long_period_is_not_enough(void **state)
{
	(void)state;
	struct devhealth h;
	devhealth_init(&h, 60000, 600000);
	assert_true(devhealth_skipped(&h));
	/* A single read, however long after, does not end it: an overrun every other
	 * instant would otherwise start and end an episode each time. */
	assert_false(devhealth_on_time(&h, T0));
	assert_true(devhealth_on_time(&h, T0 + 60000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cap_is_backoff_max_in_whole_periods),
		cmocka_unit_test(first_failure_is_down_once),
		cmocka_unit_test(backoff_starts_doubles_and_stops_at_the_cap),
		cmocka_unit_test(no_backoff_when_the_cap_is_one_period),
		cmocka_unit_test(recovery_is_back_once_and_resets),
		cmocka_unit_test(a_refusing_device_never_backs_off),
		cmocka_unit_test(a_clock_set_back_moves_the_probe),
		cmocka_unit_test(late_episode_starts_once_and_ends_after_quiet_reads),
		cmocka_unit_test(one_on_time_read_with_a_long_period_is_not_enough),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
