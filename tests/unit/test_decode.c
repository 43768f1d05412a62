/*
 * test_decode.c - register data types: every type in every byte order against byte
 * patterns produced independently (Python's struct module, big-endian, then permuted by
 * hand as docs/modbus.md describes), the JSON text of each value, and the edge cases:
 * extreme integers, NaN/Inf as null, float32 printed without double-widening noise.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "decode.h"

struct known {
	enum reg_type type;
	enum reg_order order;
	uint16_t regs[4];
	const char *json;
};

/* Generated with struct.pack('>H|>h|>I|>i|>f|>Q|>q|>d', value) and the four permutations. */
static const struct known known[] = {
	{REG_TYPE_WORD, REG_ORDER_ABCD, {0x1234}, "4660"},
	{REG_TYPE_WORD, REG_ORDER_CDAB, {0x1234}, "4660"},
	{REG_TYPE_WORD, REG_ORDER_BADC, {0x3412}, "4660"},
	{REG_TYPE_WORD, REG_ORDER_DCBA, {0x3412}, "4660"},
	{REG_TYPE_INT16, REG_ORDER_ABCD, {0xFFFE}, "-2"},
	{REG_TYPE_INT16, REG_ORDER_CDAB, {0xFFFE}, "-2"},
	{REG_TYPE_INT16, REG_ORDER_BADC, {0xFEFF}, "-2"},
	{REG_TYPE_INT16, REG_ORDER_DCBA, {0xFEFF}, "-2"},
	{REG_TYPE_UINT32, REG_ORDER_ABCD, {0x1234, 0x5678}, "305419896"},
	{REG_TYPE_UINT32, REG_ORDER_CDAB, {0x5678, 0x1234}, "305419896"},
	{REG_TYPE_UINT32, REG_ORDER_BADC, {0x3412, 0x7856}, "305419896"},
	{REG_TYPE_UINT32, REG_ORDER_DCBA, {0x7856, 0x3412}, "305419896"},
	{REG_TYPE_INT32, REG_ORDER_ABCD, {0xF8A4, 0x32EB}, "-123456789"},
	{REG_TYPE_INT32, REG_ORDER_CDAB, {0x32EB, 0xF8A4}, "-123456789"},
	{REG_TYPE_INT32, REG_ORDER_BADC, {0xA4F8, 0xEB32}, "-123456789"},
	{REG_TYPE_INT32, REG_ORDER_DCBA, {0xEB32, 0xA4F8}, "-123456789"},
	{REG_TYPE_FLOAT32, REG_ORDER_ABCD, {0x42F6, 0xE979}, "123.456"},
	{REG_TYPE_FLOAT32, REG_ORDER_CDAB, {0xE979, 0x42F6}, "123.456"},
	{REG_TYPE_FLOAT32, REG_ORDER_BADC, {0xF642, 0x79E9}, "123.456"},
	{REG_TYPE_FLOAT32, REG_ORDER_DCBA, {0x79E9, 0xF642}, "123.456"},
	{REG_TYPE_UINT64, REG_ORDER_ABCD, {0x0102, 0x0304, 0x0506, 0x0708}, "72623859790382856"},
	{REG_TYPE_UINT64, REG_ORDER_CDAB, {0x0708, 0x0506, 0x0304, 0x0102}, "72623859790382856"},
	{REG_TYPE_UINT64, REG_ORDER_BADC, {0x0201, 0x0403, 0x0605, 0x0807}, "72623859790382856"},
	{REG_TYPE_UINT64, REG_ORDER_DCBA, {0x0807, 0x0605, 0x0403, 0x0201}, "72623859790382856"},
	{REG_TYPE_INT64, REG_ORDER_ABCD, {0xFFFF, 0xFEE0, 0x8E04, 0xFB35}, "-1234567890123"},
	{REG_TYPE_INT64, REG_ORDER_CDAB, {0xFB35, 0x8E04, 0xFEE0, 0xFFFF}, "-1234567890123"},
	{REG_TYPE_INT64, REG_ORDER_BADC, {0xFFFF, 0xE0FE, 0x048E, 0x35FB}, "-1234567890123"},
	{REG_TYPE_INT64, REG_ORDER_DCBA, {0x35FB, 0x048E, 0xE0FE, 0xFFFF}, "-1234567890123"},
	{REG_TYPE_FLOAT64, REG_ORDER_ABCD, {0xBFF3, 0xC0CA, 0x2A5B, 0x1D5D}, "-1.2345678"},
	{REG_TYPE_FLOAT64, REG_ORDER_CDAB, {0x1D5D, 0x2A5B, 0xC0CA, 0xBFF3}, "-1.2345678"},
	{REG_TYPE_FLOAT64, REG_ORDER_BADC, {0xF3BF, 0xCAC0, 0x5B2A, 0x5D1D}, "-1.2345678"},
	{REG_TYPE_FLOAT64, REG_ORDER_DCBA, {0x5D1D, 0x5B2A, 0xCAC0, 0xF3BF}, "-1.2345678"},
};

static void json_of(enum reg_type t, enum reg_order o, const uint16_t *regs, char *buf)
{
	struct decoded_value v;
	decode_value(t, o, regs, &v);
	assert_true(decode_format_json(&v, buf, DECODE_JSON_MAX) > 0);
}

static void every_type_in_every_order(void **state)
{
	(void)state;
	char buf[DECODE_JSON_MAX];
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		json_of(known[i].type, known[i].order, known[i].regs, buf);
		if (strcmp(buf, known[i].json) != 0)
			fail_msg("%s %s: got %s, expected %s", decode_type_name(known[i].type),
				 decode_order_name(known[i].order), buf, known[i].json);
	}
}

static void widths_and_names(void **state)
{
	(void)state;
	assert_int_equal(decode_width(REG_TYPE_WORD), 1);
	assert_int_equal(decode_width(REG_TYPE_INT16), 1);
	assert_int_equal(decode_width(REG_TYPE_UINT32), 2);
	assert_int_equal(decode_width(REG_TYPE_INT32), 2);
	assert_int_equal(decode_width(REG_TYPE_FLOAT32), 2);
	assert_int_equal(decode_width(REG_TYPE_UINT64), 4);
	assert_int_equal(decode_width(REG_TYPE_INT64), 4);
	assert_int_equal(decode_width(REG_TYPE_FLOAT64), 4);
	assert_string_equal(decode_type_name(REG_TYPE_FLOAT64), "float64");
	assert_string_equal(decode_order_name(REG_ORDER_CDAB), "CDAB");
}

static void extreme_integers(void **state)
{
	(void)state;
	char buf[DECODE_JSON_MAX];
	const uint16_t ones[4] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
	const uint16_t min64[4] = {0x8000, 0, 0, 0};
	const uint16_t min32[2] = {0x8000, 0};
	const uint16_t max32[2] = {0x7FFF, 0xFFFF};

	json_of(REG_TYPE_UINT64, REG_ORDER_ABCD, ones, buf);
	assert_string_equal(buf, "18446744073709551615"); /* above INT64_MAX: not via jansson */
	json_of(REG_TYPE_INT64, REG_ORDER_ABCD, ones, buf);
	assert_string_equal(buf, "-1");
	json_of(REG_TYPE_INT64, REG_ORDER_ABCD, min64, buf);
	assert_string_equal(buf, "-9223372036854775808");
	json_of(REG_TYPE_INT32, REG_ORDER_ABCD, min32, buf);
	assert_string_equal(buf, "-2147483648");
	json_of(REG_TYPE_INT32, REG_ORDER_ABCD, max32, buf);
	assert_string_equal(buf, "2147483647");
	json_of(REG_TYPE_UINT32, REG_ORDER_ABCD, ones, buf);
	assert_string_equal(buf, "4294967295");
	json_of(REG_TYPE_WORD, REG_ORDER_ABCD, ones, buf);
	assert_string_equal(buf, "65535");
	json_of(REG_TYPE_INT16, REG_ORDER_ABCD, min32, buf);
	assert_string_equal(buf, "-32768");
}

static void reals_are_short_and_stay_reals(void **state)
{
	(void)state;
	char buf[DECODE_JSON_MAX];
	const uint16_t one_f[2] = {0x3F80, 0};                      /* 1.0f */
	const uint16_t tenth_f[2] = {0x3DCC, 0xCCCD};               /* 0.1f */
	const uint16_t neg_zero_f[2] = {0x8000, 0};                 /* -0.0f */
	const uint16_t tiny_f[2] = {0x0000, 0x0001};                /* smallest subnormal float */
	const uint16_t big_d[4] = {0x7FEF, 0xFFFF, 0xFFFF, 0xFFFF}; /* DBL_MAX */
	const uint16_t third_d[4] = {0x3FD5, 0x5555, 0x5555, 0x5555};

	json_of(REG_TYPE_FLOAT32, REG_ORDER_ABCD, one_f, buf);
	assert_string_equal(buf, "1.0");
	json_of(REG_TYPE_FLOAT32, REG_ORDER_ABCD, tenth_f, buf);
	assert_string_equal(buf, "0.1"); /* not 0.100000001490116 */
	json_of(REG_TYPE_FLOAT32, REG_ORDER_ABCD, neg_zero_f, buf);
	assert_string_equal(buf, "-0.0");
	json_of(REG_TYPE_FLOAT32, REG_ORDER_ABCD, tiny_f, buf);
	assert_string_equal(buf, "1e-45");
	json_of(REG_TYPE_FLOAT64, REG_ORDER_ABCD, big_d, buf);
	assert_string_equal(buf, "1.7976931348623157e+308");
	json_of(REG_TYPE_FLOAT64, REG_ORDER_ABCD, third_d, buf);
	assert_string_equal(buf, "0.3333333333333333");
}

static void non_finite_is_null(void **state)
{
	(void)state;
	char buf[DECODE_JSON_MAX];
	const uint16_t nan_f[2] = {0x7FC0, 0};
	const uint16_t inf_f[2] = {0x7F80, 0};
	const uint16_t ninf_d[4] = {0xFFF0, 0, 0, 0};
	const uint16_t nan_d[4] = {0x7FF8, 0, 0, 1};

	json_of(REG_TYPE_FLOAT32, REG_ORDER_ABCD, nan_f, buf);
	assert_string_equal(buf, "null");
	json_of(REG_TYPE_FLOAT32, REG_ORDER_ABCD, inf_f, buf);
	assert_string_equal(buf, "null");
	json_of(REG_TYPE_FLOAT64, REG_ORDER_ABCD, ninf_d, buf);
	assert_string_equal(buf, "null");
	json_of(REG_TYPE_FLOAT64, REG_ORDER_ABCD, nan_d, buf);
	assert_string_equal(buf, "null");
}

static void decode_registers_counts_values(void **state)
{
	(void)state;
	/* Two uint32 (CDAB) back to back: 1 and 65536. */
	const uint16_t regs[4] = {0x0001, 0x0000, 0x0000, 0x0001};
	struct decoded_value out[2];
	memset(out, 0xAB, sizeof(out));
	assert_int_equal(decode_registers(REG_TYPE_UINT32, REG_ORDER_CDAB, regs, 4, out), 2);
	assert_int_equal(out[0].kind, DECODED_UINT);
	assert_int_equal(out[0].v.u, 1);
	assert_int_equal(out[1].v.u, 65536);
	/* Not a whole number of values: nothing decoded, nothing written. */
	struct decoded_value untouched = {DECODED_INT, {.i = 42}};
	assert_int_equal(decode_registers(REG_TYPE_FLOAT64, REG_ORDER_ABCD, regs, 3, &untouched),
			 0);
	assert_int_equal(untouched.v.i, 42);
}

static void small_buffer_is_refused(void **state)
{
	(void)state;
	char buf[4];
	struct decoded_value v = {DECODED_INT, {.i = -12345}};
	assert_int_equal(decode_format_json(&v, buf, sizeof(buf)), -1);
	v.kind = DECODED_FLOAT64;
	v.v.f = 1.5;
	assert_int_equal(decode_format_json(&v, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "1.5");
	v.v.f = 2.0; /* "2.0" needs 4 bytes with the NUL */
	assert_int_equal(decode_format_json(&v, buf, sizeof(buf)), 3);
	v.v.f = 20.0;
	assert_int_equal(decode_format_json(&v, buf, sizeof(buf)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_type_in_every_order),
		cmocka_unit_test(widths_and_names),
		cmocka_unit_test(extreme_integers),
		cmocka_unit_test(reals_are_short_and_stay_reals),
		cmocka_unit_test(non_finite_is_null),
		cmocka_unit_test(decode_registers_counts_values),
		cmocka_unit_test(small_buffer_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
