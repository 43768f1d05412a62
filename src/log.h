/*
 * log.h - one small logging module with levels.
 *
 * In the foreground, lines go to stderr with a time stamp. Under systemd (JOURNAL_STREAM
 * set) they go to stderr with the "<N>" priority prefix that journald understands, and
 * without a time stamp (journald adds its own). The level is checked before formatting.
 * Thread-safe: each line is written with one write(2); the level may be set from any thread
 * at any time. JOURNAL_STREAM is read once, at the first line logged.
 * Never pass secrets (passwords, keys) to these functions.
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

#endif
