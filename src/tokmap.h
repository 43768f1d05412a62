/*
 * tokmap.h - a map from an uplink's message token to a slot of the forwarder's in-flight
 * table.
 *
 * With a window of 256 MQTT messages a linear search per confirmation was fine; an FTP
 * uplink keeps whole files in flight (windows of tens of thousands of messages), and a
 * search per confirmation became quadratic. Open addressing with linear probing, sized
 * once for the window, deletion by backward shift (no tombstones to accumulate).
 *
 * Pure data structure: no locking (the forwarder thread owns it), no logging. tokmap_init
 * returns 0 or MB_ERR_NOMEM; the other functions cannot fail while the map holds at most
 * the capacity it was created for.
 */
#ifndef MODBRIDGE_TOKMAP_H
#define MODBRIDGE_TOKMAP_H

#include <stdbool.h>
#include <stddef.h>

struct tokmap {
	int *keys;
	size_t *vals;
	bool *used;
	size_t mask; /* table size - 1 (a power of two, at least twice the capacity) */
};

/* A map for up to capacity tokens at once. */
int tokmap_init(struct tokmap *m, size_t capacity);

/* Frees the table. Accepts a zeroed map. */
void tokmap_free(struct tokmap *m);

/* Removes every token. */
void tokmap_clear(struct tokmap *m);

/* Maps token to val, replacing an earlier mapping of the same token. */
void tokmap_put(struct tokmap *m, int token, size_t val);

/* True (and *val set) when token is mapped. */
bool tokmap_get(const struct tokmap *m, int token, size_t *val);

/* Removes token's mapping, if any. */
void tokmap_del(struct tokmap *m, int token);

#endif
