/*
 * script_internal.h - what the files of the script module share; only script*.c include it.
 *
 *   script.c            a sandboxed state: allocator with a cap, instruction budget, the
 *                       safe libraries, the common modbridge table, protected calls
 *   script_json.c       Lua value -> JSON text (our key order), JSON text -> Lua value
 *   script_transform.c  the transformer: states per device, msg in, messages out
 *   script_topic.c      topic scripts: on_message, modbridge.read/write/publish
 *
 * Threading: a struct script_state is used by one thread at a time (its owner's lock).
 * Errors: Lua errors inside protected calls; the C functions here return 0 or a negative
 * mb_error, with "file:line: reason" in the caller's buffer for MB_ERR_SCRIPT.
 */
#ifndef MODBRIDGE_SCRIPT_INTERNAL_H
#define MODBRIDGE_SCRIPT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "script.h"

/* As <lua.h> declares them: only script*.c include Lua's headers (scripts/lint/walls.py),
 * each before this one. */
typedef struct lua_State lua_State;
typedef int (*lua_CFunction)(lua_State *L);

#define SCRIPT_SHORT_SRC 60 /* LUA_IDSIZE of Debian's Lua 5.4 */

/* Registry keys (light userdata addresses are unique). */
extern const char script_key_message_mt; /* metatable of modbridge.message() results */
extern const char script_key_array_mt;   /* metatable of modbridge.array() tables */

/* One Lua state with its bounds. */
struct script_state {
	lua_State *L;
	const struct config *cfg;
	const char *name;   /* the script's file name as written (chunk name "@name") */
	const char *source; /* borrowed from the configuration, len bytes */
	size_t len;
	const char *entry; /* "transform" or "on_message" */
	/* Adds bindings to the modbridge table (on top of the stack) before the script runs. */
	void (*extra)(lua_State *L, void *ctx);
	void *extra_ctx;
	struct script_limits limits;
	size_t used;         /* bytes allocated now */
	size_t peak;         /* most bytes allocated at once */
	uint64_t steps_left; /* instructions left in this call */
	bool in_call;        /* the budget applies (the hook fires only then) */
	char mem_where[128]; /* "file:line" where the memory cap was hit, "" when not */
	bool budget_hit;     /* the call ran out of instructions */
	char short_src[SCRIPT_SHORT_SRC]; /* how Lua names the chunk in its messages */
};

/*
 * Creates st->L from the fields the caller set (cfg, name, source, len, entry, extra,
 * limits): the sandbox, the modbridge table (log, config, state, message, array,
 * json_encode, json_decode, and extra's), then compiles the source, runs its top level and
 * checks that the global function `entry` exists. Returns 0, or MB_ERR_SCRIPT with the
 * reason in why (st->L closed again), MB_ERR_NOMEM.
 */
int script_state_open(struct script_state *st, char *why, size_t why_len);

/* Closes st->L (accepts a closed state). */
void script_state_close(struct script_state *st);

/*
 * Calls fn (a C function) in protected mode with the budget of one call, passing ud as a
 * light userdata: fn finds the entry function with script_push_entry. Opens the state first
 * when it is closed. Returns 0 or MB_ERR_SCRIPT (why: "file:line: reason"; the memory cap
 * and the budget are named), or MB_ERR_NOMEM. After running out of memory, a state that
 * still holds most of its cap once collected is closed (reopened by the next call: its
 * modbridge.state starts afresh), so one bloated state cannot fail every later call.
 */
int script_state_call(struct script_state *st, lua_CFunction fn, void *ud, char *why,
		      size_t why_len);

/* Pushes the entry function. */
void script_push_entry(lua_State *L);

/* The script state of L (stored in the state's extra space). */
struct script_state *script_state_of(lua_State *L);

/* Raises "file:line: message" naming the script's innermost Lua function running, or, when
 * none runs, its entry function's definition. Never returns (the int is for `return
 * script_raise(...)` in a lua_CFunction). */
int script_raise(lua_State *L, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));

/* A growable text buffer (malloc, not the state's allocator: results outlive the call). */
struct script_buf {
	char *p;
	size_t len, cap;
	bool nomem;
};
void script_buf_add(struct script_buf *b, const char *s, size_t n);
void script_buf_free(struct script_buf *b);

/*
 * Appends the JSON text of the value at idx to b. Objects keep the router's member order
 * first (IMEI TYPE TS ID A ST N STX NX PX V ERR P), then the other keys in byte order; a
 * table whose keys are exactly 1..n is an array, an empty table an object unless made with
 * modbridge.array. Raises a Lua error for what JSON cannot hold (functions, cycles, deep
 * nesting, keys that are neither strings nor integers, invalid UTF-8).
 */
void script_json_encode(lua_State *L, int idx, struct script_buf *b);

/* A real as the encoder writes it (the shortest text that reads back; null for NaN and
 * infinities); text has room for 40 bytes. Returns the length. */
size_t script_json_real(double d, char *text);

/* script_json_encode into a malloc'd NUL-terminated text (the caller frees it; *len its
 * length). Raises as script_json_encode does, leaking nothing. */
char *script_json_text(lua_State *L, int idx, size_t *len);

/* Pushes the Lua value of JSON text; on a syntax error pushes nil and a message instead
 * (returns 2), else returns 1. null becomes nil. */
int script_json_decode(lua_State *L, const char *text, size_t len);

/* Adds modbridge.json_encode / json_decode to the table on top of the stack. */
void script_json_register(lua_State *L);

#endif
