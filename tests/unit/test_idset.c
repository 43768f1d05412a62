/*
 * test_idset.c - the id range set: merging, splitting, counting, and a differential run
 * against a plain bitmap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "idset.h"

static void assert_ranges(const struct idset *s, const int64_t *bounds, size_t n)
{
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s->r[i].lo, bounds[2 * i]);
		assert_int_equal(s->r[i].hi, bounds[2 * i + 1]);
	}
}

static void adds_merge_with_neighbours(void **state)
{
	(void)state;
	struct idset s;
	idset_init(&s);
	assert_int_equal(idset_add(&s, 5), 0);
	assert_int_equal(idset_add(&s, 7), 0);
	assert_ranges(&s, (int64_t[]){5, 5, 7, 7}, 2);
	assert_int_equal(idset_add(&s, 6), 0); /* bridges both */
	assert_ranges(&s, (int64_t[]){5, 7}, 1);
	assert_int_equal(idset_add(&s, 6), 0); /* already there */
	assert_int_equal(s.count, 3);
	assert_int_equal(idset_add_range(&s, 20, 30), 0);
	assert_int_equal(idset_add_range(&s, 1, 3), 0);
	assert_ranges(&s, (int64_t[]){1, 3, 5, 7, 20, 30}, 3);
	assert_int_equal(idset_add_range(&s, 2, 25), 0); /* swallows the middle */
	assert_ranges(&s, (int64_t[]){1, 30}, 1);
	assert_int_equal(s.count, 30);
	assert_int_equal(idset_add_range(&s, 3, 1), -2); /* MB_ERR_INVAL */
	idset_free(&s);
}

static void removes_split_and_trim(void **state)
{
	(void)state;
	struct idset s;
	idset_init(&s);
	assert_int_equal(idset_add_range(&s, 1, 100), 0);
	assert_int_equal(idset_remove_range(&s, 40, 49), 0); /* split */
	assert_ranges(&s, (int64_t[]){1, 39, 50, 100}, 2);
	assert_int_equal(s.count, 90);
	assert_int_equal(idset_remove_range(&s, 30, 60), 0); /* trims both */
	assert_ranges(&s, (int64_t[]){1, 29, 61, 100}, 2);
	assert_int_equal(idset_remove_range(&s, 1, 29), 0); /* whole range */
	assert_ranges(&s, (int64_t[]){61, 100}, 1);
	assert_int_equal(idset_remove_range(&s, 200, 300), 0); /* absent */
	assert_int_equal(idset_remove_range(&s, 100, 100), 0); /* last id */
	assert_int_equal(idset_remove_range(&s, 61, 61), 0);   /* first id */
	assert_ranges(&s, (int64_t[]){62, 99}, 1);
	assert_int_equal(s.count, 38);
	assert_true(idset_contains(&s, 62));
	assert_false(idset_contains(&s, 61));
	assert_int_equal(idset_remove_range(&s, INT64_MIN, INT64_MAX), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.count, 0);
	idset_free(&s);
}

static void set_operations(void **state)
{
	(void)state;
	struct idset a, b;
	idset_init(&a);
	idset_init(&b);
	assert_int_equal(idset_add_range(&a, 1, 50), 0);
	assert_int_equal(idset_add_range(&b, 10, 19), 0);
	assert_int_equal(idset_add_range(&b, 30, 39), 0);
	assert_int_equal(idset_remove_set(&a, &b), 0);
	assert_ranges(&a, (int64_t[]){1, 9, 20, 29, 40, 50}, 3);
	assert_int_equal(idset_add_set(&a, &b), 0);
	assert_ranges(&a, (int64_t[]){1, 50}, 1);
	const struct id_range *r = idset_ranges_find(b.r, b.n, 35);
	assert_non_null(r);
	assert_int_equal(r->lo, 30);
	assert_null(idset_ranges_find(b.r, b.n, 25));
	assert_null(idset_ranges_find(NULL, 0, 25));
	idset_clear(&a);
	assert_int_equal(a.n, 0);
	assert_false(idset_contains(&a, 1));
	idset_free(&a);
	idset_free(&b);
}

/* A small deterministic generator (xorshift64): the same sequence on every run. */
static uint64_t next_random(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Random adds and removes, checked against a bitmap after every step. */
static void matches_a_bitmap(void **state)
{
	(void)state;
	enum { N = 300 };
	bool bits[N] = {false};
	struct idset s;
	idset_init(&s);
	uint64_t seed = 12345;
	for (int step = 0; step < 20000; step++) {
		int64_t lo = (int64_t)(next_random(&seed) % N);
		int64_t hi = lo + (int64_t)(next_random(&seed) % 12);
		if (hi >= N)
			hi = N - 1;
		bool add = next_random(&seed) % 3 != 0;
		if (add)
			assert_int_equal(idset_add_range(&s, lo, hi), 0);
		else
			assert_int_equal(idset_remove_range(&s, lo, hi), 0);
		for (int64_t i = lo; i <= hi; i++)
			bits[i] = add;
		uint64_t count = 0;
		for (int64_t i = 0; i < N; i++) {
			count += bits[i];
			assert_int_equal(idset_contains(&s, i), bits[i]);
		}
		assert_int_equal(s.count, count);
		for (size_t i = 0; i < s.n; i++) { /* sorted, disjoint, not touching */
			assert_true(s.r[i].lo <= s.r[i].hi);
			if (i)
				assert_true(s.r[i - 1].hi + 1 < s.r[i].lo);
		}
	}
	idset_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(adds_merge_with_neighbours),
		cmocka_unit_test(removes_split_and_trim),
		cmocka_unit_test(set_operations),
		cmocka_unit_test(matches_a_bitmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
