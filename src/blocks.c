/*
 * blocks.c - register blocks: the router's "Start @" and "Num word/bit" lists.
 *
 * Turns the two semicolon-separated lists of a device into an array of (start, count)
 * blocks and checks them against the Modbus address space. A block may be longer than
 * one read request allows: the planner (planner.h) splits it into several requests. See
 * blocks.h. Messages written into err start with "start: " or "count: " when one of the
 * two lists is at fault, so that the caller can point at the right key.
 */
#include "blocks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Lists longer than this are not quoted in messages: the quote would drown the reason. */
#define QUOTE_MAX 40

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* "'1;;3': " when the list is short enough to quote, else "". */
static void quote_prefix(const char *text, char *buf, size_t len)
{
	if (strlen(text) <= QUOTE_MAX)
		snprintf(buf, len, "'%s': ", text);
	else
		buf[0] = '\0';
}

int blocks_parse_list(const char *text, uint32_t **out, size_t *n, char *err, size_t errlen)
{
	char q[QUOTE_MAX + 8];
	uint32_t *vals = NULL;
	size_t count = 0;
	const char *p;

	if (!text || !out || !n) {
		set_err(err, errlen, "no list given");
		return MB_ERR_INVAL;
	}
	quote_prefix(text, q, sizeof(q));

	p = text;
	while (is_blank(*p))
		p++;
	if (*p == '\0') {
		set_err(err, errlen,
			"empty list (expected numbers separated by ';', such as 1;10;55)");
		return MB_ERR_INVAL;
	}

	/* Entries = separators + 1, so one pass sizes the array exactly. */
	size_t entries = 1;
	for (p = text; *p; p++)
		if (*p == ';')
			entries++;
	if (entries > BLOCKS_MAX_ENTRIES) {
		set_err(err, errlen, "%zu entries (allowed: at most %d)", entries,
			BLOCKS_MAX_ENTRIES);
		return MB_ERR_INVAL;
	}
	vals = malloc(entries * sizeof(*vals));
	if (!vals) {
		set_err(err, errlen, "out of memory");
		return MB_ERR_NOMEM;
	}

	p = text;
	for (;;) {
		const char *num;
		uint32_t v = 0;
		int big = 0;

		while (is_blank(*p))
			p++;
		num = p;
		while (*p >= '0' && *p <= '9') {
			/* Saturate instead of wrapping, so huge numbers are reported as too big. */
			if (v > 65535)
				big = 1;
			else
				v = v * 10 + (uint32_t)(*p - '0');
			p++;
		}
		size_t digits = (size_t)(p - num);
		while (is_blank(*p))
			p++;
		if (*p != ';' && *p != '\0') {
			const char *end = p;

			while (*end && *end != ';')
				end++;
			while (end > num && is_blank(end[-1]))
				end--;
			if (*num == '-')
				set_err(err, errlen,
					"%sentry %zu ('%.*s') is negative (allowed: 0..65535)", q,
					count + 1, (int)(end - num), num);
			else
				set_err(err, errlen,
					"%sentry %zu ('%.*s') is not a number (allowed: 0..65535)",
					q, count + 1, (int)(end - num), num);
			goto fail;
		}
		if (digits == 0) {
			set_err(err, errlen, "%sempty entry %zu (expected a number 0..65535)", q,
				count + 1);
			goto fail;
		}
		if (big || v > 65535) {
			set_err(err, errlen, "%sentry %zu (%.*s) is above 65535", q, count + 1,
				(int)digits, num);
			goto fail;
		}
		vals[count++] = v;
		if (*p == '\0')
			break;
		p++; /* the ';' */
	}

	*out = vals;
	*n = count;
	return 0;

fail:
	free(vals);
	return MB_ERR_INVAL;
}

int blocks_build(const uint32_t *starts, size_t nstarts, const uint32_t *counts, size_t ncounts,
		 int function, struct block **out, size_t *n, char *err, size_t errlen)
{
	struct block *blocks;
	const char *unit;
	size_t total = 0;

	if (!out || !n || (!starts && nstarts) || (!counts && ncounts)) {
		set_err(err, errlen, "invalid arguments");
		return MB_ERR_INVAL;
	}
	switch (function) {
	case 1:
	case 2: unit = "bits"; break;
	case 3:
	case 4: unit = "registers"; break;
	default:
		set_err(err, errlen, "function %d is not a read function (allowed: 1..4)",
			function);
		return MB_ERR_INVAL;
	}
	if (nstarts == 0) {
		set_err(err, errlen, "start: empty list (expected at least one address)");
		return MB_ERR_INVAL;
	}
	if (nstarts > BLOCKS_MAX_ENTRIES) {
		set_err(err, errlen, "start: %zu entries (allowed: at most %d)", nstarts,
			BLOCKS_MAX_ENTRIES);
		return MB_ERR_INVAL;
	}
	if (ncounts != nstarts) {
		set_err(err, errlen, "count: %zu %s but start has %zu", ncounts,
			ncounts == 1 ? "entry" : "entries", nstarts);
		return MB_ERR_INVAL;
	}

	for (size_t i = 0; i < nstarts; i++) {
		if (starts[i] > 65535) {
			set_err(err, errlen, "start: entry %zu (%u) is above 65535", i + 1,
				(unsigned)starts[i]);
			return MB_ERR_INVAL;
		}
		if (counts[i] == 0) {
			set_err(err, errlen, "count: entry %zu is 0 (allowed: 1..65535 %s)", i + 1,
				unit);
			return MB_ERR_INVAL;
		}
		if (starts[i] + counts[i] > 65536) {
			set_err(err, errlen,
				"count: entry %zu: start %u + count %u goes past the last address 65535",
				i + 1, (unsigned)starts[i], (unsigned)counts[i]);
			return MB_ERR_INVAL;
		}
		total += counts[i];
	}
	/* Bounds the memory one reading takes, whatever the file says. */
	if (total > BLOCKS_MAX_VALUES) {
		set_err(err, errlen,
			"count: the blocks add up to %zu %s (allowed: at most %d per device)",
			total, unit, BLOCKS_MAX_VALUES);
		return MB_ERR_INVAL;
	}

	blocks = malloc(nstarts * sizeof(*blocks));
	if (!blocks) {
		set_err(err, errlen, "out of memory");
		return MB_ERR_NOMEM;
	}
	for (size_t i = 0; i < nstarts; i++) {
		blocks[i].start = (uint16_t)starts[i];
		blocks[i].count = (uint16_t)counts[i];
	}
	*out = blocks;
	*n = nstarts;
	return 0;
}

size_t blocks_total(const struct block *blocks, size_t n)
{
	size_t total = 0;

	if (!blocks)
		return 0;
	for (size_t i = 0; i < n; i++)
		total += blocks[i].count;
	return total;
}
