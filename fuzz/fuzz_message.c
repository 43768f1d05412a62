/*
 * fuzz_message.c - libFuzzer target: the JSON encoder (message_encode), fed random
 * readings.
 *
 * The input is consumed as a little script: the strings (IMEI, logger id, device id,
 * address text, error text), the time stamp and its format, the blocks and the values.
 * The encoder must not crash, and whenever every string is valid UTF-8 (the only kind the
 * YAML loader and the Modbus layer produce) and the time stamp is within the years
 * 0..9999, it must return a JSON object that parses back to exactly the reading: the
 * same strings, STX/NX/PX or ST/N from the blocks, V equal to the values, or ERR.
 *
 * Differential: message_encode (the daemon's direct encoder) must return byte for byte
 * what message_encode_jansson (the reference, built on jansson) returns, or NULL exactly
 * when it does, for every input: invalid UTF-8, control characters, typed readings
 * (flag 16: a data type and byte order, V holding the decoded values) included.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "fuzz_input.h"
#include "message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated string of up to max bytes (length from one input byte). */
static char *take_string(struct input *in, size_t max)
{
	size_t len = (size_t)take_uint(in, 1) % (max + 1);
	if (len > in->left)
		len = in->left;
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->left -= len;
	return s;
}

static bool valid_utf8(const char *s)
{
	json_t *j = json_string(s); /* jansson refuses invalid UTF-8 */
	bool ok = j != NULL;
	json_decref(j);
	return ok;
}

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_message: invariant broken: %s\n", what);
		abort();
	}
}

static void check_string(json_t *obj, const char *key, const char *want)
{
	const char *got = json_string_value(json_object_get(obj, key));
	check(got && strcmp(got, want) == 0, key);
}

static void check_array(json_t *obj, const char *key, const long long *want, size_t n)
{
	json_t *a = json_object_get(obj, key);
	check(json_is_array(a) && json_array_size(a) == n, key);
	for (size_t i = 0; i < n; i++)
		check(json_number_value(json_array_get(a, i)) == (double)want[i], key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	struct device_config dev = {0};
	struct reading r = {0};
	struct message_context ctx = {0};
	char *imei = take_string(&in, 20);
	char *logger_id = take_string(&in, 20);
	dev.id = take_string(&in, 40);
	dev.address_text = take_string(&in, 40);
	char *error = take_string(&in, READING_ERROR_MAX - 1);
	unsigned flags = (unsigned)take_uint(&in, 1);
	r.ts_ms = (int64_t)take_uint(&in, 8);
	if (flags & 1) /* usually a plausible clock: years 1970..2200 */
		r.ts_ms = (int64_t)((uint64_t)r.ts_ms % 7258118400000ULL);
	ctx.imei = imei;
	ctx.logger_id = (flags & 2) ? logger_id : NULL;
	ctx.time_format = (flags & 4) ? TIME_UNIX : TIME_ISO8601;
	if (flags & 8)
		snprintf(r.error, sizeof(r.error), "%s", error);

	bool typed = flags & 16;
	if (typed) {
		dev.type = (enum reg_type)(take_uint(&in, 1) % 7 + 1); /* not word */
		dev.order = (enum reg_order)(take_uint(&in, 1) % 4);
	}
	unsigned width = decode_width(dev.type);
	dev.block_count = (size_t)take_uint(&in, 1) % 12 + 1;
	dev.blocks = calloc(dev.block_count, sizeof(*dev.blocks));
	long long starts[12], counts[12], positions[12];
	size_t total = 0;
	check(dev.blocks != NULL, "calloc");
	for (size_t i = 0; i < dev.block_count; i++) {
		dev.blocks[i].start = (uint16_t)take_uint(&in, 2);
		dev.blocks[i].count = (uint16_t)((take_uint(&in, 1) % (40 / width) + 1) * width);
		starts[i] = dev.blocks[i].start;
		counts[i] = dev.blocks[i].count;
		positions[i] = (long long)(total / width);
		total += dev.blocks[i].count;
	}
	if (!r.error[0]) {
		r.value_count = total;
		r.values = calloc(total, sizeof(uint16_t));
		check(r.values != NULL, "calloc");
		for (size_t i = 0; i < total; i++)
			r.values[i] = (uint16_t)take_uint(&in, 2);
		if (typed) {
			r.decoded = calloc(total / width + 1, sizeof(*r.decoded));
			check(r.decoded != NULL, "calloc");
			r.decoded_count =
				decode_registers(dev.type, dev.order, r.values, total, r.decoded);
			check(r.decoded_count == total / width, "whole values");
		}
	}
	r.device = &dev;

	char *json = message_encode(&r, &ctx);
	char *ref = message_encode_jansson(&r, &ctx);
	check((json == NULL) == (ref == NULL), "refused exactly when jansson refuses");
	check(!json || strcmp(json, ref) == 0, "byte for byte what jansson writes");
	free(ref);
	bool sane_ts = r.ts_ms >= -62167219200000LL && r.ts_ms <= 253402300799999LL;
	bool valid = valid_utf8(imei) && valid_utf8(ctx.logger_id ? ctx.logger_id : "") &&
		     valid_utf8(dev.id) && valid_utf8(dev.address_text) && valid_utf8(r.error);
	if (valid && sane_ts)
		check(json != NULL, "a valid reading is encoded");
	if (json) {
		json_error_t jerr;
		/* A uint64 above INT64_MAX is a valid JSON number that jansson reads only as a
		 * real: typed readings are read back that way (the blocks' numbers compare as
		 * doubles, exactly). */
		json_t *obj = json_loads(json, typed ? JSON_DECODE_INT_AS_REAL : 0, &jerr);
		check(json_is_object(obj), "the output parses as a JSON object");
		check_string(obj, "IMEI", imei);
		check_string(obj, "TYPE", "MODB");
		check_string(obj, "ID", dev.id);
		check_string(obj, "A", dev.address_text);
		check_string(obj, "P", ctx.logger_id ? ctx.logger_id : "");
		check(json_is_string(json_object_get(obj, "TS")), "TS");
		if (ctx.time_format == TIME_UNIX) {
			int64_t secs =
				r.ts_ms >= 0 ? r.ts_ms / 1000 : -((-(r.ts_ms + 1)) / 1000) - 1;
			char want[24];
			snprintf(want, sizeof(want), "%" PRId64, secs);
			check_string(obj, "TS", want);
		}
		if (dev.block_count == 1) {
			char st[8], n[8];
			snprintf(st, sizeof(st), "%lld", starts[0]);
			snprintf(n, sizeof(n), "%lld", counts[0]);
			check_string(obj, "ST", st);
			check_string(obj, "N", n);
		} else {
			check_array(obj, "STX", starts, dev.block_count);
			check_array(obj, "NX", counts, dev.block_count);
			check_array(obj, "PX", positions, dev.block_count);
		}
		if (r.error[0]) {
			check_string(obj, "ERR", r.error);
			check(json_object_get(obj, "V") == NULL, "no V with ERR");
		} else {
			json_t *v = json_object_get(obj, "V");
			size_t values = typed ? r.decoded_count : total;
			check(json_is_array(v) && json_array_size(v) == values, "V length");
			for (size_t i = 0; !typed && i < total; i++)
				check(json_integer_value(json_array_get(v, i)) == r.values[i],
				      "V values");
			check(json_object_get(obj, "ERR") == NULL, "no ERR with V");
		}
		json_decref(obj);
	}
	free(json);
	reading_clear(&r);
	free(dev.blocks);
	free(dev.id);
	free(dev.address_text);
	free(error);
	free(logger_id);
	free(imei);
	return 0;
}
