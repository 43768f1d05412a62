/*
 * test_blocks.c - unit tests of blocks.c: the router's "Start @" / "Num word/bit" lists.
 *
 * Checks parsing of the semicolon lists (values and exact error texts), building blocks
 * against the per-function protocol limits, and the total count of the seed scenario.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blocks.h"
#include "error.h"

#define SEED_START "1;10;55;69;72;100;120;130;152;160;170"
#define SEED_COUNT "1;3;2;2;9;10;5;4;3;7;1"

/* Parses text and expects failure with exactly the message want; out must stay untouched. */
static void expect_parse_error(const char *text, const char *want)
{
	uint32_t sentinel[1];
	uint32_t *vals = sentinel;
	size_t n = 12345;
	char err[200] = "";

	assert_int_equal(blocks_parse_list(text, &vals, &n, err, sizeof(err)), MB_ERR_INVAL);
	assert_string_equal(err, want);
	assert_ptr_equal(vals, sentinel);
	assert_int_equal(n, 12345);
}

static void test_parse_router_list(void **state)
{
	static const uint32_t want[] = {1, 10, 55};
	uint32_t *vals = NULL;
	size_t n = 0;
	char err[128];

	(void)state;
	assert_int_equal(blocks_parse_list("1;10;55", &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(vals, want, sizeof(want));
	free(vals);
}

static void test_parse_single_number(void **state)
{
	uint32_t *vals = NULL;
	size_t n = 0;
	char err[128];

	(void)state;
	assert_int_equal(blocks_parse_list("10", &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vals[0], 10);
	free(vals);

	assert_int_equal(blocks_parse_list("0", &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vals[0], 0);
	free(vals);

	assert_int_equal(blocks_parse_list("65535", &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vals[0], 65535);
	free(vals);
}

static void test_parse_spaces(void **state)
{
	uint32_t *vals = NULL;
	size_t n = 0;
	char err[128];

	(void)state;
	assert_int_equal(blocks_parse_list(" 1 ; 2 ", &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(vals[0], 1);
	assert_int_equal(vals[1], 2);
	free(vals);

	assert_int_equal(blocks_parse_list("\t7;\t8\t", &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(vals[0], 7);
	assert_int_equal(vals[1], 8);
	free(vals);
}

static void test_parse_seed(void **state)
{
	static const uint32_t want[] = {1, 10, 55, 69, 72, 100, 120, 130, 152, 160, 170};
	uint32_t *vals = NULL;
	size_t n = 0;
	char err[128];

	(void)state;
	assert_int_equal(blocks_parse_list(SEED_START, &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 11);
	assert_memory_equal(vals, want, sizeof(want));
	free(vals);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_parse_error("", "empty list (expected numbers separated by ';', such as 1;10;55)");
	expect_parse_error("   ",
			   "empty list (expected numbers separated by ';', such as 1;10;55)");
	expect_parse_error("1;;3", "'1;;3': empty entry 2 (expected a number 0..65535)");
	expect_parse_error("1;2;", "'1;2;': empty entry 3 (expected a number 0..65535)");
	expect_parse_error(";1", "';1': empty entry 1 (expected a number 0..65535)");
	expect_parse_error("a", "'a': entry 1 ('a') is not a number (allowed: 0..65535)");
	expect_parse_error("1;2x;3",
			   "'1;2x;3': entry 2 ('2x') is not a number (allowed: 0..65535)");
	expect_parse_error("1 2", "'1 2': entry 1 ('1 2') is not a number (allowed: 0..65535)");
	expect_parse_error("1,2", "'1,2': entry 1 ('1,2') is not a number (allowed: 0..65535)");
	expect_parse_error("5;-1", "'5;-1': entry 2 ('-1') is negative (allowed: 0..65535)");
	expect_parse_error("65536", "'65536': entry 1 (65536) is above 65535");
	expect_parse_error(
		"1;99999999999999999999999",
		"'1;99999999999999999999999': entry 2 (99999999999999999999999) is above 65535");
}

static void test_parse_too_many_entries(void **state)
{
	/* BLOCKS_MAX_ENTRIES numbers are fine, one more is not. */
	size_t len = (BLOCKS_MAX_ENTRIES + 1) * 2;
	char *text = malloc(len + 1);
	uint32_t *vals = NULL;
	size_t n = 0;
	char err[128];
	char want[128];

	(void)state;
	assert_non_null(text);
	for (size_t i = 0; i < BLOCKS_MAX_ENTRIES; i++)
		memcpy(text + 2 * i, "1;", 2);
	text[2 * BLOCKS_MAX_ENTRIES - 1] = '\0';
	assert_int_equal(blocks_parse_list(text, &vals, &n, err, sizeof(err)), 0);
	assert_int_equal(n, BLOCKS_MAX_ENTRIES);
	free(vals);

	text[2 * BLOCKS_MAX_ENTRIES - 1] = ';';
	text[2 * BLOCKS_MAX_ENTRIES] = '1';
	text[2 * BLOCKS_MAX_ENTRIES + 1] = '\0';
	vals = NULL;
	assert_int_equal(blocks_parse_list(text, &vals, &n, err, sizeof(err)), MB_ERR_INVAL);
	snprintf(want, sizeof(want), "%d entries (allowed: at most %d)", BLOCKS_MAX_ENTRIES + 1,
		 BLOCKS_MAX_ENTRIES);
	assert_string_equal(err, want);
	assert_null(vals);
	free(text);
}

static void test_parse_null(void **state)
{
	uint32_t *vals = NULL;
	size_t n = 0;
	char err[64];

	(void)state;
	assert_int_equal(blocks_parse_list(NULL, &vals, &n, err, sizeof(err)), MB_ERR_INVAL);
	/* A NULL err buffer is allowed. */
	assert_int_equal(blocks_parse_list("x", &vals, &n, NULL, 0), MB_ERR_INVAL);
	assert_null(vals);
}

/* Builds from two list texts; returns blocks_build's result. */
static int build(const char *start, const char *count, int function, struct block **out, size_t *n,
		 char *err, size_t errlen)
{
	uint32_t *s = NULL, *c = NULL;
	size_t ns = 0, nc = 0;
	int rc;

	assert_int_equal(blocks_parse_list(start, &s, &ns, err, errlen), 0);
	assert_int_equal(blocks_parse_list(count, &c, &nc, err, errlen), 0);
	rc = blocks_build(s, ns, c, nc, function, out, n, err, errlen);
	free(s);
	free(c);
	return rc;
}

static void expect_build_error(const char *start, const char *count, int function, const char *want)
{
	struct block sentinel[1];
	struct block *blocks = sentinel;
	size_t n = 777;
	char err[200] = "";

	assert_int_equal(build(start, count, function, &blocks, &n, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_string_equal(err, want);
	assert_ptr_equal(blocks, sentinel);
	assert_int_equal(n, 777);
}

static void test_build_seed(void **state)
{
	static const struct block want[] = {
		{1, 1},   {10, 3},  {55, 2},  {69, 2},  {72, 9},  {100, 10},
		{120, 5}, {130, 4}, {152, 3}, {160, 7}, {170, 1},
	};
	struct block *blocks = NULL;
	size_t n = 0;
	char err[128];

	(void)state;
	assert_int_equal(build(SEED_START, SEED_COUNT, 3, &blocks, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 11);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(blocks[i].start, want[i].start);
		assert_int_equal(blocks[i].count, want[i].count);
	}
	assert_int_equal(blocks_total(blocks, n), 47);
	free(blocks);
}

static void test_build_length_mismatch(void **state)
{
	(void)state;
	expect_build_error(SEED_START, "1;3;2", 3, "count: 3 entries but start has 11");
	expect_build_error("1;2", "5", 3, "count: 1 entry but start has 2");
}

static void test_build_zero_count(void **state)
{
	(void)state;
	expect_build_error("1;2", "1;0", 3, "count: entry 2 is 0 (allowed: 1..65535 registers)");
	expect_build_error("0", "0", 2, "count: entry 1 is 0 (allowed: 1..65535 bits)");
}

/* Blocks longer than one request allows are accepted: the planner splits them. */
static void test_build_limits(void **state)
{
	struct block *blocks = NULL;
	size_t n = 0;
	char err[200];

	(void)state;
	assert_int_equal(build("0", "2001", 1, &blocks, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(blocks[0].count, 2001);
	free(blocks);
	assert_int_equal(build("0;10", "1;200", 3, &blocks, &n, err, sizeof(err)), 0);
	assert_int_equal(blocks[1].count, 200);
	free(blocks);
	assert_int_equal(build("0", "65535", 4, &blocks, &n, err, sizeof(err)), 0);
	assert_int_equal(blocks[0].count, 65535);
	free(blocks);

	/* All blocks together hold at most 65536 values (memory bound). */
	assert_int_equal(build("0;0", "65535;1", 3, &blocks, &n, err, sizeof(err)), 0);
	free(blocks);
	expect_build_error(
		"0;0", "65535;2", 3,
		"count: the blocks add up to 65537 registers (allowed: at most 65536 per device)");
}

static void test_build_address_space(void **state)
{
	struct block *blocks = NULL;
	size_t n = 0;
	char err[200];

	(void)state;
	/* The last block may end exactly at address 65535. */
	assert_int_equal(build("65535", "1", 3, &blocks, &n, err, sizeof(err)), 0);
	assert_int_equal(blocks[0].start, 65535);
	assert_int_equal(blocks[0].count, 1);
	free(blocks);
	assert_int_equal(build("65411", "125", 3, &blocks, &n, err, sizeof(err)), 0);
	free(blocks);
	expect_build_error("65412", "125", 3,
			   "count: entry 1: start 65412 + count 125 goes past the last address 65535");
	expect_build_error("0;65535", "1;2", 1,
			   "count: entry 2: start 65535 + count 2 goes past the last address 65535");
}

static void test_build_raw_arrays(void **state)
{
	/* Values that blocks_parse_list would refuse can still reach blocks_build directly. */
	static const uint32_t starts[] = {70000};
	static const uint32_t counts[] = {1};
	struct block *blocks = NULL;
	size_t n = 0;
	char err[200];

	(void)state;
	assert_int_equal(blocks_build(starts, 1, counts, 1, 3, &blocks, &n, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_string_equal(err, "start: entry 1 (70000) is above 65535");
	assert_int_equal(blocks_build(starts, 0, counts, 0, 3, &blocks, &n, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_string_equal(err, "start: empty list (expected at least one address)");
	assert_int_equal(blocks_build(counts, 1, counts, 1, 5, &blocks, &n, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_string_equal(err, "function 5 is not a read function (allowed: 1..4)");
	assert_int_equal(blocks_build(counts, 1, counts, 1, 0, &blocks, &n, err, sizeof(err)),
			 MB_ERR_INVAL);
	assert_null(blocks);
}

static void test_total(void **state)
{
	static const struct block b[] = {{0, 125}, {200, 3}, {65535, 1}};

	(void)state;
	assert_int_equal(blocks_total(b, 3), 129);
	assert_int_equal(blocks_total(b, 0), 0);
	assert_int_equal(blocks_total(NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_router_list),
		cmocka_unit_test(test_parse_single_number),
		cmocka_unit_test(test_parse_spaces),
		cmocka_unit_test(test_parse_seed),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_too_many_entries),
		cmocka_unit_test(test_parse_null),
		cmocka_unit_test(test_build_seed),
		cmocka_unit_test(test_build_length_mismatch),
		cmocka_unit_test(test_build_zero_count),
		cmocka_unit_test(test_build_limits),
		cmocka_unit_test(test_build_address_space),
		cmocka_unit_test(test_build_raw_arrays),
		cmocka_unit_test(test_total),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
