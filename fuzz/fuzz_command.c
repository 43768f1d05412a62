/*
 * fuzz_command.c - libFuzzer target for the remote command parser (src/command_parse.c) and the
 * pure code it leads to: the audit text, and, for GETPARAM and SETPARAM, reading and
 * editing a key of a sample configuration (src/confedit.c). Any input must give either a
 * parsed command or a reason, never a crash, an overrun or a leak; the checks below trap
 * on results that break the contracts in command.h.
 *
 * Build and run: see fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "confedit.h"

static const char sample[] = "gateway:\n"
			     "  imei: \"357299070082380\"\n"
			     "serial:\n"
			     "  - { name: com2, device: /dev/ttyS1, baudrate: 9600 }\n"
			     "modbus:\n"
			     "  devices:\n"
			     "    - id: \"1\"\n"
			     "      address: 1\n"
			     "      start: \"1;10;55\"   # blocks\n"
			     "      count: \"1;3;2\"\n"
			     "logger: { id: ID-1234 }\n"
			     "mqtt:\n"
			     "  broker: ssl://test.mosquitto.org:8884\n"
			     "  password: secret\n"
			     "  at_topics:\n"
			     "    - { topic: \"[IMEI]/AT\", response: \"[IMEI]/ATR\" }\n"
			     "remote:\n";

static void check_terminated(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct command c;
	char why[512], audit[256];

	why[0] = '\0';
	command_audit_text(text, size, audit, sizeof(audit));
	check_terminated(audit, sizeof(audit));
	if (command_parse(text, size, &c, why, sizeof(why)) != 0) {
		/* A refusal always says why. */
		if (!why[0])
			__builtin_trap();
		check_terminated(why, sizeof(why));
		return 0;
	}
	check_terminated(c.key, sizeof(c.key));
	check_terminated(c.value, sizeof(c.value));
	check_terminated(c.modem_line, sizeof(c.modem_line));
	check_terminated(c.target.host, sizeof(c.target.host));
	check_terminated(c.target.port_name, sizeof(c.target.port_name));

	switch (c.kind) {
	case CMD_GETMODBUS:
		if (c.count < 1 || c.count > (c.function <= 2 ? 2000 : 125) || c.function < 1 ||
		    c.function > 4 || (uint32_t)c.reg + c.count > 65536)
			__builtin_trap();
		break;
	case CMD_SETMODBUS:
		if (c.function != 5 && c.function != 6 && c.function != 15 && c.function != 16)
			__builtin_trap();
		if ((c.function == 5 || c.function == 15) && c.write_value > 1)
			__builtin_trap();
		break;
	case CMD_GETPARAM: {
		char *value = NULL;
		if (confedit_get(sample, sizeof(sample) - 1, c.key, &value, why, sizeof(why)) ==
			    0 &&
		    !value)
			__builtin_trap();
		free(value);
		break;
	}
	case CMD_SETPARAM: {
		char *out = NULL, *back = NULL;
		size_t len = 0;
		if (confedit_set(sample, sizeof(sample) - 1, c.key, c.value, &out, &len, why,
				 sizeof(why)) == 0) {
			/* What was written must read back as written. */
			if (!out || strlen(out) != len ||
			    confedit_get(out, len, c.key, &back, why, sizeof(why)) != 0 ||
			    strcmp(back, c.value) != 0)
				__builtin_trap();
		}
		free(back);
		free(out);
		break;
	}
	default: break;
	}
	return 0;
}
