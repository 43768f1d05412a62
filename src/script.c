/*
 * script.c - one sandboxed Lua state: the allocator with its cap, the instruction budget,
 * the safe libraries, the modbridge table common to every script, protected calls and
 * their "file:line: reason" messages; see script.h and script_internal.h.
 *
 * Why each piece of the sandbox:
 *  - only the libraries opened here exist: no io, os.execute/remove/getenv, package and
 *    require, debug, coroutine;
 *  - load accepts text chunks only (bytecode can crash the VM), dofile and loadfile are
 *    gone, string.dump too (nothing could load its output anyway);
 *  - setmetatable refuses a __gc field: a finalizer runs outside any call's budget (during
 *    a collection or when the state is closed), where a loop in it could not be stopped;
 *  - collectgarbage only "count", "collect" and "step": "stop" would let garbage fill the
 *    cap, and the generational mode switches are ours to choose.
 * The count hook fires every HOOK_STEP instructions while a call runs and raises an error
 * once the call's budget is spent; the allocator refuses what would pass the state's cap,
 * which Lua turns into a memory error. A C function (string.rep, a pattern match) runs
 * between two hooks: the cap bounds what it allocates, not the time it takes
 * (docs/scripts.md says so).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "script_internal.h"

#define HOOK_STEP 1000
/* When a collection after a memory error leaves more than this share of the cap in use,
 * the state is closed: its own data fills it, and every later call would fail. */
#define RESET_NUM 3
#define RESET_DEN 4

const char script_key_message_mt = 'm';
const char script_key_array_mt = 'a';

struct script_limits script_default_limits(void)
{
	return (struct script_limits){.max_memory = 4u << 20, .max_instructions = 1000000};
}

struct script_state *script_state_of(lua_State *L)
{
	struct script_state *st;
	memcpy(&st, lua_getextraspace(L), sizeof(struct script_state *));
	return st;
}

/* ------------------------------------------------------------------ bounds */

/* Where the script is: its innermost Lua function that has a line. */
static bool script_where(lua_State *L, char *buf, size_t len)
{
	lua_Debug ar;
	for (int level = 0; lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "Sl", &ar))
			break;
		if (ar.currentline > 0) {
			snprintf(buf, len, "%s:%d", ar.short_src, ar.currentline);
			return true;
		}
	}
	return false;
}

static void *bounded_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct script_state *st = ud;
	size_t old = ptr ? osize : 0; /* without ptr, osize tells the kind of object */

	if (nsize == 0) {
		free(ptr);
		st->used -= old;
		return NULL;
	}
	if (nsize > old && st->used + (nsize - old) > st->limits.max_memory) {
		if (st->L && st->in_call && !st->mem_where[0] &&
		    !script_where(st->L, st->mem_where, sizeof(st->mem_where)))
			snprintf(st->mem_where, sizeof(st->mem_where), "%s", st->short_src);
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	st->used = st->used - old + nsize;
	if (st->used > st->peak)
		st->peak = st->used;
	return p;
}

int script_raise(lua_State *L, const char *fmt, ...)
{
	struct script_state *st = script_state_of(L);
	char where[128], text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (!script_where(L, where, sizeof(where))) {
		lua_Debug ar;
		script_push_entry(L);
		if (lua_isfunction(L, -1) && lua_getinfo(L, ">S", &ar))
			snprintf(where, sizeof(where), "%s:%d", ar.short_src, ar.linedefined);
		else
			snprintf(where, sizeof(where), "%s", st->short_src);
	}
	lua_pushfstring(L, "%s: %s", where, text);
	lua_error(L);
	__builtin_unreachable(); /* lua_error longjmps */
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	struct script_state *st = script_state_of(L);
	(void)ar;
	if (!st->in_call)
		return;
	if (!st->budget_hit && st->steps_left > HOOK_STEP) {
		st->steps_left -= HOOK_STEP;
		return;
	}
	/* From now on every instruction raises: a script's own pcall may catch the error,
	 * but the next instruction outside it raises again, so it escapes to the top. */
	st->budget_hit = true;
	st->steps_left = 0;
	lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
	script_raise(L, "stopped: the call ran more than %llu instructions (an endless loop?)",
		     (unsigned long long)st->limits.max_instructions);
}

/* ------------------------------------------------------------------ the sandbox */

static int safe_load(lua_State *L)
{
	/* load(chunk [, chunkname [, mode [, env]]]) with mode forced to text. */
	int n = lua_gettop(L);
	lua_getfield(L, LUA_REGISTRYINDEX, "modbridge_unsafe_load");
	lua_pushvalue(L, 1);
	if (n >= 2)
		lua_pushvalue(L, 2);
	else
		lua_pushnil(L);
	lua_pushliteral(L, "t");
	if (n >= 4)
		lua_pushvalue(L, 4);
	lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - n;
}

static int safe_setmetatable(lua_State *L)
{
	if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
		return script_raise(L, "setmetatable: __gc (finalizers) is not allowed in scripts");
	lua_settop(L, 2);
	lua_getfield(L, LUA_REGISTRYINDEX, "modbridge_unsafe_setmetatable");
	lua_insert(L, 1);
	lua_call(L, 2, 1);
	return 1;
}

static int safe_collectgarbage(lua_State *L)
{
	static const char *const allowed[] = {"collect", "count", "step", NULL};
	int opt = luaL_checkoption(L, 1, "collect", allowed);
	if (opt == 1) {
		lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT) +
					  (lua_Number)lua_gc(L, LUA_GCCOUNTB) / 1024.0);
		return 1;
	}
	if (opt == 2) {
		lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, (int)luaL_optinteger(L, 2, 0)));
		return 1;
	}
	lua_gc(L, LUA_GCCOLLECT);
	lua_pushinteger(L, 0);
	return 1;
}

/* Joins the arguments from index first with spaces (tostring of each) into a Lua string. */
static const char *join_args(lua_State *L, int first)
{
	luaL_Buffer b;
	int n = lua_gettop(L);
	luaL_buffinit(L, &b);
	for (int i = first; i <= n; i++) {
		size_t len;
		const char *s = luaL_tolstring(L, i, &len);
		if (i > first)
			luaL_addchar(&b, ' ');
		luaL_addvalue(&b);
		(void)s;
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

static int sb_log(lua_State *L)
{
	static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
	struct script_state *st = script_state_of(L);
	int level = luaL_checkoption(L, 1, NULL, levels);
	const char *text = join_args(L, 2);
	log_msg((enum log_level)level, "script %s: %s", st->name, text);
	return 0;
}

static int sb_print(lua_State *L)
{
	struct script_state *st = script_state_of(L);
	log_info("script %s: %s", st->name, join_args(L, 1));
	return 0;
}

static void push_device(lua_State *L, const struct device_config *d)
{
	lua_createtable(L, 0, 8);
	lua_pushstring(L, d->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, d->address_text);
	lua_setfield(L, -2, "address");
	lua_pushinteger(L, d->slave);
	lua_setfield(L, -2, "slave");
	lua_pushinteger(L, d->function);
	lua_setfield(L, -2, "function");
	lua_pushinteger(L, d->period_ms);
	lua_setfield(L, -2, "period_ms");
	lua_pushstring(L, decode_type_name(d->type));
	lua_setfield(L, -2, "type");
	lua_pushstring(L, d->transport == TRANSPORT_TCP ? "tcp" : "rtu");
	lua_setfield(L, -2, "transport");
	lua_createtable(L, (int)d->block_count, 0);
	for (size_t i = 0; i < d->block_count; i++) {
		lua_createtable(L, 0, 2);
		lua_pushinteger(L, d->blocks[i].start);
		lua_setfield(L, -2, "start");
		lua_pushinteger(L, d->blocks[i].count);
		lua_setfield(L, -2, "count");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "blocks");
}

static void push_subst(lua_State *L, const char *text, const char *imei)
{
	char *s = text ? config_subst_imei(text, imei) : NULL;
	if (s)
		lua_pushstring(L, s);
	else
		lua_pushnil(L);
	free(s);
}

/* modbridge.config(key): a few settings a script may need; never a secret. */
static int sb_config(lua_State *L)
{
	struct script_state *st = script_state_of(L);
	const struct config *cfg = st->cfg;
	const char *key = luaL_checkstring(L, 1);

	if (!cfg)
		return 0; /* nothing: nil */
	if (!strcmp(key, "imei")) {
		lua_pushstring(L, cfg->imei);
	} else if (!strcmp(key, "logger.id")) {
		lua_pushstring(L, cfg->logger.id);
	} else if (!strcmp(key, "logger.topic")) {
		push_subst(L, cfg->logger.topic, cfg->imei);
	} else if (!strcmp(key, "logger.time_format")) {
		lua_pushstring(L, cfg->logger.time_format == TIME_UNIX ? "unix" : "iso8601");
	} else if (!strcmp(key, "mqtt.qos")) {
		lua_pushinteger(L, cfg->mqtt.qos);
	} else if (!strcmp(key, "mqtt.status_topic")) {
		push_subst(L, cfg->mqtt.status_topic, cfg->imei);
	} else if (!strcmp(key, "remote.allow_writes")) {
		lua_pushboolean(L, cfg->remote.allow_writes);
	} else if (!strcmp(key, "devices")) {
		lua_createtable(L, (int)cfg->device_count, 0);
		for (size_t i = 0; i < cfg->device_count; i++) {
			lua_pushstring(L, cfg->devices[i].id);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
	} else if (!strncmp(key, "device.", 7) && config_find_device(cfg, key + 7)) {
		push_device(L, config_find_device(cfg, key + 7));
	} else {
		lua_pushnil(L);
	}
	return 1;
}

/* modbridge.message(payload [, topic]): one message with its own destination. */
static int sb_message(lua_State *L)
{
	int t = lua_type(L, 1);
	if (t != LUA_TSTRING && t != LUA_TTABLE)
		return script_raise(L,
				    "modbridge.message: the payload must be a table or a string, "
				    "not %s",
				    luaL_typename(L, 1));
	if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
		return script_raise(L, "modbridge.message: the topic must be a string, not %s",
				    luaL_typename(L, 2));
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "payload");
	if (!lua_isnoneornil(L, 2)) {
		lua_pushvalue(L, 2);
		lua_setfield(L, -2, "topic");
	}
	lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_message_mt);
	lua_setmetatable(L, -2);
	return 1;
}

/* modbridge.array([t]): t (or a new table) encoded as a JSON array even when empty. */
static int sb_array(lua_State *L)
{
	if (lua_isnoneornil(L, 1))
		lua_newtable(L);
	else
		luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	if (lua_isnil(L, 1)) {
		lua_pop(L, 1);
		lua_newtable(L);
	}
	lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_array_mt);
	lua_setmetatable(L, -2);
	return 1;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
	luaL_requiref(L, name, fn, 1);
	lua_pop(L, 1);
}

static void remove_field(lua_State *L, const char *table, const char *field)
{
	if (lua_getglobal(L, table) == LUA_TTABLE) {
		lua_pushnil(L);
		lua_setfield(L, -2, field);
	}
	lua_pop(L, 1);
}

/* Protected: builds the sandbox and the modbridge table, loads and runs the chunk. */
static int open_protected(lua_State *L)
{
	struct script_state *st = lua_touserdata(L, 1);
	static const luaL_Reg common[] = {
		{"log", sb_log},     {"config", sb_config}, {"message", sb_message},
		{"array", sb_array}, {NULL, NULL},
	};

	open_lib(L, LUA_GNAME, luaopen_base);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
	open_lib(L, LUA_OSLIBNAME, luaopen_os);

	/* The base library without what reads files or bytecode; guarded replacements. */
	static const char *const gone[] = {"dofile", "loadfile"};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		lua_pushnil(L);
		lua_setglobal(L, gone[i]);
	}
	/* The originals move to the registry; the wrappers fetch them from there. */
	lua_getglobal(L, "load");
	lua_setfield(L, LUA_REGISTRYINDEX, "modbridge_unsafe_load");
	lua_getglobal(L, "setmetatable");
	lua_setfield(L, LUA_REGISTRYINDEX, "modbridge_unsafe_setmetatable");
	lua_pushcfunction(L, safe_load);
	lua_setglobal(L, "load");
	lua_pushcfunction(L, safe_setmetatable);
	lua_setglobal(L, "setmetatable");
	lua_pushcfunction(L, safe_collectgarbage);
	lua_setglobal(L, "collectgarbage");
	lua_pushcfunction(L, sb_print);
	lua_setglobal(L, "print");
	remove_field(L, LUA_STRLIBNAME, "dump");
	/* os: the clock and the calendar only. */
	static const char *const os_gone[] = {"execute", "exit",    "getenv",   "remove",
					      "rename",  "tmpname", "setlocale"};
	for (size_t i = 0; i < sizeof(os_gone) / sizeof(os_gone[0]); i++)
		remove_field(L, LUA_OSLIBNAME, os_gone[i]);

	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key_message_mt);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key_array_mt);

	luaL_newlib(L, common);
	lua_newtable(L);
	lua_setfield(L, -2, "state");
	script_json_register(L);
	if (st->extra)
		st->extra(L, st->extra_ctx);
	lua_setglobal(L, "modbridge");

	char chunk[160];
	snprintf(chunk, sizeof(chunk), "@%s", st->name);
	if (luaL_loadbufferx(L, st->source, st->len, chunk, "t") != LUA_OK)
		return lua_error(L); /* the message names file:line */
	lua_call(L, 0, 0);
	if (lua_getglobal(L, st->entry) != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return luaL_error(L,
				  "%s: does not define the function %s (it must be a global "
				  "function)",
				  st->short_src, st->entry);
	}
	lua_setfield(L, LUA_REGISTRYINDEX, "modbridge_entry");
	return 0;
}

void script_push_entry(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "modbridge_entry");
}

/* Message handler: a string naming file:line, whatever was raised. */
static int message_handler(lua_State *L)
{
	struct script_state *st = script_state_of(L);
	const char *msg = NULL;
	char where[128];

	if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER)
		msg = lua_tostring(L, 1);
	else if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
		msg = lua_tostring(L, -1);
	else
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	size_t n = strlen(st->short_src);
	if (!strncmp(msg, st->short_src, n) && msg[n] == ':')
		return 1; /* already names where */
	if (script_where(L, where, sizeof(where)))
		lua_pushfstring(L, "%s: %s", where, msg);
	else
		lua_pushfstring(L, "%s: %s", st->short_src, msg);
	return 1;
}

/* Formats the failure of a protected call into why. */
static int call_failed(struct script_state *st, int status, char *why, size_t why_len)
{
	lua_State *L = st->L;
	if (status == LUA_ERRMEM) {
		snprintf(why, why_len,
			 "%s: stopped: out of memory (the script's state may hold %zu bytes)",
			 st->mem_where[0] ? st->mem_where : st->short_src, st->limits.max_memory);
	} else {
		const char *msg = lua_tostring(L, -1);
		snprintf(why, why_len, "%s", msg ? msg : "unknown error");
	}
	return MB_ERR_SCRIPT;
}

static int protected_call(struct script_state *st, lua_CFunction fn, void *ud, char *why,
			  size_t why_len);

static void set_short_src(struct script_state *st)
{
	/* Lua shortens "@name" to its last LUA_IDSIZE-1 bytes with "..." in front. */
	size_t n = strlen(st->name), room = sizeof(st->short_src) - 1;
	if (n <= room)
		snprintf(st->short_src, sizeof(st->short_src), "%s", st->name);
	else
		snprintf(st->short_src, sizeof(st->short_src), "...%s", st->name + n - (room - 3));
}

int script_state_open(struct script_state *st, char *why, size_t why_len)
{
	script_state_close(st);
	set_short_src(st);
	st->used = 0;
	st->mem_where[0] = '\0';
	st->L = lua_newstate(bounded_alloc, st);
	if (!st->L) {
		snprintf(why, why_len, "%s: out of memory creating the Lua state", st->name);
		return MB_ERR_NOMEM;
	}
	memcpy(lua_getextraspace(st->L), &st, sizeof(struct script_state *));
	lua_sethook(st->L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
	/* Each call leaves a few kilobytes of young garbage (msg and what the script built):
	 * the generational collector frees it for less than the incremental one. */
	lua_gc(st->L, LUA_GCGEN, 0, 0);
	int rc = protected_call(st, open_protected, st, why, why_len);
	if (rc)
		script_state_close(st);
	return rc;
}

void script_state_close(struct script_state *st)
{
	if (st->L) {
		st->in_call = false;
		lua_close(st->L);
	}
	st->L = NULL;
}

int script_state_call(struct script_state *st, lua_CFunction fn, void *ud, char *why,
		      size_t why_len)
{
	if (!st->L) {
		int rc = script_state_open(st, why, why_len);
		if (rc)
			return rc;
	}
	return protected_call(st, fn, ud, why, why_len);
}

/* One call of fn (see script_state_call) on an open state. */
static int protected_call(struct script_state *st, lua_CFunction fn, void *ud, char *why,
			  size_t why_len)
{
	lua_State *L = st->L;
	int base = lua_gettop(L);
	if (!lua_checkstack(L, 8)) {
		snprintf(why, why_len, "%s: out of memory", st->short_src);
		return MB_ERR_NOMEM;
	}
	lua_pushcfunction(L, message_handler);
	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, ud);
	st->steps_left = st->limits.max_instructions;
	st->budget_hit = false;
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
	st->mem_where[0] = '\0';
	st->in_call = true;
	int status = lua_pcall(L, 1, 0, base + 1);
	st->in_call = false;
	int rc = status == LUA_OK ? 0 : call_failed(st, status, why, why_len);
	lua_settop(L, base);
	if (status == LUA_ERRMEM) {
		lua_gc(L, LUA_GCCOLLECT);
		if (st->used > st->limits.max_memory / RESET_DEN * RESET_NUM) {
			log_warn("script %s: its state still holds %zu of its %zu bytes after a "
				 "collection; starting it afresh (modbridge.state is emptied)",
				 st->name, st->used, st->limits.max_memory);
			script_state_close(st);
		}
	}
	return rc;
}

/* ------------------------------------------------------------------ check */

int script_check(const struct config *cfg, const char *name, const char *source, size_t len,
		 const char *entry, const struct script_limits *limits, char *why, size_t why_len)
{
	struct script_state st = {
		.cfg = cfg,
		.name = name,
		.source = source,
		.len = len,
		.entry = entry,
		.limits = limits ? *limits : script_default_limits(),
	};
	int rc = script_state_open(&st, why, why_len);
	script_state_close(&st);
	return rc;
}

/* ------------------------------------------------------------------ buffers */

void script_buf_add(struct script_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 <= b->cap) { /* the common case */
		memcpy(b->p + b->len, s, n);
		b->len += n;
		b->p[b->len] = '\0';
		return;
	}
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->nomem = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void script_buf_free(struct script_buf *b)
{
	free(b->p);
	*b = (struct script_buf){0};
}
