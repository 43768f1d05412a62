/*
 * fuzz_script.c - libFuzzer target: the shipped transformer scripts (the .lua files of examples/scripts)
 * and the Lua bindings under them (src/script*.c), fed random readings.
 *
 * The input picks a device (word registers in 11 blocks, word in one block, float32 or
 * int64 in two blocks; ids "1", "2", "3", "4"), the time stamp, an error text or the
 * registers, and which example runs. Each example is loaded once, as the daemon does.
 * Invariants: the call returns 0 or MB_ERR_SCRIPT (never anything else, never a crash or a
 * leak); a failure names the script ("<name>:<line>: ..."); every message a script returned
 * as a table is valid JSON (checked with jansson); influx.lua's lines keep their shape;
 * and `return msg` (identity.lua, written here) gives exactly message_encode's bytes (for
 * float32 values: the same JSON, as a real may be written without the default's exponent).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz_input.h"
#include "message.h"
#include "script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const examples[] = {
	"scale.lua",  "deadband.lua",      "thingsboard.lua",
	"influx.lua", "homeassistant.lua", "identity.lua",
};
#define NEX (sizeof(examples) / sizeof(examples[0]))

static struct block plc1_blocks[] = {{1, 1},   {10, 3},  {55, 2},  {69, 2},  {72, 9}, {100, 10},
				     {120, 5}, {130, 4}, {152, 3}, {160, 7}, {170, 1}};
static struct block plc2_blocks[] = {{10, 5}};
static struct block typed_blocks[] = {{0, 4}, {100, 8}};
static struct device_config devices[] = {
	{.id = "1", .address_text = "1", .blocks = plc1_blocks, .block_count = 11},
	{.id = "2", .address_text = "2", .blocks = plc2_blocks, .block_count = 1},
	{.id = "3",
	 .address_text = "10.0.0.1:502",
	 .blocks = typed_blocks,
	 .block_count = 2,
	 .type = REG_TYPE_FLOAT32},
	{.id = "4",
	 .address_text = "10.0.0.2:502",
	 .blocks = typed_blocks,
	 .block_count = 2,
	 .type = REG_TYPE_INT64},
};
#define NDEV (sizeof(devices) / sizeof(devices[0]))

static const struct message_context mctx = {"357299070082380", "ID-1", TIME_ISO8601};

static struct config configs[NEX];
static struct script_transformer *transformers[NEX];

static char *read_example(const char *name, size_t *len)
{
	char path[4096];
	const char *here = __FILE__; /* .../fuzz/fuzz_script.c */
	const char *slash = strrchr(here, '/');
	int dir = slash ? (int)(slash - here) : 1;
	snprintf(path, sizeof(path), "%.*s/../examples/scripts/%s", dir, slash ? here : ".", name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "fuzz_script: cannot open %s\n", path);
		abort();
	}
	char *text = malloc(1 << 20);
	if (!text)
		abort();
	*len = fread(text, 1, (1 << 20) - 1, f);
	text[*len] = '\0';
	fclose(f);
	return text;
}

static void load_examples(void)
{
	for (size_t i = 0; i < NEX; i++) {
		struct config *c = &configs[i];
		c->imei = "357299070082380";
		c->devices = devices;
		c->device_count = NDEV;
		c->logger.id = "ID-1";
		c->logger.topic = "[IMEI]/logger";
		c->logger.script = (char *)examples[i];
		if (!strcmp(examples[i], "identity.lua")) {
			c->logger.script_source = strdup("function transform(msg) return msg end");
			c->logger.script_len = strlen(c->logger.script_source);
		} else {
			c->logger.script_source = read_example(examples[i], &c->logger.script_len);
		}
		c->mqtt.qos = 1;
		if (script_transformer_new(c, &mctx, 2, &transformers[i]) != 0)
			abort();
	}
}

static bool influx_line_ok(const char *s)
{
	/* modbus,imei=...,device=... fields <ns> */
	if (strncmp(s, "modbus,imei=", 12) != 0)
		return false;
	const char *sp1 = strstr(s, "device=");
	return sp1 && strchr(sp1, ' ') && strrchr(s, ' ') > strchr(sp1, ' ');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool loaded;
	if (!loaded) {
		load_examples();
		loaded = true;
	}
	struct input in = {data, size};
	size_t which = (size_t)take_uint(&in, 1) % NEX;
	const struct device_config *dev = &devices[take_uint(&in, 1) % NDEV];
	uint16_t regs[64];
	size_t nregs = 0;
	for (size_t i = 0; i < dev->block_count; i++)
		nregs += dev->blocks[i].count;
	struct reading r = {.device = dev};
	/* Instants within years 1970..2286 (the ISO text stays 4 digits). */
	r.ts_ms = (int64_t)(take_uint(&in, 5) % 10000000000000ULL);
	uint8_t flags = (uint8_t)take_uint(&in, 1);
	if (flags & 1) {
		size_t n = 1 + (size_t)take_uint(&in, 1) % (READING_ERROR_MAX - 2);
		for (size_t i = 0; i < n; i++)
			r.error[i] =
				(char)(take_uint(&in, 1) % 94 + 32); /* printable, as reasons are */
	} else {
		for (size_t i = 0; i < nregs; i++)
			regs[i] = (uint16_t)take_uint(&in, 2);
		r.values = regs;
		r.value_count = nregs;
	}
	struct decoded_value dv[32];
	if (!(flags & 1) && dev->type != REG_TYPE_WORD) {
		r.decoded_count = decode_registers(dev->type, REG_ORDER_ABCD, regs, nregs, dv);
		r.decoded = dv;
	}

	struct script_output out = {0};
	char why[SCRIPT_ERROR_MAX] = "";
	int rc = script_transform(transformers[which], &r, &out, why, sizeof(why));
	if (rc != 0 && rc != MB_ERR_SCRIPT)
		abort();
	if (rc == MB_ERR_SCRIPT && strncmp(why, examples[which], strlen(examples[which])) != 0)
		abort(); /* a failure names its script */
	for (size_t i = 0; i < out.count; i++) {
		const char *p = out.items[i].payload;
		if (!strcmp(examples[which], "influx.lua")) {
			if (!influx_line_ok(p))
				abort();
			continue;
		}
		json_error_t err;
		json_t *j = json_loadb(p, out.items[i].len, JSON_DECODE_ANY, &err);
		if (!j)
			abort(); /* a table became invalid JSON */
		json_decref(j);
	}
	if (!strcmp(examples[which], "identity.lua")) {
		/* Byte for byte, except that a real may be written in plain decimals where the
		 * default uses an exponent (44592880000000.0 for 4.459288e+13): the same JSON. */
		char *want = message_encode(&r, &mctx);
		bool same = want && out.count == 1 && !strcmp(want, out.items[0].payload);
		if (!same && want && out.count == 1 && dev->type == REG_TYPE_FLOAT32) {
			json_t *a = json_loads(want, 0, NULL),
			       *b = json_loads(out.items[0].payload, 0, NULL);
			same = a && b && json_equal(a, b);
			json_decref(a);
			json_decref(b);
		}
		if (!same) {
			fprintf(stderr, "fuzz_script: return msg gave\n  %s\nnot\n  %s\n",
				out.count ? out.items[0].payload : "(nothing)",
				want ? want : "(null)");
			abort();
		}
		free(want);
	}
	script_output_clear(&out);
	return 0;
}
