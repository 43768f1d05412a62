/*
 * command_parse.c - the pure part of the remote commands: parsing and the audit text; see
 * command.h.
 *
 * Parsing is a plain walk over a bounded buffer: the text is trimmed, checked to be one
 * line of UTF-8 text, and matched against the command names; arguments are copied into
 * fixed-size fields of struct command, so nothing the sender writes can make the parser
 * allocate or overrun. No I/O, no allocation, no global state: fuzz/fuzz_command.c drives
 * it with arbitrary bytes, and any thread may call it.
 */
#include "command.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "blocks.h"
#include "command_internal.h"
#include "error.h"

static void set_reason(char *reason, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_reason(char *reason, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!reason || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, len, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- parsing */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Strict UTF-8 without control characters (one line of text). */
static bool is_text_line(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || ((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and code points past U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		/* C1 control characters are as unwelcome as C0 ones. */
		if (cp >= 0x80 && cp <= 0x9f)
			return false;
		i += n + 1;
	}
	return true;
}

/* Case-insensitive: does s (len bytes) start with prefix? */
static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && strncasecmp(s, prefix, n) == 0;
}

static bool equals(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/*
 * Decimal, or hexadecimal with 0x; at most max. Returns false for anything else,
 * including empty text, signs and values past max.
 */
static bool parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	unsigned base = 10;

	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (len == 0 || len > 12)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else if (base == 16 && isxdigit((unsigned char)s[i]))
			d = (unsigned)(tolower((unsigned char)s[i]) - 'a' + 10);
		else
			return false;
		v = v * base + d;
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/* Copies len bytes into a field of size cap (with NUL); false when it does not fit. */
static bool copy_field(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/* Splits s at sep into at most max fields; returns how many (max + 1 when there are more). */
static size_t split(const char *s, size_t len, char sep, const char **field, size_t *flen,
		    size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != sep)
			continue;
		if (n == max)
			return max + 1;
		field[n] = s + start;
		flen[n] = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

/*
 * "<slave>", "<port>/<slave>", "<host>:<port>" or "<host>:<port>/<unit>" (IPv6 hosts in
 * brackets).
 */
static int parse_target(const char *s, size_t len, struct command_target *t, char *reason,
			size_t rlen)
{
	const char *slash = memchr(s, '/', len);
	const char *colon = NULL;
	size_t hostpart = slash ? (size_t)(slash - s) : len;
	unsigned long v;

	memset(t, 0, sizeof(*t));
	t->unit = -1;
	if (len == 0) {
		set_reason(reason, rlen,
			   "empty device address (a slave address such as 1, com2/1, or host:port)");
		return MB_ERR_INVAL;
	}
	if (s[0] == '[') {
		const char *close = memchr(s, ']', hostpart);

		if (!close || close + 1 >= s + hostpart || close[1] != ':') {
			set_reason(reason, rlen, "address '%.*s': expected [ipv6]:port",
				   (int)(len > 64 ? 64 : len), s);
			return MB_ERR_INVAL;
		}
		colon = close + 1;
	} else {
		for (const char *p = s + hostpart; p > s; p--)
			if (p[-1] == ':') {
				colon = p - 1;
				break;
			}
	}
	if (colon) {
		const char *hs = s[0] == '[' ? s + 1 : s;
		size_t hl = (size_t)(colon - hs) - (s[0] == '[' ? 1 : 0);

		t->kind = TARGET_TCP;
		if (hl == 0 || !copy_field(t->host, sizeof(t->host), hs, hl)) {
			set_reason(reason, rlen, "address '%.*s': bad host",
				   (int)(len > 64 ? 64 : len), s);
			return MB_ERR_INVAL;
		}
		for (size_t i = 0; i < hl; i++)
			if (!isalnum((unsigned char)hs[i]) && !strchr(".-_:", hs[i])) {
				set_reason(reason, rlen, "address '%.*s': bad host",
					   (int)(len > 64 ? 64 : len), s);
				return MB_ERR_INVAL;
			}
		if (!parse_uint(colon + 1, (size_t)(s + hostpart - colon - 1), 65535, &v) ||
		    v == 0) {
			set_reason(reason, rlen, "address '%.*s': the TCP port must be 1..65535",
				   (int)(len > 64 ? 64 : len), s);
			return MB_ERR_INVAL;
		}
		t->tcp_port = (int)v;
		if (slash) {
			if (!parse_uint(slash + 1, len - hostpart - 1, 255, &v)) {
				set_reason(reason, rlen,
					   "address '%.*s': the unit id must be 0..255",
					   (int)(len > 64 ? 64 : len), s);
				return MB_ERR_INVAL;
			}
			t->unit = (int)v;
		}
		return 0;
	}
	t->kind = TARGET_RTU;
	if (slash) {
		if (hostpart == 0 || !copy_field(t->port_name, sizeof(t->port_name), s, hostpart)) {
			set_reason(reason, rlen,
				   "address '%.*s': expected <port>/<slave>, such as com2/1",
				   (int)(len > 64 ? 64 : len), s);
			return MB_ERR_INVAL;
		}
		for (size_t i = 0; i < hostpart; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) {
				set_reason(reason, rlen, "address '%.*s': bad port name",
					   (int)(len > 64 ? 64 : len), s);
				return MB_ERR_INVAL;
			}
	}
	const char *num = slash ? slash + 1 : s;
	size_t nlen = slash ? len - hostpart - 1 : len;
	if (!parse_uint(num, nlen, 255, &v) || v < 1 || v > 247) {
		set_reason(reason, rlen, "address '%.*s': the slave address must be 1..247",
			   (int)(len > 64 ? 64 : len), s);
		return MB_ERR_INVAL;
	}
	t->unit = (int)v;
	return 0;
}

static const char getmodbus_usage[] =
	"GETMODBUS needs <address>;<register>[;<count>[;<function>]], such as GETMODBUS,1;100;2;3";
static const char setmodbus_usage[] =
	"SETMODBUS needs <address>;<register>;<value>[;<function>], such as SETMODBUS,1;20;1";

static int parse_getmodbus(const char *a, size_t alen, struct command *c, char *reason, size_t rlen)
{
	const char *f[4];
	size_t fl[4], n = split(a, alen, ';', f, fl, 4);
	unsigned long reg, count = 1, fn = 3;
	int rc;

	if (n < 2 || n > 4) {
		set_reason(reason, rlen, "%s (got %zu field%s)", getmodbus_usage,
			   n > 4 ? (size_t)5 : n, n == 1 ? "" : "s");
		return MB_ERR_INVAL;
	}
	rc = parse_target(f[0], fl[0], &c->target, reason, rlen);
	if (rc)
		return rc;
	if (!parse_uint(f[1], fl[1], 65535, &reg)) {
		set_reason(reason, rlen, "register '%.*s' is not 0..65535",
			   (int)(fl[1] > 32 ? 32 : fl[1]), f[1]);
		return MB_ERR_INVAL;
	}
	if (n >= 4 && (!parse_uint(f[3], fl[3], 255, &fn) || fn < 1 || fn > 4)) {
		set_reason(reason, rlen,
			   "function '%.*s' is not a read function (allowed: 1 coils, 2 discrete inputs, 3 holding registers, 4 input registers)",
			   (int)(fl[3] > 32 ? 32 : fl[3]), f[3]);
		return MB_ERR_INVAL;
	}
	unsigned long max = fn <= 2 ? BLOCKS_MAX_BITS : BLOCKS_MAX_REGISTERS;
	if (n >= 3 && (!parse_uint(f[2], fl[2], 65535, &count) || count < 1 || count > max)) {
		set_reason(reason, rlen,
			   "count '%.*s' is out of range (allowed: 1..%lu for function %lu)",
			   (int)(fl[2] > 32 ? 32 : fl[2]), f[2], max, fn);
		return MB_ERR_INVAL;
	}
	if (reg + count > 65536) {
		set_reason(reason, rlen, "registers %lu..%lu are past the last address 65535", reg,
			   reg + count - 1);
		return MB_ERR_INVAL;
	}
	c->reg = (uint16_t)reg;
	c->count = (uint16_t)count;
	c->function = (int)fn;
	return 0;
}

static int parse_setmodbus(const char *a, size_t alen, struct command *c, char *reason, size_t rlen)
{
	const char *f[4];
	size_t fl[4], n = split(a, alen, ';', f, fl, 4);
	unsigned long reg, fn = 6, v;
	int rc;

	if (n < 3 || n > 4) {
		set_reason(reason, rlen, "%s (got %zu field%s)", setmodbus_usage,
			   n > 4 ? (size_t)5 : n, n == 1 ? "" : "s");
		return MB_ERR_INVAL;
	}
	rc = parse_target(f[0], fl[0], &c->target, reason, rlen);
	if (rc)
		return rc;
	if (!parse_uint(f[1], fl[1], 65535, &reg)) {
		set_reason(reason, rlen, "register '%.*s' is not 0..65535",
			   (int)(fl[1] > 32 ? 32 : fl[1]), f[1]);
		return MB_ERR_INVAL;
	}
	if (n == 4 &&
	    (!parse_uint(f[3], fl[3], 255, &fn) || (fn != 5 && fn != 6 && fn != 15 && fn != 16))) {
		set_reason(reason, rlen,
			   "function '%.*s' is not a write function (allowed: 5 coil, 6 register, 15 coils, 16 registers)",
			   (int)(fl[3] > 32 ? 32 : fl[3]), f[3]);
		return MB_ERR_INVAL;
	}
	if (fn == 5 || fn == 15) {
		if (!parse_uint(f[2], fl[2], 1, &v)) {
			set_reason(reason, rlen, "a coil value is 0 or 1, not '%.*s'",
				   (int)(fl[2] > 32 ? 32 : fl[2]), f[2]);
			return MB_ERR_INVAL;
		}
	} else if (fl[2] > 0 && f[2][0] == '-') {
		/* Negative values are written in two's complement, as a signed register holds them. */
		if (!parse_uint(f[2] + 1, fl[2] - 1, 32768, &v) || v == 0) {
			set_reason(reason, rlen,
				   "value '%.*s' is out of range (allowed: -32768..65535)",
				   (int)(fl[2] > 32 ? 32 : fl[2]), f[2]);
			return MB_ERR_INVAL;
		}
		v = 65536 - v;
	} else if (!parse_uint(f[2], fl[2], 65535, &v)) {
		set_reason(reason, rlen, "value '%.*s' is out of range (allowed: -32768..65535)",
			   (int)(fl[2] > 32 ? 32 : fl[2]), f[2]);
		return MB_ERR_INVAL;
	}
	c->reg = (uint16_t)reg;
	c->count = 1;
	c->function = (int)fn;
	c->write_value = (uint16_t)v;
	return 0;
}

static const char *const tunnel_names =
	"VERSION, GETPARAM, SETPARAM, GETCONFIG, GETMODBUS, SETMODBUS, REBOOT";

static int parse_tunnel(const char *s, size_t len, struct command *c, char *reason, size_t rlen)
{
	const char *comma = memchr(s, ',', len);
	size_t nlen = comma ? (size_t)(comma - s) : len;
	const char *args = comma ? comma + 1 : NULL;
	size_t alen = comma ? len - nlen - 1 : 0;
	static const struct {
		const char *name;
		enum command_kind kind;
		bool args;
	} subs[] = {
		{"VERSION", CMD_VERSION, false},    {"GETCONFIG", CMD_GETCONFIG, false},
		{"REBOOT", CMD_REBOOT, false},      {"GETPARAM", CMD_GETPARAM, true},
		{"SETPARAM", CMD_SETPARAM, true},   {"GETMODBUS", CMD_GETMODBUS, true},
		{"SETMODBUS", CMD_SETMODBUS, true},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(subs); i++)
		if (equals(s, nlen, subs[i].name))
			break;
	if (i == ARRAY_SIZE(subs)) {
		set_reason(reason, rlen, "unknown command AT^MTXTUNNEL=%.*s (known: %s)",
			   (int)(nlen > 32 ? 32 : nlen), s, tunnel_names);
		return MB_ERR_INVAL;
	}
	c->kind = subs[i].kind;
	if (!subs[i].args) {
		if (comma) {
			set_reason(reason, rlen, "%s takes no arguments", subs[i].name);
			return MB_ERR_INVAL;
		}
		return 0;
	}
	if (!comma) {
		if (c->kind == CMD_GETMODBUS)
			set_reason(reason, rlen, "%s", getmodbus_usage);
		else if (c->kind == CMD_SETMODBUS)
			set_reason(reason, rlen, "%s", setmodbus_usage);
		else if (c->kind == CMD_GETPARAM)
			set_reason(reason, rlen, "GETPARAM needs a key, such as GETPARAM,mqtt.qos");
		else
			set_reason(reason, rlen,
				   "SETPARAM needs a key and a value, such as SETPARAM,mqtt.qos,1");
		return MB_ERR_INVAL;
	}
	switch (c->kind) {
	case CMD_GETMODBUS: return parse_getmodbus(args, alen, c, reason, rlen);
	case CMD_SETMODBUS: return parse_setmodbus(args, alen, c, reason, rlen);
	case CMD_GETPARAM:
		if (memchr(args, ',', alen)) {
			set_reason(reason, rlen,
				   "GETPARAM takes one key (to change a value, use SETPARAM,<key>,<value>)");
			return MB_ERR_INVAL;
		}
		if (!copy_field(c->key, sizeof(c->key), args, alen)) {
			set_reason(reason, rlen, "key longer than %d characters", CONFEDIT_KEY_MAX);
			return MB_ERR_INVAL;
		}
		return confedit_check_key(c->key, reason, rlen);
	default: { /* SETPARAM: the value is everything after the second comma */
		const char *comma2 = memchr(args, ',', alen);
		size_t klen = comma2 ? (size_t)(comma2 - args) : alen;
		const char *v = comma2 ? comma2 + 1 : NULL;
		size_t vlen = comma2 ? alen - klen - 1 : 0;

		if (!comma2) {
			set_reason(reason, rlen,
				   "SETPARAM needs a key and a value, such as SETPARAM,mqtt.qos,1");
			return MB_ERR_INVAL;
		}
		if (!copy_field(c->key, sizeof(c->key), args, klen)) {
			set_reason(reason, rlen, "key longer than %d characters", CONFEDIT_KEY_MAX);
			return MB_ERR_INVAL;
		}
		int rc = confedit_check_key(c->key, reason, rlen);
		if (rc)
			return rc;
		/* "..." keeps spaces at the ends, or says "empty" plainly. */
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
			v++;
			vlen -= 2;
		}
		if (!copy_field(c->value, sizeof(c->value), v, vlen)) {
			set_reason(reason, rlen, "value longer than %d bytes", COMMAND_VALUE_MAX);
			return MB_ERR_INVAL;
		}
		return 0;
	}
	}
}

int command_parse(const char *text, size_t len, struct command *out, char *reason, size_t rlen)
{
	struct command c;
	int rc;

	/* First, before the text is even looked at: it may not have been kept. */
	if (len > COMMAND_MAX_LEN) {
		set_reason(reason, rlen, "command too long (%zu bytes; at most %d)", len,
			   COMMAND_MAX_LEN);
		return MB_ERR_INVAL;
	}
	if (!text)
		len = 0;
	while (len > 0 && is_space(text[0])) {
		text++;
		len--;
	}
	while (len > 0 && is_space(text[len - 1]))
		len--;
	if (len == 0) {
		set_reason(reason, rlen, "empty command (send AT, ATI, AT+CSQ, ...)");
		return MB_ERR_INVAL;
	}
	if (!is_text_line(text, len)) {
		set_reason(reason, rlen,
			   "not a command: binary data or control characters (a command is one line of text)");
		return MB_ERR_INVAL;
	}
	if (!starts_with(text, len, "AT")) {
		set_reason(reason, rlen,
			   "not an AT command (commands start with AT, such as AT+CSQ)");
		return MB_ERR_INVAL;
	}
	memset(&c, 0, sizeof(c));
	if (equals(text, len, "AT")) {
		c.kind = CMD_AT;
	} else if (equals(text, len, "ATI")) {
		c.kind = CMD_ATI;
	} else if (equals(text, len, "AT+CGSN")) {
		c.kind = CMD_CGSN;
	} else if (equals(text, len, "AT+CSQ")) {
		c.kind = CMD_CSQ;
		memcpy(c.modem_line, "AT+CSQ", 7);
	} else if (equals(text, len, "AT+MBSTATUS")) {
		c.kind = CMD_STATUS;
	} else if (starts_with(text, len, "AT^MTXTUNNEL")) {
		const char *rest = text + 12;
		size_t rlen2 = len - 12;

		if (rlen2 == 0 || rest[0] != '=') {
			set_reason(reason, rlen, "AT^MTXTUNNEL needs =<command> (known: %s)",
				   tunnel_names);
			return MB_ERR_INVAL;
		}
		rc = parse_tunnel(rest + 1, rlen2 - 1, &c, reason, rlen);
		if (rc)
			return rc;
	} else {
		c.kind = CMD_MODEM;
		if (!copy_field(c.modem_line, sizeof(c.modem_line), text, len)) {
			set_reason(reason, rlen,
				   "command too long for the modem (%zu characters; at most %d)",
				   len, MODEM_COMMAND_MAX);
			return MB_ERR_INVAL;
		}
	}
	*out = c;
	return 0;
}

/* ---------------------------------------------------------------- audit text */

void command_audit_text(const char *text, size_t len, char *out, size_t out_len)
{
	static const char *const pin_commands[] = {"AT+CPIN=", "AT+CPWD=", "AT+CLCK=", "AT+CPIN2="};
	size_t used = 0, start = 0, end = len, redact_from = SIZE_MAX;
	bool cut = false;

	if (!out || out_len == 0)
		return;
	out[0] = '\0';
	if (len > COMMAND_MAX_LEN) {
		snprintf(out, out_len, "<%zu bytes>", len);
		return;
	}
	if (!text)
		end = 0;
	while (start < end && is_space(text[start]))
		start++;
	while (end > start && is_space(text[end - 1]))
		end--;
	const char *s = text ? text + start : "";
	size_t n = end - start;

	/* Secrets: the value of a SETPARAM of a secret key; the argument of PIN commands. */
	if (starts_with(s, n, "AT^MTXTUNNEL=SETPARAM,")) {
		const char *key = s + 22;
		const char *comma = memchr(key, ',', n - 22);
		char name[CONFEDIT_KEY_MAX + 1];

		if (comma && copy_field(name, sizeof(name), key, (size_t)(comma - key)) &&
		    confedit_is_secret(name))
			redact_from = (size_t)(comma - s) + 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(pin_commands); i++)
		if (starts_with(s, n, pin_commands[i]))
			redact_from = strlen(pin_commands[i]);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char piece[8];

		if (i == redact_from) {
			snprintf(piece, sizeof(piece), "***");
			i = n; /* the rest is the secret */
		} else if (c >= 0x20 && c < 0x7f && c != '\\') {
			piece[0] = (char)c;
			piece[1] = '\0';
		} else {
			snprintf(piece, sizeof(piece), "\\x%02x", c);
		}
		size_t pl = strlen(piece);
		if (used + pl + 4 > out_len) {
			cut = true;
			break;
		}
		memcpy(out + used, piece, pl + 1);
		used += pl;
	}
	if (cut && out_len >= 4) {
		if (used + 3 >= out_len)
			used = out_len - 4;
		memcpy(out + used, "...", 4);
	}
}
