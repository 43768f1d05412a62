/*
 * message.h - the JSON encoding of readings (the router's "MODB" messages).
 *
 * A reading (reading.h) is one poll of one device: the values of all its blocks, or the
 * reason the poll failed. message_encode() turns it into the exact JSON of the router's logger:
 *   {"IMEI":..,"TYPE":"MODB","TS":..,"ID":..,"A":..,"ST":..,"N":..,"V":[..],"P":..}
 * or, for several blocks, STX/NX/PX instead of ST/N. A failed poll carries "ERR" and no V.
 * A device with a data type other than `word` also carries its decoded values: V then
 * holds those (N/NX still count registers; PX indexes V), as docs/json-format.md says.
 * docs/json-format.md is the reference. message_encode writes the bytes directly;
 * message_encode_jansson, the same with jansson, is the reference it is fuzzed against.
 */
#ifndef MODBRIDGE_MESSAGE_H
#define MODBRIDGE_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config_logger.h"
#include "config_modbus.h"
#include "decode.h"
#include "reading.h"

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

/* The same with jansson (one JSON value per member and register): the reference that
 * fuzz/fuzz_message.c holds message_encode() to, byte for byte. Not used by the daemon. */
char *message_encode_jansson(const struct reading *r, const struct message_context *ctx);

#endif
