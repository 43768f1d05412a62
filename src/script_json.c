/*
 * script_json.c - Lua values <-> JSON text for scripts; see script_internal.h.
 *
 * Encoding is ours rather than jansson's (which lives behind message.c): a Lua table has
 * no key order, and the order is part of our contract (servers written for the router
 * parse by position), so objects put the router's members first in the router's order and
 * every other key after them in byte order. With the same escaping and number forms as the
 * default encoder (jansson's escapes; integers in decimal; reals as the shortest text that
 * reads back the same, always with '.' or an exponent), `return msg` gives exactly the
 * bytes of the message without a script.
 *
 * Decoding is jansson's, reached through message.h (the module that owns jansson), with a
 * depth bound; null becomes nil (so it leaves a hole in an array, and drops an object
 * member).
 */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "error.h"
#include "message.h"
#include "script_internal.h"

#define JSON_DEPTH_MAX 32

static const char *const router_order[] = {
	"IMEI", "TYPE", "TS", "ID", "A", "ST", "N", "STX", "NX", "PX", "V", "ERR", "P",
};
#define ROUTER_KEYS (sizeof(router_order) / sizeof(router_order[0]))

struct key {
	const char *s; /* a string key: its text, in the table */
	size_t len;
	int rank;
	int slot; /* the value's index on the Lua stack */
	bool is_int;
	lua_Integer i;
	char num[24]; /* an integer key's text */
};

static int rank_of(const char *s, size_t len)
{
	if (len > 4 || s[0] < 'A' || s[0] > 'Z') /* the router's are short and upper case */
		return (int)ROUTER_KEYS;
	for (size_t i = 0; i < ROUTER_KEYS; i++)
		if (!strcmp(s, router_order[i]))
			return (int)i;
	return (int)ROUTER_KEYS;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	unsigned cp = c & (0x3F >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static void encode_string(lua_State *L, const char *s, size_t n, struct script_buf *b)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = 0, plain = 0;
	/* Most keys and texts need no escape and are ASCII: one copy. */
	while (plain < n && u[plain] >= 0x20 && u[plain] < 0x80 && u[plain] != '"' &&
	       u[plain] != '\\')
		plain++;
	if (plain == n) {
		script_buf_add(b, "\"", 1);
		script_buf_add(b, s, n);
		script_buf_add(b, "\"", 1);
		return;
	}
	script_buf_add(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		const char *esc = NULL;
		char hex[8];
		if (c >= 0x80) {
			size_t k = utf8_seq(u + i, n - i);
			if (!k)
				script_raise(L,
					     "a string is not valid UTF-8 (byte %zu); JSON needs UTF-8",
					     i + 1);
			i += k;
			continue;
		}
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20) {
				snprintf(hex, sizeof(hex), "\\u%04X", c);
				esc = hex;
			}
		}
		if (esc) {
			script_buf_add(b, s + start, i - start);
			script_buf_add(b, esc, strlen(esc));
			start = i + 1;
		}
		i++;
	}
	script_buf_add(b, s + start, n - start);
	script_buf_add(b, "\"", 1);
}

/*
 * The shortest decimal that reads back as d, for 1e-4 <= |d| < 1e15, in integers: the same
 * text as the general path below (the correctly rounded %.15g, %.16g or %.17g, whichever
 * is the first to read back), at a fraction of its cost (it showed as a third of a
 * scaling script's time). d = M * 2^-F exactly; every decimal strictly inside the
 * rounding interval (d - ulp/2, d + ulp/2), or on its ends when M is even (round half to
 * even), reads back as d. For k = 0, 1, ... fraction digits, the integers m in
 * [lo, hi] = the interval * 10^k are the k-digit decimals that read back; the first k with
 * one wins (the fewest digits), and among its candidates the one nearest d * 10^k (the
 * correctly rounded one, as printf's). Bounds are scaled by 4 for the narrower lower half
 * of an interval at a power of two. Products stay below 2^112. Returns the length of the
 * text (fixed notation, with ".0" when there is no fraction), or 0 outside the range.
 */
struct real_parts {
	uint64_t M;      /* the value is M * 2^-F */
	int F;           /* 3..66 in the fast path's range */
	uint64_t lo_off; /* 1 at a power of two (a narrower lower half), else 2 */
	bool even;
};

/* The k-digit candidate nearest the value into *m, when the rounding interval scaled by
 * 10^k holds an integer. */
static bool candidate(const struct real_parts *p, int k, uint64_t *m)
{
	static const uint64_t pow10[] = {1ULL,
					 10ULL,
					 100ULL,
					 1000ULL,
					 10000ULL,
					 100000ULL,
					 1000000ULL,
					 10000000ULL,
					 100000000ULL,
					 1000000000ULL,
					 10000000000ULL,
					 100000000000ULL,
					 1000000000000ULL,
					 10000000000000ULL,
					 100000000000000ULL,
					 1000000000000000ULL,
					 10000000000000000ULL,
					 100000000000000000ULL};
	unsigned __int128 pow = pow10[k];
	int sh = p->F + 2;
	unsigned __int128 mask = ((unsigned __int128)1 << sh) - 1;
	unsigned __int128 lo_n = (unsigned __int128)(4 * p->M - p->lo_off) * pow;
	unsigned __int128 hi_n = (unsigned __int128)(4 * p->M + 2) * pow;
	unsigned __int128 lo = lo_n >> sh, hi = hi_n >> sh;
	if ((lo_n & mask) || !p->even)
		lo++; /* ceil, or past an excluded end */
	if (!(hi_n & mask) && !p->even)
		hi--; /* an excluded end */
	if (lo > hi)
		return false;
	unsigned __int128 x = (unsigned __int128)p->M * pow;
	unsigned __int128 q = x >> p->F, rem = x & (((unsigned __int128)1 << p->F) - 1);
	unsigned __int128 half = (unsigned __int128)1 << (p->F - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++;
	if (q < lo)
		q = lo;
	if (q > hi)
		q = hi;
	if (q >> 64)
		return false;
	*m = (uint64_t)q;
	return true;
}

static size_t shortest_fixed(double d, char *text)
{
	double a = fabs(d);
	if (!(a >= 1e-4 && a < 1e15))
		return 0;
	int e;
	double fr = frexp(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
	struct real_parts p = {.M = (uint64_t)ldexp(fr, 53), .F = 53 - e};
	p.lo_off = p.M == (1ULL << 52) ? 1 : 2;
	p.even = (p.M & 1) == 0;
	/* Most values have few digits, or need 16 or 17 (a scaled register): look at 15
	 * significant digits first. Without a candidate there, none has fewer digits (a
	 * shorter one is also a 15-digit one, with zeros), so only 16 and 17 remain. */
	int x10 = (int)floor((e - 1) * 0.30102999566398); /* log10(a), maybe one too low */
	int k15 = 14 - x10;
	if (k15 < 0)
		k15 = 0;
	if (k15 > 17)
		k15 = 17;
	uint64_t m = 0;
	int k = -1;
	if (candidate(&p, k15, &m)) {
		for (k = 0; k < k15 && !candidate(&p, k, &m); k++)
			;
	} else {
		for (k = k15 + 1; k <= 17 && !candidate(&p, k, &m); k++)
			;
		if (k > 17)
			return 0;
	}
	char digits[24], rev[24];
	uint64_t u = m;
	int n = 0, r = 0;
	do {
		rev[r++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (r)
		digits[n++] = rev[--r];
	char *o = text;
	if (d < 0)
		*o++ = '-';
	if (k == 0) {
		memcpy(o, digits, (size_t)n);
		o += n;
		memcpy(o, ".0", 2);
		o += 2;
	} else if (n > k) {
		memcpy(o, digits, (size_t)(n - k));
		o += n - k;
		*o++ = '.';
		memcpy(o, digits + n - k, (size_t)k);
		o += k;
	} else {
		*o++ = '0';
		*o++ = '.';
		for (int z = 0; z < k - n; z++)
			*o++ = '0';
		memcpy(o, digits, (size_t)n);
		o += n;
	}
	*o = '\0';
	return (size_t)(o - text);
}

/* A real as JSON text (see the opening comment); text has room for 40 bytes. */
size_t script_json_real(double d, char *text)
{
	if (!isfinite(d))
		return (size_t)snprintf(text, 40, "null");
	size_t n = shortest_fixed(d, text);
	if (n)
		return n;
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(text, 40, "%.*g", prec, d);
		if (strtod(text, NULL) == d)
			break;
	}
	n = strlen(text);
	if (!strpbrk(text, ".eEn")) {
		memcpy(text + n, ".0", 3);
		n += 2;
	}
	return n;
}

static void encode_number(lua_State *L, int idx, struct script_buf *b)
{
	char text[48];
	size_t n;
	int is_int = 0;
	lua_Integer v = lua_tointegerx(L, idx, &is_int);
	if (is_int && lua_isinteger(L, idx)) {
		/* Digits by hand: snprintf showed in the profile. */
		uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
		char *o = text + sizeof(text);
		do {
			*--o = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (v < 0)
			*--o = '-';
		n = (size_t)(text + sizeof(text) - o);
		script_buf_add(b, o, n);
		return;
	}
	n = script_json_real((double)lua_tonumber(L, idx), text);
	script_buf_add(b, text, n);
}

static void encode_value(lua_State *L, int idx, struct script_buf *b, int depth);

/* True when the table at idx is an array: keys exactly 1..n, or made by modbridge.array. */
static bool is_array(lua_State *L, int idx, size_t *n)
{
	bool marked = false;
	if (lua_getmetatable(L, idx)) {
		lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_array_mt);
		marked = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
	}
	size_t len = (size_t)lua_rawlen(L, idx), count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		count++;
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
		    (lua_Unsigned)lua_tointeger(L, -1) > len) {
			lua_pop(L, 1);
			*n = len;
			return false;
		}
	}
	*n = len;
	return count == len && (len > 0 || marked);
}

/*
 * One pass over the table: each value stays on the Lua stack (its slot noted with its key),
 * so nothing is looked up again; string keys point into the table itself, which is not
 * changed meanwhile, and integer keys are written into the entry. Entries live in a C
 * array while there are few, else in a userdata that the collector frees if an error
 * interrupts us. Then the entries are sorted, and each value encoded from its slot.
 */
#define KEYS_IN_PLACE 64

static const char *key_text(const struct key *k)
{
	return k->is_int ? k->num : k->s;
}

/* Keys are short, and often share a prefix ("value_1", "value_2"): a byte loop beats a
 * call to memcmp here. */
static inline int key_order(const struct key *x, const struct key *y)
{
	if (x->rank != y->rank)
		return x->rank - y->rank;
	const unsigned char *p = (const unsigned char *)key_text(x);
	const unsigned char *q = (const unsigned char *)key_text(y);
	size_t n = x->len < y->len ? x->len : y->len;
	for (size_t i = 0; i < n; i++)
		if (p[i] != q[i])
			return p[i] - q[i];
	return x->len < y->len ? -1 : x->len > y->len;
}

static int key_cmp(const void *a, const void *b)
{
	return key_order(a, b);
}

/* Recursion bounded by JSON_DEPTH_MAX (encode_value). */
static void encode_object( // NOLINT(misc-no-recursion)
	lua_State *L, int idx, struct script_buf *b, int depth)
{
	struct key in_place[KEYS_IN_PLACE];
	struct key *k = in_place;
	size_t n = 0, cap = KEYS_IN_PLACE;
	int base = lua_gettop(L);

	lua_pushnil(L); /* base + 1: the userdata once the entries outgrow in_place */
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (n == cap) {
			struct key *grown = lua_newuserdatauv(L, 2 * cap * sizeof(*grown), 0);
			memcpy(grown, k, n * sizeof(*grown));
			lua_replace(L, base + 1);
			k = grown;
			cap *= 2;
		}
		struct key *e = &k[n];
		e->is_int = false;
		if (lua_type(L, -2) == LUA_TSTRING) {
			e->s = lua_tolstring(L, -2, &e->len);
		} else if (lua_isinteger(L, -2)) {
			lua_Integer v = lua_tointeger(L, -2);
			e->is_int = true;
			e->i = v;
			e->len = (size_t)snprintf(e->num, sizeof(e->num), LUA_INTEGER_FMT,
						  (LUAI_UACINT)v);
		} else {
			script_raise(L,
				     "a table key is %s; JSON object keys are strings (or integers)",
				     luaL_typename(L, -2));
		}
		e->rank = rank_of(key_text(e), e->len);
		lua_insert(L, -2); /* the value stays below the key */
		e->slot = lua_gettop(L) - 1;
		n++;
		luaL_checkstack(L, 4, "a table with many keys");
	}
	/* The order: a binary insertion sort of indices while there are few keys (a few
	 * compares each, and small moves), qsort of the entries beyond. */
	unsigned char order[KEYS_IN_PLACE];
	bool indexed = n <= KEYS_IN_PLACE;
	if (indexed) {
		for (size_t i = 0; i < n; i++) {
			size_t lo = 0, hi = i;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (key_order(&k[order[mid]], &k[i]) <= 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			memmove(order + lo + 1, order + lo, i - lo);
			order[lo] = (unsigned char)i;
		}
	} else {
		qsort(k, n, sizeof(*k), key_cmp);
	}
	script_buf_add(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		const struct key *e = &k[indexed ? order[i] : i];
		if (i)
			script_buf_add(b, ",", 1);
		encode_string(L, key_text(e), e->len, b);
		script_buf_add(b, ":", 1);
		encode_value(L, e->slot, b, depth + 1);
	}
	script_buf_add(b, "}", 1);
	lua_settop(L, base);
}

static void encode_value( // NOLINT(misc-no-recursion): bounded by JSON_DEPTH_MAX
	lua_State *L, int idx, struct script_buf *b, int depth)
{
	if (depth > JSON_DEPTH_MAX)
		script_raise(L, "a table is nested more than %d deep (or contains itself)",
			     JSON_DEPTH_MAX);
	luaL_checkstack(L, 8, "JSON nesting");
	switch (lua_type(L, idx)) {
	case LUA_TNIL: script_buf_add(b, "null", 4); break;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			script_buf_add(b, "true", 4);
		else
			script_buf_add(b, "false", 5);
		break;
	case LUA_TNUMBER: encode_number(L, idx, b); break;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		encode_string(L, s, n, b);
		break;
	}
	case LUA_TTABLE: {
		size_t n;
		if (is_array(L, idx, &n)) {
			script_buf_add(b, "[", 1);
			for (size_t i = 1; i <= n; i++) {
				if (i > 1)
					script_buf_add(b, ",", 1);
				lua_rawgeti(L, idx, (lua_Integer)i);
				encode_value(L, lua_gettop(L), b, depth + 1);
				lua_pop(L, 1);
			}
			script_buf_add(b, "]", 1);
		} else {
			encode_object(L, idx, b, depth);
		}
		break;
	}
	default: script_raise(L, "a %s cannot be encoded as JSON", luaL_typename(L, idx));
	}
	if (b->nomem)
		luaL_error(L, "out of memory encoding JSON");
}

void script_json_encode(lua_State *L, int idx, struct script_buf *b)
{
	encode_value(L, lua_absindex(L, idx), b, 0);
}

/* ------------------------------------------------------------------ decoding */

/* Decoding is jansson's (through message.h, the module that owns it); these callbacks
 * build the Lua value on the stack as the document is walked. A Lua error (out of memory)
 * may leave the walk by longjmp: the walk holds nothing, and the document is freed by
 * script_json_decode after the protected call. */

static int dec_null(void *ctx)
{
	lua_pushnil(ctx);
	return 0;
}

static int dec_boolean(void *ctx, int value)
{
	lua_pushboolean(ctx, value);
	return 0;
}

static int dec_integer(void *ctx, long long value)
{
	lua_pushinteger(ctx, (lua_Integer)value);
	return 0;
}

static int dec_real(void *ctx, double value)
{
	lua_pushnumber(ctx, value);
	return 0;
}

static int dec_string(void *ctx, const char *s, size_t len)
{
	lua_pushlstring(ctx, s, len);
	return 0;
}

static int dec_open(void *ctx, int object, size_t count)
{
	/* Each level holds a table and a key, and pushes a value. */
	luaL_checkstack(ctx, 4, "JSON nested too deep");
	int n = count > INT_MAX ? INT_MAX : (int)count;
	lua_createtable(ctx, object ? 0 : n, object ? n : 0);
	return 0;
}

static int dec_key(void *ctx, const char *s, size_t len)
{
	lua_pushlstring(ctx, s, len);
	return 0;
}

/* null leaves a hole in an array and drops an object member (nil cannot be stored). */
static int dec_item(void *ctx, int object, size_t index)
{
	if (object)
		lua_rawset(ctx, -3);
	else
		lua_rawseti(ctx, -2, (lua_Integer)index + 1);
	return 0;
}

static int dec_close(void *ctx, int object)
{
	(void)ctx;
	(void)object;
	return 0;
}

static const struct message_json_visitor lua_builder = {
	.null = dec_null,
	.boolean = dec_boolean,
	.integer = dec_integer,
	.real = dec_real,
	.string = dec_string,
	.open = dec_open,
	.key = dec_key,
	.item = dec_item,
	.close = dec_close,
};

/* Protected: (document) -> value, or nil and a message when nested too deep. */
static int build_value(lua_State *L)
{
	const struct message_json *doc = lua_touserdata(L, 1);
	struct message_json_visitor v = lua_builder;
	v.ctx = L;
	lua_settop(L, 0);
	if (message_json_walk(doc, JSON_DEPTH_MAX, &v) != 0) {
		lua_settop(L, 0);
		lua_pushnil(L);
		lua_pushliteral(L, "invalid JSON: nested too deep");
		return 2;
	}
	return 1;
}

int script_json_decode(lua_State *L, const char *text, size_t len)
{
	struct message_json *doc;
	char why[200];
	int rc = message_json_parse(text, len, &doc, why, sizeof(why));
	if (rc == MB_ERR_NOMEM)
		return luaL_error(L, "out of memory decoding JSON");
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "invalid JSON: %s", why);
		return 2;
	}
	int top = lua_gettop(L);
	lua_pushcfunction(L, build_value);
	lua_pushlightuserdata(L, doc);
	int status = lua_pcall(L, 1, LUA_MULTRET, 0);
	message_json_free(doc);
	if (status != LUA_OK)
		return lua_error(L);
	return lua_gettop(L) - top;
}

static int push_text(lua_State *L)
{
	lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
	return 1;
}

static int encode_into(lua_State *L)
{
	script_json_encode(L, 1, lua_touserdata(L, 2));
	return 0;
}

char *script_json_text(lua_State *L, int idx, size_t *len)
{
	struct script_buf b = {0};
	idx = lua_absindex(L, idx);
	lua_pushcfunction(L, encode_into);
	lua_pushvalue(L, idx);
	lua_pushlightuserdata(L, &b);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		script_buf_free(&b);
		lua_error(L);
	}
	if (!b.p)
		script_buf_add(&b, "", 0);
	if (b.nomem) {
		script_buf_free(&b);
		luaL_error(L, "out of memory encoding JSON");
	}
	*len = b.len;
	return b.p;
}

/* modbridge.json_encode(value): the JSON text, or an error naming the script's line. */
static int sb_json_encode(lua_State *L)
{
	size_t len;
	luaL_checkany(L, 1);
	char *text = script_json_text(L, 1, &len);
	/* Anchor the text in a Lua string before freeing ours; a failing push would leak it,
	 * so the push happens in a protected call. */
	lua_pushcfunction(L, push_text);
	lua_pushlightuserdata(L, text);
	lua_pushinteger(L, (lua_Integer)len);
	int status = lua_pcall(L, 2, 1, 0);
	free(text);
	if (status != LUA_OK)
		return lua_error(L);
	return 1;
}

/* modbridge.json_decode(text): the value, or nil and a message. */
static int sb_json_decode(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	return script_json_decode(L, text, len);
}

void script_json_register(lua_State *L)
{
	lua_pushcfunction(L, sb_json_encode);
	lua_setfield(L, -2, "json_encode");
	lua_pushcfunction(L, sb_json_decode);
	lua_setfield(L, -2, "json_decode");
}
