/*
 * planner.c - the request optimiser and the bus-time model; see planner.h.
 *
 * Planning with merging on, in four steps:
 *   1. the blocks' address ranges are sorted;
 *   2. ranges that overlap or touch become one run (reading them apart never pays);
 *   3. a run longer than the per-request maximum is cut into pieces of the maximum;
 *   4. a dynamic programme over the pieces finds the grouping of consecutive pieces
 *      (each group one transaction, spanning at most the maximum) of least total cost.
 * The DP is exact for the cost model over piece boundaries, and cheap: each piece looks
 * back only as far as a request can reach (at most 125 registers or 2000 bits).
 */
#include "planner.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Over TCP, what a transaction costs beyond its bytes: a round trip on a LAN (order of
 * magnitude only; it just has to dwarf the bytes so merging minimises transactions). */
#define TCP_TX_NS 1000000LL
#define TCP_BYTE_NS 80LL      /* about 100 Mbit/s */
#define TCP_OVERHEAD_BYTES 21 /* MBAP headers and PDU fields of request + response */

struct range {
	uint32_t start; /* first address */
	uint32_t end;   /* one past the last address (may be 65536) */
};

int planner_char_bits(const struct serial_port_config *port)
{
	return 1 + port->data_bits + (port->parity == 'N' ? 0 : 1) + port->stop_bits;
}

/* 3.5 characters; the Modbus serial line spec fixes 1750 us above 19200 Bd. */
static int64_t t35_ns(const struct serial_port_config *port, int64_t char_ns)
{
	if (port->baudrate > 19200)
		return 1750000;
	return char_ns * 7 / 2;
}

void planner_line_timing(const struct serial_port_config *port, struct line_timing *out)
{
	int64_t char_ns = (int64_t)planner_char_bits(port) * 1000000000LL / port->baudrate;
	int64_t t35 = t35_ns(port, char_ns);
	int64_t silent = port->silent_interval_ms < 0 ? t35 : port->silent_interval_ms * 1000000LL;

	out->char_ns = char_ns;
	out->t35_ns = t35;
	out->gap_ns = silent > t35 ? silent : t35;
	out->turnaround_ns = (int64_t)port->turnaround_ms * 1000000LL;
}

int64_t planner_silent_interval_us(const struct serial_port_config *port)
{
	if (port->silent_interval_ms >= 0)
		return (int64_t)port->silent_interval_ms * 1000;
	int64_t char_ns = (int64_t)planner_char_bits(port) * 1000000000LL / port->baudrate;
	return (t35_ns(port, char_ns) + 999) / 1000;
}

size_t planner_response_bytes(int function, unsigned count)
{
	/* address, function, byte count, data, CRC (2) */
	size_t data = function == 1 || function == 2 ? (count + 7) / 8 : 2 * (size_t)count;
	return 5 + data;
}

int64_t planner_tx_time_ns(const struct line_timing *line, int function, unsigned count)
{
	size_t chars = PLANNER_REQUEST_BYTES + planner_response_bytes(function, count);
	/* gap before the request, both frames, the t3.5 that ends the request (the slave
	 * cannot answer before it), and the slave's turnaround */
	return line->gap_ns + (int64_t)chars * line->char_ns + line->t35_ns + line->turnaround_ns;
}

static int64_t tx_cost_ns(const struct line_timing *line, int function, unsigned count)
{
	if (line)
		return planner_tx_time_ns(line, function, count);
	size_t bytes = TCP_OVERHEAD_BYTES + planner_response_bytes(function, count);
	return TCP_TX_NS + (int64_t)bytes * TCP_BYTE_NS;
}

static unsigned protocol_limit(int function)
{
	return function == 1 || function == 2 ? BLOCKS_MAX_BITS : BLOCKS_MAX_REGISTERS;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

static int cmp_tx(const void *a, const void *b)
{
	const struct plan_tx *x = a, *y = b;
	if (x->first_block != y->first_block)
		return x->first_block < y->first_block ? -1 : 1;
	return (x->start > y->start) - (x->start < y->start);
}

/* Appends [start, end) cut into pieces of at most max. */
static void cut(struct range *out, size_t *m, uint32_t start, uint32_t end, unsigned max)
{
	for (uint32_t s = start; s < end; s += max) {
		out[*m].start = s;
		out[*m].end = end - s > max ? s + max : end;
		(*m)++;
	}
}

/* Upper bound on the pieces n blocks can make: each block cut into pieces of max. */
static size_t max_pieces(const struct block *blocks, size_t n, unsigned max)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += (blocks[i].count + max - 1) / max;
	return total;
}

static void describe_tx(const struct block *blocks, size_t n, struct plan_tx *tx)
{
	uint32_t s = tx->start, e = (uint32_t)tx->start + tx->count;
	bool inside_one = false;

	tx->first_block = n;
	for (size_t i = 0; i < n; i++) {
		uint32_t bs = blocks[i].start, be = bs + blocks[i].count;
		if (bs < e && s < be && i < tx->first_block)
			tx->first_block = i;
		if (bs <= s && e <= be)
			inside_one = true;
	}
	tx->merged = !inside_one;
}

int planner_plan(const struct block *blocks, size_t n, int function, unsigned max_per_read,
		 bool merge, const struct line_timing *line, struct plan *out)
{
	unsigned max = protocol_limit(function);
	struct range *ranges = NULL, *pieces = NULL;
	int64_t *best = NULL;
	size_t *from = NULL;
	struct plan_tx *tx = NULL;
	size_t m = 0, ntx = 0;
	int rc = MB_ERR_NOMEM;

	if (!blocks || n == 0 || !out || function < 1 || function > 4)
		return MB_ERR_INVAL;
	if (max_per_read > 0 && max_per_read < max)
		max = max_per_read;

	size_t cap = max_pieces(blocks, n, max);
	pieces = malloc(cap * sizeof(*pieces));
	tx = malloc(cap * sizeof(*tx));
	if (!pieces || !tx)
		goto fail;

	if (!merge) {
		/* The unoptimised requests: each block as configured, cut only where too long. */
		for (size_t i = 0; i < n; i++) {
			size_t first = m;
			cut(pieces, &m, blocks[i].start,
			    (uint32_t)blocks[i].start + blocks[i].count, max);
			for (size_t k = first; k < m; k++)
				tx[ntx++] = (struct plan_tx){(uint16_t)pieces[k].start,
							     (uint16_t)(pieces[k].end -
									pieces[k].start),
							     false, i};
		}
		goto done;
	}

	ranges = malloc(n * sizeof(*ranges));
	if (!ranges)
		goto fail;
	for (size_t i = 0; i < n; i++)
		ranges[i] = (struct range){blocks[i].start,
					   (uint32_t)blocks[i].start + blocks[i].count};
	qsort(ranges, n, sizeof(*ranges), cmp_range);

	/* Runs of overlapping or touching ranges, each cut into pieces. */
	for (size_t i = 0; i < n;) {
		uint32_t s = ranges[i].start, e = ranges[i].end;
		size_t j = i + 1;
		for (; j < n && ranges[j].start <= e; j++)
			if (ranges[j].end > e)
				e = ranges[j].end;
		cut(pieces, &m, s, e, max);
		i = j;
	}

	/* best[i]: least cost of reading pieces [0, i); from[i]: where its last group starts. */
	best = malloc((m + 1) * sizeof(*best));
	from = malloc((m + 1) * sizeof(*from));
	if (!best || !from)
		goto fail;
	best[0] = 0;
	for (size_t i = 1; i <= m; i++) {
		best[i] = INT64_MAX;
		from[i] = i - 1;
		for (size_t j = i; j-- > 0;) {
			uint32_t span = pieces[i - 1].end - pieces[j].start;
			if (span > max)
				break;
			int64_t c = best[j] + tx_cost_ns(line, function, span);
			if (c < best[i]) {
				best[i] = c;
				from[i] = j;
			}
		}
	}
	/* Walk the choices back; groups come out last first. */
	for (size_t i = m; i > 0; i = from[i]) {
		size_t j = from[i];
		tx[ntx++] =
			(struct plan_tx){(uint16_t)pieces[j].start,
					 (uint16_t)(pieces[i - 1].end - pieces[j].start), false, 0};
	}
	for (size_t k = 0; k < ntx; k++)
		describe_tx(blocks, n, &tx[k]);
	qsort(tx, ntx, sizeof(*tx), cmp_tx);

done:
	out->tx = tx;
	out->count = ntx;
	tx = NULL;
	rc = 0;
fail:
	free(tx);
	free(ranges);
	free(pieces);
	free(best);
	free(from);
	return rc;
}

void planner_plan_free(struct plan *plan)
{
	if (!plan)
		return;
	free(plan->tx);
	plan->tx = NULL;
	plan->count = 0;
}

void planner_estimate(const struct plan *plan, int function, const struct line_timing *line,
		      struct plan_cost *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t k = 0; k < plan->count; k++) {
		out->transactions++;
		out->request_bytes += PLANNER_REQUEST_BYTES;
		out->response_bytes += planner_response_bytes(function, plan->tx[k].count);
		if (line)
			out->time_ns += planner_tx_time_ns(line, function, plan->tx[k].count);
	}
}

void planner_scatter(const struct block *blocks, size_t n, const struct plan_tx *tx,
		     const uint16_t *tx_values, uint16_t *values)
{
	uint32_t s = tx->start, e = (uint32_t)tx->start + tx->count;
	size_t position = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t bs = blocks[i].start, be = bs + blocks[i].count;
		uint32_t lo = bs > s ? bs : s, hi = be < e ? be : e;
		if (lo < hi)
			memcpy(values + position + (lo - bs), tx_values + (lo - s),
			       (hi - lo) * sizeof(*values));
		position += blocks[i].count;
	}
}
