/*
 * fuzz_blocks.c - libFuzzer target: the "1;10;55" start/count list parser and checks
 * (blocks_parse_list + blocks_build).
 *
 * Input layout: byte 0 picks the function code (1..4); the rest is "START\nCOUNT", the two
 * lists as the config's start: and count: keys would hold them. Besides not crashing,
 * the target checks that every list accepted formats back to a list that parses to the
 * same numbers, that the blocks built stay in the address space and the per-device
 * value limit (a block may exceed one request: the poller splits it), and that a refusal
 * always comes with a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_blocks: invariant broken: %s\n", what);
		abort();
	}
}

/* Parses text; on success checks that the numbers survive a format/parse round trip. */
static int parse(const char *text, uint32_t **vals, size_t *n)
{
	char err[160] = "";
	int rc = blocks_parse_list(text, vals, n, err, sizeof(err));
	if (rc != 0) {
		check(rc == MB_ERR_INVAL || rc == MB_ERR_NOMEM, "error code");
		check(rc == MB_ERR_NOMEM || err[0] != '\0', "a refusal has a reason");
		return rc;
	}
	check(*n >= 1 && *n <= BLOCKS_MAX_ENTRIES, "entry count");

	size_t cap = *n * 12 + 1, pos = 0;
	char *again = malloc(cap);
	check(again != NULL, "malloc");
	for (size_t i = 0; i < *n; i++)
		pos += (size_t)snprintf(again + pos, cap - pos, "%s%u", i ? ";" : "", (*vals)[i]);
	uint32_t *vals2 = NULL;
	size_t n2 = 0;
	check(blocks_parse_list(again, &vals2, &n2, err, sizeof(err)) == 0, "round trip parses");
	check(n2 == *n && memcmp(vals2, *vals, *n * sizeof(uint32_t)) == 0, "round trip equal");
	free(vals2);
	free(again);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int function = data[0] % 4 + 1;
	char *text = malloc(size);
	check(text != NULL, "malloc");
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char *counts_text = strchr(text, '\n');
	if (counts_text)
		*counts_text++ = '\0';
	else
		counts_text = text; /* one list: use it for both */

	uint32_t *starts = NULL, *counts = NULL;
	size_t nstarts = 0, ncounts = 0;
	if (parse(text, &starts, &nstarts) == 0 && parse(counts_text, &counts, &ncounts) == 0) {
		struct block *blocks = NULL;
		size_t n = 0;
		char err[160] = "";
		int rc = blocks_build(starts, nstarts, counts, ncounts, function, &blocks, &n, err,
				      sizeof(err));
		if (rc == 0) {
			/* Blocks longer than one request are allowed (the poller splits them);
			 * the limit is on the values of the whole device. */
			size_t total = 0;
			check(n == nstarts && n == ncounts, "one block per entry");
			for (size_t i = 0; i < n; i++) {
				check(blocks[i].start == starts[i] && blocks[i].count == counts[i],
				      "blocks keep the numbers");
				check(blocks[i].count >= 1, "count at least 1");
				check((uint32_t)blocks[i].start + blocks[i].count <= 65536,
				      "address space");
				total += blocks[i].count;
			}
			check(blocks_total(blocks, n) == total, "blocks_total");
			check(total <= BLOCKS_MAX_VALUES, "values per device");
			free(blocks);
		} else {
			check(blocks == NULL && err[0] != '\0', "a refusal has a reason");
		}
	}
	free(starts);
	free(counts);
	free(text);
	return 0;
}
