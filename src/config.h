/*
 * config.h - the modbridge configuration: YAML file -> validated struct.
 *
 * The file mirrors the router's screens (serial port, Modbus devices, logger, MQTT client,
 * certificates); docs/configuration.md documents every key. config_load() parses into a
 * fresh struct, validates it as a whole and reports *every* problem as
 * "file:line: key: message", so a user fixes all mistakes in one round. A struct config is
 * immutable once loaded; threads may read it freely. Reload means load a new one and swap.
 */
#ifndef MODBRIDGE_CONFIG_H
#define MODBRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blocks.h"

#define CONFIG_MAX_AT_TOPICS 3

struct serial_port_config {
	char *name;          /* "com2": what devices refer to */
	char *device;        /* "/dev/ttyS1" */
	int baudrate;        /* 1200 .. 921600 */
	int data_bits;       /* 7 or 8 */
	char parity;         /* 'N', 'E' or 'O' */
	int stop_bits;       /* 1 or 2 */
	int timeout_ms;      /* response time-out, default 1000 */
	int byte_timeout_ms; /* silence that ends a frame (router's "Timeout ms"), default 50 */
	int line;            /* line in the file, for messages */
	int device_line;     /* line of the device key, for messages */
	char key[24];        /* key path for messages: "serial[0]" ("serial" for one mapping) */
	/* Modbus depth (issue 5): line timing for slow slaves and the bus-time planner. */
	int silent_interval_ms; /* silence before each request; -1: 3.5 characters (the spec) */
	int turnaround_ms;      /* planner's allowance per transaction for the slave, default 5 */
};

enum device_transport {
	TRANSPORT_RTU, /* serial line, address is the slave id */
	TRANSPORT_TCP, /* Modbus TCP, address is "host:port" */
};

/* How registers are turned into the values of "V" (src/decode.h, docs/modbus.md). */
enum reg_type {
	REG_TYPE_WORD,   /* raw unsigned 16-bit registers, as the router */
	REG_TYPE_INT16,  /* signed 16-bit, one register */
	REG_TYPE_UINT32, /* two registers each */
	REG_TYPE_INT32,
	REG_TYPE_FLOAT32, /* IEEE 754 single */
	REG_TYPE_UINT64,  /* four registers each */
	REG_TYPE_INT64,
	REG_TYPE_FLOAT64, /* IEEE 754 double */
};

/*
 * Byte and word order of a value on the wire. A value's bytes, most significant first,
 * are A B C D (E F G H for 64-bit types); the name lists them in the order the registers
 * carry them. ABCD is Modbus's own big-endian order.
 */
enum reg_order {
	REG_ORDER_ABCD, /* registers in order, high byte first (default) */
	REG_ORDER_CDAB, /* registers in reverse order ("word swap") */
	REG_ORDER_BADC, /* bytes swapped within each register ("byte swap") */
	REG_ORDER_DCBA, /* both: fully little-endian */
};

struct device_config {
	char *id;           /* "Dev. name / ID" -> JSON "ID" */
	char *address_text; /* as written in the file -> JSON "A" */
	enum device_transport transport;
	int slave; /* RTU slave address (1..247) or TCP unit id (0..255) */
	const struct serial_port_config *serial; /* RTU: the bus (points into config) */
	char *host;                              /* TCP: host name or IP */
	int port;                                /* TCP: port, default 502 */
	int function;                            /* 1, 2, 3 or 4 */
	struct block *blocks;
	size_t block_count;
	enum reg_type type;
	int64_t period_ms; /* read period; the schedule is aligned to it */
	bool logger;       /* readings go to the logger (store + forward) */
	int timeout_ms;    /* TCP response time-out; RTU: a copy of the port's */
	int line;
	/* Modbus depth (issue 5); docs/modbus.md explains each. */
	enum reg_order order;   /* byte/word order of the values, default ABCD */
	bool optimize;          /* merge blocks into fewer requests, default true */
	int max_per_read;       /* registers/bits per request; 0: the protocol limit */
	int retries;            /* extra attempts after a time-out or garbled answer */
	int64_t backoff_max_ms; /* longest interval between polls of a down device */
};

enum send_mode { SEND_FIFO, SEND_LIFO };

/* What a full store (or a full memory buffer) gives up. */
enum store_full_policy {
	STORE_DROP_OLDEST, /* default: keep the newest readings */
	STORE_DROP_NEWEST, /* keep the oldest readings; refuse new ones while full */
};
enum time_format { TIME_ISO8601, TIME_UNIX };

struct logger_config {
	char *id;                 /* -> JSON "P" ("" when not set) */
	enum send_mode send_mode; /* default FIFO ("normally FIFO", says the router) */
	enum time_format time_format;
	bool array;             /* "Use array": several messages per publish */
	int array_max_count;    /* bound of one array, default 50 */
	size_t array_max_bytes; /* bound of one array payload, default 64 KiB */
	bool error_messages;    /* publish ERR messages for failed reads (default true) */
	/* SQLite file, default /var/lib/modbridge/store.db; relative to the file's directory */
	char *store_path;
	char *topic;          /* default "[IMEI]/logger"; [IMEI] not yet replaced */
	int inflight_window;  /* messages in flight to the broker, default 256 */
	int64_t max_messages; /* store bound in readings, default 1000000; 0 = none */
	int64_t max_bytes;    /* store bound in JSON bytes, default 256 MiB; 0 = none */
	enum store_full_policy full_policy; /* default drop_oldest */
	int64_t memory_max_messages; /* in-memory buffer while the store fails, default 10000 */
	int64_t memory_max_bytes;    /* ... and in bytes, default 8 MiB */
};

struct at_topic_pair {
	char *topic; /* [IMEI] not yet replaced */
	char *response;
};

struct mqtt_config {
	bool enabled;
	/* As written, e.g. "ssl://test.mosquitto.org:8884"; NULL (host NULL, port 0) when
	 * MQTT is disabled and no broker is given. */
	char *broker;
	bool tls; /* ssl:// or mqtts:// */
	char *host;
	int port;       /* default 1883 (tcp) or 8883 (ssl) */
	char *username; /* NULL when blank */
	char *password; /* NULL when blank; never log it */
	/* Default "[IMEI]"; [IMEI] not yet replaced. "" when set blank: let the library pick
	 * one (never together with persistence). */
	char *client_id;
	int qos;          /* 0..2, default 1 */
	int keepalive_s;  /* 30..3600, default 60 */
	bool persistence; /* persistent session: clean session off */
	/* The four paths below are resolved against the file's directory when relative,
	 * were readable at load time, and are NULL when the broker URL is not TLS. */
	char *ca_file;               /* NULL: the system's CA store */
	char *ca_path;               /* directory of CA certificates (c_rehash form), optional */
	char *cert_file;             /* client certificate (PEM), optional */
	char *key_file;              /* client key (PEM), required with cert_file */
	bool allow_all_certificates; /* disables peer + hostname verification; warns */
	struct at_topic_pair at_topics[CONFIG_MAX_AT_TOPICS];
	size_t at_topic_count;
	/* Retained "online" on connect, "offline" as the last will and at a clean stop.
	 * Default "[IMEI]/status" ([IMEI] not yet replaced); NULL when set blank (disabled). */
	char *status_topic;
};

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
	struct remote_config remote;
	struct modem_config modem;
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
