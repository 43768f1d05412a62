/*
 * poller.h - the scheduler and bus workers.
 *
 * Devices are grouped into buses: all RTU devices on one serial port form one bus, and
 * all TCP devices at one host:port form another. Each bus gets one worker thread that
 * owns its Modbus link, so the requests of a serial line are strictly serialized and a
 * slow or dead bus never delays another. Each device is read at the instants that are
 * whole multiples of its period (wall clock, UTC); a read that overruns skips the
 * instants it missed rather than drifting.
 *
 * A device's blocks are read with the request optimiser's plan (planner.h), and typed
 * devices are decoded (decode.h); the reading is the same as reading the blocks one by
 * one. Failed requests are retried (the device's `retries`); a device that keeps failing
 * is polled less often until it answers, and every instant still yields a reading (an ERR
 * one when the device was not polled). docs/modbus.md describes the behaviour.
 *
 * Every reading (successful or failed) is handed to the sink, from the worker's thread.
 * The sink borrows the reading and must copy what it keeps.
 */
#ifndef MODBRIDGE_POLLER_H
#define MODBRIDGE_POLLER_H

#include "config.h"
#include "message.h"

typedef void (*poll_sink_fn)(void *ctx, const struct reading *r);

struct poller;

/*
 * Starts one worker per bus for the devices of cfg that have logger set. cfg must outlive
 * the poller. Returns 0 and stores the poller in *out, or a negative mb_error.
 */
int poller_start(const struct config *cfg, poll_sink_fn sink, void *sink_ctx, struct poller **out);

/* Stops the workers (a read in progress finishes first), joins them and frees. Accepts NULL. */
void poller_stop(struct poller *p);

/*
 * Polls one device once, now, on a fresh link (the CLI's "read", the router's Test
 * button). Fills *out (the caller calls reading_clear). Returns 0 when the reading was
 * taken (out->error tells whether the device answered), or MB_ERR_NOMEM.
 */
int poll_device_now(const struct device_config *dev, struct reading *out);

#endif
