/*
 * mbtcp.c - Modbus TCP framing; see mbtcp.h.
 *
 * The checks a response must pass, in order: the unit id of the request (a gateway that
 * mixes up its units is caught here), then the function code (an exception response is
 * the request's code + 0x80 and one byte of exception code), then the shape the request
 * fixes: for reads the byte count (ceil(count / 8) for bits, 2 x count for registers) and
 * the frame's length, for writes the echoed address (and quantity or value). Anything else
 * is "invalid data in response", a transport failure that the caller may retry; only an
 * exception is the device's considered answer.
 */
#include "mbtcp.h"

#include <stdio.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

int mbtcp_request_valid(const struct mbtcp_request *rq)
{
	switch (rq->function) {
	case 1:
	case 2: return rq->count >= 1 && rq->count <= MBTCP_MAX_READ_BITS;
	case 3:
	case 4: return rq->count >= 1 && rq->count <= MBTCP_MAX_READ_REGISTERS;
	case 5:
	case 15: return rq->value <= 1;
	case 6:
	case 16: return 1;
	default: return 0;
	}
}

size_t mbtcp_encode(const struct mbtcp_request *rq, uint8_t *out)
{
	size_t pdu;

	put16(out, rq->tid);
	put16(out + 2, 0); /* protocol id: Modbus */
	out[6] = rq->unit;
	out[7] = rq->function;
	put16(out + 8, rq->address);
	switch (rq->function) {
	case 5:
		put16(out + 10, rq->value ? 0xFF00 : 0x0000);
		pdu = 5;
		break;
	case 6:
		put16(out + 10, rq->value);
		pdu = 5;
		break;
	case 15: /* one coil: quantity 1, 1 byte of bits */
		put16(out + 10, 1);
		out[12] = 1;
		out[13] = (uint8_t)(rq->value & 1);
		pdu = 7;
		break;
	case 16: /* one register: quantity 1, 2 bytes */
		put16(out + 10, 1);
		out[12] = 2;
		put16(out + 13, rq->value);
		pdu = 8;
		break;
	default: /* reads */
		put16(out + 10, rq->count);
		pdu = 5;
		break;
	}
	put16(out + 4, (uint16_t)(pdu + 1)); /* unit id + PDU */
	return 7 + pdu;
}

int mbtcp_frame_size(const uint8_t *buf, size_t len)
{
	if (len < 6)
		return 0;
	if (get16(buf + 2) != 0)
		return -1;
	unsigned length = get16(buf + 4);
	if (length < 2 || length > MBTCP_MAX_ADU - 6)
		return -1;
	return len >= 6 + length ? (int)(6 + length) : 0;
}

uint16_t mbtcp_tid(const uint8_t *adu)
{
	return get16(adu);
}

/* A read's values: bits LSB first in each byte, registers big-endian. */
static enum mbtcp_status parse_read(const struct mbtcp_request *rq, const uint8_t *pdu,
				    size_t pdu_len, uint16_t *dest)
{
	size_t bytes = rq->function <= 2 ? (rq->count + 7u) / 8u : 2u * rq->count;
	if (pdu_len != 2 + bytes || pdu[1] != bytes)
		return MBTCP_BAD_DATA;
	const uint8_t *data = pdu + 2;
	if (rq->function <= 2) {
		for (unsigned i = 0; i < rq->count; i++)
			dest[i] = (uint16_t)((data[i / 8] >> (i % 8)) & 1u);
	} else {
		for (size_t i = 0; i < rq->count; i++)
			dest[i] = get16(data + 2 * i);
	}
	return MBTCP_OK;
}

/* A write's echo: the address, and the value (5, 6) or quantity 1 (15, 16). */
static enum mbtcp_status parse_write(const struct mbtcp_request *rq, const uint8_t *pdu,
				     size_t pdu_len)
{
	if (pdu_len != 5 || get16(pdu + 1) != rq->address)
		return MBTCP_BAD_DATA;
	uint16_t second = get16(pdu + 3);
	switch (rq->function) {
	case 5: return second == (rq->value ? 0xFF00 : 0x0000) ? MBTCP_OK : MBTCP_BAD_DATA;
	case 6: return second == rq->value ? MBTCP_OK : MBTCP_BAD_DATA;
	default: return second == 1 ? MBTCP_OK : MBTCP_BAD_DATA;
	}
}

enum mbtcp_status mbtcp_parse(const struct mbtcp_request *rq, const uint8_t *adu, size_t len,
			      uint16_t *dest, int *exception)
{
	*exception = 0;
	if (len < MBTCP_HEADER + 1 || mbtcp_frame_size(adu, len) != (int)len)
		return MBTCP_BAD_DATA;
	if (adu[6] != rq->unit)
		return MBTCP_BAD_UNIT;
	const uint8_t *pdu = adu + MBTCP_HEADER;
	size_t pdu_len = len - MBTCP_HEADER;
	if (pdu[0] == (rq->function | 0x80)) {
		if (pdu_len != 2 || pdu[1] == 0)
			return MBTCP_BAD_EXCEPTION;
		*exception = pdu[1];
		return MBTCP_EXCEPTION;
	}
	if (pdu[0] != rq->function)
		return MBTCP_BAD_DATA;
	if (rq->function <= 4)
		return parse_read(rq, pdu, pdu_len, dest);
	return parse_write(rq, pdu, pdu_len);
}

const char *mbtcp_exception_name(int code)
{
	static const char *const names[] = {
		NULL,
		"illegal function",
		"illegal data address",
		"illegal data value",
		"slave device failure",
		"acknowledge",
		"slave device busy",
		"negative acknowledge",
		"memory parity error",
		NULL,
		"gateway path unavailable",
		"gateway target failed to respond",
	};
	return code > 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : NULL;
}

void mbtcp_reason(enum mbtcp_status status, int exception, char *buf, size_t len)
{
	const char *name;

	switch (status) {
	case MBTCP_OK: snprintf(buf, len, "ok"); break;
	case MBTCP_EXCEPTION:
		name = mbtcp_exception_name(exception);
		snprintf(buf, len, "exception %d%s%s", exception, name ? " " : "",
			 name ? name : "");
		break;
	case MBTCP_BAD_UNIT: snprintf(buf, len, "response from wrong slave"); break;
	case MBTCP_BAD_EXCEPTION: snprintf(buf, len, "invalid exception code"); break;
	default: snprintf(buf, len, "invalid data in response"); break;
	}
}
