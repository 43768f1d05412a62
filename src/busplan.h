/*
 * busplan.h - the bus-time report of `modbridge check`.
 *
 * For each serial bus: every device's plan (blocks, requests per poll, bytes, estimated
 * line time), the requests and line time per period with the share of the period they
 * use, and warnings when the schedule cannot fit on the line. Each TCP endpoint gets its
 * devices' requests per poll. The figures come from the planner's model (planner.h),
 * not from measurements. Any device (RTU or TCP) whose worst read, time-out x attempts x
 * requests per poll, is not shorter than its period gets a warning too, naming its line.
 * Any thread (pure computation); writes only to the given streams.
 */
#ifndef MODBRIDGE_BUSPLAN_H
#define MODBRIDGE_BUSPLAN_H

#include <stdint.h>
#include <stdio.h>

struct config;
struct serial_port_config;

/*
 * The planner's estimate of one scan of a serial bus, every logger device of cfg on port
 * read once (the burst when all are due at the same instant), into *ns. Returns 0 or
 * MB_ERR_NOMEM. For the metrics (modbridge_bus_planned_scan_seconds).
 */
int busplan_scan_ns(const struct config *cfg, const struct serial_port_config *port, int64_t *ns);

/*
 * Writes the report for the logger devices of cfg to out and each warning, as
 * "FILE:LINE: bus NAME: message (warning)" (LINE: the port's, or the device's for a
 * device's own warning), to warn. Returns the number of warnings, or
 * a negative mb_error (MB_ERR_NOMEM).
 */
int busplan_report(const struct config *cfg, FILE *out, FILE *warn);

#endif
