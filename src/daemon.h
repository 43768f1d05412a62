/*
 * daemon.h - `modbridge run`: wires poller -> store -> forwarder and handles signals.
 *
 * Start-up problems (store cannot be opened, TLS files unusable) are fatal and reported;
 * everything after start-up is retried, never fatal. SIGTERM/SIGINT stop the workers,
 * give messages in flight a moment to be confirmed, and close the store: every reading
 * that was stored and not confirmed is sent after the next start.
 */
#ifndef MODBRIDGE_DAEMON_H
#define MODBRIDGE_DAEMON_H

#include "config.h"

/* Runs until SIGTERM or SIGINT. Returns 0 on a clean stop, or a negative mb_error when
 * start-up failed. */
int daemon_run(const struct config *cfg);

#endif
