/*
 * reading.h - one poll of one device: the values of all its blocks, or why it failed.
 *
 * The poller fills readings and hands them to its sink; the daemon stores them and the
 * message encoder (message.h) turns them into JSON. This header is all a producer needs,
 * so the poller does not see the encoder.
 *
 * Ownership: a reading owns values and decoded (malloc'd, freed by reading_clear) and
 * borrows its device. A reading is used by one thread at a time; a sink that keeps one
 * copies it. No function here fails.
 */
#ifndef MODBRIDGE_READING_H
#define MODBRIDGE_READING_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "decode.h"

#define READING_ERROR_MAX 160

struct reading {
	const struct device_config *device; /* borrowed; outlives the reading */
	int64_t ts_ms;                      /* the instant the reading belongs to (wall clock) */
	uint16_t *values;                   /* all blocks' values in order; bits are 0/1 */
	size_t value_count;
	char error[READING_ERROR_MAX]; /* "" when the poll succeeded */
	/* Typed devices (type other than word): the decoded values, which V then holds; the
	 * registers stay in values. NULL for word devices. Freed by reading_clear. */
	struct decoded_value *decoded;
	size_t decoded_count;
};

/* Frees the values (and decoded values) of a reading, not the reading itself. Accepts NULL. */
void reading_clear(struct reading *r);

#endif
