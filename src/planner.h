/*
 * planner.h - the request optimiser and the bus-time model.
 *
 * A device's blocks (the router's "Start @" / "Num word/bit" lists) say what to read; a
 * plan says how: the Modbus read transactions that cover them. The planner
 *   - splits a block that is longer than one request may be (125 registers or 2000 bits,
 *     or a lower per-device maximum), and
 *   - when merging is on, merges neighbouring blocks across a gap whenever reading the
 *     gap costs less bus time than one more transaction would, never above the maximum.
 * On an RTU line the cost is the line time of the request and the response at the line's
 * baud rate and framing, the silent intervals around each frame and a per-transaction
 * turnaround allowance for the slave (docs/modbus.md gives the formula). Over Modbus TCP
 * a transaction's round trip dwarfs its bytes, so merging simply minimises transactions.
 * The plan is optimal for that cost among plans made of whole pieces (dynamic
 * programming over the sorted pieces).
 *
 * The values a transaction returns are copied back into the blocks' places with
 * planner_scatter(), so a reading is identical whatever the plan.
 *
 * Pure functions over caller-owned memory (a plan owns its transaction array); no global
 * state, thread-safe.
 */
#ifndef MODBRIDGE_PLANNER_H
#define MODBRIDGE_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blocks.h"
#include "config_modbus.h"

/* An RTU read request: address, function, start (2), count (2), CRC (2). */
#define PLANNER_REQUEST_BYTES 8

struct plan_tx {
	uint16_t start;     /* first address read */
	uint16_t count;     /* registers (0x03/0x04) or bits (0x01/0x02) */
	bool merged;        /* reads more than one block, or addresses no block asked for */
	size_t first_block; /* lowest configuration index of the blocks it covers */
};

struct plan {
	struct plan_tx *tx; /* malloc'd; planner_plan_free() releases it */
	size_t count;
};

/* The bus-time model of one RTU line (nanoseconds). */
struct line_timing {
	int64_t char_ns;       /* one character: start + data + parity + stop bits */
	int64_t t35_ns;        /* end-of-frame silence: 3.5 characters (1.75 ms above 19200 Bd) */
	int64_t gap_ns;        /* silence before each request: the larger of t35 and the
				* port's silent_interval_ms */
	int64_t turnaround_ns; /* the port's turnaround_ms: the slave's time to answer */
};

struct plan_cost {
	size_t transactions;
	size_t request_bytes; /* RTU frames on the wire */
	size_t response_bytes;
	int64_t time_ns; /* estimated line time (RTU), 0 without a line model */
};

/* Bits per character on the wire: 1 start + data bits + parity (0/1) + stop bits. */
int planner_char_bits(const struct serial_port_config *port);

/* Fills the bus-time model of a serial port from its settings. */
void planner_line_timing(const struct serial_port_config *port, struct line_timing *out);

/*
 * The silence modbridge keeps before each RTU request, in microseconds: the port's
 * silent_interval_ms, or 3.5 characters (1750 us above 19200 Bd) when it is -1 (auto).
 */
int64_t planner_silent_interval_us(const struct serial_port_config *port);

/* Bytes of an RTU response to a read of count registers/bits with function 1..4. */
size_t planner_response_bytes(int function, unsigned count);

/* Estimated line time of one read transaction (gap, request, t3.5, turnaround, response). */
int64_t planner_tx_time_ns(const struct line_timing *line, int function, unsigned count);

/*
 * Plans the reads of n blocks (n >= 1) for function 1..4. max_per_read bounds every
 * transaction (0 or above the protocol limit means the limit). With merge false the plan
 * is the blocks themselves, in configuration order, each split only where it exceeds
 * max_per_read: exactly the unoptimised requests. With merge true, blocks may be merged
 * as described above; line is the RTU bus-time model, or NULL for Modbus TCP.
 * Transactions are ordered by the first block they cover, so a device that does not
 * answer fails on a transaction that covers its first block.
 * Returns 0 and fills *out, MB_ERR_INVAL on bad arguments, MB_ERR_NOMEM.
 */
int planner_plan(const struct block *blocks, size_t n, int function, unsigned max_per_read,
		 bool merge, const struct line_timing *line, struct plan *out);

/* Frees a plan's transactions and empties it. Accepts NULL. */
void planner_plan_free(struct plan *plan);

/*
 * Totals for one scan with a plan: transactions, RTU bytes each way and, when line is
 * not NULL, the estimated line time.
 */
void planner_estimate(const struct plan *plan, int function, const struct line_timing *line,
		      struct plan_cost *out);

/*
 * Copies what transaction tx read (tx_values[k] is address tx->start + k) into values,
 * the reading's array laid out block after block in configuration order (the layout of
 * "V"). Every block position that tx covers is written; nothing else is touched.
 */
void planner_scatter(const struct block *blocks, size_t n, const struct plan_tx *tx,
		     const uint16_t *tx_values, uint16_t *values);

#endif
