/*
 * topic.c - MQTT topic rules; see topic.h.
 *
 * One matcher for the whole program: the loader uses it to refuse a reply topic that a
 * command topic would match (a loop), the remote commands to route what arrives. It
 * follows the broker's rules, so what the loader calls a match is what a broker would
 * deliver. Pure functions, no dependencies.
 */
#include "topic.h"

#include <stddef.h>
#include <string.h>

/* "" when the wildcards of t stand where a filter may have them, else the reason. */
static const char *wildcard_problem(const char *t)
{
	for (const char *p = t; *p; p++) {
		bool level_start = p == t || p[-1] == '/';
		bool level_end = p[1] == '\0' || p[1] == '/';

		if (*p == '+' && !(level_start && level_end))
			return "'+' must be a whole topic level (such as a/+/b)";
		if (*p == '#' && !(level_start && p[1] == '\0'))
			return "'#' must be the last topic level (such as a/#)";
	}
	return "";
}

const char *topic_publish_problem(const char *t)
{
	if (!*t)
		return "must not be empty";
	if (strpbrk(t, "+#"))
		return "must not contain the wildcards '+' or '#' (allowed: a plain topic such as [IMEI]/logger)";
	if (strlen(t) > TOPIC_MAX_LEN)
		return "is longer than 65535 bytes";
	return "";
}

const char *topic_filter_problem(const char *t)
{
	if (!*t)
		return "must not be empty";
	if (strlen(t) > TOPIC_MAX_LEN)
		return "is longer than 65535 bytes";
	return wildcard_problem(t);
}

/*
 * MQTT topic matching (the broker's rules): '+' matches one level, '#' the rest, including
 * the parent level itself ("a/#" matches "a").
 */
bool topic_matches(const char *filter, const char *topic)
{
	const char *f = filter, *t = topic;

	if (!f || !t || !*f || !*t || *wildcard_problem(f) || strpbrk(t, "+#"))
		return false;
	/* Wildcards do not reach into $SYS and the like; "$x" filters only match "$" topics. */
	if ((f[0] == '$') != (t[0] == '$'))
		return false;
	for (;;) {
		if (f[0] == '#' && f[1] == '\0')
			return true;
		if (f[0] == '+' && (f[1] == '/' || f[1] == '\0')) {
			while (*t && *t != '/')
				t++;
			f++;
		} else {
			while (*f && *f != '/' && *f == *t) {
				f++;
				t++;
			}
			if ((*f && *f != '/') || (*t && *t != '/'))
				return false;
		}
		if (!*f && !*t)
			return true;
		if (*f == '/' && f[1] == '#' && f[2] == '\0' && !*t)
			return true;
		if (*f != '/' || *t != '/')
			return false;
		f++;
		t++;
	}
}

/*
 * Valid UTF-8 as MQTT wants it (MQTT 3.1.1 section 1.5.3): no overlong forms, no
 * surrogates, nothing above U+10FFFF, no U+0000, none of the control characters
 * U+0001..U+001F and U+007F..U+009F, and no non-characters (U+FDD0..U+FDEF, U+xFFFE,
 * U+xFFFF). libmosquitto refuses the same (mosquitto_validate_utf8 in 2.0.11).
 */
static bool mqtt_utf8(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		size_t n;
		unsigned long cp;

		if (c < 0x80) {
			n = 1;
			cp = c;
		} else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
			n = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
			n = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (size_t j = 1; j < n; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F))
			return false;
		if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
			return false;
		i += n;
	}
	return true;
}

bool topic_publishable(const char *topic)
{
	return topic && !*topic_publish_problem(topic) &&
	       mqtt_utf8((const unsigned char *)topic, strlen(topic));
}
