/*
 * tcploop_internal.h - what the event loop's files share, and nothing else includes.
 *
 *   tcploop.c   the loop: epoll, the timer heap, wake-ups, turns, answers handed back;
 *   tcpconn.c   one endpoint's connection: connect, send, receive, close, and the helper
 *               thread for blocking work (host names, the TLS probe).
 *
 * Everything here runs on the loop's thread, except the helper's queue (its own lock).
 */
#ifndef MODBRIDGE_TCPLOOP_INTERNAL_H
#define MODBRIDGE_TCPLOOP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tcploop.h"

/* A client's state. */
enum { TC_IDLE, TC_WAITING, TC_TURN, TC_PENDING, TC_SENT, TC_ANSWERED };

enum ep_state { EP_CLOSED, EP_RESOLVING, EP_CONNECTING, EP_OPEN };

#define EP_MAX_ADDRS 4

/* Time-outs in a row, with no byte received meanwhile, after which a connection is taken
 * for half-open (the peer gone without a reset: a cable, a NAT, a power cut) and opened
 * again at the next request. */
#define EP_SILENT_TIMEOUTS 2

struct tcp_ep {
	struct tcploop *loop;
	struct tcp_ep *all_next; /* the loop's list */
	char *host;
	int port;
	char name[160];
	int max_outstanding;
	int fd;            /* -1: none */
	unsigned conn_gen; /* one more each time a connection goes */
	enum ep_state state;
	uint32_t events; /* registered with epoll (0: not registered) */
	/* Turns. */
	struct tcp_client *wait_head, *wait_tail;
	int turns;
	bool ready_listed; /* in the loop's list of endpoints that may grant turns */
	struct tcp_ep *ready_next;
	/* Requests: waiting for the connection, and sent (at most max_outstanding each). */
	struct tcp_client *pending[TCPLOOP_MAX_OUTSTANDING];
	int npending;
	struct tcp_client *inflight[TCPLOOP_MAX_OUTSTANDING];
	int ninflight;
	uint16_t next_tid;
	/* Connecting: the addresses to try, and the deadline. */
	struct sockaddr_storage addrs[EP_MAX_ADDRS];
	socklen_t addrlens[EP_MAX_ADDRS];
	size_t naddrs, addr_index;
	bool numeric;         /* host is an address: no look-up */
	unsigned resolve_gen; /* the look-up whose answer counts */
	int connect_timeout_ms;
	struct tcploop_timer connect_timer;
	/* Bytes in and out. */
	uint8_t rbuf[2 * MBTCP_MAX_ADU];
	size_t rlen;
	uint8_t *wbuf; /* what send() did not take yet (malloc'd when first needed) */
	size_t wlen, wcap;
	/* Episodes, for the log. */
	bool lost;           /* the link failed: "connected again" when it works */
	bool answered;       /* the peer answered on this connection */
	bool tls_hint_given; /* the "TLS port?" question was asked this episode */
	unsigned silent_timeouts;
	uint64_t late_discarded; /* answers to requests that had timed out */
};

struct helper_job;

struct tcploop {
	int epfd;
	int evfd;
	void (*on_wake)(void *ctx);
	void *wake_ctx;
	struct tcp_ep *eps;
	/* Timers: a binary min-heap on at_ms. */
	struct tcploop_timer **heap;
	size_t nheap, capheap;
	/* Endpoints that may grant turns, and clients whose answer is to be handed back. */
	struct tcp_ep *ready_head;
	struct tcp_client *done_head, *done_tail;
	/* The helper thread: jobs in, look-ups out (helper_lock). */
	pthread_mutex_t helper_lock;
	pthread_cond_t helper_cond;
	pthread_t helper;
	bool helper_started, helper_stop;
	struct helper_job *jobs, *results;
	/* The values of the answer being handed over. */
	uint16_t scratch[MBTCP_MAX_READ_BITS];
};

/* tcploop.c: hands c's outcome back (on_answer) at the end of this step. */
void tcploop_complete(struct tcp_client *c, int rc, int exception, const char *reason);

/* tcploop.c: hands c's outcome back now (an answer as it is read; values: a read's). */
void tcploop_answer(struct tcp_client *c, int rc, int exception, const char *reason,
		    const uint16_t *values);

/* tcploop.c: registers fd's interest in events (EPOLLIN, EPOLLOUT) with epoll. */
void tcploop_watch(struct tcp_ep *ep, uint32_t events);

/* tcpconn.c: the connection's side of the endpoint. */
void ep_init_address(struct tcp_ep *ep);
void ep_transmit(struct tcp_ep *ep, struct tcp_client *c);
void ep_start(struct tcp_ep *ep, struct tcp_client *c); /* send, connecting first */
void ep_on_event(struct tcp_ep *ep, uint32_t events);
void ep_on_timeout(struct tcp_client *c);
void ep_close(struct tcp_ep *ep);
void ep_helper_results(struct tcploop *loop);
void ep_helper_stop(struct tcploop *loop);

#endif
