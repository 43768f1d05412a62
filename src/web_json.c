/*
 * web_json.c - the API's JSON writer; see web_json.h.
 */
#include "web_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct web_json *j, const char *s, size_t n)
{
	if (j->nomem)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 1024;
		while (cap < j->len + n + 1)
			cap *= 2;
		char *d = realloc(j->data, cap);
		if (!d) {
			j->nomem = true;
			return;
		}
		j->data = d;
		j->cap = cap;
	}
	memcpy(j->data + j->len, s, n);
	j->len += n;
	j->data[j->len] = '\0';
}

/* Before a value or a key: the comma, unless a key was just written. */
static void sep(struct web_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth > 0 && j->depth <= WEB_JSON_DEPTH && j->comma[j->depth - 1])
		put(j, ",", 1);
	if (j->depth > 0 && j->depth <= WEB_JSON_DEPTH)
		j->comma[j->depth - 1] = true;
}

static void open_(struct web_json *j, const char *c)
{
	sep(j);
	put(j, c, 1);
	if (j->depth < WEB_JSON_DEPTH)
		j->comma[j->depth] = false;
	else
		j->nomem = true; /* deeper than we ever write: a bug, reported as a failure */
	j->depth++;
}

static void close_(struct web_json *j, const char *c)
{
	if (j->depth > 0)
		j->depth--;
	put(j, c, 1);
}

void web_json_obj(struct web_json *j)
{
	open_(j, "{");
}

void web_json_obj_end(struct web_json *j)
{
	close_(j, "}");
}

void web_json_arr(struct web_json *j)
{
	open_(j, "[");
}

void web_json_arr_end(struct web_json *j)
{
	close_(j, "]");
}

static void escaped(struct web_json *j, const char *s, size_t n)
{
	put(j, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' &&
		    c != '\'' && c != 0x7f)
			continue;
		put(j, s + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(j, esc, 2);
		} else if (c == '\n') {
			put(j, "\\n", 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(j, esc, 6);
		}
	}
	put(j, s + run, n - run);
	put(j, "\"", 1);
}

void web_json_key(struct web_json *j, const char *key)
{
	sep(j);
	escaped(j, key, strlen(key));
	put(j, ":", 1);
	j->after_key = true;
}

void web_json_strn(struct web_json *j, const char *s, size_t n)
{
	sep(j);
	escaped(j, s, n);
}

void web_json_str(struct web_json *j, const char *s)
{
	if (!s) {
		web_json_null(j);
		return;
	}
	web_json_strn(j, s, strlen(s));
}

void web_json_int(struct web_json *j, long long v)
{
	char t[32];
	int n = snprintf(t, sizeof(t), "%lld", v);

	sep(j);
	put(j, t, (size_t)n);
}

void web_json_bool(struct web_json *j, bool v)
{
	sep(j);
	put(j, v ? "true" : "false", v ? 4 : 5);
}

void web_json_null(struct web_json *j)
{
	sep(j);
	put(j, "null", 4);
}

void web_json_raw(struct web_json *j, const char *json)
{
	if (!json) {
		web_json_null(j);
		return;
	}
	sep(j);
	put(j, json, strlen(json));
}

void web_json_kstr(struct web_json *j, const char *key, const char *s)
{
	web_json_key(j, key);
	web_json_str(j, s);
}

void web_json_kint(struct web_json *j, const char *key, long long v)
{
	web_json_key(j, key);
	web_json_int(j, v);
}

void web_json_kbool(struct web_json *j, const char *key, bool v)
{
	web_json_key(j, key);
	web_json_bool(j, v);
}

char *web_json_finish(struct web_json *j, size_t *len)
{
	if (j->nomem || !j->data) {
		free(j->data);
		j->data = NULL;
		return NULL;
	}
	*len = j->len;
	char *d = j->data;
	j->data = NULL;
	return d;
}
