/*
 * test_command.c - unit tests of command.c: parsing every command and every kind of bad
 * input, the audit text (secrets hidden), and executing the commands that need no bus or
 * modem against a configuration in a temporary directory (permissions, GETPARAM,
 * SETPARAM with validation and the old file kept, GETCONFIG redaction, status).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "store.h"
#include "config.h"
#include "error.h"

static struct command parse_ok(const char *text)
{
	struct command c;
	char why[512] = "";

	if (command_parse(text, strlen(text), &c, why, sizeof(why)) != 0)
		fail_msg("parse '%s': %s", text, why);
	return c;
}

static void parse_bad(const char *text, size_t len, const char *want)
{
	struct command c;
	char why[512] = "";

	assert_int_equal(command_parse(text, len, &c, why, sizeof(why)), MB_ERR_INVAL);
	if (!strstr(why, want))
		fail_msg("parse '%.40s': reason '%s' lacks '%s'", text, why, want);
}

#define BAD(text, want) parse_bad(text, strlen(text), want)

static void test_parse_standard(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("AT").kind, CMD_AT);
	assert_int_equal(parse_ok("at\r\n").kind, CMD_AT);
	assert_int_equal(parse_ok("  ATI ").kind, CMD_ATI);
	assert_int_equal(parse_ok("AT+CGSN").kind, CMD_CGSN);
	assert_int_equal(parse_ok("at+csq").kind, CMD_CSQ);
	assert_string_equal(parse_ok("AT+CSQ").modem_line, "AT+CSQ");
	assert_int_equal(parse_ok("AT+MBSTATUS").kind, CMD_STATUS);
	struct command c = parse_ok("AT+COPS?");
	assert_int_equal(c.kind, CMD_MODEM);
	assert_string_equal(c.modem_line, "AT+COPS?");
	assert_int_equal(parse_ok("AT+CGSN=1").kind, CMD_MODEM);
}

static void test_parse_tunnel(void **state)
{
	struct command c;

	(void)state;
	assert_int_equal(parse_ok("AT^MTXTUNNEL=VERSION").kind, CMD_VERSION);
	assert_int_equal(parse_ok("at^mtxtunnel=getconfig").kind, CMD_GETCONFIG);
	assert_int_equal(parse_ok("AT^MTXTUNNEL=REBOOT").kind, CMD_REBOOT);

	c = parse_ok("AT^MTXTUNNEL=GETPARAM,modbus.devices[0].period");
	assert_int_equal(c.kind, CMD_GETPARAM);
	assert_string_equal(c.key, "modbus.devices[0].period");

	c = parse_ok("AT^MTXTUNNEL=SETPARAM,mqtt.qos,2");
	assert_int_equal(c.kind, CMD_SETPARAM);
	assert_string_equal(c.key, "mqtt.qos");
	assert_string_equal(c.value, "2");
	c = parse_ok("AT^MTXTUNNEL=SETPARAM,logger.id,a,b,c");
	assert_string_equal(c.value, "a,b,c");
	c = parse_ok("AT^MTXTUNNEL=SETPARAM,logger.id,\" x \"");
	assert_string_equal(c.value, " x ");
	c = parse_ok("AT^MTXTUNNEL=SETPARAM,mqtt.username,");
	assert_string_equal(c.value, "");

	c = parse_ok("AT^MTXTUNNEL=GETMODBUS,1;100");
	assert_int_equal(c.kind, CMD_GETMODBUS);
	assert_int_equal(c.target.kind, TARGET_RTU);
	assert_string_equal(c.target.port_name, "");
	assert_int_equal(c.target.unit, 1);
	assert_int_equal(c.reg, 100);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.function, 3);

	c = parse_ok("AT^MTXTUNNEL=GETMODBUS,com2/247;0x10;125;0x04");
	assert_string_equal(c.target.port_name, "com2");
	assert_int_equal(c.target.unit, 247);
	assert_int_equal(c.reg, 16);
	assert_int_equal(c.count, 125);
	assert_int_equal(c.function, 4);

	c = parse_ok("AT^MTXTUNNEL=GETMODBUS,192.168.1.20:502;10;2000;1");
	assert_int_equal(c.target.kind, TARGET_TCP);
	assert_string_equal(c.target.host, "192.168.1.20");
	assert_int_equal(c.target.tcp_port, 502);
	assert_int_equal(c.target.unit, -1);
	assert_int_equal(c.count, 2000);

	c = parse_ok("AT^MTXTUNNEL=GETMODBUS,[::1]:1502/7;65535");
	assert_string_equal(c.target.host, "::1");
	assert_int_equal(c.target.tcp_port, 1502);
	assert_int_equal(c.target.unit, 7);
	assert_int_equal(c.reg, 65535);

	c = parse_ok("AT^MTXTUNNEL=SETMODBUS,1;20;1");
	assert_int_equal(c.kind, CMD_SETMODBUS);
	assert_int_equal(c.function, 6);
	assert_int_equal(c.write_value, 1);
	c = parse_ok("AT^MTXTUNNEL=SETMODBUS,1;20;-1");
	assert_int_equal(c.write_value, 65535);
	c = parse_ok("AT^MTXTUNNEL=SETMODBUS,1;20;-32768;16");
	assert_int_equal(c.write_value, 32768);
	assert_int_equal(c.function, 16);
	c = parse_ok("AT^MTXTUNNEL=SETMODBUS,plc:5020;3;1;5");
	assert_int_equal(c.function, 5);
	assert_int_equal(c.target.kind, TARGET_TCP);
}

static void test_parse_bad_input(void **state)
{
	static char big[COMMAND_MAX_LEN + 2];

	(void)state;
	parse_bad("", 0, "empty command");
	BAD("   \r\n", "empty command");
	parse_bad(NULL, 5, "empty command");
	parse_bad(NULL, 1 << 20, "command too long (1048576 bytes; at most 4096)");
	memset(big, 'A', sizeof(big));
	parse_bad(big, sizeof(big), "command too long (4098 bytes; at most 4096)");
	parse_bad("AT\0AT", 5, "binary data");
	BAD("AT\x01", "binary data");
	BAD("\xff\xfe\x00garbage", "binary data");
	BAD("AT+X\xc3", "binary data");         /* cut UTF-8 sequence */
	BAD("AT+X\xc0\xaf", "binary data");     /* overlong */
	BAD("AT+X\xed\xa0\x80", "binary data"); /* surrogate */
	BAD("AT\r\nAT", "binary data");         /* two lines */
	BAD("CSQ", "not an AT command");
	BAD("hello", "not an AT command");
	BAD("A", "not an AT command");
	BAD("AT^MTXTUNNEL", "needs =<command>");
	BAD("AT^MTXTUNNEL=FROB", "unknown command AT^MTXTUNNEL=FROB (known: VERSION");
	BAD("AT^MTXTUNNEL=", "unknown command");
	BAD("AT^MTXTUNNEL=VERSION,1", "VERSION takes no arguments");
	BAD("AT^MTXTUNNEL=REBOOT,now", "REBOOT takes no arguments");
	BAD("AT^MTXTUNNEL=GETPARAM", "GETPARAM needs a key");
	BAD("AT^MTXTUNNEL=GETPARAM,a,b", "GETPARAM takes one key");
	BAD("AT^MTXTUNNEL=GETPARAM,mqtt qos", "is not a key");
	BAD("AT^MTXTUNNEL=SETPARAM,mqtt.qos", "SETPARAM needs a key and a value");
	BAD("AT^MTXTUNNEL=SETPARAM", "SETPARAM needs a key and a value");
	BAD("AT^MTXTUNNEL=SETPARAM,,1", "empty key");
	BAD("AT^MTXTUNNEL=GETMODBUS", "GETMODBUS needs <address>;<register>");
	BAD("AT^MTXTUNNEL=GETMODBUS,1", "(got 1 field)");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;2;3;4;5", "(got 5 fields)");
	BAD("AT^MTXTUNNEL=GETMODBUS,0;1", "slave address must be 1..247");
	BAD("AT^MTXTUNNEL=GETMODBUS,248;1", "slave address must be 1..247");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;65536", "register '65536' is not 0..65535");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;-1", "register '-1' is not 0..65535");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;x", "register 'x'");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;0;126",
	    "count '126' is out of range (allowed: 1..125 for function 3)");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;0;0", "count '0'");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;0;2001;1", "allowed: 1..2000 for function 1");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;65535;2", "past the last address 65535");
	BAD("AT^MTXTUNNEL=GETMODBUS,1;0;1;5", "not a read function");
	BAD("AT^MTXTUNNEL=GETMODBUS,h:0;0", "TCP port must be 1..65535");
	BAD("AT^MTXTUNNEL=GETMODBUS,h:502/256;0", "unit id must be 0..255");
	BAD("AT^MTXTUNNEL=GETMODBUS,a b:502;0", "bad host");
	BAD("AT^MTXTUNNEL=GETMODBUS,[::1;0", "expected [ipv6]:port");
	BAD("AT^MTXTUNNEL=GETMODBUS,/1;0", "expected <port>/<slave>");
	BAD("AT^MTXTUNNEL=GETMODBUS,;0", "empty device address");
	BAD("AT^MTXTUNNEL=SETMODBUS,1;2", "SETMODBUS needs <address>;<register>;<value>");
	BAD("AT^MTXTUNNEL=SETMODBUS,1;2;65536", "value '65536' is out of range");
	BAD("AT^MTXTUNNEL=SETMODBUS,1;2;-32769", "value '-32769' is out of range");
	BAD("AT^MTXTUNNEL=SETMODBUS,1;2;2;5", "a coil value is 0 or 1");
	BAD("AT^MTXTUNNEL=SETMODBUS,1;2;1;3", "not a write function");
	memset(big, 'A', 600);
	big[0] = 'A';
	big[1] = 'T';
	big[2] = '+';
	parse_bad(big, 600, "too long for the modem");
}

static void test_audit_text(void **state)
{
	char out[128];
	static char big[COMMAND_MAX_LEN + 1];

	(void)state;
	command_audit_text("AT+CSQ\r\n", 8, out, sizeof(out));
	assert_string_equal(out, "AT+CSQ");
	command_audit_text("AT^MTXTUNNEL=SETPARAM,mqtt.password,hunter2", 43, out, sizeof(out));
	assert_string_equal(out, "AT^MTXTUNNEL=SETPARAM,mqtt.password,***");
	command_audit_text("AT^MTXTUNNEL=SETPARAM,mqtt.PassWord,x y", 39, out, sizeof(out));
	assert_string_equal(out, "AT^MTXTUNNEL=SETPARAM,mqtt.PassWord,***");
	command_audit_text("at^mtxtunnel=setparam,mqtt.qos,2", 32, out, sizeof(out));
	assert_string_equal(out, "at^mtxtunnel=setparam,mqtt.qos,2");
	command_audit_text("AT+CPIN=\"1234\"", 14, out, sizeof(out));
	assert_string_equal(out, "AT+CPIN=***");
	command_audit_text("AT\x01\xff\\", 5, out, sizeof(out));
	assert_string_equal(out, "AT\\x01\\xff\\x5c");
	command_audit_text(big, sizeof(big), out, sizeof(out));
	assert_string_equal(out, "<4097 bytes>");
	memset(big, 'B', 1000);
	command_audit_text(big, 1000, out, 16);
	assert_string_equal(out, "BBBBBBBBBBBB...");
	assert_int_equal(strlen(out), 15);
	command_audit_text(NULL, 1 << 20, out, sizeof(out));
	assert_string_equal(out, "<1048576 bytes>");
	command_audit_text(NULL, 3, out, sizeof(out));
	assert_string_equal(out, "");
}

/* ---------------------------------------------------------------- execution */

struct fixture {
	char dir[64];
	char path[128];
	struct config *cfg;
};

static const char base_config[] =
	"# test gateway\n"
	"gateway:\n"
	"  imei: \"490154203237518\"\n"
	"modbus:\n"
	"  enabled: false\n"
	"  devices:\n"
	"    - { id: plc, address: \"127.0.0.1:1\", start: 0, count: 1 }\n"
	"logger:\n"
	"  store: store.db\n"
	"mqtt:\n"
	"  broker: tcp://localhost\n"
	"  username: gw\n"
	"  password: hunter2   # the broker's\n"
	"  qos: 1\n";

static void load(struct fixture *f, const char *extra)
{
	struct config_diags diags = {0};
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	fputs(base_config, fp);
	fputs(extra, fp);
	fclose(fp);
	config_free(f->cfg);
	f->cfg = NULL;
	if (config_load(f->path, &f->cfg, &diags) != 0)
		fail_msg("config: %s", diags.count ? diags.items[0].text : "?");
	config_diags_free(&diags);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/modbridge-cmd-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/gw.yaml", f->dir);
	load(f, "");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Runs one command; returns the reply text with "\n" line ends (caller frees). */
static char *run(struct fixture *f, bool daemon, const char *text, bool *restart)
{
	struct command_env env = {.cfg = f->cfg, .daemon = daemon};
	struct command_reply r;
	size_t len;
	char *out;

	command_execute(&env, text, strlen(text), &r);
	out = command_reply_text(&r, "\n", &len);
	assert_non_null(out);
	if (restart)
		*restart = r.restart;
	command_reply_clear(&r);
	return out;
}

static void expect(struct fixture *f, const char *text, const char *want)
{
	char *got = run(f, false, text, NULL);

	if (strcmp(got, want))
		fail_msg("%s:\n--- got\n%s--- want\n%s", text, got, want);
	free(got);
}

static char *file_text(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = calloc(1, 8192);

	assert_non_null(fp);
	assert_non_null(buf);
	assert_true(fread(buf, 1, 8191, fp) < 8191);
	fclose(fp);
	return buf;
}

static void test_execute_read_only(void **state)
{
	struct fixture *f = *state;
	char want[256];

	expect(f, "AT", "OK\n");
	snprintf(want, sizeof(want), "modbridge %s\nOK\n", MODBRIDGE_VERSION);
	expect(f, "ATI", want);
	expect(f, "AT^MTXTUNNEL=VERSION", want);
	expect(f, "AT+CGSN", "490154203237518\nOK\n");
	expect(f, "AT+CSQ", "+CSQ: 99,99\nOK\n");
	expect(f, "AT^MTXTUNNEL=GETPARAM,mqtt.qos", "1\nOK\n");
	expect(f, "AT^MTXTUNNEL=GETPARAM,modbus.devices[0].id", "plc\nOK\n");
	expect(f, "AT^MTXTUNNEL=GETPARAM,mqtt.password", "***\nOK\n");
	expect(f, "AT^MTXTUNNEL=GETPARAM,mqtt.keepalive",
	       "ERROR: mqtt.keepalive is not set in the configuration file (its default applies)\n");
	expect(f, "AT^MTXTUNNEL=GETPARAM,mqtt",
	       "ERROR: mqtt is a section; name a single value in it (or use GETCONFIG)\n");
	expect(f, "", "ERROR: empty command (send AT, ATI, AT+CSQ, ...)\n");
	expect(f, "AT+COPS?",
	       "ERROR: unknown command 'AT+COPS?' (no modem is configured to pass it to)\n");

	/* GETCONFIG: the values without comments and without the password. */
	char *got = run(f, false, "AT^MTXTUNNEL=GETCONFIG", NULL);
	assert_null(strstr(got, "hunter2"));
	assert_null(strstr(got, "# the broker's"));
	assert_non_null(strstr(got, "password: '***'\n"));
	assert_non_null(strstr(got, "imei: \"490154203237518\"\n"));
	assert_non_null(strstr(got, "\nOK\n"));
	free(got);

	/* Status without a daemon and without a store yet: it says so and creates nothing
	 * (it only looks, as `modbridge queue` does). */
	got = run(f, false, "AT+MBSTATUS", NULL);
	assert_non_null(strstr(got, "identity: 490154203237518\n"));
	assert_non_null(strstr(got, "store: "));
	assert_null(strstr(got, "backlog: "));
	assert_non_null(strstr(got, "\nOK\n"));
	assert_int_equal(access(f->cfg->logger.store_path, F_OK), -1);
	free(got);

	/* With a store: its figures, devices unknown. */
	struct store *st = NULL;
	assert_int_equal(store_open(f->cfg->logger.store_path, &st), 0);
	store_close(st);
	got = run(f, false, "AT+MBSTATUS", NULL);
	assert_non_null(strstr(got, "backlog: 0\n"));
	assert_non_null(strstr(got, "dropped: 0\n"));
	assert_non_null(strstr(got, "device plc: no daemon in this process\n"));
	assert_non_null(strstr(got, "\nOK\n"));
	free(got);
}

static void test_execute_permissions(void **state)
{
	struct fixture *f = *state;
	char *before = file_text(f->path), *after;
	bool restart = true;

	expect(f, "AT^MTXTUNNEL=SETPARAM,mqtt.qos,2",
	       "ERROR: not permitted: SETPARAM needs remote.allow_setparam: true in the configuration\n");
	expect(f, "AT^MTXTUNNEL=SETMODBUS,127.0.0.1:1;0;1",
	       "ERROR: not permitted: SETMODBUS (a write to a device) needs remote.allow_writes: true in the configuration\n");
	char *got = run(f, true, "AT^MTXTUNNEL=REBOOT", &restart);
	assert_string_equal(
		got,
		"ERROR: not permitted: REBOOT needs remote.allow_reboot: true in the configuration\n");
	assert_false(restart);
	free(got);
	after = file_text(f->path);
	assert_string_equal(before, after);
	free(before);
	free(after);

	load(f, "remote:\n  allow_reboot: true\n");
	got = run(f, true, "AT^MTXTUNNEL=REBOOT", &restart);
	assert_string_equal(got, "restarting\nOK\n");
	assert_true(restart);
	free(got);
	expect(f, "AT^MTXTUNNEL=REBOOT",
	       "ERROR: REBOOT restarts a running daemon, and there is none in this process (use systemctl restart modbridge)\n");
}

static void test_execute_setparam(void **state)
{
	struct fixture *f = *state;
	char *before, *after, *got;
	bool restart = false;

	load(f, "remote:\n  allow_setparam: true\n");
	before = file_text(f->path);

	/* An invalid value: the diagnostics, and the old file stays. */
	got = run(f, true, "AT^MTXTUNNEL=SETPARAM,mqtt.qos,7", &restart);
	char want[512];
	snprintf(want, sizeof(want),
		 "%s:14: mqtt.qos: 7 is out of range (allowed: 0..2)\n"
		 "ERROR: configuration not changed: mqtt.qos=7 would make it invalid (1 error)\n",
		 f->path);
	assert_string_equal(got, want);
	assert_false(restart);
	free(got);
	after = file_text(f->path);
	assert_string_equal(before, after);
	free(after);
	expect(f, "AT^MTXTUNNEL=SETPARAM,modbus.devices[3].id,x",
	       "ERROR: modbus.devices[3]: 'devices' has 1 entries (positions 0..0)\n");
	expect(f, "AT^MTXTUNNEL=SETPARAM,remote.allow_writes,true",
	       "ERROR: remote.allow_writes can only be changed in the configuration file on the gateway\n");

	/* A valid one: written in place, comments kept, a restart requested. */
	got = run(f, true, "AT^MTXTUNNEL=SETPARAM,mqtt.qos,2", &restart);
	assert_string_equal(got, "mqtt.qos=2\nsaved; the gateway restarts to apply it\nOK\n");
	assert_true(restart);
	free(got);
	after = file_text(f->path);
	assert_non_null(strstr(after, "  qos: 2\n"));
	assert_non_null(strstr(after, "# test gateway\n"));
	assert_non_null(strstr(after, "  password: hunter2   # the broker's\n"));
	free(after);

	/* A new key, and a secret that is never echoed. */
	expect(f, "AT^MTXTUNNEL=SETPARAM,mqtt.keepalive,120",
	       "mqtt.keepalive=120\nsaved; a running daemon applies it on SIGHUP or at its next start\nOK\n");
	expect(f, "AT^MTXTUNNEL=SETPARAM,mqtt.password,n3w",
	       "mqtt.password=***\nsaved; a running daemon applies it on SIGHUP or at its next start\nOK\n");
	expect(f, "AT^MTXTUNNEL=SETPARAM,mqtt.password,n3w", "mqtt.password is already ***\nOK\n");
	after = file_text(f->path);
	assert_non_null(strstr(after, "  password: n3w   # the broker's\n"));
	assert_non_null(strstr(after, "  keepalive: 120\n"));
	free(after);

	/* The result loads, and holds the new values. */
	struct config *cfg = NULL;
	struct config_diags diags = {0};
	assert_int_equal(config_load(f->path, &cfg, &diags), 0);
	assert_int_equal(cfg->mqtt.qos, 2);
	assert_int_equal(cfg->mqtt.keepalive_s, 120);
	assert_string_equal(cfg->mqtt.password, "n3w");
	config_free(cfg);
	config_diags_free(&diags);
	free(before);

	/* No temporary files are left behind. */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | grep -c new-) -eq 0", f->dir);
	assert_int_equal(system(cmd), 0);
}

static void test_execute_modbus_refusals(void **state)
{
	struct fixture *f = *state;

	/* Only configured endpoints; a missing serial port is named. */
	expect(f, "AT^MTXTUNNEL=GETMODBUS,10.0.0.1:502;0",
	       "ERROR: 10.0.0.1:502 is not the address of a configured Modbus TCP device\n");
	expect(f, "AT^MTXTUNNEL=GETMODBUS,1;0",
	       "ERROR: no serial port is configured (for Modbus TCP write host:port)\n");
	expect(f, "AT^MTXTUNNEL=GETMODBUS,com9/1;0",
	       "ERROR: no serial port named 'com9' in the configuration\n");
	/* Nothing listens on port 1: the reason comes back. */
	expect(f, "AT^MTXTUNNEL=GETMODBUS,127.0.0.1:1;0",
	       "ERROR: unit 1 at 127.0.0.1:1: connection refused\n");
}

static void test_reply_text(void **state)
{
	struct command_reply r = {0};
	size_t len;
	char *t;

	(void)state;
	r.ok = true;
	t = command_reply_text(&r, "\r\n", &len);
	assert_string_equal(t, "OK\r\n");
	assert_int_equal(len, 4);
	free(t);
	r.lines = strdup("a\nb");
	r.lines_len = 3;
	t = command_reply_text(&r, "\r\n", &len);
	assert_string_equal(t, "a\r\nb\r\nOK\r\n");
	free(t);
	r.ok = false;
	snprintf(r.error, sizeof(r.error), "nope");
	t = command_reply_text(&r, "\n", &len);
	assert_string_equal(t, "a\nb\nERROR: nope\n");
	free(t);
	command_reply_clear(&r);
	command_reply_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_standard),
		cmocka_unit_test(test_parse_tunnel),
		cmocka_unit_test(test_parse_bad_input),
		cmocka_unit_test(test_audit_text),
		cmocka_unit_test_setup_teardown(test_execute_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_execute_permissions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_execute_setparam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_execute_modbus_refusals, setup, teardown),
		cmocka_unit_test(test_reply_text),
	};
	return cmocka_run_group_tests_name("command", tests, NULL, NULL);
}
