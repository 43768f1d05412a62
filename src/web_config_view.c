/*
 * web_config_view.c - the configuration as the forms show it; see web_internal.h.
 *
 * Every value the forms show, defaults included, written as text the file accepts ("10m",
 * "1;10;55", "0x03"), so that a form sent back unchanged changes nothing. Secrets only as
 * "set" or not (never their value), and for file keys the path as the file spells it.
 * Called by GET /api/config on the connection's thread; reads the configuration only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confedit.h"
#include "decode.h"
#include "web_internal.h"

/* ---------------------------------------------------------------- values as the file has them */

static void period_text(int64_t ms, char *buf, size_t len)
{
	if (ms % 3600000 == 0)
		snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
}

static void kint_text(struct web_json *j, const char *key, long long v)
{
	char t[32];

	snprintf(t, sizeof(t), "%lld", v);
	web_json_kstr(j, key, t);
}

static void kbool_text(struct web_json *j, const char *key, bool v)
{
	web_json_kstr(j, key, v ? "true" : "false");
}

static const char *order_name(enum reg_order o)
{
	static const char *const names[] = {"ABCD", "CDAB", "BADC", "DCBA"};

	return (unsigned)o < 4 ? names[o] : "ABCD";
}

static void blocks_text(const struct device_config *d, bool counts, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->block_count && used + 8 < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%u", i ? ";" : "",
					 counts ? (unsigned)d->blocks[i].count
						: (unsigned)d->blocks[i].start);
}

static void json_serial(struct web_json *j, const struct config *cfg)
{
	web_json_key(j, "serial");
	web_json_arr(j);
	for (size_t i = 0; i < cfg->serial_port_count; i++) {
		const struct serial_port_config *p = &cfg->serial_ports[i];
		web_json_obj(j);
		web_json_kstr(j, "name", p->name);
		web_json_kstr(j, "device", p->device);
		kint_text(j, "baudrate", p->baudrate);
		kint_text(j, "data_bits", p->data_bits);
		web_json_kstr(j, "parity",
			      p->parity == 'E'   ? "even"
			      : p->parity == 'O' ? "odd"
						 : "none");
		kint_text(j, "stop_bits", p->stop_bits);
		kint_text(j, "timeout_ms", p->timeout_ms);
		kint_text(j, "byte_timeout_ms", p->byte_timeout_ms);
		if (p->silent_interval_ms < 0)
			web_json_kstr(j, "silent_interval_ms", "auto");
		else
			kint_text(j, "silent_interval_ms", p->silent_interval_ms);
		kint_text(j, "turnaround_ms", p->turnaround_ms);
		web_json_obj_end(j);
	}
	web_json_arr_end(j);
}

static void json_devices(struct web_json *j, const struct config *cfg)
{
	char t[1024];

	web_json_key(j, "modbus");
	web_json_obj(j);
	kbool_text(j, "enabled", cfg->modbus_enabled);
	web_json_obj_end(j);
	web_json_key(j, "devices");
	web_json_arr(j);
	for (size_t i = 0; i < cfg->device_count; i++) {
		const struct device_config *d = &cfg->devices[i];
		web_json_obj(j);
		web_json_kstr(j, "id", d->id);
		web_json_kstr(j, "address", d->address_text);
		if (d->transport == TRANSPORT_TCP)
			kint_text(j, "unit_id", d->slave);
		else
			web_json_kstr(j, "unit_id", "");
		web_json_kstr(j, "serial",
			      d->transport == TRANSPORT_RTU && d->serial ? d->serial->name : "");
		snprintf(t, sizeof(t), "0x%02X", (unsigned)d->function);
		web_json_kstr(j, "command", t);
		blocks_text(d, false, t, sizeof(t));
		web_json_kstr(j, "start", t);
		blocks_text(d, true, t, sizeof(t));
		web_json_kstr(j, "count", t);
		web_json_kstr(j, "type", decode_type_name(d->type));
		period_text(d->period_ms, t, sizeof(t));
		web_json_kstr(j, "period", t);
		kbool_text(j, "logger", d->logger);
		if (d->transport == TRANSPORT_TCP)
			kint_text(j, "timeout_ms", d->timeout_ms);
		else
			web_json_kstr(j, "timeout_ms", "");
		web_json_kstr(j, "byte_order", order_name(d->order));
		kbool_text(j, "optimize", d->optimize);
		if (d->max_per_read)
			kint_text(j, "max_per_read", d->max_per_read);
		else
			web_json_kstr(j, "max_per_read", "");
		kint_text(j, "retries", d->retries);
		period_text(d->backoff_max_ms, t, sizeof(t));
		web_json_kstr(j, "backoff_max", t);
		web_json_obj_end(j);
	}
	web_json_arr_end(j);
}

static const char *mode_name(enum logger_mode m)
{
	return m == LOGGER_HTTP ? "http" : m == LOGGER_FTP ? "ftp" : "mqtt";
}

static void json_logger(struct web_json *j, const struct config *cfg)
{
	const struct logger_config *l = &cfg->logger;

	web_json_key(j, "logger");
	web_json_obj(j);
	web_json_kstr(j, "id", l->id);
	web_json_kstr(j, "mode", mode_name(l->mode));
	web_json_kstr(j, "send_mode", l->send_mode == SEND_LIFO ? "lifo" : "fifo");
	web_json_kstr(j, "time_format", l->time_format == TIME_UNIX ? "unix" : "iso8601");
	kbool_text(j, "array", l->array);
	kint_text(j, "array_max_count", l->array_max_count);
	kint_text(j, "array_max_bytes", (long long)l->array_max_bytes);
	kbool_text(j, "error_messages", l->error_messages);
	web_json_kstr(j, "store", l->store_path);
	web_json_kstr(j, "topic", l->topic);
	kint_text(j, "inflight_window", l->inflight_window);
	kint_text(j, "max_messages", l->max_messages);
	kint_text(j, "max_bytes", l->max_bytes);
	web_json_kstr(j, "full_policy",
		      l->full_policy == STORE_DROP_NEWEST ? "drop_newest" : "drop_oldest");
	kint_text(j, "memory_max_messages", l->memory_max_messages);
	kint_text(j, "memory_max_bytes", l->memory_max_bytes);
	web_json_obj_end(j);
}

/* A path key of the file as written (the loader drops TLS paths under tcp://). */
static void kpath(struct web_json *j, const char *text, size_t len, const char *key,
		  const char *loaded)
{
	char *v = NULL, why[256];

	if (loaded) {
		web_json_kstr(j, strrchr(key, '.') + 1, loaded);
		return;
	}
	if (text && confedit_get(text, len, key, &v, why, sizeof(why)) == 0)
		web_json_kstr(j, strrchr(key, '.') + 1, v);
	else
		web_json_kstr(j, strrchr(key, '.') + 1, "");
	free(v);
}

static void json_mqtt(struct web_json *j, const struct config *cfg, const char *text, size_t len)
{
	const struct mqtt_config *m = &cfg->mqtt;

	web_json_key(j, "mqtt");
	web_json_obj(j);
	kbool_text(j, "enabled", m->enabled);
	web_json_kstr(j, "broker", m->broker ? m->broker : "");
	/* Credentials are write-only: the page learns only whether they are set. */
	web_json_kbool(j, "username_set", m->username != NULL);
	web_json_kbool(j, "password_set", m->password != NULL);
	web_json_kstr(j, "client_id", m->client_id);
	kint_text(j, "qos", m->qos);
	kint_text(j, "keepalive", m->keepalive_s);
	kbool_text(j, "persistence", m->persistence);
	kpath(j, text, len, "mqtt.ca_file", m->ca_file);
	kpath(j, text, len, "mqtt.ca_path", m->ca_path);
	kpath(j, text, len, "mqtt.cert_file", m->cert_file);
	kpath(j, text, len, "mqtt.key_file", m->key_file);
	kbool_text(j, "allow_all_certificates", m->allow_all_certificates);
	web_json_kstr(j, "status_topic", m->status_topic ? m->status_topic : "");
	web_json_key(j, "at_topics");
	web_json_arr(j);
	for (size_t i = 0; i < m->at_topic_count; i++) {
		web_json_obj(j);
		web_json_kstr(j, "topic", m->at_topics[i].topic);
		web_json_kstr(j, "response", m->at_topics[i].response);
		web_json_obj_end(j);
	}
	web_json_arr_end(j);
	web_json_obj_end(j);
}

/* The http section (logger.mode: http, the router's WEB mode); secrets as *_set only. */
static void json_http(struct web_json *j, const struct config *cfg, const char *text, size_t len)
{
	static const char *const methods[] = {"post", "put", "get"};
	const struct http_config *h = &cfg->http;

	web_json_key(j, "http");
	web_json_obj(j);
	web_json_kstr(j, "url", h->url ? h->url : "");
	web_json_kstr(j, "method", methods[h->method]);
	web_json_kstr(j, "query_parameter", h->query_parameter ? h->query_parameter : "");
	web_json_kstr(j, "username", h->username ? h->username : "");
	web_json_kbool(j, "password_set", h->password != NULL);
	web_json_kbool(j, "bearer_token_set", h->bearer_token != NULL);
	kpath(j, text, len, "http.ca_file", h->ca_file);
	kpath(j, text, len, "http.cert_file", h->cert_file);
	kpath(j, text, len, "http.key_file", h->key_file);
	kbool_text(j, "allow_all_certificates", h->allow_all_certificates);
	kint_text(j, "timeout_ms", h->timeout_ms);
	/* Header values often carry an API key: the page learns their names only. */
	web_json_key(j, "header_names");
	web_json_arr(j);
	for (size_t i = 0; i < h->header_count; i++)
		web_json_str(j, h->headers[i].name);
	web_json_arr_end(j);
	web_json_obj_end(j);
}

/* The ftp section (logger.mode: ftp); the password as password_set only. */
static void json_ftp(struct web_json *j, const struct config *cfg, const char *text, size_t len)
{
	const struct ftp_config *f = &cfg->ftp;
	char t[32];

	web_json_key(j, "ftp");
	web_json_obj(j);
	kpath(j, text, len, "ftp.url", NULL); /* as written: the loader adds a final '/' */
	web_json_kstr(j, "username", f->username ? f->username : "");
	web_json_kbool(j, "password_set", f->password != NULL);
	kpath(j, text, len, "ftp.key_file", f->key_file);
	kpath(j, text, len, "ftp.known_hosts", f->known_hosts);
	kpath(j, text, len, "ftp.ca_file", f->ca_file);
	kpath(j, text, len, "ftp.cert_file", f->cert_file);
	kbool_text(j, "allow_all_certificates", f->allow_all_certificates);
	web_json_kstr(j, "file_name", f->file_name ? f->file_name : "");
	if (f->interval_ms % 86400000 == 0)
		snprintf(t, sizeof(t), "%lldd", (long long)(f->interval_ms / 86400000));
	else
		period_text(f->interval_ms, t, sizeof(t));
	web_json_kstr(j, "interval", t);
	kint_text(j, "max_readings", f->max_readings);
	web_json_kstr(j, "format", f->format == FTP_ARRAY ? "array" : "jsonl");
	kint_text(j, "timeout_ms", f->timeout_ms);
	web_json_obj_end(j);
}

static void json_rest(struct web_json *j, const struct config *cfg)
{
	web_json_key(j, "gateway");
	web_json_obj(j);
	web_json_kstr(j, "imei", cfg->imei_configured ? cfg->imei : "");
	web_json_kstr(j, "identity", cfg->imei);
	web_json_obj_end(j);
	web_json_key(j, "remote");
	web_json_obj(j);
	web_json_kbool(j, "allow_writes", cfg->remote.allow_writes);
	web_json_kbool(j, "allow_setparam", cfg->remote.allow_setparam);
	web_json_kbool(j, "allow_reboot", cfg->remote.allow_reboot);
	web_json_kbool(j, "allow_modem_passthrough", cfg->remote.allow_modem_passthrough);
	web_json_obj_end(j);
	web_json_key(j, "modem");
	web_json_obj(j);
	web_json_kstr(j, "device", cfg->modem.device ? cfg->modem.device : "");
	web_json_obj_end(j);
	web_json_key(j, "web");
	web_json_obj(j);
	web_json_kstr(j, "listen", cfg->web.listen);
	web_json_kbool(j, "tls", cfg->web.tls_cert_file != NULL);
	web_json_kstr(j, "cert_dir", cfg->web.cert_dir);
	web_json_key(j, "users");
	web_json_arr(j);
	for (size_t i = 0; i < cfg->web.user_count; i++)
		web_json_str(j, cfg->web.users[i].name); /* never the hash */
	web_json_arr_end(j);
	web_json_obj_end(j);
}

void web_config_json(struct web_json *j, const struct config *cfg, const char *text, size_t len)
{
	json_rest(j, cfg);
	json_serial(j, cfg);
	json_devices(j, cfg);
	json_logger(j, cfg);
	json_mqtt(j, cfg, text, len);
	json_http(j, cfg, text, len);
	json_ftp(j, cfg, text, len);
}
