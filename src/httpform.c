/*
 * httpform.c - form bodies, urlencoded and multipart; see httpform.h.
 *
 * Both parsers work on the whole body in memory (the server bounds its size) and copy
 * each name and value out, so a field outlives the request buffer. Multipart follows RFC
 * 7578 as browsers send it: CRLF line ends, a boundary line "--B", part headers up to an
 * empty line, the content up to "CRLF--B", and "--B--" at the end. Header names are not
 * case-sensitive; parameters may be quoted (with \" escapes, as Chromium writes a '"' in a
 * file name as %22 and Firefox as \").
 */
#include "httpform.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

#define BOUNDARY_MAX 70 /* RFC 2046 */
#define PART_HEADERS_MAX 8192

static int refuse(char *why, size_t why_len, const char *msg)
{
	if (why && why_len)
		snprintf(why, why_len, "%s", msg);
	return MB_ERR_INVAL;
}

static int add_field(struct httpform *form, char *name, char *value, size_t value_len,
		     char *filename, char *content_type)
{
	struct httpform_field *f;

	if (!name || !value)
		goto nomem;
	f = realloc(form->fields, (form->count + 1) * sizeof(*f));
	if (!f)
		goto nomem;
	form->fields = f;
	f[form->count++] = (struct httpform_field){name, value, value_len, filename, content_type};
	return 0;
nomem:
	free(name);
	free(value);
	free(filename);
	free(content_type);
	return MB_ERR_NOMEM;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes s[0..n) (%XX, '+') into a new NUL-terminated string; NULL on a bad escape
 * (*bad set) or out of memory. */
static char *url_decode(const char *s, size_t n, size_t *out_len, bool *bad)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%') {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				free(out);
				*bad = true;
				return NULL;
			}
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	*out_len = (size_t)(o - out);
	return out;
}

int httpform_parse_urlencoded(const char *body, size_t len, struct httpform *form, char *why,
			      size_t why_len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *amp = memchr(body + pos, '&', len - pos);
		size_t end = amp ? (size_t)(amp - body) : len;
		const char *pair = body + pos, *eq = memchr(pair, '=', end - pos);
		size_t nlen = eq ? (size_t)(eq - pair) : end - pos, name_len, value_len;
		bool bad = false;
		char *name, *value;

		pos = end + 1;
		if (end == (size_t)(pair - body))
			continue; /* "a=1&&b=2": an empty pair is nothing */
		if (form->count >= HTTPFORM_MAX_FIELDS)
			return refuse(why, why_len, "too many form fields");
		if (nlen == 0)
			return refuse(why, why_len, "a form field without a name");
		name = url_decode(pair, nlen, &name_len, &bad);
		if (!name)
			return bad ? refuse(why, why_len, "a bad %-escape in a form field name")
				   : MB_ERR_NOMEM;
		if (name_len == 0 || name_len > HTTPFORM_NAME_MAX || strlen(name) != name_len) {
			free(name);
			return refuse(why, why_len,
				      "a form field name that is empty, too long or holds NUL");
		}
		value = eq ? url_decode(eq + 1, (size_t)(body + end - eq - 1), &value_len, &bad)
			   : url_decode("", 0, &value_len, &bad);
		if (!value) {
			free(name);
			return bad ? refuse(why, why_len, "a bad %-escape in a form field value")
				   : MB_ERR_NOMEM;
		}
		int rc = add_field(form, name, value, value_len, NULL, NULL);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- header parameters */

/*
 * Finds parameter key in a header value like `form-data; name="a"; filename="b.crt"` and
 * returns its malloc'd, unquoted value; NULL when absent (*bad false), malformed (*bad
 * true) or out of memory (*nomem true).
 */
static char *header_param(const char *v, const char *key, bool *bad, bool *nomem)
{
	size_t klen = strlen(key);
	const char *p = strchr(v, ';');

	while (p) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncasecmp(p, key, klen) && p[klen] == '=') {
			const char *s = p + klen + 1;
			char *out = malloc(strlen(s) + 1), *o = out;

			if (!out) {
				*nomem = true;
				return NULL;
			}
			if (*s == '"') {
				for (s++; *s && *s != '"'; s++) {
					if (*s == '\\' && s[1])
						s++;
					*o++ = *s;
				}
				if (*s != '"') {
					free(out);
					*bad = true;
					return NULL;
				}
			} else {
				while (*s && *s != ';' && *s != ' ' && *s != '\t')
					*o++ = *s++;
			}
			*o = '\0';
			return out;
		}
		/* Skip this parameter, quoted parts included (a ';' may be inside quotes). */
		bool quoted = false;
		for (; *p && (quoted || *p != ';'); p++) {
			if (*p == '\\' && quoted && p[1])
				p++;
			else if (*p == '"')
				quoted = !quoted;
		}
		p = *p ? p : NULL;
	}
	return NULL;
}

/* The boundary of a multipart/form-data content type into b (BOUNDARY_MAX + 1 bytes). */
static int get_boundary(const char *ct, char *b, char *why, size_t why_len)
{
	bool bad = false, nomem = false;
	char *v;

	if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0 ||
	    (ct[19] && ct[19] != ';' && ct[19] != ' '))
		return refuse(why, why_len, "not a multipart/form-data body");
	v = header_param(ct, "boundary", &bad, &nomem);
	if (nomem)
		return MB_ERR_NOMEM;
	if (!v || !*v || strlen(v) > BOUNDARY_MAX) {
		free(v);
		return refuse(why, why_len, "a multipart body without a valid boundary");
	}
	memcpy(b, v, strlen(v) + 1);
	free(v);
	return 0;
}

static const char *find_bytes(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	if (nlen == 0 || hlen < nlen)
		return NULL;
	for (const char *p = hay; (p = memchr(p, needle[0], hlen - (size_t)(p - hay) - nlen + 1));
	     p++) {
		if (!memcmp(p, needle, nlen))
			return p;
		if ((size_t)(p - hay) + nlen >= hlen)
			break;
	}
	return NULL;
}

/* Reads the headers of one part (text up to an empty line) into name, filename, type. */
static int part_headers(const char *h, size_t hlen, char **name, char **filename, char **type,
			char *why, size_t why_len)
{
	char *text;
	bool have_disp = false, bad = false, nomem = false;
	int rc = 0;

	if (hlen > PART_HEADERS_MAX)
		return refuse(why, why_len, "a multipart part with headers too long");
	if (memchr(h, '\0', hlen))
		return refuse(why, why_len, "a NUL byte in the headers of a multipart part");
	text = strndup(h, hlen);
	if (!text)
		return MB_ERR_NOMEM;
	for (char *line = text, *next; line && *line; line = next) {
		char *crlf = strstr(line, "\r\n");

		next = crlf ? crlf + 2 : NULL;
		if (crlf)
			*crlf = '\0';
		char *colon = strchr(line, ':');
		if (!colon) {
			rc = refuse(why, why_len, "a multipart header line without ':'");
			break;
		}
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strcasecmp(line, "Content-Disposition")) {
			if (have_disp) {
				rc = refuse(why, why_len,
					    "a multipart part with two Content-Disposition headers");
				break;
			}
			have_disp = true;
			if (strncasecmp(v, "form-data", 9) != 0 || (v[9] && v[9] != ';')) {
				rc = refuse(why, why_len, "a multipart part that is not form-data");
				break;
			}
			*name = header_param(v, "name", &bad, &nomem);
			if (!bad && !nomem)
				*filename = header_param(v, "filename", &bad, &nomem);
		} else if (!strcasecmp(line, "Content-Type") && !*type) {
			if (!(*type = strdup(v)))
				nomem = true;
		}
		if (bad || nomem)
			break;
	}
	free(text);
	if (rc)
		return rc;
	if (nomem)
		return MB_ERR_NOMEM;
	if (bad)
		return refuse(why, why_len, "a badly quoted parameter in a multipart header");
	if (!have_disp || !*name || !**name || strlen(*name) > HTTPFORM_NAME_MAX)
		return refuse(why, why_len, "a multipart part without a form-data name");
	return 0;
}

int httpform_parse_multipart(const char *content_type, const char *body, size_t len,
			     struct httpform *form, char *why, size_t why_len)
{
	char boundary[BOUNDARY_MAX + 1], delim[BOUNDARY_MAX + 5];
	size_t dlen, pos;
	int rc = get_boundary(content_type, boundary, why, why_len);

	if (rc)
		return rc;
	/* The first boundary line may come first, or after a preamble ending in CRLF. */
	dlen = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
	if (len >= dlen && !memcmp(body, delim, dlen)) {
		pos = dlen;
	} else {
		dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
		const char *first = find_bytes(body, len, delim, dlen);
		if (!first)
			return refuse(why, why_len, "a multipart body without its boundary");
		pos = (size_t)(first - body) + dlen;
	}
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	for (;;) {
		/* After a boundary: "--" ends the body, CRLF starts a part. */
		if (len - pos >= 2 && !memcmp(body + pos, "--", 2))
			return 0;
		if (len - pos < 2 || memcmp(body + pos, "\r\n", 2) != 0)
			return refuse(why, why_len,
				      "a multipart boundary not followed by a line end");
		pos += 2;
		if (form->count >= HTTPFORM_MAX_FIELDS)
			return refuse(why, why_len, "too many multipart parts");
		const char *hend = find_bytes(body + pos, len - pos, "\r\n\r\n", 4);
		size_t hlen;
		if (len - pos >= 2 && !memcmp(body + pos, "\r\n", 2)) {
			hlen = 0; /* no headers at all: refused below, for want of a name */
		} else if (!hend) {
			return refuse(why, why_len,
				      "a multipart part without the end of its headers");
		} else {
			hlen = (size_t)(hend - body - (ptrdiff_t)pos);
		}
		char *name = NULL, *filename = NULL, *type = NULL;
		rc = part_headers(body + pos, hlen, &name, &filename, &type, why, why_len);
		if (rc) {
			free(name);
			free(filename);
			free(type);
			return rc;
		}
		pos += hlen + (hlen ? 4 : 2);
		const char *end = find_bytes(body + pos, len - pos, delim, dlen);
		if (!end) {
			free(name);
			free(filename);
			free(type);
			return refuse(why, why_len,
				      "a multipart body without its closing boundary");
		}
		size_t vlen = (size_t)(end - body - (ptrdiff_t)pos);
		char *value = malloc(vlen + 1);
		if (value) {
			memcpy(value, body + pos, vlen);
			value[vlen] = '\0';
		}
		rc = add_field(form, name, value, vlen, filename, type);
		if (rc)
			return rc;
		pos += vlen + dlen;
	}
}

int httpform_parse(const char *content_type, const char *body, size_t len, struct httpform *form,
		   char *why, size_t why_len)
{
	if (!content_type || !*content_type) {
		if (len == 0)
			return 0;
		return refuse(why, why_len, "a request body without a Content-Type");
	}
	if (!strncasecmp(content_type, "application/x-www-form-urlencoded", 33) &&
	    (!content_type[33] || content_type[33] == ';'))
		return httpform_parse_urlencoded(body, len, form, why, why_len);
	if (!strncasecmp(content_type, "multipart/form-data", 19))
		return httpform_parse_multipart(content_type, body, len, form, why, why_len);
	return refuse(
		why, why_len,
		"unsupported Content-Type (allowed: application/x-www-form-urlencoded, multipart/form-data)");
}

const struct httpform_field *httpform_find(const struct httpform *form, const char *name)
{
	for (size_t i = 0; form && i < form->count; i++)
		if (!strcmp(form->fields[i].name, name))
			return &form->fields[i];
	return NULL;
}

const char *httpform_get(const struct httpform *form, const char *name)
{
	const struct httpform_field *f = httpform_find(form, name);

	return f ? f->value : NULL;
}

void httpform_free(struct httpform *form)
{
	if (!form)
		return;
	for (size_t i = 0; i < form->count; i++) {
		free(form->fields[i].name);
		free(form->fields[i].value);
		free(form->fields[i].filename);
		free(form->fields[i].content_type);
	}
	free(form->fields);
	form->fields = NULL;
	form->count = 0;
}

bool httpform_safe_filename(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || name[0] == '.' || strstr(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}
