/*
 * message.c - JSON encoding of readings with jansson; see message.h.
 *
 * The key order is part of the contract (servers written for the router may parse by
 * position), and jansson preserves insertion order, so the members are added in exactly
 * the order of the router's examples. Scalars that the router sends as strings (ID, A,
 * ST, N, TS) stay strings; arrays hold numbers.
 *
 * Typed values (decode.h) are the one thing jansson cannot write as we need: a uint64
 * above INT64_MAX has no json_int_t, and a float32 would come out with the noise of its
 * double widening (0.100000001490116). So for a typed reading the object is built with an
 * empty "V" array and the numbers, formatted by decode_format_json, are spliced into the
 * dumped text. The splice point is unambiguous: every '"' inside a string value is
 * escaped by jansson, so the characters "V":[] can only be our member. Word readings
 * never take this path, so their bytes are exactly jansson's, as before.
 *
 * message_encode() is the daemon's encoder: it writes the same bytes straight into one
 * buffer sized for the worst case (no JSON value per register, one allocation per
 * message), escaping strings as jansson's dump does (", \, and control characters; \u00XX
 * in upper-case hex) and refusing the strings jansson refuses (invalid UTF-8, surrogates,
 * overlong forms). The jansson encoder stays as message_encode_jansson(), the reference
 * that fuzz/fuzz_message.c compares it with byte for byte (the profile of Neuron's
 * workload put jansson and the malloc/free it caused at about a sixth of the daemon's CPU).
 * The message of a reading whose script failed (message_encode_script_error) is rare and
 * stays jansson's.
 *
 * The JSON text scripts decode (message_json_*) is read by jansson too: this module is the
 * one that includes it.
 */
#include "message.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "timeutil.h"

static int add_string(json_t *obj, const char *key, const char *value)
{
	return json_object_set_new(obj, key, json_string(value ? value : ""));
}

static int add_uint_string(json_t *obj, const char *key, unsigned long value)
{
	char text[24];
	snprintf(text, sizeof(text), "%lu", value);
	return add_string(obj, key, text);
}

static int add_blocks(json_t *obj, const struct device_config *dev)
{
	if (dev->block_count == 1) {
		if (add_uint_string(obj, "ST", dev->blocks[0].start) ||
		    add_uint_string(obj, "N", dev->blocks[0].count))
			return -1;
		return 0;
	}
	json_t *stx = json_array(), *nx = json_array(), *px = json_array();
	size_t position = 0;
	unsigned width = decode_width(dev->type); /* PX counts values of V, not registers */
	int rc = 0;
	if (!stx || !nx || !px)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < dev->block_count; i++) {
		rc |= json_array_append_new(stx, json_integer(dev->blocks[i].start));
		rc |= json_array_append_new(nx, json_integer(dev->blocks[i].count));
		rc |= json_array_append_new(px, json_integer((json_int_t)position));
		position += dev->blocks[i].count / width;
	}
	/* set_new steals the references even on failure, so no decref after this point. */
	rc |= json_object_set_new(obj, "STX", stx ? stx : json_null());
	rc |= json_object_set_new(obj, "NX", nx ? nx : json_null());
	rc |= json_object_set_new(obj, "PX", px ? px : json_null());
	return rc ? -1 : 0;
}

/* Replaces the placeholder "V":[] in json (malloc'd, consumed) with the decoded values. */
static char *splice_decoded(char *json, const struct reading *r)
{
	static const char placeholder[] = "\"V\":[]";
	char *at = strstr(json, placeholder);
	char *out = NULL;
	size_t head, tail, len;

	if (!at)
		goto fail;
	head = (size_t)(at - json) + strlen(placeholder) - 1; /* up to and including '[' */
	tail = strlen(at + strlen(placeholder) - 1);          /* from ']' on */
	len = head + r->decoded_count * (DECODE_JSON_MAX + 1) + tail + 1;
	out = malloc(len);
	if (!out)
		goto fail;
	memcpy(out, json, head);
	size_t used = head;
	for (size_t i = 0; i < r->decoded_count; i++) {
		if (i)
			out[used++] = ',';
		int n = decode_format_json(&r->decoded[i], out + used, DECODE_JSON_MAX);
		if (n < 0) {
			free(out);
			out = NULL;
			goto fail;
		}
		used += (size_t)n;
	}
	memcpy(out + used, at + strlen(placeholder) - 1, tail + 1);
fail:
	free(json);
	return out;
}

void message_global_init(void)
{
	json_object_seed(0); /* 0: a seed from /dev/urandom or the clock */
}

/* script_error: NULL, or why a transformer script failed on this reading (ERR then says so,
 * and V is kept). */
static char *encode(const struct reading *r, const struct message_context *ctx,
		    const char *script_error)
{
	const struct device_config *dev = r->device;
	char ts[40];
	char *out = NULL;
	json_t *obj = json_object();
	if (!obj)
		return NULL;

	if (ctx->time_format == TIME_UNIX) {
		snprintf(ts, sizeof(ts), "%" PRId64, time_floor_s(r->ts_ms));
	} else if (time_format_iso8601(r->ts_ms, ts, sizeof(ts)) != 0) {
		goto fail;
	}

	if (add_string(obj, "IMEI", ctx->imei) || add_string(obj, "TYPE", "MODB") ||
	    add_string(obj, "TS", ts) || add_string(obj, "ID", dev->id) ||
	    add_string(obj, "A", dev->address_text) || add_blocks(obj, dev))
		goto fail;

	if (r->error[0] != '\0') {
		if (script_error) {
			char *text = malloc(strlen(r->error) + strlen(script_error) + 16);
			if (!text)
				goto fail;
			sprintf(text, "%s; script %s", r->error, script_error);
			int rc = add_string(obj, "ERR", text);
			free(text);
			if (rc)
				goto fail;
		} else if (add_string(obj, "ERR", r->error)) {
			goto fail;
		}
	} else if (r->decoded) {
		if (json_object_set_new(obj, "V", json_array())) /* filled in by splice_decoded */
			goto fail;
	} else {
		json_t *v = json_array();
		if (!v)
			goto fail;
		for (size_t i = 0; i < r->value_count; i++) {
			if (json_array_append_new(v, json_integer(r->values[i]))) {
				json_decref(v);
				goto fail;
			}
		}
		if (json_object_set_new(obj, "V", v))
			goto fail;
	}
	if (script_error && r->error[0] == '\0') {
		char *text = malloc(strlen(script_error) + 8);
		if (!text)
			goto fail;
		sprintf(text, "script %s", script_error);
		int rc = add_string(obj, "ERR", text);
		free(text);
		if (rc)
			goto fail;
	}
	if (add_string(obj, "P", ctx->logger_id))
		goto fail;

	out = json_dumps(obj, JSON_COMPACT);
	if (out && r->decoded && r->error[0] == '\0')
		out = splice_decoded(out, r);
fail:
	json_decref(obj);
	return out;
}

char *message_encode_jansson(const struct reading *r, const struct message_context *ctx)
{
	return encode(r, ctx, NULL);
}

char *message_encode_script_error(const struct reading *r, const struct message_context *ctx,
				  const char *why)
{
	return encode(r, ctx, why);
}

/* ------------------------------------------------------------------ reading JSON text */

struct message_json {
	json_t *root;
};

int message_json_parse(const char *text, size_t len, struct message_json **doc, char *why,
		       size_t why_len)
{
	json_error_t err;
	*doc = NULL;
	json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!root) {
		if (json_error_code(&err) == json_error_out_of_memory) {
			snprintf(why, why_len, "out of memory");
			return MB_ERR_NOMEM;
		}
		snprintf(why, why_len, "%s at line %d, column %d", err.text, err.line, err.column);
		return MB_ERR_INVAL;
	}
	if (!(*doc = malloc(sizeof(**doc)))) {
		json_decref(root);
		snprintf(why, why_len, "out of memory");
		return MB_ERR_NOMEM;
	}
	(*doc)->root = root;
	return 0;
}

static int walk( // NOLINT(misc-no-recursion): bounded by max_depth
	const json_t *j, int depth, const struct message_json_visitor *v)
{
	int rc;
	if (depth < 0)
		return MB_ERR_INVAL;
	switch (json_typeof(j)) {
	case JSON_NULL: return v->null(v->ctx);
	case JSON_TRUE: return v->boolean(v->ctx, 1);
	case JSON_FALSE: return v->boolean(v->ctx, 0);
	case JSON_INTEGER: return v->integer(v->ctx, (long long)json_integer_value(j));
	case JSON_REAL: return v->real(v->ctx, json_real_value(j));
	case JSON_STRING: return v->string(v->ctx, json_string_value(j), json_string_length(j));
	case JSON_ARRAY: {
		size_t i;
		const json_t *item;
		if ((rc = v->open(v->ctx, 0, json_array_size(j))))
			return rc;
		json_array_foreach(j, i, item)
		{
			if ((rc = walk(item, depth - 1, v)) || (rc = v->item(v->ctx, 0, i)))
				return rc;
		}
		return v->close(v->ctx, 0);
	}
	case JSON_OBJECT: {
		const char *key;
		size_t key_len;
		const json_t *member;
		size_t i = 0;
		if ((rc = v->open(v->ctx, 1, json_object_size(j))))
			return rc;
		json_object_keylen_foreach((json_t *)j, key, key_len, member)
		{
			if ((rc = v->key(v->ctx, key, key_len)) ||
			    (rc = walk(member, depth - 1, v)) || (rc = v->item(v->ctx, 1, i++)))
				return rc;
		}
		return v->close(v->ctx, 1);
	}
	}
	return MB_ERR_INVAL;
}

int message_json_walk(const struct message_json *doc, int max_depth,
		      const struct message_json_visitor *v)
{
	return walk(doc->root, max_depth, v);
}

void message_json_free(struct message_json *doc)
{
	if (!doc)
		return;
	json_decref(doc->root);
	free(doc);
}

/* ---------------------------------------------------------------------------------- */
/* The direct encoder. */

struct out {
	char *p;
	size_t len;
};

static void put(struct out *o, const char *text, size_t n)
{
	memcpy(o->p + o->len, text, n);
	o->len += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_u64(struct out *o, uint64_t v)
{
	char digits[20];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		o->p[o->len++] = digits[--n];
}

/* The length of the UTF-8 sequence at s (1..4), or 0 where jansson's utf8_check_* refuse
 * it: a stray continuation byte, C0/C1, F5..FF, a short or broken sequence, an overlong
 * form, a surrogate, a code point above U+10FFFF. */
static size_t utf8_sequence(const unsigned char *s)
{
	unsigned char u = s[0];
	size_t size;
	uint32_t value;

	if (u < 0x80)
		return 1;
	if (u >= 0xC2 && u <= 0xDF) {
		size = 2;
		value = u & 0x1Fu;
	} else if (u >= 0xE0 && u <= 0xEF) {
		size = 3;
		value = u & 0x0Fu;
	} else if (u >= 0xF0 && u <= 0xF4) {
		size = 4;
		value = u & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < size; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF) /* the NUL that ends the string included */
			return 0;
		value = (value << 6) + (s[i] & 0x3Fu);
	}
	if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF) ||
	    (size == 3 && value < 0x800) || (size == 4 && value < 0x10000))
		return 0;
	return size;
}

/* A JSON string, quoted and escaped as jansson's dump_string does without flags; false
 * for text jansson would refuse (nothing useful is left in o then). o has room for
 * 2 + 6 * strlen(text) bytes. */
static bool put_string(struct out *o, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)(text ? text : "");

	o->p[o->len++] = '"';
	while (*s) {
		unsigned char c = *s;
		if (c >= 0x80) {
			size_t n = utf8_sequence(s);
			if (!n)
				return false;
			put(o, (const char *)s, n);
			s += n;
			continue;
		}
		s++;
		if (c >= 0x20 && c != '"' && c != '\\') {
			o->p[o->len++] = (char)c;
			continue;
		}
		o->p[o->len++] = '\\';
		switch (c) {
		case '"': o->p[o->len++] = '"'; break;
		case '\\': o->p[o->len++] = '\\'; break;
		case '\b': o->p[o->len++] = 'b'; break;
		case '\f': o->p[o->len++] = 'f'; break;
		case '\n': o->p[o->len++] = 'n'; break;
		case '\r': o->p[o->len++] = 'r'; break;
		case '\t': o->p[o->len++] = 't'; break;
		default:
			PUT_LIT(o, "u00");
			o->p[o->len++] = hex[c >> 4];
			o->p[o->len++] = hex[c & 15];
		}
	}
	o->p[o->len++] = '"';
	return true;
}

static size_t text_room(const char *text)
{
	return 2 + 6 * (text ? strlen(text) : 0);
}

char *message_encode(const struct reading *r, const struct message_context *ctx)
{
	const struct device_config *dev = r->device;
	char ts[40];
	bool failed = r->error[0] != '\0';

	if (ctx->time_format == TIME_UNIX)
		snprintf(ts, sizeof(ts), "%" PRId64, time_floor_s(r->ts_ms));
	else if (time_format_iso8601(r->ts_ms, ts, sizeof(ts)) != 0)
		return NULL;

	/* The worst case: every string byte escaped as \u00XX, 20 digits per number. */
	size_t room = 96 + text_room(ctx->imei) + text_room(ts) + text_room(dev->id) +
		      text_room(dev->address_text) + text_room(ctx->logger_id) +
		      dev->block_count * 3 * 21 + 48;
	if (failed)
		room += text_room(r->error);
	else if (r->decoded)
		room += r->decoded_count * (DECODE_JSON_MAX + 1);
	else
		room += r->value_count * 6;
	struct out o = {malloc(room), 0};
	if (!o.p)
		return NULL;

	PUT_LIT(&o, "{\"IMEI\":");
	if (!put_string(&o, ctx->imei))
		goto fail;
	PUT_LIT(&o, ",\"TYPE\":\"MODB\",\"TS\":");
	put_string(&o, ts);
	PUT_LIT(&o, ",\"ID\":");
	if (!put_string(&o, dev->id))
		goto fail;
	PUT_LIT(&o, ",\"A\":");
	if (!put_string(&o, dev->address_text))
		goto fail;
	if (dev->block_count == 1) {
		PUT_LIT(&o, ",\"ST\":\"");
		put_u64(&o, dev->blocks[0].start);
		PUT_LIT(&o, "\",\"N\":\"");
		put_u64(&o, dev->blocks[0].count);
		PUT_LIT(&o, "\"");
	} else {
		unsigned width = decode_width(dev->type); /* PX counts values of V */
		uint64_t position = 0;
		PUT_LIT(&o, ",\"STX\":[");
		for (size_t i = 0; i < dev->block_count; i++) {
			if (i)
				PUT_LIT(&o, ",");
			put_u64(&o, dev->blocks[i].start);
		}
		PUT_LIT(&o, "],\"NX\":[");
		for (size_t i = 0; i < dev->block_count; i++) {
			if (i)
				PUT_LIT(&o, ",");
			put_u64(&o, dev->blocks[i].count);
		}
		PUT_LIT(&o, "],\"PX\":[");
		for (size_t i = 0; i < dev->block_count; i++) {
			if (i)
				PUT_LIT(&o, ",");
			put_u64(&o, position);
			position += dev->blocks[i].count / width;
		}
		PUT_LIT(&o, "]");
	}
	if (failed) {
		PUT_LIT(&o, ",\"ERR\":");
		if (!put_string(&o, r->error))
			goto fail;
	} else {
		PUT_LIT(&o, ",\"V\":[");
		for (size_t i = 0; r->decoded && i < r->decoded_count; i++) {
			if (i)
				PUT_LIT(&o, ",");
			int n = decode_format_json(&r->decoded[i], o.p + o.len, DECODE_JSON_MAX);
			if (n < 0)
				goto fail;
			o.len += (size_t)n;
		}
		for (size_t i = 0; !r->decoded && i < r->value_count; i++) {
			if (i)
				PUT_LIT(&o, ",");
			put_u64(&o, r->values[i]);
		}
		PUT_LIT(&o, "]");
	}
	PUT_LIT(&o, ",\"P\":");
	if (!put_string(&o, ctx->logger_id))
		goto fail;
	PUT_LIT(&o, "}");
	o.p[o.len] = '\0';
	return o.p;
fail:
	free(o.p);
	return NULL;
}
