/*
 * fuzz_mbtcp.c - libFuzzer target: the Modbus TCP response parser (src/mbtcp.c), fed the
 * bytes a peer might send.
 *
 * The input's first 6 bytes make the request (unit id, function code, address, count or
 * value); the rest is the stream from the peer, cut into frames the way the event loop
 * does (mbtcp_frame_size), each frame parsed as the answer to the request. Invariants:
 *   - the request encodes to one whole frame of its own length, protocol id 0;
 *   - a frame size is 0 (more bytes needed), -1 (not Modbus TCP) or 8..260 and never more
 *     than the bytes given, and it does not change as more bytes arrive;
 *   - a frame parsed as OK is exactly what a correct server would send for the values
 *     parsed (re-encoded byte for byte; for bits, the padding bits aside), bits are 0/1;
 *   - an exception carries a code 1..255 in a 9-byte frame with the function code + 0x80;
 *   - every status has a reason text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbtcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_mbtcp: invariant broken: %s\n", what);
		abort();
	}
}

static const uint8_t functions[] = {1, 2, 3, 4, 5, 6, 15, 16};

/* The answer a correct server sends for rq with values v: compared with what was parsed. */
static size_t expected_answer(const struct mbtcp_request *rq, const uint16_t *v, uint8_t *out)
{
	out[6] = rq->unit;
	out[7] = rq->function;
	size_t pdu;
	if (rq->function <= 2) {
		size_t bytes = (rq->count + 7u) / 8u;
		out[8] = (uint8_t)bytes;
		memset(out + 9, 0, bytes);
		for (unsigned i = 0; i < rq->count; i++)
			out[9 + i / 8] |= (uint8_t)(v[i] << (i % 8));
		pdu = 2 + bytes;
	} else if (rq->function <= 4) {
		out[8] = (uint8_t)(2 * rq->count);
		for (unsigned i = 0; i < rq->count; i++) {
			out[9 + 2 * i] = (uint8_t)(v[i] >> 8);
			out[10 + 2 * i] = (uint8_t)v[i];
		}
		pdu = 2 + 2u * rq->count;
	} else {
		/* A write's echo: the encoded request's first 5 PDU bytes. */
		uint8_t req[MBTCP_MAX_ADU];
		mbtcp_encode(rq, req);
		memcpy(out + 7, req + 7, 5);
		pdu = 5;
	}
	out[4] = (uint8_t)((pdu + 1) >> 8);
	out[5] = (uint8_t)(pdu + 1);
	return 7 + pdu;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 6)
		return 0;
	struct mbtcp_request rq = {
		.unit = data[0],
		.function = functions[data[1] % sizeof(functions)],
		.address = (uint16_t)(data[2] << 8 | data[3]),
	};
	uint16_t n = (uint16_t)(data[4] << 8 | data[5]);
	if (rq.function <= 2)
		rq.count = (uint16_t)(n % MBTCP_MAX_READ_BITS + 1);
	else if (rq.function <= 4)
		rq.count = (uint16_t)(n % MBTCP_MAX_READ_REGISTERS + 1);
	else
		rq.value = rq.function == 5 || rq.function == 15 ? (uint16_t)(n & 1) : n;
	if (rq.function > 4)
		rq.count = 1;
	check(mbtcp_request_valid(&rq), "a request made valid is valid");
	uint8_t req[MBTCP_MAX_ADU];
	size_t reqlen = mbtcp_encode(&rq, req);
	check(mbtcp_frame_size(req, reqlen) == (int)reqlen, "a request is one whole frame");
	check(req[2] == 0 && req[3] == 0, "protocol id 0");

	const uint8_t *stream = data + 6;
	size_t left = size - 6;
	uint16_t values[MBTCP_MAX_READ_BITS];
	while (left) {
		int fs = mbtcp_frame_size(stream, left);
		check(fs == 0 || fs == -1 || (fs >= 8 && fs <= MBTCP_MAX_ADU && (size_t)fs <= left),
		      "frame size in range");
		if (fs <= 0) {
			for (size_t k = left; k > 6; k--)
				check(mbtcp_frame_size(stream, k - 1) == (fs < 0 ? -1 : 0),
				      "the verdict does not change with fewer bytes");
			break;
		}
		check(mbtcp_frame_size(stream, (size_t)fs) == fs, "a whole frame measures itself");
		rq.tid = mbtcp_tid(stream);
		int exception = -1;
		enum mbtcp_status st = mbtcp_parse(&rq, stream, (size_t)fs, values, &exception);
		char reason[128];
		mbtcp_reason(st, exception, reason, sizeof(reason));
		check(reason[0] != '\0', "a reason");
		if (st == MBTCP_OK) {
			uint8_t want[MBTCP_MAX_ADU];
			check(exception == 0, "no exception with OK");
			size_t wl = expected_answer(&rq, values, want);
			memcpy(want, stream, 4); /* tid and protocol id, as received */
			check(wl == (size_t)fs, "an OK frame has the length of its answer");
			if (rq.function <= 2) {
				for (unsigned i = 0; i < rq.count; i++)
					check(values[i] <= 1, "bits are 0 or 1");
				unsigned pad = rq.count % 8;
				if (pad) /* the last byte's unused high bits may be anything */
					want[wl - 1] |=
						(uint8_t)(stream[wl - 1] & ~((1u << pad) - 1));
			}
			check(memcmp(want, stream, wl) == 0, "an OK frame is a correct answer");
		} else if (st == MBTCP_EXCEPTION) {
			check(exception >= 1 && exception <= 255, "exception code");
			check(fs == 9 && stream[7] == (rq.function | 0x80) &&
				      stream[8] == exception,
			      "the exception frame");
		} else {
			check(st == MBTCP_BAD_DATA || st == MBTCP_BAD_UNIT ||
				      st == MBTCP_BAD_EXCEPTION,
			      "status");
			check(exception == 0, "no exception code with a bad frame");
		}
		stream += fs;
		left -= (size_t)fs;
	}
	return 0;
}
