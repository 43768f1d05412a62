/*
 * confedit_path.c - key paths of the key editor: their syntax, secret names, and the walk
 * along a path through a YAML document; see confedit.h and confedit_internal.h.
 *
 * A key path names one value the way the loader's diagnostics do: names joined by '.',
 * each optionally followed by a list position ("modbus.devices[1].period"). The walk
 * stops where the document stops having the key and says why, so confedit.c can either
 * report it or know where a new key would go. Pure functions; thread-safe.
 */
#include "confedit_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

void confedit_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

bool confedit_is_secret(const char *key)
{
	const char *name = key ? strrchr(key, '.') : NULL;
	char lower[CONFEDIT_NAME_MAX + 1];
	size_t n = 0;

	name = name ? name + 1 : key;
	if (!name)
		return false;
	/* Not case-sensitive: a mistyped "Password" must not put the value in the log. */
	for (; n < CONFEDIT_NAME_MAX && name[n]; n++)
		lower[n] = (char)tolower((unsigned char)name[n]);
	lower[n] = '\0';
	/* "authorization" and "api-key": http.headers values that carry a credential. */
	return strstr(lower, "password") || strstr(lower, "secret") || strstr(lower, "token") ||
	       strstr(lower, "authorization") || strstr(lower, "api-key") ||
	       strstr(lower, "api_key") || strstr(lower, "apikey") || !strcmp(lower, "psk");
}

/* ---------------------------------------------------------------- key paths */

int confedit_parse_key(const char *key, struct confedit_key *kp, char *err, size_t errlen)
{
	const char *p = key;

	kp->n = 0;
	if (!key || !*key) {
		confedit_err(err, errlen,
			     "empty key (such as mqtt.qos or modbus.devices[0].period)");
		return MB_ERR_INVAL;
	}
	if (strlen(key) > CONFEDIT_KEY_MAX) {
		confedit_err(err, errlen, "key longer than %d characters", CONFEDIT_KEY_MAX);
		return MB_ERR_INVAL;
	}
	for (;;) {
		struct confedit_segment *s;
		size_t n = 0;

		if (kp->n == CONFEDIT_MAX_SEGMENTS) {
			confedit_err(err, errlen, "key '%s' is nested too deeply", key);
			return MB_ERR_INVAL;
		}
		s = &kp->seg[kp->n];
		while (isalnum((unsigned char)p[n]) || p[n] == '_')
			n++;
		if (n == 0 || n > CONFEDIT_NAME_MAX) {
			confedit_err(err, errlen,
				     "'%s' is not a key (names of letters, digits and _, joined by '.', with [n] for list entries, such as modbus.devices[0].period)",
				     key);
			return MB_ERR_INVAL;
		}
		memcpy(s->name, p, n);
		s->name[n] = '\0';
		s->index = -1;
		p += n;
		if (*p == '[') {
			long idx = 0;

			p++;
			if (!isdigit((unsigned char)*p)) {
				confedit_err(err, errlen,
					     "'%s': expected a list position such as [0]", key);
				return MB_ERR_INVAL;
			}
			while (isdigit((unsigned char)*p)) {
				idx = idx * 10 + (*p - '0');
				if (idx > 100000) {
					confedit_err(err, errlen, "'%s': list position too large",
						     key);
					return MB_ERR_INVAL;
				}
				p++;
			}
			if (*p != ']') {
				confedit_err(err, errlen,
					     "'%s': expected ']' after the list position", key);
				return MB_ERR_INVAL;
			}
			p++;
			s->index = idx;
		}
		kp->n++;
		if (*p == '\0')
			return 0;
		if (*p != '.') {
			confedit_err(err, errlen,
				     "'%s' is not a key (names of letters, digits and _, joined by '.', with [n] for list entries)",
				     key);
			return MB_ERR_INVAL;
		}
		p++;
	}
}

int confedit_check_key(const char *key, char *err, size_t errlen)
{
	struct confedit_key kp;

	return confedit_parse_key(key, &kp, err, errlen);
}

void confedit_key_prefix(const struct confedit_key *kp, size_t upto, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i <= upto && i < kp->n && used < len; i++) {
		int w;

		if (kp->seg[i].index >= 0)
			w = snprintf(buf + used, len - used, "%s%s[%ld]", i ? "." : "",
				     kp->seg[i].name, kp->seg[i].index);
		else
			w = snprintf(buf + used, len - used, "%s%s", i ? "." : "", kp->seg[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* ---------------------------------------------------------------- the walk */

const char *confedit_kind(const struct yamldoc_node *n)
{
	switch (yamldoc_kind(n)) {
	case YAMLDOC_NONE: return "nothing";
	case YAMLDOC_MAPPING: return "a section";
	case YAMLDOC_SEQUENCE: return "a list";
	default: return "a value";
	}
}

int confedit_walk(const struct yamldoc *doc, const struct confedit_key *kp, struct confedit_walk *w,
		  char *err, size_t errlen)
{
	const struct yamldoc_node *cur = yamldoc_root(doc);
	char where[CONFEDIT_KEY_MAX + 16];

	memset(w, 0, sizeof(*w));
	if (cur && yamldoc_is_null(cur))
		cur = NULL;
	if (cur && yamldoc_kind(cur) != YAMLDOC_MAPPING) {
		confedit_err(err, errlen, "the configuration file is not a mapping of sections");
		return MB_ERR_INVAL;
	}
	for (size_t i = 0; i < kp->n; i++) {
		const struct confedit_segment *s = &kp->seg[i];
		long pr;

		w->parent = cur;
		w->depth = i;
		if (!cur)
			return 0; /* empty document or null section: everything from here is missing */
		pr = yamldoc_map_find(doc, cur, s->name);
		if (pr < 0)
			return 0;
		w->owner = cur;
		w->key_node = yamldoc_map_key(doc, cur, (size_t)pr);
		cur = yamldoc_map_value(doc, cur, (size_t)pr);
		if (s->index >= 0) {
			confedit_key_prefix(kp, i, where, sizeof(where));
			if (yamldoc_kind(cur) != YAMLDOC_SEQUENCE) {
				confedit_err(err, errlen, "%s: '%s' is %s, not a list", where,
					     s->name, confedit_kind(cur));
				return MB_ERR_INVAL;
			}
			size_t len = yamldoc_seq_len(cur);
			if ((size_t)s->index >= len) {
				confedit_err(err, errlen,
					     "%s: '%s' has %zu entries (positions 0..%zu)", where,
					     s->name, len, len ? len - 1 : 0);
				return MB_ERR_INVAL;
			}
			cur = yamldoc_seq_item(doc, cur, (size_t)s->index);
		}
		if (i + 1 < kp->n) {
			confedit_key_prefix(kp, i, where, sizeof(where));
			if (cur && yamldoc_is_null(cur)) {
				w->null_value = cur;
				w->parent = NULL;
				w->depth = i + 1;
				return 0;
			}
			if (yamldoc_kind(cur) != YAMLDOC_MAPPING) {
				if (yamldoc_kind(cur) == YAMLDOC_SEQUENCE)
					confedit_err(err, errlen,
						     "%s is a list: name an entry, such as %s[0]",
						     where, where);
				else
					confedit_err(err, errlen, "%s is %s, not a section", where,
						     confedit_kind(cur));
				return MB_ERR_INVAL;
			}
		}
	}
	w->value = cur;
	w->depth = kp->n;
	return 0;
}
