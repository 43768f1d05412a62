/*
 * mbtcp.h - Modbus TCP framing: requests out, responses in (MBAP header, PDU, exceptions).
 *
 * Pure functions over byte buffers: no I/O, no clock, no state, no allocation. The event
 * loop (tcploop.h) sends what mbtcp_encode() writes, cuts the byte stream into frames with
 * mbtcp_frame_size(), matches a frame to its request by transaction id and decodes it with
 * mbtcp_parse(). libmodbus frames RTU; this module exists because libmodbus's TCP side is
 * synchronous (one request in flight per thread, a select() before every read).
 *
 * An ADU is the 7-byte MBAP header (transaction id, protocol id 0, length of what follows,
 * unit id) and the PDU (function code and data), at most MBTCP_MAX_ADU bytes.
 *
 * Threading: none needed. Errors: mbtcp_parse returns one of enum mbtcp_status, and
 * mbtcp_reason() turns it into the short text a reading's ERR carries (the same texts as
 * modbus_io.c gives for libmodbus's errors, so the JSON does not depend on the transport).
 * fuzz/fuzz_mbtcp.c feeds mbtcp_frame_size and mbtcp_parse arbitrary bytes.
 */
#ifndef MODBRIDGE_MBTCP_H
#define MODBRIDGE_MBTCP_H

#include <stddef.h>
#include <stdint.h>

#define MBTCP_HEADER 7    /* MBAP header, unit id included */
#define MBTCP_MAX_ADU 260 /* header + the longest PDU (253) */
#define MBTCP_MAX_READ_REGISTERS 125
#define MBTCP_MAX_READ_BITS 2000

/* One request. Reads: function 1..4, address, count. Writes: function 5 or 15 (a coil,
 * value 0 or 1), 6 or 16 (a register), one value at address. */
struct mbtcp_request {
	uint16_t tid;
	uint8_t unit;
	uint8_t function;
	uint16_t address;
	uint16_t count; /* reads: values to read; writes: 1 */
	uint16_t value; /* writes only */
};

enum mbtcp_status {
	MBTCP_OK = 0,
	MBTCP_EXCEPTION = -1,     /* the device refused: *exception holds its code (1..255) */
	MBTCP_BAD_DATA = -2,      /* a malformed answer, or one that does not fit the request */
	MBTCP_BAD_UNIT = -3,      /* the answer of another unit id */
	MBTCP_BAD_EXCEPTION = -4, /* an exception response with code 0 */
};

/* Whether rq is a request this module can encode (function, count and value ranges). */
int mbtcp_request_valid(const struct mbtcp_request *rq);

/* Writes rq's ADU into out (MBTCP_MAX_ADU bytes) and returns its length (12..15 bytes).
 * rq must be valid (mbtcp_request_valid). */
size_t mbtcp_encode(const struct mbtcp_request *rq, uint8_t *out);

/*
 * The length of the frame at the start of buf (len bytes received so far): 0 when more
 * bytes are needed to know or to have it whole, the ADU's length when all of it is there,
 * or -1 when the bytes cannot be Modbus TCP (protocol id not 0, or a length field outside
 * 2..254): the stream is out of step, and the connection must be closed.
 */
int mbtcp_frame_size(const uint8_t *buf, size_t len);

/* The transaction id of a frame (at least 2 bytes). */
uint16_t mbtcp_tid(const uint8_t *adu);

/*
 * Decodes the response adu (len bytes, one whole frame as mbtcp_frame_size measured it,
 * with the transaction id of rq) to the request rq. Reads store rq->count values into
 * dest (bits as 0/1); writes store nothing (dest may be NULL). On MBTCP_EXCEPTION,
 * *exception is the device's exception code; otherwise it is set to 0.
 */
enum mbtcp_status mbtcp_parse(const struct mbtcp_request *rq, const uint8_t *adu, size_t len,
			      uint16_t *dest, int *exception);

/*
 * The short reason for a failed parse, as a reading's ERR carries it: "exception 2 illegal
 * data address", "invalid data in response", "response from wrong slave", ...
 */
void mbtcp_reason(enum mbtcp_status status, int exception, char *buf, size_t len);

/* The name of a Modbus exception code ("illegal data address"), or NULL for a code the
 * protocol does not name. */
const char *mbtcp_exception_name(int code);

#endif
