/*
 * config_diag.c - the loader's diagnostics: "file:line: key: message", unknown keys with a
 * "did you mean", and the mappings read key by key; see config_internal.h.
 *
 * Every problem is recorded with its line and the walk goes on, so one run reports all
 * of them; at the end they are sorted into file order (messages of one line in the order
 * found) and handed to the caller's config_diags. A section is read with
 * config_obj_scan, which reports unknown and duplicate keys once, so the section code
 * only asks for the keys it knows. Runs on the loading thread, on its own context.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "error.h"

/* A diagnostic before sorting: seq keeps messages of one line in the order found. */
struct config_pending {
	int line;
	size_t seq;
	enum config_severity severity;
	char *text;
};

static char *vfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *vfmt(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

char *config_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	return s;
}

void config_push_diag(struct config_ctx *c, enum config_severity sev, int line, char *text)
{
	if (!text) {
		c->nomem = true;
		return;
	}
	if (c->ndiags == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct config_pending *p = realloc(c->diags, cap * sizeof(*p));

		if (!p) {
			free(text);
			c->nomem = true;
			return;
		}
		c->diags = p;
		c->cap = cap;
	}
	c->diags[c->ndiags] = (struct config_pending){line, c->ndiags, sev, text};
	c->ndiags++;
	if (sev == CONFIG_ERROR)
		c->errors++;
}

static void vreport(struct config_ctx *c, enum config_severity sev, int line, const char *key,
		    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void vreport(struct config_ctx *c, enum config_severity sev, int line, const char *key,
		    const char *fmt, va_list ap)
{
	char *msg = vfmt(fmt, ap);
	char *text;

	if (!msg) {
		c->nomem = true;
		return;
	}
	if (key)
		text = config_fmt("%s:%d: %s: %s", c->path, line, key, msg);
	else
		text = config_fmt("%s:%d: %s", c->path, line, msg);
	free(msg);
	config_push_diag(c, sev, line, text);
}

void config_report(struct config_ctx *c, enum config_severity sev, int line, const char *key,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, sev, line, key, fmt, ap);
	va_end(ap);
}

static int cmp_pending(const void *a, const void *b)
{
	const struct config_pending *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int config_flush_diags(struct config_ctx *c, struct config_diags *out)
{
	struct config_diag *items;
	int rc = 0;

	if (c->ndiags == 0)
		return 0;
	qsort(c->diags, c->ndiags, sizeof(*c->diags), cmp_pending);
	items = realloc(out->items, (out->count + c->ndiags) * sizeof(*items));
	if (!items) {
		rc = MB_ERR_NOMEM;
		goto done;
	}
	out->items = items;
	for (size_t i = 0; i < c->ndiags; i++) {
		items[out->count].severity = c->diags[i].severity;
		items[out->count].text = c->diags[i].text;
		c->diags[i].text = NULL;
		out->count++;
		if (c->diags[i].severity == CONFIG_ERROR)
			out->errors++;
	}
done:
	for (size_t i = 0; i < c->ndiags; i++)
		free(c->diags[i].text);
	free(c->diags);
	c->diags = NULL;
	c->ndiags = c->cap = 0;
	return rc;
}

const char *config_kind_name(const struct yamldoc_node *n)
{
	if (yamldoc_is_null(n))
		return "an empty value";
	switch (yamldoc_kind(n)) {
	case YAMLDOC_SCALAR: return "a single value";
	case YAMLDOC_SEQUENCE: return "a list";
	case YAMLDOC_MAPPING: return "a mapping";
	default: return "nothing";
	}
}

/* Case-insensitive optimal string alignment distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[34][34];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			size_t best = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

void config_join_names(const char *const *names, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Key paths longer than CONFIG_KEY_LEN are cut; only absurd user-written keys get there. */
void config_key_path(const char *parent, const char *name, char *buf)
{
	int n;

	if (*parent)
		n = snprintf(buf, CONFIG_KEY_LEN, "%s.%s", parent, name);
	else
		n = snprintf(buf, CONFIG_KEY_LEN, "%s", name);
	if (n < 0)
		buf[0] = '\0';
}

static void report_unknown_key(struct config_obj *o, const struct yamldoc_node *k)
{
	const char *name = yamldoc_scalar(k);
	char key[CONFIG_KEY_LEN], allowed[512];
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	for (size_t i = 0; i < o->n; i++) {
		size_t d = edit_distance(name, o->names[i]);

		if (d < best_d) {
			best_d = d;
			best = o->names[i];
		}
	}
	/* Short keys get a stricter bound, or everything would look like everything. */
	if (best_d > (strlen(name) <= 4 ? 1u : 2u))
		best = NULL;
	config_key_path(o->path, name, key);
	config_join_names(o->names, o->n, allowed, sizeof(allowed));
	if (best)
		config_report(o->c, CONFIG_ERROR, yamldoc_line(k), key,
			      "unknown key '%.64s' (allowed: %s); did you mean '%s'?", name,
			      allowed, best);
	else
		config_report(o->c, CONFIG_ERROR, yamldoc_line(k), key,
			      "unknown key '%.64s' (allowed: %s)", name, allowed);
}

void config_obj_scan(struct config_obj *o, struct config_ctx *c, const struct yamldoc_node *map,
		     const char *path, int parent_line, const char *const *names, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->c = c;
	o->path = path;
	o->names = names;
	o->n = n;
	o->line = map ? yamldoc_line(map) : parent_line;
	if (!map)
		return;

	for (size_t pair = 0; pair < yamldoc_map_len(map); pair++) {
		const struct yamldoc_node *k = yamldoc_map_key(c->doc, map, pair);
		const struct yamldoc_node *v = yamldoc_map_value(c->doc, map, pair);
		size_t i;

		if (!k || yamldoc_kind(k) != YAMLDOC_SCALAR) {
			config_report(c, CONFIG_ERROR, yamldoc_line(k), *path ? path : "top level",
				      "keys must be names, got %s as a key",
				      k ? config_kind_name(k) : "nothing");
			continue;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(yamldoc_scalar(k), names[i]))
				break;
		if (i == n) {
			report_unknown_key(o, k);
			continue;
		}
		if (o->key[i]) {
			char key[CONFIG_KEY_LEN];

			config_key_path(path, names[i], key);
			config_report(c, CONFIG_ERROR, yamldoc_line(k), key,
				      "duplicate key (first set on line %d)",
				      yamldoc_line(o->key[i]));
			continue;
		}
		o->key[i] = k;
		o->val[i] = v;
	}
}

static size_t obj_index(const struct config_obj *o, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->names[i], name))
			return i;
	/* A name missing from the key table is a bug in the loader, not in the input. */
	abort();
}

const struct yamldoc_node *config_obj_get(const struct config_obj *o, const char *name)
{
	const struct yamldoc_node *v = o->val[obj_index(o, name)];

	return yamldoc_is_null(v) ? NULL : v;
}

int config_obj_line(const struct config_obj *o, const char *name)
{
	const struct yamldoc_node *k = o->key[obj_index(o, name)];

	return k ? yamldoc_line(k) : o->line;
}

void config_obj_report(const struct config_obj *o, enum config_severity sev, const char *name,
		       const char *fmt, ...)
{
	char key[CONFIG_KEY_LEN];
	va_list ap;

	config_key_path(o->path, name, key);
	va_start(ap, fmt);
	vreport(o->c, sev, config_obj_line(o, name), key, fmt, ap);
	va_end(ap);
}
