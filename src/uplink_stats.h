/*
 * uplink_stats.h - what became of the messages sent: the mode, the last success, the last
 * error and the counts, for `modbridge queue` and AT+MBSTATUS.
 *
 * The uplinks record into one struct uplink_stats (thread-safe). `queue` runs in another
 * process, so the figures are also written to a small text file beside the store
 * ("<store>.uplink", key=value lines; at most once a second, and at once when an error
 * starts or ends); nothing new goes into the store. Both readers print it with
 * uplink_status_lines, so they say the same thing. The file is informative: losing it
 * loses no reading.
 *
 * Threading: every function is safe from any thread. Ownership: the daemon creates and
 * frees the stats, after the uplink that records into it is stopped.
 * Errors: 0 or a negative mb_error.
 */
#ifndef MODBRIDGE_UPLINK_STATS_H
#define MODBRIDGE_UPLINK_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uplink_stats;

struct uplink_status {
	char mode[8];       /* mqtt, http, ftp */
	char target[200];   /* where readings go (URL without credentials, topic) */
	int64_t since_ms;   /* when these counts started (the daemon's start) */
	int64_t last_ok_ms; /* last confirmed message, 0: none */
	int64_t last_error_ms;
	char last_error[300]; /* "" when none since the start */
	bool failing;         /* the last attempt failed */
	uint64_t messages;    /* confirmed messages (requests, files) */
	uint64_t readings;    /* readings in them */
	uint64_t failures;    /* attempts that failed (network, 5xx, ...) */
	uint64_t rejected;    /* attempts the server refused (4xx) */
	int64_t updated_ms;   /* when the file was written */
};

/* path: the status file (NULL: none). Returns 0 or MB_ERR_NOMEM. */
int uplink_stats_new(const char *mode, const char *target, const char *path,
		     struct uplink_stats **out);

/* A message of readings was confirmed. */
void uplink_stats_ok(struct uplink_stats *st, size_t readings);

/* An attempt failed (rejected: the server refused what we send). why is not logged here. */
void uplink_stats_error(struct uplink_stats *st, bool rejected, const char *why);

/* Writes the file if something changed since it was last written. */
void uplink_stats_flush(struct uplink_stats *st);

void uplink_stats_get(struct uplink_stats *st, struct uplink_status *out);

/* Flushes and frees. Accepts NULL. */
void uplink_stats_free(struct uplink_stats *st);

/* "<store_path>.uplink", malloc'd (NULL: out of memory). */
char *uplink_status_path(const char *store_path);

/* Reads a status file. Returns 0, MB_ERR_NOTFOUND (no file yet) or MB_ERR_IO. */
int uplink_status_read(const char *path, struct uplink_status *out);

/* The status as lines ("mode: http, to https://...", "last success: ..."), each passed
 * to line(). */
void uplink_status_lines(const struct uplink_status *s, void (*line)(void *ctx, const char *text),
			 void *ctx);

#endif
