/*
 * config_mqtt.c - the `mqtt` section of the configuration (broker URL, credentials,
 * session, TLS files, AT topics, status topic) and the `remote` permissions; see
 * docs/configuration.md, docs/remote-commands.md and config_internal.h.
 *
 * Paths to TLS files are opened, and what they hold is checked with certinfo.h (a
 * certificate, an unencrypted key of that certificate), so `run` refuses what would only
 * fail at every handshake. Topics are checked with topic.h, the rules the remote commands
 * route with. Runs on the loading thread, after the logger section (the AT topics must
 * not match the logger topic).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "error.h"
#include "topic.h"

static const char *const mqtt_keys[] = {
	"enabled",
	"broker",
	"username",
	"password",
	"client_id",
	"qos",
	"keepalive",
	"persistence",
	"ca_file",
	"ca_path",
	"cert_file",
	"key_file",
	"allow_all_certificates",
	"at_topics",
	"script_topics",
	"status_topic",
};

_Static_assert(ARRAY_SIZE(mqtt_keys) <= CONFIG_MAX_KEYS,
	       "struct config_obj holds at most CONFIG_MAX_KEYS keys");
static const char *const at_topic_keys[] = {"topic", "response"};
static const char *const remote_keys[] = {
	"allow_writes",
	"allow_setparam",
	"allow_reboot",
	"allow_modem_passthrough",
};

static void parse_broker(const struct config_obj *o, struct mqtt_config *m, bool *tls_known)
{
	static const struct {
		const char *scheme;
		bool tls;
		int port;
	} schemes[] = {
		{"tcp", false, 1883},
		{"mqtt", false, 1883},
		{"ssl", true, 8883},
		{"mqtts", true, 8883},
	};
	const char *t, *sep, *rest;
	char err[256], *hostport = NULL;
	size_t i, len;
	int rc = config_get_scalar(o, "broker", "a URL such as ssl://broker.example.com:8883", &t);

	if (rc == 0 && m->enabled)
		config_obj_error(
			o, "broker",
			"required when mqtt is enabled (a URL such as ssl://broker.example.com:8883)");
	if (rc <= 0)
		return;
	sep = strstr(t, "://");
	if (!sep) {
		config_obj_error(
			o, "broker",
			"'%.64s' is not a URL (expected scheme://host[:port], such as ssl://broker.example.com:8883)",
			t);
		return;
	}
	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		if (strlen(schemes[i].scheme) == (size_t)(sep - t) &&
		    !strncasecmp(t, schemes[i].scheme, (size_t)(sep - t)))
			break;
	if (i == ARRAY_SIZE(schemes)) {
		config_obj_error(
			o, "broker",
			"'%.*s' is not a supported scheme (allowed: tcp://, mqtt://, ssl://, mqtts://)",
			(int)(sep - t > 16 ? 16 : sep - t), t);
		return;
	}
	*tls_known = true;
	m->tls = schemes[i].tls;
	rest = sep + 3;
	len = strlen(rest);
	if (len && rest[len - 1] == '/')
		len--; /* "tcp://host:1883/" is a common way to write it */
	if (memchr(rest, '/', len)) {
		config_obj_error(o, "broker",
				 "'%.64s': a path is not allowed (expected scheme://host[:port])",
				 t);
		return;
	}
	hostport = strndup(rest, len);
	if (!hostport) {
		o->c->nomem = true;
		return;
	}
	rc = config_parse_host_port(hostport, schemes[i].port, &m->host, &m->port, err,
				    sizeof(err));
	if (rc == 0 && !(m->broker = strdup(t)))
		rc = MB_ERR_NOMEM;
	if (rc == MB_ERR_NOMEM)
		o->c->nomem = true;
	else if (rc < 0)
		config_obj_error(o, "broker", "%s", err);
	free(hostport);
}

static void parse_at_topics(struct config_ctx *c, const struct config_obj *o, struct mqtt_config *m)
{
	const struct yamldoc_node *v = config_obj_get(o, "at_topics");
	size_t n;

	if (!v)
		return;
	if (yamldoc_kind(v) != YAMLDOC_SEQUENCE) {
		config_obj_error(o, "at_topics",
				 "expected a list of {topic, response} pairs, got %s",
				 config_kind_name(v));
		return;
	}
	int response_line[CONFIG_MAX_AT_TOPICS] = {0}, topic_line[CONFIG_MAX_AT_TOPICS] = {0};

	n = yamldoc_seq_len(v);
	for (size_t i = 0; i < n; i++) {
		const struct yamldoc_node *item = yamldoc_seq_item(c->doc, v, i);
		struct at_topic_pair pair = {NULL, NULL};
		char path[CONFIG_KEY_LEN];
		struct config_obj p;
		const char *t, *why;

		snprintf(path, sizeof(path), "mqtt.at_topics[%zu]", i);
		if (i >= CONFIG_MAX_AT_TOPICS) {
			config_report(c, CONFIG_ERROR, yamldoc_line(item), path,
				      "too many pairs (allowed: at most %d)", CONFIG_MAX_AT_TOPICS);
			break;
		}
		if (!item || yamldoc_kind(item) != YAMLDOC_MAPPING) {
			config_report(c, CONFIG_ERROR, yamldoc_line(item), path,
				      "expected a mapping {topic, response}, got %s",
				      item ? config_kind_name(item) : "nothing");
			continue;
		}
		config_obj_scan(&p, c, item, path, yamldoc_line(item), at_topic_keys,
				ARRAY_SIZE(at_topic_keys));
		int rt = config_get_text(&p, "topic", &t);
		if (rt == 0) {
			config_obj_error(&p, "topic",
					 "required (the topic to subscribe to, such as [IMEI]/AT)");
		} else if (rt == 1 && *(why = topic_filter_problem(t))) {
			config_obj_error(&p, "topic", "%s", why);
		} else if (rt == 1 && !(pair.topic = strdup(t))) {
			c->nomem = true;
		}
		int rr = config_get_text(&p, "response", &t);
		if (rr == 0) {
			config_obj_error(&p, "response",
					 "required (the topic for answers, such as [IMEI]/ATR)");
		} else if (rr == 1 && *(why = topic_publish_problem(t))) {
			config_obj_error(&p, "response", "%s", why);
		} else if (rr == 1 && !(pair.response = strdup(t))) {
			c->nomem = true;
		}
		if (pair.topic && pair.response) {
			response_line[m->at_topic_count] = config_obj_line(&p, "response");
			topic_line[m->at_topic_count] = config_obj_line(&p, "topic");
			m->at_topics[m->at_topic_count++] = pair;
		} else {
			free(pair.topic);
			free(pair.response);
		}
	}
	/* An answer landing on a command topic would be taken for a command: a loop. */
	for (size_t i = 0; i < m->at_topic_count; i++) {
		for (size_t j = 0; j < m->at_topic_count; j++) {
			char path[CONFIG_KEY_LEN];

			if (!topic_matches(m->at_topics[j].topic, m->at_topics[i].response))
				continue;
			snprintf(path, sizeof(path), "mqtt.at_topics[%zu].response", i);
			config_report(
				c, CONFIG_ERROR, response_line[i], path,
				"'%.64s' is matched by the command topic '%.64s': replies would be taken for commands (use a topic outside it, such as [IMEI]/ATR)",
				m->at_topics[i].response, m->at_topics[j].topic);
			break;
		}
		const char *logger_topic = c->cfg->logger.topic;
		if (logger_topic && topic_matches(m->at_topics[i].topic, logger_topic)) {
			char path[CONFIG_KEY_LEN];

			snprintf(path, sizeof(path), "mqtt.at_topics[%zu].topic", i);
			config_report(
				c, CONFIG_ERROR, topic_line[i], path,
				"'%.64s' matches the logger topic '%.64s': readings would be taken for commands (use a topic such as [IMEI]/AT)",
				m->at_topics[i].topic, logger_topic);
		}
	}
}

/* Reads mqtt.status_topic; blank disables it. Checked against the AT topics. */
static void parse_status_topic(const struct config_obj *o, struct mqtt_config *m)
{
	const char *t, *why;
	char *topic;

	if (config_get_text(o, "status_topic", &t) == 1) {
		if (!*t) {
			free(m->status_topic);
			m->status_topic = NULL;
		} else if (*(why = topic_publish_problem(t))) {
			config_obj_error(o, "status_topic", "%s", why);
			return;
		} else if (!(topic = strdup(t))) {
			o->c->nomem = true;
		} else {
			free(m->status_topic);
			m->status_topic = topic;
		}
	}
	for (size_t j = 0; m->status_topic && j < m->at_topic_count; j++) {
		if (topic_matches(m->at_topics[j].topic, m->status_topic)) {
			config_obj_error(
				o, "status_topic",
				"'%.64s' is matched by the command topic '%.64s' (use a topic outside it)",
				m->status_topic, m->at_topics[j].topic);
			break;
		}
	}
}

void config_parse_mqtt(struct config_ctx *c, const struct config_obj *top)
{
	static const char *const tls_keys[] = {"ca_file", "ca_path", "cert_file", "key_file"};
	const struct yamldoc_node *map =
		config_get_mapping(top, "mqtt", "MQTT keys (enabled, broker, ...)");
	struct mqtt_config *m = &c->cfg->mqtt;
	bool tls_known = false, checks;
	struct config_obj o;
	const char *t;

	config_obj_scan(&o, c, map, "mqtt", config_obj_line(top, "mqtt"), mqtt_keys,
			ARRAY_SIZE(mqtt_keys));
	/* In http and ftp mode MQTT only carries the AT commands and the status topic: off
	 * unless the file has an mqtt section. */
	if (!map && c->cfg->logger.mode != LOGGER_MQTT)
		m->enabled = false;
	config_get_bool(&o, "enabled", &m->enabled);
	parse_broker(&o, m, &tls_known);

	config_get_login(&o, &m->username, &m->password);
	if (config_get_text(&o, "client_id", &t) == 1) {
		char *id;

		if (strlen(t) > TOPIC_MAX_LEN) {
			config_obj_error(&o, "client_id", "is longer than 65535 bytes");
		} else if (!(id = strdup(t))) {
			c->nomem = true;
		} else {
			free(m->client_id);
			m->client_id = id;
		}
	}
	config_get_int(&o, "qos", 0, 2, "", &m->qos);
	config_get_int(&o, "keepalive", 30, 3600, " seconds", &m->keepalive_s);
	if (config_get_bool(&o, "persistence", &m->persistence) == 1 && m->persistence &&
	    m->client_id && !*m->client_id)
		config_obj_error(&o, "persistence", "true requires a non-empty client_id");
	config_get_bool(&o, "allow_all_certificates", &m->allow_all_certificates);

	if (tls_known && !m->tls) {
		/* Not an error: switching the URL back to ssl:// should need no other edit. */
		for (size_t i = 0; i < ARRAY_SIZE(tls_keys); i++)
			if (config_obj_get(&o, tls_keys[i]))
				config_obj_warn(&o, tls_keys[i],
						"ignored: the broker URL is not ssl://");
		if (m->allow_all_certificates)
			config_obj_warn(&o, "allow_all_certificates",
					"ignored: the broker URL is not ssl://");
		m->allow_all_certificates = false;
		checks = false;
	} else {
		checks = true;
		config_warn_unverified(&o, m->allow_all_certificates);
	}
	int ca = config_get_path(&o, "ca_file", checks, false, &m->ca_file);
	config_get_path(&o, "ca_path", checks, true, &m->ca_path);
	int cert = config_get_path(&o, "cert_file", checks, false, &m->cert_file);
	int key = config_get_path(&o, "key_file", checks, false, &m->key_file);
	if (checks)
		config_check_tls_files(&o, ca == 1 ? m->ca_file : NULL,
				       cert == 1 ? m->cert_file : NULL,
				       key == 1 ? m->key_file : NULL);
	if (!checks) {
		/* Ignored means ignored: the MQTT module must not half-apply them. */
		free(m->ca_file);
		free(m->ca_path);
		free(m->cert_file);
		free(m->key_file);
		m->ca_file = m->ca_path = m->cert_file = m->key_file = NULL;
	}

	parse_at_topics(c, &o, m);
	config_parse_script_topics(c, &o);
	parse_status_topic(&o, m);
}

void config_parse_remote(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "remote", "remote command permissions (allow_writes, ...)");
	struct remote_config *r = &c->cfg->remote;
	struct config_obj o;

	config_obj_scan(&o, c, map, "remote", config_obj_line(top, "remote"), remote_keys,
			ARRAY_SIZE(remote_keys));
	config_get_bool(&o, "allow_writes", &r->allow_writes);
	config_get_bool(&o, "allow_setparam", &r->allow_setparam);
	config_get_bool(&o, "allow_reboot", &r->allow_reboot);
	config_get_bool(&o, "allow_modem_passthrough", &r->allow_modem_passthrough);
}
