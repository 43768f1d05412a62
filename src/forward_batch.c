/*
 * forward_batch.c - cutting readings into messages; see forward_batch.h.
 */
#include "forward_batch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Array mode joins JSON objects for the uplink's own destination; a message a script sent
 * elsewhere, or as text of its own, goes alone (docs/scripts.md). */
static bool joinable(const struct forward_part *p)
{
	return !p->topic && p->len > 0 && p->payload[0] == '{';
}

size_t forward_batch_span(const struct forward_options *o, const struct forward_part *parts,
			  size_t n)
{
	if (!o->array || !joinable(&parts[0]))
		return 1;
	size_t count = 0, bytes = 2;
	while (count < n && count < (size_t)o->array_max_count && joinable(&parts[count])) {
		size_t next = bytes + parts[count].len + (count ? 1 : 0);
		if (count > 0 && next > o->array_max_bytes)
			break;
		bytes = next;
		count++;
	}
	return count ? count : 1;
}

char *forward_batch_payload(const struct forward_options *o, const struct forward_part *parts,
			    size_t n, size_t *len)
{
	if (!o->array || !joinable(&parts[0])) {
		*len = parts[0].len;
		return (char *)parts[0].payload;
	}
	size_t total = 2;
	for (size_t i = 0; i < n; i++)
		total += parts[i].len + 1;
	char *buf = malloc(total + 1);
	if (!buf)
		return NULL;
	size_t pos = 0;
	buf[pos++] = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf[pos++] = ',';
		memcpy(buf + pos, parts[i].payload, parts[i].len);
		pos += parts[i].len;
	}
	buf[pos++] = ']';
	buf[pos] = '\0';
	*len = pos;
	return buf;
}
