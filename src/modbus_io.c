/*
 * modbus_io.c - libmodbus wrapper for one bus; see modbus_io.h.
 *
 * The trap this module exists to avoid: libmodbus does not discard bytes that arrive
 * after a time-out, so a late reply becomes the answer to the *next* request and every
 * later reading is silently shifted by one. We therefore flush the input when a link is
 * opened, before every RTU request, and after every failure; and a TCP link that had a
 * time-out or a framing error is closed, so the next read starts on a clean stream.
 *
 * A flush alone is not enough on a serial line: the late reply usually arrives *after*
 * the flush, while the next request waits for its answer, and RTU frames carry no
 * transaction id to tell them apart. So after a time-out we also wait until the line has
 * been silent for one full response time-out, discarding whatever arrives (drain_line).
 * That costs a dead device a second time-out per read; never publishing a shifted value
 * is worth it.
 */
#include "modbus_io.h"

#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "timeutil.h"

struct mbio {
	modbus_t *ctx;
	int connected;
	int is_rtu;
	const struct serial_port_config *port; /* RTU only */
	char *host;                            /* TCP only */
	int tcp_port;
	char name[160];
};

int mbio_new_rtu(const struct serial_port_config *port, struct mbio **out)
{
	struct mbio *io = calloc(1, sizeof(*io));
	if (!io)
		return MB_ERR_NOMEM;
	io->is_rtu = 1;
	io->port = port;
	snprintf(io->name, sizeof(io->name), "%s (%s)", port->name, port->device);
	*out = io;
	return 0;
}

int mbio_new_tcp(const char *host, int port, struct mbio **out)
{
	struct mbio *io = calloc(1, sizeof(*io));
	if (!io)
		return MB_ERR_NOMEM;
	io->host = strdup(host);
	if (!io->host) {
		free(io);
		return MB_ERR_NOMEM;
	}
	io->tcp_port = port;
	if (strchr(host, ':'))
		snprintf(io->name, sizeof(io->name), "[%s]:%d", host, port);
	else
		snprintf(io->name, sizeof(io->name), "%s:%d", host, port);
	*out = io;
	return 0;
}

static void link_close(struct mbio *io)
{
	if (io->ctx) {
		modbus_close(io->ctx);
		modbus_free(io->ctx);
		io->ctx = NULL;
	}
	io->connected = 0;
}

void mbio_free(struct mbio *io)
{
	if (!io)
		return;
	link_close(io);
	free(io->host);
	free(io);
}

const char *mbio_name(const struct mbio *io)
{
	return io->name;
}

/* Maps errno after a failed libmodbus call to the short reason that goes into "ERR". */
static void describe_error(int err, char *reason, size_t len)
{
	const char *text;
	switch (err) {
	case ETIMEDOUT: text = "timeout"; break;
	case EMBBADCRC: text = "crc error"; break;
	case EMBXILFUN: text = "exception 1 illegal function"; break;
	case EMBXILADD: text = "exception 2 illegal data address"; break;
	case EMBXILVAL: text = "exception 3 illegal data value"; break;
	case EMBXSFAIL: text = "exception 4 slave device failure"; break;
	case EMBXACK: text = "exception 5 acknowledge"; break;
	case EMBXSBUSY: text = "exception 6 slave device busy"; break;
	case EMBXNACK: text = "exception 7 negative acknowledge"; break;
	case EMBXMEMPAR: text = "exception 8 memory parity error"; break;
	case EMBXGPATH: text = "exception 10 gateway path unavailable"; break;
	case EMBXGTAR: text = "exception 11 gateway target failed to respond"; break;
	case EMBBADDATA: text = "invalid data in response"; break;
	case EMBBADEXC: text = "invalid exception code"; break;
	case EMBMDATA: text = "too many data"; break;
	case EMBBADSLAVE: text = "response from wrong slave"; break;
	case ECONNRESET:
	case EPIPE: text = "connection lost"; break;
	case ECONNREFUSED: text = "connection refused"; break;
	default: text = modbus_strerror(err); break;
	}
	snprintf(reason, len, "%s", text);
}

/*
 * Discards input until the line has been quiet for quiet_ms, or for at most 3 * quiet_ms
 * in all (a babbling device must not hold the bus forever).
 */
static void drain_line(struct mbio *io, int quiet_ms)
{
	int fd = modbus_get_socket(io->ctx);
	int64_t give_up = time_mono_ms() + 3LL * quiet_ms;
	unsigned char junk[256];
	size_t discarded = 0;

	if (fd < 0)
		return;
	for (;;) {
		int64_t left = give_up - time_mono_ms();
		if (left <= 0)
			break;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, (int)(left < quiet_ms ? left : quiet_ms));
		if (n == 0)
			break; /* quiet long enough */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		ssize_t got = read(fd, junk, sizeof(junk));
		if (got <= 0)
			break;
		discarded += (size_t)got;
	}
	if (discarded)
		log_debug("%s: discarded %zu late byte(s) after a time-out", io->name, discarded);
}

static int link_open(struct mbio *io, char *reason, size_t len)
{
	if (io->is_rtu) {
		const struct serial_port_config *p = io->port;
		io->ctx = modbus_new_rtu(p->device, p->baudrate, p->parity, p->data_bits, p->stop_bits);
	} else {
		char service[8];
		snprintf(service, sizeof(service), "%d", io->tcp_port);
		io->ctx = modbus_new_tcp_pi(io->host, service);
	}
	if (!io->ctx) {
		snprintf(reason, len, "cannot create context: %s", modbus_strerror(errno));
		return MB_ERR_MODBUS;
	}
	if (modbus_connect(io->ctx) == -1) {
		int err = errno;
		if (io->is_rtu)
			snprintf(reason, len, "cannot open %s: %s", io->port->device, modbus_strerror(err));
		else if (err == ECONNREFUSED)
			snprintf(reason, len, "connection refused");
		else
			snprintf(reason, len, "connect: %s", modbus_strerror(err));
		modbus_free(io->ctx);
		io->ctx = NULL;
		return MB_ERR_MODBUS;
	}
	if (io->is_rtu && flock(modbus_get_socket(io->ctx), LOCK_EX | LOCK_NB) != 0) {
		/* Two processes on one serial line would interleave their frames and read each
		 * other's answers. The daemon holds this lock while it has the port open, so a
		 * `modbridge read` or `modbridge at` started beside it is refused instead. */
		int err = errno;
		if (err == EWOULDBLOCK)
			snprintf(reason, len, "%s is in use by another process (is the daemon running?)",
				 io->port->device);
		else
			snprintf(reason, len, "cannot lock %s: %s", io->port->device, strerror(err));
		modbus_close(io->ctx);
		modbus_free(io->ctx);
		io->ctx = NULL;
		return MB_ERR_MODBUS;
	}
	if (io->is_rtu) {
		/* On a real RS-485 UART this enables the kernel's direction control; a pty or
		 * a USB adapter with automatic direction answers ENOTTY, which just means "not
		 * an RS-485 UART", so the failure is deliberately ignored. */
		(void)modbus_rtu_set_serial_mode(io->ctx, MODBUS_RTU_RS485);
		int bt = io->port->byte_timeout_ms;
		modbus_set_byte_timeout(io->ctx, (uint32_t)(bt / 1000), (uint32_t)(bt % 1000) * 1000);
	}
	/* Stale bytes from a previous user of the line (or a socat pty) must not be taken
	 * for the first reply. */
	modbus_flush(io->ctx);
	io->connected = 1;
	return 0;
}

int mbio_read(struct mbio *io, int slave, int function, uint16_t start, uint16_t count,
	      int timeout_ms, uint16_t *dest, char *reason, size_t reason_len)
{
	int rc;

	if (!io->connected && link_open(io, reason, reason_len) != 0)
		return MB_ERR_IO;

	modbus_set_slave(io->ctx, slave);
	modbus_set_response_timeout(io->ctx, (uint32_t)(timeout_ms / 1000),
				    (uint32_t)(timeout_ms % 1000) * 1000);
	if (io->is_rtu)
		modbus_flush(io->ctx); /* drop a late reply to an earlier request */

	switch (function) {
	case 1:
	case 2: {
		uint8_t bits[2000];
		rc = function == 1 ? modbus_read_bits(io->ctx, start, count, bits)
				   : modbus_read_input_bits(io->ctx, start, count, bits);
		if (rc == count)
			for (int i = 0; i < count; i++)
				dest[i] = bits[i] ? 1 : 0;
		break;
	}
	case 3:
		rc = modbus_read_registers(io->ctx, start, count, dest);
		break;
	case 4:
		rc = modbus_read_input_registers(io->ctx, start, count, dest);
		break;
	default:
		snprintf(reason, reason_len, "unsupported function 0x%02x", function);
		return MB_ERR_INVAL;
	}
	if (rc == count)
		return 0;

	int err = rc == -1 ? errno : EMBBADDATA;
	describe_error(err, reason, reason_len);
	if (err >= EMBXILFUN && err <= EMBXGTAR) {
		/* A Modbus exception is a complete, well-formed answer: the link is in sync. */
		return MB_ERR_MODBUS;
	}
	if (io->is_rtu && err != EBADF && err != EIO && err != ENXIO) {
		if (err == ETIMEDOUT || err == EMBBADCRC || err == EMBBADSLAVE || err == EMBBADDATA)
			drain_line(io, timeout_ms);
		modbus_flush(io->ctx);
	} else {
		/* TCP: after a time-out the reply may still come; a fresh connection is the only
		 * way to be sure it is not read as the next answer. Serial: the device vanished
		 * (EIO/ENXIO/EBADF); reopen it on the next read. */
		link_close(io);
	}
	return MB_ERR_MODBUS;
}

/*
 * After a failed request: the same recovery as in mbio_read (which keeps its own inline
 * copy of these steps): a Modbus exception is a complete answer; otherwise drain and flush
 * a serial line, or close a TCP connection, so a late reply cannot answer a later request.
 */
static void recover_after_failure(struct mbio *io, int err, int timeout_ms)
{
	if (err >= EMBXILFUN && err <= EMBXGTAR)
		return;
	if (io->is_rtu && err != EBADF && err != EIO && err != ENXIO) {
		if (err == ETIMEDOUT || err == EMBBADCRC || err == EMBBADSLAVE || err == EMBBADDATA)
			drain_line(io, timeout_ms);
		modbus_flush(io->ctx);
	} else {
		link_close(io);
	}
}

int mbio_write(struct mbio *io, int slave, int function, uint16_t address, uint16_t value,
	       int timeout_ms, char *reason, size_t reason_len)
{
	int rc;

	if (function != 5 && function != 6 && function != 15 && function != 16) {
		snprintf(reason, reason_len, "unsupported write function 0x%02x", function);
		return MB_ERR_INVAL;
	}
	if ((function == 5 || function == 15) && value > 1) {
		snprintf(reason, reason_len, "a coil is 0 or 1, not %u", value);
		return MB_ERR_INVAL;
	}
	if (!io->connected && link_open(io, reason, reason_len) != 0)
		return MB_ERR_IO;

	modbus_set_slave(io->ctx, slave);
	modbus_set_response_timeout(io->ctx, (uint32_t)(timeout_ms / 1000),
				    (uint32_t)(timeout_ms % 1000) * 1000);
	if (io->is_rtu)
		modbus_flush(io->ctx);

	switch (function) {
	case 5:
		rc = modbus_write_bit(io->ctx, address, value);
		break;
	case 6:
		rc = modbus_write_register(io->ctx, address, value);
		break;
	case 15: {
		uint8_t bit = (uint8_t)value;
		rc = modbus_write_bits(io->ctx, address, 1, &bit);
		break;
	}
	default:
		rc = modbus_write_registers(io->ctx, address, 1, &value);
		break;
	}
	if (rc == 1)
		return 0;
	int err = rc == -1 ? errno : EMBBADDATA;
	describe_error(err, reason, reason_len);
	recover_after_failure(io, err, timeout_ms);
	return MB_ERR_MODBUS;
}
