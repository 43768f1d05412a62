/*
 * modem.h - the cellular modem's AT command port (a serial device such as /dev/ttyUSB2).
 *
 * Used for two things: reading the IMEI at start-up (AT+CGSN) when the configuration does
 * not set the gateway's identity, and answering the remote commands the gateway does not
 * handle itself (AT+CSQ, and any command when pass-through is allowed). One command at a
 * time: a command is written with a carriage return, and the reply is read line by line
 * until the modem's final result code (OK, ERROR, +CME ERROR: n, ...) or the time-out.
 *
 * The port is opened on first use and kept open; after an I/O error (modem unplugged or
 * reset) it is closed and reopened by the next command. While open it is locked (flock),
 * so a second process (a `modbridge at` beside the daemon) is refused instead of mixing
 * its commands into ours. modem_command is thread-safe: commands from the remote worker and
 * the web UI's console take turns (a mutex); create and free from one thread.
 */
#ifndef MODBRIDGE_MODEM_H
#define MODBRIDGE_MODEM_H

#include <stdbool.h>
#include <stddef.h>

#include "config_remote.h"

/* Longest command line sent to the modem (3GPP TS 27.007 allows at least 556). */
#define MODEM_COMMAND_MAX 512
/* Reply text kept from one command; the rest is cut (and says so). */
#define MODEM_REPLY_MAX 4096

struct modem;

struct modem_reply {
	char text[MODEM_REPLY_MAX]; /* the information lines, '\n'-separated, echo removed */
	char final[64];             /* the final result code: "OK", "ERROR", "+CME ERROR: 10" */
	bool ok;                    /* final is "OK" */
};

/* Creates a handle for cfg's modem (cfg->device set); nothing is opened yet. cfg must
 * outlive the handle. Returns 0 or MB_ERR_NOMEM. */
int modem_new(const struct modem_config *cfg, struct modem **out);

/* Closes and frees. Accepts NULL. */
void modem_free(struct modem *m);

/* The device path, for messages. */
const char *modem_device(const struct modem *m);

/*
 * Sends command (one line, without the carriage return; printable text only) and waits
 * for the final result code, at most cfg->timeout_ms. Returns 0 when the modem answered
 * (reply->ok tells whether with OK), or MB_ERR_IO with a reason ("cannot open ...", "in use
 * by another process", "no answer within 5000 ms") and *reply untouched, or MB_ERR_INVAL
 * for a command that is too long or not printable.
 */
int modem_command(struct modem *m, const char *command, struct modem_reply *reply, char *reason,
		  size_t reason_len);

/*
 * Asks the modem for its IMEI (AT+CGSN) and writes the 14..17 digits to imei. Returns 0,
 * or MB_ERR_IO / MB_ERR_INVAL (an answer without an IMEI) with the reason.
 */
int modem_read_imei(struct modem *m, char *imei, size_t imei_len, char *reason, size_t reason_len);

#endif
