/*
 * test_httpform.c - unit tests of httpform.c (the web UI's form and multipart parsing) and
 * of the pieces the web UI builds on beside it: passwd.c (yescrypt hashes) and the log ring
 * of log.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "httpform.h"
#include "log.h"
#include "passwd.h"

static void test_urlencoded(void **state)
{
	struct httpform f = {0};
	char why[256];
	const char *body = "user=admin&password=a%20b+c%26d&empty=&flag&&set%3Amqtt.qos=2";

	(void)state;
	assert_int_equal(httpform_parse_urlencoded(body, strlen(body), &f, why, sizeof(why)), 0);
	assert_int_equal(f.count, 5);
	assert_string_equal(httpform_get(&f, "user"), "admin");
	assert_string_equal(httpform_get(&f, "password"), "a b c&d");
	assert_string_equal(httpform_get(&f, "empty"), "");
	assert_string_equal(httpform_get(&f, "flag"), "");
	assert_string_equal(httpform_get(&f, "set:mqtt.qos"), "2");
	assert_null(httpform_get(&f, "nothing"));
	httpform_free(&f);

	/* A NUL in a value is kept (value_len); a bad escape or a nameless field is refused. */
	assert_int_equal(httpform_parse_urlencoded("v=a%00b", 7, &f, why, sizeof(why)), 0);
	assert_int_equal(f.fields[0].value_len, 3);
	httpform_free(&f);
	assert_int_equal(httpform_parse_urlencoded("a=%zz", 5, &f, why, sizeof(why)), MB_ERR_INVAL);
	assert_non_null(strstr(why, "escape"));
	httpform_free(&f);
	assert_int_equal(httpform_parse_urlencoded("=1", 2, &f, why, sizeof(why)), MB_ERR_INVAL);
	httpform_free(&f);
	assert_int_equal(httpform_parse_urlencoded("a%00=1", 6, &f, why, sizeof(why)),
			 MB_ERR_INVAL);
	httpform_free(&f);
	assert_int_equal(httpform_parse_urlencoded("a=%4", 4, &f, why, sizeof(why)), MB_ERR_INVAL);
	httpform_free(&f);
}

static void test_multipart(void **state)
{
	static const char ct[] = "multipart/form-data; boundary=----X1";
	static const char body[] =
		"------X1\r\n"
		"Content-Disposition: form-data; name=\"csrf\"\r\n\r\n"
		"tok\r\n"
		"------X1\r\n"
		"Content-Disposition: form-data; name=\"ca\"; filename=\"ca.crt\"\r\n"
		"Content-Type: application/octet-stream\r\n\r\n"
		"-----BEGIN CERTIFICATE-----\r\nAB\0CD\r\n"
		"\r\n------X1--\r\n";
	struct httpform f = {0};
	char why[256];

	(void)state;
	assert_int_equal(httpform_parse(ct, body, sizeof(body) - 1, &f, why, sizeof(why)), 0);
	assert_int_equal(f.count, 2);
	assert_string_equal(httpform_get(&f, "csrf"), "tok");
	const struct httpform_field *ca = httpform_find(&f, "ca");
	assert_non_null(ca);
	assert_string_equal(ca->filename, "ca.crt");
	assert_string_equal(ca->content_type, "application/octet-stream");
	assert_int_equal(ca->value_len, strlen("-----BEGIN CERTIFICATE-----\r\nAB") + 5);
	httpform_free(&f);

	/* Malformed bodies are refused whole. */
	static const char *const bad[] = {
		"------X1\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno closing boundary",
		"------X1\r\nContent-Type: text/plain\r\n\r\nx\r\n------X1--",
		"------X1\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n------X1--",
		"------X1\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n------X1",
		"------X1\r\nContent-Disposition: form-data; name=\"unterminated\r\n\r\nx\r\n------X1--",
		"no boundary at all",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(httpform_parse(ct, bad[i], strlen(bad[i]), &f, why, sizeof(why)),
				 MB_ERR_INVAL);
		httpform_free(&f);
	}
	assert_int_equal(httpform_parse("multipart/form-data", "x", 1, &f, why, sizeof(why)),
			 MB_ERR_INVAL);
	assert_int_equal(httpform_parse("application/json", "{}", 2, &f, why, sizeof(why)),
			 MB_ERR_INVAL);
	assert_int_equal(httpform_parse(NULL, "", 0, &f, why, sizeof(why)), 0);
	httpform_free(&f);
}

static void test_safe_filename(void **state)
{
	(void)state;
	assert_true(httpform_safe_filename("ca.crt"));
	assert_true(httpform_safe_filename("client-1_key.pem"));
	assert_false(httpform_safe_filename("../ca.crt"));
	assert_false(httpform_safe_filename("a/b.crt"));
	assert_false(httpform_safe_filename(".bashrc"));
	assert_false(httpform_safe_filename("a..b"));
	assert_false(httpform_safe_filename(""));
	assert_false(httpform_safe_filename(NULL));
	assert_false(httpform_safe_filename("a b.crt"));
	assert_false(httpform_safe_filename("C:\\x.crt"));
	char longname[80];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	assert_false(httpform_safe_filename(longname));
}

static void test_passwd(void **state)
{
	char h[PASSWD_HASH_MAX];

	(void)state;
	assert_int_equal(passwd_hash("s3cret", h, sizeof(h)), 0);
	assert_int_equal(strncmp(h, "$y$", 3), 0);
	assert_null(passwd_hash_problem(h));
	assert_true(passwd_verify("s3cret", h));
	assert_false(passwd_verify("s3cret ", h));
	assert_false(passwd_verify("", h));
	assert_false(passwd_verify("s3cret", "s3cret"));
	assert_int_equal(passwd_hash("", h, sizeof(h)), MB_ERR_INVAL);
	assert_non_null(passwd_hash_problem("s3cret"));
	assert_non_null(passwd_hash_problem("$zz$nonsense"));
	assert_non_null(passwd_hash_problem(""));
}

struct collected {
	char text[8][64];
	size_t n;
};

static void collect(void *ctx, const struct log_ring_line *l)
{
	struct collected *c = ctx;

	if (c->n < 8)
		snprintf(c->text[c->n++], sizeof(c->text[0]), "%d:%s", (int)l->level, l->text);
}

static void test_log_ring(void **state)
{
	struct collected c = {0};

	(void)state;
	/* Not enabled: nothing is kept. */
	log_info("before the ring");
	assert_int_equal(log_ring_read(0, LOG_LVL_DEBUG, 10, collect, &c), 0);
	assert_int_equal(log_ring_enable(1), 0); /* at least 16 lines */
	for (int i = 0; i < 20; i++)
		log_msg(i % 2 ? LOG_LVL_WARN : LOG_LVL_INFO, "line %d", i);
	uint64_t newest = log_ring_read(0, LOG_LVL_WARN, 3, collect, &c);
	assert_int_equal(newest, 20);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.text[0], "1:line 15");
	assert_string_equal(c.text[2], "1:line 19");
	/* After a given line only the newer ones; the oldest have gone round. */
	memset(&c, 0, sizeof(c));
	log_ring_read(18, LOG_LVL_DEBUG, 10, collect, &c);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.text[0], "2:line 18");
	memset(&c, 0, sizeof(c));
	log_ring_read(0, LOG_LVL_DEBUG, 100, collect, &c);
	assert_int_equal(c.n, 8); /* collect keeps 8; the ring had 16 */
	assert_string_equal(c.text[0], "2:line 4");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urlencoded),    cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_safe_filename), cmocka_unit_test(test_passwd),
		cmocka_unit_test(test_log_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
