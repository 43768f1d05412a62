/*
 * idset.c - sorted disjoint ranges of ids; see idset.h.
 *
 * Ranges are kept merged (no two touch), so the representation of a set is unique and
 * its size is the number of runs. Lookups are binary searches; insertions and removals
 * move the tail of the array, which stays short because ids arrive in runs.
 */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

void idset_init(struct idset *s)
{
	memset(s, 0, sizeof(*s));
}

void idset_free(struct idset *s)
{
	if (!s)
		return;
	free(s->r);
	idset_init(s);
}

void idset_clear(struct idset *s)
{
	s->n = 0;
	s->count = 0;
}

static int reserve(struct idset *s, size_t extra)
{
	if (s->n + extra <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap * 2 : 8;
	while (cap < s->n + extra)
		cap *= 2;
	struct id_range *grown = realloc(s->r, cap * sizeof(*grown));
	if (!grown)
		return MB_ERR_NOMEM;
	s->r = grown;
	s->cap = cap;
	return 0;
}

/* Index of the first range whose hi >= id (s->n when none). */
static size_t lower_bound(const struct id_range *r, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].hi < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t width(int64_t lo, int64_t hi)
{
	return (uint64_t)hi - (uint64_t)lo + 1;
}

int idset_add_range(struct idset *s, int64_t lo, int64_t hi)
{
	if (lo > hi)
		return MB_ERR_INVAL;
	/* Ranges that overlap or touch lo..hi: from the first with hi >= lo - 1 ... */
	size_t first = lower_bound(s->r, s->n, lo == INT64_MIN ? lo : lo - 1);
	size_t last = first; /* ... to the last with lo <= hi + 1 (exclusive end) */
	while (last < s->n && (hi == INT64_MAX || s->r[last].lo <= hi + 1))
		last++;
	if (first == last) {
		if (reserve(s, 1))
			return MB_ERR_NOMEM;
		memmove(s->r + first + 1, s->r + first, (s->n - first) * sizeof(*s->r));
		s->r[first] = (struct id_range){lo, hi};
		s->n++;
		s->count += width(lo, hi);
		return 0;
	}
	int64_t nlo = s->r[first].lo < lo ? s->r[first].lo : lo;
	int64_t nhi = s->r[last - 1].hi > hi ? s->r[last - 1].hi : hi;
	for (size_t i = first; i < last; i++)
		s->count -= width(s->r[i].lo, s->r[i].hi);
	s->r[first] = (struct id_range){nlo, nhi};
	s->count += width(nlo, nhi);
	memmove(s->r + first + 1, s->r + last, (s->n - last) * sizeof(*s->r));
	s->n -= last - first - 1;
	return 0;
}

int idset_add(struct idset *s, int64_t id)
{
	return idset_add_range(s, id, id);
}

int idset_remove_range(struct idset *s, int64_t lo, int64_t hi)
{
	if (lo > hi)
		return MB_ERR_INVAL;
	size_t i = lower_bound(s->r, s->n, lo);
	if (i < s->n && s->r[i].lo < lo && s->r[i].hi > hi) {
		/* lo..hi is strictly inside one range: split it in two. */
		if (reserve(s, 1))
			return MB_ERR_NOMEM;
		memmove(s->r + i + 1, s->r + i, (s->n - i) * sizeof(*s->r));
		s->n++;
		s->r[i].hi = lo - 1;
		s->r[i + 1].lo = hi + 1;
		s->count -= width(lo, hi);
		return 0;
	}
	size_t keep_from = i; /* ranges i.. that lie entirely inside lo..hi are dropped */
	size_t j = i;
	while (j < s->n && s->r[j].lo <= hi) {
		struct id_range *r = &s->r[j];
		if (r->lo < lo) { /* keeps its head */
			s->count -= width(lo, r->hi);
			r->hi = lo - 1;
			keep_from = j + 1;
		} else if (r->hi > hi) { /* keeps its tail */
			s->count -= width(r->lo, hi);
			r->lo = hi + 1;
			break;
		} else {
			s->count -= width(r->lo, r->hi);
		}
		j++;
	}
	/* Drop the fully covered ranges keep_from..j. */
	if (j > keep_from) {
		memmove(s->r + keep_from, s->r + j, (s->n - j) * sizeof(*s->r));
		s->n -= j - keep_from;
	}
	return 0;
}

int idset_remove_set(struct idset *s, const struct idset *other)
{
	for (size_t i = 0; i < other->n; i++) {
		int rc = idset_remove_range(s, other->r[i].lo, other->r[i].hi);
		if (rc)
			return rc;
	}
	return 0;
}

int idset_add_set(struct idset *s, const struct idset *other)
{
	for (size_t i = 0; i < other->n; i++) {
		int rc = idset_add_range(s, other->r[i].lo, other->r[i].hi);
		if (rc)
			return rc;
	}
	return 0;
}

const struct id_range *idset_ranges_find(const struct id_range *r, size_t n, int64_t id)
{
	size_t i = lower_bound(r, n, id);
	return i < n && r[i].lo <= id ? &r[i] : NULL;
}

bool idset_contains(const struct idset *s, int64_t id)
{
	return idset_ranges_find(s->r, s->n, id) != NULL;
}
