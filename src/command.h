/*
 * command.h - remote commands: one AT command line in, a modem-like reply out.
 *
 * The same code serves the AT topics over MQTT (remote.c) and `modbridge at` on the
 * command line. A command is first parsed (command_parse: pure, no I/O, fuzzed by
 * fuzz/fuzz_command.c), then checked against the permissions of the configuration, then
 * executed against the running parts (poller, store, modem, MQTT link) given in a
 * struct command_env. The reply is zero or more information lines and a final line: "OK"
 * or "ERROR: <reason>". docs/remote-commands.md lists every command.
 *
 * GETMODBUS and SETMODBUS reach a bus only through the poller (poller_execute), which runs
 * them between two polls, or opens a bus nobody polls itself; these files never open one.
 *
 * Threading: command_parse and command_audit_text are pure and thread-safe.
 * command_execute runs one command at a time per env (the remote worker thread, or the
 * CLI's main thread); it may block for the duration of a Modbus or modem transaction
 * (a Modbus request waits at most 30 s for its turn).
 *
 * Ownership: env and everything it points to are borrowed for the call; a reply owns its
 * lines until command_reply_clear. Errors: command_parse returns 0 or MB_ERR_INVAL with a
 * reason; command_execute does not fail as such: every failure is the reply's "ERROR:
 * <reason>" (reply->nomem when out of memory, which the reply text then says).
 */
#ifndef MODBRIDGE_COMMAND_H
#define MODBRIDGE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "confedit.h"
#include "config.h"
#include "modem.h"

/* Longest command accepted, in bytes. Longer payloads are refused without parsing. */
#define COMMAND_MAX_LEN 4096
/* Longest SETPARAM value. */
#define COMMAND_VALUE_MAX 1024

enum command_kind {
	CMD_AT,        /* AT: is anybody there */
	CMD_ATI,       /* ATI: identification */
	CMD_CGSN,      /* AT+CGSN: the identity ([IMEI]) */
	CMD_CSQ,       /* AT+CSQ: signal quality, from the modem */
	CMD_STATUS,    /* AT+MBSTATUS: logger status (our own) */
	CMD_VERSION,   /* AT^MTXTUNNEL=VERSION */
	CMD_GETPARAM,  /* AT^MTXTUNNEL=GETPARAM,<key> */
	CMD_SETPARAM,  /* AT^MTXTUNNEL=SETPARAM,<key>,<value> */
	CMD_GETCONFIG, /* AT^MTXTUNNEL=GETCONFIG */
	CMD_GETMODBUS, /* AT^MTXTUNNEL=GETMODBUS,<addr>;<reg>[;<count>[;<cmd>]] */
	CMD_SETMODBUS, /* AT^MTXTUNNEL=SETMODBUS,<addr>;<reg>;<value>[;<cmd>] */
	CMD_REBOOT,    /* AT^MTXTUNNEL=REBOOT */
	CMD_MODEM,     /* any other AT command: passed through to the modem */
};

/* Where a GETMODBUS/SETMODBUS goes, as written; resolved against the config on execution. */
enum command_target_kind {
	TARGET_RTU, /* "<slave>": the only serial port; "<port>/<slave>": a named one */
	TARGET_TCP, /* "<host>:<port>[/<unit>]": a configured Modbus TCP endpoint */
};

struct command_target {
	enum command_target_kind kind;
	char port_name[65]; /* RTU: "" for the only serial port */
	char host[256];     /* TCP: host name or address (IPv6 without brackets) */
	int tcp_port;       /* TCP */
	int unit;           /* RTU slave 1..247; TCP unit 0..255, -1: the configured one */
};

struct command {
	enum command_kind kind;
	char key[CONFEDIT_KEY_MAX + 1];         /* GETPARAM, SETPARAM */
	char value[COMMAND_VALUE_MAX + 1];      /* SETPARAM */
	struct command_target target;           /* GETMODBUS, SETMODBUS */
	uint16_t reg;                           /* first register or coil address */
	uint16_t count;                         /* GETMODBUS: values to read */
	int function;                           /* GETMODBUS: 1..4; SETMODBUS: 5, 6, 15, 16 */
	uint16_t write_value;                   /* SETMODBUS */
	char modem_line[MODEM_COMMAND_MAX + 1]; /* CMD_MODEM and CMD_CSQ: the line for the modem */
};

/*
 * Parses one command of len bytes (not necessarily NUL-terminated; may hold anything;
 * text may be NULL when len > COMMAND_MAX_LEN: the payload was too long to keep).
 * Leading and trailing white space (CR and LF included) is ignored; names are not
 * case-sensitive. Returns 0 and fills *out, or MB_ERR_INVAL with a one-line reason
 * ("empty command", "not an AT command ...", "GETMODBUS needs ..."). Pure: no I/O, no
 * allocation.
 */
int command_parse(const char *text, size_t len, struct command *out, char *reason,
		  size_t reason_len);

/*
 * Writes a loggable form of the command to out (always NUL-terminated): control and
 * non-ASCII bytes escaped as \xNN, secrets (a SETPARAM of a password, the PIN of
 * AT+CPIN and the like) replaced by ***, long text cut with "...", and a payload longer
 * than COMMAND_MAX_LEN shown only by its size. Pure.
 */
void command_audit_text(const char *text, size_t len, char *out, size_t out_len);

struct poller;
struct store;
struct mqtt_link;

/* What a command can reach. Everything but cfg may be NULL. */
struct command_env {
	const struct config *cfg; /* the running configuration (cfg->path is the file) */
	struct poller *poller;    /* NULL: no daemon here; poller_execute opens the buses */
	struct store *store;      /* NULL: open cfg's store for the status command */
	struct modem *modem;      /* NULL: no modem configured */
	struct mqtt_link *link;   /* for the status command; NULL: none */
	bool daemon;              /* running inside the daemon: REBOOT and SETPARAM restart it */
};

struct command_reply {
	char *lines; /* information lines, '\n'-separated, NULL when none */
	size_t lines_len;
	bool ok;
	char error[512]; /* reason when !ok */
	bool restart;    /* the daemon should restart once the reply is sent */
	bool nomem;
};

/*
 * Parses, checks permissions and executes one command. Always fills *reply (even for
 * unparsable input); free it with command_reply_clear. Never fails otherwise.
 */
void command_execute(const struct command_env *env, const char *text, size_t len,
		     struct command_reply *reply);

/*
 * The whole reply as text: information lines then "OK" or "ERROR: <reason>", each line
 * ended by eol ("\r\n" for MQTT, as a modem does; "\n" for a terminal). malloc'd, NULL when
 * out of memory; *len gets its length.
 */
char *command_reply_text(const struct command_reply *reply, const char *eol, size_t *len);

/* Frees what a reply holds. Accepts NULL. */
void command_reply_clear(struct command_reply *reply);

#endif
