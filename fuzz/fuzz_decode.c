/*
 * fuzz_decode.c - libFuzzer target: register values as a device sends them -> typed
 * values -> the JSON number text of "V" (decode_registers + decode_format_json).
 *
 * Input layout: byte 0 picks the type (word .. float64), byte 1 the byte order (ABCD ..
 * DCBA); the rest are the registers, two bytes each, high byte first, as on the wire.
 *
 * Besides not crashing, the target checks:
 *  - the number of values is registers / width, and nothing is written for a partial value;
 *  - each value equals a reference built another way: the order as the composition of its
 *    two documented operations (CDAB reverses the registers, BADC swaps the bytes of each
 *    register, DCBA does both), then the bytes read big-endian;
 *  - each value's JSON text fits DECODE_JSON_MAX and reads back as the same number:
 *    integers exactly, floats bit for bit (the sign of zero included) with no more digits
 *    than the shortest round trip needs (9 for float32, 17 for float64) and a '.' or an
 *    exponent; NaN and infinities as null.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REGS 64

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_decode: invariant broken: %s\n", what);
		abort();
	}
}

/* The reference: width registers -> the value's bits, most significant byte first. */
static uint64_t reference_bits(enum reg_order order, const uint16_t *regs, unsigned width)
{
	uint16_t r[4];
	int reverse = order == REG_ORDER_CDAB || order == REG_ORDER_DCBA;
	int swap = order == REG_ORDER_BADC || order == REG_ORDER_DCBA;
	uint64_t x = 0;

	for (unsigned i = 0; i < width; i++) {
		uint16_t v = regs[reverse ? width - 1 - i : i];
		r[i] = swap ? (uint16_t)((v << 8) | (v >> 8)) : v;
	}
	for (unsigned i = 0; i < width; i++)
		x = (x << 16) | r[i];
	return x;
}

static uint64_t double_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

/* Significant digits of a decimal number's text: leading and trailing zeros of the
 * mantissa (as in the ".0" that keeps "12345678901234568.0" a real) do not count. */
static int significant_digits(const char *text)
{
	int digits = 0, zeros = 0, leading = 1;
	for (const char *p = text; *p && *p != 'e' && *p != 'E'; p++) {
		if (!isdigit((unsigned char)*p))
			continue;
		if (leading && *p == '0')
			continue;
		leading = 0;
		digits++;
		zeros = *p == '0' ? zeros + 1 : 0;
	}
	return digits - zeros;
}

static void check_value(enum reg_type type, uint64_t bits, const struct decoded_value *v)
{
	switch (type) {
	case REG_TYPE_WORD:
		check(v->kind == DECODED_INT && v->v.i == (int64_t)(uint16_t)bits, "word");
		break;
	case REG_TYPE_INT16:
		check(v->kind == DECODED_INT && v->v.i == (int16_t)(uint16_t)bits, "int16");
		break;
	case REG_TYPE_UINT32:
		check(v->kind == DECODED_UINT && v->v.u == (uint32_t)bits, "uint32");
		break;
	case REG_TYPE_INT32:
		check(v->kind == DECODED_INT && v->v.i == (int32_t)(uint32_t)bits, "int32");
		break;
	case REG_TYPE_UINT64: check(v->kind == DECODED_UINT && v->v.u == bits, "uint64"); break;
	case REG_TYPE_INT64:
		check(v->kind == DECODED_INT && v->v.i == (int64_t)bits, "int64");
		break;
	case REG_TYPE_FLOAT32: {
		uint32_t b = (uint32_t)bits;
		float f;
		memcpy(&f, &b, sizeof(f));
		check(v->kind == DECODED_FLOAT32, "float32 kind");
		if (isnan(f))
			check(isnan(v->v.f), "float32 NaN");
		else
			check(v->v.f == (double)f && !signbit(v->v.f) == !signbit(f), "float32");
		break;
	}
	case REG_TYPE_FLOAT64: {
		double d;
		memcpy(&d, &bits, sizeof(d));
		check(v->kind == DECODED_FLOAT64, "float64 kind");
		if (isnan(d))
			check(isnan(v->v.f), "float64 NaN");
		else
			check(double_bits(d) == double_bits(v->v.f), "float64");
		break;
	}
	}
}

static void check_json(const struct decoded_value *v)
{
	char text[DECODE_JSON_MAX];
	int len = decode_format_json(v, text, sizeof(text));
	check(len > 0 && (size_t)len == strlen(text), "JSON text fits and its length is right");

	char *end = NULL;
	errno = 0;
	switch (v->kind) {
	case DECODED_INT:
		check(strtoll(text, &end, 10) == v->v.i && *end == '\0' && errno == 0,
		      "integer reads back");
		break;
	case DECODED_UINT:
		check(strtoull(text, &end, 10) == v->v.u && *end == '\0' && errno == 0,
		      "unsigned reads back");
		break;
	case DECODED_FLOAT32:
	case DECODED_FLOAT64:
		if (!isfinite(v->v.f)) {
			check(strcmp(text, "null") == 0, "NaN and infinities are null");
			break;
		}
		check(strpbrk(text, ".eE") != NULL, "a float reads as a real");
		if (v->kind == DECODED_FLOAT32) {
			float f = strtof(text, &end);
			check(*end == '\0' && (double)f == v->v.f &&
				      !signbit(f) == !signbit(v->v.f),
			      "float32 reads back exactly");
			check(significant_digits(text) <= 9, "float32 shortest text");
		} else {
			double d = strtod(text, &end);
			check(*end == '\0' && double_bits(d) == double_bits(v->v.f),
			      "float64 reads back exactly");
			check(significant_digits(text) <= 17, "float64 shortest text");
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	enum reg_type type = (enum reg_type)(data[0] % 8);
	enum reg_order order = (enum reg_order)(data[1] % 4);
	uint16_t regs[MAX_REGS] = {0};
	size_t nregs = (size - 2) / 2;
	if (nregs > MAX_REGS)
		nregs = MAX_REGS;
	for (size_t i = 0; i < nregs; i++)
		regs[i] = (uint16_t)(data[2 + 2 * i] << 8 | data[3 + 2 * i]);

	unsigned width = decode_width(type);
	struct decoded_value out[MAX_REGS + 1];
	memset(out, 0xA5, sizeof(out));
	size_t n = decode_registers(type, order, regs, nregs, out);
	if (nregs % width != 0) {
		check(n == 0, "a partial value is refused");
		const uint8_t *raw = (const uint8_t *)out;
		for (size_t i = 0; i < sizeof(out); i++)
			check(raw[i] == 0xA5, "nothing written for a refused block");
		return 0;
	}
	check(n == nregs / width, "one value per width registers");
	for (size_t i = 0; i < n; i++) {
		check_value(type, reference_bits(order, regs + i * width, width), &out[i]);
		check_json(&out[i]);
	}
	return 0;
}
