/*
 * modbus_io.h - one Modbus RTU serial bus, over libmodbus.
 *
 * This is the only module that includes <modbus.h>; Modbus TCP does not use it (mbtcp.h,
 * tcploop.h: libmodbus's TCP side is synchronous, a thread per request in flight). A
 * struct mbio opens the port lazily and reopens it by itself: a read on a closed link
 * opens it first, and a failed read leaves the link in a state where the next read is
 * correct (see modbus_io.c for how late replies are kept from shifting later readings).
 * Not thread-safe: one bus thread owns each mbio, which is also what keeps requests on a
 * serial line strictly one at a time.
 */
#ifndef MODBRIDGE_MODBUS_IO_H
#define MODBRIDGE_MODBUS_IO_H

#include <stddef.h>
#include <stdint.h>

#include "config_modbus.h"

struct mbio;

/* Creates an RTU link on a serial port (not opened yet). Returns 0 or MB_ERR_NOMEM. */
int mbio_new_rtu(const struct serial_port_config *port, struct mbio **out);

/* Closes and frees. Accepts NULL. */
void mbio_free(struct mbio *io);

/* A short name for logs: "com2 (/dev/ttyS1)". */
const char *mbio_name(const struct mbio *io);

/*
 * Reads count values starting at start with function code 1..4 from slave, into dest
 * (count entries; bits are stored as 0/1). timeout_ms is the response time-out for this
 * request. On failure writes a short reason ("timeout", "exception 2 illegal data
 * address", "crc error", ...) into reason and returns MB_ERR_IO when the link could not be
 * opened (nothing was sent) or MB_ERR_MODBUS when the transaction failed; dest is then
 * undefined.
 */
int mbio_read(struct mbio *io, int slave, int function, uint16_t start, uint16_t count,
	      int timeout_ms, uint16_t *dest, char *reason, size_t reason_len);

/*
 * The Modbus exception code (1..255) of the last mbio_read on io when it failed with an
 * exception response, or 0 when the last read succeeded or failed in another way (a
 * time-out, a garbled answer, a lost link). Lets callers tell a device's refusal, which
 * retrying cannot change, from a transport failure, which it may.
 */
int mbio_last_exception(const struct mbio *io);

/*
 * Writes one value to slave: function 5 (a coil, value 0 or 1), 6 (a holding register),
 * 15 or 16 (the same through the "multiple" functions, for devices that only know those).
 * timeout_ms and the failure reporting are as for mbio_read; MB_ERR_INVAL when the
 * function or value is not allowed (nothing was sent).
 */
int mbio_write(struct mbio *io, int slave, int function, uint16_t address, uint16_t value,
	       int timeout_ms, char *reason, size_t reason_len);

#endif
