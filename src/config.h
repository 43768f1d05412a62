/*
 * config.h - the modbridge configuration: YAML file -> validated struct.
 *
 * The file mirrors the router's screens (serial port, Modbus devices, logger, MQTT client,
 * certificates); docs/configuration.md documents every key. config_load() parses into a
 * fresh struct, validates it as a whole and reports *every* problem as
 * "file:line: key: message", so a user fixes all mistakes in one round. A struct config is
 * immutable once loaded; threads may read it freely. Reload means load a new one and swap.
 *
 * Each section's types have their own header, so a module includes only what it consumes:
 * config_modbus.h (serial ports, devices), config_logger.h (logger, store bounds),
 * config_mqtt.h (broker, AT topics), config_remote.h (remote permissions, modem),
 * config_uplink.h (the http and ftp send modes), config_web.h (the web UI). This
 * header adds the whole struct config, the diagnostics and the loader's API.
 */
#ifndef MODBRIDGE_CONFIG_H
#define MODBRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config_logger.h"
#include "config_modbus.h"
#include "config_mqtt.h"
#include "config_remote.h"
#include "config_uplink.h"
#include "config_web.h"

struct config {
	char *path;
	char *imei;           /* gateway.imei, or the host name when not set */
	bool imei_configured; /* false when imei fell back to the host name */
	struct serial_port_config *serial_ports;
	size_t serial_port_count;
	bool modbus_enabled;
	struct device_config *devices;
	size_t device_count;
	struct logger_config logger;
	struct mqtt_config mqtt;
	struct http_config http;
	struct ftp_config ftp;
	struct remote_config remote;
	struct modem_config modem;
	struct web_config web;
};

enum config_severity { CONFIG_ERROR, CONFIG_WARNING };

struct config_diag {
	enum config_severity severity;
	char *text; /* "file:line: key: message" */
};

struct config_diags {
	struct config_diag *items;
	size_t count;
	size_t errors; /* how many items are errors */
};

/*
 * Loads and validates the file at path. Every problem found is appended to diags (which
 * the caller owns and frees with config_diags_free; it may already hold items). Returns 0
 * and stores a new config in *out when there are no errors (warnings allowed); otherwise
 * returns MB_ERR_CONFIG (or MB_ERR_IO when the file cannot be read, also described in
 * diags) and leaves *out untouched.
 */
int config_load(const char *path, struct config **out, struct config_diags *diags);

/* Frees a config from config_load. Accepts NULL. */
void config_free(struct config *cfg);

/* Frees the items of diags and resets it to empty. Accepts NULL. */
void config_diags_free(struct config_diags *diags);

/* Finds a device by its id, or NULL. */
const struct device_config *config_find_device(const struct config *cfg, const char *id);

/*
 * Replaces the identity (cfg->imei), e.g. with the IMEI read from the modem at start-up;
 * imei_configured becomes false. Only before the config is shared with other threads.
 * Returns 0 or MB_ERR_NOMEM (cfg unchanged).
 */
int config_set_imei(struct config *cfg, const char *imei);

/*
 * Returns a malloc'd copy of text with every "[IMEI]" replaced by imei (caller frees),
 * or NULL when out of memory.
 */
char *config_subst_imei(const char *text, const char *imei);

#endif
