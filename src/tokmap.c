/*
 * tokmap.c - token -> slot map with linear probing; see tokmap.h.
 */
#include "tokmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static size_t slot_of(const struct tokmap *m, int token)
{
	/* Tokens are small consecutive integers (message ids): spread them (Fibonacci hash). */
	uint64_t h = (uint64_t)(uint32_t)token * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 32) & m->mask;
}

int tokmap_init(struct tokmap *m, size_t capacity)
{
	size_t size = 16;
	while (size < 2 * capacity)
		size *= 2;
	memset(m, 0, sizeof(*m));
	m->keys = calloc(size, sizeof(*m->keys));
	m->vals = calloc(size, sizeof(*m->vals));
	m->used = calloc(size, sizeof(*m->used));
	if (!m->keys || !m->vals || !m->used) {
		tokmap_free(m);
		return MB_ERR_NOMEM;
	}
	m->mask = size - 1;
	return 0;
}

void tokmap_free(struct tokmap *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof(*m));
}

void tokmap_clear(struct tokmap *m)
{
	if (m->used)
		memset(m->used, 0, (m->mask + 1) * sizeof(*m->used));
}

void tokmap_put(struct tokmap *m, int token, size_t val)
{
	size_t i = slot_of(m, token);
	while (m->used[i] && m->keys[i] != token)
		i = (i + 1) & m->mask;
	m->used[i] = true;
	m->keys[i] = token;
	m->vals[i] = val;
}

bool tokmap_get(const struct tokmap *m, int token, size_t *val)
{
	for (size_t i = slot_of(m, token); m->used[i]; i = (i + 1) & m->mask) {
		if (m->keys[i] == token) {
			*val = m->vals[i];
			return true;
		}
	}
	return false;
}

void tokmap_del(struct tokmap *m, int token)
{
	size_t i = slot_of(m, token);
	while (m->used[i] && m->keys[i] != token)
		i = (i + 1) & m->mask;
	if (!m->used[i])
		return;
	/* Backward shift: move later members of the probe run into the hole when their home
	 * slot does not lie (cyclically) between the hole and them. */
	size_t hole = i;
	for (size_t j = (i + 1) & m->mask; m->used[j]; j = (j + 1) & m->mask) {
		size_t home = slot_of(m, m->keys[j]);
		bool between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (between)
			continue;
		m->keys[hole] = m->keys[j];
		m->vals[hole] = m->vals[j];
		hole = j;
	}
	m->used[hole] = false;
}
