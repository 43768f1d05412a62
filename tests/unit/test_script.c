/*
 * test_script.c - the Lua sandbox and bindings (script.h): every forbidden function, an
 * endless loop (also one that catches its own error), a memory bomb, errors at each stage
 * (compile, top level, missing function, run time, result), wrong return types, what
 * transform may return, `return msg` byte for byte, JSON both ways, and the topic
 * scripts' read/write/publish through a fake io.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "message.h"
#include "script.h"
#include "script_internal.h"

static struct block one_block[] = {{0, 4}};
static struct block two_blocks[] = {{10, 2}, {100, 4}};

static struct serial_port_config com1 = {.name = "com1", .device = "/dev/ttyS1"};

static struct device_config devices[] = {
	{
		.id = "plc1",
		.address_text = "1",
		.serial = &com1,
		.transport = TRANSPORT_RTU,
		.slave = 1,
		.function = 3,
		.blocks = one_block,
		.block_count = 1,
		.type = REG_TYPE_WORD,
	},
	{
		.id = "meter",
		.address_text = "10.0.0.5:502",
		.transport = TRANSPORT_TCP,
		.host = "10.0.0.5",
		.port = 502,
		.slave = 7,
		.function = 4,
		.blocks = two_blocks,
		.block_count = 2,
		.type = REG_TYPE_FLOAT32,
	},
};

static const struct message_context mctx = {
	.imei = "357299070082380",
	.logger_id = "ID-1234",
	.time_format = TIME_ISO8601,
};

static struct config make_config(const char *source)
{
	struct config cfg = {0};
	cfg.imei = "357299070082380";
	cfg.devices = devices;
	cfg.device_count = 2;
	cfg.logger.id = "ID-1234";
	cfg.logger.topic = "[IMEI]/logger";
	cfg.logger.script = "t.lua";
	cfg.logger.script_source = (char *)source;
	cfg.logger.script_len = strlen(source);
	cfg.mqtt.qos = 1;
	cfg.mqtt.status_topic = "[IMEI]/status";
	cfg.mqtt.at_topics[0] = (struct at_topic_pair){"[IMEI]/AT", "[IMEI]/ATR"};
	cfg.mqtt.at_topic_count = 1;
	return cfg;
}

static uint16_t word_values[] = {215, 1013, 0, 65535};

static struct reading word_reading(void)
{
	return (struct reading){
		.device = &devices[0],
		.ts_ms = 1657879741000LL,
		.values = word_values,
		.value_count = 4,
	};
}

/* Runs transform on r; returns rc; out filled. */
static int run(const char *source, const struct reading *r, struct script_output *out, char *why)
{
	struct config cfg = make_config(source);
	struct script_transformer *t = NULL;
	int rc = script_transformer_new(&cfg, &mctx, 2, &t);
	if (rc)
		return rc;
	rc = script_transform(t, r, out, why, SCRIPT_ERROR_MAX);
	script_transformer_free(t);
	return rc;
}

static void expect_error(const char *source, const char *want)
{
	struct reading r = word_reading();
	struct script_output out = {0};
	char why[SCRIPT_ERROR_MAX] = "";
	int rc = run(source, &r, &out, why);
	assert_int_equal(rc, MB_ERR_SCRIPT);
	assert_int_equal(out.count, 0);
	if (!strstr(why, want))
		fail_msg("error '%s' does not contain '%s'", why, want);
}

static void expect_check_error(const char *source, const char *want)
{
	struct config cfg = make_config(source);
	char why[SCRIPT_ERROR_MAX] = "";
	int rc = script_check(&cfg, "t.lua", source, strlen(source), "transform", NULL, why,
			      sizeof(why));
	assert_int_equal(rc, MB_ERR_SCRIPT);
	if (!strstr(why, want))
		fail_msg("check error '%s' does not contain '%s'", why, want);
}

static char *one_payload(const char *source, const struct reading *r)
{
	struct script_output out = {0};
	char why[SCRIPT_ERROR_MAX] = "";
	int rc = run(source, r, &out, why);
	if (rc || out.count != 1 || !out.items) {
		fail_msg("script failed (%d messages): %s", (int)out.count, why);
		return NULL;
	}
	assert_null(out.items[0].topic);
	char *p = strdup(out.items[0].payload);
	script_output_clear(&out);
	return p;
}

/* ------------------------------------------------------------------ the sandbox */

static void test_forbidden_functions(void **state)
{
	static const char *const forbidden[] = {
		"io",        "os.execute",  "os.exit",    "os.getenv",
		"os.remove", "os.rename",   "os.tmpname", "os.setlocale",
		"require",   "package",     "debug",      "dofile",
		"loadfile",  "string.dump", "coroutine",  "collectgarbage_stop",
	};
	char src[256];
	(void)state;
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		if (!strcmp(forbidden[i], "collectgarbage_stop")) {
			expect_error("function transform(m) collectgarbage('stop') return m end",
				     "bad argument #1 to 'collectgarbage'");
			continue;
		}
		snprintf(src, sizeof(src),
			 "function transform(m)\n  assert(%s == nil, '%s is there')\n  return m end",
			 forbidden[i], forbidden[i]);
		struct reading r = word_reading();
		char *p = one_payload(src, &r);
		free(p);
	}
	/* Calling them fails with the script's line. */
	expect_error("function transform(m)\n  io.open('/etc/passwd')\nend",
		     "t.lua:2: attempt to index a nil value (global 'io')");
	expect_error("function transform(m)\n\n  os.execute('true')\nend",
		     "t.lua:3: attempt to call a nil value (field 'execute')");
	expect_error("function transform(m) require('os') end", "attempt to call a nil value");
	/* What stays: os.time/date/clock, string, table, math, utf8. */
	struct reading r = word_reading();
	char *p =
		one_payload("function transform(m) return { t = os.time() > 0, d = "
			    "os.date('!%Y', 0), c = os.clock() >= 0, u = utf8.char(228), "
			    "s = ('x'):rep(3), f = math.floor(2.5), n = table.concat({1,2}, '-') } "
			    "end",
			    &r);
	assert_string_equal(p, "{\"c\":true,\"d\":\"1970\",\"f\":2,\"n\":\"1-2\",\"s\":\"xxx\","
			       "\"t\":true,\"u\":\"\xc3\xa4\"}");
	free(p);
}

static void test_load_text_only(void **state)
{
	(void)state;
	struct reading r = word_reading();
	/* Text chunks load; bytecode (the signature "\27Lua") is refused. */
	char *p =
		one_payload("function transform(m) return { v = load('return 1 + 1')() } end", &r);
	assert_string_equal(p, "{\"v\":2}");
	free(p);
	p = one_payload("function transform(m)\n"
			"  local f, err = load('\\27Lua\\84\\0', 'x', 'b')\n"
			"  return { f = f == nil, e = err ~= nil }\nend",
			&r);
	assert_string_equal(p, "{\"e\":true,\"f\":true}");
	free(p);
	expect_error("function transform(m) setmetatable({}, { __gc = function() end }) end",
		     "__gc (finalizers) is not allowed");
}

static void test_endless_loop(void **state)
{
	(void)state;
	expect_error("function transform(m)\n  while true do end\nend",
		     "t.lua:2: stopped: the call ran more than 1000000 instructions");
	/* A script that catches the error still cannot go on. */
	expect_error("function transform(m)\n  while true do\n    pcall(function() while true do "
		     "end end)\n  end\nend",
		     "stopped: the call ran more than");
	/* Nor at its top level: that is a check error. */
	expect_check_error("while true do end\nfunction transform(m) end", "stopped");
	/* The next call has a fresh budget. */
	struct config cfg = make_config("n = 0\nfunction transform(m)\n  n = n + 1\n"
					"  if n == 1 then while true do end end\n  return m\nend");
	struct script_transformer *t = NULL;
	assert_int_equal(script_transformer_new(&cfg, &mctx, 1, &t), 0);
	struct reading r = word_reading();
	struct script_output out = {0};
	char why[SCRIPT_ERROR_MAX];
	assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), MB_ERR_SCRIPT);
	assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), 0);
	assert_int_equal(out.count, 1);
	script_output_clear(&out);
	script_transformer_free(t);
}

static void test_memory_bomb(void **state)
{
	(void)state;
	expect_error("function transform(m)\n  local t = {}\n  for i = 1, 1e9 do t[i] = "
		     "('x'):rep(100) .. i end\nend",
		     "stopped: out of memory");
	expect_error("function transform(m)\n  return ('x'):rep(1e9)\nend", "out of memory");
	/* A state whose own data fills its cap is started afresh: later calls work. */
	struct config cfg = make_config("keep = {}\nfunction transform(m)\n"
					"  if m.V[1] == 215 then\n"
					"    for i = 1, 1e9 do keep[i] = ('y'):rep(64) .. i end\n"
					"  end\n  return { n = #keep }\nend");
	struct script_transformer *t = NULL;
	assert_int_equal(script_transformer_new(&cfg, &mctx, 1, &t), 0);
	struct reading r = word_reading();
	struct script_output out = {0};
	char why[SCRIPT_ERROR_MAX];
	assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), MB_ERR_SCRIPT);
	assert_non_null(strstr(why, "t.lua:4: stopped: out of memory"));
	uint16_t other[] = {1, 2, 3, 4};
	r.values = other;
	assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), 0);
	assert_string_equal(out.items[0].payload, "{\"n\":0}");
	script_output_clear(&out);
	assert_true(script_transformer_memory(t) < 1024 * 1024);
	script_transformer_free(t);
}

/* ------------------------------------------------------------------ errors at each stage */

static void test_errors_at_each_stage(void **state)
{
	(void)state;
	expect_check_error("function transform(m)\n  return = 1\nend",
			   "t.lua:2: unexpected symbol near '='");
	expect_check_error("local x = nil\nx.y = 1\nfunction transform(m) end",
			   "t.lua:2: attempt to index a nil value (local 'x')");
	expect_check_error("function transfrom(m) end",
			   "t.lua: does not define the function transform");
	expect_check_error("transform = 42", "does not define the function transform");
	expect_check_error("error({code = 1})", "t.lua:1: (error object is a table value)");
	/* Run time: the line of the failure. */
	expect_error("function transform(m)\n  local x = m.nothing.deeper\nend",
		     "t.lua:2: attempt to index a nil value (field 'nothing')");
	expect_error("function transform(m)\n  error('custom')\nend", "t.lua:2: custom");
	expect_error("function transform(m)\n  error('no position', 0)\nend",
		     "t.lua:2: no position");
	/* Endless recursion: the Lua stack meets the memory cap first. */
	expect_error("function transform(m)\n  local function f() return f() + 1 end\n  f()\nend",
		     "t.lua:2: stopped: out of memory");
	/* Values JSON cannot hold, named with the line of the function that returned them. */
	expect_error("\nfunction transform(m)\n  return { f = print }\nend",
		     "t.lua:2: a function cannot be encoded as JSON");
	expect_error("function transform(m)\n  local t = {}\n  t.self = t\n  return t\nend",
		     "nested more than 32 deep (or contains itself)");
	expect_error("function transform(m) return { [true] = 1 } end",
		     "a table key is boolean; JSON object keys are strings");
	expect_error("function transform(m) return { s = '\\xff' } end", "not valid UTF-8");
	expect_error("function transform(m) return modbridge.message(m, 'a/+/b') end",
		     "'a/+/b' is not a topic a message can be published on");
	expect_error("function transform(m) return modbridge.message(m, "
		     "'357299070082380/AT') end",
		     "may not go to '357299070082380/AT'");
	expect_error("function transform(m) return modbridge.message(42) end",
		     "the payload must be a table or a string, not number");
}

/* A destination is a topic in mqtt mode only: in http mode a path (the uplink encodes
 * it), in ftp mode ignored by the uplink; empty in none. */
static void test_destinations_by_mode(void **state)
{
	(void)state;
	static const char *const src =
		"function transform(m) return modbridge.message('x', '/a/+/b c#1') end";
	for (int mode = LOGGER_HTTP; mode <= LOGGER_FTP; mode++) {
		struct config cfg = make_config(src);
		cfg.logger.mode = (enum logger_mode)mode;
		struct script_transformer *t = NULL;
		struct reading r = word_reading();
		struct script_output out = {0};
		char why[SCRIPT_ERROR_MAX] = "";
		assert_int_equal(script_transformer_new(&cfg, &mctx, 1, &t), 0);
		assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), 0);
		assert_int_equal(out.count, 1);
		assert_string_equal(out.items[0].topic, "/a/+/b c#1");
		assert_string_equal(out.items[0].payload, "x");
		script_output_clear(&out);
		/* The same script is refused in mqtt mode. */
		cfg.logger.mode = LOGGER_MQTT;
		script_transformer_free(t);
		t = NULL;
		assert_int_equal(script_transformer_new(&cfg, &mctx, 1, &t), 0);
		assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), MB_ERR_SCRIPT);
		assert_non_null(strstr(why, "is not a topic a message can be published on"));
		script_transformer_free(t);
	}
	expect_error("function transform(m) return modbridge.message(m, '') end",
		     "a message's own destination must not be empty");
}

static void test_wrong_return_types(void **state)
{
	(void)state;
	expect_error("function transform(m) return 42 end",
		     "t.lua:1: transform returned number; expected a table, a string, a list of "
		     "them, or nil");
	expect_error("function transform(m) return true end", "transform returned boolean");
	expect_error("function transform(m) return print end", "transform returned function");
	expect_error("function transform(m) return { 'a', 2 } end",
		     "transform returned a list whose element 2 is number");
	expect_error("function transform(m) return { {}, true } end", "element 2 is boolean");
}

/* ------------------------------------------------------------------ results */

static void test_return_msg_is_the_default(void **state)
{
	(void)state;
	struct reading r = word_reading();
	char *want = message_encode(&r, &mctx);
	char *got = one_payload("function transform(msg) return msg end", &r);
	assert_string_equal(got, want);
	free(got);
	free(want);

	/* Several blocks, float32 values (0.1f stays 0.1), and an ERR reading. */
	struct decoded_value dv[3] = {
		{.kind = DECODED_FLOAT32, .v.f = (double)0.1f},
		{.kind = DECODED_FLOAT32, .v.f = (double)-2.5f},
		{.kind = DECODED_FLOAT32, .v.f = (double)1e-7f},
	};
	uint16_t regs[6] = {0};
	struct reading t = {
		.device = &devices[1],
		.ts_ms = 1657879741000LL,
		.values = regs,
		.value_count = 6,
		.decoded = dv,
		.decoded_count = 3,
	};
	want = message_encode(&t, &mctx);
	got = one_payload("function transform(msg) return msg end", &t);
	assert_string_equal(got, want);
	assert_non_null(strstr(got, "\"V\":[0.1,-2.5,1e-07]"));
	free(got);
	free(want);
	struct reading e = word_reading();
	snprintf(e.error, sizeof(e.error), "timeout");
	want = message_encode(&e, &mctx);
	got = one_payload("function transform(msg) return msg end", &e);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void test_msg_extras(void **state)
{
	(void)state;
	uint16_t regs[6] = {1, 2, 3, 4, 5, 6};
	struct decoded_value dv[3] = {
		{.kind = DECODED_FLOAT32, .v.f = 1.5},
		{.kind = DECODED_FLOAT32, .v.f = 2.5},
		{.kind = DECODED_FLOAT32, .v.f = 3.5},
	};
	struct reading t = {
		.device = &devices[1],
		.ts_ms = 1657879741000LL,
		.values = regs,
		.value_count = 6,
		.decoded = dv,
		.decoded_count = 3,
	};
	char *got = one_payload(
		"function transform(m)\n"
		"  local out = { device = m.device, ms = m.time_ms, regs = #m.registers }\n"
		"  for _, b in ipairs(m.blocks) do\n"
		"    for i, v in ipairs(b.values) do out['r' .. (b.start + (i - 1) * b.width)] = v end\n"
		"  end\n"
		"  local n = 0\n  for k in pairs(m) do n = n + 1 end\n  out.members = n\n"
		"  return out\nend",
		&t);
	/* Members: IMEI TYPE TS ID A STX NX PX V P = 10; the extras are not among them. */
	assert_string_equal(got, "{\"device\":\"meter\",\"members\":10,\"ms\":1657879741000,"
				 "\"r10\":1.5,\"r100\":2.5,\"r102\":3.5,\"regs\":6}");
	free(got);
}

static void test_what_transform_returns(void **state)
{
	(void)state;
	struct reading r = word_reading();
	struct script_output out = {0};
	char why[SCRIPT_ERROR_MAX];

	/* nil and an empty list: dropped. */
	assert_int_equal(run("function transform(m) return nil end", &r, &out, why), 0);
	assert_int_equal(out.count, 0);
	assert_int_equal(run("function transform(m) return {} end", &r, &out, why), 0);
	assert_int_equal(out.count, 0);
	/* A string as it is; a list of tables, strings and messages with topics. */
	assert_int_equal(run("function transform(m)\n"
			     "  return { 'raw text', { a = 1 }, modbridge.message('x', 'ha/s'),\n"
			     "    modbridge.message({ b = { 1, 2 } }, 'tb/t') }\nend",
			     &r, &out, why),
			 0);
	assert_int_equal(out.count, 4);
	if (!out.items)
		return;
	assert_string_equal(out.items[0].payload, "raw text");
	assert_null(out.items[0].topic);
	assert_string_equal(out.items[1].payload, "{\"a\":1}");
	assert_string_equal(out.items[2].payload, "x");
	assert_string_equal(out.items[2].topic, "ha/s");
	assert_string_equal(out.items[3].payload, "{\"b\":[1,2]}");
	assert_string_equal(out.items[3].topic, "tb/t");
	script_output_clear(&out);
	/* A JSON array as one message: modbridge.array. */
	char *p = one_payload("function transform(m) return modbridge.array({ 1, 2.5, 'x' }) end",
			      &r);
	assert_string_equal(p, "[1,2.5,\"x\"]");
	free(p);
	p = one_payload("function transform(m) return { e = modbridge.array(), o = {}, "
			"q = 'a\"b\\\\c\\n\\1', big = 2^53, r = 1/3, i = 3.0 } end",
			&r);
	assert_string_equal(p, "{\"big\":9007199254740992.0,\"e\":[],\"i\":3.0,\"o\":{},"
			       "\"q\":\"a\\\"b\\\\c\\n\\u0001\",\"r\":0.3333333333333333}");
	free(p);
	/* Key order: the router's members first, the rest by name. */
	p = one_payload("function transform(m) return { z = 1, P = 'p', a = 2, V = {}, ID = 'x', "
			"[5] = 'five' } end",
			&r);
	assert_string_equal(p,
			    "{\"ID\":\"x\",\"V\":{},\"P\":\"p\",\"5\":\"five\",\"a\":2,\"z\":1}");
	free(p);
}

static void test_state_persists_per_device(void **state)
{
	(void)state;
	/* Report by exception: only what changed. Two devices, two states (2 in the pool). */
	struct config cfg = make_config("function transform(m)\n"
					"  local last = modbridge.state[m.ID]\n"
					"  modbridge.state[m.ID] = m.V[1]\n"
					"  if last == m.V[1] then return nil end\n"
					"  return { id = m.ID, v = m.V[1] }\nend");
	struct script_transformer *t = NULL;
	assert_int_equal(script_transformer_new(&cfg, &mctx, 2, &t), 0);
	struct reading r = word_reading();
	struct script_output out = {0};
	char why[SCRIPT_ERROR_MAX];
	assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), 0);
	assert_int_equal(out.count, 1);
	script_output_clear(&out);
	assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), 0);
	assert_int_equal(out.count, 0);
	uint16_t changed[] = {216, 0, 0, 0};
	r.values = changed;
	assert_int_equal(script_transform(t, &r, &out, why, sizeof(why)), 0);
	assert_int_equal(out.count, 1);
	assert_string_equal(out.items[0].payload, "{\"id\":\"plc1\",\"v\":216}");
	script_output_clear(&out);
	assert_true(script_transformer_memory(t) > 0);
	script_transformer_free(t);
}

static void test_config_and_log(void **state)
{
	(void)state;
	struct reading r = word_reading();
	char *p = one_payload(
		"modbridge.log('info', 'loaded', 1, true)\nprint('hello')\n"
		"function transform(m)\n"
		"  local d = modbridge.config('device.meter')\n"
		"  return { imei = modbridge.config('imei'), topic = modbridge.config('logger.topic'),\n"
		"    qos = modbridge.config('mqtt.qos'), devices = modbridge.config('devices'),\n"
		"    meter = d.address .. ' ' .. d.slave .. ' ' .. d.type .. ' ' .. #d.blocks,\n"
		"    password = modbridge.config('mqtt.password') == nil }\nend",
		&r);
	assert_string_equal(p, "{\"devices\":[\"plc1\",\"meter\"],\"imei\":\"357299070082380\","
			       "\"meter\":\"10.0.0.5:502 7 float32 2\",\"password\":true,\"qos\":1,"
			       "\"topic\":\"357299070082380/logger\"}");
	free(p);
	expect_error("function transform(m) modbridge.log('loud', 'x') end",
		     "bad argument #1 to 'log' (invalid option 'loud')");
}

static void test_json_both_ways(void **state)
{
	(void)state;
	struct reading r = word_reading();
	char *p = one_payload(
		"function transform(m)\n"
		"  local v = modbridge.json_decode('{\"a\":[1,2.5,\"x\\\\u00e4\\\\ud83d\\\\ude00\"],"
		"\"b\":{\"c\":null,\"d\":true},\"e\":-0.0,\"f\":12345678901234}')\n"
		"  local bad, err = modbridge.json_decode('{\"a\":}')\n"
		"  return { a2 = v.a[2], a3 = v.a[3], d = v.b.d, c = v.b.c == nil, f = v.f,\n"
		"    bad = bad == nil, err = err, text = modbridge.json_encode({ 1, { k = 'v' } }) }\n"
		"end",
		&r);
	assert_string_equal(
		p,
		"{\"a2\":2.5,\"a3\":\"x\xc3\xa4\xf0\x9f\x98\x80\",\"bad\":true,"
		"\"c\":true,\"d\":true,\"err\":\"invalid JSON: unexpected token near '}' at line 1, "
		"column 6\","
		"\"f\":12345678901234,\"text\":\"[1,{\\\"k\\\":\\\"v\\\"}]\"}");
	free(p);
	expect_error("function transform(m)\n  return modbridge.json_encode({ f = print })\nend",
		     "t.lua:2: a function cannot be encoded as JSON");
}

/* Decoding edges: scalars at the top, NUL inside strings and keys, null in arrays and
 * objects, depth bound, invalid UTF-8, trailing text. */
static void test_json_decode_edges(void **state)
{
	(void)state;
	struct reading r = word_reading();
	char *p = one_payload(
		"function transform(m)\n"
		"  local deep = string.rep('[', 100) .. string.rep(']', 100)\n"
		"  local d, derr = modbridge.json_decode(deep)\n"
		"  local a = modbridge.json_decode('[1,null,3]')\n"
		"  local o = modbridge.json_decode('{\"k\":null,\"ab\":\"x\\\\u0000y\"}')\n"
		"  local _, uerr = modbridge.json_decode('\"\\255\"')\n"
		"  local _, terr = modbridge.json_decode('1 2')\n"
		"  local _, kerr = modbridge.json_decode('{\"a\\\\u0000b\":1}')\n"
		"  local n = 0\n"
		"  for _ in pairs(o) do n = n + 1 end\n"
		"  return { s = modbridge.json_decode('\"t\"'), i = modbridge.json_decode('7'),\n"
		"    deep = d == nil, derr = derr, a1 = a[1], a2 = a[2] == nil, a3 = a[3], n = n,\n"
		"    nul = #o.ab, u = uerr ~= nil, t = terr ~= nil, k = kerr ~= nil }\n"
		"end",
		&r);
	assert_string_equal(p,
			    "{\"a1\":1,\"a2\":true,\"a3\":3,\"deep\":true,"
			    "\"derr\":\"invalid JSON: nested too deep\",\"i\":7,\"k\":true,\"n\":1,"
			    "\"nul\":3,\"s\":\"t\",\"t\":true,\"u\":true}");
	free(p);
}

/* The reference the fast real formatting must equal: the first of %.15g, %.16g, %.17g
 * that reads back, with ".0" when it has neither '.' nor an exponent. */
static void reference_real(double d, char *text)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(text, 40, "%.*g", prec, d);
		if (strtod(text, NULL) == d)
			break;
	}
	if (!strpbrk(text, ".eEn"))
		strcat(text, ".0");
}

static void check_real(double d)
{
	char got[48], want[48];
	script_json_real(d, got);
	reference_real(d, want);
	if (strcmp(got, want) != 0)
		fail_msg("%.17g: got %s, want %s", d, got, want);
}

static void test_real_formatting(void **state)
{
	(void)state;
	static const double fixed[] = {0.1,
				       0.2,
				       0.3,
				       0.1 + 0.2,
				       1.0,
				       -0.0,
				       0.0,
				       20.1 - 40,
				       1e-4,
				       9.9999999999999e-5,
				       1e15,
				       999999999999999.9,
				       123456789012345.6,
				       0.30000000000000004,
				       5e-324,
				       1e300,
				       4503599627370496.0,
				       2.2250738585072014e-308,
				       1.0 / 3};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		check_real(fixed[i]);
		check_real(-fixed[i]);
	}
	/* Scaled register values, and random doubles across the fast path's range. */
	for (int v = 0; v < 65536; v++) {
		check_real(v * 0.1 - 40);
		check_real(v * 0.01);
		check_real(v / 3.0);
	}
	uint64_t x = 0x9E3779B97F4A7C15ULL;
	for (int i = 0; i < 300000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double d = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
		double scale = pow(10.0, (double)(int)(x % 21) - 5);
		check_real(d * scale);
		double bits;
		uint64_t raw = x;
		memcpy(&bits, &raw, sizeof(bits));
		if (isfinite(bits))
			check_real(bits);
	}
}

static void test_script_error_message(void **state)
{
	(void)state;
	/* What the daemon stores when the script fails: the default, V kept, ERR naming it. */
	struct reading r = word_reading();
	char *json = message_encode_script_error(&r, &mctx, "t.lua:2: boom");
	assert_non_null(strstr(json, "\"V\":[215,1013,0,65535],\"ERR\":\"script t.lua:2: boom\","
				     "\"P\":\"ID-1234\"}"));
	free(json);
	snprintf(r.error, sizeof(r.error), "timeout");
	json = message_encode_script_error(&r, &mctx, "t.lua:2: boom");
	assert_non_null(strstr(json, "\"ERR\":\"timeout; script t.lua:2: boom\""));
	assert_null(strstr(json, "\"V\""));
	free(json);
}

/* ------------------------------------------------------------------ topic scripts */

struct fake_io {
	char lines[8][200];
	int nlines;
	char topics[8][100];
	char payloads[8][200];
	int qos[8];
	bool retain[8];
	int npub;
	bool allow_writes;
};

static int fake_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos,
			bool retain)
{
	struct fake_io *f = ctx;
	snprintf(f->topics[f->npub], sizeof(f->topics[0]), "%s", topic);
	snprintf(f->payloads[f->npub], sizeof(f->payloads[0]), "%.*s", (int)len,
		 (const char *)payload);
	f->qos[f->npub] = qos;
	f->retain[f->npub] = retain;
	f->npub++;
	return 0;
}

static void fake_command(void *ctx, const char *line, struct command_reply *reply)
{
	struct fake_io *f = ctx;
	snprintf(f->lines[f->nlines++], sizeof(f->lines[0]), "%s", line);
	memset(reply, 0, sizeof(*reply));
	if (strstr(line, "SETMODBUS") && !f->allow_writes) {
		snprintf(reply->error, sizeof(reply->error), "writes are not allowed");
		return;
	}
	reply->ok = true;
	if (strstr(line, "GETMODBUS")) {
		reply->lines = strdup("215,1013");
		reply->lines_len = strlen(reply->lines);
	}
}

static int run_topic(const char *source, struct fake_io *f, const char *payload, char *why)
{
	struct config cfg = make_config("function transform(m) end");
	cfg.mqtt.script_topics[0] = (struct script_topic_config){
		.topic = "[IMEI]/read",
		.script = "topic.lua",
		.source = (char *)source,
		.len = strlen(source),
	};
	cfg.mqtt.script_topic_count = 1;
	static const char *const forbidden[] = {"357299070082380/AT", "357299070082380/read"};
	struct script_io io = {
		.publish = fake_publish,
		.command = fake_command,
		.forbidden = forbidden,
		.forbidden_count = 2,
		.ctx = f,
	};
	struct script_topics *t = NULL;
	int rc = script_topics_new(&cfg, &io, &t);
	if (rc)
		return rc;
	struct script_topic_message msg = {
		.topic = "357299070082380/read",
		.payload = payload,
		.len = strlen(payload),
		.response_topic = "reply/here",
		.correlation = "c1",
		.correlation_len = 2,
	};
	rc = script_topic_run(t, 0, &msg, why, SCRIPT_ERROR_MAX);
	script_topics_free(t);
	return rc;
}

static void test_topic_read_and_answer(void **state)
{
	(void)state;
	struct fake_io f = {0};
	char why[SCRIPT_ERROR_MAX] = "";
	int rc =
		run_topic("function on_message(topic, payload, props)\n"
			  "  local req = modbridge.json_decode(payload)\n"
			  "  local v, err = modbridge.read(req.device, req.register, req.count)\n"
			  "  modbridge.publish(props.response_topic, { values = v, topic = topic,\n"
			  "    corr = props.correlation }, 0, true)\n"
			  "  local ok, werr = modbridge.write('plc1', 5, 1)\n"
			  "  modbridge.publish('answers/write', tostring(ok) .. ' ' .. tostring(werr))\n"
			  "  modbridge.read('10.0.0.5:502/7', 3, 1, 4)\n"
			  "  modbridge.write('meter', 9, true)\nend",
			  &f, "{\"device\":\"plc1\",\"register\":0,\"count\":2}", why);
	if (rc)
		fail_msg("%s", why);
	assert_int_equal(f.nlines, 4);
	assert_string_equal(f.lines[0], "AT^MTXTUNNEL=GETMODBUS,com1/1;0;2;3");
	assert_string_equal(f.lines[1], "AT^MTXTUNNEL=SETMODBUS,com1/1;5;1;6");
	assert_string_equal(f.lines[2], "AT^MTXTUNNEL=GETMODBUS,10.0.0.5:502/7;3;1;4");
	assert_string_equal(f.lines[3], "AT^MTXTUNNEL=SETMODBUS,10.0.0.5:502/7;9;1;6");
	assert_int_equal(f.npub, 2);
	assert_string_equal(f.topics[0], "reply/here");
	assert_string_equal(
		f.payloads[0],
		"{\"corr\":\"c1\",\"topic\":\"357299070082380/read\",\"values\":[215,1013]}");
	assert_int_equal(f.qos[0], 0);
	assert_true(f.retain[0]);
	assert_string_equal(f.payloads[1], "nil writes are not allowed");
	assert_int_equal(f.qos[1], 1); /* mqtt.qos */
	assert_false(f.retain[1]);
}

static void test_topic_refusals(void **state)
{
	(void)state;
	struct fake_io f = {0};
	char why[SCRIPT_ERROR_MAX] = "";
	assert_int_equal(run_topic("function on_message(t, p)\n"
				   "  modbridge.publish('357299070082380/AT', 'AT+CSQ')\nend",
				   &f, "", why),
			 MB_ERR_SCRIPT);
	assert_non_null(strstr(why, "topic.lua:2: modbridge.publish: '357299070082380/AT' is "
				    "the command, script, logger or status topic"));
	assert_int_equal(run_topic("function on_message(t, p)\n"
				   "  modbridge.publish('357299070082380/read', 'again')\nend",
				   &f, "", why),
			 MB_ERR_SCRIPT);
	assert_int_equal(run_topic("function on_message(t, p)\n  modbridge.read('x;y', 1, 1)\nend",
				   &f, "", why),
			 MB_ERR_SCRIPT);
	assert_non_null(strstr(why, "neither a device id nor a Modbus address"));
	assert_int_equal(f.npub, 0);
	assert_int_equal(f.nlines, 0);
	assert_int_equal(run_topic("function on_message(t, p) while true do end end", &f, "", why),
			 MB_ERR_SCRIPT);
	assert_non_null(strstr(why, "stopped"));
	/* The entry is on_message for topic scripts. */
	assert_int_equal(run_topic("function transform(t, p) end", &f, "", why), MB_ERR_SCRIPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_functions),
		cmocka_unit_test(test_destinations_by_mode),
		cmocka_unit_test(test_load_text_only),
		cmocka_unit_test(test_endless_loop),
		cmocka_unit_test(test_memory_bomb),
		cmocka_unit_test(test_errors_at_each_stage),
		cmocka_unit_test(test_wrong_return_types),
		cmocka_unit_test(test_return_msg_is_the_default),
		cmocka_unit_test(test_msg_extras),
		cmocka_unit_test(test_what_transform_returns),
		cmocka_unit_test(test_state_persists_per_device),
		cmocka_unit_test(test_config_and_log),
		cmocka_unit_test(test_json_both_ways),
		cmocka_unit_test(test_json_decode_edges),
		cmocka_unit_test(test_real_formatting),
		cmocka_unit_test(test_script_error_message),
		cmocka_unit_test(test_topic_read_and_answer),
		cmocka_unit_test(test_topic_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
