/*
 * test_topic.c - unit tests of topic.c: the MQTT topic rules the loader checks the
 * configuration with and the remote commands route with (one matcher for both).
 *
 * The expectations are the broker's: the same answers as libmosquitto 2.0.11's
 * mosquitto_topic_matches_sub / mosquitto_pub_topic_check / mosquitto_validate_utf8 gave
 * for valid filters when topic.c replaced them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"

static void test_matches(void **state)
{
	static const struct {
		const char *filter, *topic;
		bool want;
	} cases[] = {
		{"a/b", "a/b", true},
		{"a/b", "a/bc", false},
		{"a/bc", "a/b", false},
		{"a/b", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/+", "a/", true}, /* an empty level is a level */
		{"+/+", "/x", true},
		{"+", "a/b", false},
		{"#", "a/b", true},
		{"#", "/", true},
		{"a/#", "a", true}, /* '#' includes the parent level */
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"+/#", "a", true},
		{"gw/AT", "gw/ATR", false},
		{"gw/+", "gw/ATR", true},
		/* '$' topics are the broker's: wildcards at the start do not reach them. */
		{"#", "$SYS/x", false},
		{"+/x", "$a/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$a/+", "$a/x", true},
		{"$a/x", "a/x", false},
		/* What is not a filter or not a topic matches nothing. */
		{"a+", "a+", false},
		{"a/#/b", "a/x/b", false},
		{"#a", "a", false},
		{"a/b", "a/+", false},
		{"#", "a/#", false},
		{"", "a", false},
		{"a", "", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = topic_matches(cases[i].filter, cases[i].topic);

		if (got != cases[i].want)
			fail_msg("topic_matches('%s', '%s') = %d, want %d", cases[i].filter,
				 cases[i].topic, got, cases[i].want);
	}
	assert_false(topic_matches(NULL, "a"));
	assert_false(topic_matches("a", NULL));
}

static void test_publishable(void **state)
{
	char *big = malloc(TOPIC_MAX_LEN + 2);

	(void)state;
	assert_true(topic_publishable("a/b"));
	assert_true(topic_publishable("/"));
	assert_true(topic_publishable("gw/\xc3\xa9"));      /* é */
	assert_true(topic_publishable("\xf0\x9f\x98\x80")); /* U+1F600 */
	assert_false(topic_publishable(NULL));
	assert_false(topic_publishable(""));
	assert_false(topic_publishable("a/+"));
	assert_false(topic_publishable("a/#"));
	assert_false(topic_publishable("a\x01"));            /* control character */
	assert_false(topic_publishable("a\xc2\x85"));        /* U+0085, a C1 control */
	assert_false(topic_publishable("a\xff"));            /* not UTF-8 */
	assert_false(topic_publishable("a\xc3"));            /* cut short */
	assert_false(topic_publishable("\xc0\xaf"));         /* overlong '/' */
	assert_false(topic_publishable("\xed\xa0\x80"));     /* a surrogate */
	assert_false(topic_publishable("\xf4\x90\x80\x80")); /* above U+10FFFF */
	assert_false(topic_publishable("\xef\xbf\xbf"));     /* U+FFFF, a non-character */
	assert_false(topic_publishable("\xef\xb7\x90"));     /* U+FDD0, a non-character */

	assert_non_null(big);
	memset(big, 'a', TOPIC_MAX_LEN + 1);
	big[TOPIC_MAX_LEN] = '\0';
	assert_true(topic_publishable(big));
	big[TOPIC_MAX_LEN] = 'a';
	big[TOPIC_MAX_LEN + 1] = '\0';
	assert_false(topic_publishable(big));
	assert_string_equal(topic_publish_problem(big), "is longer than 65535 bytes");
	assert_string_equal(topic_filter_problem(big), "is longer than 65535 bytes");
	free(big);
}

static void test_problems(void **state)
{
	(void)state;
	assert_string_equal(topic_publish_problem("[IMEI]/logger"), "");
	assert_string_equal(topic_publish_problem(""), "must not be empty");
	assert_string_equal(
		topic_publish_problem("a/+"),
		"must not contain the wildcards '+' or '#' (allowed: a plain topic such as [IMEI]/logger)");
	assert_string_equal(topic_filter_problem("[IMEI]/AT"), "");
	assert_string_equal(topic_filter_problem("a/+/b"), "");
	assert_string_equal(topic_filter_problem("#"), "");
	assert_string_equal(topic_filter_problem(""), "must not be empty");
	assert_string_equal(topic_filter_problem("a+"),
			    "'+' must be a whole topic level (such as a/+/b)");
	assert_string_equal(topic_filter_problem("a/#/b"),
			    "'#' must be the last topic level (such as a/#)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_publishable),
		cmocka_unit_test(test_problems),
	};
	return cmocka_run_group_tests_name("topic", tests, NULL, NULL);
}
