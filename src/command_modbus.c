/*
 * command_modbus.c - the Modbus commands: GETMODBUS and SETMODBUS.
 *
 * The address the command names is resolved against the configuration (a configured
 * serial port, or the host:port of a configured Modbus TCP device: the gateway is no
 * open proxy into its LAN), and the request goes to the poller (poller_execute), which
 * runs it between two polls of that bus, or on a bus nobody polls, one request at a time.
 * The commands never open a bus themselves. Runs on the thread executing the command; it
 * blocks for the wait (at most QUEUE_WAIT_MS) and the transaction.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "command_internal.h"
#include "error.h"
#include "poller.h"

/* How long a remote Modbus request may wait for its turn behind the polls. */
#define QUEUE_WAIT_MS 30000

/* A configured Modbus bus, found from what the command names. */
struct bus_ref {
	const struct serial_port_config *port; /* RTU */
	const char *host;                      /* TCP */
	int tcp_port;
	int unit;
	int timeout_ms;
	char name[300];
};

static bool resolve_target(const struct config *cfg, const struct command_target *t,
			   struct bus_ref *b, struct command_reply *r)
{
	memset(b, 0, sizeof(*b));
	if (t->kind == TARGET_RTU) {
		if (t->port_name[0]) {
			for (size_t i = 0; i < cfg->serial_port_count && !b->port; i++)
				if (cfg->serial_ports[i].name &&
				    !strcmp(cfg->serial_ports[i].name, t->port_name))
					b->port = &cfg->serial_ports[i];
			if (!b->port) {
				command_reply_error(r,
						    "no serial port named '%s' in the configuration",
						    t->port_name);
				return false;
			}
		} else if (cfg->serial_port_count == 1) {
			b->port = &cfg->serial_ports[0];
		} else if (cfg->serial_port_count == 0) {
			command_reply_error(
				r, "no serial port is configured (for Modbus TCP write host:port)");
			return false;
		} else {
			command_reply_error(r,
					    "%zu serial ports are configured: name one, such as %s/%d",
					    cfg->serial_port_count, cfg->serial_ports[0].name,
					    t->unit);
			return false;
		}
		b->unit = t->unit;
		b->timeout_ms = b->port->timeout_ms;
		snprintf(b->name, sizeof(b->name), "slave %d on %s", b->unit, b->port->name);
		return true;
	}
	/* Only endpoints of configured devices: the gateway is no open proxy into its LAN. */
	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *d = &cfg->devices[i];

		if (d->transport != TRANSPORT_TCP || d->port != t->tcp_port ||
		    strcmp(d->host, t->host) != 0)
			continue;
		b->host = d->host;
		b->tcp_port = d->port;
		b->unit = t->unit >= 0 ? t->unit : d->slave;
		b->timeout_ms = d->timeout_ms;
		snprintf(b->name, sizeof(b->name), "unit %d at %s:%d", b->unit, d->host, d->port);
		return true;
	}
	command_reply_error(r, "%s:%d is not the address of a configured Modbus TCP device",
			    t->host, t->tcp_port);
	return false;
}

void command_do_modbus(const struct command_env *env, const struct command *c,
		       struct command_reply *r)
{
	struct bus_ref b;
	uint16_t *values;
	struct poll_request req;
	int rc;

	if (!resolve_target(env->cfg, &c->target, &b, r))
		return;
	values = calloc(c->count ? c->count : 1, sizeof(uint16_t));
	if (!values) {
		r->nomem = true;
		return;
	}
	memset(&req, 0, sizeof(req));
	req.write = c->kind == CMD_SETMODBUS;
	req.slave = b.unit;
	req.function = c->function;
	req.address = c->reg;
	req.count = c->count;
	req.values = values;
	req.timeout_ms = b.timeout_ms;
	if (req.write)
		values[0] = c->write_value;

	/* Behind the bus worker's polls when there is one; the poller opens an unpolled bus
	 * itself, one request at a time (and, without a daemon, directly). */
	rc = poller_execute(env->poller, b.port, b.host, b.tcp_port, &req, QUEUE_WAIT_MS);
	if (rc == MB_ERR_BUSY) {
		command_reply_error(r,
				    "%s: the bus is busy or stopping; nothing was sent (try again)",
				    b.name);
	} else if (rc) {
		command_reply_error(r, "%s", mb_strerror(rc));
	} else if (req.rc) {
		command_reply_error(r, "%s: %s", b.name, req.reason);
	} else if (req.write) {
		r->ok = true;
	} else {
		/* One line: the values separated by commas (bits as 0 or 1). */
		size_t cap = (size_t)req.count * 6 + 1, used = 0;
		char *line = malloc(cap);

		if (!line) {
			r->nomem = true;
		} else {
			for (size_t i = 0; i < req.count; i++)
				used += (size_t)snprintf(line + used, cap - used, "%s%u",
							 i ? "," : "", values[i]);
			command_reply_line(r, "%s", line);
			free(line);
			r->ok = true;
		}
	}
	free(values);
}
