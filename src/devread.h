/*
 * devread.h - reading one device once: its blocks, with the request optimiser's plan.
 *
 * A struct devread holds a device's two request plans (planner.h): the optimised one it is
 * read with, and its exact blocks, the fallback for good when the device refuses a merged
 * read. devread_read() sends the plan's transactions with the device's retries, scatters
 * the values into the blocks' places and decodes typed devices (decode.h), so a reading is
 * the same whatever the plan. The bus workers (schedule.c) and the CLI's `read`
 * (poll_device_now) use it.
 *
 * Threading: a devread and the link it reads on belong to one thread at a time (the
 * worker serving the bus). Ownership: the devread borrows its device and owns its plans
 * (devread_free releases them); the reading it fills is the caller's.
 */
#ifndef MODBRIDGE_DEVREAD_H
#define MODBRIDGE_DEVREAD_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
