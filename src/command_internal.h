/*
 * command_internal.h - what the remote command files share, and nothing else includes.
 *
 * The commands of command.h are spread over one file per concern: command_parse.c (the
 * pure parser and the audit text), command_reply.c (building replies), command.c
 * (dispatch and permissions, the modem), command_config.c (GETPARAM, SETPARAM,
 * GETCONFIG), command_modbus.c (GETMODBUS, SETMODBUS) and command_status.c (AT+MBSTATUS).
 *
 * Threading: everything here runs on the thread executing one command (command_execute's
 * caller), with that command's reply. Ownership: a reply owns its lines (freed by
 * command_reply_clear). Errors: the command functions never fail as such: what went wrong
 * is the reply's ERROR line, or its nomem flag.
 */
#ifndef MODBRIDGE_COMMAND_INTERNAL_H
#define MODBRIDGE_COMMAND_INTERNAL_H

#include "command.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* command_reply.c: adds one information line to the reply (printf-style). Out of memory
 * sets r->nomem, and later lines are ignored. */
void command_reply_line(struct command_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* command_reply.c: adds every line of a multi-line text (a YAML dump, a modem reply). */
void command_reply_lines(struct command_reply *r, const char *text);

/* command_reply.c: makes the reply an ERROR with this reason (printf-style). */
void command_reply_error(struct command_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* command_config.c: GETPARAM, GETCONFIG and SETPARAM, on the configuration file. */
void command_do_getparam(const struct command_env *env, const struct command *c,
			 struct command_reply *r);
void command_do_getconfig(const struct command_env *env, struct command_reply *r);
void command_do_setparam(const struct command_env *env, const struct command *c,
			 struct command_reply *r);

/* command_modbus.c: GETMODBUS and SETMODBUS, through the poller. */
void command_do_modbus(const struct command_env *env, const struct command *c,
		       struct command_reply *r);

/* command_status.c: AT+MBSTATUS. */
void command_do_status(const struct command_env *env, struct command_reply *r);

#endif
