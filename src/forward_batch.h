/*
 * forward_batch.h - how the forwarder cuts readings into messages.
 *
 * Without array mode each reading is a message. In array mode consecutive JSON objects
 * for the uplink's own destination are joined into one JSON array, bounded by
 * array_max_count readings and array_max_bytes bytes (one reading larger than the bound
 * still goes, alone). A message a script sent elsewhere (its own topic or path), or as
 * text of its own, always goes alone (docs/scripts.md).
 *
 * Pure functions over the caller's parts: no locking, no logging; the forwarder's thread
 * calls them. forward_batch_payload returns NULL only when out of memory.
 */
#ifndef MODBRIDGE_FORWARD_BATCH_H
#define MODBRIDGE_FORWARD_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "forward.h"

/* One reading on its way out (borrowed text). */
struct forward_part {
	const char *payload;
	size_t len;
	const char *topic; /* its own destination, NULL: the uplink's */
	int64_t id;        /* store id, 0 for a memory reading */
	int64_t ts_ms;
};

/* How many of parts[0..n) go into the next message (at least one; n >= 1). */
size_t forward_batch_span(const struct forward_options *o, const struct forward_part *parts,
			  size_t n);

/* The payload of parts[0..n) (n from forward_batch_span): parts[0]'s own text when it goes
 * alone (not a copy: compare with parts[0].payload before freeing), else a malloc'd JSON
 * array of them. *len is its length. */
char *forward_batch_payload(const struct forward_options *o, const struct forward_part *parts,
			    size_t n, size_t *len);

#endif
