/*
 * decode.c - register data types; see decode.h.
 *
 * Every order is handled the same way: first the registers are laid out as wire bytes
 * (each register high byte first, lowest address first), then those bytes are permuted
 * into the value's big-endian byte sequence, and that sequence is read as an integer.
 * Floats reuse the integer's bits through memcpy, which is how C11 lets us reinterpret
 * an object's representation without undefined behaviour (IEEE 754 is assumed, as on
 * every platform modbridge targets; a _Static_assert guards the sizes).
 */
#include "decode.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE 754 float and double");

unsigned decode_width(enum reg_type type)
{
	switch (type) {
	case REG_TYPE_WORD:
	case REG_TYPE_INT16: return 1;
	case REG_TYPE_UINT32:
	case REG_TYPE_INT32:
	case REG_TYPE_FLOAT32: return 2;
	case REG_TYPE_UINT64:
	case REG_TYPE_INT64:
	case REG_TYPE_FLOAT64: return 4;
	}
	return 1;
}

const char *decode_type_name(enum reg_type type)
{
	switch (type) {
	case REG_TYPE_WORD: return "word";
	case REG_TYPE_INT16: return "int16";
	case REG_TYPE_UINT32: return "uint32";
	case REG_TYPE_INT32: return "int32";
	case REG_TYPE_FLOAT32: return "float32";
	case REG_TYPE_UINT64: return "uint64";
	case REG_TYPE_INT64: return "int64";
	case REG_TYPE_FLOAT64: return "float64";
	}
	return "?";
}

const char *decode_order_name(enum reg_order order)
{
	switch (order) {
	case REG_ORDER_ABCD: return "ABCD";
	case REG_ORDER_CDAB: return "CDAB";
	case REG_ORDER_BADC: return "BADC";
	case REG_ORDER_DCBA: return "DCBA";
	}
	return "?";
}

/* The value's bytes, most significant first, from width registers in the given order. */
static uint64_t assemble(enum reg_order order, const uint16_t *regs, unsigned width)
{
	uint8_t wire[8], be[8];
	unsigned nbytes = width * 2;
	uint64_t x = 0;

	for (size_t r = 0; r < width; r++) {
		wire[2 * r] = (uint8_t)(regs[r] >> 8);
		wire[2 * r + 1] = (uint8_t)(regs[r] & 0xFF);
	}
	for (unsigned i = 0; i < nbytes; i++) {
		switch (order) {
		case REG_ORDER_ABCD: be[i] = wire[i]; break;
		case REG_ORDER_BADC: be[i] = wire[i ^ 1u]; break;
		/* Registers in reverse order, each still high byte first. */
		case REG_ORDER_CDAB: be[i] = wire[2 * (width - 1 - i / 2) + i % 2]; break;
		case REG_ORDER_DCBA: be[i] = wire[nbytes - 1 - i]; break;
		default: be[i] = wire[i]; break;
		}
	}
	for (unsigned i = 0; i < nbytes; i++)
		x = (x << 8) | be[i];
	return x;
}

void decode_value(enum reg_type type, enum reg_order order, const uint16_t *regs,
		  struct decoded_value *out)
{
	unsigned width = decode_width(type);
	uint64_t x = assemble(order, regs, width);

	switch (type) {
	case REG_TYPE_WORD:
		out->kind = DECODED_INT;
		out->v.i = (int64_t)(uint16_t)x;
		break;
	case REG_TYPE_INT16:
		out->kind = DECODED_INT;
		out->v.i = (int16_t)(uint16_t)x;
		break;
	case REG_TYPE_UINT32:
		out->kind = DECODED_UINT;
		out->v.u = (uint32_t)x;
		break;
	case REG_TYPE_INT32:
		out->kind = DECODED_INT;
		out->v.i = (int32_t)(uint32_t)x;
		break;
	case REG_TYPE_FLOAT32: {
		uint32_t bits = (uint32_t)x;
		float f;
		memcpy(&f, &bits, sizeof(f));
		out->kind = DECODED_FLOAT32;
		out->v.f = (double)f;
		break;
	}
	case REG_TYPE_UINT64:
		out->kind = DECODED_UINT;
		out->v.u = x;
		break;
	case REG_TYPE_INT64:
		out->kind = DECODED_INT;
		out->v.i = (int64_t)x; /* two's complement on every target platform */
		break;
	case REG_TYPE_FLOAT64: {
		double d;
		memcpy(&d, &x, sizeof(d));
		out->kind = DECODED_FLOAT64;
		out->v.f = d;
		break;
	}
	}
}

size_t decode_registers(enum reg_type type, enum reg_order order, const uint16_t *regs,
			size_t nregs, struct decoded_value *out)
{
	unsigned width = decode_width(type);

	if (nregs % width != 0)
		return 0;
	for (size_t i = 0; i < nregs / width; i++)
		decode_value(type, order, regs + i * width, &out[i]);
	return nregs / width;
}

/*
 * Shortest "%.*g" text that reads back as the same value. A float32 is checked with
 * strtof, so 1.1f prints as 1.1 and not as the 1.100000023841858 of its double widening.
 */
static int format_real(double f, bool single, char *buf, size_t len)
{
	int max_digits = single ? 9 : 17; /* enough for an exact round trip (IEEE 754) */
	int n = -1;

	for (int digits = 1; digits <= max_digits; digits++) {
		n = snprintf(buf, len, "%.*g", digits, f);
		if (n < 0 || (size_t)n >= len)
			return -1;
		if (single ? strtof(buf, NULL) == (float)f : strtod(buf, NULL) == f)
			break;
	}
	/* "1" would read as an integer; keep it a real. */
	if (!strpbrk(buf, ".eE")) {
		if ((size_t)n + 2 >= len)
			return -1;
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	return n;
}

int decode_format_json(const struct decoded_value *v, char *buf, size_t len)
{
	int n;

	switch (v->kind) {
	case DECODED_INT: n = snprintf(buf, len, "%" PRId64, v->v.i); break;
	case DECODED_UINT: n = snprintf(buf, len, "%" PRIu64, v->v.u); break;
	case DECODED_FLOAT32:
	case DECODED_FLOAT64:
		if (!isfinite(v->v.f))
			n = snprintf(buf, len, "null");
		else
			return format_real(v->v.f, v->kind == DECODED_FLOAT32, buf, len);
		break;
	default: return -1;
	}
	return n < 0 || (size_t)n >= len ? -1 : n;
}
