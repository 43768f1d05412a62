/*
 * script_transform.c - the JSON transformer (logger.script): a reading becomes the table
 * `msg`, transform(msg) runs, and what it returns becomes messages; see script.h and
 * docs/scripts.md.
 *
 * `msg` holds exactly the members of the default message (IMEI TYPE TS ID A, ST/N or
 * STX/NX/PX, V or ERR, P), as strings and numbers as the router sends them, so returning
 * it unchanged gives the default bytes. What a script may want beyond them is reachable
 * through msg's metatable (__index), so pairs() and the encoder do not see it:
 * msg.device (the id), msg.time_ms (the instant, ms since 1970), msg.blocks (per block:
 * start, count, width in registers per value, values: for a device of one block, the same
 * table as msg.V) and msg.registers (the raw registers of a typed device).
 *
 * States: one pool per transformer, a reading runs in the state of its device (index modulo
 * the pool's size) under that state's lock; see script.h. A failure is logged once per
 * episode of its device (the first failing call after a success), with its "file:line:
 * reason": a script that fails on one device's readings says so once, however often the
 * other devices succeed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "message.h"
#include <lauxlib.h>
#include <lua.h>

#include "script_internal.h"
#include "timeutil.h"
#include "topic.h"

struct pooled {
	pthread_mutex_t lock;
	struct script_state st;
};

struct script_transformer {
	const struct config *cfg;
	struct message_context ctx;
	struct pooled *pool;
	size_t count;
	char **forbidden; /* filters a message's own topic may not match */
	size_t nforbidden;
	/* Per device: failing since the last success, and the failed calls of the episode. */
	struct episode *episodes;
	size_t nepisodes;
};

struct episode {
	atomic_bool failing;
	atomic_ullong failures;
};

struct call {
	struct script_transformer *t;
	const struct reading *r;
	struct script_output *out;
};

/* ------------------------------------------------------------------ msg */

static void push_value(lua_State *L, const struct decoded_value *v)
{
	char text[DECODE_JSON_MAX + 1];
	switch (v->kind) {
	case DECODED_INT: lua_pushinteger(L, (lua_Integer)v->v.i); break;
	case DECODED_UINT:
		if (v->v.u <= (uint64_t)INT64_MAX)
			lua_pushinteger(L, (lua_Integer)v->v.u);
		else
			lua_pushnumber(L, (lua_Number)v->v.u);
		break;
	case DECODED_FLOAT32:
		/* The float's shortest decimal, so 0.1f is 0.1 and not 0.100000001490116. */
		if (decode_format_json(v, text, sizeof(text)) > 0 && strcmp(text, "null") != 0)
			lua_pushnumber(L, (lua_Number)strtod(text, NULL));
		else
			lua_pushnumber(L, (lua_Number)v->v.f);
		break;
	default: lua_pushnumber(L, (lua_Number)v->v.f); break;
	}
}

static void set_string(lua_State *L, const char *key, const char *value)
{
	lua_pushstring(L, value ? value : "");
	lua_setfield(L, -2, key);
}

static void set_uint_string(lua_State *L, const char *key, unsigned long value)
{
	char text[24];
	snprintf(text, sizeof(text), "%lu", value);
	set_string(L, key, text);
}

static void push_int_list(lua_State *L, const struct device_config *d, int what)
{
	size_t position = 0;
	unsigned width = decode_width(d->type);
	lua_createtable(L, (int)d->block_count, 0);
	for (size_t i = 0; i < d->block_count; i++) {
		lua_Integer v = what == 0   ? d->blocks[i].start
				: what == 1 ? d->blocks[i].count
					    : (lua_Integer)position;
		position += d->blocks[i].count / width;
		lua_pushinteger(L, v);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* Pushes the value of V number i (0-based) of r. */
static void push_v(lua_State *L, const struct reading *r, size_t i)
{
	if (r->decoded)
		push_value(L, &r->decoded[i]);
	else
		lua_pushinteger(L, r->values[i]);
}

/* The members that are not part of the message, behind msg's metatable. v is the stack
 * index of msg.V (0 for an ERR reading): a device of one block shares it as the block's
 * values (the common case, and half the cost of building msg). */
static void push_extras(lua_State *L, const struct reading *r, int v_index)
{
	const struct device_config *d = r->device;
	unsigned width = decode_width(d->type);
	size_t v = 0, nv = r->decoded ? r->decoded_count : r->value_count;

	lua_createtable(L, 0, 1);
	lua_createtable(L, 0, 4);
	set_string(L, "device", d->id);
	lua_pushinteger(L, r->ts_ms);
	lua_setfield(L, -2, "time_ms");
	lua_createtable(L, (int)d->block_count, 0);
	for (size_t i = 0; i < d->block_count; i++) {
		size_t n = d->blocks[i].count / width;
		lua_createtable(L, 0, 4);
		lua_pushinteger(L, d->blocks[i].start);
		lua_setfield(L, -2, "start");
		lua_pushinteger(L, d->blocks[i].count);
		lua_setfield(L, -2, "count");
		lua_pushinteger(L, width);
		lua_setfield(L, -2, "width");
		if (v_index && d->block_count == 1) {
			lua_pushvalue(L, v_index);
			lua_setfield(L, -2, "values");
		} else if (v_index) {
			lua_createtable(L, (int)n, 0);
			for (size_t k = 0; k < n && v < nv; k++, v++) {
				push_v(L, r, v);
				lua_rawseti(L, -2, (lua_Integer)k + 1);
			}
			lua_setfield(L, -2, "values");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "blocks");
	if (r->decoded && v_index) {
		lua_createtable(L, (int)r->value_count, 0);
		for (size_t i = 0; i < r->value_count; i++) {
			lua_pushinteger(L, r->values[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_setfield(L, -2, "registers");
	}
	lua_setfield(L, -2, "__index");
}

static void push_msg(lua_State *L, const struct reading *r, const struct message_context *ctx)
{
	const struct device_config *d = r->device;
	char ts[40];

	if (ctx->time_format == TIME_UNIX)
		snprintf(ts, sizeof(ts), "%lld", (long long)time_floor_s(r->ts_ms));
	else if (time_format_iso8601(r->ts_ms, ts, sizeof(ts)) != 0)
		ts[0] = '\0';
	lua_createtable(L, 0, 12);
	set_string(L, "IMEI", ctx->imei);
	set_string(L, "TYPE", "MODB");
	set_string(L, "TS", ts);
	set_string(L, "ID", d->id);
	set_string(L, "A", d->address_text);
	if (d->block_count == 1) {
		set_uint_string(L, "ST", d->blocks[0].start);
		set_uint_string(L, "N", d->blocks[0].count);
	} else {
		push_int_list(L, d, 0);
		lua_setfield(L, -2, "STX");
		push_int_list(L, d, 1);
		lua_setfield(L, -2, "NX");
		push_int_list(L, d, 2);
		lua_setfield(L, -2, "PX");
	}
	int v_index = 0;
	if (r->error[0]) {
		set_string(L, "ERR", r->error);
	} else {
		size_t nv = r->decoded ? r->decoded_count : r->value_count;
		lua_createtable(L, (int)nv, 0);
		for (size_t i = 0; i < nv; i++) {
			push_v(L, r, i);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		if (nv == 0) { /* "V":[] as the default has it, not {} */
			lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_array_mt);
			lua_setmetatable(L, -2);
		}
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, "V");
		lua_insert(L, -2); /* msg on top, V under it for push_extras (dropped below) */
		v_index = lua_gettop(L) - 1;
	}
	set_string(L, "P", ctx->logger_id);
	push_extras(L, r, v_index);
	lua_setmetatable(L, -2);
	if (v_index)
		lua_remove(L, -2);
}

/* ------------------------------------------------------------------ results */

static bool has_mt(lua_State *L, int idx, const char *key)
{
	if (!lua_getmetatable(L, idx))
		return false;
	lua_rawgetp(L, LUA_REGISTRYINDEX, key);
	bool yes = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return yes;
}

/* The number of keys of the table at idx; *seq: they are exactly 1..n. */
static size_t count_keys(lua_State *L, int idx, bool *seq)
{
	size_t n = 0, len = (size_t)lua_rawlen(L, idx);
	*seq = true;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		n++;
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
		    (lua_Unsigned)lua_tointeger(L, -1) > len)
			*seq = false;
	}
	*seq = *seq && n == len;
	return n;
}

static void add_message(lua_State *L, struct call *c, int idx, const char *topic)
{
	struct script_output *out = c->out;
	char *payload, *dest = NULL;
	size_t len;
	idx = lua_absindex(L, idx);

	if (topic && !*topic)
		script_raise(L, "a message's own destination must not be empty");
	/* MQTT's rules in mqtt mode; an HTTP path is encoded by the uplink (uplink_http.h); the
	 * FTP uplink ignores destinations. */
	if (topic && c->t->cfg->logger.mode == LOGGER_MQTT) {
		if (!topic_publishable(topic))
			script_raise(L, "'%s' is not a topic a message can be published on (%s)",
				     topic, topic_publish_problem(topic));
		for (size_t i = 0; i < c->t->nforbidden; i++)
			if (topic_matches(c->t->forbidden[i], topic))
				script_raise(L,
					     "a message may not go to '%s': it is the command, script "
					     "or status topic %s",
					     topic, c->t->forbidden[i]);
	}
	if (lua_type(L, idx) == LUA_TSTRING) {
		const char *s = lua_tolstring(L, idx, &len);
		payload = malloc(len + 1);
		if (payload) {
			memcpy(payload, s, len);
			payload[len] = '\0';
		}
	} else {
		payload = script_json_text(L, idx, &len); /* raises on what JSON cannot hold */
	}
	if (topic)
		dest = strdup(topic);
	struct script_message *grown = realloc(out->items, (out->count + 1) * sizeof(*grown));
	if (!payload || (topic && !dest) || !grown) {
		free(payload);
		free(dest);
		if (grown)
			out->items = grown;
		luaL_error(L, "out of memory keeping a message");
		return;
	}
	out->items = grown;
	out->items[out->count++] = (struct script_message){payload, len, dest};
	/* payload and dest now belong to out (script_output_clear frees them), which cppcheck
	 * does not follow. */
	// cppcheck-suppress memleak
}

/* One element: a string, a table, or a modbridge.message. */
static void add_one(lua_State *L, struct call *c, int idx, size_t element)
{
	idx = lua_absindex(L, idx);
	int type = lua_type(L, idx);
	if (type == LUA_TTABLE && has_mt(L, idx, &script_key_message_mt)) {
		lua_getfield(L, idx, "topic");
		const char *topic = lua_tostring(L, -1);
		lua_getfield(L, idx, "payload");
		add_message(L, c, -1, topic);
		lua_pop(L, 2);
	} else if (type == LUA_TTABLE || type == LUA_TSTRING) {
		add_message(L, c, idx, NULL);
	} else if (element) {
		script_raise(L,
			     "transform returned a list whose element %zu is %s; expected tables "
			     "or strings",
			     element, luaL_typename(L, idx));
	} else {
		script_raise(L,
			     "transform returned %s; expected a table, a string, a list of them, "
			     "or nil",
			     luaL_typename(L, idx));
	}
}

static int run_transform(lua_State *L)
{
	struct call *c = lua_touserdata(L, 1);
	script_push_entry(L);
	push_msg(L, c->r, &c->t->ctx);
	lua_call(L, 1, 1);
	int res = lua_gettop(L);
	if (lua_isnil(L, res))
		return 0;
	if (lua_type(L, res) == LUA_TTABLE && !has_mt(L, res, &script_key_message_mt) &&
	    !has_mt(L, res, &script_key_array_mt)) {
		bool seq;
		size_t n = count_keys(L, res, &seq);
		if (n == 0)
			return 0; /* an empty list: nothing to send */
		if (seq) {
			for (size_t i = 1; i <= n; i++) {
				lua_rawgeti(L, res, (lua_Integer)i);
				add_one(L, c, -1, i);
				lua_pop(L, 1);
			}
			return 0;
		}
	}
	add_one(L, c, res, 0);
	return 0;
}

/* ------------------------------------------------------------------ the pool */

void script_output_clear(struct script_output *out)
{
	if (!out)
		return;
	for (size_t i = 0; i < out->count; i++) {
		free(out->items[i].payload);
		free(out->items[i].topic);
	}
	free(out->items);
	out->items = NULL;
	out->count = 0;
}

static int add_forbidden(struct script_transformer *t, const char *text)
{
	if (!text)
		return 0;
	char *s = config_subst_imei(text, t->cfg->imei);
	char **grown = s ? realloc(t->forbidden, (t->nforbidden + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(s);
		return MB_ERR_NOMEM;
	}
	t->forbidden = grown;
	t->forbidden[t->nforbidden++] = s;
	return 0;
}

int script_transformer_new(const struct config *cfg, const struct message_context *ctx,
			   size_t states, struct script_transformer **out)
{
	const struct logger_config *l = &cfg->logger;
	char why[SCRIPT_ERROR_MAX];
	int rc = 0;

	if (!l->script_source || states == 0)
		return MB_ERR_INVAL;
	struct script_transformer *t = calloc(1, sizeof(*t));
	if (!t)
		return MB_ERR_NOMEM;
	t->cfg = cfg;
	t->ctx = *ctx;
	t->pool = calloc(states, sizeof(*t->pool));
	if (!t->pool) {
		free(t);
		return MB_ERR_NOMEM;
	}
	t->count = states;
	t->nepisodes = cfg->device_count ? cfg->device_count : 1;
	t->episodes = calloc(t->nepisodes, sizeof(*t->episodes));
	if (!t->episodes) {
		free(t->pool);
		free(t);
		return MB_ERR_NOMEM;
	}
	for (size_t i = 0; i < states; i++) {
		pthread_mutex_init(&t->pool[i].lock, NULL);
		t->pool[i].st = (struct script_state){
			.cfg = cfg,
			.name = l->script,
			.source = l->script_source,
			.len = l->script_len,
			.entry = "transform",
			.limits = script_default_limits(),
		};
	}
	for (size_t i = 0; rc == 0 && i < cfg->mqtt.at_topic_count; i++)
		rc = add_forbidden(t, cfg->mqtt.at_topics[i].topic);
	for (size_t i = 0; rc == 0 && i < cfg->mqtt.script_topic_count; i++)
		rc = add_forbidden(t, cfg->mqtt.script_topics[i].topic);
	if (rc == 0)
		rc = add_forbidden(t, cfg->mqtt.status_topic);
	/* The first state now: a script that cannot load is a start-up error, not a reading's. */
	if (rc == 0 && (rc = script_state_open(&t->pool[0].st, why, sizeof(why))) != 0)
		log_error("script %s: %s", l->script, why);
	if (rc) {
		script_transformer_free(t);
		return rc;
	}
	log_info("script %s: transforming readings (%zu Lua state(s), up to %zu bytes and %llu "
		 "instructions per call each)",
		 l->script, states, t->pool[0].st.limits.max_memory,
		 (unsigned long long)t->pool[0].st.limits.max_instructions);
	*out = t;
	return 0;
}

/* The device's index in the configuration (0 for a device from elsewhere). */
static size_t index_of_device(const struct script_transformer *t, const struct device_config *d)
{
	const struct config *cfg = t->cfg;
	if (d >= cfg->devices && d < cfg->devices + cfg->device_count)
		return (size_t)(d - cfg->devices);
	return 0;
}

int script_transform(struct script_transformer *t, const struct reading *r,
		     struct script_output *out, char *why, size_t why_len)
{
	size_t device = index_of_device(t, r->device);
	struct pooled *p = &t->pool[device % t->count];
	struct episode *e = &t->episodes[device % t->nepisodes];
	struct call c = {.t = t, .r = r, .out = out};

	out->items = NULL;
	out->count = 0;
	pthread_mutex_lock(&p->lock);
	int rc = script_state_call(&p->st, run_transform, &c, why, why_len);
	pthread_mutex_unlock(&p->lock);
	if (rc) {
		script_output_clear(out);
		atomic_fetch_add(&e->failures, 1);
		if (!atomic_exchange(&e->failing, true))
			log_error("script %s: device %s: %s; its readings are kept in the default "
				  "format with ERR until it works again",
				  t->cfg->logger.script, r->device->id, why);
		return rc;
	}
	if (atomic_load(&e->failing) && atomic_exchange(&e->failing, false))
		log_info("script %s: device %s: works again (%llu reading(s) were kept in the "
			 "default format)",
			 t->cfg->logger.script, r->device->id,
			 (unsigned long long)atomic_exchange(&e->failures, 0));
	return 0;
}

size_t script_transformer_memory(struct script_transformer *t)
{
	size_t total = 0;
	for (size_t i = 0; i < t->count; i++) {
		pthread_mutex_lock(&t->pool[i].lock);
		total += t->pool[i].st.L ? t->pool[i].st.used : 0;
		pthread_mutex_unlock(&t->pool[i].lock);
	}
	return total;
}

void script_transformer_free(struct script_transformer *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++) {
		script_state_close(&t->pool[i].st);
		pthread_mutex_destroy(&t->pool[i].lock);
	}
	for (size_t i = 0; i < t->nforbidden; i++)
		free(t->forbidden[i]);
	free(t->forbidden);
	free(t->episodes);
	free(t->pool);
	free(t);
}
