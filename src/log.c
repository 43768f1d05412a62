/*
 * log.c - leveled logging to stderr (foreground) or journald's stderr protocol.
 * See log.h. The level is a plain int read without locking: a torn read is impossible for
 * an int and a stale one only delays a level change by one line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int current_level = LOG_LVL_INFO;
static int use_journal = -1; /* -1: not decided yet */

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return (enum log_level)current_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	static const int syslog_prio[] = {3, 4, 6, 7};
	char line[2048];
	size_t len = 0;
	va_list ap;

	if ((int)level > current_level)
		return;
	if (use_journal < 0)
		use_journal = getenv("JOURNAL_STREAM") != NULL;

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
