/*
 * log.c - leveled logging to stderr (foreground) or journald's stderr protocol.
 * See log.h. Every thread logs, and the level may change while they do, so the level is a
 * C11 atomic (relaxed: nothing else is ordered by it, and a change shows on the next line).
 * Whether stderr is the journal is decided once, on the first line, under pthread_once:
 * a lazily set plain flag would be written by whichever threads log first at the same time.
 *
 * The ring is an array of fixed-size slots (LOG_RING_LINE_MAX bytes of text each), used
 * round-robin: a bounded size, no allocation per line, and one memcpy under the ring's
 * mutex. `ring_on` is read without the lock first so that a daemon without the web UI pays
 * one atomic load per line.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int current_level = LOG_LVL_INFO;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool use_journal; /* written once, by decide_journal() under journal_once */

static void decide_journal(void)
{
	use_journal = getenv("JOURNAL_STREAM") != NULL;
}

struct ring_slot {
	uint64_t seq;
	int64_t ts_ms;
	enum log_level level;
	char text[LOG_RING_LINE_MAX];
};

static atomic_bool ring_on;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring_slot *ring; /* guarded by ring_lock, as are the two below */
static size_t ring_slots;
static uint64_t ring_seq; /* seq of the newest line */

int log_ring_enable(size_t bytes)
{
	size_t n = bytes / sizeof(struct ring_slot);
	int rc = 0;

	if (n < 16)
		n = 16;
	pthread_mutex_lock(&ring_lock);
	if (!ring) {
		ring = calloc(n, sizeof(*ring));
		if (ring) {
			ring_slots = n;
			atomic_store(&ring_on, true);
		} else {
			rc = -1; /* MB_ERR_NOMEM; error.h is not needed for one code */
		}
	}
	pthread_mutex_unlock(&ring_lock);
	return rc;
}

static void ring_add(enum log_level level, int64_t ts_ms, const char *text, size_t len)
{
	pthread_mutex_lock(&ring_lock);
	struct ring_slot *s = &ring[ring_seq % ring_slots];
	s->seq = ++ring_seq;
	s->ts_ms = ts_ms;
	s->level = level;
	if (len >= sizeof(s->text))
		len = sizeof(s->text) - 1;
	memcpy(s->text, text, len);
	s->text[len] = '\0';
	pthread_mutex_unlock(&ring_lock);
}

uint64_t log_ring_read(uint64_t after, enum log_level max_level, size_t max_lines,
		       void (*fn)(void *ctx, const struct log_ring_line *line), void *ctx)
{
	uint64_t newest;

	if (!atomic_load(&ring_on))
		return 0;
	pthread_mutex_lock(&ring_lock);
	newest = ring_seq;
	uint64_t first = ring_seq > ring_slots ? ring_seq - ring_slots + 1 : 1;
	if (first <= after)
		first = after + 1;
	/* Count the matching lines first, to hand out only the newest max_lines. */
	size_t matching = 0;
	for (uint64_t q = first; q <= newest; q++)
		matching += ring[(q - 1) % ring_slots].level <= max_level;
	size_t skip = matching > max_lines ? matching - max_lines : 0;
	for (uint64_t q = first; q <= newest; q++) {
		const struct ring_slot *s = &ring[(q - 1) % ring_slots];
		if (s->level > max_level)
			continue;
		if (skip) {
			skip--;
			continue;
		}
		struct log_ring_line l = {s->seq, s->ts_ms, s->level, s->text};
		fn(ctx, &l);
	}
	pthread_mutex_unlock(&ring_lock);
	return newest;
}

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	static const int syslog_prio[] = {3, 4, 6, 7};
	char line[2048];
	size_t len = 0;
	va_list ap;

	if ((int)level > atomic_load_explicit(&current_level, memory_order_relaxed))
		return;
	pthread_once(&journal_once, decide_journal);

	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (use_journal) {
		len = (size_t)snprintf(line, sizeof(line), "<%d>", syslog_prio[level]);
	} else {
		struct tm tm;
		gmtime_r(&now.tv_sec, &tm);
		len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		len += (size_t)snprintf(line + len, sizeof(line) - len,
					".%03ldZ %s: ", now.tv_nsec / 1000000L, names[level]);
	}
	va_start(ap, fmt);
	int n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (atomic_load(&ring_on))
		ring_add(level, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, line + len,
			 (size_t)n);
	len += (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line keeps lines from different threads whole. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
