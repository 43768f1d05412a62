/*
 * poller.h - the scheduler and bus workers.
 *
 * Devices are grouped into buses: all RTU devices on one serial port form one bus, and
 * all TCP devices at one host:port form another. A bus is served by one thread at a time,
 * which owns its Modbus link, so the requests of a serial line (or of one TCP connection)
 * are strictly serialized: each serial bus has its own thread, and the TCP buses share an
 * elastic pool that grows while endpoints are slow, so a slow or dead bus never delays
 * another for long (poller_internal.h lists the files). Each device is read at the instants that are
 * whole multiples of its period (wall clock, UTC), and every instant yields exactly one
 * reading, in instant order, whose ts_ms is the instant: the values, or an ERR one when
 * the instant was skipped (a read that overran it, a bus busy for its whole period). A read
 * that overruns skips instants rather than making the schedule drift.
 *
 * A device's blocks are read with the request optimiser's plan (planner.h), and typed
 * devices are decoded (decode.h); the reading is the same as reading the blocks one by
 * one. Failed requests are retried (the device's `retries`); a device that keeps failing
 * is polled less often until it answers, and every instant still yields a reading (an ERR
 * one when the device was not polled). docs/modbus.md describes the behaviour.
 *
 * Every reading (successful or failed) is handed to the sink, from the worker's thread.
 * The sink borrows the reading and must copy what it keeps.
 *
 * The poller is the only way to a bus: remote commands go through poller_execute, which
 * queues them behind the polls, and opens a bus nobody polls itself.
 *
 * Threading: poller_start and poller_stop from one thread (the daemon's); poller_execute
 * and poller_device_status from any thread while the poller runs; poll_device_now from any
 * thread, on a bus the poller does not hold. Ownership: the poller borrows cfg and its
 * devices (they must outlive it) and owns its threads, links and queues. Errors: negative
 * mb_error codes, as each function says.
 */
#ifndef MODBRIDGE_POLLER_H
#define MODBRIDGE_POLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

typedef void (*poll_sink_fn)(void *ctx, const struct reading *r);

struct poller;

/*
 * Starts the workers (a thread per serial bus, a pool for the TCP buses) for the devices of
 * cfg that have logger set. cfg must outlive the poller. Returns 0 and stores the poller
 * in *out, or MB_ERR_NOMEM (a thread or a link could not be made; nothing is left running).
 */
int poller_start(const struct config *cfg, poll_sink_fn sink, void *sink_ctx, struct poller **out);

/*
 * The oldest last sign of life (CLOCK_MONOTONIC ms, liveness.h) among the poller's threads:
 * each beats on every turn of its loop (a second apart at most while it waits) and on
 * every Modbus request. INT64_MAX when no thread runs (no device polled) or p is NULL.
 * From the thread that starts and stops the poller; takes no lock.
 */
int64_t poller_last_beat_ms(struct poller *p);

/* Stops the workers (a read in progress finishes first), joins them and frees. Remote
 * requests still waiting get MB_ERR_BUSY; it waits until every poller_execute caller has
 * returned. Accepts NULL. */
void poller_stop(struct poller *p);

/*
 * Polls one device once, now, on a fresh link (the CLI's "read", the router's Test
 * button). Fills *out (the caller calls reading_clear). Returns 0 when the reading was
 * taken (out->error tells whether the device answered), or MB_ERR_NOMEM.
 */
int poll_device_now(const struct device_config *dev, struct reading *out);

/*
 * A remote read or write (the GETMODBUS and SETMODBUS commands), executed by the worker
 * that owns the bus, between two device reads: never interleaved with a poll on the line
 * nor with another request. Only the poller touches a bus (see poller_execute).
 */
struct poll_request {
	bool write;   /* false: read count values into values; true: write values[0] */
	int slave;    /* RTU slave address or TCP unit id */
	int function; /* read: 1..4; write: 5, 6, 15 or 16 (see mbio_write) */
	uint16_t address;
	uint16_t count;   /* read: how many values; write: 1 */
	uint16_t *values; /* caller's buffer of count entries */
	int timeout_ms;   /* response time-out of the request */
	/* Or a whole device read with its plan (poller_read_device): the fields above are
	 * unused, and reading is filled. */
	const struct device_config *device;
	struct reading *reading;
	/* The outcome, valid after poller_execute returned 0: 0, MB_ERR_IO (link not open),
	 * MB_ERR_MODBUS, MB_ERR_INVAL, or MB_ERR_BUSY (queued when the poller stopped: never
	 * sent). */
	int rc;
	char reason[READING_ERROR_MAX]; /* why it failed: "timeout", "exception 2 ..." */
	/* Private to the poller. */
	int state;
	struct poll_request *next;
};

/*
 * Executes req on the bus of the serial port port (when not NULL) or of the Modbus TCP
 * endpoint host:tcp_port, and waits for its outcome. A bus with a polled device is served
 * by its worker: req is queued there and runs between two device reads. A bus without one
 * is opened for the request on the calling thread, one request at a time per bus. p may be
 * NULL (no daemon in this process: `modbridge at`): the bus is then opened directly.
 * Returns 0 with the outcome in req->rc and req->reason; MB_ERR_BUSY when the poller is
 * stopping, or when the request waited wait_ms for its turn without starting (it is then
 * withdrawn, never executed late: nothing was sent); MB_ERR_NOMEM. Any thread; it blocks
 * for the wait and the transaction (its time-out bounds it); req is borrowed until the
 * call returns.
 */
int poller_execute(struct poller *p, const struct serial_port_config *port, const char *host,
		   int tcp_port, struct poll_request *req, int wait_ms);

/*
 * Reads dev once, now, as a poll would (its plan, retries, decoding), through the queue of
 * the worker that serves dev's line (a serial port is matched by its device path, so dev
 * may come from another configuration, such as one not saved yet: the web UI's Test), or
 * on a fresh link when nobody polls that line. Fills *out (the caller calls reading_clear).
 * Returns 0 when the reading was taken (out->error tells whether the device answered),
 * MB_ERR_BUSY (the line stayed busy for wait_ms, or the poller stops) or MB_ERR_NOMEM.
 */
int poller_read_device(struct poller *p, const struct device_config *dev, struct reading *out,
		       int wait_ms);

/* Why a poll failed, from its reading's ERR (for metrics). */
enum poll_failure {
	POLL_FAIL_TIMEOUT,    /* no answer in time */
	POLL_FAIL_EXCEPTION,  /* the device answered with a Modbus exception */
	POLL_FAIL_CONNECTION, /* the port or the TCP connection could not be had, or was lost */
	POLL_FAIL_BAD_ANSWER, /* CRC, wrong slave, malformed data */
	POLL_FAIL_OTHER,
	POLL_FAIL_KINDS
};

/* Why an instant got no poll (its message is an ERR reading without one). */
enum poll_skip {
	POLL_SKIP_NOT_POLLED, /* the device is down and backed off */
	POLL_SKIP_BUS_BUSY,   /* the bus was busy for the instant's whole period */
	POLL_SKIP_OVERRAN,    /* the device's previous read was still running */
	POLL_SKIP_KINDS
};

/* Upper bounds (seconds) of the poll-duration histogram's buckets; +Inf is implied. */
#define POLL_LATENCY_BUCKETS 10
extern const double poll_latency_bounds_s[POLL_LATENCY_BUCKETS];

/* The class of a failed poll's ERR text (as modbus_io.c and devread.c word them). */
enum poll_failure poll_failure_of(const char *error);

/* Names for metrics labels: "timeout", "exception", ...; "not_polled", "bus_busy", ... */
const char *poll_failure_name(enum poll_failure f);
const char *poll_skip_name(enum poll_skip s);

/* What the worker knows about one device, for the status command and metrics. */
struct poll_device_status {
	uint64_t reads;                     /* polls since the poller started */
	uint64_t failures;                  /* of which failed */
	int64_t last_read_ms;               /* wall clock of the last poll, 0: none yet */
	int64_t last_ok_ms;                 /* last successful poll, 0: none yet */
	char last_error[READING_ERROR_MAX]; /* reason of the last poll's failure, "" if it worked */
	uint64_t failures_by[POLL_FAIL_KINDS]; /* failures, by class */
	uint64_t skipped[POLL_SKIP_KINDS];     /* instants without a poll, by reason */
	/* How long polls took: polls per bucket (not cumulative), the last one being > the
	 * last bound, and the sum. */
	uint64_t latency_count[POLL_LATENCY_BUCKETS + 1];
	double latency_sum_s;
};

/* What the poller knows about one bus (a serial port, or a Modbus TCP endpoint). */
struct poll_bus_status {
	const char *name;                      /* "com2 (/dev/ttyS1)", "10.0.0.5:502" */
	const struct serial_port_config *port; /* NULL for Modbus TCP */
	size_t devices;
	double busy_s;     /* time spent in polls and remote requests since the start */
	double busy_ratio; /* busy time / wall time over the last minute or so (0 at first) */
};

/* How many buses the poller has (0 for NULL); their index is 0..n-1. */
size_t poller_bus_count(struct poller *p);

/* Copies the status of bus i into *out. Returns 0 or MB_ERR_NOTFOUND. Any thread; the
 * strings belong to the poller (valid until poller_stop). */
int poller_bus_status(struct poller *p, size_t i, struct poll_bus_status *out);

/*
 * Copies the status of dev (a device of the poller's config) into *out. Returns 0, or
 * MB_ERR_NOTFOUND when the device is not polled (logger off, or Modbus disabled). Any
 * thread.
 */
int poller_device_status(struct poller *p, const struct device_config *dev,
			 struct poll_device_status *out);

#endif
