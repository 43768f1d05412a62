/*
 * yamldoc.c - a YAML document as a read-only tree of nodes, over libyaml; see yamldoc.h.
 *
 * libyaml's document API (yaml_parser_load) builds the whole node tree at once; this
 * module hands out its nodes behind an opaque type, so only this file includes <yaml.h>.
 * The rules that are YAML's and not ours live here once: what counts as null, how an
 * encoding error's byte offset becomes a line, and how the character positions of
 * libyaml's marks become byte offsets.
 *
 * libyaml's marks count characters (a UTF-8 sequence is one), not bytes, and do not count
 * a byte order mark, so with YAMLDOC_SPANS the text is first indexed: offsets[i] is the
 * byte offset of character i.
 */
#include "yamldoc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"

/*
 * A node is a libyaml node. A pointer to this wrapper is a pointer to its first member
 * (C11 6.7.2.1), so the conversions below are exact.
 */
struct yamldoc_node {
	yaml_node_t n;
};

struct yamldoc {
	yaml_document_t doc;
	bool have_doc;
	size_t len;      /* bytes of the text */
	size_t bom;      /* bytes of a UTF-8 byte order mark at the start */
	size_t *offsets; /* YAMLDOC_SPANS: offsets[i] is the byte offset of character i */
	size_t nchars;
	int rest_rc; /* YAMLDOC_ONE: what follows the document (yamldoc_rest) */
	struct yamldoc_error rest;
};

static const yaml_node_t *raw(const struct yamldoc_node *n)
{
	return n ? &n->n : NULL;
}

static const struct yamldoc_node *wrap(const yaml_node_t *n)
{
	return (const struct yamldoc_node *)n;
}

static const struct yamldoc_node *get_node(const struct yamldoc *doc, int id)
{
	return wrap(yaml_document_get_node((yaml_document_t *)&doc->doc, id));
}

/* ---------------------------------------------------------------- reading */

int yamldoc_read_file(const char *path, size_t max, char **text, size_t *len, char *why,
		      size_t whylen)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t n = 0, cap = 0;
	int err;

	if (!f) {
		err = errno;
		goto fail;
	}
	for (;;) {
		if (n == cap) {
			char *nb;

			if (cap >= max) {
				fclose(f);
				free(b);
				snprintf(why, whylen, "larger than %zu bytes", max);
				return MB_ERR_IO;
			}
			cap = cap ? cap * 2 : 4096;
			if (cap > max)
				cap = max;
			nb = realloc(b, cap + 1);
			if (!nb) {
				fclose(f);
				free(b);
				return MB_ERR_NOMEM;
			}
			b = nb;
		}
		size_t r = fread(b + n, 1, cap - n, f);

		n += r;
		if (r == 0) {
			if (ferror(f)) {
				err = errno ? errno : EIO;
				fclose(f);
				free(b);
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	if (!b && !(b = malloc(1)))
		return MB_ERR_NOMEM;
	b[n] = '\0';
	*text = b;
	*len = n;
	return 0;

fail:
	snprintf(why, whylen, "%s", strerror(err));
	return MB_ERR_IO;
}

static int line_of_offset(const char *text, size_t len, size_t off)
{
	int line = 1;

	for (size_t i = 0; i < off && i < len; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

static void parser_error(const yaml_parser_t *parser, const char *text, size_t len,
			 struct yamldoc_error *err)
{
	memset(err, 0, sizeof(*err));
	err->problem = parser->problem;
	if (parser->error == YAML_READER_ERROR) {
		/* Encoding errors carry a byte offset instead of a mark. */
		err->encoding = true;
		err->offset = parser->problem_offset;
		err->line = line_of_offset(text, len, parser->problem_offset);
		return;
	}
	err->line = (int)parser->problem_mark.line + 1;
	err->column = (int)parser->problem_mark.column + 1;
}

static int index_text(struct yamldoc *d, const char *text, size_t len)
{
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		d->bom = 3;
	d->offsets = malloc((len - d->bom + 1) * sizeof(size_t));
	if (!d->offsets)
		return MB_ERR_NOMEM;
	for (size_t i = d->bom; i < len; i++)
		if (((unsigned char)text[i] & 0xC0) != 0x80)
			d->offsets[d->nchars++] = i;
	d->offsets[d->nchars] = len;
	return 0;
}

/* A second document would be silently ignored by a loader that reads one; say so. */
static void read_rest(struct yamldoc *d, yaml_parser_t *parser, const char *text, size_t len)
{
	yaml_document_t extra;
	const yaml_node_t *r;

	if (!yaml_parser_load(parser, &extra)) {
		parser_error(parser, text, len, &d->rest);
		d->rest_rc = parser->error == YAML_MEMORY_ERROR ? MB_ERR_NOMEM : MB_ERR_INVAL;
		return;
	}
	r = yaml_document_get_root_node(&extra);
	if (r) {
		d->rest_rc = 1;
		d->rest.line = (int)r->start_mark.line + 1;
	}
	yaml_document_delete(&extra);
}

int yamldoc_load(const char *text, size_t len, unsigned flags, struct yamldoc **out,
		 struct yamldoc_error *err)
{
	yaml_parser_t parser;
	struct yamldoc *d;
	int rc;

	memset(err, 0, sizeof(*err));
	err->line = 1;
	d = calloc(1, sizeof(*d));
	if (!d)
		return MB_ERR_NOMEM;
	d->len = len;
	if ((flags & YAMLDOC_SPANS) && (rc = index_text(d, text, len)) < 0)
		goto fail;
	if (!yaml_parser_initialize(&parser)) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &d->doc)) {
		parser_error(&parser, text, len, err);
		rc = parser.error == YAML_MEMORY_ERROR ? MB_ERR_NOMEM : MB_ERR_INVAL;
		yaml_parser_delete(&parser);
		goto fail;
	}
	d->have_doc = true;
	if (flags & YAMLDOC_ONE)
		read_rest(d, &parser, text, len);
	yaml_parser_delete(&parser);
	*out = d;
	return 0;

fail:
	yamldoc_free(d);
	return rc;
}

int yamldoc_rest(const struct yamldoc *doc, struct yamldoc_error *err)
{
	*err = doc->rest;
	return doc->rest_rc;
}

void yamldoc_free(struct yamldoc *doc)
{
	if (!doc)
		return;
	if (doc->have_doc)
		yaml_document_delete(&doc->doc);
	free(doc->offsets);
	free(doc);
}

/* ---------------------------------------------------------------- nodes */

const struct yamldoc_node *yamldoc_root(const struct yamldoc *doc)
{
	if (!doc->have_doc)
		return NULL;
	return wrap(yaml_document_get_root_node((yaml_document_t *)&doc->doc));
}

enum yamldoc_kind yamldoc_kind(const struct yamldoc_node *n)
{
	switch (n ? raw(n)->type : YAML_NO_NODE) {
	case YAML_SCALAR_NODE: return YAMLDOC_SCALAR;
	case YAML_SEQUENCE_NODE: return YAMLDOC_SEQUENCE;
	case YAML_MAPPING_NODE: return YAMLDOC_MAPPING;
	default: return YAMLDOC_NONE;
	}
}

bool yamldoc_is_null(const struct yamldoc_node *n)
{
	const yaml_node_t *y = raw(n);
	const char *v;

	if (!y || y->type != YAML_SCALAR_NODE || y->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)y->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

int yamldoc_line(const struct yamldoc_node *n)
{
	return n ? (int)raw(n)->start_mark.line + 1 : 1;
}

size_t yamldoc_column(const struct yamldoc_node *n)
{
	return n ? raw(n)->start_mark.column : 0;
}

const char *yamldoc_scalar(const struct yamldoc_node *n)
{
	return (const char *)raw(n)->data.scalar.value;
}

size_t yamldoc_scalar_len(const struct yamldoc_node *n)
{
	return raw(n)->data.scalar.length;
}

bool yamldoc_is_block_scalar(const struct yamldoc_node *n)
{
	const yaml_node_t *y = raw(n);

	return y && y->type == YAML_SCALAR_NODE &&
	       (y->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
		y->data.scalar.style == YAML_FOLDED_SCALAR_STYLE);
}

bool yamldoc_is_flow(const struct yamldoc_node *n)
{
	const yaml_node_t *y = raw(n);

	if (y && y->type == YAML_MAPPING_NODE)
		return y->data.mapping.style == YAML_FLOW_MAPPING_STYLE;
	if (y && y->type == YAML_SEQUENCE_NODE)
		return y->data.sequence.style == YAML_FLOW_SEQUENCE_STYLE;
	return false;
}

size_t yamldoc_seq_len(const struct yamldoc_node *n)
{
	const yaml_node_t *y = raw(n);

	if (!y || y->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(y->data.sequence.items.top - y->data.sequence.items.start);
}

const struct yamldoc_node *yamldoc_seq_item(const struct yamldoc *doc, const struct yamldoc_node *n,
					    size_t i)
{
	if (i >= yamldoc_seq_len(n))
		return NULL;
	return get_node(doc, raw(n)->data.sequence.items.start[i]);
}

size_t yamldoc_map_len(const struct yamldoc_node *n)
{
	const yaml_node_t *y = raw(n);

	if (!y || y->type != YAML_MAPPING_NODE)
		return 0;
	return (size_t)(y->data.mapping.pairs.top - y->data.mapping.pairs.start);
}

const struct yamldoc_node *yamldoc_map_key(const struct yamldoc *doc, const struct yamldoc_node *n,
					   size_t i)
{
	if (i >= yamldoc_map_len(n))
		return NULL;
	return get_node(doc, raw(n)->data.mapping.pairs.start[i].key);
}

const struct yamldoc_node *yamldoc_map_value(const struct yamldoc *doc,
					     const struct yamldoc_node *n, size_t i)
{
	if (i >= yamldoc_map_len(n))
		return NULL;
	return get_node(doc, raw(n)->data.mapping.pairs.start[i].value);
}

long yamldoc_map_find(const struct yamldoc *doc, const struct yamldoc_node *n, const char *name)
{
	size_t len = yamldoc_map_len(n);

	for (size_t i = 0; i < len; i++) {
		const struct yamldoc_node *k = yamldoc_map_key(doc, n, i);

		if (yamldoc_kind(k) == YAMLDOC_SCALAR && !strcmp(yamldoc_scalar(k), name))
			return (long)i;
	}
	return -1;
}

/* Byte offset of a libyaml mark index. */
static size_t byte_at(const struct yamldoc *doc, size_t char_index)
{
	if (!doc->offsets)
		return char_index;
	return char_index <= doc->nchars ? doc->offsets[char_index] : doc->len;
}

size_t yamldoc_start(const struct yamldoc *doc, const struct yamldoc_node *n)
{
	return byte_at(doc, raw(n)->start_mark.index);
}

size_t yamldoc_end(const struct yamldoc *doc, const struct yamldoc_node *n)
{
	return byte_at(doc, raw(n)->end_mark.index);
}

size_t yamldoc_text_start(const struct yamldoc *doc)
{
	return doc->bom;
}

/* ---------------------------------------------------------------- changing, writing */

/* Nodes are addressed by index: adding one may move the node array. */
int yamldoc_replace_values(struct yamldoc *doc, bool (*match)(const char *key), const char *text)
{
	yaml_document_t *d = &doc->doc;
	size_t count;

	if (!doc->have_doc)
		return 0;
	count = (size_t)(d->nodes.top - d->nodes.start);
	for (size_t i = 0; i < count; i++) {
		size_t npairs;

		if (d->nodes.start[i].type != YAML_MAPPING_NODE)
			continue;
		npairs = (size_t)(d->nodes.start[i].data.mapping.pairs.top -
				  d->nodes.start[i].data.mapping.pairs.start);
		for (size_t j = 0; j < npairs; j++) {
			yaml_node_pair_t *pr = &d->nodes.start[i].data.mapping.pairs.start[j];
			yaml_node_t *k = yaml_document_get_node(d, pr->key);
			int id;

			if (!k || k->type != YAML_SCALAR_NODE ||
			    !match((const char *)k->data.scalar.value))
				continue;
			id = yaml_document_add_scalar(d, NULL, (const yaml_char_t *)text,
						      (int)strlen(text),
						      YAML_SINGLE_QUOTED_SCALAR_STYLE);
			if (!id)
				return MB_ERR_NOMEM;
			/* The add may have moved the node array. */
			d->nodes.start[i].data.mapping.pairs.start[j].value = id;
		}
	}
	return 0;
}

struct emit_ctx {
	bool (*write)(void *ctx, const char *data, size_t len);
	void *ctx;
};

static int emit_handler(void *data, unsigned char *buffer, size_t size)
{
	const struct emit_ctx *e = data;

	return e->write(e->ctx, (const char *)buffer, size) ? 1 : 0;
}

int yamldoc_emit(struct yamldoc *doc, bool (*write)(void *ctx, const char *data, size_t len),
		 void *ctx, const char **problem)
{
	struct emit_ctx e = {write, ctx};
	yaml_emitter_t em;
	int rc = 0;

	*problem = NULL;
	if (!yamldoc_root(doc))
		return MB_ERR_INVAL;
	if (!yaml_emitter_initialize(&em))
		return MB_ERR_NOMEM;
	yaml_emitter_set_output(&em, emit_handler, &e);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, 100);
	/* yaml_emitter_dump deletes the document, even on failure; open does not. */
	if (!yaml_emitter_open(&em)) {
		rc = MB_ERR_INVAL;
	} else {
		doc->have_doc = false;
		if (!yaml_emitter_dump(&em, &doc->doc) || !yaml_emitter_close(&em))
			rc = MB_ERR_INVAL;
	}
	if (rc) {
		*problem = em.problem;
		if (em.error == YAML_MEMORY_ERROR)
			rc = MB_ERR_NOMEM;
	}
	yaml_emitter_delete(&em);
	return rc;
}
