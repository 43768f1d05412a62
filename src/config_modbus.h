/*
 * config_modbus.h - the Modbus part of the configuration: serial ports and devices.
 *
 * What the poller, the planner, modbus_io and the register decoder consume, filled by the
 * loader (config_serial.c, config_modbus.c; docs/configuration.md and docs/modbus.md
 * document every key). Part of a struct config (config.h): immutable once loaded, so any
 * thread may read it; the loader owns every pointer in it (config_free frees them).
 */
#ifndef MODBRIDGE_CONFIG_MODBUS_H
#define MODBRIDGE_CONFIG_MODBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blocks.h"

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
	/* Modbus TCP: requests in flight at once on the device's endpoint (1..
	 * MODBUS_MAX_OUTSTANDING; 0: not set, which is 1). The same for all devices of one
	 * host:port that set it. */
	int max_outstanding;
};

/* The largest max_outstanding (tcploop.h's TCPLOOP_MAX_OUTSTANDING). */
#define MODBUS_MAX_OUTSTANDING 32

#endif
