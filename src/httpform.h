/*
 * httpform.h - request bodies of HTML forms: application/x-www-form-urlencoded and
 * multipart/form-data, parsed by our own code (fuzzed by fuzz/fuzz_http_form.c).
 *
 * The HTTP server (httpd.c) hands a whole body, bounded in size, to these parsers; the web
 * UI (web*.c) reads fields by name. Strict: a body that does not follow the syntax is
 * refused whole (MB_ERR_INVAL with a one-line reason), never half-used. Field values may
 * hold any bytes (a file's content): use value_len; each value is also NUL-terminated.
 *
 * Pure functions, no global state: thread-safe. A struct httpform owns its fields (freed
 * by httpform_free).
 */
#ifndef MODBRIDGE_HTTPFORM_H
#define MODBRIDGE_HTTPFORM_H

#include <stdbool.h>
#include <stddef.h>

/* Most fields (or parts) in one body, and the longest field name. */
#define HTTPFORM_MAX_FIELDS 512
#define HTTPFORM_NAME_MAX 256

struct httpform_field {
	char *name;
	char *value; /* NUL-terminated; value_len bytes (may hold NUL bytes itself) */
	size_t value_len;
	char *filename;     /* multipart file parts: the name sent (NOT a safe path); else NULL */
	char *content_type; /* multipart: the part's Content-Type, or NULL */
};

struct httpform {
	struct httpform_field *fields;
	size_t count;
};

/*
 * Parses an application/x-www-form-urlencoded body (also a URL's query string): "a=1&b=x+y"
 * with %XX escapes and '+' for space. Appends to *form (zeroed by the caller at first).
 * Returns 0, MB_ERR_INVAL (bad escape, empty or too long name, too many fields; reason in
 * why) or MB_ERR_NOMEM.
 */
int httpform_parse_urlencoded(const char *body, size_t len, struct httpform *form, char *why,
			      size_t why_len);

/*
 * Parses a multipart/form-data body. content_type is the request's header (it carries the
 * boundary). Appends every part to *form. Returns 0, MB_ERR_INVAL (no or bad boundary, a
 * part without Content-Disposition form-data or name, no closing boundary...; reason in
 * why) or MB_ERR_NOMEM.
 */
int httpform_parse_multipart(const char *content_type, const char *body, size_t len,
			     struct httpform *form, char *why, size_t why_len);

/*
 * Parses body by its content type (either kind above; NULL or empty: an empty form).
 * Returns as they do; MB_ERR_INVAL for another content type.
 */
int httpform_parse(const char *content_type, const char *body, size_t len, struct httpform *form,
		   char *why, size_t why_len);

/* The first field named name, or NULL. */
const struct httpform_field *httpform_find(const struct httpform *form, const char *name);

/* The first field's value, or NULL. */
const char *httpform_get(const struct httpform *form, const char *name);

/* Frees the fields and empties the form. Accepts NULL. */
void httpform_free(struct httpform *form);

/*
 * A file name from an upload that is safe to use as one name inside a directory: 1..64
 * bytes of letters, digits, '.', '_' and '-', not starting with '.', no "..". Returns true
 * when name is already such a name. Nothing is ever stripped to make it one: a name like
 * "../x" is refused, not turned into "x".
 */
bool httpform_safe_filename(const char *name);

#endif
