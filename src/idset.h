/*
 * idset.h - a set of store ids kept as sorted, disjoint, inclusive ranges.
 *
 * The forwarder remembers which readings it must not fetch again (in flight, or delivered
 * but not yet removed from the store). Those ids come in runs, because the store hands
 * them out in id order, so a backlog of a million delivered readings whose delete failed
 * is a handful of ranges, not eight megabytes of ids.
 *
 * A pure data structure: no locking (the owner serialises), no logging. Every function
 * that can allocate returns 0 or MB_ERR_NOMEM; idset_add_range and idset_remove_range
 * leave the set unchanged on failure, the _set variants may have applied a part.
 * Ownership: the set owns its range array; idset_free releases it (the struct itself is
 * the caller's).
 */
#ifndef MODBRIDGE_IDSET_H
#define MODBRIDGE_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Inclusive: lo <= hi. */
struct id_range {
	int64_t lo;
	int64_t hi;
};

struct idset {
	struct id_range *r; /* sorted by lo, disjoint and not adjacent */
	size_t n, cap;
	uint64_t count; /* ids in the set */
};

/* An empty set; equivalent to zero-initialising the struct. */
void idset_init(struct idset *s);

/* Releases the ranges; the set is empty and usable again. Accepts NULL. */
void idset_free(struct idset *s);

/* Empties the set, keeping its memory. */
void idset_clear(struct idset *s);

/* Adds lo..hi (inclusive, lo <= hi), merging with neighbours. */
int idset_add_range(struct idset *s, int64_t lo, int64_t hi);

/* Adds one id. */
int idset_add(struct idset *s, int64_t id);

/* Removes lo..hi; ids not in the set are ignored. May split a range (hence may allocate). */
int idset_remove_range(struct idset *s, int64_t lo, int64_t hi);

/* Removes every id of other from s. */
int idset_remove_set(struct idset *s, const struct idset *other);

/* Adds every id of other to s. */
int idset_add_set(struct idset *s, const struct idset *other);

bool idset_contains(const struct idset *s, int64_t id);

/*
 * The range of sorted, disjoint ranges r[0..n) that contains id, or NULL. Shared by the store,
 * which walks its queue past the ranges it is told to skip.
 */
const struct id_range *idset_ranges_find(const struct id_range *r, size_t n, int64_t id);

#endif
