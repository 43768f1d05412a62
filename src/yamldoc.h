/*
 * yamldoc.h - a YAML document as a read-only tree of nodes, over libyaml.
 *
 * The only module that includes <yaml.h>. The configuration loader (config*.c) walks the
 * tree to fill a struct config; the key editor (confedit*.c) also asks where each node is
 * in the text (byte spans), so it can replace one value and keep the rest of the file as
 * it was, and can write a document back out. Both read a file with yamldoc_read_file.
 *
 * Nodes are borrowed from their document: valid until yamldoc_free (or yamldoc_emit,
 * which consumes the document). Every node function accepts NULL where a node may be
 * missing and then answers "nothing" (kind YAMLDOC_NONE, line 1, length 0). A document is
 * not shared between threads; different documents may be used on different threads.
 *
 * Errors: MB_ERR_NOMEM, MB_ERR_INVAL (text that is not YAML, described in a struct
 * yamldoc_error), MB_ERR_IO (yamldoc_read_file, reason in why).
 */
#ifndef MODBRIDGE_YAMLDOC_H
#define MODBRIDGE_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>

struct yamldoc;
struct yamldoc_node;

enum yamldoc_kind { YAMLDOC_NONE, YAMLDOC_SCALAR, YAMLDOC_SEQUENCE, YAMLDOC_MAPPING };

/* Flags of yamldoc_load. */
#define YAMLDOC_SPANS 1u /* index the text so yamldoc_start/yamldoc_end give byte offsets */
#define YAMLDOC_ONE 2u   /* also read past the document: yamldoc_rest says what follows */

/* Where and why libyaml refused the text. */
struct yamldoc_error {
	int line;            /* 1-based line of the problem */
	int column;          /* 1-based column; 0 for an encoding error (see offset) */
	bool encoding;       /* the bytes are not valid text: offset is set, line counted from it */
	size_t offset;       /* encoding errors: byte offset of the bad byte */
	const char *problem; /* libyaml's static description, or NULL when it gave none */
};

/*
 * Reads the whole file at path into a malloc'd, NUL-terminated buffer (*text, length
 * *len; the caller frees). A file of max bytes or more is refused. Returns 0; MB_ERR_IO
 * with the reason in why ("No such file or directory", "larger than 4194304 bytes");
 * MB_ERR_NOMEM.
 */
int yamldoc_read_file(const char *path, size_t max, char **text, size_t *len, char *why,
		      size_t whylen);

/*
 * Parses the first YAML document in text (len bytes, kept by the caller while the
 * document lives when YAMLDOC_SPANS is given). Returns 0 with a new document in *out
 * (an empty text gives a document without a root); MB_ERR_INVAL when the text is not YAML
 * (err filled); MB_ERR_NOMEM (err filled as far as known).
 */
int yamldoc_load(const char *text, size_t len, unsigned flags, struct yamldoc **out,
		 struct yamldoc_error *err);

/*
 * After a load with YAMLDOC_ONE, what follows the document: 0 nothing; 1 another document
 * (err->line is the line of its first node); MB_ERR_INVAL text that is not YAML (err
 * filled); MB_ERR_NOMEM. 0 without YAMLDOC_ONE.
 */
int yamldoc_rest(const struct yamldoc *doc, struct yamldoc_error *err);

/* Frees a document and its nodes. Accepts NULL. */
void yamldoc_free(struct yamldoc *doc);

/* The root node, or NULL for an empty document. */
const struct yamldoc_node *yamldoc_root(const struct yamldoc *doc);

enum yamldoc_kind yamldoc_kind(const struct yamldoc_node *n);

/* YAML's null: an empty plain scalar, or a plain ~, null, Null or NULL. False for NULL. */
bool yamldoc_is_null(const struct yamldoc_node *n);

/* 1-based line where the node starts; 1 for NULL. */
int yamldoc_line(const struct yamldoc_node *n);

/* 0-based column (in characters) where the node starts; 0 for NULL. */
size_t yamldoc_column(const struct yamldoc_node *n);

/* A scalar's text (NUL-terminated; it may hold NUL bytes itself: compare with its
 * length). Only for scalars. */
const char *yamldoc_scalar(const struct yamldoc_node *n);
size_t yamldoc_scalar_len(const struct yamldoc_node *n);

/* A scalar written as a block (| or >). */
bool yamldoc_is_block_scalar(const struct yamldoc_node *n);

/* A mapping or list written in flow style ({...} or [...]). */
bool yamldoc_is_flow(const struct yamldoc_node *n);

/* Entries of a list, and entry i (NULL when out of range or not a list). */
size_t yamldoc_seq_len(const struct yamldoc_node *n);
const struct yamldoc_node *yamldoc_seq_item(const struct yamldoc *doc, const struct yamldoc_node *n,
					    size_t i);

/* Pairs of a mapping, in file order, and the key and value of pair i. */
size_t yamldoc_map_len(const struct yamldoc_node *n);
const struct yamldoc_node *yamldoc_map_key(const struct yamldoc *doc, const struct yamldoc_node *n,
					   size_t i);
const struct yamldoc_node *yamldoc_map_value(const struct yamldoc *doc,
					     const struct yamldoc_node *n, size_t i);

/* Position of the first pair whose key is the scalar name, or -1. */
long yamldoc_map_find(const struct yamldoc *doc, const struct yamldoc_node *n, const char *name);

/*
 * Byte offsets in the loaded text where the node starts and ends (libyaml counts
 * characters; the index made by YAMLDOC_SPANS turns them into bytes). Without
 * YAMLDOC_SPANS they are character counts.
 */
size_t yamldoc_start(const struct yamldoc *doc, const struct yamldoc_node *n);
size_t yamldoc_end(const struct yamldoc *doc, const struct yamldoc_node *n);

/* Byte offset where the YAML starts: after a UTF-8 byte order mark (YAMLDOC_SPANS). */
size_t yamldoc_text_start(const struct yamldoc *doc);

/*
 * Points the value of every mapping key for which match(key) is true, in every mapping,
 * at a new single-quoted scalar holding text. The old values stay in the document,
 * unreferenced. Returns 0 or MB_ERR_NOMEM.
 */
int yamldoc_replace_values(struct yamldoc *doc, bool (*match)(const char *key), const char *text);

/*
 * Writes the document out as YAML through write (which returns false to stop), in
 * Unicode, lines up to 100 columns, without the comments of the original text. The
 * document must have a root; it is consumed (no nodes are left; still free it). Returns
 * 0; MB_ERR_INVAL with libyaml's reason in *problem (or NULL) when the emitter or write
 * failed; MB_ERR_NOMEM.
 */
int yamldoc_emit(struct yamldoc *doc, bool (*write)(void *ctx, const char *data, size_t len),
		 void *ctx, const char **problem);

#endif
