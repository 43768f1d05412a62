/*
 * uplink_stats.c - the uplink's figures, in memory and in a file beside the store; see
 * uplink_stats.h.
 *
 * The file is written as a temporary file and renamed over the old one, so a reader sees
 * either version whole. It is not fsync'd: after a power cut it may be a little stale
 * (or missing), and the next write puts it right; it never holds a reading.
 */
#include "uplink_stats.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "timeutil.h"

#define WRITE_EVERY_MS 1000

struct uplink_stats {
	pthread_mutex_t lock;
	struct uplink_status s;
	char *path;
	bool dirty;
	int64_t written_mono_ms;
};

int uplink_stats_new(const char *mode, const char *target, const char *path,
		     struct uplink_stats **out)
{
	struct uplink_stats *st = calloc(1, sizeof(*st));
	if (!st)
		return MB_ERR_NOMEM;
	if (path && !(st->path = strdup(path))) {
		free(st);
		return MB_ERR_NOMEM;
	}
	pthread_mutex_init(&st->lock, NULL);
	snprintf(st->s.mode, sizeof(st->s.mode), "%s", mode);
	snprintf(st->s.target, sizeof(st->s.target), "%s", target ? target : "");
	st->s.since_ms = time_now_ms();
	st->dirty = true;
	*out = st;
	return 0;
}

/* One line of text with no line break (an error text may hold one). */
static void one_line(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
	for (char *p = dst; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* Called with the lock held. */
static void write_file(struct uplink_stats *st)
{
	if (!st->path)
		return;
	size_t n = strlen(st->path) + 8;
	char *tmp = malloc(n);
	if (!tmp)
		return;
	snprintf(tmp, n, "%s.tmp", st->path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		free(tmp);
		return;
	}
	const struct uplink_status *s = &st->s;
	fprintf(f,
		"mode=%s\ntarget=%s\nsince_ms=%" PRId64 "\nlast_ok_ms=%" PRId64
		"\nlast_error_ms=%" PRId64 "\nlast_error=%s\nfailing=%d\nmessages=%" PRIu64
		"\nreadings=%" PRIu64 "\nfailures=%" PRIu64 "\nrejected=%" PRIu64
		"\nupdated_ms=%" PRId64 "\n",
		s->mode, s->target, s->since_ms, s->last_ok_ms, s->last_error_ms, s->last_error,
		s->failing ? 1 : 0, s->messages, s->readings, s->failures, s->rejected,
		time_now_ms());
	if (fclose(f) == 0 && rename(tmp, st->path) == 0) {
		st->dirty = false;
		st->written_mono_ms = time_mono_ms();
	} else {
		remove(tmp);
	}
	free(tmp);
}

static void maybe_write(struct uplink_stats *st, bool now)
{
	st->dirty = true;
	if (now || time_mono_ms() - st->written_mono_ms >= WRITE_EVERY_MS)
		write_file(st);
}

void uplink_stats_ok(struct uplink_stats *st, size_t readings)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	bool recovered = st->s.failing;
	st->s.failing = false;
	st->s.last_ok_ms = time_now_ms();
	st->s.messages++;
	st->s.readings += readings;
	maybe_write(st, recovered);
	pthread_mutex_unlock(&st->lock);
}

void uplink_stats_error(struct uplink_stats *st, bool rejected, const char *why)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	bool changed =
		!st->s.failing || strncmp(st->s.last_error, why, sizeof(st->s.last_error) - 1) != 0;
	st->s.failing = true;
	st->s.last_error_ms = time_now_ms();
	one_line(st->s.last_error, sizeof(st->s.last_error), why);
	if (rejected)
		st->s.rejected++;
	else
		st->s.failures++;
	maybe_write(st, changed);
	pthread_mutex_unlock(&st->lock);
}

void uplink_stats_flush(struct uplink_stats *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	if (st->dirty && time_mono_ms() - st->written_mono_ms >= WRITE_EVERY_MS)
		write_file(st);
	pthread_mutex_unlock(&st->lock);
}

void uplink_stats_get(struct uplink_stats *st, struct uplink_status *out)
{
	pthread_mutex_lock(&st->lock);
	*out = st->s;
	pthread_mutex_unlock(&st->lock);
}

void uplink_stats_free(struct uplink_stats *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	if (st->dirty)
		write_file(st);
	pthread_mutex_unlock(&st->lock);
	pthread_mutex_destroy(&st->lock);
	free(st->path);
	free(st);
}

char *uplink_status_path(const char *store_path)
{
	size_t n = strlen(store_path) + sizeof(".uplink");
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s.uplink", store_path);
	return p;
}

static void copy_value(char *dst, size_t len, const char *v)
{
	snprintf(dst, len, "%s", v);
}

int uplink_status_read(const char *path, struct uplink_status *out)
{
	FILE *f = fopen(path, "r");
	char line[512];
	memset(out, 0, sizeof(*out));
	if (!f)
		return MB_ERR_NOTFOUND;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *k = line, *v = eq + 1;
		if (!strcmp(k, "mode"))
			copy_value(out->mode, sizeof(out->mode), v);
		else if (!strcmp(k, "target"))
			copy_value(out->target, sizeof(out->target), v);
		else if (!strcmp(k, "last_error"))
			copy_value(out->last_error, sizeof(out->last_error), v);
		else if (!strcmp(k, "since_ms"))
			out->since_ms = strtoll(v, NULL, 10);
		else if (!strcmp(k, "last_ok_ms"))
			out->last_ok_ms = strtoll(v, NULL, 10);
		else if (!strcmp(k, "last_error_ms"))
			out->last_error_ms = strtoll(v, NULL, 10);
		else if (!strcmp(k, "updated_ms"))
			out->updated_ms = strtoll(v, NULL, 10);
		else if (!strcmp(k, "failing"))
			out->failing = strtol(v, NULL, 10) != 0;
		else if (!strcmp(k, "messages"))
			out->messages = strtoull(v, NULL, 10);
		else if (!strcmp(k, "readings"))
			out->readings = strtoull(v, NULL, 10);
		else if (!strcmp(k, "failures"))
			out->failures = strtoull(v, NULL, 10);
		else if (!strcmp(k, "rejected"))
			out->rejected = strtoull(v, NULL, 10);
	}
	int rc = ferror(f) ? MB_ERR_IO : 0;
	fclose(f);
	return out->mode[0] ? rc : MB_ERR_IO;
}

static void fmt_time(int64_t ms, char *buf, size_t len)
{
	if (ms)
		time_format_iso8601(ms, buf, len);
	else
		snprintf(buf, len, "never");
}

void uplink_status_lines(const struct uplink_status *s, void (*line)(void *ctx, const char *text),
			 void *ctx)
{
	char text[600], t1[40], t2[40];

	snprintf(text, sizeof(text), "mode: %s, to %s", s->mode, s->target);
	line(ctx, text);
	fmt_time(s->last_ok_ms, t1, sizeof(t1));
	snprintf(text, sizeof(text), "last success: %s", t1);
	line(ctx, text);
	if (s->last_error[0]) {
		fmt_time(s->last_error_ms, t2, sizeof(t2));
		snprintf(text, sizeof(text), "last error: %s: %s%s", t2, s->last_error,
			 s->failing ? "" : " (recovered since)");
	} else {
		snprintf(text, sizeof(text), "last error: none");
	}
	line(ctx, text);
	fmt_time(s->since_ms, t1, sizeof(t1));
	snprintf(text, sizeof(text),
		 "counts: %" PRIu64 " message(s) with %" PRIu64 " reading(s) confirmed, %" PRIu64
		 " failed attempt(s), %" PRIu64 " refused by the server (since %s)",
		 s->messages, s->readings, s->failures, s->rejected, t1);
	line(ctx, text);
}
