/*
 * ftpname.c - file names for the FTP uplink; see ftpname.h.
 */
#include "ftpname.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"

/* Appends text to out[*pos], safe for a file name. Returns false when it does not fit. */
static bool put(char *out, size_t len, size_t *pos, const char *text, bool clean)
{
	for (; *text; text++) {
		if (*pos + 1 >= len)
			return false;
		char ch = *text;
		if (clean && (ch == '/' || (unsigned char)ch < 0x20 || ch == 0x7f))
			ch = '_';
		out[(*pos)++] = ch;
	}
	out[*pos] = '\0';
	return true;
}

/* Expands the [..] fields; strftime runs afterwards on the result. */
static int expand_fields(const char *pattern, const char *imei, const char *id, const char *n,
			 char *out, size_t len, bool *has_n, char *why, size_t whylen)
{
	size_t pos = 0;
	out[0] = '\0';
	*has_n = false;
	for (const char *p = pattern; *p;) {
		if (*p == '[') {
			const char *close = strchr(p, ']');
			size_t flen = close ? (size_t)(close - p + 1) : 0;
			const char *value = NULL;
			if (flen == 6 && !strncmp(p, "[IMEI]", 6))
				value = imei;
			else if (flen == 4 && !strncmp(p, "[ID]", 4))
				value = id;
			else if (flen == 3 && !strncmp(p, "[N]", 3)) {
				value = n;
				*has_n = true;
			}
			if (!value) {
				snprintf(why, whylen,
					 "unknown field '%.*s' (allowed: [IMEI], [ID], [N] and "
					 "strftime fields such as %%Y%%m%%d)",
					 close ? (int)(flen > 16 ? 16 : flen) : 1, p);
				return MB_ERR_INVAL;
			}
			/* A substituted '%' must not become a strftime field. */
			for (const char *v = value; *v; v++) {
				char one[3] = {*v, 0, 0};
				if (*v == '%')
					one[1] = '%';
				if (!put(out, len, &pos, one, true))
					goto toolong;
			}
			p += flen;
			continue;
		}
		char one[2] = {*p++, 0};
		if (!put(out, len, &pos, one, false))
			goto toolong;
	}
	return 0;
toolong:
	snprintf(why, whylen, "the name is longer than %d bytes", FTPNAME_MAX - 1);
	return MB_ERR_INVAL;
}

static int format(const char *pattern, const char *imei, const char *id, int64_t first_id,
		  int64_t ts_ms, char *out, size_t len, char *why, size_t whylen)
{
	char n[32], fields[FTPNAME_MAX], named[FTPNAME_MAX];
	bool has_n;

	if (first_id > 0)
		snprintf(n, sizeof(n), "%" PRId64, first_id);
	else
		snprintf(n, sizeof(n), "m%" PRId64, ts_ms);
	int rc = expand_fields(pattern, imei ? imei : "", id ? id : "", n, fields, sizeof(fields),
			       &has_n, why, whylen);
	if (rc)
		return rc;
	if (!has_n) {
		/* "-N" before the extension: "a_1.json" -> "a_1-42.json". */
		const char *dot = strrchr(fields, '.');
		size_t stem = dot && dot != fields ? (size_t)(dot - fields) : strlen(fields);
		if (snprintf(named, sizeof(named), "%.*s-%s%s", (int)stem, fields, n,
			     fields + stem) >= (int)sizeof(named)) {
			snprintf(why, whylen, "the name is longer than %d bytes", FTPNAME_MAX - 1);
			return MB_ERR_INVAL;
		}
	} else {
		memcpy(named, fields, sizeof(named));
	}
	time_t t = (time_t)(ts_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	/* The pattern is the user's, by design: strftime fields are part of the syntax. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	size_t w = len ? strftime(out, len, named, &tm) : 0;
#pragma GCC diagnostic pop
	if (w == 0) {
		snprintf(why, whylen,
			 "the pattern makes an empty name, or one longer than %zu bytes",
			 len ? len - 1 : 0);
		return MB_ERR_INVAL;
	}
	if (strchr(out, '/')) {
		snprintf(why, whylen,
			 "'%.64s' holds a '/': a file name, not a path (the directory "
			 "is in the URL)",
			 out);
		return MB_ERR_INVAL;
	}
	if (!strcmp(out, ".") || !strcmp(out, "..")) {
		snprintf(why, whylen, "'%s' is not a file name", out);
		return MB_ERR_INVAL;
	}
	return 0;
}

int ftpname_check(const char *pattern, char *why, size_t len)
{
	char out[FTPNAME_MAX];
	if (!*pattern) {
		snprintf(why, len, "must not be empty (remove the key for the default %s)",
			 FTPNAME_DEFAULT);
		return MB_ERR_INVAL;
	}
	if (strchr(pattern, '/')) {
		snprintf(why, len,
			 "'%.64s' holds a '/': a file name, not a path (the directory is in "
			 "the URL)",
			 pattern);
		return MB_ERR_INVAL;
	}
	return format(pattern, "357299070082380", "ID-1", 1, 0, out, sizeof(out), why, len);
}

int ftpname_format(const char *pattern, const char *imei, const char *logger_id, int64_t first_id,
		   int64_t ts_ms, char *out, size_t len)
{
	char why[160];
	return format(pattern, imei, logger_id, first_id, ts_ms, out, len, why, sizeof(why));
}

int ftpname_temp(const char *name, char *out, size_t len)
{
	return snprintf(out, len, ".%s.part", name) < (int)len ? 0 : MB_ERR_INVAL;
}
