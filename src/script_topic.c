/*
 * script_topic.c - MQTT topic scripts (mqtt.script_topics): on_message(topic, payload,
 * props) and the bindings that reach the gateway; see script.h and docs/scripts.md.
 *
 * modbridge.read and modbridge.write are GETMODBUS and SETMODBUS: they build the command
 * line and hand it to io->command, which is command_execute in the daemon. So a script
 * reaches a bus exactly as a remote command does (the poller's queue, the same address
 * resolution, remote.allow_writes for writes), and never opens one itself. A device id
 * stands for its address and function. modbridge.publish goes through io->publish (the
 * MQTT link), refusing the topics a message there would be taken for a command, a script
 * trigger, data or status.
 *
 * Threading: one thread at a time (the remote worker); each script topic has its own state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include <lauxlib.h>
#include <lua.h>

#include "script_internal.h"
#include "topic.h"

struct script_topics {
	struct script_io io;
	struct script_state *states;
	size_t count;
};

static struct script_topics *topics_of(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

/* The address text of a device id (or of the argument as written) and its function. */
static const char *target_of(lua_State *L, int idx, char *buf, size_t len, int *function)
{
	const struct script_state *st = script_state_of(L);
	const char *arg = luaL_checkstring(L, idx);
	const struct device_config *d = st->cfg ? config_find_device(st->cfg, arg) : NULL;

	*function = 0;
	if (!d) {
		for (const char *p = arg; *p; p++)
			if (*p == ';' || *p == ',' || (unsigned char)*p < 0x20)
				script_raise(L, "'%s' is neither a device id nor a Modbus address",
					     arg);
		return arg;
	}
	*function = d->function;
	if (d->transport == TRANSPORT_TCP)
		snprintf(buf, len, strchr(d->host, ':') ? "[%s]:%d/%d" : "%s:%d/%d", d->host,
			 d->port, d->slave);
	else
		snprintf(buf, len, "%s/%d", d->serial->name, d->slave);
	return buf;
}

/* Runs one command line; on failure pushes nil and the reason and returns 2, else 0. */
static int run_command(lua_State *L, const char *line, struct command_reply *rep)
{
	struct script_topics *t = topics_of(L);
	memset(rep, 0, sizeof(*rep));
	if (!t->io.command) {
		lua_pushnil(L);
		lua_pushliteral(L, "no Modbus access here");
		return 2;
	}
	t->io.command(t->io.ctx, line, rep);
	if (rep->ok && !rep->nomem)
		return 0;
	lua_pushnil(L);
	lua_pushstring(L, rep->nomem ? "out of memory" : rep->error);
	command_reply_clear(rep);
	return 2;
}

/* modbridge.read(device_or_address, register, count [, function]) -> {values} | nil, why */
static int sb_read(lua_State *L)
{
	char addr[300], line[400];
	int function;
	const char *target = target_of(L, 1, addr, sizeof(addr), &function);
	lua_Integer reg = luaL_checkinteger(L, 2), count = luaL_optinteger(L, 3, 1);
	function = (int)luaL_optinteger(L, 4, function ? function : 3);
	struct command_reply rep;

	snprintf(line, sizeof(line), "AT^MTXTUNNEL=GETMODBUS,%s;%lld;%lld;%d", target,
		 (long long)reg, (long long)count, function);
	if (run_command(L, line, &rep))
		return 2;
	lua_newtable(L);
	lua_Integer i = 0;
	for (const char *p = rep.lines; p && *p;) {
		char *end;
		long long v = strtoll(p, &end, 10);
		if (end == p)
			break;
		lua_pushinteger(L, v);
		lua_rawseti(L, -2, ++i);
		p = *end == ',' ? end + 1 : end;
	}
	command_reply_clear(&rep);
	return 1;
}

/* modbridge.write(device_or_address, register, value [, function]) -> true | nil, why */
static int sb_write(lua_State *L)
{
	char addr[300], line[400];
	int function;
	const char *target = target_of(L, 1, addr, sizeof(addr), &function);
	lua_Integer reg = luaL_checkinteger(L, 2), value;
	if (lua_isboolean(L, 3))
		value = lua_toboolean(L, 3);
	else
		value = luaL_checkinteger(L, 3);
	int dflt = function == 1 || function == 2 ? 5 : 6;
	function = (int)luaL_optinteger(L, 4, dflt);
	struct command_reply rep;

	snprintf(line, sizeof(line), "AT^MTXTUNNEL=SETMODBUS,%s;%lld;%lld;%d", target,
		 (long long)reg, (long long)value, function);
	if (run_command(L, line, &rep))
		return 2;
	command_reply_clear(&rep);
	lua_pushboolean(L, 1);
	return 1;
}

static int push_publish_error(lua_State *L, const char *fmt, const char *topic)
{
	lua_pushnil(L);
	lua_pushfstring(L, fmt, topic);
	return 2;
}

static int default_qos(lua_State *L)
{
	const struct config *cfg = script_state_of(L)->cfg;
	return cfg ? cfg->mqtt.qos : 1;
}

/* modbridge.publish(topic, payload [, qos [, retain]]) -> true | nil, why */
static int sb_publish(lua_State *L)
{
	struct script_topics *t = topics_of(L);
	const char *topic = luaL_checkstring(L, 1);
	int qos = (int)luaL_optinteger(L, 3, -1);
	bool retain = lua_toboolean(L, 4);
	size_t len;
	char *text = NULL;
	const char *payload;

	if (!topic_publishable(topic))
		return script_raise(L, "modbridge.publish: '%s' is not a topic to publish on (%s)",
				    topic, topic_publish_problem(topic));
	for (size_t i = 0; i < t->io.forbidden_count; i++)
		if (topic_matches(t->io.forbidden[i], topic))
			return script_raise(L,
					    "modbridge.publish: '%s' is the command, script, logger "
					    "or status topic %s",
					    topic, t->io.forbidden[i]);
	if (qos > 2)
		return script_raise(L, "modbridge.publish: qos must be 0, 1 or 2");
	if (lua_type(L, 2) == LUA_TTABLE)
		payload = text = script_json_text(L, 2, &len);
	else
		payload = luaL_checklstring(L, 2, &len);
	int rc = t->io.publish ? t->io.publish(t->io.ctx, topic, payload, len,
					       qos < 0 ? default_qos(L) : qos, retain)
			       : MB_ERR_MQTT;
	free(text);
	if (rc)
		return push_publish_error(L, "not published on %s (not connected to the broker?)",
					  topic);
	lua_pushboolean(L, 1);
	return 1;
}

static void add_bindings(lua_State *L, void *ctx)
{
	static const luaL_Reg fns[] = {
		{"read", sb_read},
		{"write", sb_write},
		{"publish", sb_publish},
		{NULL, NULL},
	};
	lua_pushlightuserdata(L, ctx);
	luaL_setfuncs(L, fns, 1);
}

struct call {
	const struct script_topic_message *msg;
};

static int run_on_message(lua_State *L)
{
	struct call *c = lua_touserdata(L, 1);
	script_push_entry(L);
	lua_pushstring(L, c->msg->topic);
	lua_pushlstring(L, c->msg->payload ? c->msg->payload : "", c->msg->len);
	lua_createtable(L, 0, 2);
	if (c->msg->response_topic) {
		lua_pushstring(L, c->msg->response_topic);
		lua_setfield(L, -2, "response_topic");
	}
	if (c->msg->correlation) {
		lua_pushlstring(L, c->msg->correlation, c->msg->correlation_len);
		lua_setfield(L, -2, "correlation");
	}
	lua_call(L, 3, 0);
	return 0;
}

int script_topics_new(const struct config *cfg, const struct script_io *io,
		      struct script_topics **out)
{
	const struct mqtt_config *m = &cfg->mqtt;
	char why[SCRIPT_ERROR_MAX];
	struct script_topics *t = calloc(1, sizeof(*t));
	if (!t)
		return MB_ERR_NOMEM;
	t->io = *io;
	t->states = calloc(m->script_topic_count ? m->script_topic_count : 1, sizeof(*t->states));
	if (!t->states) {
		free(t);
		return MB_ERR_NOMEM;
	}
	t->count = m->script_topic_count;
	for (size_t i = 0; i < t->count; i++) {
		t->states[i] = (struct script_state){
			.cfg = cfg,
			.name = m->script_topics[i].script,
			.source = m->script_topics[i].source,
			.len = m->script_topics[i].len,
			.entry = "on_message",
			.extra = add_bindings,
			.extra_ctx = t,
			.limits = script_default_limits(),
		};
		int rc = script_state_open(&t->states[i], why, sizeof(why));
		if (rc) {
			log_error("script %s: %s", m->script_topics[i].script, why);
			script_topics_free(t);
			return rc;
		}
	}
	*out = t;
	return 0;
}

int script_topic_run(struct script_topics *t, size_t index, const struct script_topic_message *msg,
		     char *why, size_t why_len)
{
	struct call c = {.msg = msg};
	if (index >= t->count)
		return MB_ERR_INVAL;
	return script_state_call(&t->states[index], run_on_message, &c, why, why_len);
}

void script_topics_free(struct script_topics *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++)
		script_state_close(&t->states[i]);
	free(t->states);
	free(t);
}
