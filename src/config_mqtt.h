/*
 * config_mqtt.h - the MQTT part of the configuration: broker, credentials, session, TLS
 * files, AT topics and status topic.
 *
 * What the MQTT link (mqtt.c) and the remote commands consume, filled by the loader
 * (config_mqtt.c; docs/configuration.md documents every key). Topics hold "[IMEI]" as
 * written: config_subst_imei (config.h) replaces it. Part of a struct config (config.h):
 * immutable once loaded, so any thread may read it; the loader owns every pointer in it.
 */
#ifndef MODBRIDGE_CONFIG_MQTT_H
#define MODBRIDGE_CONFIG_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_AT_TOPICS 3
#define CONFIG_MAX_SCRIPT_TOPICS 8

struct at_topic_pair {
	char *topic; /* [IMEI] not yet replaced */
	char *response;
};

/* mqtt.script_topics: when a message arrives on topic, the script's on_message runs. */
struct script_topic_config {
	char *topic;  /* a filter; [IMEI] not yet replaced */
	char *script; /* the file as written */
	char *script_path;
	char *source; /* its text, read and checked at load time */
	size_t len;
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
	struct script_topic_config script_topics[CONFIG_MAX_SCRIPT_TOPICS];
	size_t script_topic_count;
	/* Retained "online" on connect, "offline" as the last will and at a clean stop.
	 * Default "[IMEI]/status" ([IMEI] not yet replaced); NULL when set blank (disabled). */
	char *status_topic;
};

#endif
