/*
 * devread.h - reading one device once: its blocks, with the request optimiser's plan.
 *
 * A struct devread holds a device's two request plans (planner.h): the optimised one it is
 * read with, and its exact blocks, the fallback for good when the device refuses a merged
 * read. A read sends the plan's transactions one after the other with the device's
 * retries, scatters the values into the blocks' places and decodes typed devices
 * (decode.h), so a reading is the same whatever the plan.
 *
 * Two ways to drive it: devread_read() does a whole read on an RTU link (modbus_io.h), and
 * the steps (devread_start, devread_next, devread_result, devread_finish) let the Modbus
 * TCP event loop (tcpbus.c) send each transaction and come back with its outcome; both
 * take the same decisions (retries, the fall-back to the exact blocks, the ERR text).
 *
 * Threading: a devread and the link it reads on belong to one thread at a time (the
 * thread serving the bus). Ownership: the devread borrows its device and owns its plans
 * (devread_free releases them); the reading it fills is the caller's.
 */
#ifndef MODBRIDGE_DEVREAD_H
#define MODBRIDGE_DEVREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "planner.h"
#include "reading.h"

struct mbio;

struct devread {
	const struct device_config *dev;
	/* Request plans: plan is what we read with; exact is the blocks as configured, the
	 * fallback when the device refuses a merged read. */
	struct plan plan;
	struct plan exact;
	bool use_exact;
	size_t requests; /* requests sent by the last read (retries included) */
	bool refused;    /* the last read failed on an exception: the device answered */
	/* The exception of the last read that was refused (for the log): code, request. */
	int exception;
	int exception_function;
	uint16_t exception_start, exception_count;
	/* A read in steps: where it is. */
	size_t tx_index; /* the transaction of the plan being read */
	int attempt;     /* attempts of it so far */
	int attempts;    /* allowed per transaction: 1 + retries, or 1 (backing off) */
	bool done;       /* the reading is complete (values, or error) */
};

/* What one transaction of a read in steps asks for. */
struct devread_tx {
	int slave;
	int function;
	uint16_t start, count;
	int timeout_ms;
};

/* Makes both plans of dev into *d (zeroed first). Returns 0 or MB_ERR_NOMEM; on failure
 * devread_free still releases what was made. */
int devread_plan(struct devread *d, const struct device_config *dev);

/* Frees the plans. */
void devread_free(struct devread *d);

/*
 * Reads the device once on io into *r (the caller calls reading_clear; r->ts_ms is the
 * time the read started). single_attempt: no retries (a device that backs off). Returns 0
 * when the reading was taken, r->error telling whether the device answered (a failed
 * reading has no values), or MB_ERR_NOMEM (r is then empty).
 */
int devread_read(struct devread *d, struct mbio *io, bool single_attempt, struct reading *r);

/* Starts a read in steps into *r (as devread_read: the caller calls reading_clear).
 * Returns 0 or MB_ERR_NOMEM (r is then empty). */
int devread_start(struct devread *d, bool single_attempt, struct reading *r);

/* The next transaction to send into *tx; false when the read is complete. */
bool devread_next(const struct devread *d, struct devread_tx *tx);

/*
 * The outcome of the transaction devread_next gave: rc 0 with its values in buf, or
 * MB_ERR_IO (the link could not be opened: not retried), MB_ERR_MODBUS (a time-out, a bad
 * answer, a lost link: retried; or an exception, exception != 0: not retried) with reason.
 */
void devread_result(struct devread *d, struct reading *r, int rc, int exception,
		    const uint16_t *buf, const char *reason);

/* Ends a read in steps once devread_next said false: decodes typed values. Returns 0, or
 * MB_ERR_NOMEM (r is then empty). */
int devread_finish(struct devread *d, struct reading *r);

/* After a read refused with an exception (d->refused): "exception 2 (illegal data address)
 * for holding registers 100..109", for the log. */
void devread_exception_text(const struct devread *d, char *buf, size_t len);

#endif
