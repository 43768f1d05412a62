/*
 * command_reply.c - building a command's reply, and its text; see command.h and
 * command_internal.h.
 *
 * A reply is a growing buffer of information lines and a final verdict. Running out of
 * memory while building it is remembered (nomem) rather than reported at each line, so
 * the commands can add lines without checking, and the reply then says "out of memory".
 * A reply belongs to the thread executing its command.
 */
#include "command.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command_internal.h"

void command_reply_line(struct command_reply *r, const char *fmt, ...)
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

void command_reply_lines(struct command_reply *r, const char *text)
{
	while (text && *text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);

		command_reply_line(r, "%.*s", (int)n, text);
		text = nl ? nl + 1 : NULL;
	}
}

void command_reply_error(struct command_reply *r, const char *fmt, ...)
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
