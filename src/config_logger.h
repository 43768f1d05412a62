/*
 * config_logger.h - the logger part of the configuration: message form, topic, store
 * file and the bounds of the store and of the memory buffer.
 *
 * What the store, the ingest, the forwarder and the JSON encoder consume, filled by the
 * loader (config_logger.c; docs/configuration.md and docs/logger.md document every key).
 * Part of a struct config (config.h): immutable once loaded, so any thread may read it;
 * the loader owns every pointer in it.
 */
#ifndef MODBRIDGE_CONFIG_LOGGER_H
#define MODBRIDGE_CONFIG_LOGGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum send_mode { SEND_FIFO, SEND_LIFO };

/* What a full store (or a full memory buffer) gives up. */
enum store_full_policy {
	STORE_DROP_OLDEST, /* default: keep the newest readings */
	STORE_DROP_NEWEST, /* keep the oldest readings; refuse new ones while full */
};
enum time_format { TIME_ISO8601, TIME_UNIX };
/* The router's "Communication mode": where the readings go. */
enum logger_mode { LOGGER_MQTT, LOGGER_HTTP, LOGGER_FTP };

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
	enum logger_mode mode; /* default mqtt */
	char *topic;           /* default "[IMEI]/logger"; [IMEI] not yet replaced */
	int inflight_window;   /* messages in flight to the broker, default 256 */
	int64_t max_messages;  /* store bound in readings, default 1000000; 0 = none */
	int64_t max_bytes;     /* store bound in JSON bytes, default 256 MiB; 0 = none */
	enum store_full_policy full_policy; /* default drop_oldest */
	int64_t memory_max_messages; /* in-memory buffer while the store fails, default 10000 */
	int64_t memory_max_bytes;    /* ... and in bytes, default 8 MiB */
};

#endif
