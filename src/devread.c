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

/*
 * One transaction, with the device's retries: a time-out, a garbled answer or a lost
 * connection is tried again; an exception (the device's considered refusal) or a link
 * that cannot even be opened is not. A device that is backing off gets one attempt.
 */
static int read_tx(struct mbio *io, struct devread *d, bool single_attempt,
		   const struct plan_tx *tx, uint16_t *buf, char *reason, size_t reason_len)
{
	const struct device_config *dev = d->dev;
	int attempts = single_attempt ? 1 : 1 + dev->retries;
	int rc = MB_ERR_MODBUS;

	for (int a = 0; a < attempts; a++) {
		d->requests++;
		rc = mbio_read(io, dev->slave, dev->function, tx->start, tx->count,
			       device_timeout_ms(dev), buf, reason, reason_len);
		if (rc == 0 || rc == MB_ERR_IO || rc == MB_ERR_INVAL || mbio_last_exception(io))
			break;
	}
	return rc;
}

int devread_read(struct devread *d, struct mbio *io, bool single_attempt, struct reading *r)
{
	const struct device_config *dev = d->dev;
	size_t total = blocks_total(dev->blocks, dev->block_count);
	uint16_t buf[BLOCKS_MAX_BITS]; /* one transaction's values */

	memset(r, 0, sizeof(*r));
	r->device = dev;
	r->ts_ms = time_now_ms();
	r->values = calloc(total ? total : 1, sizeof(uint16_t));
	if (!r->values)
		return MB_ERR_NOMEM;
	r->value_count = total;
	d->requests = 0;
	d->refused = false;

again:;
	const struct plan *plan = d->use_exact ? &d->exact : &d->plan;
	for (size_t k = 0; k < plan->count; k++) {
		const struct plan_tx *tx = &plan->tx[k];
		char reason[READING_ERROR_MAX - 32];
		int rc = read_tx(io, d, single_attempt, tx, buf, reason, sizeof(reason));
		if (rc == 0) {
			planner_scatter(dev->blocks, dev->block_count, tx, buf, r->values);
			continue;
		}
		int exception = mbio_last_exception(io);
		if (tx->merged && !d->use_exact && (exception == 2 || exception == 3)) {
			/* The merged read touched addresses the device does not serve (or more
			 * than it serves at once). Its exact blocks are what the user asked for:
			 * read those, now and from now on. */
			log_warn("device %s: refused the merged read %u+%u (%s); reading its blocks as configured from now on",
				 dev->id, tx->start, tx->count, reason);
			d->use_exact = true;
			goto again;
		}
		d->refused = exception != 0;
		/* Name the block only when the block itself failed, not the link. */
		const struct block *b = &dev->blocks[tx->first_block];
		if (dev->block_count > 1 && rc == MB_ERR_MODBUS)
			snprintf(r->error, sizeof(r->error), "block %u+%u: %s", b->start, b->count,
				 reason);
		else
			snprintf(r->error, sizeof(r->error), "%s", reason);
		/* A failed reading carries no values: the JSON has ERR instead of V. */
		free(r->values);
		r->values = NULL;
		r->value_count = 0;
		return 0;
	}
	if (decode_reading(r) != 0) {
		reading_clear(r);
		return MB_ERR_NOMEM;
	}
	return 0;
}
