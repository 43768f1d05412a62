/*
 * confedit_internal.h - what the files of the key editor share; only confedit*.c include it.
 *
 * confedit_path.c parses key paths ("modbus.devices[1].period") and follows them through
 * a document; confedit.c reads, edits and dumps with what it finds, and shares its text
 * helpers below; confedit_list.c adds and removes list entries and keys. Pure functions,
 * no global state: thread-safe like confedit.h.
 */
#ifndef MODBRIDGE_CONFEDIT_INTERNAL_H
#define MODBRIDGE_CONFEDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "confedit.h"
#include "yamldoc.h"

#define CONFEDIT_MAX_SEGMENTS 8
#define CONFEDIT_NAME_MAX 64

struct confedit_segment {
	char name[CONFEDIT_NAME_MAX + 1];
	long index; /* -1: none */
};

/* A parsed key path: "a.b[2].c" is three segments. */
struct confedit_key {
	struct confedit_segment seg[CONFEDIT_MAX_SEGMENTS];
	size_t n;
};

/* Where a walk along a key path stopped. */
struct confedit_walk {
	const struct yamldoc_node *value;    /* the node at the full path, or NULL when missing */
	const struct yamldoc_node *key_node; /* the key scalar of the last found mapping pair */
	const struct yamldoc_node *parent;   /* mapping that holds (or should hold) seg[depth] */
	/* a section on the way was null: fill it instead of parent */
	const struct yamldoc_node *null_value;
	const struct yamldoc_node *owner; /* the mapping holding key_node */
	size_t depth;                     /* segments found */
};

/* Writes a one-line reason into err (errlen bytes; nothing when err is NULL). */
void confedit_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses key into kp. Returns 0 or MB_ERR_INVAL with the reason in err. */
int confedit_parse_key(const char *key, struct confedit_key *kp, char *err, size_t errlen);

/* "a.b[2].c" up to and including segment upto, for messages. */
void confedit_key_prefix(const struct confedit_key *kp, size_t upto, char *buf, size_t len);

/* "a section", "a list", "a value" or "nothing", for messages. */
const char *confedit_kind(const struct yamldoc_node *n);

/*
 * Follows kp from the root of doc. Returns 0 with w filled; a missing key is not an error
 * here (w->value NULL, w->depth = segments found); a path through a value or a list
 * without position is (MB_ERR_INVAL, reason in err).
 */
int confedit_walk(const struct yamldoc *doc, const struct confedit_key *kp, struct confedit_walk *w,
		  char *err, size_t errlen);

/* ---------------------------------------------------------------- confedit.c helpers */

/* A parsed text: the text itself and its document, with byte spans. */
struct confedit_text {
	const char *text;
	size_t len;
	struct yamldoc *doc;
};

/* Parses text with spans. Returns 0 or an error with the reason in err. */
int confedit_parse_text(const char *text, size_t len, struct confedit_text *p, char *err,
			size_t errlen);
void confedit_text_free(struct confedit_text *p);

/* A growable byte buffer, always NUL-terminated; nomem once an allocation failed. */
struct confedit_buf {
	char *data;
	size_t len, cap;
	bool nomem;
};

void confedit_buf_add(struct confedit_buf *b, const char *s, size_t n);
void confedit_buf_str(struct confedit_buf *b, const char *s);
void confedit_buf_spaces(struct confedit_buf *b, size_t n);
/* A scalar value: plain when YAML reads it back unchanged, else double-quoted. */
void confedit_buf_value(struct confedit_buf *b, const char *v);

/* The node that ends last inside n (n itself for scalars and empty collections). */
const struct yamldoc_node *confedit_last_leaf(const struct confedit_text *p,
					      const struct yamldoc_node *n);

/* out = text with [at, end) replaced by ins. Returns 0 or MB_ERR_NOMEM. */
int confedit_splice(const struct confedit_text *p, size_t at, size_t end,
		    const struct confedit_buf *ins, struct confedit_buf *out);

/*
 * How a new value is written where a key is added: put writes what follows "name:" (for a
 * scalar " value"; for a list a line break and its entries), flow telling whether the
 * mapping is written in flow style and indent the column of the key.
 */
struct confedit_writer {
	void (*put)(struct confedit_buf *b, const struct confedit_writer *w, bool flow,
		    size_t indent);
	const char *value;         /* a scalar */
	const char *const *names;  /* a list's one new entry: a mapping of n names... */
	const char *const *values; /* ...and their scalar values */
	size_t n;
};

/*
 * Adds the value of w at kp, which is missing from the file or null there: in place of the
 * null, or as a new key of the mapping that should hold it (creating missing sections).
 * Returns 0 with the new text in out, or an error with the reason in err.
 */
int confedit_add_missing(const struct confedit_text *p, const struct confedit_key *kp,
			 const char *key, const struct confedit_writer *w, struct confedit_buf *out,
			 char *err, size_t errlen);

#endif
