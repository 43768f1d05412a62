/*
 * tcploop.h - Modbus TCP endpoints served by one event loop (epoll, non-blocking sockets).
 *
 * A loop owns its endpoints (host:port, one connection each, opened when a request needs
 * it) and all their I/O; one thread runs it (tcploop_step, over and over), so no thread
 * sleeps per request and there is no select() per read: a request goes out to every due
 * endpoint at once and each answer is handled when it comes (tcploop.c explains the
 * protocol details: transaction ids, partial frames, refused, reset and half-open
 * connections).
 *
 * The users of an endpoint are clients (struct tcp_client: a device's poll, a remote
 * request). A client waits for a turn (tcploop_wait_turn), is called back when it has one
 * (on_turn), then sends requests one at a time (tcploop_send), each answered through
 * on_answer, exactly once, and gives the turn back (tcploop_end_turn). An endpoint gives
 * max_outstanding turns at once (1 by default: its requests are strictly one after the
 * other, as the Modbus TCP spec asks of a client unless the server says otherwise), in the
 * order they were asked for (or first, for a remote request). Callbacks run on the loop's
 * thread, never from inside a call of the user's (an answer is handed over as it is
 * read; failures, time-outs and turns at the end of the step), so a callback may send,
 * end its turn or set timers.
 *
 * Timers (struct tcploop_timer) run on the monotonic clock, from a binary heap.
 *
 * Threading: everything here runs on the loop's thread, except tcploop_wake (any thread),
 * which makes the loop call its waker (tcploop_new's on_wake) on its thread. Blocking work
 * (resolving a host name, the TLS probe of modbus_io.h's hint) runs on one helper thread
 * that the loop starts when first needed. Ownership: the loop owns its endpoints, their
 * sockets and the helper; clients and timers belong to their users, who must not free
 * one while it waits, holds a turn or is armed. Errors: tcploop_new and tcploop_endpoint
 * return 0 or MB_ERR_NOMEM; request failures come as outcomes (struct tcp_outcome).
 */
#ifndef MODBRIDGE_TCPLOOP_H
#define MODBRIDGE_TCPLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbtcp.h"

/* The most requests one endpoint may have in flight (the `max_outstanding` key's limit). */
#define TCPLOOP_MAX_OUTSTANDING 32

struct tcploop;
struct tcp_ep;

struct tcploop_timer {
	int64_t at_ms; /* monotonic */
	size_t slot;   /* private: place in the heap + 1, 0 when not armed */
	void (*fire)(struct tcploop_timer *t);
};

/* The outcome of one request. */
struct tcp_outcome {
	int rc;        /* 0; MB_ERR_IO: no connection, nothing was sent; MB_ERR_MODBUS: failed */
	int exception; /* MB_ERR_MODBUS: the device's exception code, or 0 (no answer, bad one) */
	char reason[128]; /* "timeout", "connection refused", "exception 2 illegal data address" */
	const uint16_t *values; /* rc 0, a read: its count values (bits as 0/1), valid during
				 * the on_answer call only */
};

struct tcp_client {
	/* Set by the user before the first tcploop_wait_turn. */
	void (*on_turn)(struct tcp_client *c);
	void (*on_answer)(struct tcp_client *c, const struct tcp_outcome *o);
	/* Private to tcploop.c. */
	struct tcp_ep *ep;
	struct tcp_client *next; /* in the endpoint's queue, or the loop's answered list */
	int state;
	struct mbtcp_request rq;
	int timeout_ms;
	struct tcploop_timer timer; /* the request's time-out */
	struct tcp_outcome outcome;
};

/* A new loop; on_wake(ctx) runs on the loop's thread after tcploop_wake. Returns 0 or
 * MB_ERR_NOMEM (also when epoll or eventfd cannot be had). */
int tcploop_new(void (*on_wake)(void *ctx), void *ctx, struct tcploop **out);

/* Closes every endpoint and frees, after the helper thread (if any) ended. No client may
 * wait or hold a turn. Accepts NULL. */
void tcploop_free(struct tcploop *loop);

/*
 * The endpoint host:port of the loop (made on first use; the same one after that).
 * max_outstanding 1..TCPLOOP_MAX_OUTSTANDING (of a new endpoint). Returns 0 or
 * MB_ERR_NOMEM.
 */
int tcploop_endpoint(struct tcploop *loop, const char *host, int port, int max_outstanding,
		     struct tcp_ep **out);

/* "192.168.1.20:502" ("[fe80::1]:502"), for logs. */
const char *tcploop_ep_name(const struct tcp_ep *ep);

/* Makes sure the process may open n more descriptors (raises the soft limit towards the
 * hard one); logs a warning when it cannot. */
void tcploop_reserve_fds(size_t n);

/* c waits for a turn on ep, after the clients already waiting (first: before them). */
void tcploop_wait_turn(struct tcp_ep *ep, struct tcp_client *c, bool first);

/* c stops waiting for a turn (it never gets one). Returns false (and does nothing) when
 * it was not waiting. */
bool tcploop_cancel_wait(struct tcp_client *c);

/* Whether c waits for a turn, or holds one. */
bool tcploop_client_busy(const struct tcp_client *c);

/* c, holding a turn, sends rq (its tid is set here) with a response time-out. The outcome
 * comes through on_answer. rq must be valid (mbtcp_request_valid). */
void tcploop_send(struct tcp_client *c, const struct mbtcp_request *rq, int timeout_ms);

/* c gives its turn back (no request of it may be in flight). */
void tcploop_end_turn(struct tcp_client *c);

/* Closes ep's connection if nobody waits for or holds a turn (a link opened for one
 * remote request). */
void tcploop_close_idle(struct tcp_ep *ep);

/* Arms t to fire at the monotonic instant at_ms (re-arms an armed one). */
void tcploop_timer_set(struct tcploop *loop, struct tcploop_timer *t, int64_t at_ms);

/* Makes room for n armed timers at once, so that arming one never needs memory (each
 * endpoint and each client has one of its own besides the user's). Returns 0 or
 * MB_ERR_NOMEM. */
int tcploop_reserve_timers(struct tcploop *loop, size_t n);

/* Disarms t (no-op when not armed). */
void tcploop_timer_cancel(struct tcploop *loop, struct tcploop_timer *t);

/* Waits up to max_wait_ms for I/O, a timer or a wake-up, and handles what came, callbacks
 * included. */
void tcploop_step(struct tcploop *loop, int max_wait_ms);

/* Any thread: the loop calls its on_wake soon, on its thread. */
void tcploop_wake(struct tcploop *loop);

#endif
