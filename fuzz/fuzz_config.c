/*
 * fuzz_config.c - libFuzzer target: the YAML configuration loader (config_load).
 *
 * Each input is written to an in-memory file (memfd) and loaded by path, exactly as
 * `modbridge check -c FILE` would. The loader must never crash, leak or hang, must
 * report at least one diagnostic whenever it refuses a file, and everything it accepts
 * must satisfy the invariants the rest of the daemon relies on (checked below and
 * turned into a crash when broken, so the fuzzer reports them).
 *
 * Relative paths in inputs resolve against /proc/self/fd, where nothing readable is
 * found, so certificate checks fail cleanly instead of touching real files.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
		abort();
	}
}

static void check_config(const struct config *cfg)
{
	check(cfg->imei != NULL, "imei set");
	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *d = &cfg->devices[i];
		check(d->id && d->id[0], "device id non-empty");
		check(d->function >= 1 && d->function <= 4, "function 1..4");
		check(d->block_count >= 1 && d->blocks, "at least one block");
		check(d->period_ms >= 100, "period >= 100 ms");
		size_t limit = d->function <= 2 ? BLOCKS_MAX_BITS : BLOCKS_MAX_REGISTERS;
		for (size_t b = 0; b < d->block_count; b++) {
			check(d->blocks[b].count >= 1 && d->blocks[b].count <= limit,
			      "count in range");
			check((uint32_t)d->blocks[b].start + d->blocks[b].count <= 65536,
			      "block inside the address space");
		}
		if (d->transport == TRANSPORT_TCP)
			check(d->host && d->port > 0 && d->port <= 65535, "TCP host and port");
		else
			check(d->serial != NULL, "RTU device has a port");
		check(config_find_device(cfg, d->id) == d, "device ids unique");
	}
	check(cfg->mqtt.qos >= 0 && cfg->mqtt.qos <= 2, "qos 0..2");
	check(cfg->logger.inflight_window >= 1, "window >= 1");
	check(cfg->logger.store_path && cfg->logger.topic, "logger paths set");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		log_set_level(LOG_LVL_ERROR);
		fd = memfd_create("fuzz_config.yaml", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();

	struct config_diags diags = {0};
	struct config *cfg = NULL;
	int rc = config_load(path, &cfg, &diags);
	if (rc == 0) {
		check(cfg != NULL, "config returned on success");
		check(diags.errors == 0, "no errors on success");
		check_config(cfg);
		config_free(cfg);
	} else {
		check(cfg == NULL, "out-parameter untouched on failure");
		check(rc == MB_ERR_NOMEM || diags.errors > 0, "a refusal names its reason");
	}
	for (size_t i = 0; i < diags.count; i++)
		check(diags.items[i].text && strncmp(diags.items[i].text, path, strlen(path)) == 0,
		      "every diagnostic starts with the file name");
	config_diags_free(&diags);
	return 0;
}
