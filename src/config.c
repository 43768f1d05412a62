/*
 * config.c - the modbridge configuration: YAML file -> validated struct; see config.h.
 *
 * Reads the whole file, lets yamldoc.h build the node tree, then walks the tree section
 * by section, filling a fresh struct config with defaults and the values found. Every
 * problem is recorded with its line and the walk goes on, so one run reports all of them
 * (config_diag.c sorts them into file order for the caller's config_diags). This file
 * holds the walk's top level and the public API; each section has its own file
 * (config_internal.h lists them). This module never logs: the caller decides how to show
 * the diagnostics. docs/configuration.md is the user-facing reference of every key
 * checked here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"
#include "error.h"
#include "yamldoc.h"

/* A configuration is a few kilobytes; the bound only stops a wrong path from eating RAM. */
#define MAX_FILE_SIZE ((size_t)4 * 1024 * 1024)

static const char *const top_keys[] = {
	"gateway", "serial", "modbus", "logger", "mqtt", "http", "ftp", "remote", "modem", "web",
};
static const char *const gateway_keys[] = {"imei"};

static void parse_gateway(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map = config_get_mapping(top, "gateway", "gateway keys (imei)");
	struct config_obj o;
	const char *t;

	config_obj_scan(&o, c, map, "gateway", config_obj_line(top, "gateway"), gateway_keys,
			ARRAY_SIZE(gateway_keys));
	if (config_get_text(&o, "imei", &t) == 1) {
		if (!*t) {
			config_obj_error(&o, "imei",
					 "must not be empty (remove the key to use the host name)");
		} else if (!(c->cfg->imei = strdup(t))) {
			c->nomem = true;
		} else {
			c->cfg->imei_configured = true;
		}
	}
}

static int set_defaults(struct config *cfg)
{
	cfg->modbus_enabled = true;
	cfg->logger.send_mode = SEND_FIFO;
	cfg->logger.time_format = TIME_ISO8601;
	cfg->logger.array_max_count = 50;
	cfg->logger.array_max_bytes = 65536;
	cfg->logger.error_messages = true;
	cfg->logger.inflight_window = 256;
	cfg->logger.max_messages = 1000000;
	cfg->logger.max_bytes = 256LL * 1024 * 1024;
	cfg->logger.full_policy = STORE_DROP_OLDEST;
	cfg->logger.memory_max_messages = 10000;
	cfg->logger.memory_max_bytes = 8LL * 1024 * 1024;
	cfg->mqtt.enabled = true;
	cfg->mqtt.qos = 1;
	cfg->mqtt.keepalive_s = 60;
	cfg->logger.id = strdup("");
	cfg->logger.store_path = strdup("/var/lib/modbridge/store.db");
	cfg->logger.topic = strdup("[IMEI]/logger");
	cfg->mqtt.client_id = strdup("[IMEI]");
	cfg->mqtt.status_topic = strdup("[IMEI]/status");
	cfg->http.method = HTTP_POST;
	cfg->http.timeout_ms = 10000;
	cfg->http.query_parameter = strdup("data");
	cfg->ftp.interval_ms = 3600000;
	cfg->ftp.max_readings = 10000;
	cfg->ftp.format = FTP_JSONL;
	cfg->ftp.timeout_ms = 60000;
	cfg->modem.baudrate = 115200;
	cfg->modem.timeout_ms = 5000;
	if (!cfg->logger.id || !cfg->logger.store_path || !cfg->logger.topic ||
	    !cfg->mqtt.client_id || !cfg->mqtt.status_topic || !cfg->http.query_parameter)
		return MB_ERR_NOMEM;
	return 0;
}

static int set_hostname(struct config *cfg)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	cfg->imei = strdup(host);
	return cfg->imei ? 0 : MB_ERR_NOMEM;
}

/* Reads the whole file; on failure reports "path: cannot open: reason". */
static int read_file(struct config_ctx *c, char **buf, size_t *len)
{
	char why[128];
	int rc = yamldoc_read_file(c->path, MAX_FILE_SIZE, buf, len, why, sizeof(why));

	if (rc == MB_ERR_IO)
		config_push_diag(c, CONFIG_ERROR, 0,
				 config_fmt("%s: cannot open: %s", c->path, why));
	return rc;
}

static void report_yaml_error(struct config_ctx *c, const struct yamldoc_error *e)
{
	const char *problem = e->problem ? e->problem : "unknown problem";

	if (e->encoding) {
		config_report(c, CONFIG_ERROR, e->line, NULL, "YAML syntax error: %s (byte %zu)",
			      problem, e->offset);
		return;
	}
	config_report(c, CONFIG_ERROR, e->line, NULL, "YAML syntax error: %s (column %d)", problem,
		      e->column);
}

static void parse_document(struct config_ctx *c)
{
	const struct yamldoc_node *root = yamldoc_root(c->doc);
	struct config_obj top;

	if (root && yamldoc_is_null(root))
		root = NULL;
	if (root && yamldoc_kind(root) != YAMLDOC_MAPPING) {
		/* Nothing below would make sense; one message is enough. */
		config_report(
			c, CONFIG_ERROR, yamldoc_line(root), "top level",
			"expected a mapping of sections (gateway, serial, modbus, logger, mqtt, http, ftp, remote, modem, web), got %s",
			config_kind_name(root));
		return;
	}
	config_obj_scan(&top, c, root, "", 1, top_keys, ARRAY_SIZE(top_keys));
	parse_gateway(c, &top);
	config_parse_serial(c, &top);
	config_parse_modbus(c, &top);
	config_parse_logger(c, &top);
	config_parse_mqtt(c, &top);
	config_parse_http(c, &top);
	config_parse_ftp(c, &top);
	config_parse_remote(c, &top);
	config_parse_modem(c, &top);
	config_parse_web(c, &top);
}

static int load(struct config_ctx *c, const char *buf, size_t len)
{
	struct yamldoc_error e;
	struct yamldoc *doc;
	int rc = yamldoc_load(buf, len, YAMLDOC_ONE, &doc, &e);

	if (rc == MB_ERR_INVAL)
		report_yaml_error(c, &e);
	if (rc < 0)
		return rc == MB_ERR_NOMEM ? rc : 0;
	c->doc = doc;
	parse_document(c);
	c->doc = NULL;

	/* A second document would be silently ignored; say so instead. */
	rc = yamldoc_rest(doc, &e);
	if (rc == MB_ERR_INVAL)
		report_yaml_error(c, &e);
	else if (rc == 1)
		config_report(c, CONFIG_ERROR, e.line, NULL,
			      "only one YAML document is allowed (remove the '---' line)");
	yamldoc_free(doc);
	return rc == MB_ERR_NOMEM ? rc : 0;
}

int config_load(const char *path, struct config **out, struct config_diags *diags)
{
	struct config_ctx c = {0};
	char *buf = NULL;
	struct config *cfg = NULL;
	const char *slash;
	size_t len = 0;
	int rc;

	if (!path || !out || !diags)
		return MB_ERR_INVAL;
	c.path = path;
	slash = strrchr(path, '/');
	if (slash && !(c.dir = strndup(path, (size_t)(slash - path)))) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}

	rc = read_file(&c, &buf, &len);
	if (rc < 0)
		goto fail;

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(path))) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	rc = set_defaults(cfg);
	if (rc < 0)
		goto fail;
	c.cfg = cfg;
	rc = load(&c, buf, len);
	if (rc < 0)
		goto fail;
	if (!cfg->imei && set_hostname(cfg) < 0) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	if (c.nomem) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	rc = c.errors ? MB_ERR_CONFIG : 0;

fail:
	if (config_flush_diags(&c, diags) < 0 && rc == 0)
		rc = MB_ERR_NOMEM;
	if (rc == 0)
		*out = cfg;
	else
		config_free(cfg);
	free(buf);
	free(c.dir);
	return rc;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->imei);
	for (size_t i = 0; i < cfg->serial_port_count; i++) {
		free(cfg->serial_ports[i].name);
		free(cfg->serial_ports[i].device);
	}
	free(cfg->serial_ports);
	for (size_t i = 0; i < cfg->device_count; i++) {
		free(cfg->devices[i].id);
		free(cfg->devices[i].address_text);
		free(cfg->devices[i].host);
		free(cfg->devices[i].blocks);
	}
	free(cfg->devices);
	free(cfg->logger.id);
	free(cfg->logger.store_path);
	free(cfg->logger.topic);
	free(cfg->mqtt.broker);
	free(cfg->mqtt.host);
	free(cfg->mqtt.username);
	free(cfg->mqtt.password);
	free(cfg->mqtt.client_id);
	free(cfg->mqtt.ca_file);
	free(cfg->mqtt.ca_path);
	free(cfg->mqtt.cert_file);
	free(cfg->mqtt.key_file);
	for (size_t i = 0; i < cfg->mqtt.at_topic_count; i++) {
		free(cfg->mqtt.at_topics[i].topic);
		free(cfg->mqtt.at_topics[i].response);
	}
	free(cfg->mqtt.status_topic);
	free(cfg->http.url);
	free(cfg->http.query_parameter);
	for (size_t i = 0; i < cfg->http.header_count; i++) {
		free(cfg->http.headers[i].name);
		free(cfg->http.headers[i].value);
	}
	free(cfg->http.headers);
	free(cfg->http.username);
	free(cfg->http.password);
	free(cfg->http.bearer_token);
	free(cfg->http.ca_file);
	free(cfg->http.cert_file);
	free(cfg->http.key_file);
	free(cfg->ftp.url);
	free(cfg->ftp.username);
	free(cfg->ftp.password);
	free(cfg->ftp.key_file);
	free(cfg->ftp.known_hosts);
	free(cfg->ftp.ca_file);
	free(cfg->ftp.cert_file);
	free(cfg->ftp.file_name);
	free(cfg->modem.device);
	config_web_free(&cfg->web);
	free(cfg);
}

void config_diags_free(struct config_diags *diags)
{
	if (!diags)
		return;
	for (size_t i = 0; i < diags->count; i++)
		free(diags->items[i].text);
	free(diags->items);
	diags->items = NULL;
	diags->count = 0;
	diags->errors = 0;
}

const struct device_config *config_find_device(const struct config *cfg, const char *id)
{
	if (!cfg || !id)
		return NULL;
	for (size_t i = 0; i < cfg->device_count; i++)
		if (cfg->devices[i].id && !strcmp(cfg->devices[i].id, id))
			return &cfg->devices[i];
	return NULL;
}

int config_set_imei(struct config *cfg, const char *imei)
{
	char *copy;

	if (!cfg || !imei || !*imei)
		return MB_ERR_INVAL;
	copy = strdup(imei);
	if (!copy)
		return MB_ERR_NOMEM;
	free(cfg->imei);
	cfg->imei = copy;
	cfg->imei_configured = false;
	return 0;
}

char *config_subst_imei(const char *text, const char *imei)
{
	static const char tag[] = "[IMEI]";
	const size_t tlen = sizeof(tag) - 1;
	size_t ilen, n = 0, len;
	const char *p;
	char *out, *o;

	if (!text)
		return NULL;
	if (!imei)
		imei = "";
	ilen = strlen(imei);
	for (p = text; (p = strstr(p, tag)); p += tlen)
		n++;
	len = strlen(text) - n * tlen + n * ilen;
	out = malloc(len + 1);
	if (!out)
		return NULL;
	for (o = out, p = text; *p;) {
		if (!strncmp(p, tag, tlen)) {
			memcpy(o, imei, ilen);
			o += ilen;
			p += tlen;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}
