/*
 * test_forward_batch.c - how readings are cut into messages (forward_batch.c): array
 * bounds by count and by bytes, an oversized reading alone, script messages with their own
 * destination or text alone, and the array's exact bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward_batch.h"

static struct forward_part part(const char *payload, const char *topic)
{
	return (struct forward_part){.payload = payload, .len = strlen(payload), .topic = topic};
}

static void without_array_mode_each_reading_is_a_message(void **state)
{
	(void)state;
	struct forward_options o = {.window = 4, .array = false};
	struct forward_part p[] = {part("{\"a\":1}", NULL), part("{\"b\":2}", NULL)};
	size_t len;
	assert_int_equal(forward_batch_span(&o, p, 2), 1);
	char *text = forward_batch_payload(&o, p, 1, &len);
	assert_ptr_equal(text, p[0].payload); /* no copy */
	assert_int_equal(len, p[0].len);
}

static void arrays_are_bounded_by_count_and_bytes(void **state)
{
	(void)state;
	struct forward_part p[] = {part("{\"a\":1}", NULL), part("{\"b\":2}", NULL),
				   part("{\"c\":3}", NULL), part("{\"d\":4}", NULL)};
	struct forward_options o = {.window = 4,
				    .array = true,
				    .array_max_count = 3,
				    .array_max_bytes = 1000};
	assert_int_equal(forward_batch_span(&o, p, 4), 3);
	assert_int_equal(forward_batch_span(&o, p, 2), 2);
	/* [{"a":1},{"b":2}] is 17 bytes: a bound of 17 takes two, 16 only one. */
	o.array_max_count = 50;
	o.array_max_bytes = 17;
	assert_int_equal(forward_batch_span(&o, p, 4), 2);
	o.array_max_bytes = 16;
	assert_int_equal(forward_batch_span(&o, p, 4), 1);
	/* A reading larger than the bound still goes, alone. */
	o.array_max_bytes = 3;
	assert_int_equal(forward_batch_span(&o, p, 4), 1);
	size_t len;
	char *text = forward_batch_payload(&o, p, 1, &len);
	assert_string_equal(text, "[{\"a\":1}]");
	assert_int_equal(len, 9);
	free(text);
}

static void script_messages_go_alone(void **state)
{
	(void)state;
	struct forward_options o = {.window = 4,
				    .array = true,
				    .array_max_count = 50,
				    .array_max_bytes = 65536};
	struct forward_part p[] = {part("{\"a\":1}", NULL), part("{\"b\":2}", NULL),
				   part("{\"t\":1}", "plant/t"), part("line protocol", NULL),
				   part("{\"e\":5}", NULL)};
	size_t len;
	assert_int_equal(forward_batch_span(&o, p, 5), 2); /* stops before the own topic */
	char *text = forward_batch_payload(&o, p, 2, &len);
	assert_string_equal(text, "[{\"a\":1},{\"b\":2}]");
	assert_int_equal(len, strlen(text));
	free(text);
	assert_int_equal(forward_batch_span(&o, p + 2, 3), 1); /* its own topic */
	text = forward_batch_payload(&o, p + 2, 1, &len);
	assert_ptr_equal(text, p[2].payload);
	assert_int_equal(forward_batch_span(&o, p + 3, 2), 1); /* text, not an object */
	text = forward_batch_payload(&o, p + 3, 1, &len);
	assert_ptr_equal(text, p[3].payload);
	assert_int_equal(forward_batch_span(&o, p + 4, 1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(without_array_mode_each_reading_is_a_message),
		cmocka_unit_test(arrays_are_bounded_by_count_and_bytes),
		cmocka_unit_test(script_messages_go_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
