/*
 * test_planner.c - the request optimiser: the seed's PLC1 map on a 9600-baud line and over
 * TCP, exact (unoptimised) plans, splitting at the protocol limit and at a per-device
 * maximum, bit reads, overlapping and unsorted blocks, the bus-time formula, and two
 * properties checked on random maps: scattering any plan's results rebuilds exactly the
 * values of the blocks, and the dynamic programme finds the cheapest grouping (compared
 * with brute force over every grouping of the pieces).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "planner.h"

static const struct block plc1[] = {{1, 1},   {10, 3},  {55, 2},  {69, 2},  {72, 9}, {100, 10},
				    {120, 5}, {130, 4}, {152, 3}, {160, 7}, {170, 1}};
#define PLC1_N (sizeof(plc1) / sizeof(plc1[0]))

static struct serial_port_config port_9600 = {
	.name = "com2",
	.device = "/dev/null",
	.baudrate = 9600,
	.data_bits = 8,
	.parity = 'N',
	.stop_bits = 1,
	.timeout_ms = 1000,
	.byte_timeout_ms = 50,
	.silent_interval_ms = -1,
	.turnaround_ms = 5,
};

static void assert_tx(const struct plan_tx *tx, unsigned start, unsigned count)
{
	if (tx->start != start || tx->count != count)
		fail_msg("transaction %u+%u, expected %u+%u", tx->start, tx->count, start, count);
}

static void line_model_9600_8n1(void **state)
{
	(void)state;
	struct line_timing t;
	assert_int_equal(planner_char_bits(&port_9600), 10);
	planner_line_timing(&port_9600, &t);
	assert_int_equal(t.char_ns, 1041666); /* 10 bits at 9600 Bd */
	assert_int_equal(t.t35_ns, 1041666 * 7 / 2);
	assert_int_equal(t.gap_ns, t.t35_ns); /* auto silent interval = t3.5 */
	assert_int_equal(t.turnaround_ns, 5000000);
	assert_int_equal(planner_silent_interval_us(&port_9600), 3646);

	struct serial_port_config p = port_9600;
	p.parity = 'E';
	assert_int_equal(planner_char_bits(&p), 11);
	p.parity = 'N';
	p.stop_bits = 2;
	p.data_bits = 7;
	assert_int_equal(planner_char_bits(&p), 10);
	p.baudrate = 115200; /* above 19200 Bd t3.5 is fixed at 1.75 ms */
	planner_line_timing(&p, &t);
	assert_int_equal(t.t35_ns, 1750000);
	assert_int_equal(planner_silent_interval_us(&p), 1750);
	p.silent_interval_ms = 20; /* a slow slave: 20 ms before each request */
	planner_line_timing(&p, &t);
	assert_int_equal(t.gap_ns, 20000000);
	assert_int_equal(planner_silent_interval_us(&p), 20000);

	/* A read of 10 registers: 8-byte request, 25-byte response. */
	assert_int_equal(planner_response_bytes(3, 10), 25);
	assert_int_equal(planner_response_bytes(1, 9), 7);
	planner_line_timing(&port_9600, &t);
	assert_int_equal(planner_tx_time_ns(&t, 3, 10),
			 t.gap_ns + 33 * t.char_ns + t.t35_ns + t.turnaround_ns);
}

/* The seed's 11 blocks at 9600 8N1: gaps of up to 12 registers are worth reading. */
static void plc1_rtu_9600(void **state)
{
	(void)state;
	struct line_timing t;
	struct plan plan;
	struct plan_cost naive, opt;
	planner_line_timing(&port_9600, &t);

	assert_int_equal(planner_plan(plc1, PLC1_N, 3, 0, false, &t, &plan), 0);
	assert_int_equal(plan.count, 11);
	for (size_t i = 0; i < PLC1_N; i++) {
		assert_tx(&plan.tx[i], plc1[i].start, plc1[i].count);
		assert_false(plan.tx[i].merged);
		assert_int_equal(plan.tx[i].first_block, i);
	}
	planner_estimate(&plan, 3, &t, &naive);
	planner_plan_free(&plan);

	assert_int_equal(planner_plan(plc1, PLC1_N, 3, 0, true, &t, &plan), 0);
	assert_int_equal(plan.count, 4);
	assert_tx(&plan.tx[0], 1, 12);   /* 1, 10..12 */
	assert_tx(&plan.tx[1], 55, 26);  /* 55..56, 69..70, 72..80 */
	assert_tx(&plan.tx[2], 100, 34); /* 100..109, 120..124, 130..133 */
	assert_tx(&plan.tx[3], 152, 19); /* 152..154, 160..166, 170 */
	assert_int_equal(plan.tx[0].first_block, 0);
	assert_int_equal(plan.tx[1].first_block, 2);
	assert_int_equal(plan.tx[2].first_block, 5);
	assert_int_equal(plan.tx[3].first_block, 8);
	for (size_t k = 0; k < plan.count; k++)
		assert_true(plan.tx[k].merged);
	planner_estimate(&plan, 3, &t, &opt);
	planner_plan_free(&plan);

	assert_int_equal(naive.transactions, 11);
	assert_int_equal(naive.request_bytes, 88);
	assert_int_equal(naive.response_bytes, 11 * 5 + 2 * 47);
	assert_int_equal(opt.transactions, 4);
	assert_int_equal(opt.request_bytes, 32);
	assert_int_equal(opt.response_bytes, 4 * 5 + 2 * (12 + 26 + 34 + 19));
	assert_true(opt.time_ns < naive.time_ns);
	/* About 382 ms naive against 293 ms optimised (docs/performance.md). */
	assert_in_range(naive.time_ns / 1000000, 381, 383);
	assert_in_range(opt.time_ns / 1000000, 292, 294);
}

/* Over TCP only the transaction count matters: the fewest, then the fewest registers. */
static void plc1_tcp(void **state)
{
	(void)state;
	struct plan plan;
	assert_int_equal(planner_plan(plc1, PLC1_N, 3, 0, true, NULL, &plan), 0);
	assert_int_equal(plan.count, 2);
	assert_tx(&plan.tx[0], 1, 12);
	assert_tx(&plan.tx[1], 55, 116);
	planner_plan_free(&plan);
}

static void splits_at_limits(void **state)
{
	(void)state;
	struct plan plan;
	const struct block big[] = {{0, 300}};
	const struct block bits[] = {{0, 4500}};

	assert_int_equal(planner_plan(big, 1, 3, 0, false, NULL, &plan), 0);
	assert_int_equal(plan.count, 3);
	assert_tx(&plan.tx[0], 0, 125);
	assert_tx(&plan.tx[1], 125, 125);
	assert_tx(&plan.tx[2], 250, 50);
	for (size_t k = 0; k < 3; k++) {
		assert_false(plan.tx[k].merged); /* a piece of one block is not a merge */
		assert_int_equal(plan.tx[k].first_block, 0);
	}
	planner_plan_free(&plan);

	assert_int_equal(planner_plan(big, 1, 4, 0, true, NULL, &plan), 0);
	assert_int_equal(plan.count, 3);
	planner_plan_free(&plan);

	/* A device that serves at most 32 registers per request. */
	assert_int_equal(planner_plan(big, 1, 3, 32, true, NULL, &plan), 0);
	assert_int_equal(plan.count, 10);
	assert_tx(&plan.tx[9], 288, 12);
	planner_plan_free(&plan);

	/* Bits: 2000 per request. */
	assert_int_equal(planner_plan(bits, 1, 1, 0, true, NULL, &plan), 0);
	assert_int_equal(plan.count, 3);
	assert_tx(&plan.tx[2], 4000, 500);
	planner_plan_free(&plan);

	/* A maximum above the protocol limit is the protocol limit. */
	assert_int_equal(planner_plan(big, 1, 3, 5000, true, NULL, &plan), 0);
	assert_int_equal(plan.count, 3);
	planner_plan_free(&plan);
}

static void bits_merge_by_bytes(void **state)
{
	(void)state;
	struct line_timing t;
	struct plan plan;
	planner_line_timing(&port_9600, &t);
	/* 92 bits of gap are 12 bytes: cheaper than a second transaction. */
	const struct block near[] = {{0, 8}, {100, 8}};
	assert_int_equal(planner_plan(near, 2, 1, 0, true, &t, &plan), 0);
	assert_int_equal(plan.count, 1);
	assert_tx(&plan.tx[0], 0, 108);
	planner_plan_free(&plan);
	/* 400 bits of gap are 50 bytes: not worth it at 9600 Bd. */
	const struct block far[] = {{0, 8}, {408, 8}};
	assert_int_equal(planner_plan(far, 2, 2, 0, true, &t, &plan), 0);
	assert_int_equal(plan.count, 2);
	planner_plan_free(&plan);
}

static void overlapping_and_unsorted(void **state)
{
	(void)state;
	struct plan plan;
	const struct block b[] = {{100, 5}, {12, 5}, {10, 5}, {10, 5}};
	uint16_t tx_values[125], values[20];

	assert_int_equal(planner_plan(b, 4, 3, 0, true, NULL, &plan), 0);
	assert_int_equal(plan.count, 1); /* TCP: 10..104 in one request */
	assert_tx(&plan.tx[0], 10, 95);
	assert_int_equal(plan.tx[0].first_block, 0);
	for (unsigned k = 0; k < 95; k++)
		tx_values[k] = (uint16_t)(10 + k);
	memset(values, 0, sizeof(values));
	planner_scatter(b, 4, &plan.tx[0], tx_values, values);
	const uint16_t expected[20] = {100, 101, 102, 103, 104, 12, 13, 14, 15, 16,
				       10,  11,  12,  13,  14,  10, 11, 12, 13, 14};
	assert_memory_equal(values, expected, sizeof(expected));
	planner_plan_free(&plan);

	/* On a slow line the far block stays apart, and the transaction that covers block 0
	 * comes first even though its address is the highest. */
	struct line_timing t;
	planner_line_timing(&port_9600, &t);
	assert_int_equal(planner_plan(b, 4, 3, 0, true, &t, &plan), 0);
	assert_int_equal(plan.count, 2);
	assert_tx(&plan.tx[0], 100, 5);
	assert_false(plan.tx[0].merged);
	assert_tx(&plan.tx[1], 10, 7);
	assert_true(plan.tx[1].merged);
	assert_int_equal(plan.tx[1].first_block, 1);
	planner_plan_free(&plan);
}

static void bad_arguments(void **state)
{
	(void)state;
	struct plan plan = {NULL, 0};
	assert_int_equal(planner_plan(plc1, 0, 3, 0, true, NULL, &plan), MB_ERR_INVAL);
	assert_int_equal(planner_plan(plc1, PLC1_N, 5, 0, true, NULL, &plan), MB_ERR_INVAL);
	assert_int_equal(planner_plan(NULL, 1, 3, 0, true, NULL, &plan), MB_ERR_INVAL);
	assert_null(plan.tx);
	planner_plan_free(NULL);
}

/* Deterministic pseudo-random numbers (xorshift), so failures reproduce. */
static uint32_t rng_state = 2463534242u;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % n;
}

static void random_blocks(struct block *b, size_t n, int function)
{
	uint32_t limit = function <= 2 ? 2000 : 125;
	for (size_t i = 0; i < n; i++) {
		uint32_t count = 1 + rnd(rnd(4) == 0 ? 3 * limit : limit / 4);
		uint32_t start = rnd(600);
		b[i].start = (uint16_t)start;
		b[i].count = (uint16_t)count;
	}
}

/* Property: every plan covers every block within the limit, and scattering a read of
 * "each address holds itself" rebuilds each block's addresses in configuration order. */
static void scatter_rebuilds_every_block(void **state)
{
	(void)state;
	struct line_timing t;
	planner_line_timing(&port_9600, &t);
	for (int round = 0; round < 400; round++) {
		struct block b[12];
		size_t n = 1 + rnd(12);
		int function = 1 + (int)rnd(4);
		unsigned max = rnd(3) == 0 ? 1 + rnd(40) : 0;
		random_blocks(b, n, function);
		size_t total = blocks_total(b, n);
		uint16_t *values = malloc(total * sizeof(*values));
		uint16_t tx_values[2000];
		assert_non_null(values);

		for (int mode = 0; mode < 3; mode++) {
			struct plan plan;
			bool merge = mode != 0;
			const struct line_timing *line = mode == 1 ? &t : NULL;
			unsigned limit = function <= 2 ? 2000 : 125;
			if (max && max < limit)
				limit = max;
			assert_int_equal(planner_plan(b, n, function, max, merge, line, &plan), 0);
			memset(values, 0xFF, total * sizeof(*values));
			for (size_t k = 0; k < plan.count; k++) {
				const struct plan_tx *tx = &plan.tx[k];
				assert_true(tx->count >= 1 && tx->count <= limit);
				assert_true(tx->first_block < n);
				assert_true(k == 0 ||
					    plan.tx[k - 1].first_block <= tx->first_block);
				for (unsigned a = 0; a < tx->count; a++)
					tx_values[a] = (uint16_t)(tx->start + a);
				planner_scatter(b, n, tx, tx_values, values);
			}
			size_t pos = 0;
			for (size_t i = 0; i < n; i++)
				for (unsigned a = 0; a < b[i].count; a++, pos++)
					if (values[pos] != (uint16_t)(b[i].start + a))
						fail_msg("round %d mode %d: block %zu (%u+%u) value %u is %u",
							 round, mode, i, b[i].start, b[i].count, a,
							 values[pos]);
			planner_plan_free(&plan);
		}
		free(values);
	}
}

/* Property: the DP's plan costs no more than the best grouping found by brute force over
 * the same sorted, disjoint blocks (each block short enough to be one piece). */
static void dp_matches_brute_force(void **state)
{
	(void)state;
	struct line_timing t;
	planner_line_timing(&port_9600, &t);
	for (int round = 0; round < 300; round++) {
		struct block b[10];
		size_t n = 1 + rnd(10);
		uint32_t addr = rnd(20);
		for (size_t i = 0; i < n; i++) {
			b[i].start = (uint16_t)addr;
			b[i].count = (uint16_t)(1 + rnd(20));
			addr += b[i].count + 1 + rnd(30); /* a gap of at least one register */
		}
		struct plan plan;
		struct plan_cost cost;
		assert_int_equal(planner_plan(b, n, 3, 0, true, &t, &plan), 0);
		planner_estimate(&plan, 3, &t, &cost);
		planner_plan_free(&plan);

		int64_t brute = INT64_MAX;
		for (uint32_t mask = 0; mask < (1u << (n - 1)); mask++) {
			/* bit i set: a new transaction starts at block i + 1 */
			int64_t c = 0;
			size_t first = 0;
			bool ok = true;
			for (size_t i = 0; i < n && ok; i++) {
				if (i == n - 1 || (mask >> i) & 1u) {
					uint32_t span =
						(uint32_t)b[i].start + b[i].count - b[first].start;
					if (span > 125)
						ok = false;
					else
						c += planner_tx_time_ns(&t, 3, span);
					first = i + 1;
				}
			}
			if (ok && c < brute)
				brute = c;
		}
		if (cost.time_ns != brute)
			fail_msg("round %d: DP cost %lld, brute force %lld", round,
				 (long long)cost.time_ns, (long long)brute);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(line_model_9600_8n1),
		cmocka_unit_test(plc1_rtu_9600),
		cmocka_unit_test(plc1_tcp),
		cmocka_unit_test(splits_at_limits),
		cmocka_unit_test(bits_merge_by_bytes),
		cmocka_unit_test(overlapping_and_unsorted),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(scatter_rebuilds_every_block),
		cmocka_unit_test(dp_matches_brute_force),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
