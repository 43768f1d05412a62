/*
 * config_remote.h - what remote (AT over MQTT) commands may do, and the modem's AT port.
 *
 * What the remote commands and the modem module consume, filled by the loader
 * (config_mqtt.c reads `remote`, config_serial.c `modem`; docs/remote-commands.md and
 * docs/configuration.md document every key). Part of a struct config (config.h):
 * immutable once loaded, so any thread may read it; the loader owns every pointer in it.
 */
#ifndef MODBRIDGE_CONFIG_REMOTE_H
#define MODBRIDGE_CONFIG_REMOTE_H

#include <stdbool.h>

/*
 * What remote (AT over MQTT) commands may change. Read-only commands are always allowed;
 * everything here is off unless the file turns it on. docs/remote-commands.md lists which
 * command needs which permission.
 */
struct remote_config {
	bool allow_writes;            /* SETMODBUS: write a register or coil */
	bool allow_setparam;          /* SETPARAM: change the configuration file */
	bool allow_reboot;            /* REBOOT: restart the daemon */
	bool allow_modem_passthrough; /* commands the gateway does not know go to the modem */
};

/* The cellular modem's AT port (optional). */
struct modem_config {
	char *device;   /* "/dev/ttyUSB2"; NULL when no modem is configured */
	int baudrate;   /* default 115200 */
	int timeout_ms; /* how long one AT command may take, default 5000 */
	int line;
};

#endif
