/*
 * devread.c - reading a device with its request plan; see devread.h.
 *
 * A device's blocks are read with the transactions of its plan (planner.h: merged across
 * small gaps, split at the request limit), each transaction's values are scattered back
 * into the blocks' places, and typed devices are decoded (decode.h), so the reading is the
 * same whatever the plan. A transaction that fails on a time-out or a garbled answer is
 * retried (the device's `retries`); a merged transaction the device refuses as an illegal
 * address makes the device fall back, for good, to its exact blocks. The first failed
 * transaction ends the reading: a device that does not answer costs its bus (1 + retries)
 * time-outs per poll, no more.
 */
#include "devread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "decode.h"
#include "error.h"
#include "log.h"
#include "mbtcp.h"
#include "modbus_io.h"
#include "timeutil.h"

static int device_timeout_ms(const struct device_config *dev)
{
	return dev->transport == TRANSPORT_RTU ? dev->serial->timeout_ms : dev->timeout_ms;
}

int devread_plan(struct devread *d, const struct device_config *dev)
{
	struct line_timing line;
	const struct line_timing *lp = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	d->dev = dev;
	if (dev->transport == TRANSPORT_RTU) {
		planner_line_timing(dev->serial, &line);
		lp = &line;
	}
	rc = planner_plan(dev->blocks, dev->block_count, dev->function, (unsigned)dev->max_per_read,
			  false, lp, &d->exact);
	if (rc == 0)
		rc = planner_plan(dev->blocks, dev->block_count, dev->function,
				  (unsigned)dev->max_per_read, dev->optimize, lp, &d->plan);
	if (rc == 0)
		log_debug("device %s: %zu block(s) read with %zu request(s) per poll%s", dev->id,
			  dev->block_count, d->plan.count, dev->optimize ? "" : " (optimize off)");
	return rc;
}

void devread_free(struct devread *d)
{
	planner_plan_free(&d->plan);
	planner_plan_free(&d->exact);
}

/* Fills r->decoded for a typed device from its registers. Returns 0 or MB_ERR_NOMEM. */
static int decode_reading(struct reading *r)
{
	const struct device_config *dev = r->device;
	/* Plain words (the router's V) stay on the seed's path, byte for byte; a word with
	 * swapped bytes (BADC, DCBA) is decoded like any other type. */
	bool swapped = dev->order == REG_ORDER_BADC || dev->order == REG_ORDER_DCBA;
	if (dev->function <= 2 || (dev->type == REG_TYPE_WORD && !swapped))
		return 0;
	size_t n = r->value_count / decode_width(dev->type);
	r->decoded = calloc(n ? n : 1, sizeof(*r->decoded));
	if (!r->decoded)
		return MB_ERR_NOMEM;
	/* Every block holds whole values (config.c checks it), so the concatenation does. */
	r->decoded_count =
		decode_registers(dev->type, dev->order, r->values, r->value_count, r->decoded);
	return 0;
}

/* The attempts a transaction gets: retries after a time-out, a garbled answer or a lost
 * connection; a device that is backing off gets one. */
int devread_start(struct devread *d, bool single_attempt, struct reading *r)
{
	const struct device_config *dev = d->dev;
	size_t total = blocks_total(dev->blocks, dev->block_count);

	memset(r, 0, sizeof(*r));
	r->device = dev;
	r->ts_ms = time_now_ms();
	r->values = calloc(total ? total : 1, sizeof(uint16_t));
	if (!r->values)
		return MB_ERR_NOMEM;
	r->value_count = total;
	d->requests = 0;
	d->refused = false;
	d->exception = 0;
	d->tx_index = 0;
	d->attempt = 0;
	d->attempts = single_attempt ? 1 : 1 + dev->retries;
	d->done = false;
	return 0;
}

static const struct plan *current_plan(const struct devread *d)
{
	return d->use_exact ? &d->exact : &d->plan;
}

bool devread_next(const struct devread *d, struct devread_tx *tx)
{
	const struct plan *plan = current_plan(d);
	if (d->done || d->tx_index >= plan->count)
		return false;
	const struct plan_tx *t = &plan->tx[d->tx_index];
	*tx = (struct devread_tx){
		.slave = d->dev->slave,
		.function = d->dev->function,
		.start = t->start,
		.count = t->count,
		.timeout_ms = device_timeout_ms(d->dev),
	};
	return true;
}

void devread_result(struct devread *d, struct reading *r, int rc, int exception,
		    const uint16_t *buf, const char *reason)
{
	const struct device_config *dev = d->dev;
	const struct plan *plan = current_plan(d);
	const struct plan_tx *tx = &plan->tx[d->tx_index];

	d->requests++;
	d->attempt++;
	if (rc == 0) {
		planner_scatter(dev->blocks, dev->block_count, tx, buf, r->values);
		d->tx_index++;
		d->attempt = 0;
		return;
	}
	/* A time-out, a garbled answer or a lost connection is tried again; an exception (the
	 * device's considered refusal) or a link that cannot even be opened is not. */
	if (rc == MB_ERR_MODBUS && !exception && d->attempt < d->attempts)
		return;
	if (tx->merged && !d->use_exact && (exception == 2 || exception == 3)) {
		/* The merged read touched addresses the device does not serve (or more than it
		 * serves at once). Its exact blocks are what the user asked for: read those, now
		 * and from now on. */
		log_warn("device %s: refused the merged read %u+%u (%s); reading its blocks as configured from now on",
			 dev->id, tx->start, tx->count, reason);
		d->use_exact = true;
		d->tx_index = 0;
		d->attempt = 0;
		return;
	}
	d->refused = exception != 0;
	if (exception) {
		d->exception = exception;
		d->exception_function = dev->function;
		d->exception_start = tx->start;
		d->exception_count = tx->count;
	}
	/* Name the block only when the block itself failed, not the link. */
	const struct block *b = &dev->blocks[tx->first_block];
	if (dev->block_count > 1 && rc == MB_ERR_MODBUS)
		snprintf(r->error, sizeof(r->error), "block %u+%u: %.*s", b->start, b->count,
			 READING_ERROR_MAX - 33, reason);
	else
		snprintf(r->error, sizeof(r->error), "%.*s", READING_ERROR_MAX - 33, reason);
	/* A failed reading carries no values: the JSON has ERR instead of V. */
	free(r->values);
	r->values = NULL;
	r->value_count = 0;
	d->done = true;
}

int devread_finish(struct devread *d, struct reading *r)
{
	d->done = true;
	if (r->error[0])
		return 0;
	if (decode_reading(r) != 0) {
		reading_clear(r);
		return MB_ERR_NOMEM;
	}
	return 0;
}

void devread_exception_text(const struct devread *d, char *buf, size_t len)
{
	static const char *const what[] = {NULL, "coils", "discrete inputs", "holding registers",
					   "input registers"};
	int code = d->exception;
	int f = d->exception_function;
	const char *name = mbtcp_exception_name(code);
	const char *kind = f >= 1 && f <= 4 ? what[f] : "addresses";

	if (!code) {
		snprintf(buf, len, "no exception");
		return;
	}
	snprintf(buf, len, "exception %d%s%s%s for %s %u..%u", code, name ? " (" : "",
		 name ? name : "", name ? ")" : "", kind, (unsigned)d->exception_start,
		 (unsigned)d->exception_start + d->exception_count - 1u);
}

int devread_read(struct devread *d, struct mbio *io, bool single_attempt, struct reading *r)
{
	uint16_t buf[BLOCKS_MAX_BITS]; /* one transaction's values */
	struct devread_tx tx;

	if (devread_start(d, single_attempt, r) != 0)
		return MB_ERR_NOMEM;
	while (devread_next(d, &tx)) {
		char reason[READING_ERROR_MAX];
		int rc = mbio_read(io, tx.slave, tx.function, tx.start, tx.count, tx.timeout_ms,
				   buf, reason, sizeof(reason));
		devread_result(d, r, rc, rc == 0 ? 0 : mbio_last_exception(io), buf, reason);
	}
	return devread_finish(d, r);
}
