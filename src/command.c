/*
 * command.c - executing remote AT commands: dispatch and permissions; see command.h.
 *
 * A command is parsed (command_parse.c, pure), then checked against the permissions of
 * the configuration, so a refused command touches nothing, then handed to the file that
 * does it: command_config.c (GETPARAM, SETPARAM, GETCONFIG), command_modbus.c (GETMODBUS,
 * SETMODBUS), command_status.c (AT+MBSTATUS), or, for the modem's commands, the modem
 * (here). The reply is built with command_reply.c. command_internal.h is what these files
 * share.
 */
#include "command.h"

#include <stdlib.h>
#include <string.h>

#include "command_internal.h"

static bool permitted(const struct command_env *env, const struct command *c,
		      struct command_reply *r)
{
	const struct remote_config *p = &env->cfg->remote;
	const char *what = NULL, *key = NULL;

	switch (c->kind) {
	case CMD_SETMODBUS:
		if (!p->allow_writes)
			what = "SETMODBUS (a write to a device)", key = "allow_writes";
		break;
	case CMD_SETPARAM:
		if (!p->allow_setparam)
			what = "SETPARAM", key = "allow_setparam";
		break;
	case CMD_REBOOT:
		if (!p->allow_reboot)
			what = "REBOOT", key = "allow_reboot";
		break;
	case CMD_MODEM:
		/* Without a modem there is nothing to pass to: "unknown command" says more. */
		if (env->modem && !p->allow_modem_passthrough)
			what = "passing commands to the modem", key = "allow_modem_passthrough";
		break;
	default: break;
	}
	if (!what)
		return true;
	command_reply_error(r, "not permitted: %s needs remote.%s: true in the configuration", what,
			    key);
	return false;
}

static void do_modem(const struct command_env *env, const struct command *c,
		     struct command_reply *r)
{
	struct modem_reply *mr;
	char why[256];

	if (!env->modem) {
		if (c->kind == CMD_CSQ) {
			/* 99,99: "not known or not detectable" in 3GPP TS 27.007. */
			command_reply_line(r, "+CSQ: 99,99");
			r->ok = true;
		} else {
			command_reply_error(
				r, "unknown command '%s' (no modem is configured to pass it to)",
				c->modem_line);
		}
		return;
	}
	mr = malloc(sizeof(*mr));
	if (!mr) {
		r->nomem = true;
		return;
	}
	if (modem_command(env->modem, c->modem_line, mr, why, sizeof(why)) != 0) {
		command_reply_error(r, "%s", why);
	} else {
		command_reply_lines(r, mr->text);
		if (mr->ok)
			r->ok = true;
		else
			command_reply_error(r, "the modem answered %s", mr->final);
	}
	free(mr);
}

void command_execute(const struct command_env *env, const char *text, size_t len,
		     struct command_reply *r)
{
	struct command *c = malloc(sizeof(*c));
	char why[512];

	memset(r, 0, sizeof(*r));
	if (!c) {
		r->nomem = true;
		return;
	}
	if (command_parse(text, len, c, why, sizeof(why)) != 0) {
		command_reply_error(r, "%s", why);
		free(c);
		return;
	}
	if (!permitted(env, c, r)) {
		free(c);
		return;
	}
	switch (c->kind) {
	case CMD_AT: r->ok = true; break;
	case CMD_ATI:
	case CMD_VERSION:
		command_reply_line(r, "modbridge %s", MODBRIDGE_VERSION);
		r->ok = true;
		break;
	case CMD_CGSN:
		command_reply_line(r, "%s", env->cfg->imei);
		r->ok = true;
		break;
	case CMD_CSQ:
	case CMD_MODEM: do_modem(env, c, r); break;
	case CMD_STATUS: command_do_status(env, r); break;
	case CMD_GETPARAM: command_do_getparam(env, c, r); break;
	case CMD_SETPARAM: command_do_setparam(env, c, r); break;
	case CMD_GETCONFIG: command_do_getconfig(env, r); break;
	case CMD_GETMODBUS:
	case CMD_SETMODBUS: command_do_modbus(env, c, r); break;
	case CMD_REBOOT:
		if (env->daemon) {
			command_reply_line(r, "restarting");
			r->ok = true;
			r->restart = true;
		} else {
			command_reply_error(
				r,
				"REBOOT restarts a running daemon, and there is none in this process (use systemctl restart modbridge)");
		}
		break;
	}
	free(c);
}
