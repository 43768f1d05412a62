/*
 * test_ftpbatch.c - the FTP uplink's files without a network: how messages are gathered
 * and cut (ftpbatch.h: max_readings, the UTC-aligned interval, jsonl and array bodies) and
 * how files are named (ftpname.h: fields, the first reading's id and time, the temporary
 * name, patterns refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ftpbatch.h"
#include "ftpname.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */

static void add(struct ftpbatch *b, const char *json, size_t count, int64_t id, int token,
		int64_t now)
{
	assert_int_equal(ftpbatch_add(b, json, strlen(json), count, id, T0 + id * 1000, token, now),
			 0);
}

static void cut_at_max_readings(void **state)
{
	(void)state;
	struct ftpbatch b;
	struct ftpbatch_options o = {.max_readings = 3,
				     .interval_ms = 3600000,
				     .format = FTP_JSONL};
	ftpbatch_init(&b, &o);
	for (int i = 1; i <= 7; i++)
		add(&b, "{\"n\":1}", 1, i, 100 + i, T0);
	/* Two full files are ready; the seventh reading waits in the open one. */
	assert_int_equal(b.nready, 2);
	struct ftpfile *f = ftpbatch_take(&b);
	assert_int_equal(f->readings, 3);
	assert_int_equal(f->ntokens, 3);
	assert_int_equal(f->tokens[0], 101);
	assert_int_equal(f->tokens[2], 103);
	assert_int_equal(f->first_id, 1);
	assert_int_equal(f->first_ts_ms, T0 + 1000);
	assert_string_equal(f->body, "{\"n\":1}\n{\"n\":1}\n{\"n\":1}\n");
	ftpfile_free(f);
	f = ftpbatch_take(&b);
	assert_int_equal(f->first_id, 4);
	ftpfile_free(f);
	assert_null(ftpbatch_take(&b));
	assert_non_null(b.open);
	assert_int_equal(b.open->readings, 1);
	ftpbatch_clear(&b);
}

/* An array message is never split: one that would not fit cuts the file first. */
static void arrays_are_not_split(void **state)
{
	(void)state;
	struct ftpbatch b;
	struct ftpbatch_options o = {.max_readings = 5,
				     .interval_ms = 3600000,
				     .format = FTP_ARRAY,
				     .array_messages = true};
	ftpbatch_init(&b, &o);
	add(&b, "[{\"n\":1},{\"n\":2},{\"n\":3}]", 3, 1, 1, T0);
	add(&b, "[{\"n\":4},{\"n\":5},{\"n\":6}]", 3, 4, 2, T0);
	assert_int_equal(b.nready, 1);
	struct ftpfile *f = ftpbatch_take(&b);
	/* The file is one JSON array of readings, the messages' arrays spliced in. */
	assert_string_equal(f->body, "[{\"n\":1},{\"n\":2},{\"n\":3}]");
	assert_int_equal(f->readings, 3);
	ftpfile_free(f);
	add(&b, "[{\"n\":7}]", 1, 7, 3, T0);
	ftpbatch_tick(&b, T0 + 3600000);
	f = ftpbatch_take(&b);
	assert_string_equal(f->body, "[{\"n\":4},{\"n\":5},{\"n\":6},{\"n\":7}]");
	assert_int_equal(f->ntokens, 2);
	ftpfile_free(f);
	ftpbatch_clear(&b);
}

/* In jsonl an array message is one line, as it would be one MQTT message. */
static void jsonl_of_arrays(void **state)
{
	(void)state;
	struct ftpbatch b;
	struct ftpbatch_options o = {.max_readings = 10,
				     .interval_ms = 60000,
				     .format = FTP_JSONL,
				     .array_messages = true};
	ftpbatch_init(&b, &o);
	add(&b, "[{\"n\":1},{\"n\":2}]", 2, 1, 1, T0);
	add(&b, "[{\"n\":3}]", 1, 3, 2, T0);
	ftpbatch_tick(&b, T0 + 60000);
	struct ftpfile *f = ftpbatch_take(&b);
	assert_string_equal(f->body, "[{\"n\":1},{\"n\":2}]\n[{\"n\":3}]\n");
	ftpfile_free(f);
	ftpbatch_clear(&b);
}

/* A file is cut when the wall clock crosses the next multiple of the interval (UTC). */
static void cut_on_interval_boundaries(void **state)
{
	(void)state;
	const int64_t day = 86400000;
	assert_int_equal(ftpbatch_boundary(T0, day), (T0 / day + 1) * day);
	assert_int_equal(ftpbatch_boundary(2 * day, day), 3 * day);
	assert_int_equal(ftpbatch_boundary(2 * day - 1, day), 2 * day);

	struct ftpbatch b;
	struct ftpbatch_options o = {.max_readings = 1000, .interval_ms = day, .format = FTP_JSONL};
	ftpbatch_init(&b, &o);
	assert_int_equal(ftpbatch_next_cut(&b), -1);
	int64_t now = 10 * day + 5000; /* five seconds after midnight */
	add(&b, "{}", 1, 1, 1, now);
	assert_int_equal(ftpbatch_next_cut(&b), 11 * day);
	assert_false(ftpbatch_tick(&b, 11 * day - 1));
	assert_true(ftpbatch_tick(&b, 11 * day));
	assert_int_equal(b.nready, 1);
	/* Nothing open, nothing to cut: no empty files. */
	assert_int_equal(ftpbatch_next_cut(&b), -1);
	assert_true(ftpbatch_tick(&b, 12 * day));
	assert_int_equal(b.nready, 1);
	ftpbatch_clear(&b);
}

/* A failed upload gives back every file not yet on the server, oldest first. */
static void take_all_keeps_order(void **state)
{
	(void)state;
	struct ftpbatch b;
	struct ftpbatch_options o = {.max_readings = 2, .interval_ms = 60000, .format = FTP_JSONL};
	ftpbatch_init(&b, &o);
	for (int i = 1; i <= 5; i++)
		add(&b, "{}", 1, i, i, T0);
	struct ftpfile *all = ftpbatch_take_all(&b), *f = all;
	int64_t firsts[3] = {1, 3, 5};
	for (int k = 0; k < 3; k++, f = f->next) {
		assert_non_null(f);
		assert_int_equal(f->first_id, firsts[k]);
	}
	assert_null(f);
	assert_null(b.open);
	assert_int_equal(b.nready, 0);
	while (all) {
		struct ftpfile *next = all->next;
		ftpfile_free(all);
		all = next;
	}
}

static void names(void **state)
{
	(void)state;
	char out[FTPNAME_MAX], tmp[FTPNAME_MAX + 8];
	/* The default: IMEI, the first reading's time in UTC, its store id before the
	 * extension (so two files never share a name, and a re-upload keeps its own). */
	assert_int_equal(ftpname_format(FTPNAME_DEFAULT, "357299070082380", "P1", 42, T0, out,
					sizeof(out)),
			 0);
	assert_string_equal(out, "357299070082380_20231114T221320Z-42.json");
	assert_int_equal(ftpname_temp(out, tmp, sizeof(tmp)), 0);
	assert_string_equal(tmp, ".357299070082380_20231114T221320Z-42.json.part");
	/* [N] placed by the pattern; [ID]; no extension. */
	assert_int_equal(ftpname_format("[ID]/x", "I", "P1", 7, T0, out, sizeof(out)),
			 MB_ERR_INVAL); /* a path */
	assert_int_equal(ftpname_format("[ID]-[N]-%Y.csv", "I", "P1", 7, T0, out, sizeof(out)), 0);
	assert_string_equal(out, "P1-7-2023.csv");
	assert_int_equal(ftpname_format("daily_%Y%m%d", "I", "", 9, T0, out, sizeof(out)), 0);
	assert_string_equal(out, "daily_20231114-9");
	/* Substituted text cannot make a path or a strftime field. */
	assert_int_equal(ftpname_format("[ID]_[IMEI].json", "a/b", "%Y", 1, T0, out, sizeof(out)),
			 0);
	assert_string_equal(out, "%Y_a_b-1.json");
	/* A reading sent from memory has no store id: its time stands in, marked. */
	assert_int_equal(ftpname_format(FTPNAME_DEFAULT, "I", "", 0, T0, out, sizeof(out)), 0);
	assert_string_equal(out, "I_20231114T221320Z-m1700000000000.json");
}

static void patterns_checked(void **state)
{
	(void)state;
	char why[200];
	assert_int_equal(ftpname_check(FTPNAME_DEFAULT, why, sizeof(why)), 0);
	assert_int_equal(ftpname_check("[IMEI]_%Y%m%d.jsonl", why, sizeof(why)), 0);
	assert_int_equal(ftpname_check("out/[IMEI].json", why, sizeof(why)), MB_ERR_INVAL);
	assert_non_null(strstr(why, "a file name, not a path"));
	assert_int_equal(ftpname_check("[SERIAL].json", why, sizeof(why)), MB_ERR_INVAL);
	assert_non_null(strstr(why, "unknown field '[SERIAL]'"));
	assert_int_equal(ftpname_check("", why, sizeof(why)), MB_ERR_INVAL);
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ftpname_check(big, why, sizeof(why)), MB_ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cut_at_max_readings),
		cmocka_unit_test(arrays_are_not_split),
		cmocka_unit_test(jsonl_of_arrays),
		cmocka_unit_test(cut_on_interval_boundaries),
		cmocka_unit_test(take_all_keeps_order),
		cmocka_unit_test(names),
		cmocka_unit_test(patterns_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
