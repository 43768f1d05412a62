/*
 * decode.h - register data types: raw Modbus registers -> typed values -> JSON numbers.
 *
 * A device's `type` says how its registers become the values of "V": `word` keeps each
 * register as an unsigned 16-bit number (the router's behaviour), `int16` reads it as
 * signed, and the 32- and 64-bit types combine two or four consecutive registers into one
 * value. `byte_order` says in which order the registers carry the value's bytes (see enum
 * reg_order in config_modbus.h and docs/modbus.md for byte-by-byte tables).
 *
 * Pure functions over caller-owned memory: no allocation, no global state, thread-safe.
 */
#ifndef MODBRIDGE_DECODE_H
#define MODBRIDGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "config_modbus.h"

/* Longest JSON text of one value ("-9223372036854775808", "-1.7976931348623157e+308"). */
#define DECODE_JSON_MAX 32

enum decoded_kind {
	DECODED_INT,     /* i: word, int16, int32, int64 */
	DECODED_UINT,    /* u: uint32, uint64 */
	DECODED_FLOAT32, /* f: a float32 widened to double (exactly) */
	DECODED_FLOAT64, /* f */
};

struct decoded_value {
	enum decoded_kind kind;
	union {
		int64_t i;
		uint64_t u;
		double f;
	} v;
};

/* Registers per value: 1 (word, int16), 2 (32-bit types) or 4 (64-bit types). */
unsigned decode_width(enum reg_type type);

/* The configuration name of a type ("float32") or of an order ("CDAB"). */
const char *decode_type_name(enum reg_type type);
const char *decode_order_name(enum reg_order order);

/*
 * Decodes one value from decode_width(type) registers, as read from the wire (regs[0] is
 * the register with the lowest address). For 16-bit types only the byte swap of the
 * order matters (BADC and DCBA swap the two bytes; ABCD and CDAB leave them).
 */
void decode_value(enum reg_type type, enum reg_order order, const uint16_t *regs,
		  struct decoded_value *out);

/*
 * Decodes nregs registers into nregs / width values in out (room for that many).
 * Returns the number of values, or 0 with nothing written when nregs is not a whole
 * multiple of the type's width (the configuration rules that out for every block).
 */
size_t decode_registers(enum reg_type type, enum reg_order order, const uint16_t *regs,
			size_t nregs, struct decoded_value *out);

/*
 * Writes v as JSON number text into buf (NUL-terminated): integers in decimal; floats as
 * the shortest decimal that reads back as the same float32/float64, always with a '.' or
 * an exponent so it reads as a real ("1.0", "1.5e-07"); NaN and infinities as `null`,
 * since JSON has no number for them. Returns the length, or -1 when buf is too small
 * (DECODE_JSON_MAX is always enough).
 */
int decode_format_json(const struct decoded_value *v, char *buf, size_t len);

#endif
