/*
 * notify.h - telling the service manager how the daemon is: the sd_notify protocol.
 *
 * This is the only module that includes <systemd/...> (libsystemd). Under a unit with
 * Type=notify, systemd sets NOTIFY_SOCKET, and WATCHDOG_USEC when the unit has WatchdogSec=.
 * The daemon says READY=1 once the store is open and the buses are up, RELOADING=1 and
 * READY=1 around a restart (SIGHUP, SETPARAM, REBOOT), STOPPING=1 when it stops, STATUS=
 * lines with the backlog and the uplink's state, and WATCHDOG=1 while its worker threads
 * show signs of life (liveness.h; daemon.c decides). Without NOTIFY_SOCKET (run by hand,
 * by another supervisor, in a test) every call does nothing, so the daemon runs the same.
 *
 * Threads: the daemon's main thread only. Errors: none are returned. The protocol is one
 * datagram per call, best effort: a failure to send is logged once at debug level, and the
 * daemon carries on (systemd notices a missing READY or WATCHDOG by itself).
 */
#ifndef MODBRIDGE_NOTIFY_H
#define MODBRIDGE_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads the environment (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID) once. */
void notify_init(void);

/* True when a service manager listens (NOTIFY_SOCKET is set). */
bool notify_active(void);

/* The watchdog period asked for (WATCHDOG_USEC, in ms), or 0 when there is no watchdog
 * for this process. */
int64_t notify_watchdog_ms(void);

/* READY=1, with a STATUS= line (status may be NULL). */
void notify_ready(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC=, which newer systemd versions want), and a STATUS=. */
void notify_reloading(const char *status);

/* STOPPING=1, and a STATUS=. */
void notify_stopping(const char *status);

/* STATUS=status. */
void notify_status(const char *status);

/* WATCHDOG=1: every thread that must be alive is. */
void notify_watchdog(void);

#endif
