/*
 * confedit.c - read and edit single keys of the configuration text; see confedit.h.
 *
 * yamldoc.h gives every node its span of bytes in the text (libyaml's marks count
 * characters; yamldoc turns them into byte offsets). An edit is then a splice of bytes:
 * replace the span of a scalar, or insert new text after the last value of a mapping.
 * The result is parsed again and the key read back before it is returned, so a splice
 * that landed in the wrong place can never be written. Key paths and the walk along them
 * are in confedit_path.c; writing the file safely is atomicfile.c's job.
 */
#include "confedit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confedit_internal.h"
#include "error.h"
#include "yamldoc.h"

void confedit_text_free(struct confedit_text *p)
{
	yamldoc_free(p->doc);
	memset(p, 0, sizeof(*p));
}

int confedit_parse_text(const char *text, size_t len, struct confedit_text *p, char *err,
			size_t errlen)
{
	struct yamldoc_error e;
	int rc;

	memset(p, 0, sizeof(*p));
	p->text = text;
	p->len = len;
	if (memchr(text, '\0', len)) {
		confedit_err(
			err, errlen,
			"the configuration file contains NUL bytes (only UTF-8 text can be edited)");
		return MB_ERR_INVAL;
	}
	rc = yamldoc_load(text, len, YAMLDOC_SPANS, &p->doc, &e);
	if (rc < 0) {
		confedit_err(err, errlen, "the configuration file is not valid YAML (line %d: %s)",
			     e.line, e.problem ? e.problem : "?");
		return rc;
	}
	return 0;
}

int confedit_get(const char *text, size_t len, const char *key, char **value, char *err,
		 size_t errlen)
{
	struct confedit_key kp;
	struct confedit_text p;
	struct confedit_walk w;
	char *v;
	int rc = confedit_parse_key(key, &kp, err, errlen);

	if (rc)
		return rc;
	rc = confedit_parse_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	rc = confedit_walk(p.doc, &kp, &w, err, errlen);
	if (rc)
		goto out;
	if (!w.value || yamldoc_is_null(w.value)) {
		confedit_err(err, errlen,
			     "%s is not set in the configuration file (its default applies)", key);
		rc = MB_ERR_NOTFOUND;
		goto out;
	}
	if (yamldoc_kind(w.value) != YAMLDOC_SCALAR) {
		confedit_err(err, errlen, "%s is %s; name a single value in it (or use GETCONFIG)",
			     key, confedit_kind(w.value));
		rc = MB_ERR_INVAL;
		goto out;
	}
	v = strdup(yamldoc_scalar(w.value));
	if (!v) {
		rc = MB_ERR_NOMEM;
		goto out;
	}
	*value = v;
out:
	confedit_text_free(&p);
	return rc;
}

/* ---------------------------------------------------------------- writing values */

void confedit_buf_add(struct confedit_buf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->nomem = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void confedit_buf_str(struct confedit_buf *b, const char *s)
{
	confedit_buf_add(b, s, strlen(s));
}

void confedit_buf_spaces(struct confedit_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		confedit_buf_add(b, " ", 1);
}

/* True when YAML reads v back as the same text when written plain. */
static bool plain_safe(const char *v)
{
	static const char *const nulls[] = {"~", "null", "Null", "NULL"};

	if (!*v || strlen(v) > 200)
		return false;
	if (!isalnum((unsigned char)v[0]) && v[0] != '_' && v[0] != '/' && v[0] != '.')
		return false;
	for (const char *c = v; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("_./:@+-", *c))
			return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(v, nulls[i]))
			return false;
	return true;
}

void confedit_buf_value(struct confedit_buf *b, const char *v)
{
	if (plain_safe(v)) {
		confedit_buf_str(b, v);
		return;
	}
	confedit_buf_add(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
		char esc[8];

		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			confedit_buf_add(b, esc, 2);
		} else if (*c < 0x20 || *c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *c);
			confedit_buf_str(b, esc);
		} else {
			confedit_buf_add(b, (const char *)c, 1);
		}
	}
	confedit_buf_add(b, "\"", 1);
}

/* " value" after "name:": the writer of a scalar. */
static void put_scalar(struct confedit_buf *b, const struct confedit_writer *w, bool flow,
		       size_t indent)
{
	(void)flow;
	(void)indent;
	confedit_buf_add(b, " ", 1);
	confedit_buf_value(b, w->value);
}

/* "name: value" for segment i, or nested "name:\n  sub: value" below it. Recursion depth
 * is bounded by the key path's segment count (a handful). */
static void buf_entry( // NOLINT(misc-no-recursion): bounded by kp->n, see above
	struct confedit_buf *b, const struct confedit_key *kp, size_t i,
	const struct confedit_writer *w, bool flow, size_t indent)
{
	confedit_buf_str(b, kp->seg[i].name);
	confedit_buf_add(b, ":", 1);
	if (i + 1 == kp->n) {
		w->put(b, w, flow, indent);
		return;
	}
	if (flow) {
		confedit_buf_str(b, " { ");
		buf_entry(b, kp, i + 1, w, true, 0);
		confedit_buf_str(b, " }");
		return;
	}
	confedit_buf_add(b, "\n", 1);
	confedit_buf_spaces(b, indent + 2);
	buf_entry(b, kp, i + 1, w, false, indent + 2);
}

/* The node that ends last inside n (n itself for scalars and empty collections). */
const struct yamldoc_node *confedit_last_leaf(const struct confedit_text *p,
					      const struct yamldoc_node *n)
{
	for (int guard = 0; n && guard < 64; guard++) {
		const struct yamldoc_node *next = NULL;
		size_t len;

		if (yamldoc_kind(n) == YAMLDOC_MAPPING && (len = yamldoc_map_len(n)) > 0)
			next = yamldoc_map_value(p->doc, n, len - 1);
		else if (yamldoc_kind(n) == YAMLDOC_SEQUENCE && (len = yamldoc_seq_len(n)) > 0)
			next = yamldoc_seq_item(p->doc, n, len - 1);
		/* An alias points back at an earlier node; its text ends here, not there. */
		if (!next || yamldoc_start(p->doc, next) < yamldoc_start(p->doc, n))
			return n;
		n = next;
	}
	return n;
}

int confedit_splice(const struct confedit_text *p, size_t at, size_t end,
		    const struct confedit_buf *ins, struct confedit_buf *out)
{
	confedit_buf_add(out, p->text, at);
	confedit_buf_add(out, ins->data ? ins->data : "", ins->len);
	confedit_buf_add(out, p->text + end, p->len - end);
	return out->nomem ? MB_ERR_NOMEM : 0;
}

/* Builds the edited text into out. */
static int edit(const struct confedit_text *p, const struct confedit_key *kp, const char *key,
		const char *value, struct confedit_buf *out, char *err, size_t errlen)
{
	struct confedit_buf ins = {0};
	struct confedit_walk w;
	int rc = confedit_walk(p->doc, kp, &w, err, errlen);

	if (rc)
		return rc;
	for (size_t i = w.depth; !w.value && i < kp->n; i++) {
		if (kp->seg[i].index >= 0) {
			char where[CONFEDIT_KEY_MAX + 16];

			confedit_key_prefix(kp, i, where, sizeof(where));
			confedit_err(err, errlen,
				     "%s: there is no list '%s' in the file (SETPARAM cannot add lists or entries)",
				     where, kp->seg[i].name);
			return MB_ERR_INVAL;
		}
	}

	if (w.value && !yamldoc_is_null(w.value)) {
		/* Replace an existing value in place. */
		const struct yamldoc_node *v = w.value;

		/* A flow list of numbers ("start: [1, 10]") may become "1;10"; nothing else that
		 * holds other values may be replaced by one. */
		bool number_list = yamldoc_kind(v) == YAMLDOC_SEQUENCE && yamldoc_is_flow(v) &&
				   yamldoc_seq_len(v) > 0 &&
				   yamldoc_kind(yamldoc_seq_item(p->doc, v, 0)) == YAMLDOC_SCALAR;
		if (yamldoc_kind(v) != YAMLDOC_SCALAR && !number_list) {
			confedit_err(err, errlen, "%s is %s; name a single value in it", key,
				     confedit_kind(v));
			return MB_ERR_INVAL;
		}
		if (yamldoc_is_block_scalar(v)) {
			confedit_err(err, errlen,
				     "%s is written as a block (| or >); edit the file by hand",
				     key);
			return MB_ERR_INVAL;
		}
		if (w.key_node && yamldoc_start(p->doc, v) < yamldoc_end(p->doc, w.key_node)) {
			confedit_err(err, errlen,
				     "%s is a YAML alias of another value; edit the file by hand",
				     key);
			return MB_ERR_INVAL;
		}
		confedit_buf_value(&ins, value);
		rc = ins.nomem ? MB_ERR_NOMEM
			       : confedit_splice(p, yamldoc_start(p->doc, v),
						 yamldoc_end(p->doc, v), &ins, out);
		free(ins.data);
		return rc;
	}

	return confedit_add_missing(p, kp, key,
				    &(struct confedit_writer){.put = put_scalar, .value = value},
				    out, err, errlen);
}

int confedit_add_missing(const struct confedit_text *p, const struct confedit_key *kp,
			 const char *key, const struct confedit_writer *wr,
			 struct confedit_buf *out, char *err, size_t errlen)
{
	struct confedit_buf ins = {0};
	struct confedit_walk w;
	int rc = confedit_walk(p->doc, kp, &w, err, errlen);

	if (rc)
		return rc;
	if (w.value) {
		/* "key:" with an empty, ~ or null value: the value goes in its place. */
		const struct yamldoc_node *v = w.value;

		bool empty =
			!yamldoc_scalar(v)[0] && yamldoc_start(p->doc, v) == yamldoc_end(p->doc, v);
		size_t at = yamldoc_start(p->doc, v);

		if (wr->put == put_scalar) {
			/* "~" or "null" is replaced by the value where it stands. */
			if (empty)
				confedit_buf_add(&ins, " ", 1);
			confedit_buf_value(&ins, wr->value);
		} else {
			while (!empty && at > 0 && p->text[at - 1] == ' ')
				at--; /* the writer puts its own space or line break */
			wr->put(&ins, wr, w.owner && yamldoc_is_flow(w.owner),
				yamldoc_column(w.key_node));
		}
		rc = ins.nomem ? MB_ERR_NOMEM
			       : confedit_splice(p, at, yamldoc_end(p->doc, v), &ins, out);
		free(ins.data);
		return rc;
	}

	if (w.null_value) {
		/* "section:" (empty, ~ or null) on the way: it becomes a mapping. */
		const struct yamldoc_node *v = w.null_value;
		size_t at = yamldoc_start(p->doc, v), end = yamldoc_end(p->doc, v);

		if (w.owner && yamldoc_is_flow(w.owner)) {
			confedit_buf_str(&ins, at == end ? " { " : "{ ");
			buf_entry(&ins, kp, w.depth, wr, true, 0);
			confedit_buf_str(&ins, " }");
		} else {
			size_t col = yamldoc_column(w.key_node);

			if (at == end) {
				/* Empty: after the rest of the key's line (a comment stays there). */
				const char *nl = memchr(p->text + at, '\n', p->len - at);

				at = end = nl ? (size_t)(nl - p->text) : p->len;
				if (at > 0 && p->text[at - 1] == '\r')
					at = end = at - 1;
			} else {
				while (at > 0 && p->text[at - 1] == ' ')
					at--;
			}
			confedit_buf_add(&ins, "\n", 1);
			confedit_buf_spaces(&ins, col + 2);
			buf_entry(&ins, kp, w.depth, wr, false, col + 2);
		}
		rc = ins.nomem ? MB_ERR_NOMEM : confedit_splice(p, at, end, &ins, out);
		free(ins.data);
		return rc;
	}

	if (!w.parent) {
		/* Empty document: the new key starts it. */
		size_t at = p->len;

		if (at > yamldoc_text_start(p->doc) && p->text[at - 1] != '\n')
			confedit_buf_add(&ins, "\n", 1);
		buf_entry(&ins, kp, 0, wr, false, 0);
		confedit_buf_add(&ins, "\n", 1);
		rc = ins.nomem ? MB_ERR_NOMEM : confedit_splice(p, at, at, &ins, out);
		free(ins.data);
		return rc;
	}

	const struct yamldoc_node *m = w.parent;
	size_t at;

	if (yamldoc_is_flow(m)) {
		if (yamldoc_map_len(m) == 0) {
			/* "{}": insert before the closing brace. */
			size_t end = yamldoc_end(p->doc, m);

			while (end > 0 && p->text[end - 1] != '}')
				end--;
			if (end == 0) {
				confedit_err(err, errlen,
					     "cannot find the end of the mapping holding %s", key);
				return MB_ERR_INVAL;
			}
			at = end - 1;
			confedit_buf_add(&ins, " ", 1);
			buf_entry(&ins, kp, w.depth, wr, true, 0);
			confedit_buf_add(&ins, " ", 1);
		} else {
			at = yamldoc_end(p->doc, confedit_last_leaf(p, m));
			confedit_buf_str(&ins, ", ");
			buf_entry(&ins, kp, w.depth, wr, true, 0);
		}
	} else {
		size_t col = yamldoc_column(yamldoc_map_key(p->doc, m, 0));
		size_t leaf_end = yamldoc_end(p->doc, confedit_last_leaf(p, m));

		if (leaf_end > 0 && p->text[leaf_end - 1] == '\n') {
			/* A block scalar ends with its line break: start on the next line. */
			at = leaf_end;
			confedit_buf_spaces(&ins, col);
			buf_entry(&ins, kp, w.depth, wr, false, col);
			confedit_buf_add(&ins, "\n", 1);
		} else {
			const char *nl = memchr(p->text + leaf_end, '\n', p->len - leaf_end);

			at = nl ? (size_t)(nl - p->text) : p->len;
			if (at > 0 && p->text[at - 1] == '\r')
				at--; /* keep a CRLF line ending together */
			confedit_buf_add(&ins, "\n", 1);
			confedit_buf_spaces(&ins, col);
			buf_entry(&ins, kp, w.depth, wr, false, col);
		}
	}
	rc = ins.nomem ? MB_ERR_NOMEM : confedit_splice(p, at, at, &ins, out);
	free(ins.data);
	return rc;
}

int confedit_set(const char *text, size_t len, const char *key, const char *value, char **out,
		 size_t *out_len, char *err, size_t errlen)
{
	struct confedit_key kp;
	struct confedit_text p;
	struct confedit_buf b = {0};
	char *check = NULL, why[256];
	int rc = confedit_parse_key(key, &kp, err, errlen);

	if (rc)
		return rc;
	if (!value) {
		confedit_err(err, errlen, "no value");
		return MB_ERR_INVAL;
	}
	rc = confedit_parse_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	rc = edit(&p, &kp, key, value, &b, err, errlen);
	confedit_text_free(&p);
	if (rc == 0 && b.nomem)
		rc = MB_ERR_NOMEM;
	if (rc)
		goto fail;
	if (!b.data) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	/* Read the key back from the new text: the edit must have done exactly this. */
	rc = confedit_get(b.data, b.len, key, &check, why, sizeof(why));
	if (rc == MB_ERR_NOMEM)
		goto fail;
	if (rc || strcmp(check, value) != 0) {
		confedit_err(err, errlen,
			     "%s could not be set safely in this file (%s); edit it by hand", key,
			     rc ? why : "the value read back differs");
		rc = MB_ERR_INVAL;
		goto fail;
	}
	free(check);
	*out = b.data;
	*out_len = b.len;
	return 0;
fail:
	free(check);
	free(b.data);
	return rc;
}

/* ---------------------------------------------------------------- redacted dump */

static bool write_to_buf(void *ctx, const char *data, size_t len)
{
	struct confedit_buf *b = ctx;

	confedit_buf_add(b, data, len);
	return !b->nomem;
}

int confedit_dump_redacted(const char *text, size_t len, char **out, char *err, size_t errlen)
{
	struct confedit_text p;
	struct confedit_buf b = {0};
	const char *problem;
	int rc = confedit_parse_text(text, len, &p, err, errlen);

	if (rc)
		return rc;
	if (!yamldoc_root(p.doc)) {
		confedit_text_free(&p);
		*out = strdup("");
		return *out ? 0 : MB_ERR_NOMEM;
	}
	/*
	 * Every secret's value becomes a new "***" scalar. The old value stays in the
	 * document unreferenced: the emitter never reaches it.
	 */
	rc = yamldoc_replace_values(p.doc, confedit_is_secret, "***");
	if (rc) {
		confedit_text_free(&p);
		return rc;
	}
	rc = yamldoc_emit(p.doc, write_to_buf, &b, &problem);
	if (rc == MB_ERR_INVAL || (rc == MB_ERR_NOMEM && problem)) {
		confedit_err(err, errlen, "cannot write the configuration out: %s",
			     problem ? problem : "unknown problem");
		rc = b.nomem ? MB_ERR_NOMEM : MB_ERR_INVAL;
	}
	confedit_text_free(&p);
	if (rc == 0 && (b.nomem || !b.data))
		rc = MB_ERR_NOMEM;
	if (rc) {
		free(b.data);
		return rc;
	}
	*out = b.data;
	return 0;
}
