/*
 * tcp_pool.h - the elastic pool of worker threads that serves the Modbus TCP buses.
 *
 * Part of the poller (poller_internal.h): each Modbus TCP endpoint is a bus with its own
 * connection, and the pool's workers take turns serving the buses that are due, one
 * worker per bus at a time, so a bus's requests never overlap. tcp_pool.c explains how it
 * grows and shrinks. Kept apart so that another way of serving the endpoints (an event
 * loop) can replace it behind these four calls.
 *
 * Threading: tcp_pool_init, tcp_pool_start and tcp_pool_stop are called by the thread that
 * starts and stops the poller; tcp_pool_kick by any thread, with the bus's lock held.
 * Ownership: the pool borrows the buses (the poller owns them) and owns its threads.
 * Errors: tcp_pool_start returns 0 or MB_ERR_NOMEM (a thread could not be started).
 */
#ifndef MODBRIDGE_TCP_POOL_H
#define MODBRIDGE_TCP_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "liveness.h"

struct bus;
struct pool_worker;

struct tcp_pool {
	pthread_mutex_t lock; /* guards everything below and the pooled buses' pool fields */
	pthread_cond_t wake;  /* idle workers */
	pthread_cond_t tick;  /* the dispatcher */
	struct bus **buses;
	size_t count;
	struct bus *ready_head, *ready_tail; /* due buses, in the order they will be served */
	struct pool_worker *workers;         /* count slots: at most one worker per endpoint */
	size_t live, idle;
	bool stop;
	pthread_t dispatcher;
	bool dispatcher_started;
	struct liveness dispatcher_beat;
};

/* Initialises the pool's lock and conditions (before tcp_pool_start or tcp_pool_stop). */
void tcp_pool_init(struct tcp_pool *pool);

/* Starts the pool for the pooled buses among buses[0..n): the dispatcher and one worker.
 * Without such buses it starts nothing and returns 0. */
int tcp_pool_start(struct tcp_pool *pool, struct bus *buses, size_t n);

/* Stops the pool's threads (reads in progress finish first), fails the requests still
 * queued on its buses, and frees what the pool holds. After tcp_pool_init, always. */
void tcp_pool_stop(struct tcp_pool *pool);

/* The oldest last sign of life (CLOCK_MONOTONIC ms, liveness.h) among the pool's running
 * threads, or INT64_MAX when none runs. Called by the thread that starts and stops the
 * pool; takes no lock, so it never waits behind a stuck worker. */
int64_t tcp_pool_last_beat_ms(struct tcp_pool *pool);

/* A remote request was queued on a pooled bus: serve that bus next, ahead of the buses
 * already waiting for a worker. Called with the bus's lock held. */
void tcp_pool_kick(struct bus *bus);

#endif
