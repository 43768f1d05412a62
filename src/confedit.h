/*
 * confedit.h - reading and editing one key of the configuration file's text.
 *
 * The remote commands GETPARAM, SETPARAM and GETCONFIG work on the YAML file itself, not
 * on the loaded struct config: SETPARAM must change one value and leave the rest of the
 * file (comments, order, quoting, layout) exactly as the user wrote it. yamldoc.h tells
 * where each value is in the text; an edit replaces that span, or inserts a new
 * "key: value" line into the mapping that should hold it. Every edit is checked by
 * parsing the result again and reading the key back.
 *
 * Keys are written as dotted paths with list positions: "mqtt.qos", "serial[0].baudrate",
 * "modbus.devices[1].period", "mqtt.at_topics[0].topic" (the same paths as the config
 * loader's diagnostics).
 *
 * Pure functions over text (writing the file is atomicfile.h's job). No global state;
 * thread-safe. Returned strings are malloc'd and freed by the caller. On failure a
 * one-line reason is written to err (errlen bytes) and nothing is returned.
 */
#ifndef MODBRIDGE_CONFEDIT_H
#define MODBRIDGE_CONFEDIT_H

#include <stdbool.h>
#include <stddef.h>

/* Longest key path accepted. */
#define CONFEDIT_KEY_MAX 160

/* True when the key's last name holds a secret (password and the like): never shown. */
bool confedit_is_secret(const char *key);

/*
 * Checks the syntax of a key path (names of letters, digits and '_', each optionally
 * followed by "[index]", joined by '.'). Returns 0 or MB_ERR_INVAL with the reason.
 */
int confedit_check_key(const char *key, char *err, size_t errlen);

/*
 * Reads the single value at key from the YAML text. Returns 0 and a malloc'd copy in
 * *value; MB_ERR_NOTFOUND when the key is not in the file (err says so); MB_ERR_INVAL
 * when the key names a section or a list, or the text is not YAML; MB_ERR_NOMEM.
 */
int confedit_get(const char *text, size_t len, const char *key, char **value, char *err,
		 size_t errlen);

/*
 * Returns in *out (malloc'd, NUL-terminated, length in *out_len) a copy of text in
 * which key holds value: the existing value is replaced in place, or a new key is added
 * to the mapping (creating missing sections) that should hold it. Everything else is
 * kept byte for byte. The value is written plain when YAML would read it back unchanged,
 * else double-quoted. Refuses (MB_ERR_INVAL) keys that name a section or a list, list
 * positions that do not exist, block scalars (| and >) and values shared through YAML
 * aliases.
 */
int confedit_set(const char *text, size_t len, const char *key, const char *value, char **out,
		 size_t *out_len, char *err, size_t errlen);

/*
 * Returns in *out a copy of text with one new entry at the end of the list at list_key
 * ("modbus.devices"): a mapping of the n names and scalar values, in that order. A missing
 * or empty list is created (and missing sections). The list's own style is followed (block
 * "- name: value" lines, or a flow [..]); everything else is kept byte for byte. The result
 * is read back: the list must have one entry more, holding names[0] = values[0]. Refuses
 * (MB_ERR_INVAL) a key that names something else than a list, and names that are not keys.
 */
int confedit_append(const char *text, size_t len, const char *list_key, const char *const *names,
		    const char *const *values, size_t n, char **out, size_t *out_len, char *err,
		    size_t errlen);

/*
 * Returns in *out a copy of text without key: a "name: value" pair of a section (its lines,
 * whatever the value holds), or a list entry ("modbus.devices[1]", its lines). Only keys
 * and entries written in block style on lines of their own can be removed (MB_ERR_INVAL
 * otherwise, such as the first key of a list entry); MB_ERR_NOTFOUND when the key is not in
 * the file. The result is read back: the key must be gone, the list one entry shorter.
 */
int confedit_delete(const char *text, size_t len, const char *key, char **out, size_t *out_len,
		    char *err, size_t errlen);

/*
 * The document re-written by libyaml with every secret replaced by "***". Comments are
 * left out on purpose: they are free text that could hold anything. Returns 0 and a
 * malloc'd NUL-terminated text in *out.
 */
int confedit_dump_redacted(const char *text, size_t len, char **out, char *err, size_t errlen);

#endif
