/*
 * confedit_internal.h - what the files of the key editor share; only confedit*.c include it.
 *
 * confedit_path.c parses key paths ("modbus.devices[1].period") and follows them through
 * a document; confedit.c reads, edits and dumps with what it finds. Pure functions, no
 * global state: thread-safe like confedit.h.
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

#endif
