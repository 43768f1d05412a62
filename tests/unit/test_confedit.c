/*
 * test_confedit.c - unit tests of confedit*.c: reading and editing one key of the
 * configuration text while keeping everything else byte for byte, and the redacted dump.
 * The atomic file replacement is tested in test_atomicfile.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "confedit.h"
#include "error.h"

static void expect_get(const char *text, const char *key, const char *want)
{
	char err[256] = "", *v = NULL;
	int rc = confedit_get(text, strlen(text), key, &v, err, sizeof(err));

	if (rc != 0)
		fail_msg("get %s: %d %s", key, rc, err);
	assert_string_equal(v, want);
	free(v);
}

static void expect_get_fails(const char *text, const char *key, int want_rc, const char *want_err)
{
	char err[256] = "", *v = NULL;

	assert_int_equal(confedit_get(text, strlen(text), key, &v, err, sizeof(err)), want_rc);
	assert_null(v);
	if (!strstr(err, want_err))
		fail_msg("get %s: error '%s' lacks '%s'", key, err, want_err);
}

static void expect_set(const char *text, const char *key, const char *value, const char *want)
{
	char err[256] = "", *out = NULL;
	size_t len = 0;
	int rc = confedit_set(text, strlen(text), key, value, &out, &len, err, sizeof(err));

	if (rc != 0)
		fail_msg("set %s=%s: %d %s", key, value, rc, err);
	assert_int_equal(len, strlen(out));
	assert_string_equal(out, want);
	free(out);
}

static void expect_set_fails(const char *text, const char *key, const char *value,
			     const char *want_err)
{
	char err[256] = "", *out = NULL;
	size_t len = 0;

	assert_int_equal(confedit_set(text, strlen(text), key, value, &out, &len, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_null(out);
	if (!strstr(err, want_err))
		fail_msg("set %s: error '%s' lacks '%s'", key, err, want_err);
}

static const char sample[] = "# modbridge\n"
			     "gateway:\n"
			     "  imei: \"35729\\u00e9\"   # identity\n"
			     "serial:\n"
			     "  - name: com2\n"
			     "    device: /dev/ttyS1\n"
			     "modbus:\n"
			     "  devices:\n"
			     "    - { id: \"1\", address: 1, start: \"1;10\", count: \"1;3\" }\n"
			     "    - id: \"2\"\n"
			     "      address: 192.168.1.20:502\n"
			     "mqtt:\n"
			     "  broker: tcp://localhost   # plain\n"
			     "  password: s3cret\n"
			     "  at_topics:\n"
			     "    - { topic: \"[IMEI]/AT\", response: \"[IMEI]/ATR\" }\n"
			     "logger: { id: ID-1234 }\n";

static void test_get(void **state)
{
	(void)state;
	expect_get(sample, "gateway.imei", "35729\xc3\xa9");
	expect_get(sample, "serial[0].device", "/dev/ttyS1");
	expect_get(sample, "modbus.devices[0].start", "1;10");
	expect_get(sample, "modbus.devices[1].address", "192.168.1.20:502");
	expect_get(sample, "mqtt.at_topics[0].response", "[IMEI]/ATR");
	expect_get(sample, "logger.id", "ID-1234");
	expect_get_fails(sample, "mqtt.qos", MB_ERR_NOTFOUND, "mqtt.qos is not set");
	expect_get_fails(sample, "remote.allow_writes", MB_ERR_NOTFOUND, "not set");
	expect_get_fails(sample, "mqtt", MB_ERR_INVAL, "mqtt is a section");
	expect_get_fails(sample, "modbus.devices", MB_ERR_INVAL, "is a list");
	expect_get_fails(sample, "modbus.devices.id", MB_ERR_INVAL,
			 "name an entry, such as modbus.devices[0]");
	expect_get_fails(sample, "modbus.devices[2].id", MB_ERR_INVAL,
			 "has 2 entries (positions 0..1)");
	expect_get_fails(sample, "mqtt.broker.host", MB_ERR_INVAL,
			 "mqtt.broker is a value, not a section");
	expect_get_fails(sample, "gateway[0]", MB_ERR_INVAL, "not a list");
	expect_get_fails(sample, "", MB_ERR_INVAL, "empty key");
	expect_get_fails(sample, "mqtt..qos", MB_ERR_INVAL, "is not a key");
	expect_get_fails(sample, "mqtt.qos[", MB_ERR_INVAL, "list position");
	expect_get_fails(sample, "a b", MB_ERR_INVAL, "is not a key");
	expect_get_fails("a: [1\n", "a", MB_ERR_INVAL, "not valid YAML");
	expect_get_fails("- 1\n- 2\n", "a", MB_ERR_INVAL, "not a mapping");
	/* A byte that is not UTF-8 is named by its line (libyaml gives it no mark). */
	expect_get_fails("a: 1\nb: 2\nc: \xff\n", "a", MB_ERR_INVAL,
			 "not valid YAML (line 3: invalid leading UTF-8 octet)");
}

static void test_set_replaces_in_place(void **state)
{
	(void)state;
	expect_set("mqtt:\n  qos: 1   # comment\n  keepalive: 60\n", "mqtt.qos", "2",
		   "mqtt:\n  qos: 2   # comment\n  keepalive: 60\n");
	/* A character before the value that takes two bytes must not shift the splice. */
	expect_set("gateway: { imei: \"\xc3\xa9\xc3\xa9\" }\nlogger:\n  id: old\n", "logger.id",
		   "new", "gateway: { imei: \"\xc3\xa9\xc3\xa9\" }\nlogger:\n  id: new\n");
	expect_set("\xef\xbb\xbflogger:\n  id: old\n", "logger.id", "x",
		   "\xef\xbb\xbflogger:\n  id: x\n");
	expect_set("mqtt:\r\n  qos: 1\r\n", "mqtt.qos", "0", "mqtt:\r\n  qos: 0\r\n");
	expect_set("mqtt:\n  broker: 'tcp://a'\n", "mqtt.broker", "ssl://b:8884",
		   "mqtt:\n  broker: ssl://b:8884\n");
	expect_set(sample, "modbus.devices[0].start", "5",
		   "# modbridge\n"
		   "gateway:\n"
		   "  imei: \"35729\\u00e9\"   # identity\n"
		   "serial:\n"
		   "  - name: com2\n"
		   "    device: /dev/ttyS1\n"
		   "modbus:\n"
		   "  devices:\n"
		   "    - { id: \"1\", address: 1, start: 5, count: \"1;3\" }\n"
		   "    - id: \"2\"\n"
		   "      address: 192.168.1.20:502\n"
		   "mqtt:\n"
		   "  broker: tcp://localhost   # plain\n"
		   "  password: s3cret\n"
		   "  at_topics:\n"
		   "    - { topic: \"[IMEI]/AT\", response: \"[IMEI]/ATR\" }\n"
		   "logger: { id: ID-1234 }\n");
	/* Empty or null values are filled. */
	expect_set("mqtt:\n  username:\n  qos: 1\n", "mqtt.username", "u",
		   "mqtt:\n  username: u\n  qos: 1\n");
	expect_set("mqtt:\n  username: ~\n", "mqtt.username", "u", "mqtt:\n  username: u\n");
}

static void test_set_quotes_when_needed(void **state)
{
	(void)state;
	expect_set("logger:\n  id: a\n", "logger.id", "[IMEI]/x", "logger:\n  id: \"[IMEI]/x\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "", "logger:\n  id: \"\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "null", "logger:\n  id: \"null\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "a: b # c", "logger:\n  id: \"a: b # c\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "say \"hi\" \\o/",
		   "logger:\n  id: \"say \\\"hi\\\" \\\\o/\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "tab\there",
		   "logger:\n  id: \"tab\\x09here\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "-1", "logger:\n  id: \"-1\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "1;10;55", "logger:\n  id: \"1;10;55\"\n");
	expect_set("logger:\n  id: a\n", "logger.id", "caf\xc3\xa9",
		   "logger:\n  id: \"caf\xc3\xa9\"\n");
}

static void test_set_inserts(void **state)
{
	(void)state;
	/* Into a block mapping, after its last value, at its indentation; comments stay. */
	expect_set("mqtt:\n  broker: tcp://h   # x\n# about logger\nlogger:\n  id: a\n", "mqtt.qos",
		   "0",
		   "mqtt:\n  broker: tcp://h   # x\n  qos: 0\n# about logger\nlogger:\n  id: a\n");
	/* The last value is a nested list: the new key goes after all of it. */
	expect_set("mqtt:\n  at_topics:\n    - topic: a\n      response: b\nlogger: {}\n",
		   "mqtt.qos", "2",
		   "mqtt:\n  at_topics:\n    - topic: a\n      response: b\n  qos: 2\nlogger: {}\n");
	/* Into a flow mapping, and into an empty one. */
	expect_set("logger: { id: a }\n", "logger.topic", "t/x", "logger: { id: a, topic: t/x }\n");
	expect_set("logger: {}\n", "logger.topic", "t", "logger: { topic: t }\n");
	expect_set(sample, "modbus.devices[1].period", "30s",
		   "# modbridge\n"
		   "gateway:\n"
		   "  imei: \"35729\\u00e9\"   # identity\n"
		   "serial:\n"
		   "  - name: com2\n"
		   "    device: /dev/ttyS1\n"
		   "modbus:\n"
		   "  devices:\n"
		   "    - { id: \"1\", address: 1, start: \"1;10\", count: \"1;3\" }\n"
		   "    - id: \"2\"\n"
		   "      address: 192.168.1.20:502\n"
		   "      period: 30s\n"
		   "mqtt:\n"
		   "  broker: tcp://localhost   # plain\n"
		   "  password: s3cret\n"
		   "  at_topics:\n"
		   "    - { topic: \"[IMEI]/AT\", response: \"[IMEI]/ATR\" }\n"
		   "logger: { id: ID-1234 }\n");
	/* A missing section is created at the end of the top level. */
	expect_set("mqtt:\n  qos: 1\n", "remote.allow_writes", "true",
		   "mqtt:\n  qos: 1\nremote:\n  allow_writes: true\n");
	expect_set("mqtt:\n  qos: 1", "remote.allow_writes", "true",
		   "mqtt:\n  qos: 1\nremote:\n  allow_writes: true");
	expect_set("mqtt:\r\n  qos: 1\r\n", "mqtt.keepalive", "30",
		   "mqtt:\r\n  qos: 1\n  keepalive: 30\r\n");
	/* An empty section is filled. */
	expect_set("remote:\nmqtt: {}\n", "remote.allow_reboot", "yes",
		   "remote:\n  allow_reboot: yes\nmqtt: {}\n");
	expect_set("remote:   # permissions\nmqtt: {}\n", "remote.allow_reboot", "yes",
		   "remote:   # permissions\n  allow_reboot: yes\nmqtt: {}\n");
	expect_set("remote: ~\n", "remote.allow_reboot", "yes", "remote:\n  allow_reboot: yes\n");
	expect_set("x: { remote: ~ }\n", "x.remote.a", "1", "x: { remote: { a: 1 } }\n");
	/* An empty file gets its first section. */
	expect_set("", "mqtt.broker", "tcp://h", "mqtt:\n  broker: tcp://h\n");
	expect_set("# only a comment\n", "mqtt.qos", "1", "# only a comment\nmqtt:\n  qos: 1\n");
	/* After a block scalar, which ends with its line break. */
	expect_set("a:\n  b: |\n    text\nc: 1\n", "a.d", "2",
		   "a:\n  b: |\n    text\n  d: 2\nc: 1\n");
}

static void test_set_refuses(void **state)
{
	(void)state;
	expect_set_fails(sample, "mqtt", "x", "mqtt is a section");
	expect_set_fails(sample, "mqtt.at_topics", "x", "is a list");
	expect_set_fails(sample, "modbus.devices[5].id", "x", "has 2 entries");
	expect_set_fails(sample, "mqtt.other_list[0].x", "x", "no list 'other_list'");
	expect_set_fails("a:\n  b: |\n    text\n", "a.b", "x", "block");
	expect_set_fails("a: &v 1\nb: *v\n", "b", "x", "alias");
	expect_set_fails("a: 1\n", "a.b", "x", "a is a value, not a section");
	expect_set_fails("- 1\n", "a", "x", "not a mapping");
	expect_set_fails("a: [\n", "a", "x", "not valid YAML");
	expect_set_fails("a: 1\n", "a", NULL, "no value");
}

static void test_secrets_and_keys(void **state)
{
	char err[200];

	(void)state;
	assert_true(confedit_is_secret("mqtt.password"));
	assert_true(confedit_is_secret("password"));
	assert_true(confedit_is_secret("x.api_token"));
	assert_true(confedit_is_secret("mqtt.Password"));
	assert_false(confedit_is_secret("mqtt.key_file"));
	assert_false(confedit_is_secret("mqtt.username"));
	/* The send modes' credentials (issue 11), and http.headers that carry one. */
	assert_true(confedit_is_secret("http.password"));
	assert_true(confedit_is_secret("http.bearer_token"));
	assert_true(confedit_is_secret("ftp.password"));
	assert_true(confedit_is_secret("Authorization"));
	assert_true(confedit_is_secret("X-Api-Key"));
	assert_true(confedit_is_secret("apikey"));
	assert_false(confedit_is_secret("http.username"));
	assert_false(confedit_is_secret("ftp.key_file"));
	assert_false(confedit_is_secret("X-Gateway"));
	assert_false(confedit_is_secret(NULL));
	assert_int_equal(confedit_check_key("modbus.devices[10].period", err, sizeof(err)), 0);
	assert_int_equal(confedit_check_key("a.b.c.d.e.f.g.h.i", err, sizeof(err)), MB_ERR_INVAL);
	assert_int_equal(confedit_check_key("a[99999999]", err, sizeof(err)), MB_ERR_INVAL);
	assert_int_equal(confedit_check_key("a]", err, sizeof(err)), MB_ERR_INVAL);
}

static void test_dump_redacted(void **state)
{
	char err[200], *out = NULL, *v = NULL;

	(void)state;
	assert_int_equal(confedit_dump_redacted(sample, strlen(sample), &out, err, sizeof(err)), 0);
	assert_null(strstr(out, "s3cret"));
	assert_null(strstr(out, "# plain")); /* comments are left out */
	assert_non_null(strstr(out, "password: '***'"));
	/* The dump is YAML holding the same values. */
	assert_int_equal(confedit_get(out, strlen(out), "modbus.devices[0].start", &v, err,
				      sizeof(err)),
			 0);
	assert_string_equal(v, "1;10");
	free(v);
	assert_int_equal(confedit_get(out, strlen(out), "gateway.imei", &v, err, sizeof(err)), 0);
	assert_string_equal(v, "35729\xc3\xa9");
	free(v);
	free(out);

	assert_int_equal(confedit_dump_redacted("", 0, &out, err, sizeof(err)), 0);
	assert_string_equal(out, "");
	free(out);
	const char nested[] = "a:\n  password: [1, 2]\n";
	assert_int_equal(confedit_dump_redacted(nested, strlen(nested), &out, err, sizeof(err)), 0);
	assert_non_null(strstr(out, "password: '***'"));
	free(out);
	/* GETCONFIG in http mode: the bearer token and a credential in a header are hidden. */
	const char http[] = "http:\n  url: https://c.example/in\n  bearer_token: t0k\n"
			    "  headers:\n    Authorization: Basic czNjcmV0\n    X-Gateway: gw1\n";
	assert_int_equal(confedit_dump_redacted(http, strlen(http), &out, err, sizeof(err)), 0);
	assert_null(strstr(out, "t0k"));
	assert_null(strstr(out, "czNjcmV0"));
	assert_non_null(strstr(out, "gw1"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_set_replaces_in_place),
		cmocka_unit_test(test_set_quotes_when_needed),
		cmocka_unit_test(test_set_inserts),
		cmocka_unit_test(test_set_refuses),
		cmocka_unit_test(test_secrets_and_keys),
		cmocka_unit_test(test_dump_redacted),
	};
	return cmocka_run_group_tests_name("confedit", tests, NULL, NULL);
}
