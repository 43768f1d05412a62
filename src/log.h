/*
 * log.h - one small logging module with levels.
 *
 * In the foreground, lines go to stderr with a time stamp. Under systemd (JOURNAL_STREAM
 * set) they go to stderr with the "<N>" priority prefix that journald understands, and
 * without a time stamp (journald adds its own). The level is checked before formatting.
 * Thread-safe: each line is written with one write(2); the level may be set from any thread
 * at any time. JOURNAL_STREAM is read once, at the first line logged.
 * Never pass secrets (passwords, keys) to these functions.
 *
 * The ring (for the web UI's Log screen): once log_ring_enable() has been called, every
 * line written is also kept in a bounded in-memory ring, oldest lines dropped first. It
 * costs nothing until enabled. The ring has its own mutex; log_ring_read copies out under
 * it, so readers never see a line being written.
 */
#ifndef MODBRIDGE_LOG_H
#define MODBRIDGE_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the most verbose level that is written (default LOG_LVL_INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#include <stddef.h>
#include <stdint.h>

/* Longest text kept of one line in the ring. */
#define LOG_RING_LINE_MAX 512

/*
 * Keeps the last lines (up to bytes of text in all) from now on. Calling it again keeps the
 * ring as it is. Returns 0 or MB_ERR_NOMEM. Any thread.
 */
int log_ring_enable(size_t bytes);

/* One line of the ring, as log_ring_read hands it out (borrowed for the call). */
struct log_ring_line {
	uint64_t seq; /* 1, 2, 3... in the order written */
	int64_t ts_ms;
	enum log_level level;
	const char *text; /* without time stamp, level or line end */
};

/*
 * Calls fn for each line in the ring with seq > after and level <= max_level, oldest first,
 * at most max_lines (the newest ones) of them. fn runs with the ring's lock held: it must
 * only copy. Returns the seq of the newest line in the ring (0 when empty or not enabled).
 */
uint64_t log_ring_read(uint64_t after, enum log_level max_level, size_t max_lines,
		       void (*fn)(void *ctx, const struct log_ring_line *line), void *ctx);

#endif
