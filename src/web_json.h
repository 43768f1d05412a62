/*
 * web_json.h - a small JSON writer for the web UI's API answers.
 *
 * jansson stays behind message.c (the readings' encoder); the API only writes JSON, and a
 * writer is a few functions: values, keys, objects and arrays with the commas put in, and
 * strings escaped so that they can never end a <script> or an attribute (<, >, & and ' as
 * \u escapes). A struct web_json belongs to one thread; out of memory is remembered and
 * reported once by web_json_finish.
 */
#ifndef MODBRIDGE_WEB_JSON_H
#define MODBRIDGE_WEB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEB_JSON_DEPTH 16

struct web_json {
	char *data;
	size_t len, cap;
	bool nomem;
	int depth;
	bool comma[WEB_JSON_DEPTH]; /* a value was written at this depth: the next needs ',' */
	bool after_key;
};

void web_json_obj(struct web_json *j);
void web_json_obj_end(struct web_json *j);
void web_json_arr(struct web_json *j);
void web_json_arr_end(struct web_json *j);
void web_json_key(struct web_json *j, const char *key);
void web_json_str(struct web_json *j, const char *s); /* NULL writes null */
void web_json_strn(struct web_json *j, const char *s, size_t n);
void web_json_int(struct web_json *j, long long v);
void web_json_bool(struct web_json *j, bool v);
void web_json_null(struct web_json *j);
/* A value that is JSON text already (a reading's message); NULL writes null. */
void web_json_raw(struct web_json *j, const char *json);

/* key + value in one call. */
void web_json_kstr(struct web_json *j, const char *key, const char *s);
void web_json_kint(struct web_json *j, const char *key, long long v);
void web_json_kbool(struct web_json *j, const char *key, bool v);

/* Returns the text (malloc'd, the caller frees) and its length, or NULL when out of memory
 * at any point (everything is freed then). */
char *web_json_finish(struct web_json *j, size_t *len);

#endif
