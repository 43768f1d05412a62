/*
 * config_internal.h - what the files of the configuration loader share; only config*.c
 * include it.
 *
 * The loader is one walk over a YAML document (yamldoc.h), split by concern:
 *   config.c          load, the top level, defaults, free, the public API (config.h)
 *   config_diag.c     diagnostics: "file:line: key: message", "did you mean", file order
 *   config_get.c      typed getters: one key of a section -> a checked value, or a report
 *   config_values.c   value parsers without YAML: numbers, periods, host:port
 *   config_serial.c   serial ports and the modem's AT port
 *   config_modbus.c   the modbus section and its devices
 *   config_logger.c   the logger section (store limits, arrays, topic)
 *   config_mqtt.c     the mqtt section (broker, TLS files, AT topics) and remote permissions
 *   config_metrics.c  the metrics section (the Prometheus exporter's listener)
 *   config_web.c      the web section (the web UI: listener, HTTPS, users)
 *   config_http.c     the http section (logger.mode: http) and the TLS file checks shared
 *                     by the http and ftp sections
 *   config_ftp.c      the ftp section (logger.mode: ftp)
 *   config_script.c   logger.script and mqtt.script_topics: read each script, compile and
 *                     check it (script.h), with the script's own file:line in the message
 * Topic rules are topic.h's, shared with the remote commands.
 *
 * Everything here runs on the thread that called config_load, on that call's own
 * struct config_ctx: no global state. Nothing here logs; problems become diagnostics.
 */
#ifndef MODBRIDGE_CONFIG_INTERNAL_H
#define MODBRIDGE_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "yamldoc.h"

#define CONFIG_MAX_KEYS 24 /* keys of the largest section */
#define CONFIG_KEY_LEN 160 /* longest key path in a message; longer ones are cut */

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

struct config_pending;

/* One config_load call: the document, the diagnostics found so far, the config filled. */
struct config_ctx {
	const char *path;
	char *dir; /* directory of path for relative file names; NULL: current dir */
	const struct yamldoc *doc;
	struct config_pending *diags;
	size_t ndiags;
	size_t cap;
	size_t errors;
	bool nomem;
	struct config *cfg;
	/* Lines of the script keys, for config_check_scripts's messages. */
	int logger_script_line;
	int script_topic_line[CONFIG_MAX_SCRIPT_TOPICS];
	size_t script_topic_index[CONFIG_MAX_SCRIPT_TOPICS]; /* its place in the file's list */
};

/*
 * One YAML mapping being read: the known keys found in it, by position in names.
 * Unknown and duplicate keys are reported when it is scanned.
 */
struct config_obj {
	struct config_ctx *c;
	const char *path; /* key path of the mapping: "" at the top, "serial[0]", ... */
	int line;         /* 1-based line of the mapping, used for missing keys */
	const char *const *names;
	size_t n;
	const struct yamldoc_node *key[CONFIG_MAX_KEYS];
	const struct yamldoc_node *val[CONFIG_MAX_KEYS];
};

/* A word the file may use and the value it stands for ("even" -> 'E'). */
struct config_choice {
	const char *name;
	int value;
};

/* ---------------------------------------------------------------- config_diag.c */

/* A malloc'd formatted string, or NULL when out of memory. */
char *config_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records a diagnostic (text is taken over; NULL means out of memory). */
void config_push_diag(struct config_ctx *c, enum config_severity sev, int line, char *text);

/* Records "path:line: key: message" (or "path:line: message" when key is NULL). */
void config_report(struct config_ctx *c, enum config_severity sev, int line, const char *key,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Moves the pending diagnostics, in file order, to the caller's list. */
int config_flush_diags(struct config_ctx *c, struct config_diags *out);

/* "an empty value", "a single value", "a list" or "a mapping", for messages. */
const char *config_kind_name(const struct yamldoc_node *n);

/* "a, b, c" into buf (cut at len). */
void config_join_names(const char *const *names, size_t n, char *buf, size_t len);

/* "parent.name" (or "name" at the top) into buf of CONFIG_KEY_LEN bytes. */
void config_key_path(const char *parent, const char *name, char *buf);

/*
 * Reads the keys of map (NULL: the section is absent, every key is unset) into o.
 * parent_line is used as the mapping's line when map is NULL.
 */
void config_obj_scan(struct config_obj *o, struct config_ctx *c, const struct yamldoc_node *map,
		     const char *path, int parent_line, const char *const *names, size_t n);

/* The value of a key, or NULL when the key is absent or its value is empty (null). */
const struct yamldoc_node *config_obj_get(const struct config_obj *o, const char *name);

/* The line of a key, or of its mapping when the key is absent. */
int config_obj_line(const struct config_obj *o, const char *name);

/* Reports a problem of key name of o, at the key's line. */
void config_obj_report(const struct config_obj *o, enum config_severity sev, const char *name,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define config_obj_error(o, name, ...) config_obj_report(o, CONFIG_ERROR, name, __VA_ARGS__)
#define config_obj_warn(o, name, ...) config_obj_report(o, CONFIG_WARNING, name, __VA_ARGS__)

/* ---------------------------------------------------------------- config_get.c */

/*
 * The getters return 1 when the key is set and valid (out written), 0 when it is absent
 * or empty (out untouched, so it keeps its default) and -1 when it is invalid (reported;
 * out untouched).
 */

/* what names the expected value in the message when a list or mapping is found. */
int config_get_scalar(const struct config_obj *o, const char *name, const char *what,
		      const char **out);
int config_get_text(const struct config_obj *o, const char *name, const char **out);
int config_get_strdup(const struct config_obj *o, const char *name, char **out);
int config_get_ll(const struct config_obj *o, const char *name, long long min, long long max,
		  const char *unit, long long *out);
int config_get_int(const struct config_obj *o, const char *name, int min, int max, const char *unit,
		   int *out);
int config_get_bool(const struct config_obj *o, const char *name, bool *out);
int config_get_choice(const struct config_obj *o, const char *name, const struct config_choice *tab,
		      size_t n, const char *allowed, int *out);

/* A mapping section or NULL (absent, or wrong kind: reported). */
const struct yamldoc_node *config_get_mapping(const struct config_obj *o, const char *name,
					      const char *what);

/* Reads a path key, resolves it and (when check) verifies it can be read. */
int config_get_path(const struct config_obj *o, const char *name, bool check, bool dir, char **out);

/* ---------------------------------------------------------------- config_values.c */

/* Strict decimal or 0x hex, optional sign; saturates so huge numbers fail range checks. */
bool config_parse_ll(const char *s, long long *out);

/* true/yes/on, false/no/off, any case. */
bool config_parse_bool(const char *t, bool *out);

/* The entry of tab named t (any case), or NULL. */
const struct config_choice *config_find_choice(const char *t, const struct config_choice *tab,
					       size_t n);

/*
 * Splits "host[:port]" or "[ipv6][:port]" into a malloc'd host and a port. On failure
 * writes the reason into err and returns MB_ERR_INVAL (or MB_ERR_NOMEM).
 */
int config_parse_host_port(const char *text, int default_port, char **host, int *port, char *err,
			   size_t errlen);

/*
 * Parses a period: a number of minutes ("10", "0.5") or a number with a unit ("500ms",
 * "30s", "10m", "10min", "1h"). Returns 0, -1 when it is not a period, -2 out of range.
 */
int config_parse_period(const char *t, int64_t *out);

/* ---------------------------------------------------------------- the sections */

/* config_serial.c */
void config_parse_serial(struct config_ctx *c, const struct config_obj *top);
void config_parse_modem(struct config_ctx *c, const struct config_obj *top);
const struct serial_port_config *config_find_port(const struct config *cfg, const char *name);
void config_port_names(const struct config *cfg, char *buf, size_t len);

/* config_modbus.c; after config_parse_serial (devices refer to the ports) */
void config_parse_modbus(struct config_ctx *c, const struct config_obj *top);

/* config_logger.c */
void config_parse_logger(struct config_ctx *c, const struct config_obj *top);

/* config_mqtt.c; after config_parse_logger (AT topics are checked against its topic) */
void config_parse_mqtt(struct config_ctx *c, const struct config_obj *top);
void config_parse_remote(struct config_ctx *c, const struct config_obj *top);

/* config_web.c; after config_parse_logger (cert_dir defaults beside the store) */
void config_parse_web(struct config_ctx *c, const struct config_obj *top);
void config_web_free(struct web_config *w);
/* config_http.c and config_ftp.c; after config_parse_logger (they depend on logger.mode) */
void config_parse_http(struct config_ctx *c, const struct config_obj *top);
void config_parse_ftp(struct config_ctx *c, const struct config_obj *top);
/* config_tls.c, for the sections with a TLS client (mqtt, http, ftp). */
/* ca_file must be a certificate, cert_file one too, key_file an unencrypted key of it, and
 * neither of the last two goes without the other; the keys of o named so get the errors.
 * NULL paths are not checked. */
void config_check_tls_files(const struct config_obj *o, const char *ca, const char *cert,
			    const char *key);
/* username and password (a password needs a user name); blank values are "not set". */
void config_get_login(const struct config_obj *o, char **username, char **password);
/* The loud warning when allow_all_certificates turns verification off. */
void config_warn_unverified(const struct config_obj *o, bool allow_all_certificates);
/* Warns (why) for each TLS key o has (ca_file, cert_file, key_file, allow_all_certificates)
 * that a plain URL ignores. */
void config_warn_tls_ignored(const struct config_obj *o, const char *why);
/* config_script.c: logger.script (from config_parse_logger's mapping), mqtt.script_topics
 * (from config_parse_mqtt's), and the check of every script once the file is parsed. */
void config_parse_logger_script(struct config_ctx *c, const struct config_obj *o);
void config_parse_script_topics(struct config_ctx *c, const struct config_obj *o);
void config_check_scripts(struct config_ctx *c);

/* config_metrics.c */
void config_parse_metrics(struct config_ctx *c, const struct config_obj *top);
void config_metrics_free(struct metrics_config *m);

#endif
