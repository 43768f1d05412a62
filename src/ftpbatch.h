/*
 * ftpbatch.h - how the FTP uplink gathers messages into files (pure, no I/O).
 *
 * The forwarder hands the FTP uplink messages as it does to any uplink; a file is a batch
 * of them. A file is open until it holds max_readings readings, or until the wall clock
 * crosses the next multiple of interval (UTC: a 1d interval cuts at midnight), whichever
 * comes first; then it is ready to upload, and a new one opens with the next message. The
 * file's body is built as messages arrive: jsonl puts each message on its own line (a
 * reading, or an array in array mode); array makes the whole file one JSON array of
 * readings (array messages are spliced in). Each file keeps the tokens of its messages,
 * so the uplink reports them delivered once the file is on the server.
 *
 * Threading: none inside; the owner locks. Errors: 0 or MB_ERR_NOMEM (the batch is then
 * unchanged).
 */
#ifndef MODBRIDGE_FTPBATCH_H
#define MODBRIDGE_FTPBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_uplink.h"

struct ftpbatch_options {
	int max_readings;    /* >= 1 */
	int64_t interval_ms; /* >= 1000 */
	enum ftp_format format;
	bool array_messages; /* messages are JSON arrays (logger.array) */
};

struct ftpfile {
	int *tokens;
	size_t ntokens, tokens_cap;
	char *body;
	size_t len, cap;
	size_t readings;
	int64_t first_id;    /* store id of the first reading (0: from memory) */
	int64_t first_ts_ms; /* its time */
	int64_t cut_at_ms;   /* wall time the file is cut at the latest */
	struct ftpfile *next;
};

struct ftpbatch {
	struct ftpbatch_options opt;
	struct ftpfile *open;  /* filling, or NULL */
	struct ftpfile *ready; /* cut, oldest first */
	struct ftpfile **ready_tail;
	size_t nready;
};

void ftpbatch_init(struct ftpbatch *b, const struct ftpbatch_options *opt);

/*
 * Adds one message of count readings to the open file (opening one at now_ms, wall
 * clock). A message that would take the file past max_readings cuts it first; a file
 * that reaches max_readings is cut at once.
 */
int ftpbatch_add(struct ftpbatch *b, const char *payload, size_t len, size_t count,
		 int64_t first_id, int64_t first_ts_ms, int token, int64_t now_ms);

/* Cuts the open file when its time has come. Returns true when a file is ready. */
bool ftpbatch_tick(struct ftpbatch *b, int64_t now_ms);

/* When the open file is cut at the latest (wall ms), or -1 when no file is open. */
int64_t ftpbatch_next_cut(const struct ftpbatch *b);

/* Takes the oldest ready file (the caller frees it with ftpfile_free), or NULL. */
struct ftpfile *ftpbatch_take(struct ftpbatch *b);

/* Takes every file, ready and open, oldest first, as one list (the caller frees each). */
struct ftpfile *ftpbatch_take_all(struct ftpbatch *b);

void ftpfile_free(struct ftpfile *f);

/* Frees every file. */
void ftpbatch_clear(struct ftpbatch *b);

/* The next multiple of interval_ms after now_ms (UTC). */
int64_t ftpbatch_boundary(int64_t now_ms, int64_t interval_ms);

#endif
