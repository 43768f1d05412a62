/*
 * main.c - the modbridge command line: run, check, read, queue, at, passwd.
 *
 * Each subcommand loads the configuration the same way, so `check` reports exactly what
 * `run` would refuse. Exit codes: 0 success, 1 the command's check failed (a bad config
 * for `check`, a failed read for `read`, a damaged store for `queue`), 2 usage or start-up
 * errors (for `queue`: no store, or one it cannot read). Only `run` locks the store
 * (lockfile.h), creates it or moves a damaged one aside; `queue` only looks.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "busplan.h"
#include "certinfo.h"
#include "command.h"
#include "config.h"
#include "daemon.h"
#include "error.h"
#include "log.h"
#include "message.h"
#include "modem.h"
#include "passwd.h"
#include "poller.h"
#include "store.h"
#include "timeutil.h"
#include "uplink_stats.h"

#define DEFAULT_CONFIG "/etc/modbridge/modbridge.yaml"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: modbridge COMMAND [OPTIONS]\n"
		"\n"
		"Polls Modbus RTU/TCP devices on a schedule, keeps every reading in a crash-safe\n"
		"store, and forwards them as JSON to an MQTT broker, an HTTP(S) server or an\n"
		"FTP/FTPS/SFTP server (logger.mode; TLS verified by default).\n"
		"\n"
		"Commands:\n"
		"  run    -c FILE          run the gateway in the foreground (SIGTERM/SIGINT stop it,\n"
		"                          SIGHUP reloads the configuration)\n"
		"  check  -c FILE          validate the configuration (and what the TLS files hold);\n"
		"                          print every error as file:line: key: message, warn about\n"
		"                          serial devices that are not there, certificate\n"
		"                          fingerprints, and each bus's requests per poll and\n"
		"                          estimated line time\n"
		"  read   -c FILE DEVICE   poll one device now and print the JSON it would send\n"
		"                          (nothing is stored or sent; the router's Test button)\n"
		"  queue  -c FILE          show the store's backlog: count, oldest, newest, sent,\n"
		"                          dropped, and the uplink: send mode, last success, last\n"
		"                          error, counts; it only looks (safe beside the daemon): a\n"
		"                          missing store is not created (exit 2), a damaged one is\n"
		"                          reported and left as it is (exit 1)\n"
		"  at     -c FILE 'AT...'  run one remote command here, as if it came over MQTT, and\n"
		"                          print the reply (same permissions; the buses and the modem\n"
		"                          are opened directly, so use MQTT while the daemon runs)\n"
		"  passwd                  read a password on standard input (not echoed on a\n"
		"                          terminal) and print its hash for web.users[].password_hash\n"
		"                          (yescrypt); the password itself is never stored\n"
		"  help                    show this help\n"
		"  version                 show the version\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE       configuration file (default " DEFAULT_CONFIG ")\n"
		"  -v, --verbose           log debug messages (each reading's JSON, library details)\n"
		"  -q, --quiet             log warnings and errors only\n"
		"  -h, --help              show this help\n"
		"\n"
		"Exit status: 0 success; 1 check found errors / read failed / the command's reply is\n"
		"ERROR / queue found the store damaged; 2 usage or start-up error (run: the store\n"
		"is in use by another modbridge, or cannot be opened; queue: no store, or unreadable).\n"
		"Documentation: docs/configuration.md, docs/json-format.md, docs/modbus.md,\n"
		"               docs/logger.md, docs/operations.md, docs/remote-commands.md,\n"
		"               docs/web-ui.md (the local web UI: web.enabled, web.listen)\n");
}

/* Loads the config and prints its diagnostics; returns NULL when it has errors. */
static struct config *load_config(const char *path, bool quiet_warnings)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	int rc = config_load(path, &cfg, &diags);
	for (size_t i = 0; i < diags.count; i++) {
		if (diags.items[i].severity == CONFIG_ERROR)
			fprintf(stderr, "%s\n", diags.items[i].text);
		else if (!quiet_warnings)
			fprintf(stderr, "%s (warning)\n", diags.items[i].text);
	}
	if (rc != 0 && diags.errors)
		fprintf(stderr, "%s: %zu error(s)\n", path, diags.errors);
	config_diags_free(&diags);
	return rc == 0 ? cfg : NULL;
}

static void print_cert(const char *key, const char *path, int *problems)
{
	char info[512];
	if (!path)
		return;
	if (certinfo_describe(path, info, sizeof(info)) == 0) {
		printf("  %s %s: %s\n", key, path, info);
	} else {
		fprintf(stderr, "%s: %s\n", key, info);
		(*problems)++;
	}
}

/* What `check` says of the send mode (logger.mode) and its section. */
static void check_send_mode(const struct config *cfg, int *problems)
{
	if (cfg->logger.mode == LOGGER_HTTP) {
		const struct http_config *h = &cfg->http;
		printf("  send mode: http, %s %s, %s%s%s\n",
		       h->method == HTTP_GET   ? "GET"
		       : h->method == HTTP_PUT ? "PUT"
					       : "POST",
		       h->url,
		       !h->tls                     ? "no TLS"
		       : h->allow_all_certificates ? "TLS WITHOUT verification"
						   : "TLS with verification",
		       h->username ? ", basic auth" : "", h->bearer_token ? ", bearer token" : "");
		if (h->tls) {
			print_cert("http.ca_file", h->ca_file, problems);
			print_cert("http.cert_file", h->cert_file, problems);
			if (!h->ca_file)
				printf("  http: the server is verified against the system CA store\n");
		}
	} else if (cfg->logger.mode == LOGGER_FTP) {
		const struct ftp_config *f = &cfg->ftp;
		printf("  send mode: ftp, %s, %s, files cut every %lld s or at %d readings\n",
		       f->url, f->format == FTP_ARRAY ? "JSON array" : "JSON lines",
		       (long long)(f->interval_ms / 1000), f->max_readings);
		if (f->protocol == FTP_TLS) {
			print_cert("ftp.ca_file", f->ca_file, problems);
			print_cert("ftp.cert_file", f->cert_file, problems);
			if (f->allow_all_certificates)
				printf("  ftp: TLS WITHOUT verification\n");
			else if (!f->ca_file)
				printf("  ftp: the server is verified against the system CA store\n");
		} else if (f->protocol == FTP_SFTP) {
			if (f->allow_all_certificates)
				printf("  ftp: the server's host key is NOT checked\n");
			else
				printf("  ftp: the server's host key is checked against %s\n",
				       f->known_hosts);
		}
	} else {
		printf("  send mode: mqtt\n");
	}
}

/*
 * Serial devices that are not there now. Not an error: a USB adapter may be plugged in
 * later, and the daemon keeps trying to open the port; but `check` must not look clean.
 */
static int check_serial_devices(const struct config *cfg)
{
	int warnings = 0;
	for (size_t i = 0; i < cfg->serial_port_count; i++) {
		const struct serial_port_config *p = &cfg->serial_ports[i];
		struct stat st;
		if (!p->device || stat(p->device, &st) == 0)
			continue;
		int err = errno;
		fprintf(stderr,
			"%s:%d: %s.device: '%s': %s; the daemon keeps trying to open it (a USB "
			"adapter plugged in later is found) (warning)\n",
			cfg->path, p->device_line, p->key, p->device, strerror(err));
		warnings++;
	}
	return warnings;
}

static int cmd_check(const char *path)
{
	struct config *cfg = load_config(path, false);
	if (!cfg)
		return 1;
	int problems = 0;
	size_t serial_devices = 0;
	for (size_t i = 0; i < cfg->device_count; i++)
		serial_devices += cfg->devices[i].transport == TRANSPORT_RTU;
	printf("%s:\n", path);
	printf("  identity (IMEI): %s%s\n", cfg->imei, cfg->imei_configured ? "" : " (host name)");
	printf("  devices: %zu (%zu RTU, %zu TCP); serial ports: %zu\n", cfg->device_count,
	       serial_devices, cfg->device_count - serial_devices, cfg->serial_port_count);
	if (cfg->mqtt.enabled) {
		printf("  mqtt: %s, QoS %d, %s%s\n", cfg->mqtt.broker, cfg->mqtt.qos,
		       cfg->mqtt.tls
			       ? (cfg->mqtt.allow_all_certificates ? "TLS WITHOUT verification"
								   : "TLS with verification")
			       : "no TLS",
		       cfg->logger.mode == LOGGER_MQTT ? ""
						       : " (AT commands and status topic only)");
		if (cfg->mqtt.tls) {
			print_cert("mqtt.ca_file", cfg->mqtt.ca_file, &problems);
			/* config_load checked what the files hold (and the key pair), with lines. */
			print_cert("mqtt.cert_file", cfg->mqtt.cert_file, &problems);
			if (!cfg->mqtt.ca_file && !cfg->mqtt.ca_path)
				printf("  mqtt: the broker is verified against the system CA store\n");
		}
	}
	check_send_mode(cfg, &problems);
	/* Requests per poll and line time per bus (docs/modbus.md); warnings do not fail. */
	if (busplan_report(cfg, stdout, stderr) < 0)
		fprintf(stderr, "%s: out of memory planning the buses\n", path);
	if (cfg->mqtt.at_topic_count) {
		const struct remote_config *r = &cfg->remote;
		printf("  remote commands: %zu AT topic(s); allowed beyond reading:%s%s%s%s%s\n",
		       cfg->mqtt.at_topic_count, r->allow_writes ? " writes" : "",
		       r->allow_setparam ? " setparam" : "", r->allow_reboot ? " reboot" : "",
		       r->allow_modem_passthrough ? " modem-passthrough" : "",
		       r->allow_writes || r->allow_setparam || r->allow_reboot ||
				       r->allow_modem_passthrough
			       ? ""
			       : " nothing");
	}
	if (cfg->web.enabled)
		printf("  web UI: %s://%s%s%s:%d/, %zu user(s), certificates in %s\n",
		       cfg->web.tls_cert_file ? "https" : "http",
		       strchr(cfg->web.host, ':') ? "[" : "", cfg->web.host,
		       strchr(cfg->web.host, ':') ? "]" : "", cfg->web.port, cfg->web.user_count,
		       cfg->web.cert_dir);
	if (cfg->modem.device)
		printf("  modem: %s%s\n", cfg->modem.device,
		       cfg->imei_configured ? "" : " (the identity is read from it at start-up)");
	int absent = check_serial_devices(cfg);
	if (problems)
		fprintf(stderr, "%s: %d certificate problem(s)\n", path, problems);
	else if (absent)
		printf("%s: OK, but %d serial device(s) are not there now (see the warnings)\n",
		       path, absent);
	else
		printf("%s: OK\n", path);
	config_free(cfg);
	return problems ? 1 : 0;
}

static int cmd_read(const char *path, const char *device_id)
{
	struct config *cfg = load_config(path, true);
	if (!cfg)
		return 2;
	const struct device_config *dev = config_find_device(cfg, device_id);
	if (!dev) {
		fprintf(stderr, "%s: no device with id '%s' (devices:", path, device_id);
		for (size_t i = 0; i < cfg->device_count; i++)
			fprintf(stderr, " %s", cfg->devices[i].id);
		fprintf(stderr, ")\n");
		config_free(cfg);
		return 2;
	}
	struct reading r;
	int rc = poll_device_now(dev, &r);
	if (rc) {
		fprintf(stderr, "read failed: %s\n", mb_strerror(rc));
		config_free(cfg);
		return 2;
	}
	struct message_context ctx = {cfg->imei, cfg->logger.id, cfg->logger.time_format};
	char *json = message_encode(&r, &ctx);
	int status = r.error[0] ? 1 : 0;
	if (json)
		printf("%s\n", json);
	if (r.error[0])
		fprintf(stderr, "device %s: %s\n", dev->id, r.error);
	free(json);
	reading_clear(&r);
	config_free(cfg);
	return json ? status : 2;
}

static void print_time(const char *label, int64_t ms)
{
	char text[40] = "-";
	if (ms)
		time_format_iso8601(ms, text, sizeof(text));
	printf("%-8s %s\n", label, text);
}

static void print_line(void *ctx, const char *text)
{
	(void)ctx;
	printf("uplink   %s\n", text);
}

/* What the daemon last wrote of its uplink (uplink_stats.h). */
static void print_uplink_status(const struct config *cfg)
{
	struct uplink_status us;
	char *path = uplink_status_path(cfg->logger.store_path);
	int rc = path ? uplink_status_read(path, &us) : MB_ERR_NOMEM;
	if (rc == 0) {
		uplink_status_lines(&us, print_line, NULL);
	} else {
		static const char *const names[] = {"mqtt", "http", "ftp"};
		printf("uplink   mode: %s (no figures yet: the daemon writes %s once it runs)\n",
		       names[cfg->logger.mode], path ? path : "?");
	}
	free(path);
}

/* `modbridge queue`: looks only (store_inspect); `run` alone creates or moves the store. */
static int cmd_queue(const char *path)
{
	struct config *cfg = load_config(path, true);
	if (!cfg)
		return 2;
	struct store_stats st;
	char why[1024];
	int rc = store_inspect(cfg->logger.store_path, &st, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "modbridge queue: %s\n", why);
		if (rc == MB_ERR_CORRUPT)
			fprintf(stderr,
				"modbridge queue: the file was left as it is; `modbridge run` moves a "
				"damaged store aside to %s.corrupt-<UTC time> (kept, never deleted) "
				"and starts a fresh one\n",
				cfg->logger.store_path);
		else if (rc == MB_ERR_NOTFOUND)
			fprintf(stderr,
				"modbridge queue: nothing was created; `modbridge run` creates the "
				"store when it starts (is logger.store in %s right?)\n",
				path);
		config_free(cfg);
		return rc == MB_ERR_CORRUPT ? 1 : 2;
	}
	printf("store    %s\n", cfg->logger.store_path);
	printf("backlog  %" PRId64 "\n", st.count);
	printf("bytes    %" PRId64 " (JSON)\n", st.payload_bytes);
	printf("limits   %" PRId64 " readings, %" PRId64 " bytes (0 = none), %s when full\n",
	       cfg->logger.max_messages, cfg->logger.max_bytes,
	       cfg->logger.full_policy == STORE_DROP_NEWEST ? "drop newest" : "drop oldest");
	print_time("oldest", st.oldest_ts_ms);
	print_time("newest", st.newest_ts_ms);
	printf("sent     %" PRId64 "\n", st.sent);
	printf("dropped  %" PRId64 "\n", st.dropped);
	printf("size     %" PRId64 " bytes\n", st.size_bytes);
	print_uplink_status(cfg);
	config_free(cfg);
	return 0;
}

/* `modbridge at`: the remote command path, without MQTT and without a daemon. */
static int cmd_at(const char *path, const char *text)
{
	struct config *cfg = load_config(path, true);
	struct modem *modem = NULL;
	if (!cfg)
		return 2;
	if (cfg->modem.device) {
		if (modem_new(&cfg->modem, &modem) != 0) {
			config_free(cfg);
			return 2;
		}
		if (!cfg->imei_configured) {
			char imei[24], why[256];
			if (modem_read_imei(modem, imei, sizeof(imei), why, sizeof(why)) == 0)
				config_set_imei(cfg, imei);
			else
				log_debug("identity: %s", why);
		}
	}
	struct command_env env = {.cfg = cfg, .modem = modem, .daemon = false};
	struct command_reply reply;
	char shown[256];
	size_t len = 0;
	command_execute(&env, text, strlen(text), &reply);
	command_audit_text(text, strlen(text), shown, sizeof(shown));
	if (reply.ok && !reply.nomem)
		log_info("local: '%s' -> OK", shown);
	else
		log_info("local: '%s' -> ERROR: %s", shown,
			 reply.nomem ? "out of memory" : reply.error);
	char *out = command_reply_text(&reply, "\n", &len);
	int status = reply.ok && !reply.nomem ? 0 : 1;
	if (out)
		fwrite(out, 1, len, stdout);
	else
		status = 2;
	free(out);
	command_reply_clear(&reply);
	modem_free(modem);
	config_free(cfg);
	return status;
}

/* `modbridge passwd`: one line from stdin (echo off on a terminal) -> its hash on stdout. */
static int cmd_passwd(void)
{
	char line[PASSWD_MAX_LEN + 2], hash[PASSWD_HASH_MAX];
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;

	if (tty) {
		fprintf(stderr, "Password: ");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char *got = fgets(line, sizeof(line), stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (!got) {
		fprintf(stderr, "modbridge passwd: no password on standard input\n");
		return 2;
	}
	size_t n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n > PASSWD_MAX_LEN) {
		explicit_bzero(line, sizeof(line));
		fprintf(stderr, "modbridge passwd: longer than %d bytes\n", PASSWD_MAX_LEN);
		return 2;
	}
	int rc = passwd_hash(line, hash, sizeof(hash));
	explicit_bzero(line, sizeof(line));
	if (rc) {
		fprintf(stderr, "modbridge passwd: %s\n",
			rc == MB_ERR_INVAL ? "an empty password cannot be used" : mb_strerror(rc));
		return 2;
	}
	printf("%s\n", hash);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'}, {"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	const char *config_path = DEFAULT_CONFIG;
	int opt;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *command = argv[1];
	message_global_init();
	if (!strcmp(command, "help") || !strcmp(command, "--help") || !strcmp(command, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(command, "version") || !strcmp(command, "--version")) {
		printf("modbridge %s\n", MODBRIDGE_VERSION);
		return 0;
	}
	optind = 2;
	while ((opt = getopt_long(argc, argv, "c:vqh", options, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'q': log_set_level(LOG_LVL_WARN); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("modbridge %s\n", MODBRIDGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}

	if (!strcmp(command, "passwd")) {
		return optind == argc ? cmd_passwd() : (usage(stderr), 2);
	} else if (!strcmp(command, "check")) {
		return optind == argc ? cmd_check(config_path) : (usage(stderr), 2);
	} else if (!strcmp(command, "read")) {
		if (optind != argc - 1) {
			fprintf(stderr, "modbridge read: name one DEVICE (its id)\n");
			return 2;
		}
		return cmd_read(config_path, argv[optind]);
	} else if (!strcmp(command, "at")) {
		if (optind != argc - 1) {
			fprintf(stderr,
				"modbridge at: give one command, quoted, such as 'AT+CSQ'\n");
			return 2;
		}
		return cmd_at(config_path, argv[optind]);
	} else if (!strcmp(command, "queue")) {
		return optind == argc ? cmd_queue(config_path) : (usage(stderr), 2);
	} else if (!strcmp(command, "run")) {
		if (optind != argc) {
			usage(stderr);
			return 2;
		}
		struct config *cfg = load_config(config_path, false);
		if (!cfg)
			return 2;
		int rc = daemon_run(cfg);
		config_free(cfg);
		return rc == 0 ? 0 : 2;
	}
	fprintf(stderr, "modbridge: unknown command '%s'\n\n", command);
	usage(stderr);
	return 2;
}
