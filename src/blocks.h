/*
 * blocks.h - register blocks: the router's "Start @" and "Num word/bit" lists.
 *
 * The router takes a device's blocks as two semicolon-separated lists of equal length,
 * for example start "1;10;55" and count "1;3;2". This module parses such lists and checks
 * them against the Modbus protocol limits. It has no other dependency, so it is easy to
 * unit-test and fuzz.
 */
#ifndef MODBRIDGE_BLOCKS_H
#define MODBRIDGE_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/* Protocol limits for one read request (Modbus application protocol v1.1b3, 6.1-6.4). */
#define BLOCKS_MAX_REGISTERS 125
#define BLOCKS_MAX_BITS 2000
/* Upper bound on list length; far above any real device, it bounds memory on bad input. */
#define BLOCKS_MAX_ENTRIES 1024
/* Upper bound on the values of one device (all blocks): the whole address space once. */
#define BLOCKS_MAX_VALUES 65536

struct block {
	uint16_t start; /* first address on the wire (0-based, as libmodbus sends it) */
	uint16_t count; /* registers (0x03/0x04) or bits (0x01/0x02) */
};

/*
 * Parses a list of non-negative decimal integers separated by ';' (the router's form),
 * with optional spaces around each number. A single number is a list of one.
 * On success stores a malloc'd array in *out (caller frees) and its length in *n.
 * On failure returns MB_ERR_INVAL, leaves *out untouched and writes a short reason
 * (such as "'1;;3': empty entry 2") into err.
 */
int blocks_parse_list(const char *text, uint32_t **out, size_t *n, char *err, size_t errlen);

/*
 * Builds the block array from parallel start and count lists for a Modbus function code
 * (1..4), checking: equal lengths, count >= 1, start <= 65535, start + count <= 65536
 * and at most BLOCKS_MAX_VALUES values in all. A count above the protocol limit of one
 * request (BLOCKS_MAX_REGISTERS / BLOCKS_MAX_BITS) is allowed: such a block is read with
 * several requests (planner.h). On success stores a malloc'd array in *out and its length
 * in *n; on failure returns MB_ERR_INVAL and writes the reason into err.
 */
int blocks_build(const uint32_t *starts, size_t nstarts, const uint32_t *counts, size_t ncounts,
		 int function, struct block **out, size_t *n, char *err, size_t errlen);

/* Total number of values (registers or bits) in all blocks. */
size_t blocks_total(const struct block *blocks, size_t n);

#endif
