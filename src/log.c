/*
 * log.c - leveled logging to stderr (foreground) or journald's stderr protocol.
 * See log.h. Every thread logs, and the level may change while they do, so the level is a
 * C11 atomic (relaxed: nothing else is ordered by it, and a change shows on the next line).
 * Whether stderr is the journal is decided once, on the first line, under pthread_once:
 * a lazily set plain flag would be written by whichever threads log first at the same time.
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

	if (use_journal) {
		len = (size_t)snprintf(line, sizeof(line), "<%d>", syslog_prio[level]);
	} else {
		struct timespec now;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &now);
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
	len += (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line keeps lines from different threads whole. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
