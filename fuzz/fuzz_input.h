/*
 * fuzz_input.h - reading a fuzzer's bytes as numbers, for the targets that build
 * structured inputs (fuzz_message.c, fuzz_script.c). Past the end, the input reads as
 * zeros, so every input, however short, makes a whole value.
 */
#ifndef MODBRIDGE_FUZZ_INPUT_H
#define MODBRIDGE_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct input {
	const uint8_t *p;
	size_t left;
};

/* The next `bytes` bytes (at most 8) as a big-endian number. */
static inline uint64_t take_uint(struct input *in, size_t bytes)
{
	uint64_t v = 0;
	for (size_t i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->left) {
			v |= *in->p++;
			in->left--;
		}
	}
	return v;
}

#endif
