/*
 * confedit.c - read and edit single keys of the configuration text; see confedit.h.
 *
 * libyaml's document API gives every node a start and end mark. The marks count
 * characters (a UTF-8 sequence is one), not bytes, and do not count a byte order mark,
 * so the text is first indexed: offsets[i] is the byte offset of character i. An edit is
 * then a splice of bytes: replace the span of a scalar, or insert new text after the
 * last value of a mapping. The result is parsed again and the key read back before it
 * is returned, so a splice that landed in the wrong place can never be written.
 */
#include "confedit.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "error.h"

#define MAX_SEGMENTS 8
#define NAME_MAX_LEN 64

struct segment {
	char name[NAME_MAX_LEN + 1];
	long index; /* -1: none */
};

struct key_path {
	struct segment seg[MAX_SEGMENTS];
	size_t n;
};

/* A parsed text: the libyaml document and the character -> byte offset table. */
struct parsed {
	const char *text;
	size_t len;
	size_t bom;      /* bytes of a UTF-8 byte order mark at the start */
	size_t *offsets; /* offsets[i]: byte offset of character i (after the BOM) */
	size_t nchars;
	yaml_document_t doc;
	bool have_doc;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

bool confedit_is_secret(const char *key)
{
	const char *name = key ? strrchr(key, '.') : NULL;
	char lower[NAME_MAX_LEN + 1];
	size_t n = 0;

	name = name ? name + 1 : key;
	if (!name)
		return false;
	/* Not case-sensitive: a mistyped "Password" must not put the value in the log. */
	for (; n < NAME_MAX_LEN && name[n]; n++)
		lower[n] = (char)tolower((unsigned char)name[n]);
	lower[n] = '\0';
	return strstr(lower, "password") || strstr(lower, "secret") || strstr(lower, "token") ||
	       !strcmp(lower, "psk");
}

/* ---------------------------------------------------------------- key paths */

static int parse_key(const char *key, struct key_path *kp, char *err, size_t errlen)
{
	const char *p = key;

	kp->n = 0;
	if (!key || !*key) {
		set_err(err, errlen, "empty key (such as mqtt.qos or modbus.devices[0].period)");
		return MB_ERR_INVAL;
	}
	if (strlen(key) > CONFEDIT_KEY_MAX) {
		set_err(err, errlen, "key longer than %d characters", CONFEDIT_KEY_MAX);
		return MB_ERR_INVAL;
	}
	for (;;) {
		struct segment *s;
		size_t n = 0;

		if (kp->n == MAX_SEGMENTS) {
			set_err(err, errlen, "key '%s' is nested too deeply", key);
			return MB_ERR_INVAL;
		}
		s = &kp->seg[kp->n];
		while (isalnum((unsigned char)p[n]) || p[n] == '_')
			n++;
		if (n == 0 || n > NAME_MAX_LEN) {
			set_err(err, errlen,
				"'%s' is not a key (names of letters, digits and _, joined by '.', with [n] for list entries, such as modbus.devices[0].period)",
				key);
			return MB_ERR_INVAL;
		}
		memcpy(s->name, p, n);
		s->name[n] = '\0';
		s->index = -1;
		p += n;
		if (*p == '[') {
			long idx = 0;

			p++;
			if (!isdigit((unsigned char)*p)) {
				set_err(err, errlen, "'%s': expected a list position such as [0]",
					key);
				return MB_ERR_INVAL;
			}
			while (isdigit((unsigned char)*p)) {
				idx = idx * 10 + (*p - '0');
				if (idx > 100000) {
					set_err(err, errlen, "'%s': list position too large", key);
					return MB_ERR_INVAL;
				}
				p++;
			}
			if (*p != ']') {
				set_err(err, errlen, "'%s': expected ']' after the list position",
					key);
				return MB_ERR_INVAL;
			}
			p++;
			s->index = idx;
		}
		kp->n++;
		if (*p == '\0')
			return 0;
		if (*p != '.') {
			set_err(err, errlen,
				"'%s' is not a key (names of letters, digits and _, joined by '.', with [n] for list entries)",
				key);
			return MB_ERR_INVAL;
		}
		p++;
	}
}

int confedit_check_key(const char *key, char *err, size_t errlen)
{
	struct key_path kp;

	return parse_key(key, &kp, err, errlen);
}

/* "a.b[2].c" up to and including segment i, for messages. */
static void key_prefix(const struct key_path *kp, size_t upto, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i <= upto && i < kp->n && used < len; i++) {
		int w;

		if (kp->seg[i].index >= 0)
			w = snprintf(buf + used, len - used, "%s%s[%ld]", i ? "." : "",
				     kp->seg[i].name, kp->seg[i].index);
		else
			w = snprintf(buf + used, len - used, "%s%s", i ? "." : "", kp->seg[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* ---------------------------------------------------------------- parsing */

static void parsed_free(struct parsed *p)
{
	if (p->have_doc)
		yaml_document_delete(&p->doc);
	free(p->offsets);
	memset(p, 0, sizeof(*p));
}

static int parse_text(const char *text, size_t len, struct parsed *p, char *err, size_t errlen)
{
	yaml_parser_t parser;
	int rc;

	memset(p, 0, sizeof(*p));
	p->text = text;
	p->len = len;
	if (memchr(text, '\0', len)) {
		set_err(err, errlen,
			"the configuration file contains NUL bytes (only UTF-8 text can be edited)");
		return MB_ERR_INVAL;
	}
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		p->bom = 3;
	p->offsets = malloc((len - p->bom + 1) * sizeof(size_t));
	if (!p->offsets)
		return MB_ERR_NOMEM;
	for (size_t i = p->bom; i < len; i++)
		if (((unsigned char)text[i] & 0xC0) != 0x80)
			p->offsets[p->nchars++] = i;
	p->offsets[p->nchars] = len;

	if (!yaml_parser_initialize(&parser)) {
		parsed_free(p);
		return MB_ERR_NOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &p->doc)) {
		set_err(err, errlen, "the configuration file is not valid YAML (line %zu: %s)",
			parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
		rc = parser.error == YAML_MEMORY_ERROR ? MB_ERR_NOMEM : MB_ERR_INVAL;
		yaml_parser_delete(&parser);
		parsed_free(p);
		return rc;
	}
	p->have_doc = true;
	yaml_parser_delete(&parser);
	return 0;
}

/* Byte offset of a libyaml mark index. */
static size_t byte_at(const struct parsed *p, size_t char_index)
{
	return char_index <= p->nchars ? p->offsets[char_index] : p->len;
}

static yaml_node_t *node(const struct parsed *p, int id)
{
	return yaml_document_get_node((yaml_document_t *)&p->doc, id);
}

static bool is_null_scalar(const yaml_node_t *n)
{
	const char *v;

	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

/* The pair of mapping m whose key is name, or NULL. */
static yaml_node_pair_t *find_pair(const struct parsed *p, const yaml_node_t *m, const char *name)
{
	for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = node(p, pr->key);

		if (k && k->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)k->data.scalar.value, name))
			return pr;
	}
	return NULL;
}

static const char *kind(const yaml_node_t *n)
{
	if (!n)
		return "nothing";
	if (n->type == YAML_MAPPING_NODE)
		return "a section";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return "a value";
}

/* Where a walk along a key path stopped. */
struct walk {
	yaml_node_t *value;      /* the node at the full path, or NULL when missing */
	yaml_node_t *key_node;   /* the key scalar of the last found mapping pair */
	yaml_node_t *parent;     /* mapping that holds (or should hold) seg[depth] */
	yaml_node_t *null_value; /* a section on the way was null: fill it instead of parent */
	yaml_node_t *owner;      /* the mapping holding key_node */
	size_t depth;            /* segments found */
};

/*
 * Follows kp from the root. Returns 0 with w filled; a missing key is not an error here
 * (w->value NULL, w->depth = segments found); a path through a value or a list without
 * position is (MB_ERR_INVAL).
 */
static int walk(const struct parsed *p, const struct key_path *kp, struct walk *w, char *err,
		size_t errlen)
{
	yaml_node_t *cur = yaml_document_get_root_node((yaml_document_t *)&p->doc);
	char where[CONFEDIT_KEY_MAX + 16];

	memset(w, 0, sizeof(*w));
	if (cur && is_null_scalar(cur))
		cur = NULL;
	if (cur && cur->type != YAML_MAPPING_NODE) {
		set_err(err, errlen, "the configuration file is not a mapping of sections");
		return MB_ERR_INVAL;
	}
	for (size_t i = 0; i < kp->n; i++) {
		const struct segment *s = &kp->seg[i];
		yaml_node_pair_t *pr;

		w->parent = cur;
		w->depth = i;
		if (!cur)
			return 0; /* empty document or null section: everything from here is missing */
		pr = find_pair(p, cur, s->name);
		if (!pr)
			return 0;
		w->owner = cur;
		w->key_node = node(p, pr->key);
		cur = node(p, pr->value);
		if (s->index >= 0) {
			key_prefix(kp, i, where, sizeof(where));
			if (!cur || cur->type != YAML_SEQUENCE_NODE) {
				set_err(err, errlen, "%s: '%s' is %s, not a list", where, s->name,
					kind(cur));
				return MB_ERR_INVAL;
			}
			size_t len = (size_t)(cur->data.sequence.items.top -
					      cur->data.sequence.items.start);
			if ((size_t)s->index >= len) {
				set_err(err, errlen, "%s: '%s' has %zu entries (positions 0..%zu)",
					where, s->name, len, len ? len - 1 : 0);
				return MB_ERR_INVAL;
			}
			cur = node(p, cur->data.sequence.items.start[s->index]);
		}
		if (i + 1 < kp->n) {
			key_prefix(kp, i, where, sizeof(where));
			if (cur && is_null_scalar(cur)) {
				w->null_value = cur;
				w->parent = NULL;
				w->depth = i + 1;
				return 0;
			}
			if (!cur || cur->type != YAML_MAPPING_NODE) {
				if (cur && cur->type == YAML_SEQUENCE_NODE)
					set_err(err, errlen,
						"%s is a list: name an entry, such as %s[0]", where,
						where);
				else
					set_err(err, errlen, "%s is %s, not a section", where,
						kind(cur));
				return MB_ERR_INVAL;
			}
		}
	}
	w->value = cur;
	w->depth = kp->n;
	return 0;
}

int confedit_get(const char *text, size_t len, const char *key, char **value, char *err,
		 size_t errlen)
{
	struct key_path kp;
	struct parsed p;
	struct walk w;
	char *v;
	int rc = parse_key(key, &kp, err, errlen);

	if (rc)
		return rc;
	rc = parse_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	rc = walk(&p, &kp, &w, err, errlen);
	if (rc)
		goto out;
	if (!w.value || is_null_scalar(w.value)) {
		set_err(err, errlen,
			"%s is not set in the configuration file (its default applies)", key);
		rc = MB_ERR_NOTFOUND;
		goto out;
	}
	if (w.value->type != YAML_SCALAR_NODE) {
		set_err(err, errlen, "%s is %s; name a single value in it (or use GETCONFIG)", key,
			kind(w.value));
		rc = MB_ERR_INVAL;
		goto out;
	}
	v = strdup((const char *)w.value->data.scalar.value);
	if (!v) {
		rc = MB_ERR_NOMEM;
		goto out;
	}
	*value = v;
out:
	parsed_free(&p);
	return rc;
}

/* ---------------------------------------------------------------- writing values */

/* A growable byte buffer. */
struct buf {
	char *data;
	size_t len, cap;
	bool nomem;
};

static void buf_add(struct buf *b, const char *s, size_t n)
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

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_spaces(struct buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_add(b, " ", 1);
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

static void buf_value(struct buf *b, const char *v)
{
	if (plain_safe(v)) {
		buf_str(b, v);
		return;
	}
	buf_add(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
		char esc[8];

		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			buf_add(b, esc, 2);
		} else if (*c < 0x20 || *c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *c);
			buf_str(b, esc);
		} else {
			buf_add(b, (const char *)c, 1);
		}
	}
	buf_add(b, "\"", 1);
}

/* "name: value" for segment i, or nested "name:\n  sub: value" below it. Recursion depth
 * is bounded by the key path's segment count (a handful). */
static void buf_entry( // NOLINT(misc-no-recursion): bounded by kp->n, see above
	struct buf *b, const struct key_path *kp, size_t i, const char *value, bool flow,
	size_t indent)
{
	buf_str(b, kp->seg[i].name);
	buf_add(b, ":", 1);
	if (i + 1 == kp->n) {
		buf_add(b, " ", 1);
		buf_value(b, value);
		return;
	}
	if (flow) {
		buf_str(b, " { ");
		buf_entry(b, kp, i + 1, value, true, 0);
		buf_str(b, " }");
		return;
	}
	buf_add(b, "\n", 1);
	buf_spaces(b, indent + 2);
	buf_entry(b, kp, i + 1, value, false, indent + 2);
}

/* The node that ends last inside n (n itself for scalars and empty collections). */
static const yaml_node_t *last_leaf(const struct parsed *p, const yaml_node_t *n)
{
	for (int guard = 0; n && guard < 64; guard++) {
		const yaml_node_t *next = NULL;

		if (n->type == YAML_MAPPING_NODE &&
		    n->data.mapping.pairs.top > n->data.mapping.pairs.start)
			next = node(p, n->data.mapping.pairs.top[-1].value);
		else if (n->type == YAML_SEQUENCE_NODE &&
			 n->data.sequence.items.top > n->data.sequence.items.start)
			next = node(p, n->data.sequence.items.top[-1]);
		/* An alias points back at an earlier node; its text ends here, not there. */
		if (!next || next->start_mark.index < n->start_mark.index)
			return n;
		n = next;
	}
	return n;
}

static int splice(const struct parsed *p, size_t at, size_t end, const struct buf *ins,
		  struct buf *out)
{
	buf_add(out, p->text, at);
	buf_add(out, ins->data ? ins->data : "", ins->len);
	buf_add(out, p->text + end, p->len - end);
	return out->nomem ? MB_ERR_NOMEM : 0;
}

/* Builds the edited text into out. */
static int edit(const struct parsed *p, const struct key_path *kp, const char *key,
		const char *value, struct buf *out, char *err, size_t errlen)
{
	struct buf ins = {0};
	struct walk w;
	int rc = walk(p, kp, &w, err, errlen);

	if (rc)
		return rc;
	for (size_t i = w.depth; !w.value && i < kp->n; i++) {
		if (kp->seg[i].index >= 0) {
			char where[CONFEDIT_KEY_MAX + 16];

			key_prefix(kp, i, where, sizeof(where));
			set_err(err, errlen,
				"%s: there is no list '%s' in the file (SETPARAM cannot add lists or entries)",
				where, kp->seg[i].name);
			return MB_ERR_INVAL;
		}
	}

	if (w.value && !is_null_scalar(w.value)) {
		/* Replace an existing value in place. */
		const yaml_node_t *v = w.value;

		if (v->type != YAML_SCALAR_NODE) {
			set_err(err, errlen, "%s is %s; name a single value in it", key, kind(v));
			return MB_ERR_INVAL;
		}
		if (v->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
		    v->data.scalar.style == YAML_FOLDED_SCALAR_STYLE) {
			set_err(err, errlen,
				"%s is written as a block (| or >); edit the file by hand", key);
			return MB_ERR_INVAL;
		}
		if (w.key_node && v->start_mark.index < w.key_node->end_mark.index) {
			set_err(err, errlen,
				"%s is a YAML alias of another value; edit the file by hand", key);
			return MB_ERR_INVAL;
		}
		buf_value(&ins, value);
		rc = ins.nomem ? MB_ERR_NOMEM
			       : splice(p, byte_at(p, v->start_mark.index),
					byte_at(p, v->end_mark.index), &ins, out);
		free(ins.data);
		return rc;
	}

	if (w.value) {
		/* "key:" with an empty, ~ or null value: the value goes in its place. */
		const yaml_node_t *v = w.value;

		if (!v->data.scalar.value[0] && v->start_mark.index == v->end_mark.index)
			buf_add(&ins, " ", 1);
		buf_value(&ins, value);
		rc = ins.nomem ? MB_ERR_NOMEM
			       : splice(p, byte_at(p, v->start_mark.index),
					byte_at(p, v->end_mark.index), &ins, out);
		free(ins.data);
		return rc;
	}

	if (w.null_value) {
		/* "section:" (empty, ~ or null) on the way: it becomes a mapping. */
		const yaml_node_t *v = w.null_value;
		size_t at = byte_at(p, v->start_mark.index), end = byte_at(p, v->end_mark.index);

		if (w.owner && w.owner->data.mapping.style == YAML_FLOW_MAPPING_STYLE) {
			buf_str(&ins, at == end ? " { " : "{ ");
			buf_entry(&ins, kp, w.depth, value, true, 0);
			buf_str(&ins, " }");
		} else {
			size_t col = w.key_node ? w.key_node->start_mark.column : 0;

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
			buf_add(&ins, "\n", 1);
			buf_spaces(&ins, col + 2);
			buf_entry(&ins, kp, w.depth, value, false, col + 2);
		}
		rc = ins.nomem ? MB_ERR_NOMEM : splice(p, at, end, &ins, out);
		free(ins.data);
		return rc;
	}

	if (!w.parent) {
		/* Empty document: the new key starts it. */
		size_t at = p->len;

		if (at > p->bom && p->text[at - 1] != '\n')
			buf_add(&ins, "\n", 1);
		buf_entry(&ins, kp, 0, value, false, 0);
		buf_add(&ins, "\n", 1);
		rc = ins.nomem ? MB_ERR_NOMEM : splice(p, at, at, &ins, out);
		free(ins.data);
		return rc;
	}

	const yaml_node_t *m = w.parent;
	size_t at;

	if (m->data.mapping.style == YAML_FLOW_MAPPING_STYLE) {
		if (m->data.mapping.pairs.top == m->data.mapping.pairs.start) {
			/* "{}": insert before the closing brace. */
			size_t end = byte_at(p, m->end_mark.index);

			while (end > 0 && p->text[end - 1] != '}')
				end--;
			if (end == 0) {
				set_err(err, errlen,
					"cannot find the end of the mapping holding %s", key);
				return MB_ERR_INVAL;
			}
			at = end - 1;
			buf_add(&ins, " ", 1);
			buf_entry(&ins, kp, w.depth, value, true, 0);
			buf_add(&ins, " ", 1);
		} else {
			at = byte_at(p, last_leaf(p, m)->end_mark.index);
			buf_str(&ins, ", ");
			buf_entry(&ins, kp, w.depth, value, true, 0);
		}
	} else {
		const yaml_node_t *first_key = node(p, m->data.mapping.pairs.start->key);
		size_t col = first_key ? first_key->start_mark.column : 0;
		size_t leaf_end = byte_at(p, last_leaf(p, m)->end_mark.index);

		if (leaf_end > 0 && p->text[leaf_end - 1] == '\n') {
			/* A block scalar ends with its line break: start on the next line. */
			at = leaf_end;
			buf_spaces(&ins, col);
			buf_entry(&ins, kp, w.depth, value, false, col);
			buf_add(&ins, "\n", 1);
		} else {
			const char *nl = memchr(p->text + leaf_end, '\n', p->len - leaf_end);

			at = nl ? (size_t)(nl - p->text) : p->len;
			if (at > 0 && p->text[at - 1] == '\r')
				at--; /* keep a CRLF line ending together */
			buf_add(&ins, "\n", 1);
			buf_spaces(&ins, col);
			buf_entry(&ins, kp, w.depth, value, false, col);
		}
	}
	rc = ins.nomem ? MB_ERR_NOMEM : splice(p, at, at, &ins, out);
	free(ins.data);
	return rc;
}

int confedit_set(const char *text, size_t len, const char *key, const char *value, char **out,
		 size_t *out_len, char *err, size_t errlen)
{
	struct key_path kp;
	struct parsed p;
	struct buf b = {0};
	char *check = NULL, why[256];
	int rc = parse_key(key, &kp, err, errlen);

	if (rc)
		return rc;
	if (!value) {
		set_err(err, errlen, "no value");
		return MB_ERR_INVAL;
	}
	rc = parse_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	rc = edit(&p, &kp, key, value, &b, err, errlen);
	parsed_free(&p);
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
		set_err(err, errlen,
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

static int emit_to_buf(void *data, unsigned char *buffer, size_t size)
{
	struct buf *b = data;

	buf_add(b, (const char *)buffer, size);
	return b->nomem ? 0 : 1;
}

/*
 * Points the value of every secret key, in every mapping of the document, at a new "***"
 * scalar. The old value stays in the document unreferenced (the emitter never reaches it)
 * and is freed with the document. Nodes are addressed by index: adding one may move them.
 */
static int redact(yaml_document_t *doc)
{
	size_t count = (size_t)(doc->nodes.top - doc->nodes.start);

	for (size_t i = 0; i < count; i++) {
		size_t npairs;

		if (doc->nodes.start[i].type != YAML_MAPPING_NODE)
			continue;
		npairs = (size_t)(doc->nodes.start[i].data.mapping.pairs.top -
				  doc->nodes.start[i].data.mapping.pairs.start);
		for (size_t j = 0; j < npairs; j++) {
			yaml_node_pair_t *pr = &doc->nodes.start[i].data.mapping.pairs.start[j];
			yaml_node_t *k = yaml_document_get_node(doc, pr->key);
			int stars;

			if (!k || k->type != YAML_SCALAR_NODE ||
			    !confedit_is_secret((const char *)k->data.scalar.value))
				continue;
			stars = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)"***", 3,
							 YAML_SINGLE_QUOTED_SCALAR_STYLE);
			if (!stars)
				return MB_ERR_NOMEM;
			/* The add may have moved the node array. */
			doc->nodes.start[i].data.mapping.pairs.start[j].value = stars;
		}
	}
	return 0;
}

int confedit_dump_redacted(const char *text, size_t len, char **out, char *err, size_t errlen)
{
	struct parsed p;
	yaml_emitter_t em;
	struct buf b = {0};
	int rc = parse_text(text, len, &p, err, errlen);

	if (rc)
		return rc;
	if (!yaml_document_get_root_node(&p.doc)) {
		parsed_free(&p);
		*out = strdup("");
		return *out ? 0 : MB_ERR_NOMEM;
	}
	rc = redact(&p.doc);
	if (rc) {
		parsed_free(&p);
		return rc;
	}
	if (!yaml_emitter_initialize(&em)) {
		parsed_free(&p);
		return MB_ERR_NOMEM;
	}
	yaml_emitter_set_output(&em, emit_to_buf, &b);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, 100);
	if (!yaml_emitter_open(&em) || !yaml_emitter_dump(&em, &p.doc) ||
	    !yaml_emitter_close(&em)) {
		set_err(err, errlen, "cannot write the configuration out: %s",
			em.problem ? em.problem : "unknown problem");
		rc = b.nomem ? MB_ERR_NOMEM : MB_ERR_INVAL;
	}
	/* yaml_emitter_dump deletes the document, even on failure. */
	p.have_doc = false;
	yaml_emitter_delete(&em);
	parsed_free(&p);
	if (rc == 0 && (b.nomem || !b.data))
		rc = MB_ERR_NOMEM;
	if (rc) {
		free(b.data);
		return rc;
	}
	*out = b.data;
	return 0;
}

/* ---------------------------------------------------------------- files */

/* The file path refers to, following a symbolic link; malloc'd. */
static char *real_target(const char *path)
{
	char *r = realpath(path, NULL);

	return r ? r : strdup(path);
}

int confedit_stage(const char *path, const char *text, size_t len, char **tmp_path, char *err,
		   size_t errlen)
{
	char *target = real_target(path), *dir_copy = NULL, *base_copy = NULL, *tmp = NULL;
	struct stat st;
	mode_t mode = 0600;
	int fd = -1, rc = MB_ERR_IO;
	size_t done = 0;

	if (!target)
		return MB_ERR_NOMEM;
	dir_copy = strdup(target);
	base_copy = strdup(target);
	if (!dir_copy || !base_copy) {
		rc = MB_ERR_NOMEM;
		goto out;
	}
	const char *dir = dirname(dir_copy), *base = basename(base_copy);
	size_t tmp_len = strlen(dir) + strlen(base) + 16;
	tmp = malloc(tmp_len);
	if (!tmp) {
		rc = MB_ERR_NOMEM;
		goto out;
	}
	snprintf(tmp, tmp_len, "%s/.%s.new-XXXXXX", dir, base);
	if (stat(target, &st) == 0)
		mode = st.st_mode & 07777;
	fd = mkstemp(tmp);
	if (fd < 0) {
		set_err(err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	/* The file may hold a password: the old file's bits, never wider by default. */
	if (fchmod(fd, mode) != 0) {
		set_err(err, errlen, "cannot set the permissions of %s: %s", tmp, strerror(errno));
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_err(err, errlen, "cannot write %s: %s", tmp,
				strerror(n < 0 ? errno : EIO));
			goto out;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0) {
		set_err(err, errlen, "cannot write %s to disk: %s", tmp, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0 && close(fd) != 0 && rc == 0) {
		set_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		rc = MB_ERR_IO;
	}
	if (rc && tmp) {
		unlink(tmp);
		free(tmp);
		tmp = NULL;
	}
	if (rc == 0)
		*tmp_path = tmp;
	free(target);
	free(dir_copy);
	free(base_copy);
	return rc;
}

int confedit_commit(const char *tmp_path, const char *path, char *err, size_t errlen)
{
	char *target = real_target(path), *dir_copy;
	int dfd, rc = 0;

	if (!target) {
		confedit_discard(tmp_path);
		return MB_ERR_NOMEM;
	}
	if (rename(tmp_path, target) != 0) {
		set_err(err, errlen, "cannot replace %s: %s", target, strerror(errno));
		confedit_discard(tmp_path);
		free(target);
		return MB_ERR_IO;
	}
	/* The rename itself must reach the disk, or a crash could bring the old file back. */
	dir_copy = strdup(target);
	if (!dir_copy) {
		free(target);
		return MB_ERR_NOMEM;
	}
	dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		set_err(err, errlen, "%s was replaced, but its directory could not be synced: %s",
			target, strerror(errno));
		rc = MB_ERR_IO;
	}
	if (dfd >= 0)
		close(dfd);
	free(dir_copy);
	free(target);
	return rc;
}

void confedit_discard(const char *tmp_path)
{
	if (tmp_path)
		unlink(tmp_path);
}
