/*
 * test_mbtcp.c - Modbus TCP framing (src/mbtcp.c): every request's bytes as the spec (and
 * libmodbus) writes them, the frame length of partial, whole and impossible MBAP headers,
 * and the decoding of answers: registers, bits (LSB first), write echoes, exceptions, and
 * each way an answer can fail to fit its request, with the ERR text each gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mbtcp.h"

static void assert_bytes(const uint8_t *got, size_t n, const uint8_t *want, size_t wn)
{
	assert_int_equal(n, wn);
	assert_memory_equal(got, want, wn);
}

static void encodes_each_request(void **state)
{
	(void)state;
	uint8_t out[MBTCP_MAX_ADU];
	struct mbtcp_request rq = {.tid = 0x1234,
				   .unit = 7,
				   .function = 3,
				   .address = 100,
				   .count = 30};
	/* Read holding registers 100..129 of unit 7: the bytes libmodbus sends. */
	static const uint8_t read3[] = {0x12, 0x34, 0, 0, 0, 6, 7, 3, 0, 100, 0, 30};
	assert_bytes(out, mbtcp_encode(&rq, out), read3, sizeof(read3));

	rq = (struct mbtcp_request){.tid = 1, .unit = 1, .function = 5, .address = 9, .value = 1};
	static const uint8_t coil_on[] = {0, 1, 0, 0, 0, 6, 1, 5, 0, 9, 0xFF, 0x00};
	assert_bytes(out, mbtcp_encode(&rq, out), coil_on, sizeof(coil_on));

	rq = (struct mbtcp_request){.tid = 2, .unit = 1, .function = 6, .address = 5, .value = 4242};
	static const uint8_t reg[] = {0, 2, 0, 0, 0, 6, 1, 6, 0, 5, 0x10, 0x92};
	assert_bytes(out, mbtcp_encode(&rq, out), reg, sizeof(reg));

	rq = (struct mbtcp_request){.tid = 3, .unit = 1, .function = 15, .address = 8, .value = 1};
	static const uint8_t coils[] = {0, 3, 0, 0, 0, 8, 1, 15, 0, 8, 0, 1, 1, 1};
	assert_bytes(out, mbtcp_encode(&rq, out), coils, sizeof(coils));

	rq = (struct mbtcp_request){.tid = 4,
				    .unit = 1,
				    .function = 16,
				    .address = 8,
				    .value = 0xBEEF};
	static const uint8_t regs[] = {0, 4, 0, 0, 0, 9, 1, 16, 0, 8, 0, 1, 2, 0xBE, 0xEF};
	assert_bytes(out, mbtcp_encode(&rq, out), regs, sizeof(regs));
}

static void validates_requests(void **state)
{
	(void)state;
	struct mbtcp_request rq = {.function = 3, .count = 125};
	assert_true(mbtcp_request_valid(&rq));
	rq.count = 126;
	assert_false(mbtcp_request_valid(&rq));
	rq = (struct mbtcp_request){.function = 1, .count = 2000};
	assert_true(mbtcp_request_valid(&rq));
	rq.count = 2001;
	assert_false(mbtcp_request_valid(&rq));
	rq.count = 0;
	assert_false(mbtcp_request_valid(&rq));
	rq = (struct mbtcp_request){.function = 5, .value = 2};
	assert_false(mbtcp_request_valid(&rq));
	rq = (struct mbtcp_request){.function = 7};
	assert_false(mbtcp_request_valid(&rq));
}

static void measures_frames(void **state)
{
	(void)state;
	uint8_t f[] = {0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 7};
	for (size_t n = 0; n < sizeof(f); n++)
		assert_int_equal(mbtcp_frame_size(f, n), 0); /* not whole yet */
	assert_int_equal(mbtcp_frame_size(f, sizeof(f)), 11);
	uint8_t two[22];
	memcpy(two, f, 11);
	memcpy(two + 11, f, 11);
	assert_int_equal(mbtcp_frame_size(two, sizeof(two)), 11); /* the first of two */
	f[2] = 1;                                                 /* protocol id 0x0100 */
	assert_int_equal(mbtcp_frame_size(f, 6), -1);
	f[2] = 0;
	f[5] = 1; /* a length that cannot hold a unit id and a function code */
	assert_int_equal(mbtcp_frame_size(f, 6), -1);
	f[4] = 1;
	f[5] = 0; /* 256: longer than any ADU */
	assert_int_equal(mbtcp_frame_size(f, 6), -1);
	assert_int_equal(mbtcp_tid(two), 1);
}

static enum mbtcp_status parse(const struct mbtcp_request *rq, const uint8_t *adu, size_t len,
			       uint16_t *dest, int *exc)
{
	return mbtcp_parse(rq, adu, len, dest, exc);
}

static void decodes_answers(void **state)
{
	(void)state;
	uint16_t v[16] = {0}; /* room for the ten coils below */
	int exc = -1;
	struct mbtcp_request rq = {.tid = 9, .unit = 1, .function = 3, .address = 5, .count = 2};
	static const uint8_t regs[] = {0, 9, 0, 0, 0, 7, 1, 3, 4, 0, 5, 0x12, 0x34};
	assert_int_equal(parse(&rq, regs, sizeof(regs), v, &exc), MBTCP_OK);
	assert_int_equal(exc, 0);
	assert_int_equal(v[0], 5);
	assert_int_equal(v[1], 0x1234);

	/* Ten coils, LSB first: 0b01010101, 0b10. */
	rq = (struct mbtcp_request){.unit = 1, .function = 1, .count = 10};
	static const uint8_t bits[] = {0, 0, 0, 0, 0, 5, 1, 1, 2, 0x55, 0x02};
	assert_int_equal(parse(&rq, bits, sizeof(bits), v, &exc), MBTCP_OK);
	for (int i = 0; i < 8; i++)
		assert_int_equal(v[i], (i + 1) % 2);
	uint16_t tail[10];
	assert_int_equal(parse(&rq, bits, sizeof(bits), tail, &exc), MBTCP_OK);
	assert_int_equal(tail[8], 0);
	assert_int_equal(tail[9], 1);

	/* A write's echo. */
	rq = (struct mbtcp_request){.unit = 1, .function = 6, .address = 5, .value = 4242};
	static const uint8_t echo[] = {0, 0, 0, 0, 0, 6, 1, 6, 0, 5, 0x10, 0x92};
	assert_int_equal(parse(&rq, echo, sizeof(echo), NULL, &exc), MBTCP_OK);
	rq.value = 1;
	assert_int_equal(parse(&rq, echo, sizeof(echo), NULL, &exc), MBTCP_BAD_DATA);
	rq = (struct mbtcp_request){.unit = 1, .function = 16, .address = 5, .value = 7};
	static const uint8_t multi[] = {0, 0, 0, 0, 0, 6, 1, 16, 0, 5, 0, 1};
	assert_int_equal(parse(&rq, multi, sizeof(multi), NULL, &exc), MBTCP_OK);
}

static void refuses_what_does_not_fit(void **state)
{
	(void)state;
	uint16_t v[4];
	int exc = -1;
	char reason[64];
	struct mbtcp_request rq = {.unit = 1, .function = 3, .address = 100, .count = 2};

	static const uint8_t refused[] = {0, 0, 0, 0, 0, 3, 1, 0x83, 2};
	assert_int_equal(parse(&rq, refused, sizeof(refused), v, &exc), MBTCP_EXCEPTION);
	assert_int_equal(exc, 2);
	mbtcp_reason(MBTCP_EXCEPTION, exc, reason, sizeof(reason));
	assert_string_equal(reason, "exception 2 illegal data address");
	mbtcp_reason(MBTCP_EXCEPTION, 9, reason, sizeof(reason));
	assert_string_equal(reason, "exception 9");

	static const uint8_t code0[] = {0, 0, 0, 0, 0, 3, 1, 0x83, 0};
	assert_int_equal(parse(&rq, code0, sizeof(code0), v, &exc), MBTCP_BAD_EXCEPTION);
	mbtcp_reason(MBTCP_BAD_EXCEPTION, 0, reason, sizeof(reason));
	assert_string_equal(reason, "invalid exception code");

	static const uint8_t other_unit[] = {0, 0, 0, 0, 0, 7, 2, 3, 4, 0, 1, 0, 2};
	assert_int_equal(parse(&rq, other_unit, sizeof(other_unit), v, &exc), MBTCP_BAD_UNIT);
	mbtcp_reason(MBTCP_BAD_UNIT, 0, reason, sizeof(reason));
	assert_string_equal(reason, "response from wrong slave");

	static const uint8_t other_fc[] = {0, 0, 0, 0, 0, 7, 1, 4, 4, 0, 1, 0, 2};
	assert_int_equal(parse(&rq, other_fc, sizeof(other_fc), v, &exc), MBTCP_BAD_DATA);
	mbtcp_reason(MBTCP_BAD_DATA, 0, reason, sizeof(reason));
	assert_string_equal(reason, "invalid data in response");

	static const uint8_t short_count[] = {0, 0, 0, 0, 0, 5, 1, 3, 2, 0, 1};
	assert_int_equal(parse(&rq, short_count, sizeof(short_count), v, &exc), MBTCP_BAD_DATA);
	static const uint8_t lying_count[] = {0, 0, 0, 0, 0, 7, 1, 3, 2, 0, 1, 0, 2};
	assert_int_equal(parse(&rq, lying_count, sizeof(lying_count), v, &exc), MBTCP_BAD_DATA);
	/* A frame whose length field disagrees with the bytes given. */
	assert_int_equal(parse(&rq, other_fc, sizeof(other_fc) - 1, v, &exc), MBTCP_BAD_DATA);
	static const uint8_t no_pdu[] = {0, 0, 0, 0, 0, 1, 1};
	assert_int_equal(parse(&rq, no_pdu, sizeof(no_pdu), v, &exc), MBTCP_BAD_DATA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encodes_each_request),      cmocka_unit_test(validates_requests),
		cmocka_unit_test(measures_frames),           cmocka_unit_test(decodes_answers),
		cmocka_unit_test(refuses_what_does_not_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
