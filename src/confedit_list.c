/*
 * confedit_list.c - adding list entries and removing keys in the configuration text; see
 * confedit.h (confedit_append, confedit_delete) and confedit_internal.h.
 *
 * The web UI adds and deletes whole devices, serial ports and AT topic pairs with these, so
 * a hand-written file keeps its comments and its order everywhere else. Like a SETPARAM
 * edit, each change is a splice of bytes found through the document's spans, and the
 * result is parsed again and checked before it is returned. Pure functions; thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confedit_internal.h"
#include "error.h"

/* The new entry in flow style: "{ a: 1, b: 2 }". */
static void put_flow_entry(struct confedit_buf *b, const struct confedit_writer *w)
{
	confedit_buf_str(b, "{ ");
	for (size_t i = 0; i < w->n; i++) {
		confedit_buf_str(b, i ? ", " : "");
		confedit_buf_str(b, w->names[i]);
		confedit_buf_str(b, ": ");
		confedit_buf_value(b, w->values[i]);
	}
	confedit_buf_str(b, " }");
}

/* The new entry in block style at column dash: "- a: 1\n  b: 2" (no line break after). */
static void put_block_entry(struct confedit_buf *b, const struct confedit_writer *w, size_t dash)
{
	confedit_buf_spaces(b, dash);
	confedit_buf_str(b, "- ");
	for (size_t i = 0; i < w->n; i++) {
		if (i) {
			confedit_buf_add(b, "\n", 1);
			confedit_buf_spaces(b, dash + 2);
		}
		confedit_buf_str(b, w->names[i]);
		confedit_buf_str(b, ": ");
		confedit_buf_value(b, w->values[i]);
	}
}

/* After "name:" of a new list: " [{ ... }]" or the block list on the next lines. */
static void put_new_list(struct confedit_buf *b, const struct confedit_writer *w, bool flow,
			 size_t indent)
{
	if (flow) {
		confedit_buf_str(b, " [");
		put_flow_entry(b, w);
		confedit_buf_str(b, "]");
		return;
	}
	confedit_buf_add(b, "\n", 1);
	put_block_entry(b, w, indent + 2);
}

static bool names_ok(const char *const *names, size_t n, char *err, size_t errlen)
{
	if (n == 0) {
		confedit_err(err, errlen, "a new entry needs at least one key");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		struct confedit_key kp;

		if (confedit_parse_key(names[i], &kp, err, errlen) != 0 || kp.n != 1 ||
		    kp.seg[0].index >= 0) {
			confedit_err(err, errlen, "'%s' is not a key of a list entry", names[i]);
			return false;
		}
	}
	return true;
}

/* Appends to an existing, non-empty list v. */
static int append_to(const struct confedit_text *p, const struct yamldoc_node *v,
		     const struct confedit_writer *w, struct confedit_buf *out)
{
	struct confedit_buf ins = {0};
	size_t at;
	int rc;

	if (yamldoc_is_flow(v)) {
		if (yamldoc_seq_len(v) == 0) {
			/* "[]": before the closing bracket. */
			size_t end = yamldoc_end(p->doc, v);

			while (end > 0 && p->text[end - 1] != ']')
				end--;
			if (end == 0)
				return MB_ERR_INVAL;
			at = end - 1;
		} else {
			at = yamldoc_end(p->doc, confedit_last_leaf(p, v));
			/* A flow mapping entry ends at its '}', which the leaf does not include. */
			while (at < p->len && (p->text[at] == ' ' || p->text[at] == '}'))
				at++;
			while (at > 0 && p->text[at - 1] == ' ')
				at--;
			confedit_buf_str(&ins, ", ");
		}
		put_flow_entry(&ins, w);
	} else {
		size_t dash = yamldoc_column(v);
		size_t leaf_end = yamldoc_end(p->doc, confedit_last_leaf(p, v));

		if (leaf_end > 0 && p->text[leaf_end - 1] == '\n') {
			at = leaf_end; /* a block scalar ends with its line break */
			put_block_entry(&ins, w, dash);
			confedit_buf_add(&ins, "\n", 1);
		} else {
			const char *nl = memchr(p->text + leaf_end, '\n', p->len - leaf_end);

			at = nl ? (size_t)(nl - p->text) : p->len;
			if (at > 0 && p->text[at - 1] == '\r')
				at--;
			confedit_buf_add(&ins, "\n", 1);
			put_block_entry(&ins, w, dash);
		}
	}
	rc = ins.nomem ? MB_ERR_NOMEM : confedit_splice(p, at, at, &ins, out);
	free(ins.data);
	return rc;
}

/* The number of entries of the list at kp in text (0 when missing or null), or -1. */
static long list_len(const char *text, size_t len, const struct confedit_key *kp)
{
	struct confedit_text p;
	struct confedit_walk w;
	char why[256];
	long n = -1;

	if (confedit_parse_text(text, len, &p, why, sizeof(why)) != 0)
		return -1;
	if (confedit_walk(p.doc, kp, &w, why, sizeof(why)) == 0) {
		if (!w.value || yamldoc_is_null(w.value))
			n = 0;
		else if (yamldoc_kind(w.value) == YAMLDOC_SEQUENCE)
			n = (long)yamldoc_seq_len(w.value);
	}
	confedit_text_free(&p);
	return n;
}

int confedit_append(const char *text, size_t len, const char *list_key, const char *const *names,
		    const char *const *values, size_t n, char **out, size_t *out_len, char *err,
		    size_t errlen)
{
	struct confedit_writer wr = {.put = put_new_list, .names = names, .values = values, .n = n};
	struct confedit_key kp;
	struct confedit_text p;
	struct confedit_walk w;
	struct confedit_buf b = {0};
	long before;
	int rc = confedit_parse_key(list_key, &kp, err, errlen);

	if (rc)
		return rc;
	if (kp.seg[kp.n - 1].index >= 0) {
		confedit_err(err, errlen, "%s: name the list itself, without a position", list_key);
		return MB_ERR_INVAL;
	}
	if (!names_ok(names, n, err, errlen))
		return MB_ERR_INVAL;
	for (size_t i = 0; i < n; i++)
		if (!values[i]) {
			confedit_err(err, errlen, "no value for %s", names[i]);
			return MB_ERR_INVAL;
		}
	rc = confedit_parse_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	rc = confedit_walk(p.doc, &kp, &w, err, errlen);
	if (rc == 0 && w.value && !yamldoc_is_null(w.value)) {
		if (yamldoc_kind(w.value) != YAMLDOC_SEQUENCE) {
			confedit_err(err, errlen, "%s is %s, not a list", list_key,
				     confedit_kind(w.value));
			rc = MB_ERR_INVAL;
		} else {
			rc = append_to(&p, w.value, &wr, &b);
			if (rc == MB_ERR_INVAL)
				confedit_err(err, errlen, "cannot find the end of the list %s",
					     list_key);
		}
	} else if (rc == 0) {
		rc = confedit_add_missing(&p, &kp, list_key, &wr, &b, err, errlen);
	}
	confedit_text_free(&p);
	if (rc == 0 && (b.nomem || !b.data))
		rc = MB_ERR_NOMEM;
	if (rc)
		goto fail;

	/* Read it back: one entry more, and the new one holds names[0]. */
	before = list_len(text, len, &kp);
	long after = list_len(b.data, b.len, &kp);
	char key[CONFEDIT_KEY_MAX + 96], *check = NULL, why[256];
	snprintf(key, sizeof(key), "%s[%ld].%s", list_key, after - 1, names[0]);
	if (before < 0 || after != before + 1 ||
	    confedit_get(b.data, b.len, key, &check, why, sizeof(why)) != 0 ||
	    strcmp(check, values[0]) != 0) {
		free(check);
		confedit_err(err, errlen,
			     "an entry could not be added to %s safely in this file; edit it by hand",
			     list_key);
		rc = MB_ERR_INVAL;
		goto fail;
	}
	free(check);
	*out = b.data;
	*out_len = b.len;
	return 0;
fail:
	free(b.data);
	return rc;
}

/* Start of the line holding offset at; true when only spaces (and, for a list entry, one
 * "- ") stand between it and at. */
static bool line_start(const struct confedit_text *p, size_t at, bool entry, size_t *start)
{
	size_t s = at;

	while (s > 0 && p->text[s - 1] != '\n')
		s--;
	for (size_t i = s; i < at; i++) {
		if (p->text[i] == ' ')
			continue;
		if (entry && p->text[i] == '-' && i + 1 < at && p->text[i + 1] == ' ') {
			entry = false; /* one dash only */
			i++;
			continue;
		}
		return false;
	}
	*start = s;
	return true;
}

/* Offset just past the line break ending the line that holds offset at. */
static size_t line_end(const struct confedit_text *p, size_t at)
{
	const char *nl = at < p->len ? memchr(p->text + at, '\n', p->len - at) : NULL;

	return nl ? (size_t)(nl - p->text) + 1 : p->len;
}

int confedit_delete(const char *text, size_t len, const char *key, char **out, size_t *out_len,
		    char *err, size_t errlen)
{
	struct confedit_key kp, list = {0};
	struct confedit_text p;
	struct confedit_walk w;
	struct confedit_buf b = {0}, none = {0};
	size_t start = 0, end = 0;
	bool entry;
	long before = -1;
	int rc = confedit_parse_key(key, &kp, err, errlen);

	if (rc)
		return rc;
	entry = kp.seg[kp.n - 1].index >= 0;
	if (entry) {
		list = kp;
		list.seg[list.n - 1].index = -1;
		before = list_len(text, len, &list);
	}
	rc = confedit_parse_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	rc = confedit_walk(p.doc, &kp, &w, err, errlen);
	if (rc == 0 && !w.value) {
		confedit_err(err, errlen, "%s is not in the configuration file", key);
		rc = MB_ERR_NOTFOUND;
	}
	if (rc == 0) {
		/* The entry's or the pair's first line, and the end of its last one. */
		const struct yamldoc_node *first = entry ? w.value : w.key_node;
		const struct yamldoc_node *owner = entry ? NULL : w.owner;
		size_t from = yamldoc_start(p.doc, first);

		if ((owner && yamldoc_is_flow(owner)) || !line_start(&p, from, entry, &start)) {
			confedit_err(err, errlen,
				     "%s is not written on lines of its own; edit the file by hand",
				     key);
			rc = MB_ERR_INVAL;
		} else {
			size_t last = yamldoc_end(p.doc, confedit_last_leaf(&p, w.value));
			if (last < yamldoc_end(p.doc, first))
				last = yamldoc_end(p.doc, first);
			/* A block scalar's span already ends past its line break. */
			end = last > 0 && p.text[last - 1] == '\n' ? last : line_end(&p, last);
			rc = confedit_splice(&p, start, end, &none, &b);
		}
	}
	confedit_text_free(&p);
	if (rc == 0 && (b.nomem || !b.data))
		rc = MB_ERR_NOMEM;
	if (rc)
		goto fail;

	/* Read it back: the key is gone, or the list is one entry shorter. */
	bool ok;
	if (entry) {
		ok = before > 0 && list_len(b.data, b.len, &list) == before - 1;
	} else {
		struct confedit_text q;
		struct confedit_walk qw;
		char why[256];

		ok = confedit_parse_text(b.data, b.len, &q, why, sizeof(why)) == 0;
		if (ok) {
			ok = confedit_walk(q.doc, &kp, &qw, why, sizeof(why)) == 0 && !qw.value;
			confedit_text_free(&q);
		}
	}
	if (!ok) {
		confedit_err(err, errlen,
			     "%s could not be removed safely from this file; edit it by hand", key);
		rc = MB_ERR_INVAL;
		goto fail;
	}
	*out = b.data;
	*out_len = b.len;
	return 0;
fail:
	free(b.data);
	return rc;
}
