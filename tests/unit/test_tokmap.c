/*
 * test_tokmap.c - the token -> slot map: a differential run against a plain array, with
 * tokens clustered the way message ids are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "tokmap.h"

static uint64_t next_random(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void basic(void **state)
{
	(void)state;
	struct tokmap m;
	size_t v = 0;
	assert_int_equal(tokmap_init(&m, 4), 0);
	assert_false(tokmap_get(&m, 7, &v));
	tokmap_put(&m, 7, 1);
	tokmap_put(&m, 8, 2);
	tokmap_put(&m, 7, 3); /* replaces */
	assert_true(tokmap_get(&m, 7, &v));
	assert_int_equal(v, 3);
	tokmap_del(&m, 7);
	assert_false(tokmap_get(&m, 7, &v));
	assert_true(tokmap_get(&m, 8, &v));
	assert_int_equal(v, 2);
	tokmap_del(&m, 99); /* absent: nothing happens */
	tokmap_clear(&m);
	assert_false(tokmap_get(&m, 8, &v));
	tokmap_free(&m);
}

/* Random puts and deletes of up to 500 live tokens from a range of 2000, checked against an
 * array after every step (deletion by backward shift must never lose a member). */
static void matches_an_array(void **state)
{
	(void)state;
	enum { RANGE = 2000, LIVE = 500 };
	static size_t ref[RANGE];
	static bool in[RANGE];
	memset(in, 0, sizeof(in));
	struct tokmap m;
	assert_int_equal(tokmap_init(&m, LIVE), 0);
	uint64_t seed = 4242;
	size_t live = 0;
	for (int step = 0; step < 200000; step++) {
		int t = (int)(next_random(&seed) % RANGE);
		if (!in[t] && live < LIVE) {
			ref[t] = (size_t)step;
			in[t] = true;
			live++;
			tokmap_put(&m, t, (size_t)step);
		} else if (in[t]) {
			in[t] = false;
			live--;
			tokmap_del(&m, t);
		}
		if (step % 97 == 0) {
			for (int k = 0; k < RANGE; k++) {
				size_t v = 0;
				assert_int_equal(tokmap_get(&m, k, &v), in[k]);
				if (in[k])
					assert_int_equal(v, ref[k]);
			}
		}
	}
	tokmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(basic),
		cmocka_unit_test(matches_an_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
