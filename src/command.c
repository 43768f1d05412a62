/*
 * command.c - parse and execute remote AT commands; see command.h.
 *
 * Parsing is a plain walk over a bounded buffer: the text is trimmed, checked to be one
 * line of UTF-8 text, and matched against the command names; arguments are copied into
 * fixed-size fields of struct command, so nothing the sender writes can make the parser
 * allocate or overrun. Execution checks the permission first, so a refused command
 * touches nothing.
 *
 * GETPARAM, SETPARAM and GETCONFIG work on the configuration *file* (confedit.c): it is
 * what SETPARAM changes and what the next start uses. SETPARAM validates the would-be
 * file with the same loader as `modbridge check` before it replaces the old one.
 */
#include "command.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atomicfile.h"
#include "certinfo.h"
#include "error.h"
#include "log.h"
#include "modbus_io.h"
#include "mqtt.h"
#include "poller.h"
#include "store.h"
#include "timeutil.h"

/* How long a remote Modbus request may wait for its turn behind the polls. */
#define QUEUE_WAIT_MS 30000
/* A configuration file is a few kilobytes; this only bounds a wrong path. */
#define CONFIG_FILE_MAX (4L * 1024 * 1024)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

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
	unsigned long max = fn <= 2 ? 2000 : 125;
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

/* ---------------------------------------------------------------- replies */

static void add_line(struct command_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_line(struct command_reply *r, const char *fmt, ...)
{
	va_list ap, ap2;
	int n;
	char *grown;

	if (r->nomem)
		return;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		va_end(ap);
		return;
	}
	grown = realloc(r->lines, r->lines_len + (size_t)n + 2);
	if (!grown) {
		r->nomem = true;
		va_end(ap);
		return;
	}
	r->lines = grown;
	if (r->lines_len)
		r->lines[r->lines_len++] = '\n';
	vsnprintf(r->lines + r->lines_len, (size_t)n + 1, fmt, ap);
	r->lines_len += (size_t)n;
	va_end(ap);
}

/* Adds every line of a multi-line text (a YAML dump, a modem reply). */
static void add_lines(struct command_reply *r, const char *text)
{
	while (text && *text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);

		add_line(r, "%.*s", (int)n, text);
		text = nl ? nl + 1 : NULL;
	}
}

static void reply_error(struct command_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reply_error(struct command_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->ok = false;
}

char *command_reply_text(const struct command_reply *reply, const char *eol, size_t *len)
{
	size_t el = strlen(eol), n = 0, cap;
	char *out;
	const char *final;
	char final_buf[sizeof(reply->error) + 16];

	if (reply->nomem) {
		final = "ERROR: out of memory";
	} else if (reply->ok) {
		final = "OK";
	} else {
		snprintf(final_buf, sizeof(final_buf), "ERROR: %s", reply->error);
		final = final_buf;
	}
	/* Every '\n' of the lines may become eol; then the final line and its eol. */
	cap = reply->lines_len * (el + 1) + el + strlen(final) + el + 1;
	out = malloc(cap);
	if (!out)
		return NULL;
	for (size_t i = 0; reply->lines && !reply->nomem && i < reply->lines_len; i++) {
		if (reply->lines[i] == '\n') {
			memcpy(out + n, eol, el);
			n += el;
		} else {
			out[n++] = reply->lines[i];
		}
	}
	if (reply->lines_len && !reply->nomem) {
		memcpy(out + n, eol, el);
		n += el;
	}
	memcpy(out + n, final, strlen(final));
	n += strlen(final);
	memcpy(out + n, eol, el);
	n += el;
	out[n] = '\0';
	*len = n;
	return out;
}

void command_reply_clear(struct command_reply *reply)
{
	if (!reply)
		return;
	free(reply->lines);
	memset(reply, 0, sizeof(*reply));
}

/* ---------------------------------------------------------------- execution */

static bool permitted(const struct command_env *env, const struct command *c,
		      struct command_reply *r)
{
	const struct remote_config *p = &env->cfg->remote;
	const char *what = NULL, *key = NULL;

	switch (c->kind) {
	case CMD_SETMODBUS:
		if (!p->allow_writes)
			what = "SETMODBUS (a write to a device)", key = "allow_writes";
		break;
	case CMD_SETPARAM:
		if (!p->allow_setparam)
			what = "SETPARAM", key = "allow_setparam";
		break;
	case CMD_REBOOT:
		if (!p->allow_reboot)
			what = "REBOOT", key = "allow_reboot";
		break;
	case CMD_MODEM:
		/* Without a modem there is nothing to pass to: "unknown command" says more. */
		if (env->modem && !p->allow_modem_passthrough)
			what = "passing commands to the modem", key = "allow_modem_passthrough";
		break;
	default: break;
	}
	if (!what)
		return true;
	reply_error(r, "not permitted: %s needs remote.%s: true in the configuration", what, key);
	return false;
}

static char *read_config_file(const char *path, size_t *len, char *reason, size_t rlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		set_reason(reason, rlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			char *grown;

			if (cap >= (size_t)CONFIG_FILE_MAX) {
				set_reason(reason, rlen, "%s is larger than %ld bytes", path,
					   CONFIG_FILE_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 4096;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				set_reason(reason, rlen, "out of memory");
				goto fail;
			}
			buf = grown;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				set_reason(reason, rlen, "cannot read %s: %s", path,
					   strerror(errno ? errno : EIO));
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	if (!buf && !(buf = malloc(1))) {
		set_reason(reason, rlen, "out of memory");
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static void do_getparam(const struct command_env *env, const struct command *c,
			struct command_reply *r)
{
	char why[512], *text, *value = NULL;
	size_t len;

	text = read_config_file(env->cfg->path, &len, why, sizeof(why));
	if (!text) {
		reply_error(r, "%s", why);
		return;
	}
	if (confedit_get(text, len, c->key, &value, why, sizeof(why)) != 0) {
		reply_error(r, "%s", why);
	} else {
		add_line(r, "%s", confedit_is_secret(c->key) ? "***" : value);
		r->ok = true;
	}
	free(value);
	free(text);
}

static void do_getconfig(const struct command_env *env, struct command_reply *r)
{
	char why[512], *text, *dump = NULL;
	size_t len;

	text = read_config_file(env->cfg->path, &len, why, sizeof(why));
	if (!text) {
		reply_error(r, "%s", why);
		return;
	}
	if (confedit_dump_redacted(text, len, &dump, why, sizeof(why)) != 0) {
		reply_error(r, "%s", why);
	} else {
		add_lines(r, dump);
		r->ok = true;
	}
	free(dump);
	free(text);
}

/*
 * The certificate checks of `modbridge check`: a file that loads but holds no certificate
 * would only fail when the daemon starts, and then the gateway could not be reached.
 */
static int check_certificates(const struct config *cfg, struct command_reply *r)
{
	char why[512];
	int problems = 0;

	if (!cfg->mqtt.tls)
		return 0;
	const char *files[][2] = {{"mqtt.ca_file", cfg->mqtt.ca_file},
				  {"mqtt.cert_file", cfg->mqtt.cert_file}};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (files[i][1] && certinfo_describe(files[i][1], why, sizeof(why)) != 0) {
			add_line(r, "%s: %s", files[i][0], why);
			problems++;
		}
	}
	if (cfg->mqtt.cert_file && cfg->mqtt.key_file &&
	    certinfo_check_key_pair(cfg->mqtt.cert_file, cfg->mqtt.key_file, why, sizeof(why)) !=
		    0) {
		add_line(r, "mqtt.key_file: %s", why);
		problems++;
	}
	return problems;
}

/* Replaces every occurrence of from (the staged file's name) by to in a diagnostic. */
static void add_diag(struct command_reply *r, const char *text, const char *from, const char *to)
{
	const char *hit = strstr(text, from);

	if (hit)
		add_line(r, "%.*s%s%s", (int)(hit - text), text, to, hit + strlen(from));
	else
		add_line(r, "%s", text);
}

static void do_setparam(const struct command_env *env, const struct command *c,
			struct command_reply *r)
{
	const char *path = env->cfg->path;
	char why[512], *text = NULL, *edited = NULL, *staged = NULL, *old = NULL;
	size_t len, elen;
	struct config_diags diags = {0};
	struct config *check = NULL;

	/* The permissions are the gateway owner's decision, made on the gateway. */
	if (!strncmp(c->key, "remote.", 7) || !strcmp(c->key, "remote")) {
		reply_error(r, "%s can only be changed in the configuration file on the gateway",
			    c->key);
		return;
	}
	text = read_config_file(path, &len, why, sizeof(why));
	if (!text) {
		reply_error(r, "%s", why);
		return;
	}
	if (confedit_get(text, len, c->key, &old, why, sizeof(why)) == 0 &&
	    !strcmp(old, c->value)) {
		add_line(r, "%s is already %s", c->key,
			 confedit_is_secret(c->key) ? "***" : c->value);
		r->ok = true;
		goto out;
	}
	if (confedit_set(text, len, c->key, c->value, &edited, &elen, why, sizeof(why)) != 0) {
		reply_error(r, "%s", why);
		goto out;
	}
	if (atomicfile_stage(path, edited, elen, &staged, why, sizeof(why)) != 0) {
		reply_error(r, "configuration not changed: %s", why);
		goto out;
	}
	/* The exact bytes that would be committed go through the full loader first. */
	int rc = config_load(staged, &check, &diags);
	if (rc != 0) {
		for (size_t i = 0; i < diags.count; i++)
			if (diags.items[i].severity == CONFIG_ERROR)
				add_diag(r, diags.items[i].text, staged, path);
		atomicfile_discard(staged);
		if (rc == MB_ERR_CONFIG)
			reply_error(r,
				    "configuration not changed: %s=%s would make it invalid (%zu error%s)",
				    c->key, confedit_is_secret(c->key) ? "***" : c->value,
				    diags.errors, diags.errors == 1 ? "" : "s");
		else
			reply_error(r, "configuration not changed: %s", mb_strerror(rc));
		goto out;
	}
	int problems = check_certificates(check, r);
	if (problems) {
		atomicfile_discard(staged);
		reply_error(r,
			    "configuration not changed: %s=%s would make it unusable (%d certificate problem%s)",
			    c->key, confedit_is_secret(c->key) ? "***" : c->value, problems,
			    problems == 1 ? "" : "s");
		goto out;
	}
	if (atomicfile_commit(staged, path, why, sizeof(why)) != 0) {
		reply_error(r, "%s", why);
		goto out;
	}
	add_line(r, "%s=%s", c->key, confedit_is_secret(c->key) ? "***" : c->value);
	if (env->daemon) {
		add_line(r, "saved; the gateway restarts to apply it");
		r->restart = true;
	} else {
		add_line(r, "saved; a running daemon applies it on SIGHUP or at its next start");
	}
	r->ok = true;
out:
	config_free(check);
	config_diags_free(&diags);
	free(staged);
	free(old);
	free(edited);
	free(text);
}

/* A configured Modbus bus, found from what the command names. */
struct bus_ref {
	const struct serial_port_config *port; /* RTU */
	const char *host;                      /* TCP */
	int tcp_port;
	int unit;
	int timeout_ms;
	char name[300];
};

static bool resolve_target(const struct config *cfg, const struct command_target *t,
			   struct bus_ref *b, struct command_reply *r)
{
	memset(b, 0, sizeof(*b));
	if (t->kind == TARGET_RTU) {
		if (t->port_name[0]) {
			for (size_t i = 0; i < cfg->serial_port_count && !b->port; i++)
				if (cfg->serial_ports[i].name &&
				    !strcmp(cfg->serial_ports[i].name, t->port_name))
					b->port = &cfg->serial_ports[i];
			if (!b->port) {
				reply_error(r, "no serial port named '%s' in the configuration",
					    t->port_name);
				return false;
			}
		} else if (cfg->serial_port_count == 1) {
			b->port = &cfg->serial_ports[0];
		} else if (cfg->serial_port_count == 0) {
			reply_error(r,
				    "no serial port is configured (for Modbus TCP write host:port)");
			return false;
		} else {
			reply_error(r, "%zu serial ports are configured: name one, such as %s/%d",
				    cfg->serial_port_count, cfg->serial_ports[0].name, t->unit);
			return false;
		}
		b->unit = t->unit;
		b->timeout_ms = b->port->timeout_ms;
		snprintf(b->name, sizeof(b->name), "slave %d on %s", b->unit, b->port->name);
		return true;
	}
	/* Only endpoints of configured devices: the gateway is no open proxy into its LAN. */
	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *d = &cfg->devices[i];

		if (d->transport != TRANSPORT_TCP || d->port != t->tcp_port ||
		    strcmp(d->host, t->host) != 0)
			continue;
		b->host = d->host;
		b->tcp_port = d->port;
		b->unit = t->unit >= 0 ? t->unit : d->slave;
		b->timeout_ms = d->timeout_ms;
		snprintf(b->name, sizeof(b->name), "unit %d at %s:%d", b->unit, d->host, d->port);
		return true;
	}
	reply_error(r, "%s:%d is not the address of a configured Modbus TCP device", t->host,
		    t->tcp_port);
	return false;
}

static int direct_request(const struct bus_ref *b, struct poll_request *req)
{
	struct mbio *io = NULL;
	int rc = b->port ? mbio_new_rtu(b->port, &io) : mbio_new_tcp(b->host, b->tcp_port, &io);

	if (rc)
		return rc;
	if (req->write)
		req->rc = mbio_write(io, req->slave, req->function, req->address, req->values[0],
				     req->timeout_ms, req->reason, sizeof(req->reason));
	else
		req->rc = mbio_read(io, req->slave, req->function, req->address, req->count,
				    req->timeout_ms, req->values, req->reason, sizeof(req->reason));
	mbio_free(io);
	return 0;
}

static void do_modbus(const struct command_env *env, const struct command *c,
		      struct command_reply *r)
{
	struct bus_ref b;
	uint16_t *values;
	struct poll_request req;
	int rc;

	if (!resolve_target(env->cfg, &c->target, &b, r))
		return;
	values = calloc(c->count ? c->count : 1, sizeof(uint16_t));
	if (!values) {
		r->nomem = true;
		return;
	}
	memset(&req, 0, sizeof(req));
	req.write = c->kind == CMD_SETMODBUS;
	req.slave = b.unit;
	req.function = c->function;
	req.address = c->reg;
	req.count = c->count;
	req.values = values;
	req.timeout_ms = b.timeout_ms;
	if (req.write)
		values[0] = c->write_value;

	/* Behind the bus worker's polls when there is one; otherwise nobody else uses it. */
	rc = env->poller
		     ? poller_execute(env->poller, b.port, b.host, b.tcp_port, &req, QUEUE_WAIT_MS)
		     : MB_ERR_NOTFOUND;
	if (rc == MB_ERR_NOTFOUND)
		rc = direct_request(&b, &req);
	if (rc == MB_ERR_IO) {
		reply_error(r, "%s: the bus is busy or stopping; nothing was sent (try again)",
			    b.name);
	} else if (rc) {
		reply_error(r, "%s", mb_strerror(rc));
	} else if (req.rc) {
		reply_error(r, "%s: %s", b.name, req.reason);
	} else if (req.write) {
		r->ok = true;
	} else {
		/* One line: the values separated by commas (bits as 0 or 1). */
		size_t cap = (size_t)req.count * 6 + 1, used = 0;
		char *line = malloc(cap);

		if (!line) {
			r->nomem = true;
		} else {
			for (size_t i = 0; i < req.count; i++)
				used += (size_t)snprintf(line + used, cap - used, "%s%u",
							 i ? "," : "", values[i]);
			add_line(r, "%s", line);
			free(line);
			r->ok = true;
		}
	}
	free(values);
}

static void do_modem(const struct command_env *env, const struct command *c,
		     struct command_reply *r)
{
	struct modem_reply *mr;
	char why[256];

	if (!env->modem) {
		if (c->kind == CMD_CSQ) {
			/* 99,99: "not known or not detectable" in 3GPP TS 27.007. */
			add_line(r, "+CSQ: 99,99");
			r->ok = true;
		} else {
			reply_error(r,
				    "unknown command '%s' (no modem is configured to pass it to)",
				    c->modem_line);
		}
		return;
	}
	mr = malloc(sizeof(*mr));
	if (!mr) {
		r->nomem = true;
		return;
	}
	if (modem_command(env->modem, c->modem_line, mr, why, sizeof(why)) != 0) {
		reply_error(r, "%s", why);
	} else {
		add_lines(r, mr->text);
		if (mr->ok)
			r->ok = true;
		else
			reply_error(r, "the modem answered %s", mr->final);
	}
	free(mr);
}

static void add_time(struct command_reply *r, const char *label, int64_t ms)
{
	char text[40] = "-";

	if (ms)
		time_format_iso8601(ms, text, sizeof(text));
	add_line(r, "%s: %s", label, text);
}

static void do_status(const struct command_env *env, struct command_reply *r)
{
	const struct config *cfg = env->cfg;
	struct store *s = env->store;
	struct store_stats st;

	add_line(r, "version: modbridge %s", MODBRIDGE_VERSION);
	add_line(r, "identity: %s", cfg->imei);
	if (!cfg->mqtt.enabled)
		add_line(r, "mqtt: disabled");
	else if (!env->link)
		add_line(r, "mqtt: no link in this process");
	else
		add_line(r, "mqtt: %s",
			 mqtt_link_connected(env->link) ? "connected" : "not connected");

	char why[256] = "";
	/* Without the daemon's store (`modbridge at`): only look, never create or repair it. */
	int rc = s ? store_stats(s, &st)
		   : store_inspect(cfg->logger.store_path, &st, why, sizeof(why));
	if (rc == 0) {
		add_line(r, "backlog: %" PRId64, st.count);
		add_time(r, "oldest", st.oldest_ts_ms);
		add_time(r, "newest", st.newest_ts_ms);
		add_line(r, "sent: %" PRId64, st.sent);
		add_line(r, "dropped: %" PRId64, st.dropped);
	} else {
		add_line(r, "store: %s", why[0] ? why : "cannot be read");
	}

	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *d = &cfg->devices[i];
		struct poll_device_status ds;
		char last[40] = "-";

		if (!env->poller) {
			add_line(r, "device %s: no daemon in this process", d->id);
			continue;
		}
		if (poller_device_status(env->poller, d, &ds) != 0) {
			add_line(r, "device %s: not polled", d->id);
			continue;
		}
		if (ds.last_ok_ms)
			time_format_iso8601(ds.last_ok_ms, last, sizeof(last));
		if (ds.reads == 0)
			add_line(r, "device %s: waiting for its first poll", d->id);
		else if (ds.last_error[0])
			add_line(r,
				 "device %s: failing: %s (last good read %s; %" PRIu64
				 " of %" PRIu64 " polls failed)",
				 d->id, ds.last_error, last, ds.failures, ds.reads);
		else
			add_line(r,
				 "device %s: ok (last read %s; %" PRIu64 " of %" PRIu64
				 " polls failed)",
				 d->id, last, ds.failures, ds.reads);
	}
	r->ok = true;
}

void command_execute(const struct command_env *env, const char *text, size_t len,
		     struct command_reply *r)
{
	struct command *c = malloc(sizeof(*c));
	char why[512];

	memset(r, 0, sizeof(*r));
	if (!c) {
		r->nomem = true;
		return;
	}
	if (command_parse(text, len, c, why, sizeof(why)) != 0) {
		reply_error(r, "%s", why);
		free(c);
		return;
	}
	if (!permitted(env, c, r)) {
		free(c);
		return;
	}
	switch (c->kind) {
	case CMD_AT: r->ok = true; break;
	case CMD_ATI:
	case CMD_VERSION:
		add_line(r, "modbridge %s", MODBRIDGE_VERSION);
		r->ok = true;
		break;
	case CMD_CGSN:
		add_line(r, "%s", env->cfg->imei);
		r->ok = true;
		break;
	case CMD_CSQ:
	case CMD_MODEM: do_modem(env, c, r); break;
	case CMD_STATUS: do_status(env, r); break;
	case CMD_GETPARAM: do_getparam(env, c, r); break;
	case CMD_SETPARAM: do_setparam(env, c, r); break;
	case CMD_GETCONFIG: do_getconfig(env, r); break;
	case CMD_GETMODBUS:
	case CMD_SETMODBUS: do_modbus(env, c, r); break;
	case CMD_REBOOT:
		if (env->daemon) {
			add_line(r, "restarting");
			r->ok = true;
			r->restart = true;
		} else {
			reply_error(
				r,
				"REBOOT restarts a running daemon, and there is none in this process (use systemctl restart modbridge)");
		}
		break;
	}
	free(c);
}
