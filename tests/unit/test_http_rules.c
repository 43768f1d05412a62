/*
 * test_http_rules.c - the HTTP uplink's rules without a network: what a status means
 * (uplink_http_classify), the pause asked of the forwarder, and Retry-After in both of
 * its forms (curlx_retry_after_ms).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "curlx.h"
#include "error.h"
#include "uplink_http.h"

static void statuses(void **state)
{
	(void)state;
	/* Any 2xx is a success. */
	assert_int_equal(uplink_http_classify(0, 200), HTTP_DELIVERED);
	assert_int_equal(uplink_http_classify(0, 201), HTTP_DELIVERED);
	assert_int_equal(uplink_http_classify(0, 204), HTTP_DELIVERED);
	assert_int_equal(uplink_http_classify(0, 299), HTTP_DELIVERED);
	/* Retried with back-off: no answer, 408, 429, 5xx. */
	assert_int_equal(uplink_http_classify(MB_ERR_IO, 0), HTTP_RETRY);
	assert_int_equal(uplink_http_classify(MB_ERR_TLS, 0), HTTP_RETRY);
	assert_int_equal(uplink_http_classify(MB_ERR_IO, 200), HTTP_RETRY); /* cut mid-reply */
	assert_int_equal(uplink_http_classify(0, 408), HTTP_RETRY);
	assert_int_equal(uplink_http_classify(0, 429), HTTP_RETRY);
	assert_int_equal(uplink_http_classify(0, 500), HTTP_RETRY);
	assert_int_equal(uplink_http_classify(0, 502), HTTP_RETRY);
	assert_int_equal(uplink_http_classify(0, 503), HTTP_RETRY);
	assert_int_equal(uplink_http_classify(0, 599), HTTP_RETRY);
	/* The server refuses what we send: any other 4xx, and what we cannot follow. */
	assert_int_equal(uplink_http_classify(0, 400), HTTP_REJECTED);
	assert_int_equal(uplink_http_classify(0, 401), HTTP_REJECTED);
	assert_int_equal(uplink_http_classify(0, 403), HTTP_REJECTED);
	assert_int_equal(uplink_http_classify(0, 404), HTTP_REJECTED);
	assert_int_equal(uplink_http_classify(0, 413), HTTP_REJECTED);
	assert_int_equal(uplink_http_classify(0, 422), HTTP_REJECTED);
	assert_int_equal(uplink_http_classify(0, 301), HTTP_REJECTED);
	assert_int_equal(uplink_http_classify(0, 100), HTTP_REJECTED);
}

static void pauses(void **state)
{
	(void)state;
	/* A refusal waits the slowest back-off, whatever the server says. */
	assert_int_equal(uplink_http_pause_ms(HTTP_REJECTED, -1), UPLINK_SLOWEST_RETRY_MS);
	assert_int_equal(uplink_http_pause_ms(HTTP_REJECTED, 5000), UPLINK_SLOWEST_RETRY_MS);
	/* A retry honours Retry-After, bounded; without it the forwarder's back-off rules. */
	assert_int_equal(uplink_http_pause_ms(HTTP_RETRY, -1), 0);
	assert_int_equal(uplink_http_pause_ms(HTTP_RETRY, 4000), 4000);
	assert_int_equal(uplink_http_pause_ms(HTTP_RETRY, 0), 0);
	assert_int_equal(uplink_http_pause_ms(HTTP_RETRY, 86400000), UPLINK_RETRY_AFTER_MAX_MS);
}

static void retry_after(void **state)
{
	(void)state;
	const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
	assert_int_equal(curlx_retry_after_ms("120", now), 120000);
	assert_int_equal(curlx_retry_after_ms(" 3\r\n", now), 3000);
	assert_int_equal(curlx_retry_after_ms("0", now), 0);
	/* An HTTP date, in its three forms: how long from now. */
	assert_int_equal(curlx_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000);
	assert_int_equal(curlx_retry_after_ms("Sunday, 06-Nov-94 08:50:37 GMT", now), 60000);
	assert_int_equal(curlx_retry_after_ms("Sun Nov  6 08:49:38 1994", now), 1000);
	/* A date in the past means now. */
	assert_int_equal(curlx_retry_after_ms("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);
	/* Not a Retry-After value. */
	assert_int_equal(curlx_retry_after_ms("", now), -1);
	assert_int_equal(curlx_retry_after_ms("soon", now), -1);
	assert_int_equal(curlx_retry_after_ms("12abc", now), -1);
	assert_int_equal(curlx_retry_after_ms("-5", now), -1);
	/* Absurdly long is capped (a year), not an overflow. */
	assert_true(curlx_retry_after_ms("99999999999999999", now) <= 365LL * 86400 * 1000);
}

static void escape(void **state)
{
	(void)state;
	const char *json = "{\"a\":1, \"b\":\"x&y\"}";
	char *e = curlx_escape(json, strlen(json));
	assert_non_null(e);
	assert_string_equal(e, "%7B%22a%22%3A1%2C%20%22b%22%3A%22x%26y%22%7D");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(statuses),
		cmocka_unit_test(pauses),
		cmocka_unit_test(retry_after),
		cmocka_unit_test(escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
