/*
 * liveness.h - signs of life of the daemon's worker threads, and their names.
 *
 * The service manager's watchdog (notify.h) must stop being fed when a thread that does
 * the work is stuck: a deadlock, a write that never returns, a read that hangs. So each
 * such thread (a bus worker, the store writer, the forwarder) beats its own struct
 * liveness on every turn of its loop, and the waits of those loops are at most about a
 * second long: a thread that is idle but answers still beats. The daemon's main thread
 * reads the beats and feeds the watchdog only while every one is recent (daemon.c).
 *
 * Threads: a struct liveness is written by its one thread and read by any (atomic, no lock,
 * so reading never waits behind a stuck thread). thread_set_name() names the calling
 * thread, as `top -H`, `ps -L` and /proc/PID/task/TID/comm show it.
 */
#ifndef MODBRIDGE_LIVENESS_H
#define MODBRIDGE_LIVENESS_H

#include <stdatomic.h>
#include <stdint.h>

#include "timeutil.h"

struct liveness {
	_Atomic int64_t beat_ms; /* CLOCK_MONOTONIC ms of the last sign of life; 0: none yet */
};

/* The calling thread is alive and turning. */
static inline void liveness_beat(struct liveness *l)
{
	atomic_store_explicit(&l->beat_ms, time_mono_ms(), memory_order_relaxed);
}

/* When the thread last beat (CLOCK_MONOTONIC ms), 0 when it never did. */
static inline int64_t liveness_last(const struct liveness *l)
{
	return atomic_load_explicit(&l->beat_ms, memory_order_relaxed);
}

/* Makes l the calling thread's own (and beats it): liveness_beat_current() then beats it
 * from code that does not know which thread runs it (a Modbus request on a pool worker). */
void liveness_attach(struct liveness *l);

/* Beats the calling thread's own liveness, if it has one (no-op otherwise). */
void liveness_beat_current(void);

/* Names the calling thread (at most 15 bytes are kept; longer names are cut). */
void thread_set_name(const char *name);

#endif
