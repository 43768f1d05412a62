/*
 * script.h - user scripts in sandboxed Lua 5.4: the JSON transformer (logger.script, the
 * router's "Use script") and the MQTT topic scripts (mqtt.script_topics).
 *
 * This module is the only one that includes <lua.h>; its files are script.c (states, the
 * sandbox, the limits, errors), script_json.c (Lua values <-> JSON text),
 * script_transform.c (a reading -> `msg`, what transform returns -> messages) and
 * script_topic.c (on_message and modbridge.read/write/publish). docs/scripts.md is the
 * user's reference of the API.
 *
 * The sandbox: only the base (without dofile, loadfile, bytecode loading, finalizers),
 * string (without dump), table, math, utf8 and os.time/date/clock/difftime libraries; no
 * io, no package/require, no debug, no coroutine. Each call into a script gets an
 * instruction budget (a count hook) and each state a memory cap (its allocator); a call
 * that errs, loops or runs out of memory is stopped with a "file:line: reason" message.
 *
 * Threads: a transformer owns a small pool of states; a reading is always run in the state
 * of its device (the device's index modulo the pool size), under that state's lock only, so
 * bus workers run scripts in parallel and `modbridge.state` holds what one device's earlier
 * calls left there. A topic script set is used by one thread at a time (the remote worker).
 *
 * Ownership: a transformer or topic set borrows the configuration (which holds the
 * scripts' source text) and must be freed before it. Results are the caller's to free.
 * Errors: functions return 0 or a negative mb_error; MB_ERR_SCRIPT is a script's own
 * failure, described in the caller's buffer as "file:line: reason".
 */
#ifndef MODBRIDGE_SCRIPT_H
#define MODBRIDGE_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "config.h"
#include "reading.h"

struct message_context; /* message.h */

/* Longest "file:line: reason" of a script failure, with its terminating NUL. */
#define SCRIPT_ERROR_MAX 300

/* The bounds of one state; config values, defaults in docs/scripts.md. */
struct script_limits {
	size_t max_memory;         /* bytes a state may hold, its persistent state included */
	uint64_t max_instructions; /* Lua VM instructions per call (in steps of 1000) */
};

/* The defaults: 4 MiB and 1,000,000 instructions (about 10 ms on a small ARM). */
struct script_limits script_default_limits(void);

/*
 * Compiles a script and runs its top level once in a fresh sandbox, as a transformer or
 * topic state would, and checks that it defines the global function `entry`
 * ("transform" or "on_message"). cfg serves modbridge.config (may be partly filled: the
 * loader calls this once the file is parsed). Returns 0, or MB_ERR_SCRIPT with
 * "name:line: reason" in why; MB_ERR_NOMEM.
 */
int script_check(const struct config *cfg, const char *name, const char *source, size_t len,
		 const char *entry, const struct script_limits *limits, char *why, size_t why_len);

/* ------------------------------------------------------------------ the transformer */

struct script_transformer;

/* One message a transform returned: its payload and, when it chose one, its destination
 * (an MQTT topic, or a path in HTTP mode); NULL: the logger's own. */
struct script_message {
	char *payload; /* malloc'd, NUL-terminated */
	size_t len;
	char *topic; /* malloc'd or NULL */
};

struct script_output {
	struct script_message *items; /* malloc'd; count 0: the reading is dropped */
	size_t count;
};

/*
 * Creates the transformer of cfg->logger.script (which must be set) with `states` Lua
 * states (at least 1; each is created on first use). ctx is the default encoding's context
 * (IMEI, logger id, time format); it is copied. Returns 0, MB_ERR_NOMEM, or MB_ERR_SCRIPT
 * (logged) when the script cannot be loaded.
 */
int script_transformer_new(const struct config *cfg, const struct message_context *ctx,
			   size_t states, struct script_transformer **out);

/*
 * Runs transform(msg) for r in the state of r's device and fills *out. Returns 0 (out->count
 * may be 0: the script returned nil or an empty list), MB_ERR_SCRIPT with "file:line:
 * reason" in why (the script erred, looped, ran out of memory or returned something that
 * is not a message), or MB_ERR_NOMEM. out is empty on failure. Any thread.
 */
int script_transform(struct script_transformer *t, const struct reading *r,
		     struct script_output *out, char *why, size_t why_len);

/* Frees what an output holds and empties it. Accepts NULL. */
void script_output_clear(struct script_output *out);

/* The memory the transformer's states hold now, in bytes (for the figures). Any thread. */
size_t script_transformer_memory(struct script_transformer *t);

/* Frees the transformer and its states. No call may be running. Accepts NULL. */
void script_transformer_free(struct script_transformer *t);

/* ------------------------------------------------------------------ topic scripts */

struct script_topics;

/* What topic scripts reach; the remote commands provide it (unit tests fake it). */
struct script_io {
	/* modbridge.publish: returns 0 or a negative mb_error. */
	int (*publish)(void *ctx, const char *topic, const void *payload, size_t len, int qos,
		       bool retain);
	/* modbridge.read/write: executes one GETMODBUS/SETMODBUS command line and fills the
	 * reply (as command_execute does, with its permissions). */
	void (*command)(void *ctx, const char *line, struct command_reply *reply);
	/* Topics a script may not publish on (AT, script and status topics, the logger's): a
	 * topic matching one of these filters is refused. */
	const char *const *forbidden;
	size_t forbidden_count;
	void *ctx;
};

/* One received message, borrowed for the call. */
struct script_topic_message {
	const char *topic;
	const void *payload;
	size_t len;
	const char *response_topic; /* NULL when absent */
	const void *correlation;    /* NULL when absent */
	size_t correlation_len;
};

/*
 * Creates one state per entry of cfg->mqtt.script_topics (loaded at once). io is copied
 * (what it points to must outlive the set). Returns 0, MB_ERR_NOMEM or MB_ERR_SCRIPT
 * (logged).
 */
int script_topics_new(const struct config *cfg, const struct script_io *io,
		      struct script_topics **out);

/*
 * Runs on_message(topic, payload, props) of script topic `index` for msg. Returns 0, or
 * MB_ERR_SCRIPT with "file:line: reason" in why, or MB_ERR_NOMEM. One thread at a time.
 */
int script_topic_run(struct script_topics *t, size_t index, const struct script_topic_message *msg,
		     char *why, size_t why_len);

/* Frees the set. Accepts NULL. */
void script_topics_free(struct script_topics *t);

#endif
