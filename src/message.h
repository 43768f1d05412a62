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

/*
 * The message of a reading whose transformer script failed (docs/scripts.md): the default
 * encoding, V kept, and "ERR":"script <why>" after V ("<read error>; script <why>" when the
 * read had failed too). why is "file:line: reason". Returns as message_encode.
 */
char *message_encode_script_error(const struct reading *r, const struct message_context *ctx,
				  const char *why);

/*
 * Reading JSON text, for modules that build their own values from it (the script module's
 * modbridge.json_decode) without including jansson, which this module owns.
 *
 * message_json_parse() parses a whole text (any value at the top, "\u0000" allowed) into
 * *doc, or returns MB_ERR_INVAL with why set to jansson's reason and position ("'}'
 * expected near ']' at line 1, column 7") or MB_ERR_NOMEM. message_json_walk() then visits
 * the value in document order; it allocates nothing, so a callback may leave it by longjmp
 * (a Lua error) as long as the caller frees the document afterwards. A callback returns 0
 * to go on; anything else stops the walk and is returned. Values nested deeper than
 * max_depth stop it with MB_ERR_INVAL. Any thread; a document is used by one at a time.
 */
struct message_json;

struct message_json_visitor {
	void *ctx;
	int (*null)(void *ctx);
	int (*boolean)(void *ctx, int value);
	int (*integer)(void *ctx, long long value);
	int (*real)(void *ctx, double value);
	int (*string)(void *ctx, const char *s, size_t len);
	int (*open)(void *ctx, int object, size_t count); /* an array or object begins */
	int (*key)(void *ctx, const char *s, size_t len); /* before each member's value */
	int (*item)(void *ctx, int object, size_t index); /* after each item's or member's value */
	int (*close)(void *ctx, int object);
};

int message_json_parse(const char *text, size_t len, struct message_json **doc, char *why,
		       size_t why_len);
int message_json_walk(const struct message_json *doc, int max_depth,
		      const struct message_json_visitor *v);
void message_json_free(struct message_json *doc);
/* The same with jansson (one JSON value per member and register): the reference that
 * fuzz/fuzz_message.c holds message_encode() to, byte for byte. Not used by the daemon. */
char *message_encode_jansson(const struct reading *r, const struct message_context *ctx);

#endif
