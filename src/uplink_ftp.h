/*
 * uplink_ftp.h - the FTP uplink (logger.mode: ftp): readings gathered into files uploaded
 * to an FTP, FTPS (explicit TLS) or SFTP server.
 *
 * Messages from the forwarder go into the open file (ftpbatch.h): it is cut every
 * ftp.interval (aligned to UTC) or at ftp.max_readings. A cut file is uploaded under a
 * temporary name (".<name>.part") and renamed to its name (ftpname.h) on the same
 * connection; only when the rename succeeded are its messages reported delivered, so the
 * forwarder deletes the readings then, and the server's consumer never sees half a file.
 * The name comes from the file's first reading (store id and time), so a file sent again
 * after a crash replaces the one already there instead of adding a second copy. Files go
 * one at a time, oldest first, over one control connection kept open (curlx.h). A failed
 * upload fails every message not yet on the server (the file, those cut after it and the
 * open one), so they come back in order after the forwarder's back-off.
 *
 * Threading: created, started, stopped and freed by the daemon's main thread; send() from
 * the forwarder thread; uploads and events on the curlx thread.
 */
#ifndef MODBRIDGE_UPLINK_FTP_H
#define MODBRIDGE_UPLINK_FTP_H

#include "uplink.h"

struct config;
struct uplink_stats;

/*
 * Creates the uplink for cfg->ftp (cfg and stats must outlive it; stats may be NULL).
 * array_messages: the forwarder sends JSON arrays (logger.array). Returns 0 and *out, or
 * a negative mb_error.
 */
int uplink_ftp_new(const struct config *cfg, bool array_messages, struct uplink_stats *stats,
		   struct uplink **out);

/* Stops (if still running) and frees. Accepts NULL. */
void uplink_ftp_free(struct uplink *up);

#endif
