/*
 * ftpbatch.c - messages into files for the FTP uplink; see ftpbatch.h.
 */
#include "ftpbatch.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

void ftpbatch_init(struct ftpbatch *b, const struct ftpbatch_options *opt)
{
	memset(b, 0, sizeof(*b));
	b->opt = *opt;
	b->ready_tail = &b->ready;
}

int64_t ftpbatch_boundary(int64_t now_ms, int64_t interval_ms)
{
	return (now_ms / interval_ms + 1) * interval_ms;
}

static int reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap && *buf)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	char *grown = realloc(*buf, n);
	if (!grown)
		return MB_ERR_NOMEM;
	*buf = grown;
	*cap = n;
	return 0;
}

static int grow_tokens(struct ftpfile *f)
{
	if (f->ntokens < f->tokens_cap)
		return 0;
	size_t n = f->tokens_cap ? f->tokens_cap * 2 : 64;
	int *grown = realloc(f->tokens, n * sizeof(*grown));
	if (!grown)
		return MB_ERR_NOMEM;
	f->tokens = grown;
	f->tokens_cap = n;
	return 0;
}

static void cut(struct ftpbatch *b)
{
	struct ftpfile *f = b->open;
	if (!f)
		return;
	b->open = NULL;
	if (b->opt.format == FTP_ARRAY) {
		f->body[f->len++] = ']'; /* room kept by ftpbatch_add */
		f->body[f->len] = '\0';
	}
	*b->ready_tail = f;
	b->ready_tail = &f->next;
	b->nready++;
}

int ftpbatch_add(struct ftpbatch *b, const char *payload, size_t len, size_t count,
		 int64_t first_id, int64_t first_ts_ms, int token, int64_t now_ms)
{
	size_t max = (size_t)b->opt.max_readings;
	if (b->open && b->open->readings + count > max)
		cut(b);
	struct ftpfile *f = b->open;
	bool fresh = f == NULL;
	if (fresh) {
		f = calloc(1, sizeof(*f));
		if (!f)
			return MB_ERR_NOMEM;
		f->first_id = first_id;
		f->first_ts_ms = first_ts_ms;
		f->cut_at_ms = ftpbatch_boundary(now_ms, b->opt.interval_ms);
	}
	/* Array messages in an array file: splice the elements, without the brackets. */
	const char *p = payload;
	size_t n = len;
	if (b->opt.format == FTP_ARRAY && b->opt.array_messages && n >= 2 && p[0] == '[') {
		p++;
		n -= 2;
	}
	/* Room for '[' or ',' or '\n', the message, the closing ']' and a NUL. */
	if (reserve(&f->body, &f->cap, f->len + n + 4) != 0 || grow_tokens(f) != 0) {
		if (fresh)
			ftpfile_free(f);
		return MB_ERR_NOMEM;
	}
	if (b->opt.format == FTP_ARRAY)
		f->body[f->len++] = f->readings ? ',' : '[';
	memcpy(f->body + f->len, p, n);
	f->len += n;
	if (b->opt.format == FTP_JSONL)
		f->body[f->len++] = '\n';
	f->body[f->len] = '\0';
	f->tokens[f->ntokens++] = token;
	f->readings += count;
	b->open = f;
	if (f->readings >= max)
		cut(b);
	return 0;
}

bool ftpbatch_tick(struct ftpbatch *b, int64_t now_ms)
{
	if (b->open && now_ms >= b->open->cut_at_ms)
		cut(b);
	return b->ready != NULL;
}

int64_t ftpbatch_next_cut(const struct ftpbatch *b)
{
	return b->open ? b->open->cut_at_ms : -1;
}

struct ftpfile *ftpbatch_take(struct ftpbatch *b)
{
	struct ftpfile *f = b->ready;
	if (!f)
		return NULL;
	b->ready = f->next;
	if (!b->ready)
		b->ready_tail = &b->ready;
	f->next = NULL;
	b->nready--;
	return f;
}

struct ftpfile *ftpbatch_take_all(struct ftpbatch *b)
{
	if (b->open) {
		*b->ready_tail = b->open;
		b->open = NULL;
	}
	struct ftpfile *all = b->ready;
	b->ready = NULL;
	b->ready_tail = &b->ready;
	b->nready = 0;
	return all;
}

void ftpfile_free(struct ftpfile *f)
{
	if (!f)
		return;
	free(f->tokens);
	free(f->body);
	free(f);
}

void ftpbatch_clear(struct ftpbatch *b)
{
	struct ftpfile *f = ftpbatch_take_all(b);
	while (f) {
		struct ftpfile *next = f->next;
		ftpfile_free(f);
		f = next;
	}
}
