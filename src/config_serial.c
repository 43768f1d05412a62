/*
 * config_serial.c - the serial lines of the configuration: the `serial` ports (RS-232/485
 * buses the RTU devices are on) and the `modem` section (the cellular modem's AT port);
 * see docs/configuration.md and config_internal.h.
 *
 * A port's name is what devices refer to, so ports are read before the modbus section;
 * each port is checked against the ones before it (names and devices must differ), and
 * the modem's device against all ports. Runs on the loading thread.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

static const char *const serial_keys[] = {
	"name",      "device",     "baudrate",        "data_bits",          "parity",
	"stop_bits", "timeout_ms", "byte_timeout_ms", "silent_interval_ms", "turnaround_ms",
};
static const char *const modem_keys[] = {"device", "baudrate", "timeout_ms"};

_Static_assert(ARRAY_SIZE(serial_keys) <= CONFIG_MAX_KEYS,
	       "struct config_obj holds at most CONFIG_MAX_KEYS keys");

static const int baudrates[] = {
	1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
};

static const struct config_choice parities[] = {
	{"none", 'N'}, {"even", 'E'}, {"odd", 'O'}, {"n", 'N'}, {"e", 'E'}, {"o", 'O'},
};

const struct serial_port_config *config_find_port(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->serial_port_count; i++)
		if (cfg->serial_ports[i].name && !strcmp(cfg->serial_ports[i].name, name))
			return &cfg->serial_ports[i];
	return NULL;
}

void config_port_names(const struct config *cfg, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < cfg->serial_port_count && used < len; i++) {
		if (!cfg->serial_ports[i].name)
			continue;
		int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
				 cfg->serial_ports[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* silent_interval_ms (a number or "auto") and turnaround_ms: see docs/modbus.md. */
static void parse_port_timing(const struct config_obj *o, struct serial_port_config *p)
{
	const char *t;

	if (config_get_scalar(o, "silent_interval_ms", "a number of ms or auto", &t) == 1) {
		long long v;

		if (!strcasecmp(t, "auto"))
			p->silent_interval_ms = -1;
		else if (!config_parse_ll(t, &v))
			config_obj_error(o, "silent_interval_ms",
					 "expected a number of ms or auto, got '%.64s'", t);
		else
			config_get_int(o, "silent_interval_ms", 0, 10000, " ms, or auto",
				       &p->silent_interval_ms);
	}
	config_get_int(o, "turnaround_ms", 0, 10000, " ms", &p->turnaround_ms);
}

static void parse_port(struct config_ctx *c, const struct yamldoc_node *map, const char *path,
		       struct serial_port_config *p)
{
	struct config *cfg = c->cfg;
	long long v;
	struct config_obj o;

	config_obj_scan(&o, c, map, path, yamldoc_line(map), serial_keys, ARRAY_SIZE(serial_keys));
	p->line = o.line;
	p->device_line = config_obj_line(&o, "device");
	snprintf(p->key, sizeof(p->key), "%s", path);
	p->baudrate = 9600;
	p->data_bits = 8;
	p->parity = 'N';
	p->stop_bits = 1;
	p->timeout_ms = 1000;
	p->byte_timeout_ms = 50;
	p->silent_interval_ms = -1;
	p->turnaround_ms = 5;

	if (config_get_strdup(&o, "name", &p->name) == 0) {
		config_obj_error(&o, "name",
				 "required (the name devices use to refer to this port, such as com2)");
	} else if (p->name && !*p->name) {
		config_obj_error(&o, "name", "must not be empty");
		free(p->name);
		p->name = NULL;
	} else if (p->name) {
		const struct serial_port_config *other = config_find_port(cfg, p->name);

		if (other) {
			config_obj_error(&o, "name",
					 "duplicate port name '%.64s' (first defined on line %d)",
					 p->name, other->line);
			free(p->name);
			p->name = NULL;
		}
	}

	if (config_get_strdup(&o, "device", &p->device) == 0) {
		config_obj_error(&o, "device", "required (the serial device, such as /dev/ttyS1)");
	} else if (p->device && !*p->device) {
		config_obj_error(&o, "device",
				 "must not be empty (a serial device such as /dev/ttyS1)");
	} else if (p->device) {
		for (size_t i = 0; i < cfg->serial_port_count; i++) {
			const struct serial_port_config *q = &cfg->serial_ports[i];

			if (q->device && !strcmp(q->device, p->device)) {
				config_obj_error(&o, "device",
						 "'%.64s' is already used by port '%s' (line %d)",
						 p->device, q->name ? q->name : "?", q->line);
				break;
			}
		}
	}

	if (config_get_ll(&o, "baudrate", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		size_t i;
		char allowed[160];
		size_t used = 0;

		for (i = 0; i < ARRAY_SIZE(baudrates); i++)
			if (v == baudrates[i])
				break;
		if (i < ARRAY_SIZE(baudrates)) {
			p->baudrate = baudrates[i];
		} else {
			for (size_t j = 0; j < ARRAY_SIZE(baudrates); j++)
				used += (size_t)snprintf(allowed + used, sizeof(allowed) - used,
							 "%s%d", j ? ", " : "", baudrates[j]);
			config_obj_error(&o, "baudrate",
					 "%lld is not a supported baud rate (allowed: %s)", v,
					 allowed);
		}
	}
	if (config_get_ll(&o, "data_bits", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		if (v == 7 || v == 8)
			p->data_bits = (int)v;
		else
			config_obj_error(&o, "data_bits", "%lld is not valid (allowed: 7, 8)", v);
	}
	int parity;
	if (config_get_choice(&o, "parity", parities, ARRAY_SIZE(parities),
			      "none, even, odd, or N, E, O", &parity) == 1)
		p->parity = (char)parity;
	if (config_get_ll(&o, "stop_bits", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		if (v == 1 || v == 2)
			p->stop_bits = (int)v;
		else
			config_obj_error(&o, "stop_bits", "%lld is not valid (allowed: 1, 2)", v);
	}
	config_get_int(&o, "timeout_ms", 1, 60000, " ms", &p->timeout_ms);
	config_get_int(&o, "byte_timeout_ms", 0, 10000, " ms", &p->byte_timeout_ms);
	parse_port_timing(&o, p);
}

void config_parse_serial(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *v = config_obj_get(top, "serial");
	struct config *cfg = c->cfg;
	size_t n;

	if (!v)
		return;
	if (yamldoc_kind(v) == YAMLDOC_SCALAR) {
		config_obj_error(top, "serial",
				 "expected a list of serial ports (- name: ...), got %s",
				 config_kind_name(v));
		return;
	}
	/* A single mapping is accepted as a list of one: the common one-port gateway. */
	n = yamldoc_kind(v) == YAMLDOC_MAPPING ? 1 : yamldoc_seq_len(v);
	if (n == 0)
		return;
	cfg->serial_ports = calloc(n, sizeof(*cfg->serial_ports));
	if (!cfg->serial_ports) {
		c->nomem = true;
		return;
	}
	if (yamldoc_kind(v) == YAMLDOC_MAPPING) {
		parse_port(c, v, "serial", &cfg->serial_ports[0]);
		cfg->serial_port_count = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct yamldoc_node *item = yamldoc_seq_item(c->doc, v, i);
		char path[CONFIG_KEY_LEN];

		snprintf(path, sizeof(path), "serial[%zu]", i);
		if (!item || yamldoc_kind(item) != YAMLDOC_MAPPING) {
			config_report(c, CONFIG_ERROR, yamldoc_line(item), path,
				      "expected a mapping (name, device, baudrate, ...), got %s",
				      item ? config_kind_name(item) : "nothing");
			continue;
		}
		/* Count grows as ports are parsed, so checks see only the earlier ports. */
		parse_port(c, item, path, &cfg->serial_ports[cfg->serial_port_count]);
		cfg->serial_port_count++;
	}
}

void config_parse_modem(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "modem", "modem keys (device, baudrate, timeout_ms)");
	struct modem_config *m = &c->cfg->modem;
	struct config_obj o;
	long long v;

	config_obj_scan(&o, c, map, "modem", config_obj_line(top, "modem"), modem_keys,
			ARRAY_SIZE(modem_keys));
	m->line = o.line;
	if (!map)
		return;
	if (config_get_strdup(&o, "device", &m->device) == 0)
		config_obj_error(
			&o, "device",
			"required (the modem's AT port, such as /dev/ttyUSB2; remove the modem section when there is none)");
	else if (m->device && !*m->device)
		config_obj_error(&o, "device",
				 "must not be empty (the modem's AT port, such as /dev/ttyUSB2)");
	for (size_t i = 0; m->device && i < c->cfg->serial_port_count; i++) {
		const struct serial_port_config *p = &c->cfg->serial_ports[i];

		if (p->device && !strcmp(p->device, m->device)) {
			config_obj_error(&o, "device",
					 "'%.64s' is already used by serial port '%s' (line %d)",
					 m->device, p->name ? p->name : "?", p->line);
			break;
		}
	}
	if (config_get_ll(&o, "baudrate", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(baudrates); i++)
			if (v == baudrates[i])
				break;
		if (i < ARRAY_SIZE(baudrates))
			m->baudrate = baudrates[i];
		else
			config_obj_error(
				&o, "baudrate",
				"%lld is not a supported baud rate (allowed: 1200 .. 921600, such as 9600 or 115200)",
				v);
	}
	config_get_int(&o, "timeout_ms", 100, 300000, " ms", &m->timeout_ms);
}
