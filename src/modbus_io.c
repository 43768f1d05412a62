/*
 * modbus_io.c - libmodbus wrapper for one serial bus; see modbus_io.h. (Modbus TCP has
 * its own framing and event loop: mbtcp.c, tcploop.c.)
 *
 * The trap this module exists to avoid: libmodbus does not discard bytes that arrive
 * after a time-out, so a late reply becomes the answer to the *next* request and every
 * later reading is silently shifted by one. We therefore flush the input when a link is
 * opened, before every request, and after every failure.
 *
 * A flush alone is not enough on a serial line: the late reply usually arrives *after*
 * the flush, while the next request waits for its answer, and RTU frames carry no
 * transaction id. What they do carry is checked by libmodbus: the slave address, the
 * function code and the byte count must match the request, or the answer is refused
 * ("response from wrong slave", "invalid data") -- a failed read, never a shifted one.
 * So a late reply can only be mistaken for the answer to a later request to the *same
 * slave*. After a time-out we therefore remember, per slave, until when a late answer
 * may still come (one more response time-out), and before the next request to that
 * slave we drain the line until then (drain_until). Requests to other slaves go ahead at
 * once, so a dead slave costs its bus only its own time-outs (issue 5: "at most its
 * time-out plus its retries"). Two refinements keep that true:
 *   - a retry of the very same request does not wait: any answer to it, early or late,
 *     is a correct answer (same registers of the same slave); but since its own answer
 *     may then still be on its way, the window is extended past the retry;
 *   - a wrong-slave or garbled answer also opens a window for the slave we asked, since
 *     its own answer may still come.
 * docs/modbus.md explains the trade-off for users.
 *
 * RTU lines also get a silent interval before each request (the port's
 * silent_interval_ms, 3.5 characters by default) for slaves that need the bus quiet
 * longer than the protocol says.
 */
#include "modbus_io.h"

#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "liveness.h"
#include "log.h"
#include "planner.h"
#include "timeutil.h"

/* RTU: the request after which a late answer from one slave may still arrive. */
struct late_window {
	int64_t until_ms; /* monotonic; 0: nothing outstanding */
	int function;
	uint16_t start, count;
};

struct mbio {
	modbus_t *ctx;
	int connected;
	const struct serial_port_config *port;
	char name[160];
	bool lost;                    /* the link failed: log when it works again */
	int last_exception;           /* exception code of the last read, 0: none */
	int64_t silent_us;            /* silence kept before each request */
	int64_t last_activity_us;     /* monotonic end of the last transaction */
	struct late_window late[256]; /* indexed by slave address */
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int mbio_new_rtu(const struct serial_port_config *port, struct mbio **out)
{
	struct mbio *io = calloc(1, sizeof(*io));
	if (!io)
		return MB_ERR_NOMEM;
	io->port = port;
	io->silent_us = planner_silent_interval_us(port);
	snprintf(io->name, sizeof(io->name), "%s (%s)", port->name, port->device);
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
	free(io);
}

const char *mbio_name(const struct mbio *io)
{
	return io->name;
}

int mbio_last_exception(const struct mbio *io)
{
	return io->last_exception;
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
 * Discards input until the monotonic instant until_ms; if bytes are still arriving then,
 * goes on until the line has been quiet for quiet_ms (the frame in progress ends), but
 * never past until_ms + max_extra_ms (a babbling device must not hold the bus forever).
 */
static void drain_until(struct mbio *io, int64_t until_ms, int quiet_ms, int max_extra_ms)
{
	int fd = modbus_get_socket(io->ctx);
	int64_t give_up = until_ms + max_extra_ms;
	int64_t last_byte = 0;
	unsigned char junk[256];
	size_t discarded = 0;

	if (fd < 0)
		return;
	for (;;) {
		int64_t now = time_mono_ms();
		int64_t wait;
		if (now >= give_up)
			break;
		if (now >= until_ms) {
			if (now - last_byte >= quiet_ms)
				break; /* past the window, and quiet: done */
			wait = last_byte + quiet_ms - now;
		} else {
			wait = until_ms - now;
		}
		if (wait > give_up - now)
			wait = give_up - now;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, (int)wait);
		if (n == 0)
			continue;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		ssize_t got = read(fd, junk, sizeof(junk));
		if (got <= 0)
			break;
		discarded += (size_t)got;
		last_byte = time_mono_ms();
	}
	if (discarded)
		log_debug("%s: discarded %zu late byte(s)", io->name, discarded);
}

/* The silence that ends a frame: the port's byte time-out, but never below 5 ms. */
static int frame_gap_ms(const struct mbio *io)
{
	return io->port->byte_timeout_ms > 5 ? io->port->byte_timeout_ms : 5;
}

static int link_open(struct mbio *io, int timeout_ms, char *reason, size_t len)
{
	const struct serial_port_config *p = io->port;
	io->ctx = modbus_new_rtu(p->device, p->baudrate, p->parity, p->data_bits, p->stop_bits);
	if (!io->ctx) {
		snprintf(reason, len, "cannot create context: %s", modbus_strerror(errno));
		return MB_ERR_MODBUS;
	}
	modbus_set_response_timeout(io->ctx, (uint32_t)(timeout_ms / 1000),
				    (uint32_t)(timeout_ms % 1000) * 1000);
	if (modbus_connect(io->ctx) == -1) {
		int err = errno;
		snprintf(reason, len, "cannot open %s: %s", io->port->device, modbus_strerror(err));
		modbus_free(io->ctx);
		io->ctx = NULL;
		return MB_ERR_MODBUS;
	}
	if (flock(modbus_get_socket(io->ctx), LOCK_EX | LOCK_NB) != 0) {
		/* Two processes on one serial line would interleave their frames and read each
		 * other's answers. The daemon holds this lock while it has the port open, so a
		 * `modbridge read` or `modbridge at` started beside it is refused instead. */
		int err = errno;
		if (err == EWOULDBLOCK)
			snprintf(reason, len,
				 "%s is in use by another process (is the daemon running?)",
				 io->port->device);
		else
			snprintf(reason, len, "cannot lock %s: %s", io->port->device,
				 strerror(err));
		modbus_close(io->ctx);
		modbus_free(io->ctx);
		io->ctx = NULL;
		return MB_ERR_MODBUS;
	}
	/* On a real RS-485 UART this enables the kernel's direction control; a pty or a USB
	 * adapter with automatic direction answers ENOTTY, which just means "not an RS-485
	 * UART", so the failure is deliberately ignored. */
	(void)modbus_rtu_set_serial_mode(io->ctx, MODBUS_RTU_RS485);
	int bt = io->port->byte_timeout_ms;
	modbus_set_byte_timeout(io->ctx, (uint32_t)(bt / 1000), (uint32_t)(bt % 1000) * 1000);
	/* Stale bytes from a previous user of the line (or a socat pty) must not be taken
	 * for the first reply. */
	modbus_flush(io->ctx);
	io->connected = 1;
	if (io->lost) {
		io->lost = false;
		log_info("serial port %s: available again", io->name);
	}
	return 0;
}

/* The link is gone (a vanished serial port): reopen next time. */
static void link_lost(struct mbio *io, const char *reason)
{
	if (!io->lost)
		log_warn("serial port %s: lost (%s); reopening it at the next request", io->name,
			 reason);
	link_close(io);
	io->lost = true;
}

static bool same_request(const struct late_window *w, int function, uint16_t start, uint16_t count)
{
	return w->function == function && w->start == start && w->count == count;
}

/*
 * RTU, before a request: wait out a late-answer window of this slave unless this is a
 * retry of the same request, keep the silent interval, and flush. Returns whether the
 * request goes out while an earlier identical one may still be answered.
 */
static bool rtu_before_request(struct mbio *io, int slave, int function, uint16_t start,
			       uint16_t count, int timeout_ms)
{
	struct late_window *w = &io->late[slave & 0xFF];
	int64_t now = time_mono_ms();

	if (now < w->until_ms && !same_request(w, function, start, count)) {
		drain_until(io, w->until_ms, frame_gap_ms(io), timeout_ms);
		io->last_activity_us = mono_us();
	}
	int64_t quiet_at = io->last_activity_us + io->silent_us;
	int64_t now_us = mono_us();
	if (now_us < quiet_at) {
		struct timespec ts = {(time_t)((quiet_at - now_us) / 1000000),
				      (long)((quiet_at - now_us) % 1000000) * 1000};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	modbus_flush(io->ctx);
	return time_mono_ms() < w->until_ms;
}

/* RTU: opens (or extends) the window in which a late answer of slave may still come. */
static void rtu_open_window(struct mbio *io, int slave, int function, uint16_t start,
			    uint16_t count, int64_t until_ms)
{
	struct late_window *w = &io->late[slave & 0xFF];
	/* Only the latest request matters: a different one was sent only after the earlier
	 * window had passed (rtu_before_request), so it can never be shortened by this. */
	if (until_ms > w->until_ms)
		w->until_ms = until_ms;
	w->function = function;
	w->start = start;
	w->count = count;
}

/*
 * What every request does after libmodbus returns (err: 0, or the errno of the failure):
 * classify the answer, keep the per-slave late-reply window (see the top of this file),
 * and leave the link ready for the next request. Returns 0 or MB_ERR_MODBUS with reason.
 */
static int finish_request(struct mbio *io, int err, bool pending, int slave, int function,
			  uint16_t start, uint16_t count, int timeout_ms, int64_t sent_ms,
			  char *reason, size_t reason_len)
{
	liveness_beat_current();
	io->last_activity_us = mono_us();

	bool exception = err >= EMBXILFUN && err <= EMBXGTAR;
	if (err == 0 || exception) {
		/* A complete, well-formed answer: the link is in sync. But if an identical
		 * request was still outstanding, that answer may have been its, and ours may
		 * still come: keep the slave's window open past our own time-out. */
		if (pending)
			rtu_open_window(io, slave, function, start, count,
					sent_ms + 2LL * timeout_ms);
		if (!exception)
			return 0;
		io->last_exception = err - MODBUS_ENOBASE;
		describe_error(err, reason, reason_len);
		return MB_ERR_MODBUS;
	}

	describe_error(err, reason, reason_len);
	if (err == EBADF || err == EIO || err == ENXIO || err == ENODEV || err == ECONNRESET ||
	    err == EPIPE) {
		/* The serial device vanished (a USB adapter unplugged, a pty closed). */
		link_lost(io, reason);
		return MB_ERR_MODBUS;
	}
	if (err == ETIMEDOUT) {
		/* No answer (yet): a late one may still come until one more time-out. */
		rtu_open_window(io, slave, function, start, count, time_mono_ms() + timeout_ms);
	} else {
		/* A garbled or foreign frame: let the burst on the line pass, and allow for our
		 * own answer still being on its way. */
		drain_until(io, time_mono_ms() + frame_gap_ms(io), frame_gap_ms(io), timeout_ms);
		rtu_open_window(io, slave, function, start, count, sent_ms + 2LL * timeout_ms);
	}
	modbus_flush(io->ctx);
	io->last_activity_us = mono_us();
	return MB_ERR_MODBUS;
}

int mbio_read(struct mbio *io, int slave, int function, uint16_t start, uint16_t count,
	      int timeout_ms, uint16_t *dest, char *reason, size_t reason_len)
{
	bool pending = false;
	int64_t sent_ms;
	int rc;

	liveness_beat_current(); /* a request is a sign of life of the thread serving the bus */
	io->last_exception = 0;
	if (function < 1 || function > 4) {
		snprintf(reason, reason_len, "unsupported function 0x%02x", function);
		return MB_ERR_INVAL;
	}
	if (!io->connected && link_open(io, timeout_ms, reason, reason_len) != 0) {
		io->lost = true;
		return MB_ERR_IO;
	}

	modbus_set_slave(io->ctx, slave);
	modbus_set_response_timeout(io->ctx, (uint32_t)(timeout_ms / 1000),
				    (uint32_t)(timeout_ms % 1000) * 1000);
	pending = rtu_before_request(io, slave, function, start, count, timeout_ms);
	sent_ms = time_mono_ms();

	switch (function) {
	case 1:
	case 2: {
		uint8_t bits[MODBUS_MAX_READ_BITS];
		rc = function == 1 ? modbus_read_bits(io->ctx, start, count, bits)
				   : modbus_read_input_bits(io->ctx, start, count, bits);
		if (rc == count)
			for (int i = 0; i < count; i++)
				dest[i] = bits[i] ? 1 : 0;
		break;
	}
	case 3: rc = modbus_read_registers(io->ctx, start, count, dest); break;
	default: rc = modbus_read_input_registers(io->ctx, start, count, dest); break;
	}
	int err = rc == count ? 0 : rc == -1 ? errno : EMBBADDATA;
	return finish_request(io, err, pending, slave, function, start, count, timeout_ms, sent_ms,
			      reason, reason_len);
}

int mbio_write(struct mbio *io, int slave, int function, uint16_t address, uint16_t value,
	       int timeout_ms, char *reason, size_t reason_len)
{
	bool pending = false;
	int rc;

	liveness_beat_current();
	io->last_exception = 0;
	if (function != 5 && function != 6 && function != 15 && function != 16) {
		snprintf(reason, reason_len, "unsupported write function 0x%02x", function);
		return MB_ERR_INVAL;
	}
	if ((function == 5 || function == 15) && value > 1) {
		snprintf(reason, reason_len, "a coil is 0 or 1, not %u", value);
		return MB_ERR_INVAL;
	}
	if (!io->connected && link_open(io, timeout_ms, reason, reason_len) != 0) {
		io->lost = true;
		return MB_ERR_IO;
	}

	modbus_set_slave(io->ctx, slave);
	modbus_set_response_timeout(io->ctx, (uint32_t)(timeout_ms / 1000),
				    (uint32_t)(timeout_ms % 1000) * 1000);
	/* A write takes part in the late-reply windows like a read: a late echo of a write
	 * to the same slave must not be taken for the answer to the next request. */
	pending = rtu_before_request(io, slave, function, address, 1, timeout_ms);
	int64_t sent_ms = time_mono_ms();

	switch (function) {
	case 5: rc = modbus_write_bit(io->ctx, address, value); break;
	case 6: rc = modbus_write_register(io->ctx, address, value); break;
	case 15: {
		uint8_t bit = (uint8_t)value;
		rc = modbus_write_bits(io->ctx, address, 1, &bit);
		break;
	}
	default: rc = modbus_write_registers(io->ctx, address, 1, &value); break;
	}
	int err = rc == 1 ? 0 : rc == -1 ? errno : EMBBADDATA;
	return finish_request(io, err, pending, slave, function, address, 1, timeout_ms, sent_ms,
			      reason, reason_len);
}
