/*
 * fuzz_http_form.c - libFuzzer target: the request parsing of the web UI that is ours
 * (src/httpform.c: urlencoded forms and query strings, multipart/form-data with file
 * uploads, upload names) and the list edits behind its configuration screens
 * (confedit_append, confedit_delete).
 *
 * Input layout: byte 0 picks the parser; for multipart the rest starts with the
 * Content-Type header's value up to the first '\n', then the body.
 *   0: urlencoded   1: multipart   2: upload name   3: YAML text for the list edits
 *
 * Besides not crashing, the target checks:
 *  - every field has a name of 1..HTTPFORM_NAME_MAX bytes without NUL, and every value is
 *    NUL-terminated at value_len; never more than HTTPFORM_MAX_FIELDS fields;
 *  - a parsed form, encoded again (every byte %XX for urlencoded; a boundary that occurs in
 *    no value for multipart), parses back to the same fields, names, values and file names;
 *  - an accepted upload name holds no '/', no "..", does not start with '.', and is 1..64
 *    bytes;
 *  - an appended list entry leaves YAML text, and a removal only removes bytes (confedit
 *    reads both back itself; here they must not crash or leak).
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confedit.h"
#include "httpform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http_form: invariant broken: %s\n", what);
		abort();
	}
}

static void check_fields(const struct httpform *f)
{
	check(f->count <= HTTPFORM_MAX_FIELDS, "too many fields");
	for (size_t i = 0; i < f->count; i++) {
		size_t n = strlen(f->fields[i].name);
		check(n >= 1 && n <= HTTPFORM_NAME_MAX, "name length");
		check(f->fields[i].value[f->fields[i].value_len] == '\0', "value not terminated");
	}
}

static void same_forms(const struct httpform *a, const struct httpform *b)
{
	check(a->count == b->count, "round trip: field count");
	for (size_t i = 0; i < a->count; i++) {
		const struct httpform_field *x = &a->fields[i], *y = &b->fields[i];
		check(!strcmp(x->name, y->name), "round trip: name");
		check(x->value_len == y->value_len && !memcmp(x->value, y->value, x->value_len),
		      "round trip: value");
		check((!x->filename && !y->filename) ||
			      (x->filename && y->filename && !strcmp(x->filename, y->filename)),
		      "round trip: file name");
	}
}

static void urlencoded(const char *body, size_t len)
{
	struct httpform f = {0}, g = {0};
	char why[256];

	if (httpform_parse_urlencoded(body, len, &f, why, sizeof(why)) != 0) {
		httpform_free(&f);
		return;
	}
	check_fields(&f);
	size_t cap = 1;
	for (size_t i = 0; i < f.count; i++)
		cap += 3 * (strlen(f.fields[i].name) + f.fields[i].value_len) + 2;
	char *out = malloc(cap), *o = out;
	if (!out) {
		httpform_free(&f);
		return;
	}
	for (size_t i = 0; i < f.count; i++) {
		if (i)
			*o++ = '&';
		for (const char *p = f.fields[i].name; *p; p++)
			o += sprintf(o, "%%%02X", (unsigned char)*p);
		*o++ = '=';
		for (size_t k = 0; k < f.fields[i].value_len; k++)
			o += sprintf(o, "%%%02X", (unsigned char)f.fields[i].value[k]);
	}
	int rc = httpform_parse_urlencoded(out, (size_t)(o - out), &g, why, sizeof(why));
	check(rc == 0, "round trip: re-encoded form refused");
	same_forms(&f, &g);
	free(out);
	httpform_free(&f);
	httpform_free(&g);
}

static void multipart(const char *in, size_t len)
{
	const char *nl = memchr(in, '\n', len);
	struct httpform f = {0}, g = {0};
	char why[256], ct[512];

	if (!nl || (size_t)(nl - in) >= sizeof(ct) || memchr(in, '\0', (size_t)(nl - in)))
		return;
	memcpy(ct, in, (size_t)(nl - in));
	ct[nl - in] = '\0';
	if (httpform_parse_multipart(ct, nl + 1, len - (size_t)(nl - in) - 1, &f, why,
				     sizeof(why)) != 0) {
		httpform_free(&f);
		return;
	}
	check_fields(&f);
	/* Names and file names with '"', '\\' or a line break cannot be written back as-is. */
	size_t cap = 64;
	for (size_t i = 0; i < f.count; i++) {
		const struct httpform_field *x = &f.fields[i];
		if (strpbrk(x->name, "\"\\\r\n") ||
		    (x->filename && strpbrk(x->filename, "\"\\\r\n")) ||
		    (x->filename && !*x->filename)) {
			httpform_free(&f);
			return;
		}
		cap += strlen(x->name) + x->value_len + (x->filename ? strlen(x->filename) : 0) +
		       160;
	}
	char *out = malloc(cap);
	if (!out) {
		httpform_free(&f);
		return;
	}
	/* A boundary that occurs in no value. */
	const char *b = "zZfuzzB0undary";
	size_t used = 0;
	for (size_t i = 0; i < f.count; i++) {
		const struct httpform_field *x = &f.fields[i];
		used += (size_t)sprintf(out + used,
					"--%s\r\nContent-Disposition: form-data; name=\"%s\"", b,
					x->name);
		if (x->filename)
			used += (size_t)sprintf(out + used, "; filename=\"%s\"", x->filename);
		used += (size_t)sprintf(out + used, "\r\n\r\n");
		memcpy(out + used, x->value, x->value_len);
		used += x->value_len;
		used += (size_t)sprintf(out + used, "\r\n");
		if (memmem(x->value, x->value_len, b, strlen(b))) {
			free(out);
			httpform_free(&f);
			return;
		}
	}
	used += (size_t)sprintf(out + used, "--%s--\r\n", b);
	if (f.count) {
		int rc = httpform_parse_multipart("multipart/form-data; boundary=zZfuzzB0undary",
						  out, used, &g, why, sizeof(why));
		check(rc == 0, "round trip: re-encoded multipart refused");
		same_forms(&f, &g);
	}
	free(out);
	httpform_free(&f);
	httpform_free(&g);
}

static void upload_name(const char *in, size_t len)
{
	char name[80];

	if (len >= sizeof(name))
		return;
	memcpy(name, in, len);
	name[len] = '\0';
	if (httpform_safe_filename(name)) {
		check(strlen(name) >= 1 && strlen(name) <= 64, "safe name length");
		check(!strchr(name, '/') && !strstr(name, "..") && name[0] != '.',
		      "unsafe name accepted");
	}
}

static void list_edits(const char *text, size_t len)
{
	static const char *const names[] = {"id", "address"};
	static const char *const values[] = {"fz", "127.0.0.1:502"};
	char *out = NULL, why[256];
	size_t out_len;

	if (confedit_append(text, len, "modbus.devices", names, values, 2, &out, &out_len, why,
			    sizeof(why)) == 0) {
		/* Still YAML (a null written as "~" or a tag may be replaced by a shorter list). */
		char *dump = NULL;
		check(confedit_dump_redacted(out, out_len, &dump, why, sizeof(why)) == 0,
		      "an append made text that is not YAML");
		free(dump);
	}
	free(out);
	out = NULL;
	if (confedit_delete(text, len, "modbus.devices[0]", &out, &out_len, why, sizeof(why)) == 0)
		check(out_len < len, "a delete made the text longer");
	free(out);
	out = NULL;
	if (confedit_delete(text, len, "mqtt.password", &out, &out_len, why, sizeof(why)) == 0)
		check(out_len < len, "a delete made the text longer");
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	char *buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	switch (data[0] % 4) {
	case 0: urlencoded(buf, size - 1); break;
	case 1: multipart(buf, size - 1); break;
	case 2: upload_name(buf, size - 1); break;
	default: list_edits(buf, size - 1); break;
	}
	free(buf);
	return 0;
}
