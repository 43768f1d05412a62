/*
 * busplan.h - the bus-time report of `modbridge check`.
 *
 * For each serial bus: every device's plan (blocks, requests per poll, bytes, estimated
 * line time), the requests and line time per period with the share of the period they
 * use, and warnings when the schedule cannot fit on the line. Each TCP endpoint gets its
 * devices' requests per poll. The figures come from the planner's model (planner.h),
 * not from measurements. Any device (RTU or TCP) whose worst read, time-out x attempts x
 * requests per poll, is not shorter than its period gets a warning too, naming its line.
 * Single-threaded; writes only to the given streams.
 */
#ifndef MODBRIDGE_BUSPLAN_H
#define MODBRIDGE_BUSPLAN_H

#include <stdio.h>

struct config;

/*
 * Writes the report for the logger devices of cfg to out and each warning, as
 * "FILE:LINE: bus NAME: message (warning)" (LINE: the port's, or the device's for a
 * device's own warning), to warn. Returns the number of warnings, or
 * a negative mb_error (MB_ERR_NOMEM).
 */
int busplan_report(const struct config *cfg, FILE *out, FILE *warn);

#endif
