/*
 * ftpname.h - the names of the files the FTP uplink uploads (pure, no I/O).
 *
 * A pattern holds [IMEI], [ID] (the logger id), [N] (the store id of the file's first
 * reading) and strftime fields, expanded with the first reading's time in UTC. Names come
 * from the file's content, not from the upload time: a file sent again after a crash
 * starts with the same reading and gets the same name, so the second upload replaces the
 * first instead of adding a file holding the same readings. A pattern without [N] gets
 * "-N" before its extension, so two files are never given one name.
 *
 * Threading: pure functions, any thread. Errors: 0 or MB_ERR_INVAL with the reason.
 */
#ifndef MODBRIDGE_FTPNAME_H
#define MODBRIDGE_FTPNAME_H

#include <stddef.h>
#include <stdint.h>

#define FTPNAME_DEFAULT "[IMEI]_%Y%m%dT%H%M%SZ.json"
#define FTPNAME_MAX 256

/* Checks a pattern: known fields only, no '/', a non-empty name. */
int ftpname_check(const char *pattern, char *why, size_t len);

/*
 * The name of a file whose first reading has store id first_id (0: sent from memory,
 * then "m<ms>" stands in for it) and time ts_ms, into out (FTPNAME_MAX bytes). Text
 * substituted for [IMEI] and [ID] has '/' and control characters replaced by '_'.
 */
int ftpname_format(const char *pattern, const char *imei, const char *logger_id, int64_t first_id,
		   int64_t ts_ms, char *out, size_t len);

/* The temporary name a file is uploaded under before its rename: ".<name>.part". */
int ftpname_temp(const char *name, char *out, size_t len);

#endif
