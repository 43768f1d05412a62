/*
 * daemon.h - `modbridge run`: wires poller -> store -> forwarder and handles signals.
 *
 * Start-up problems (store cannot be opened, TLS files unusable) are fatal and reported;
 * everything after start-up is retried, never fatal. SIGTERM/SIGINT stop the workers,
 * give messages in flight a moment to be confirmed, and close the store: every reading
 * that was stored and not confirmed is sent after the next start. Remote commands
 * (remote.c) run beside the poller and share the forwarder's MQTT connection.
 */
#ifndef MODBRIDGE_DAEMON_H
#define MODBRIDGE_DAEMON_H

struct config;

/*
 * Runs until SIGTERM or SIGINT. SIGHUP (and the REBOOT and SETPARAM remote commands)
 * restart it with the configuration file loaded again. Returns 0 on a clean stop, or a
 * negative mb_error when start-up failed. cfg stays the caller's; the daemon may set its
 * identity from the modem.
 */
int daemon_run(struct config *cfg);

#endif
