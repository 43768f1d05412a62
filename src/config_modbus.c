/*
 * config_modbus.c - the `modbus` section of the configuration: its defaults and every
 * device (address RTU or TCP, port, command, register blocks, type and byte order,
 * period, retries and back-off); see docs/configuration.md, docs/modbus.md and
 * config_internal.h.
 *
 * Each device's problems are all reported, even when one key makes another impossible
 * to check fully (an unknown command still has its blocks checked as registers), so one
 * `check` shows every mistake. Runs on the loading thread, after the serial ports.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "config_internal.h"
#include "decode.h"
#include "error.h"

#define ID_MAX_LEN 64
#define READ_COMMANDS \
	"0x01 coils, 0x02 discrete inputs, 0x03 holding registers, 0x04 input registers"

static const char *const modbus_keys[] = {"enabled", "serial", "logger", "devices"};
static const char *const device_keys[] = {
	"id",       "address",      "unit_id", "serial",      "command",         "start",
	"count",    "type",         "period",  "logger",      "timeout_ms",      "byte_order",
	"optimize", "max_per_read", "retries", "backoff_max", "max_outstanding",
};

_Static_assert(ARRAY_SIZE(device_keys) <= CONFIG_MAX_KEYS,
	       "struct config_obj holds at most CONFIG_MAX_KEYS keys");

/* New register types go here (and into enum reg_type); nothing else needs to change. */
static const struct config_choice reg_types[] = {
	{"word", REG_TYPE_WORD},   {"int16", REG_TYPE_INT16},     {"uint32", REG_TYPE_UINT32},
	{"int32", REG_TYPE_INT32}, {"float32", REG_TYPE_FLOAT32}, {"uint64", REG_TYPE_UINT64},
	{"int64", REG_TYPE_INT64}, {"float64", REG_TYPE_FLOAT64},
};

static const struct config_choice reg_orders[] = {
	{"ABCD", REG_ORDER_ABCD},
	{"CDAB", REG_ORDER_CDAB},
	{"BADC", REG_ORDER_BADC},
	{"DCBA", REG_ORDER_DCBA},
};

/*
 * Reads "start" or "count": the router's "1;10;55" text, a single integer or a YAML list
 * of integers. Returns 1 with a malloc'd array, 0 when absent (reported, as both are
 * required), -1 when invalid (reported).
 */
static int get_list(const struct config_obj *o, const char *name, const char *hint, uint32_t **vals,
		    size_t *n)
{
	const struct yamldoc_node *v = config_obj_get(o, name);
	char err[160];

	if (!v) {
		config_obj_error(o, name, "required (%s)", hint);
		return 0;
	}
	if (yamldoc_kind(v) == YAMLDOC_SCALAR) {
		int rc = blocks_parse_list(yamldoc_scalar(v), vals, n, err, sizeof(err));

		if (rc == MB_ERR_NOMEM) {
			o->c->nomem = true;
			return -1;
		}
		if (rc < 0) {
			config_obj_error(o, name, "%s", err);
			return -1;
		}
		return 1;
	}
	if (yamldoc_kind(v) != YAMLDOC_SEQUENCE) {
		config_obj_error(o, name,
				 "expected a number, a list like \"1;10;55\" or a YAML list, got %s",
				 config_kind_name(v));
		return -1;
	}

	size_t len = yamldoc_seq_len(v);
	uint32_t *a;

	if (len == 0) {
		config_obj_error(o, name, "empty list (%s)", hint);
		return -1;
	}
	if (len > BLOCKS_MAX_ENTRIES) {
		config_obj_error(o, name, "%zu entries (allowed: at most %d)", len,
				 BLOCKS_MAX_ENTRIES);
		return -1;
	}
	a = malloc(len * sizeof(*a));
	if (!a) {
		o->c->nomem = true;
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		const struct yamldoc_node *item = yamldoc_seq_item(o->c->doc, v, i);
		long long x;

		if (!item || yamldoc_kind(item) != YAMLDOC_SCALAR ||
		    !config_parse_ll(yamldoc_scalar(item), &x) || x < 0 || x > 65535) {
			char key[CONFIG_KEY_LEN];

			config_key_path(o->path, name, key);
			config_report(o->c, CONFIG_ERROR, yamldoc_line(item), key,
				      "entry %zu ('%.32s') is not a number (allowed: 0..65535)",
				      i + 1,
				      item && yamldoc_kind(item) == YAMLDOC_SCALAR
					      ? yamldoc_scalar(item)
				      : item ? config_kind_name(item)
					     : "nothing");
			free(a);
			return -1;
		}
		a[i] = (uint32_t)x;
	}
	*vals = a;
	*n = len;
	return 1;
}

/*
 * Reads start and count into d->blocks. Each list's own problems are reported even when
 * the other list or the command is wrong, so one `check` shows every mistake; the checks
 * that need both lists and a valid command (blocks_build) run only when those are sound.
 */
static void parse_blocks(const struct config_obj *o, struct device_config *d, bool function_ok)
{
	uint32_t *starts = NULL, *counts = NULL;
	size_t ns = 0, nc = 0;
	char err[160];
	int rs, rcn, rc;

	rs = get_list(o, "start", "the first address of each block, such as 10 or \"1;10;55\"",
		      &starts, &ns);
	rcn = get_list(o, "count", "registers or bits per block, such as 5 or \"1;3;2\"", &counts,
		       &nc);
	bool lists_ok = rs == 1 && rcn == 1;
	for (size_t i = 0; rcn == 1 && i < nc; i++) {
		if (counts[i] == 0) {
			config_obj_error(o, "count", "entry %zu is 0 (allowed: 1..65535 %s)", i + 1,
					 function_ok && d->function <= 2 ? "bits" : "registers");
			lists_ok = false;
			break;
		}
	}
	if (rs == 1 && rcn == 1 && ns != nc) {
		config_obj_error(o, "count", "%zu %s but start has %zu", nc,
				 nc == 1 ? "entry" : "entries", ns);
		lists_ok = false;
	}
	if (lists_ok) {
		/* An invalid command has been reported; check the blocks as registers. */
		rc = blocks_build(starts, ns, counts, nc, function_ok ? d->function : 3, &d->blocks,
				  &d->block_count, err, sizeof(err));
		if (rc == MB_ERR_NOMEM) {
			o->c->nomem = true;
		} else if (rc < 0) {
			/* blocks_build names the list at fault at the start of its message. */
			if (!strncmp(err, "start: ", 7))
				config_obj_error(o, "start", "%s", err + 7);
			else if (!strncmp(err, "count: ", 7))
				config_obj_error(o, "count", "%s", err + 7);
			else
				config_obj_error(o, "count", "%s", err);
		}
	}
	free(starts);
	free(counts);
}

static void parse_address(const struct config_obj *o, struct device_config *d)
{
	const char *t;
	long long v;
	char err[256];
	int rc = config_get_scalar(o, "address", "a slave id or host:port", &t);

	if (rc == 0) {
		config_obj_error(o, "address",
				 "required (a slave id 1..247 for RTU, or host:port for Modbus TCP)");
		return;
	}
	if (rc < 0)
		return;
	d->address_text = strdup(t);
	if (!d->address_text) {
		o->c->nomem = true;
		return;
	}
	if (config_parse_ll(t, &v)) {
		d->transport = TRANSPORT_RTU;
		if (v < 1 || v > 247)
			config_obj_error(
				o, "address",
				"%.64s is out of range (allowed: slave id 1..247, or host:port for Modbus TCP)",
				t);
		else
			d->slave = (int)v;
		return;
	}
	d->transport = TRANSPORT_TCP;
	d->slave = 1;
	rc = config_parse_host_port(t, 502, &d->host, &d->port, err, sizeof(err));
	if (rc == MB_ERR_NOMEM)
		o->c->nomem = true;
	else if (rc < 0)
		config_obj_error(o, "address", "%s", err);
}

static void resolve_device_port(const struct config_obj *o, struct device_config *d,
				const struct serial_port_config *default_port, bool default_set)
{
	const struct config *cfg = o->c->cfg;
	char names[256];
	const char *t = NULL;
	int rc = config_get_text(o, "serial", &t);

	config_port_names(cfg, names, sizeof(names));
	if (rc < 0)
		return;
	if (rc == 1) {
		d->serial = config_find_port(cfg, t);
		if (d->serial)
			return;
		if (cfg->serial_port_count == 0)
			config_obj_error(
				o, "serial",
				"unknown port '%.64s' (no serial ports are defined; add a 'serial' section)",
				t);
		else
			config_obj_error(o, "serial", "unknown port '%.64s' (defined: %s)", t,
					 names);
		return;
	}
	if (default_set) {
		/* modbus.serial was set; if it was wrong, that has been reported already. */
		d->serial = default_port;
		return;
	}
	if (cfg->serial_port_count == 1) {
		d->serial = &cfg->serial_ports[0];
		return;
	}
	if (cfg->serial_port_count == 0)
		config_obj_error(
			o, "serial",
			"no serial ports are defined; an RTU device needs one (add a 'serial' section, or use host:port for Modbus TCP)");
	else
		config_obj_error(
			o, "serial",
			"required when several serial ports are defined (defined: %s; or set modbus.serial)",
			names);
}

/*
 * The keys of issue 5 (docs/modbus.md): byte_order, and the checks that tie type to the
 * command and the block sizes; optimize, max_per_read, retries, backoff_max.
 */
static void parse_device_reads(const struct config_obj *o, struct device_config *d,
			       bool function_ok)
{
	bool bits = function_ok && (d->function == 1 || d->function == 2);
	unsigned width = decode_width(d->type);
	unsigned limit = bits ? BLOCKS_MAX_BITS : BLOCKS_MAX_REGISTERS;
	int order;
	const char *t;

	if (bits && d->type != REG_TYPE_WORD)
		config_obj_error(
			o, "type",
			"'%s' is for registers, but command 0x%02X reads bits (allowed with 0x01 and 0x02: word)",
			decode_type_name(d->type), (unsigned)d->function);
	if (config_get_choice(o, "byte_order", reg_orders, ARRAY_SIZE(reg_orders),
			      "ABCD, CDAB, BADC, DCBA", &order) == 1) {
		if (bits)
			config_obj_error(
				o, "byte_order",
				"only for register commands 0x03 and 0x04 (command 0x%02X reads bits)",
				(unsigned)d->function);
		else
			d->order = (enum reg_order)order;
	}
	/* A value must not straddle two blocks: each block holds whole values. */
	for (size_t i = 0; !bits && width > 1 && i < d->block_count; i++) {
		if (d->blocks[i].count % width) {
			config_obj_error(
				o, "count",
				"entry %zu (%u) is not a multiple of %u registers, the size of one %s value",
				i + 1, (unsigned)d->blocks[i].count, width,
				decode_type_name(d->type));
			break;
		}
	}

	config_get_bool(o, "optimize", &d->optimize);
	config_get_int(o, "max_per_read", 1, function_ok ? (int)limit : BLOCKS_MAX_BITS,
		       bits ? " bits" : " registers", &d->max_per_read);
	config_get_int(o, "retries", 0, 10, "", &d->retries);
	if (config_get_scalar(o, "backoff_max", "a period such as 60s or 5m", &t) == 1) {
		int rc = config_parse_period(t, &d->backoff_max_ms);
		if (rc == -1)
			config_obj_error(
				o, "backoff_max",
				"'%.64s' is not a period (allowed: minutes as a number such as 5, or a number with a unit: 30s, 10m, 1h)",
				t);
		else if (rc == -2)
			config_obj_error(o, "backoff_max",
					 "'%.64s' is out of range (allowed: 100ms .. 7 days)", t);
	}
}

/*
 * max_outstanding: requests in flight at once on a Modbus TCP endpoint (docs/modbus.md).
 * It belongs to the endpoint, so the devices at one host:port that set it must agree.
 */
static void parse_max_outstanding(const struct config_obj *o, const struct config *cfg,
				  struct device_config *d, bool rtu)
{
	if (config_get_int(o, "max_outstanding", 1, MODBUS_MAX_OUTSTANDING, "",
			   &d->max_outstanding) != 1)
		return;
	if (rtu) {
		config_obj_error(o, "max_outstanding",
				 "only for Modbus TCP devices (a serial line carries one request at a "
				 "time)");
		d->max_outstanding = 0;
		return;
	}
	for (size_t i = 0; d->host && i < cfg->device_count; i++) {
		const struct device_config *other = &cfg->devices[i];
		if (other == d || other->transport != TRANSPORT_TCP || !other->host ||
		    other->port != d->port || strcmp(other->host, d->host) != 0 ||
		    !other->max_outstanding || other->max_outstanding == d->max_outstanding)
			continue;
		config_obj_error(
			o, "max_outstanding",
			"%d, but device '%s' (line %d) at the same address %s:%d says %d (the "
			"value belongs to the endpoint: give it once, or the same everywhere)",
			d->max_outstanding, other->id ? other->id : "?", other->line, d->host,
			d->port, other->max_outstanding);
		return;
	}
}

struct device_defaults {
	const struct serial_port_config *port; /* modbus.serial, resolved */
	bool port_set;                         /* modbus.serial was given */
	bool logger;                           /* modbus.logger */
};

static void parse_device(struct config_ctx *c, const struct yamldoc_node *map, const char *path,
			 const struct device_defaults *def, struct device_config *d)
{
	struct config *cfg = c->cfg;
	bool function_ok = true;
	struct config_obj o;
	const char *t;
	long long v;
	int rc;

	config_obj_scan(&o, c, map, path, yamldoc_line(map), device_keys, ARRAY_SIZE(device_keys));
	d->line = o.line;
	d->function = 3;
	d->type = REG_TYPE_WORD;
	d->period_ms = 60000;
	d->logger = def->logger;
	d->timeout_ms = 1000;
	d->order = REG_ORDER_ABCD;
	d->optimize = true;
	d->max_per_read = 0;
	d->retries = 1;
	d->backoff_max_ms = 60000;

	rc = config_get_text(&o, "id", &t);
	if (rc == 0) {
		config_obj_error(&o, "id",
				 "required (the device name sent as \"ID\", 1..%d characters)",
				 ID_MAX_LEN);
	} else if (rc == 1 && !*t) {
		config_obj_error(&o, "id", "must not be empty (allowed: 1..%d characters)",
				 ID_MAX_LEN);
	} else if (rc == 1 && strlen(t) > ID_MAX_LEN) {
		config_obj_error(&o, "id", "'%.32s...' has %zu characters (allowed: 1..%d)", t,
				 strlen(t), ID_MAX_LEN);
	} else if (rc == 1) {
		const struct device_config *other = config_find_device(cfg, t);

		if (other)
			config_obj_error(&o, "id", "duplicate id '%s' (first used on line %d)", t,
					 other->line);
		else if (!(d->id = strdup(t)))
			c->nomem = true;
	}

	parse_address(&o, d);
	bool tcp = d->address_text && d->transport == TRANSPORT_TCP;
	bool rtu = d->address_text && d->transport == TRANSPORT_RTU;

	if (config_get_ll(&o, "unit_id", 0, 255, "", &v) == 1) {
		if (rtu)
			config_obj_error(
				&o, "unit_id",
				"only for Modbus TCP devices (an RTU device's address is its slave id)");
		else
			d->slave = (int)v;
	}

	if (tcp && config_obj_get(&o, "serial"))
		config_obj_error(&o, "serial",
				 "only for RTU devices (address '%.64s' is Modbus TCP)",
				 d->address_text);
	else if (rtu)
		resolve_device_port(&o, d, def->port, def->port_set);

	if (config_get_int(&o, "timeout_ms", 1, 60000, " ms", &d->timeout_ms) == 1 && rtu)
		config_obj_error(&o, "timeout_ms",
				 "only for Modbus TCP devices; set timeout_ms on the serial port");
	if (rtu && d->serial)
		d->timeout_ms = d->serial->timeout_ms;

	rc = config_get_scalar(&o, "command", "a function code such as 0x03", &t);
	if (rc == 1) {
		if (!config_parse_ll(t, &v)) {
			config_obj_error(
				&o, "command",
				"expected a function code such as 0x03, got '%.64s' (allowed: 0x01, 0x02, 0x03, 0x04)",
				t);
			function_ok = false;
		} else if (v < 1 || v > 4) {
			if (v >= 0 && v <= 0xff)
				config_obj_error(&o, "command",
						 "0x%02llX is not a read command (allowed: %s)",
						 (unsigned long long)v, READ_COMMANDS);
			else
				config_obj_error(&o, "command",
						 "%.64s is not a read command (allowed: %s)", t,
						 READ_COMMANDS);
			function_ok = false;
		} else {
			d->function = (int)v;
		}
	} else if (rc < 0) {
		function_ok = false;
	}

	parse_blocks(&o, d, function_ok);

	if (config_get_text(&o, "type", &t) == 1) {
		const struct config_choice *ch =
			config_find_choice(t, reg_types, ARRAY_SIZE(reg_types));

		if (ch) {
			d->type = (enum reg_type)ch->value;
		} else {
			char allowed[128];
			const char *names[ARRAY_SIZE(reg_types)];

			for (size_t i = 0; i < ARRAY_SIZE(reg_types); i++)
				names[i] = reg_types[i].name;
			config_join_names(names, ARRAY_SIZE(reg_types), allowed, sizeof(allowed));
			config_obj_error(&o, "type", "'%.64s' is not supported (allowed: %s)", t,
					 allowed);
		}
	}

	if (config_get_scalar(&o, "period", "a period such as 10, 30s or 500ms", &t) == 1) {
		rc = config_parse_period(t, &d->period_ms);
		if (rc == -1)
			config_obj_error(
				&o, "period",
				"'%.64s' is not a period (allowed: minutes as a number such as 10 or 0.5, or a number with a unit: 500ms, 30s, 10m, 1h)",
				t);
		else if (rc == -2)
			config_obj_error(&o, "period",
					 "'%.64s' is out of range (allowed: 100ms .. 7 days)", t);
	}

	config_get_bool(&o, "logger", &d->logger);
	/* An unknown type leaves the default (word), which no type check objects to: the
	 * other read keys are still checked, so every problem is reported at once. */
	parse_device_reads(&o, d, function_ok);
	parse_max_outstanding(&o, cfg, d, rtu);
}

void config_parse_modbus(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "modbus", "Modbus keys (enabled, serial, logger, devices)");
	struct config *cfg = c->cfg;
	struct device_defaults def = {NULL, false, true};
	const struct yamldoc_node *devs;
	struct config_obj o;
	const char *t;
	size_t n;

	config_obj_scan(&o, c, map, "modbus", config_obj_line(top, "modbus"), modbus_keys,
			ARRAY_SIZE(modbus_keys));
	config_get_bool(&o, "enabled", &cfg->modbus_enabled);
	config_get_bool(&o, "logger", &def.logger);
	if (config_get_text(&o, "serial", &t) == 1) {
		char names[256];

		def.port_set = true;
		def.port = config_find_port(cfg, t);
		config_port_names(cfg, names, sizeof(names));
		if (!def.port && cfg->serial_port_count == 0)
			config_obj_error(
				&o, "serial",
				"unknown port '%.64s' (no serial ports are defined; add a 'serial' section)",
				t);
		else if (!def.port)
			config_obj_error(&o, "serial", "unknown port '%.64s' (defined: %s)", t,
					 names);
	}

	devs = config_obj_get(&o, "devices");
	if (devs && yamldoc_kind(devs) != YAMLDOC_SEQUENCE) {
		config_obj_error(&o, "devices", "expected a list of devices (- id: ...), got %s",
				 config_kind_name(devs));
		return;
	}
	n = devs ? yamldoc_seq_len(devs) : 0;
	if (n == 0) {
		config_obj_warn(&o, "devices", "no devices configured");
		return;
	}
	cfg->devices = calloc(n, sizeof(*cfg->devices));
	if (!cfg->devices) {
		c->nomem = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct yamldoc_node *item = yamldoc_seq_item(c->doc, devs, i);
		char path[CONFIG_KEY_LEN];

		snprintf(path, sizeof(path), "modbus.devices[%zu]", i);
		if (!item || yamldoc_kind(item) != YAMLDOC_MAPPING) {
			config_report(
				c, CONFIG_ERROR, yamldoc_line(item), path,
				"expected a mapping (id, address, command, start, count, ...), got %s",
				item ? config_kind_name(item) : "nothing");
			continue;
		}
		parse_device(c, item, path, &def, &cfg->devices[cfg->device_count]);
		cfg->device_count++;
	}
}
