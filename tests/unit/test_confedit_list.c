/*
 * test_confedit_list.c - unit tests of confedit_list.c: adding list entries (block and flow
 * lists, a missing list, a null one) and removing keys and entries, with everything else of
 * the file kept byte for byte; and what cannot be done safely is refused.
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

static const char *const names[] = {"id", "address", "period"};
static const char *const values[] = {"m3", "127.0.0.1:502", "10s"};

static void expect_append(const char *text, const char *list, const char *want)
{
	char err[256] = "", *out = NULL;
	size_t len = 0;
	int rc = confedit_append(text, strlen(text), list, names, values, 3, &out, &len, err,
				 sizeof(err));

	if (rc != 0)
		fail_msg("append to %s: %d %s", list, rc, err);
	assert_string_equal(out, want);
	free(out);
}

static void expect_delete(const char *text, const char *key, const char *want)
{
	char err[256] = "", *out = NULL;
	size_t len = 0;
	int rc = confedit_delete(text, strlen(text), key, &out, &len, err, sizeof(err));

	if (rc != 0)
		fail_msg("delete %s: %d %s", key, rc, err);
	assert_string_equal(out, want);
	free(out);
}

static const char block[] = "# devices\n"
			    "modbus:\n"
			    "  devices:\n"
			    "    - { id: m1, address: 1 }   # first\n"
			    "    - id: m2\n"
			    "      address: 2\n"
			    "mqtt:\n"
			    "  broker: tcp://x   # plain\n"
			    "  password: pw\n"
			    "  qos: 1\n";

static void test_append(void **state)
{
	(void)state;
	expect_append(block, "modbus.devices",
		      "# devices\n"
		      "modbus:\n"
		      "  devices:\n"
		      "    - { id: m1, address: 1 }   # first\n"
		      "    - id: m2\n"
		      "      address: 2\n"
		      "    - id: m3\n"
		      "      address: 127.0.0.1:502\n"
		      "      period: 10s\n"
		      "mqtt:\n"
		      "  broker: tcp://x   # plain\n"
		      "  password: pw\n"
		      "  qos: 1\n");
	/* A missing list, and a missing section. */
	expect_append("mqtt:\n  qos: 1\n", "modbus.devices",
		      "mqtt:\n  qos: 1\nmodbus:\n  devices:\n    - id: m3\n"
		      "      address: 127.0.0.1:502\n      period: 10s\n");
	expect_append("modbus:\n  enabled: true\n", "modbus.devices",
		      "modbus:\n  enabled: true\n  devices:\n    - id: m3\n"
		      "      address: 127.0.0.1:502\n      period: 10s\n");
	/* An empty list written as null, and flow lists. */
	expect_append("modbus:\n  devices:   # none yet\n", "modbus.devices",
		      "modbus:\n  devices:\n    - id: m3\n      address: 127.0.0.1:502\n"
		      "      period: 10s   # none yet\n");
	expect_append("modbus: { devices: [] }\n", "modbus.devices",
		      "modbus: { devices: [{ id: m3, address: 127.0.0.1:502, period: 10s }] }\n");
	expect_append(
		"modbus:\n  devices: [{ id: a }]\n", "modbus.devices",
		"modbus:\n  devices: [{ id: a }, { id: m3, address: 127.0.0.1:502, period: 10s }]\n");
	expect_append("", "modbus.devices",
		      "modbus:\n  devices:\n    - id: m3\n      address: 127.0.0.1:502\n"
		      "      period: 10s\n");
}

static void test_append_refuses(void **state)
{
	char err[256] = "", *out = NULL;
	size_t len = 0;
	static const char *const bad[] = {"a.b"};

	(void)state;
	assert_int_equal(confedit_append(block, strlen(block), "mqtt.qos", names, values, 3, &out,
					 &len, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_non_null(strstr(err, "not a list"));
	assert_int_equal(confedit_append(block, strlen(block), "modbus.devices[0]", names, values,
					 3, &out, &len, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_int_equal(confedit_append(block, strlen(block), "modbus.devices", bad, values, 1,
					 &out, &len, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_null(out);
}

static void test_delete(void **state)
{
	(void)state;
	expect_delete(block, "modbus.devices[1]",
		      "# devices\n"
		      "modbus:\n"
		      "  devices:\n"
		      "    - { id: m1, address: 1 }   # first\n"
		      "mqtt:\n"
		      "  broker: tcp://x   # plain\n"
		      "  password: pw\n"
		      "  qos: 1\n");
	expect_delete(block, "modbus.devices[0]",
		      "# devices\n"
		      "modbus:\n"
		      "  devices:\n"
		      "    - id: m2\n"
		      "      address: 2\n"
		      "mqtt:\n"
		      "  broker: tcp://x   # plain\n"
		      "  password: pw\n"
		      "  qos: 1\n");
	expect_delete(block, "mqtt.password",
		      "# devices\n"
		      "modbus:\n"
		      "  devices:\n"
		      "    - { id: m1, address: 1 }   # first\n"
		      "    - id: m2\n"
		      "      address: 2\n"
		      "mqtt:\n"
		      "  broker: tcp://x   # plain\n"
		      "  qos: 1\n");
	expect_delete("a:\n  b:\n    c: 1\n    d: 2\n  e: 3\n", "a.b", "a:\n  e: 3\n");
}

static void test_delete_refuses(void **state)
{
	char err[256] = "", *out = NULL;
	size_t len = 0;
	const char *flow = "mqtt: { qos: 1, password: x }\n";

	(void)state;
	assert_int_equal(confedit_delete(block, strlen(block), "mqtt.username", &out, &len, err,
					 sizeof(err)),
			 MB_ERR_NOTFOUND);
	assert_int_equal(confedit_delete(flow, strlen(flow), "mqtt.password", &out, &len, err,
					 sizeof(err)),
			 MB_ERR_INVAL);
	assert_non_null(strstr(err, "lines of its own"));
	/* The first key of a list entry shares its line with the dash. */
	assert_int_equal(confedit_delete(block, strlen(block), "modbus.devices[1].id", &out, &len,
					 err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_int_equal(confedit_delete(block, strlen(block), "modbus.devices[5]", &out, &len, err,
					 sizeof(err)),
			 MB_ERR_INVAL);
	assert_null(out);
}

static void test_set_number_list(void **state)
{
	const char *t = "d:\n  start: [1, 10]   # blocks\n";
	char err[256] = "", *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(confedit_set(t, strlen(t), "d.start", "1;10;55", &out, &len, err,
				      sizeof(err)),
			 0);
	assert_string_equal(out, "d:\n  start: \"1;10;55\"   # blocks\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append),          cmocka_unit_test(test_append_refuses),
		cmocka_unit_test(test_delete),          cmocka_unit_test(test_delete_refuses),
		cmocka_unit_test(test_set_number_list),
	};
	return cmocka_run_group_tests_name("confedit_list", tests, NULL, NULL);
}
