/*
 * config_values.c - the loader's value parsers: integers, booleans, words from a table,
 * host[:port] and periods, from text alone (no YAML, no diagnostics: the callers in
 * config_get.c and the section files report what these refuse); see config_internal.h.
 * Pure functions; thread-safe.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "error.h"

#define PERIOD_MIN_MS 100LL
#define PERIOD_MAX_MS (7LL * 24 * 3600 * 1000)

/* Strict decimal or 0x hex, optional sign; saturates so huge numbers fail range checks. */
bool config_parse_ll(const char *s, long long *out)
{
	unsigned long long v = 0;
	bool neg = false, over = false;
	unsigned base = 10;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
		else
			return false;
		if (v > (ULLONG_MAX - d) / base)
			over = true;
		else
			v = v * base + d;
	}
	if (over || v > (unsigned long long)LLONG_MAX)
		v = (unsigned long long)LLONG_MAX;
	*out = neg ? -(long long)v : (long long)v;
	return true;
}

bool config_parse_bool(const char *t, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(t, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(t, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

const struct config_choice *config_find_choice(const char *t, const struct config_choice *tab,
					       size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(t, tab[i].name))
			return &tab[i];
	return NULL;
}

static bool valid_hostname(const char *h)
{
	bool digits_dots = true;

	if (!*h || !isalnum((unsigned char)*h))
		return false;
	for (const char *p = h; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
		if (!isdigit((unsigned char)*p) && *p != '.')
			digits_dots = false;
	}
	if (digits_dots) {
		struct in_addr a;

		return inet_pton(AF_INET, h, &a) == 1;
	}
	return true;
}

/*
 * Splits "host[:port]" or "[ipv6][:port]" into a malloc'd host and a port. On failure
 * writes the reason into err and returns MB_ERR_INVAL (or MB_ERR_NOMEM).
 */
int config_parse_host_port(const char *text, int default_port, char **host, int *port, char *err,
			   size_t errlen)
{
	const char *hs, *he, *ps = NULL;
	long long p = default_port;
	char *h;

	if (text[0] == '[') {
		hs = text + 1;
		he = strchr(hs, ']');
		if (!he) {
			snprintf(err, errlen, "'%.64s' has no closing ']' (expected [ipv6]:port)",
				 text);
			return MB_ERR_INVAL;
		}
		if (he[1] == ':')
			ps = he + 2;
		else if (he[1]) {
			snprintf(err, errlen,
				 "'%.64s': unexpected text after ']' (expected [ipv6]:port)", text);
			return MB_ERR_INVAL;
		}
	} else {
		hs = text;
		he = strchr(text, ':');
		if (he && strchr(he + 1, ':')) {
			snprintf(err, errlen,
				 "'%.64s': write IPv6 addresses in brackets (expected [ipv6]:port)",
				 text);
			return MB_ERR_INVAL;
		}
		if (he)
			ps = he + 1;
		else
			he = text + strlen(text);
	}
	if (ps && (!*ps || !config_parse_ll(ps, &p) || !isdigit((unsigned char)*ps) ||
		   (ps[0] == '0' && (ps[1] == 'x' || ps[1] == 'X')))) {
		snprintf(err, errlen, "'%.64s': port '%.16s' is not a number (allowed: 1..65535)",
			 text, ps);
		return MB_ERR_INVAL;
	}
	if (p < 1 || p > 65535) {
		snprintf(err, errlen, "'%.64s': port %lld is out of range (allowed: 1..65535)",
			 text, p);
		return MB_ERR_INVAL;
	}
	h = strndup(hs, (size_t)(he - hs));
	if (!h)
		return MB_ERR_NOMEM;
	if (text[0] == '[') {
		struct in6_addr a6;

		if (inet_pton(AF_INET6, h, &a6) != 1) {
			snprintf(err, errlen, "'%.64s' is not a valid IPv6 address", h);
			free(h);
			return MB_ERR_INVAL;
		}
	} else if (!valid_hostname(h)) {
		snprintf(err, errlen,
			 "'%.64s' is not a valid host name or IPv4 address (allowed: letters, digits, '-', '.', '_')",
			 h);
		free(h);
		return MB_ERR_INVAL;
	}
	*host = h;
	*port = (int)p;
	return 0;
}

/*
 * Parses a period: a number of minutes ("10", "0.5") or a number with a unit ("500ms",
 * "30s", "10m", "10min", "1h"). Returns 0, -1 when it is not a period, -2 out of range.
 * Fixed-point arithmetic: 0.1 minute must be exactly 6000 ms.
 */
int config_parse_period(const char *t, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{"", 60000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000},
	};
	uint64_t ip = 0, frac = 0, scale = 1;
	bool digits = false, over = false;
	const char *p = t;
	size_t u;

	for (; isdigit((unsigned char)*p); p++) {
		digits = true;
		if (ip > 10000000000ULL)
			over = true;
		else
			ip = ip * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++) {
			digits = true;
			/* Digits beyond micro-units cannot change a millisecond result. */
			if (scale < 1000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
		}
	}
	if (!digits)
		return -1;
	while (*p == ' ')
		p++;
	for (u = 0; u < ARRAY_SIZE(units); u++)
		if (!strcasecmp(p, units[u].unit))
			break;
	if (u == ARRAY_SIZE(units))
		return -1;
	if (over)
		return -2;
	uint64_t ms =
		ip * (uint64_t)units[u].ms + (frac * (uint64_t)units[u].ms + scale / 2) / scale;
	if (ms < PERIOD_MIN_MS || ms > PERIOD_MAX_MS)
		return -2;
	*out = (int64_t)ms;
	return 0;
}
