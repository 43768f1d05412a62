/*
 * message.h - readings and their JSON encoding (the router's "MODB" messages).
 *
 * A reading is one poll of one device: the values of all its blocks, or the reason the
 * poll failed. message_encode() turns it into the exact JSON of the router's logger:
 *   {"IMEI":..,"TYPE":"MODB","TS":..,"ID":..,"A":..,"ST":..,"N":..,"V":[..],"P":..}
 * or, for several blocks, STX/NX/PX instead of ST/N. A failed poll carries "ERR" and no V.
 * A device with a data type other than `word` also carries its decoded values: V then
 * holds those (N/NX still count registers; PX indexes V), as docs/json-format.md says.
 * docs/json-format.md is the reference. The encoder uses jansson, which keeps key order.
 */
#ifndef MODBRIDGE_MESSAGE_H
#define MODBRIDGE_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config_logger.h"
#include "config_modbus.h"
#include "decode.h"

#define READING_ERROR_MAX 160

struct reading {
	const struct device_config *device; /* borrowed; outlives the reading */
	int64_t ts_ms;                      /* the instant the reading belongs to (wall clock) */
	uint16_t *values;                   /* all blocks' values in order; bits are 0/1 */
	size_t value_count;
	char error[READING_ERROR_MAX]; /* "" when the poll succeeded */
	/* Typed devices (type other than word): the decoded values, which V then holds; the
	 * registers stay in values. NULL for word devices. Freed by reading_clear. */
	struct decoded_value *decoded;
	size_t decoded_count;
};

struct message_context {
	const char *imei;             /* -> "IMEI" */
	const char *logger_id;        /* -> "P" */
	enum time_format time_format; /* "TS" as ISO-8601 text or unix seconds text */
};

/*
 * Once, before any thread starts: jansson seeds its hash function on first use, which is
 * not safe when two threads encode their first message at the same time.
 */
void message_global_init(void);

/*
 * Encodes r as one compact JSON object. Returns a malloc'd NUL-terminated string (the
 * caller frees it) or NULL when out of memory. A reading with a non-empty error gets an
 * "ERR" member in place of "V".
 */
char *message_encode(const struct reading *r, const struct message_context *ctx);

/* Frees the values (and decoded values) of a reading, not the reading itself. Accepts NULL. */
void reading_clear(struct reading *r);

#endif
