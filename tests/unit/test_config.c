/*
 * test_config.c - unit tests of config*.c: YAML file -> validated struct config.
 *
 * The good files under tests/data/config/good are loaded and every field is checked.
 * Each bad file under tests/data/config/bad has a .expected file with the exact
 * diagnostics (directory part of the path removed, warnings prefixed "warning: "); one
 * test per bad file compares them. Small cases are written to a temporary directory.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"

#define MAX_BAD_FILES 128

/* Returns a malloc'd "$MODBRIDGE_TESTDATA/config/<rel>". */
static char *data_path(const char *rel)
{
	const char *root = getenv("MODBRIDGE_TESTDATA");
	char *p;

	if (!root) {
		fail_msg("MODBRIDGE_TESTDATA is not set");
		return NULL;
	}
	p = malloc(strlen(root) + strlen(rel) + 16);
	assert_non_null(p);
	sprintf(p, "%s/config/%s", root, rel);
	return p;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/*
 * A diagnostic as it appears in .expected files: no directory (also inside the message,
 * where a resolved path such as '<dir>/../certs/x.key' names a file), "warning: " for
 * warnings.
 */
static char *diag_line(const struct config_diag *d, const char *dir)
{
	const char *text = d->text;
	size_t dl = strlen(dir);
	char *line, *out;

	line = malloc(strlen(text) + 16);
	assert_non_null(line);
	out = line + sprintf(line, "%s", d->severity == CONFIG_WARNING ? "warning: " : "");
	while (*text) {
		if (!strncmp(text, dir, dl) && text[dl] == '/')
			text += dl + 1;
		else
			*out++ = *text++;
	}
	*out = '\0';
	return line;
}

static void assert_diag(const struct config_diags *d, size_t i, const char *dir, const char *want)
{
	char *line;

	assert_true(i < d->count);
	line = diag_line(&d->items[i], dir);
	assert_string_equal(line, want);
	free(line);
}

static struct config *load_good(const char *rel, struct config_diags *diags)
{
	struct config *cfg = NULL;
	char *path = data_path(rel);
	int rc = config_load(path, &cfg, diags);

	if (rc != 0) {
		for (size_t i = 0; i < diags->count; i++)
			print_error("%s\n", diags->items[i].text);
		fail_msg("config_load(%s) = %d", path, rc);
	}
	assert_non_null(cfg);
	assert_string_equal(cfg->path, path);
	free(path);
	return cfg;
}

/* A temporary directory holding one config file; removed by tmp_cleanup. */
struct tmp {
	char dir[64];
	char path[96];
};

static void tmp_write(struct tmp *t, const char *name, const char *text)
{
	char p[160];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", t->dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int tmp_load(struct tmp *t, const char *yaml, struct config **cfg,
		    struct config_diags *diags)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/modbridge-test-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/c.yaml", t->dir);
	tmp_write(t, "c.yaml", yaml);
	return config_load(t->path, cfg, diags);
}

/* Copies a file of tests/data/config (rel) into the temporary directory as name. */
static void copy_data(struct tmp *t, const char *rel, const char *name)
{
	char *src = data_path(rel);
	char *text = read_all(src);

	tmp_write(t, name, text);
	free(text);
	free(src);
}

static void tmp_cleanup_file(struct tmp *t, const char *name)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/%s", t->dir, name);
	unlink(p);
}

static void tmp_cleanup(struct tmp *t, const char *extra)
{
	char p[160];

	if (extra) {
		snprintf(p, sizeof(p), "%s/%s", t->dir, extra);
		unlink(p);
	}
	unlink(t->path);
	rmdir(t->dir);
}

/* ---------------------------------------------------------------- good files */

static void test_seed(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;
	const struct serial_port_config *p;
	const struct device_config *d;
	char *dir = data_path("good");
	char want[512];

	(void)state;
	cfg = load_good("good/seed.yaml", &diags);
	assert_int_equal(diags.count, 0);
	assert_int_equal(diags.errors, 0);

	assert_string_equal(cfg->imei, "357299070082380");
	assert_true(cfg->imei_configured);

	assert_int_equal(cfg->serial_port_count, 1);
	p = &cfg->serial_ports[0];
	assert_string_equal(p->name, "com2");
	assert_string_equal(p->device, "/dev/ttyS1");
	assert_int_equal(p->baudrate, 9600);
	assert_int_equal(p->data_bits, 8);
	assert_int_equal(p->parity, 'N');
	assert_int_equal(p->stop_bits, 1);
	assert_int_equal(p->timeout_ms, 1000);
	assert_int_equal(p->byte_timeout_ms, 50);
	assert_int_equal(p->line, 6);

	assert_true(cfg->modbus_enabled);
	assert_int_equal(cfg->device_count, 2);

	d = &cfg->devices[0];
	assert_string_equal(d->id, "1");
	assert_string_equal(d->address_text, "1");
	assert_int_equal(d->transport, TRANSPORT_RTU);
	assert_int_equal(d->slave, 1);
	assert_ptr_equal(d->serial, &cfg->serial_ports[0]);
	assert_null(d->host);
	assert_int_equal(d->function, 3);
	assert_int_equal(d->block_count, 11);
	{
		static const uint16_t starts[] = {1, 10, 55, 69, 72, 100, 120, 130, 152, 160, 170};
		static const uint16_t counts[] = {1, 3, 2, 2, 9, 10, 5, 4, 3, 7, 1};

		for (size_t i = 0; i < 11; i++) {
			assert_int_equal(d->blocks[i].start, starts[i]);
			assert_int_equal(d->blocks[i].count, counts[i]);
		}
	}
	assert_int_equal(blocks_total(d->blocks, d->block_count), 47);
	assert_int_equal(d->type, REG_TYPE_WORD);
	assert_int_equal(d->period_ms, 600000);
	assert_true(d->logger);
	assert_int_equal(d->timeout_ms, 1000);
	assert_int_equal(d->line, 16);

	/* "PLC2": Modbus TCP, no serial, logger from the modbus.logger default. */
	d = &cfg->devices[1];
	assert_string_equal(d->id, "2");
	assert_string_equal(d->address_text, "192.168.1.20:502");
	assert_int_equal(d->transport, TRANSPORT_TCP);
	assert_string_equal(d->host, "192.168.1.20");
	assert_int_equal(d->port, 502);
	assert_int_equal(d->slave, 1);
	assert_null(d->serial);
	assert_int_equal(d->function, 3);
	assert_int_equal(d->block_count, 1);
	assert_int_equal(d->blocks[0].start, 10);
	assert_int_equal(d->blocks[0].count, 5);
	assert_int_equal(d->type, REG_TYPE_WORD);
	assert_int_equal(d->period_ms, 600000);
	assert_true(d->logger);
	assert_int_equal(d->timeout_ms, 1000);
	assert_int_equal(d->line, 25);

	assert_string_equal(cfg->logger.id, "ID-1234");
	assert_int_equal(cfg->logger.send_mode, SEND_LIFO);
	assert_int_equal(cfg->logger.time_format, TIME_ISO8601);
	assert_false(cfg->logger.array);
	assert_int_equal(cfg->logger.array_max_count, 50);
	assert_int_equal(cfg->logger.array_max_bytes, 65536);
	assert_true(cfg->logger.error_messages);
	assert_string_equal(cfg->logger.store_path, "/var/lib/modbridge/store.db");
	assert_string_equal(cfg->logger.topic, "[IMEI]/logger");
	assert_int_equal(cfg->logger.inflight_window, 256);

	assert_true(cfg->mqtt.enabled);
	assert_string_equal(cfg->mqtt.broker, "ssl://test.mosquitto.org:8884");
	assert_true(cfg->mqtt.tls);
	assert_string_equal(cfg->mqtt.host, "test.mosquitto.org");
	assert_int_equal(cfg->mqtt.port, 8884);
	assert_null(cfg->mqtt.username);
	assert_null(cfg->mqtt.password);
	assert_string_equal(cfg->mqtt.client_id, "[IMEI]");
	assert_int_equal(cfg->mqtt.qos, 1);
	assert_int_equal(cfg->mqtt.keepalive_s, 60);
	assert_false(cfg->mqtt.persistence);
	/* Relative certificate paths are resolved against the file's directory. */
	snprintf(want, sizeof(want), "%s/../certs/ca.crt", dir);
	assert_string_equal(cfg->mqtt.ca_file, want);
	assert_null(cfg->mqtt.ca_path);
	snprintf(want, sizeof(want), "%s/../certs/client.crt", dir);
	assert_string_equal(cfg->mqtt.cert_file, want);
	snprintf(want, sizeof(want), "%s/../certs/client.key", dir);
	assert_string_equal(cfg->mqtt.key_file, want);
	assert_false(cfg->mqtt.allow_all_certificates);
	assert_int_equal(cfg->mqtt.at_topic_count, 1);
	assert_string_equal(cfg->mqtt.at_topics[0].topic, "[IMEI]/AT");
	assert_string_equal(cfg->mqtt.at_topics[0].response, "[IMEI]/ATR");

	assert_ptr_equal(config_find_device(cfg, "2"), &cfg->devices[1]);
	config_free(cfg);
	config_diags_free(&diags);
	free(dir);
}

static void test_minimal_defaults(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;
	const struct device_config *d;
	char host[256] = "";

	(void)state;
	cfg = load_good("good/minimal.yaml", &diags);
	assert_int_equal(diags.count, 0);

	/* No gateway.imei: the host name stands in. */
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_string_equal(cfg->imei, host);
	assert_false(cfg->imei_configured);

	/* serial given as a single mapping is a list of one. */
	assert_int_equal(cfg->serial_port_count, 1);
	assert_string_equal(cfg->serial_ports[0].name, "com1");
	assert_string_equal(cfg->serial_ports[0].device, "/dev/ttyUSB0");
	assert_int_equal(cfg->serial_ports[0].baudrate, 9600);
	assert_int_equal(cfg->serial_ports[0].data_bits, 8);
	assert_int_equal(cfg->serial_ports[0].parity, 'N');
	assert_int_equal(cfg->serial_ports[0].stop_bits, 1);
	assert_int_equal(cfg->serial_ports[0].timeout_ms, 1000);
	assert_int_equal(cfg->serial_ports[0].byte_timeout_ms, 50);

	assert_true(cfg->modbus_enabled);
	assert_int_equal(cfg->device_count, 1);
	d = &cfg->devices[0];
	assert_string_equal(d->id, "meter");
	assert_string_equal(d->address_text, "7");
	assert_int_equal(d->transport, TRANSPORT_RTU);
	assert_int_equal(d->slave, 7);
	/* The only serial port is the default bus. */
	assert_ptr_equal(d->serial, &cfg->serial_ports[0]);
	assert_int_equal(d->function, 3);
	assert_int_equal(d->block_count, 1);
	assert_int_equal(d->blocks[0].start, 0);
	assert_int_equal(d->blocks[0].count, 2);
	assert_int_equal(d->type, REG_TYPE_WORD);
	assert_int_equal(d->period_ms, 60000);
	assert_true(d->logger);
	/* Modbus depth defaults (docs/modbus.md). */
	assert_int_equal(d->order, REG_ORDER_ABCD);
	assert_true(d->optimize);
	assert_int_equal(d->max_per_read, 0);
	assert_int_equal(d->retries, 1);
	assert_int_equal(d->backoff_max_ms, 60000);
	assert_int_equal(d->max_outstanding, 0); /* not set: one request at a time */
	assert_int_equal(cfg->serial_ports[0].silent_interval_ms, -1);
	assert_int_equal(cfg->serial_ports[0].turnaround_ms, 5);

	assert_string_equal(cfg->logger.id, "");
	assert_int_equal(cfg->logger.send_mode, SEND_FIFO);
	assert_int_equal(cfg->logger.time_format, TIME_ISO8601);
	assert_false(cfg->logger.array);
	assert_int_equal(cfg->logger.array_max_count, 50);
	assert_int_equal(cfg->logger.array_max_bytes, 65536);
	assert_true(cfg->logger.error_messages);
	assert_string_equal(cfg->logger.store_path, "/var/lib/modbridge/store.db");
	assert_string_equal(cfg->logger.topic, "[IMEI]/logger");
	assert_int_equal(cfg->logger.inflight_window, 256);

	assert_true(cfg->mqtt.enabled);
	assert_string_equal(cfg->mqtt.broker, "tcp://localhost");
	assert_false(cfg->mqtt.tls);
	assert_string_equal(cfg->mqtt.host, "localhost");
	assert_int_equal(cfg->mqtt.port, 1883);
	assert_null(cfg->mqtt.username);
	assert_null(cfg->mqtt.password);
	assert_string_equal(cfg->mqtt.client_id, "[IMEI]");
	assert_int_equal(cfg->mqtt.qos, 1);
	assert_int_equal(cfg->mqtt.keepalive_s, 60);
	assert_false(cfg->mqtt.persistence);
	assert_null(cfg->mqtt.ca_file);
	assert_null(cfg->mqtt.ca_path);
	assert_null(cfg->mqtt.cert_file);
	assert_null(cfg->mqtt.key_file);
	assert_false(cfg->mqtt.allow_all_certificates);
	assert_int_equal(cfg->mqtt.at_topic_count, 0);

	config_free(cfg);
	config_diags_free(&diags);
}

static void test_router_forms(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;
	const struct device_config *d;
	const struct serial_port_config *com1, *com2;
	char *dir = data_path("good");
	char want[512];

	(void)state;
	cfg = load_good("good/router_forms.yaml", &diags);
	assert_int_equal(diags.count, 0);

	/* A number is accepted as text. */
	assert_string_equal(cfg->imei, "123456789012345");
	assert_true(cfg->imei_configured);

	assert_int_equal(cfg->serial_port_count, 2);
	com1 = &cfg->serial_ports[0];
	com2 = &cfg->serial_ports[1];
	assert_int_equal(com1->baudrate, 19200);
	assert_int_equal(com1->data_bits, 7);
	assert_int_equal(com1->parity, 'E');
	assert_int_equal(com1->stop_bits, 2);
	assert_int_equal(com1->timeout_ms, 500);
	assert_int_equal(com1->byte_timeout_ms, 20);
	assert_string_equal(com2->device, "/dev/ttyS1");
	assert_int_equal(com2->parity, 'O');
	assert_int_equal(com2->baudrate, 9600);

	assert_int_equal(cfg->device_count, 6);

	/* id: 1 -> "1"; address "5" (text of digits) is RTU; modbus.serial is the bus. */
	d = config_find_device(cfg, "1");
	assert_ptr_equal(d, &cfg->devices[0]);
	assert_string_equal(d->address_text, "5");
	assert_int_equal(d->transport, TRANSPORT_RTU);
	assert_int_equal(d->slave, 5);
	assert_ptr_equal(d->serial, com2);
	assert_int_equal(d->function, 4);
	assert_int_equal(d->block_count, 3);
	assert_int_equal(d->blocks[0].start, 1);
	assert_int_equal(d->blocks[0].count, 1);
	assert_int_equal(d->blocks[1].start, 10);
	assert_int_equal(d->blocks[1].count, 3);
	assert_int_equal(d->blocks[2].start, 55);
	assert_int_equal(d->blocks[2].count, 2);
	assert_int_equal(d->period_ms, 600000);
	assert_false(d->logger); /* modbus.logger: no */

	/* YAML lists for start/count, 2000 bits for 0x01, quoted hex command, 0.5 minutes. */
	d = config_find_device(cfg, "half");
	assert_non_null(d);
	assert_int_equal(d->slave, 6);
	assert_ptr_equal(d->serial, com1);
	assert_int_equal(d->function, 1);
	assert_int_equal(d->block_count, 2);
	assert_int_equal(d->blocks[0].start, 0);
	assert_int_equal(d->blocks[0].count, 2000);
	assert_int_equal(d->blocks[1].start, 100);
	assert_int_equal(d->blocks[1].count, 16);
	assert_int_equal(d->period_ms, 30000);
	assert_true(d->logger);
	assert_int_equal(d->timeout_ms, 500); /* the port's */

	d = config_find_device(cfg, "thirty");
	assert_non_null(d);
	assert_string_equal(d->address_text, "0x07");
	assert_int_equal(d->transport, TRANSPORT_RTU);
	assert_int_equal(d->slave, 7);
	assert_int_equal(d->function, 2);
	assert_int_equal(d->blocks[0].start, 65535);
	assert_int_equal(d->blocks[0].count, 1);
	assert_int_equal(d->period_ms, 30000);

	d = config_find_device(cfg, "fast");
	assert_non_null(d);
	assert_string_equal(d->address_text, "[fe80::1]:1502");
	assert_int_equal(d->transport, TRANSPORT_TCP);
	assert_string_equal(d->host, "fe80::1");
	assert_int_equal(d->port, 1502);
	assert_int_equal(d->slave, 0);
	assert_null(d->serial);
	assert_int_equal(d->timeout_ms, 250);
	assert_int_equal(d->blocks[0].count, 125);
	assert_int_equal(d->period_ms, 500);

	d = config_find_device(cfg, "hourly");
	assert_non_null(d);
	assert_string_equal(d->host, "plc.example.com");
	assert_int_equal(d->port, 502);
	assert_int_equal(d->period_ms, 3600000);

	d = config_find_device(cfg, "tenmin");
	assert_non_null(d);
	assert_string_equal(d->host, "10.0.0.9");
	assert_int_equal(d->port, 5020);
	assert_int_equal(d->period_ms, 600000);

	assert_string_equal(cfg->logger.id, "");
	assert_int_equal(cfg->logger.send_mode, SEND_FIFO);
	assert_int_equal(cfg->logger.time_format, TIME_UNIX);
	assert_true(cfg->logger.array);
	assert_int_equal(cfg->logger.array_max_count, 10);
	assert_int_equal(cfg->logger.array_max_bytes, 2048);
	assert_false(cfg->logger.error_messages);
	snprintf(want, sizeof(want), "%s/data/store.db", dir);
	assert_string_equal(cfg->logger.store_path, want);
	assert_string_equal(cfg->logger.topic, "plant/[IMEI]/data");
	assert_int_equal(cfg->logger.inflight_window, 8);

	assert_string_equal(cfg->mqtt.broker, "mqtt://[::1]");
	assert_false(cfg->mqtt.tls);
	assert_string_equal(cfg->mqtt.host, "::1");
	assert_int_equal(cfg->mqtt.port, 1883);
	assert_string_equal(cfg->mqtt.username, "user");
	assert_string_equal(cfg->mqtt.password, "secret");
	assert_string_equal(cfg->mqtt.client_id, "gw-[IMEI]");
	assert_int_equal(cfg->mqtt.qos, 0);
	assert_int_equal(cfg->mqtt.keepalive_s, 3600);
	assert_true(cfg->mqtt.persistence);
	assert_int_equal(cfg->mqtt.at_topic_count, 2);
	assert_string_equal(cfg->mqtt.at_topics[0].topic, "[IMEI]/AT/+");
	assert_string_equal(cfg->mqtt.at_topics[0].response, "[IMEI]/ATR");
	assert_string_equal(cfg->mqtt.at_topics[1].topic, "all/#");
	assert_string_equal(cfg->mqtt.at_topics[1].response, "all-answers/ATR");

	config_free(cfg);
	config_diags_free(&diags);
	free(dir);
}

static void test_mqtt_disabled(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;

	(void)state;
	cfg = load_good("good/mqtt_disabled.yaml", &diags);
	assert_int_equal(diags.count, 0);
	assert_false(cfg->mqtt.enabled);
	assert_null(cfg->mqtt.broker);
	assert_null(cfg->mqtt.host);
	assert_int_equal(cfg->serial_port_count, 0);
	assert_int_equal(cfg->device_count, 1);
	assert_int_equal(cfg->devices[0].transport, TRANSPORT_TCP);
	assert_string_equal(cfg->devices[0].host, "192.168.0.10");
	assert_int_equal(cfg->devices[0].port, 502);
	assert_int_equal(cfg->devices[0].blocks[0].count, 10);
	config_free(cfg);
	config_diags_free(&diags);
}

/* logger.mode: http (the router's "web"), with MQTT off because the file has no mqtt
 * section: every key of the http section as loaded. */
static void test_http_section(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;

	(void)state;
	cfg = load_good("good/http.yaml", &diags);
	assert_int_equal(diags.count, 0);
	assert_int_equal(cfg->logger.mode, LOGGER_HTTP);
	assert_false(cfg->mqtt.enabled);
	assert_string_equal(cfg->http.url, "https://collector.example.com/in?site=7");
	assert_true(cfg->http.tls);
	assert_int_equal(cfg->http.method, HTTP_GET);
	assert_string_equal(cfg->http.query_parameter, "reading");
	assert_int_equal(cfg->http.header_count, 2);
	assert_string_equal(cfg->http.headers[0].name, "X-Gateway");
	assert_string_equal(cfg->http.headers[0].value, "gw-[IMEI]");
	assert_string_equal(cfg->http.headers[1].value, "");
	assert_string_equal(cfg->http.bearer_token, "t0ken");
	assert_null(cfg->http.username);
	assert_non_null(strstr(cfg->http.key_file, "certs/client.key"));
	assert_int_equal(cfg->http.timeout_ms, 2500);
	config_free(cfg);
	config_diags_free(&diags);
}

/* logger.mode: ftp over SFTP, with MQTT kept (the file has an mqtt section). */
static void test_ftp_section(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;

	(void)state;
	cfg = load_good("good/ftp.yaml", &diags);
	assert_int_equal(diags.count, 0);
	assert_int_equal(cfg->logger.mode, LOGGER_FTP);
	assert_true(cfg->mqtt.enabled);
	assert_int_equal(cfg->ftp.protocol, FTP_SFTP);
	/* Always a directory. */
	assert_string_equal(cfg->ftp.url, "sftp://files.example.com:2222/upload/");
	assert_string_equal(cfg->ftp.file_name, "[IMEI]_[ID]_%Y%m%d.jsonl");
	assert_int_equal(cfg->ftp.interval_ms, 86400000);
	assert_int_equal(cfg->ftp.max_readings, 50000);
	assert_int_equal(cfg->ftp.format, FTP_ARRAY);
	assert_int_equal(cfg->ftp.timeout_ms, 60000);
	assert_non_null(strstr(cfg->ftp.known_hosts, "certs/README"));
	config_free(cfg);
	config_diags_free(&diags);
}

static void test_warning_allow_all(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;
	char *dir = data_path("good");

	(void)state;
	cfg = load_good("good/warn_allow_all.yaml", &diags);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.errors, 0);
	assert_int_equal(diags.items[0].severity, CONFIG_WARNING);
	assert_diag(
		&diags, 0, dir,
		"warning: warn_allow_all.yaml:13: mqtt.allow_all_certificates: TLS certificate and host name verification are disabled; use only for tests");
	assert_true(cfg->mqtt.allow_all_certificates);
	assert_true(cfg->mqtt.tls);
	assert_int_equal(cfg->mqtt.port, 8883);
	config_free(cfg);
	config_diags_free(&diags);
	free(dir);
}

static void test_warning_tls_ignored(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;
	char *dir = data_path("good");

	(void)state;
	/* The ca_file does not exist, but it is not even checked: the broker is plain. */
	cfg = load_good("good/warn_tls_ignored.yaml", &diags);
	assert_int_equal(diags.count, 3);
	assert_int_equal(diags.errors, 0);
	assert_diag(&diags, 0, dir,
		    "warning: warn_tls_ignored.yaml:2: modbus.devices: no devices configured");
	assert_diag(
		&diags, 1, dir,
		"warning: warn_tls_ignored.yaml:4: mqtt.ca_file: ignored: the broker URL is not ssl://");
	assert_diag(
		&diags, 2, dir,
		"warning: warn_tls_ignored.yaml:5: mqtt.allow_all_certificates: ignored: the broker URL is not ssl://");
	assert_false(cfg->mqtt.tls);
	assert_int_equal(cfg->mqtt.port, 1884);
	assert_string_equal(cfg->mqtt.host, "192.168.1.2");
	assert_null(cfg->mqtt.ca_file);
	assert_false(cfg->mqtt.allow_all_certificates);
	assert_int_equal(cfg->device_count, 0);
	config_free(cfg);
	config_diags_free(&diags);
	free(dir);
}

/* ---------------------------------------------------------------- small inline cases */

#define TCP_DEVICE(period) \
	"modbus:\n" \
	"  devices:\n" \
	"    - id: d\n" \
	"      address: 10.0.0.1\n" \
	"      start: 0\n" \
	"      count: 1\n" \
	"      period: " period "\n" \
	"mqtt:\n" \
	"  enabled: false\n"

static void test_periods(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} good[] = {
		{"10", 600000},      {"0.5", 30000},    {"\"30s\"", 30000},   {"\"500ms\"", 500},
		{"\"1h\"", 3600000}, {"10min", 600000}, {"10m", 600000},      {"\"10\"", 600000},
		{"0.1", 6000},       {"100ms", 100},    {"10080", 604800000}, {"1.5h", 5400000},
		{"2 s", 2000},       {"30S", 30000},    {"168h", 604800000},
	};
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
		{"99ms",
		 "c.yaml:7: modbus.devices[0].period: '99ms' is out of range (allowed: 100ms .. 7 days)"},
		{"10081",
		 "c.yaml:7: modbus.devices[0].period: '10081' is out of range (allowed: 100ms .. 7 days)"},
		{"0",
		 "c.yaml:7: modbus.devices[0].period: '0' is out of range (allowed: 100ms .. 7 days)"},
		{"-1",
		 "c.yaml:7: modbus.devices[0].period: '-1' is not a period (allowed: minutes as a number such as 10 or 0.5, or a number with a unit: 500ms, 30s, 10m, 1h)"},
		{"10 minutes",
		 "c.yaml:7: modbus.devices[0].period: '10 minutes' is not a period (allowed: minutes as a number such as 10 or 0.5, or a number with a unit: 500ms, 30s, 10m, 1h)"},
		{"[10]",
		 "c.yaml:7: modbus.devices[0].period: expected a period such as 10, 30s or 500ms, got a list"},
	};
	char yaml[512];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct config_diags diags = {0};
		struct config *cfg = NULL;
		struct tmp t;

		snprintf(yaml, sizeof(yaml), TCP_DEVICE("%s"), good[i].text);
		if (tmp_load(&t, yaml, &cfg, &diags) != 0)
			fail_msg("period %s: %s", good[i].text,
				 diags.count ? diags.items[0].text : "?");
		assert_int_equal(cfg->devices[0].period_ms, good[i].ms);
		config_free(cfg);
		config_diags_free(&diags);
		tmp_cleanup(&t, NULL);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config_diags diags = {0};
		struct config *cfg = NULL;
		struct tmp t;

		snprintf(yaml, sizeof(yaml), TCP_DEVICE("%s"), bad[i].text);
		assert_int_equal(tmp_load(&t, yaml, &cfg, &diags), MB_ERR_CONFIG);
		assert_null(cfg);
		assert_int_equal(diags.count, 1);
		assert_diag(&diags, 0, t.dir, bad[i].msg);
		config_diags_free(&diags);
		tmp_cleanup(&t, NULL);
	}
}

static void test_commands_and_booleans(void **state)
{
	static const struct {
		const char *command;
		int function;
	} cmds[] = {
		{"3", 3}, {"0x03", 3}, {"\"0x04\"", 4}, {"03", 3}, {"0X01", 1}, {"'2'", 2},
	};
	static const struct {
		const char *text;
		bool value;
	} bools[] = {
		{"true", true}, {"false", false}, {"yes", true}, {"no", false},    {"on", true},
		{"off", false}, {"TRUE", true},   {"No", false}, {"\"on\"", true},
	};
	char yaml[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct config_diags diags = {0};
		struct config *cfg = NULL;
		struct tmp t;

		snprintf(yaml, sizeof(yaml),
			 "modbus:\n  devices:\n    - {id: d, address: h, start: 0, count: 1, command: %s}\n"
			 "mqtt: {enabled: false}\n",
			 cmds[i].command);
		assert_int_equal(tmp_load(&t, yaml, &cfg, &diags), 0);
		assert_int_equal(cfg->devices[0].function, cmds[i].function);
		config_free(cfg);
		config_diags_free(&diags);
		tmp_cleanup(&t, NULL);
	}
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		struct config_diags diags = {0};
		struct config *cfg = NULL;
		struct tmp t;

		snprintf(yaml, sizeof(yaml),
			 "modbus:\n  devices:\n    - {id: d, address: h, start: 0, count: 1, logger: %s}\n"
			 "mqtt: {enabled: false}\n",
			 bools[i].text);
		assert_int_equal(tmp_load(&t, yaml, &cfg, &diags), 0);
		assert_int_equal(cfg->devices[0].logger, bools[i].value);
		config_free(cfg);
		config_diags_free(&diags);
		tmp_cleanup(&t, NULL);
	}
}

static void test_relative_cert_paths(void **state)
{
	static const char yaml[] = "mqtt:\n"
				   "  broker: ssl://[2001:db8::1]:8884\n"
				   "  ca_file: ca.pem\n"
				   "  ca_path: .\n"
				   "  cert_file: missing.crt\n"
				   "  key_file: c.yaml\n";
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	struct tmp t;
	char want[256];

	(void)state;
	/* ca.pem does not exist yet: the error names the resolved path. The key file is
	 * readable but is no key. */
	assert_int_equal(tmp_load(&t, yaml, &cfg, &diags), MB_ERR_CONFIG);
	assert_int_equal(diags.errors, 3);
	assert_int_equal(diags.count, 4);
	assert_diag(&diags, 0, t.dir, "warning: c.yaml:1: modbus.devices: no devices configured");
	snprintf(want, sizeof(want),
		 "%s/c.yaml:3: mqtt.ca_file: cannot read '%s/ca.pem': No such file or directory",
		 t.dir, t.dir);
	assert_string_equal(diags.items[1].text, want);
	snprintf(want, sizeof(want),
		 "%s/c.yaml:5: mqtt.cert_file: cannot read '%s/missing.crt': No such file or directory",
		 t.dir, t.dir);
	assert_string_equal(diags.items[2].text, want);
	snprintf(want, sizeof(want),
		 "%s/c.yaml:6: mqtt.key_file: '%s/c.yaml' holds no PEM private key", t.dir, t.dir);
	assert_string_equal(diags.items[3].text, want);
	config_diags_free(&diags);
	tmp_cleanup(&t, NULL);

	/* With the files in place it loads; ca_path must be a directory, ca_file must not. */
	snprintf(t.dir, sizeof(t.dir), "/tmp/modbridge-test-XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	snprintf(t.path, sizeof(t.path), "%s/c.yaml", t.dir);
	tmp_write(&t, "c.yaml",
		  "mqtt:\n  broker: ssl://[2001:db8::1]:8884\n  ca_file: ca.pem\n  ca_path: .\n"
		  "  cert_file: client.pem\n  key_file: client.key\n");
	/* Real PEM files: the loader also checks what they hold. */
	copy_data(&t, "certs/ca.crt", "ca.pem");
	copy_data(&t, "certs/client.crt", "client.pem");
	copy_data(&t, "certs/client.key", "client.key");
	assert_int_equal(config_load(t.path, &cfg, &diags), 0);
	assert_int_equal(diags.count, 1); /* no devices */
	assert_string_equal(cfg->mqtt.host, "2001:db8::1");
	assert_int_equal(cfg->mqtt.port, 8884);
	assert_true(cfg->mqtt.tls);
	snprintf(want, sizeof(want), "%s/ca.pem", t.dir);
	assert_string_equal(cfg->mqtt.ca_file, want);
	snprintf(want, sizeof(want), "%s/.", t.dir);
	assert_string_equal(cfg->mqtt.ca_path, want);
	snprintf(want, sizeof(want), "%s/client.key", t.dir);
	assert_string_equal(cfg->mqtt.key_file, want);
	config_free(cfg);
	config_diags_free(&diags);

	cfg = NULL;
	tmp_write(&t, "c.yaml", "mqtt:\n  broker: ssl://h\n  ca_file: .\n  ca_path: ca.pem\n");
	assert_int_equal(config_load(t.path, &cfg, &diags), MB_ERR_CONFIG);
	assert_null(cfg);
	assert_int_equal(diags.errors, 2);
	assert_int_equal(diags.count, 3);
	snprintf(want, sizeof(want),
		 "%s/c.yaml:3: mqtt.ca_file: cannot read '%s/.': Is a directory", t.dir, t.dir);
	assert_string_equal(diags.items[1].text, want);
	snprintf(want, sizeof(want),
		 "%s/c.yaml:4: mqtt.ca_path: cannot read '%s/ca.pem': Not a directory", t.dir,
		 t.dir);
	assert_string_equal(diags.items[2].text, want);
	config_diags_free(&diags);
	tmp_cleanup_file(&t, "client.pem");
	tmp_cleanup_file(&t, "client.key");
	tmp_cleanup(&t, "ca.pem");
}

static void test_empty_file(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	struct tmp t;

	(void)state;
	assert_int_equal(tmp_load(&t, "# nothing here\n", &cfg, &diags), MB_ERR_CONFIG);
	assert_int_equal(diags.count, 2);
	assert_int_equal(diags.errors, 1);
	assert_diag(&diags, 0, t.dir, "warning: c.yaml:1: modbus.devices: no devices configured");
	assert_diag(
		&diags, 1, t.dir,
		"c.yaml:1: mqtt.broker: required when mqtt is enabled (a URL such as ssl://broker.example.com:8883)");
	config_diags_free(&diags);
	tmp_cleanup(&t, NULL);
}

static void test_unknown_top_level_key(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	struct tmp t;

	(void)state;
	assert_int_equal(tmp_load(&t,
				  "mqqt:\n  broker: tcp://h\nmodbus:\n  devices: []\n"
				  "mqtt: {enabled: off}\nlogger:\n  sendmode: lifo\n",
				  &cfg, &diags),
			 MB_ERR_CONFIG);
	assert_int_equal(diags.count, 3);
	assert_diag(
		&diags, 0, t.dir,
		"c.yaml:1: mqqt: unknown key 'mqqt' (allowed: gateway, serial, modbus, logger, mqtt, http, ftp, remote, modem, web, metrics); did you mean 'mqtt'?");
	assert_diag(&diags, 1, t.dir, "warning: c.yaml:4: modbus.devices: no devices configured");
	assert_diag(
		&diags, 2, t.dir,
		"c.yaml:7: logger.sendmode: unknown key 'sendmode' (allowed: id, send_mode, time_format, array, array_max_count, array_max_bytes, error_messages, store, mode, topic, use_script, script, inflight_window, max_messages, max_bytes, full_policy, memory_max_messages, memory_max_bytes); did you mean 'send_mode'?");
	config_diags_free(&diags);
	tmp_cleanup(&t, NULL);
}

/* ---------------------------------------------------------------- errors */

static void test_missing_file(void **state)
{
	struct config_diags diags = {0};
	struct config sentinel;
	struct config *cfg = &sentinel;
	char *path = data_path("bad/does-not-exist.yaml");
	char want[512];

	(void)state;
	assert_int_equal(config_load(path, &cfg, &diags), MB_ERR_IO);
	assert_ptr_equal(cfg, &sentinel);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.errors, 1);
	assert_int_equal(diags.items[0].severity, CONFIG_ERROR);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(diags.items[0].text, want);
	config_diags_free(&diags);
	free(path);
}

static void test_invalid_arguments(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;

	(void)state;
	assert_int_equal(config_load(NULL, &cfg, &diags), MB_ERR_INVAL);
	assert_int_equal(config_load("x.yaml", NULL, &diags), MB_ERR_INVAL);
	assert_int_equal(config_load("x.yaml", &cfg, NULL), MB_ERR_INVAL);
	assert_null(cfg);
	assert_int_equal(diags.count, 0);
}

static void test_diags_accumulate(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	char *qos = data_path("bad/qos.yaml");
	char *warn = data_path("good/warn_allow_all.yaml");

	(void)state;
	assert_int_equal(config_load(qos, &cfg, &diags), MB_ERR_CONFIG);
	assert_int_equal(diags.count, 1);
	assert_int_equal(config_load(warn, &cfg, &diags), 0);
	assert_non_null(cfg);
	assert_int_equal(diags.count, 2);
	assert_int_equal(diags.errors, 1);
	assert_int_equal(diags.items[0].severity, CONFIG_ERROR);
	assert_int_equal(diags.items[1].severity, CONFIG_WARNING);
	config_free(cfg);
	config_diags_free(&diags);
	assert_int_equal(diags.count, 0);
	assert_int_equal(diags.errors, 0);
	assert_null(diags.items);
	free(qos);
	free(warn);
}

/* Types, byte orders, the optimiser's keys, retries, back-off and line timing. */
static void test_modbus_depth(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;
	const struct device_config *d;

	(void)state;
	cfg = load_good("good/modbus_depth.yaml", &diags);
	assert_int_equal(diags.count, 0);
	assert_int_equal(cfg->serial_ports[0].silent_interval_ms, 20);
	assert_int_equal(cfg->serial_ports[0].turnaround_ms, 12);
	assert_int_equal(cfg->serial_ports[1].silent_interval_ms, -1);
	assert_int_equal(cfg->serial_ports[1].turnaround_ms, 5);

	d = config_find_device(cfg, "energy");
	assert_int_equal(d->function, 4);
	assert_int_equal(d->type, REG_TYPE_FLOAT32);
	assert_int_equal(d->order, REG_ORDER_CDAB);
	assert_int_equal(d->max_per_read, 60);
	assert_int_equal(d->retries, 3);
	assert_int_equal(d->backoff_max_ms, 300000);
	assert_true(d->optimize);

	d = config_find_device(cfg, "counter");
	assert_int_equal(d->type, REG_TYPE_UINT64);
	assert_int_equal(d->order, REG_ORDER_DCBA);
	assert_false(d->optimize);
	assert_int_equal(d->blocks[0].count, 300); /* longer than one request: split when read */

	d = config_find_device(cfg, "signed");
	assert_int_equal(d->type, REG_TYPE_INT16);
	assert_int_equal(d->retries, 0);
	assert_int_equal(d->max_outstanding, 4);

	d = config_find_device(cfg, "coils");
	assert_int_equal(d->blocks[0].count, 4000);
	assert_int_equal(d->max_per_read, 1500);
	assert_int_equal(d->max_outstanding, 4);

	config_free(cfg);
	config_diags_free(&diags);
}

/* Bad files every build must cover; each has its exact .expected file. */
static const char *const required_bad[] = {
	"unknown_key",    "syntax",       "baudrate",
	"parity",         "command",      "start_count",
	"unknown_serial", "duplicate_id", "broker_scheme",
	"ca_file",        "password",     "qos",
	"keepalive",      "many",         "modbus_depth",
	"scripts",        "script_use",   "max_outstanding",
};

static void test_bad_file(void **state)
{
	const char *name = *state;
	char rel[256], *path, *exp_path, *expected, *dir;
	struct config_diags diags = {0};
	struct config sentinel;
	struct config *cfg = &sentinel;
	size_t nlines = 0, nerrors = 0;
	char *save = NULL;

	snprintf(rel, sizeof(rel), "bad/%s", name);
	path = data_path(rel);
	exp_path = malloc(strlen(path) + 16);
	assert_non_null(exp_path);
	strcpy(exp_path, path);
	strcpy(exp_path + strlen(exp_path) - strlen(".yaml"), ".expected");
	expected = read_all(exp_path);
	dir = data_path("bad");

	assert_int_equal(config_load(path, &cfg, &diags), MB_ERR_CONFIG);
	assert_ptr_equal(cfg, &sentinel);

	for (char *line = strtok_r(expected, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (nlines >= diags.count)
			fail_msg("%s: missing diagnostic: %s", name, line);
		assert_diag(&diags, nlines, dir, line);
		if (strncmp(line, "warning: ", 9))
			nerrors++;
		nlines++;
	}
	if (diags.count > nlines)
		fail_msg("%s: unexpected diagnostic: %s", name, diags.items[nlines].text);
	assert_true(nerrors >= 1);
	assert_int_equal(diags.errors, nerrors);

	config_diags_free(&diags);
	free(expected);
	free(exp_path);
	free(path);
	free(dir);
}

static void test_required_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(required_bad) / sizeof(required_bad[0]); i++) {
		char rel[128], *p;

		snprintf(rel, sizeof(rel), "bad/%s.expected", required_bad[i]);
		p = data_path(rel);
		if (access(p, R_OK) != 0)
			fail_msg("missing %s", p);
		free(p);
	}
}

/* "many.yaml" must really report several errors, in file order. */
static void test_many_errors_in_order(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	char *path = data_path("bad/many.yaml");
	int last = 0;

	(void)state;
	assert_int_equal(config_load(path, &cfg, &diags), MB_ERR_CONFIG);
	assert_true(diags.errors >= 8);
	for (size_t i = 0; i < diags.count; i++) {
		const char *p = diags.items[i].text + strlen(path) + 1;
		int line = atoi(p);

		assert_true(line >= last);
		last = line;
	}
	config_diags_free(&diags);
	free(path);
}

/* ---------------------------------------------------------------- remote, modem */

static void test_remote_and_modem(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;

	(void)state;
	cfg = load_good("good/remote.yaml", &diags);
	assert_int_equal(diags.count, 0);
	assert_int_equal(cfg->mqtt.at_topic_count, 3);
	assert_string_equal(cfg->mqtt.at_topics[1].topic, "group/+/AT");
	assert_string_equal(cfg->mqtt.at_topics[2].response, "all/ATR");
	assert_string_equal(cfg->mqtt.status_topic, "gw/[IMEI]/state");
	assert_true(cfg->remote.allow_writes);
	assert_true(cfg->remote.allow_setparam);
	assert_false(cfg->remote.allow_reboot);
	assert_true(cfg->remote.allow_modem_passthrough);
	assert_string_equal(cfg->modem.device, "/dev/ttyUSB2");
	assert_int_equal(cfg->modem.baudrate, 9600);
	assert_int_equal(cfg->modem.timeout_ms, 3000);
	config_free(cfg);
	config_diags_free(&diags);

	/* Defaults: every permission off, no modem, the status topic on. */
	cfg = load_good("good/minimal.yaml", &diags);
	assert_false(cfg->remote.allow_writes);
	assert_false(cfg->remote.allow_setparam);
	assert_false(cfg->remote.allow_reboot);
	assert_false(cfg->remote.allow_modem_passthrough);
	assert_null(cfg->modem.device);
	assert_int_equal(cfg->modem.baudrate, 115200);
	assert_int_equal(cfg->modem.timeout_ms, 5000);
	assert_string_equal(cfg->mqtt.status_topic, "[IMEI]/status");
	assert_int_equal(config_set_imei(cfg, "490154203237518"), 0);
	assert_string_equal(cfg->imei, "490154203237518");
	assert_false(cfg->imei_configured);
	assert_int_equal(config_set_imei(cfg, ""), MB_ERR_INVAL);
	config_free(cfg);
	config_diags_free(&diags);
}

/* gateway.user, allow_root and example: values, and what is said where. */
static void test_gateway_user(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	struct tmp t;

	(void)state;
	assert_int_equal(tmp_load(&t,
				  "gateway:\n  imei: x\n  user: nobody\n  allow_root: yes\n"
				  "mqtt: {enabled: off}\n",
				  &cfg, &diags),
			 0);
	assert_string_equal(cfg->user, "nobody");
	assert_int_equal(cfg->user_line, 3);
	assert_true(cfg->allow_root);
	assert_true(cfg->allow_root_set);
	config_free(cfg);
	config_diags_free(&diags);
	tmp_cleanup(&t, NULL);

	/* Defaults: no user named, root not allowed by the file (the environment may). */
	cfg = NULL;
	assert_int_equal(tmp_load(&t, "mqtt: {enabled: off}\n", &cfg, &diags), 0);
	assert_null(cfg->user);
	assert_false(cfg->allow_root);
	assert_false(cfg->allow_root_set);
	config_free(cfg);
	config_diags_free(&diags);
	tmp_cleanup(&t, NULL);

	/* An unknown user is a warning (it matters only to `run` as root); an empty one, a
	 * non-boolean allow_root and the package's example marker are errors. */
	cfg = NULL;
	assert_int_equal(tmp_load(&t, "gateway:\n  user: no-such-user-here\nmqtt: {enabled: off}\n",
				  &cfg, &diags),
			 0);
	assert_int_equal(diags.count, 2);
	assert_diag(
		&diags, 1, t.dir,
		"warning: c.yaml:2: gateway.user: there is no user 'no-such-user-here' on this system: `modbridge run` started as root would refuse to start");
	config_free(cfg);
	config_diags_free(&diags);
	tmp_cleanup(&t, NULL);
	cfg = NULL;
	assert_int_equal(tmp_load(&t,
				  "gateway:\n  user: \"\"\n  allow_root: 1\n  example: true\n"
				  "mqtt: {enabled: off}\n",
				  &cfg, &diags),
			 MB_ERR_CONFIG);
	assert_null(cfg);
	assert_int_equal(diags.errors, 3);
	assert_diag(&diags, 1, t.dir,
		    "c.yaml:2: gateway.user: must not be empty (remove the key for the default, "
		    "'modbridge')");
	assert_diag(&diags, 2, t.dir,
		    "c.yaml:3: gateway.allow_root: expected true or false, got '1' (allowed: "
		    "true/false, yes/no, on/off)");
	assert_diag(
		&diags, 3, t.dir,
		"c.yaml:4: gateway.example: this is the example configuration: describe this gateway's serial ports, devices and broker in the file, then delete this line (man 5 modbridge.yaml)");
	config_diags_free(&diags);
	tmp_cleanup(&t, NULL);
}

/* Topic matching as the broker does it decides which answers would loop back. */
static void test_at_topic_loops(void **state)
{
	static const struct {
		const char *topic, *response;
		bool loops;
	} cases[] = {
		{"[IMEI]/AT", "[IMEI]/ATR", false},
		{"[IMEI]/AT", "[IMEI]/AT", true},
		{"x/#", "x", true},
		{"x/#", "x/y/z", true},
		{"#", "anything/at/all", true},
		{"x/+", "x/y", true},
		{"x/+", "x/y/z", false},
		{"x/+/z", "x//z", true},
		{"+/AT", "AT", false},
		{"a/b", "a/bc", false},
		{"a/bc", "a/b", false},
		{"a/+/#", "a/b", true},
		/* A broker never hands '$' topics to a filter that starts with a wildcard. */
		{"+/ATR", "$gw/ATR", false},
		{"$gw/+", "$gw/ATR", true},
		{"$gw/#", "$gw/ATR", true},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_diags diags = {0};
		struct config *cfg = NULL;
		char yaml[512];
		struct tmp t;

		snprintf(yaml, sizeof(yaml),
			 "mqtt:\n  broker: tcp://h\n  status_topic: \"\"\n  at_topics:\n"
			 "    - { topic: \"%s\", response: \"%s\" }\n",
			 cases[i].topic, cases[i].response);
		int rc = tmp_load(&t, yaml, &cfg, &diags);
		if (cases[i].loops != (rc == MB_ERR_CONFIG))
			fail_msg("topic %s response %s: expected %s", cases[i].topic,
				 cases[i].response, cases[i].loops ? "an error" : "no error");
		config_free(cfg);
		config_diags_free(&diags);
		tmp_cleanup(&t, NULL);
	}
}

/* ---------------------------------------------------------------- helpers */

static void test_find_device(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;

	(void)state;
	cfg = load_good("good/seed.yaml", &diags);
	assert_ptr_equal(config_find_device(cfg, "1"), &cfg->devices[0]);
	assert_ptr_equal(config_find_device(cfg, "2"), &cfg->devices[1]);
	assert_null(config_find_device(cfg, "3"));
	assert_null(config_find_device(cfg, ""));
	assert_null(config_find_device(cfg, NULL));
	assert_null(config_find_device(NULL, "1"));
	config_free(cfg);
	config_diags_free(&diags);
}

static void test_subst_imei(void **state)
{
	static const struct {
		const char *text, *imei, *want;
	} cases[] = {
		{"[IMEI]/logger", "357299070082380", "357299070082380/logger"},
		{"[IMEI]", "x", "x"},
		{"a/[IMEI]/b/[IMEI]", "12", "a/12/b/12"},
		{"no tag", "12", "no tag"},
		{"", "12", ""},
		{"[IMEI][IMEI]", "", ""},
		{"[IMEI", "12", "[IMEI"},
		{"[imei]", "12", "[imei]"},
		{"[[IMEI]]", "7", "[7]"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = config_subst_imei(cases[i].text, cases[i].imei);

		assert_non_null(s);
		assert_string_equal(s, cases[i].want);
		free(s);
	}
	assert_null(config_subst_imei(NULL, "1"));
}

/* Scripts: read at load time, checked, their text kept; use_script false turns one off. */
static void test_scripts(void **state)
{
	struct config_diags diags = {0};
	struct config *cfg;

	(void)state;
	cfg = load_good("good/scripts.yaml", &diags);
	assert_int_equal(diags.count, 0);
	assert_string_equal(cfg->logger.script, "scripts/scale.lua");
	assert_non_null(strstr(cfg->logger.script_path, "good/scripts/scale.lua"));
	assert_non_null(cfg->logger.script_source);
	assert_non_null(strstr(cfg->logger.script_source, "function transform(msg)"));
	assert_int_equal(cfg->logger.script_len, strlen(cfg->logger.script_source));
	assert_int_equal(cfg->mqtt.script_topic_count, 1);
	assert_string_equal(cfg->mqtt.script_topics[0].topic, "[IMEI]/read");
	assert_string_equal(cfg->mqtt.script_topics[0].script, "scripts/answer.lua");
	assert_non_null(strstr(cfg->mqtt.script_topics[0].source, "function on_message"));
	config_free(cfg);
	config_diags_free(&diags);

	struct tmp t;
	snprintf(t.dir, sizeof(t.dir), "/tmp/modbridge-test-XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	snprintf(t.path, sizeof(t.path), "%s/c.yaml", t.dir);
	tmp_write(&t, "s.lua", "function transform(msg) return msg end\n");
	tmp_write(&t, "c.yaml",
		  "modbus:\n  devices:\n    - { id: a, address: 1.2.3.4, start: 0, count: 1 }\n"
		  "logger:\n  use_script: false\n  script: s.lua\n"
		  "mqtt:\n  enabled: false\n");
	assert_int_equal(config_load(t.path, &cfg, &diags), 0);
	assert_null(cfg->logger.script);
	assert_null(cfg->logger.script_source);
	config_free(cfg);
	config_diags_free(&diags);
	tmp_cleanup(&t, "s.lua");
}

static void test_free_null(void **state)
{
	struct config_diags empty = {0};

	(void)state;
	config_free(NULL);
	config_diags_free(NULL);
	config_diags_free(&empty);
	assert_int_equal(empty.count, 0);
}

/* ---------------------------------------------------------------- main */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_router_forms),
		cmocka_unit_test(test_mqtt_disabled),
		cmocka_unit_test(test_http_section),
		cmocka_unit_test(test_ftp_section),
		cmocka_unit_test(test_warning_allow_all),
		cmocka_unit_test(test_warning_tls_ignored),
		cmocka_unit_test(test_periods),
		cmocka_unit_test(test_commands_and_booleans),
		cmocka_unit_test(test_relative_cert_paths),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_unknown_top_level_key),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_diags_accumulate),
		cmocka_unit_test(test_required_bad_files),
		cmocka_unit_test(test_many_errors_in_order),
		cmocka_unit_test(test_remote_and_modem),
		cmocka_unit_test(test_at_topic_loops),
		cmocka_unit_test(test_gateway_user),
		cmocka_unit_test(test_find_device),
		cmocka_unit_test(test_modbus_depth),
		cmocka_unit_test(test_subst_imei),
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_free_null),
	};
	struct CMUnitTest bad[MAX_BAD_FILES];
	char *names[MAX_BAD_FILES];
	size_t nbad = 0;
	const char *root = getenv("MODBRIDGE_TESTDATA");
	char dirpath[4096];
	struct dirent *e;
	DIR *dir;
	int failed;

	if (!root) {
		fprintf(stderr, "MODBRIDGE_TESTDATA is not set\n");
		return 1;
	}
	snprintf(dirpath, sizeof(dirpath), "%s/config/bad", root);
	dir = opendir(dirpath);
	if (!dir) {
		fprintf(stderr, "cannot open %s: %s\n", dirpath, strerror(errno));
		return 1;
	}
	while ((e = readdir(dir)) && nbad < MAX_BAD_FILES) {
		size_t len = strlen(e->d_name);

		if (len > 5 && !strcmp(e->d_name + len - 5, ".yaml"))
			names[nbad++] = strdup(e->d_name);
	}
	closedir(dir);
	qsort(names, nbad, sizeof(names[0]), by_name);
	for (size_t i = 0; i < nbad; i++)
		bad[i] = (struct CMUnitTest){names[i], test_bad_file, NULL, NULL, names[i]};

	failed = cmocka_run_group_tests_name("config", tests, NULL, NULL);
	if (nbad < 12) {
		fprintf(stderr, "only %zu bad files (at least 12 expected)\n", nbad);
		failed++;
	}
	failed += _cmocka_run_group_tests("config bad files", bad, nbad, NULL, NULL);
	for (size_t i = 0; i < nbad; i++)
		free(names[i]);
	return failed;
}
