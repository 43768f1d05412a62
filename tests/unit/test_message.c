/*
 * test_message.c - the JSON contract: the router's two example messages, byte for byte,
 * plus unix time stamps, ERR messages and bit reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "message.h"
#include "test_helpers.h"

#define TS_PLC1 1657879741000LL /* 2022-07-15T10:09:01Z */
#define TS_PLC2 1657880042000LL /* 2022-07-15T10:14:02Z */

static struct block plc1_blocks[] = {{1, 1},   {10, 3},  {55, 2},  {69, 2},  {72, 9}, {100, 10},
				     {120, 5}, {130, 4}, {152, 3}, {160, 7}, {170, 1}};
static struct block plc2_blocks[] = {{10, 5}};

static struct device_config plc1 = {
	.id = "1",
	.address_text = "1",
	.transport = TRANSPORT_RTU,
	.slave = 1,
	.function = 3,
	.blocks = plc1_blocks,
	.block_count = 11,
	.period_ms = 600000,
	.logger = true,
};
static struct device_config plc2 = {
	.id = "2",
	.address_text = "2",
	.transport = TRANSPORT_RTU,
	.slave = 2,
	.function = 3,
	.blocks = plc2_blocks,
	.block_count = 1,
	.period_ms = 600000,
	.logger = true,
};

static const struct message_context seed_ctx = {
	.imei = "357299070082380",
	.logger_id = "ID-1234",
	.time_format = TIME_ISO8601,
};

static void assert_matches_golden(const char *json, const char *golden)
{
	char *expected = read_text_file(testdata_path(golden));
	assert_non_null(expected);
	assert_string_equal(json, expected);
	free(expected);
}

/* PLC1: 11 blocks whose registers hold their own address, as in the note. */
static void seed_plc1_is_byte_identical(void **state)
{
	(void)state;
	uint16_t values[47];
	size_t n = 0;
	for (size_t b = 0; b < 11; b++)
		for (uint16_t k = 0; k < plc1_blocks[b].count; k++)
			values[n++] = (uint16_t)(plc1_blocks[b].start + k);
	assert_int_equal(n, blocks_total(plc1_blocks, 11));
	struct reading r = {.device = &plc1, .ts_ms = TS_PLC1, .values = values, .value_count = n};
	char *json = message_encode(&r, &seed_ctx);
	assert_non_null(json);
	assert_matches_golden(json, "json/seed_plc1.json");
	free(json);
}

static void seed_plc2_is_byte_identical(void **state)
{
	(void)state;
	uint16_t values[] = {10, 11, 12, 0, 0};
	struct reading r = {.device = &plc2,
			    .ts_ms = TS_PLC2 + 999,
			    .values = values,
			    .value_count = 5};
	char *json = message_encode(&r, &seed_ctx);
	assert_non_null(json);
	/* Milliseconds are truncated, never rounded up into the next second. */
	assert_matches_golden(json, "json/seed_plc2.json");
	free(json);
}

static void unix_time_stamp_is_seconds_text(void **state)
{
	(void)state;
	uint16_t values[] = {10, 11, 12, 0, 0};
	struct message_context ctx = seed_ctx;
	ctx.time_format = TIME_UNIX;
	struct reading r = {.device = &plc2, .ts_ms = TS_PLC2, .values = values, .value_count = 5};
	char *json = message_encode(&r, &ctx);
	assert_matches_golden(json, "json/plc2_unix.json");
	free(json);
}

static void failed_read_has_err_and_no_v(void **state)
{
	(void)state;
	struct reading r = {.device = &plc1, .ts_ms = TS_PLC1};
	snprintf(r.error, sizeof(r.error), "block 100+10: exception 2 illegal data address");
	char *json = message_encode(&r, &seed_ctx);
	assert_matches_golden(json, "json/plc1_error.json");
	assert_null(strstr(json, "\"V\""));
	free(json);
}

static void coils_over_tcp(void **state)
{
	(void)state;
	struct block blocks[] = {{0, 4}};
	struct device_config dev = {
		.id = "coils",
		.address_text = "127.0.0.1:5020",
		.transport = TRANSPORT_TCP,
		.host = "127.0.0.1",
		.port = 5020,
		.slave = 1,
		.function = 1,
		.blocks = blocks,
		.block_count = 1,
		.period_ms = 1000,
		.logger = true,
	};
	uint16_t bits[] = {1, 0, 1, 1};
	struct message_context ctx = {.imei = "357299070082380",
				      .logger_id = "",
				      .time_format = TIME_ISO8601};
	struct reading r = {.device = &dev, .ts_ms = TS_PLC2, .values = bits, .value_count = 4};
	char *json = message_encode(&r, &ctx);
	assert_matches_golden(json, "json/coils_tcp.json");
	free(json);
}

/* Strings from the config are escaped by the JSON library, not pasted in. */
static void special_characters_are_escaped(void **state)
{
	(void)state;
	struct device_config dev = plc2;
	dev.id = "meter \"A\"\\1";
	uint16_t values[] = {65535, 0, 1, 2, 3};
	struct reading r = {.device = &dev, .ts_ms = TS_PLC2, .values = values, .value_count = 5};
	char *json = message_encode(&r, &seed_ctx);
	assert_non_null(strstr(json, "\"ID\":\"meter \\\"A\\\"\\\\1\""));
	assert_non_null(strstr(json, "\"V\":[65535,0,1,2,3]"));
	free(json);
}

/* A typed device: V holds the decoded values, NX still counts registers, PX indexes V. */
static void float32_blocks_golden(void **state)
{
	(void)state;
	struct block blocks[] = {{0, 4}, {100, 2}};
	struct device_config dev = {
		.id = "energy",
		.address_text = "3",
		.transport = TRANSPORT_RTU,
		.slave = 3,
		.function = 4,
		.blocks = blocks,
		.block_count = 2,
		.type = REG_TYPE_FLOAT32,
		.order = REG_ORDER_CDAB,
		.period_ms = 60000,
		.logger = true,
	};
	uint16_t regs[] = {0xE979, 0x42F6, 0x0000, 0xBFC0, 0x0000, 0x7FC0};
	struct decoded_value dec[3];
	assert_int_equal(decode_registers(dev.type, dev.order, regs, 6, dec), 3);
	struct reading r = {.device = &dev,
			    .ts_ms = TS_PLC1,
			    .values = regs,
			    .value_count = 6,
			    .decoded = dec,
			    .decoded_count = 3};
	char *json = message_encode(&r, &seed_ctx);
	assert_non_null(json);
	/* 123.456, -1.5, and a NaN, which JSON can only say as null */
	assert_matches_golden(json, "json/typed_float32.json");
	free(json);

	/* A failed typed read: the same header, ERR, no V. */
	struct reading failed = {.device = &dev, .ts_ms = TS_PLC1};
	snprintf(failed.error, sizeof(failed.error), "timeout");
	json = message_encode(&failed, &seed_ctx);
	assert_non_null(strstr(json, "\"PX\":[0,2],\"ERR\":\"timeout\",\"P\""));
	free(json);
}

/* uint64 above INT64_MAX, one block: N counts registers, V holds one value. The id and
 * the logger id contain the splice marker's characters, which must not confuse it. */
static void uint64_single_block_and_splice(void **state)
{
	(void)state;
	struct block blocks[] = {{10, 4}};
	struct device_config dev = {
		.id = "\"V\":[]",
		.address_text = "192.168.1.20:502",
		.transport = TRANSPORT_TCP,
		.slave = 1,
		.function = 3,
		.blocks = blocks,
		.block_count = 1,
		.type = REG_TYPE_UINT64,
		.order = REG_ORDER_ABCD,
		.period_ms = 60000,
	};
	uint16_t regs[] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE};
	struct decoded_value dec[1];
	decode_value(dev.type, dev.order, regs, &dec[0]);
	struct message_context ctx = seed_ctx;
	ctx.logger_id = "x\"V\":[]";
	struct reading r = {.device = &dev,
			    .ts_ms = TS_PLC2,
			    .values = regs,
			    .value_count = 4,
			    .decoded = dec,
			    .decoded_count = 1};
	char *json = message_encode(&r, &ctx);
	assert_non_null(json);
	assert_string_equal(
		json,
		"{\"IMEI\":\"357299070082380\",\"TYPE\":\"MODB\",\"TS\":\"2022-07-15T10:14:02Z\","
		"\"ID\":\"\\\"V\\\":[]\",\"A\":\"192.168.1.20:502\",\"ST\":\"10\",\"N\":\"4\","
		"\"V\":[18446744073709551614],\"P\":\"x\\\"V\\\":[]\"}");
	free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seed_plc1_is_byte_identical),
		cmocka_unit_test(seed_plc2_is_byte_identical),
		cmocka_unit_test(unix_time_stamp_is_seconds_text),
		cmocka_unit_test(failed_read_has_err_and_no_v),
		cmocka_unit_test(coils_over_tcp),
		cmocka_unit_test(special_characters_are_escaped),
		cmocka_unit_test(float32_blocks_golden),
		cmocka_unit_test(uint64_single_block_and_splice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
