/*
 * tcploop.c - the event loop of the Modbus TCP endpoints: epoll, timers, turns; see
 * tcploop.h (tcpconn.c has the connections).
 *
 * One step: wait in epoll_wait until the earliest timer (or at once when answers or turns
 * are waiting to be handed out), handle the sockets that have something and the wake-up
 * eventfd, fire the timers that are due, then run the callbacks: answers (on_answer) and
 * turns (on_turn), until neither list has anything left. Callbacks are deferred to that
 * last phase, never run from inside the call that caused them, so a user can send or end
 * its turn from any callback without re-entering the loop, and a long run of clients that
 * end their turn at once (devices that back off) does not nest calls.
 */
#include "tcploop.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "tcploop_internal.h"
#include "timeutil.h"

/* Events handled per epoll_wait. */
#define STEP_EVENTS 256

int tcploop_new(void (*on_wake)(void *ctx), void *ctx, struct tcploop **out)
{
	struct tcploop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return MB_ERR_NOMEM;
	loop->on_wake = on_wake;
	loop->wake_ctx = ctx;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&loop->helper_lock, NULL);
	pthread_cond_init(&loop->helper_cond, NULL);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (loop->epfd < 0 || loop->evfd < 0 ||
	    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev) != 0) {
		log_error("modbus tcp: cannot set up the event loop: %s", strerror(errno));
		tcploop_free(loop);
		return MB_ERR_NOMEM;
	}
	*out = loop;
	return 0;
}

void tcploop_free(struct tcploop *loop)
{
	if (!loop)
		return;
	ep_helper_stop(loop);
	while (loop->eps) {
		struct tcp_ep *ep = loop->eps;
		loop->eps = ep->all_next;
		if (ep->fd >= 0)
			close(ep->fd);
		free(ep->wbuf);
		free(ep->host);
		free(ep);
	}
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->evfd >= 0)
		close(loop->evfd);
	free(loop->heap);
	pthread_mutex_destroy(&loop->helper_lock);
	pthread_cond_destroy(&loop->helper_cond);
	free(loop);
}

int tcploop_endpoint(struct tcploop *loop, const char *host, int port, int max_outstanding,
		     struct tcp_ep **out)
{
	for (struct tcp_ep *ep = loop->eps; ep; ep = ep->all_next) {
		if (ep->port == port && strcmp(ep->host, host) == 0) {
			*out = ep;
			return 0;
		}
	}
	struct tcp_ep *ep = calloc(1, sizeof(*ep));
	if (!ep || !(ep->host = strdup(host))) {
		free(ep);
		return MB_ERR_NOMEM;
	}
	ep->loop = loop;
	ep->port = port;
	ep->fd = -1;
	ep->max_outstanding = max_outstanding < 1                         ? 1
			      : max_outstanding > TCPLOOP_MAX_OUTSTANDING ? TCPLOOP_MAX_OUTSTANDING
									  : max_outstanding;
	ep->next_tid = (uint16_t)(uintptr_t)ep; /* any start; a new one per endpoint */
	if (strchr(host, ':'))
		snprintf(ep->name, sizeof(ep->name), "[%s]:%d", host, port);
	else
		snprintf(ep->name, sizeof(ep->name), "%s:%d", host, port);
	ep_init_address(ep);
	ep->all_next = loop->eps;
	loop->eps = ep;
	*out = ep;
	return 0;
}

const char *tcploop_ep_name(const struct tcp_ep *ep)
{
	return ep->name;
}

void tcploop_reserve_fds(size_t n)
{
	struct rlimit rl;
	/* The descriptors of everything else (store, MQTT, the web UI, logs): a margin. */
	rlim_t want = (rlim_t)n + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rlim_t had = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		log_warn("modbus tcp: %zu endpoint(s) need about %llu open files, but the limit is %llu "
			 "(raise it, e.g. LimitNOFILE= in the service): some connections will fail",
			 n, (unsigned long long)want,
			 (unsigned long long)(rl.rlim_cur > had ? rl.rlim_cur : had));
}

/* ---------------------------------------------------------------------------------- */
/* Timers: a binary min-heap of pointers; each timer knows its slot. */

static void heap_place(struct tcploop *loop, size_t i, struct tcploop_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct tcploop *loop, size_t i)
{
	struct tcploop_timer *t = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->at_ms <= t->at_ms)
			break;
		heap_place(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_place(loop, i, t);
}

static void heap_down(struct tcploop *loop, size_t i)
{
	struct tcploop_timer *t = loop->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= loop->nheap)
			break;
		if (child + 1 < loop->nheap &&
		    loop->heap[child + 1]->at_ms < loop->heap[child]->at_ms)
			child++;
		if (loop->heap[child]->at_ms >= t->at_ms)
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, t);
}

void tcploop_timer_cancel(struct tcploop *loop, struct tcploop_timer *t)
{
	if (!t->slot)
		return;
	size_t i = t->slot - 1;
	t->slot = 0;
	loop->nheap--;
	if (i == loop->nheap)
		return;
	struct tcploop_timer *moved = loop->heap[loop->nheap];
	heap_place(loop, i, moved);
	heap_up(loop, i);
	heap_down(loop, moved->slot - 1);
}

int tcploop_reserve_timers(struct tcploop *loop, size_t n)
{
	if (n <= loop->capheap)
		return 0;
	struct tcploop_timer **heap = realloc(loop->heap, n * sizeof(struct tcploop_timer *));
	if (!heap)
		return MB_ERR_NOMEM;
	loop->heap = heap;
	loop->capheap = n;
	return 0;
}

void tcploop_timer_set(struct tcploop *loop, struct tcploop_timer *t, int64_t at_ms)
{
	if (t->slot) {
		t->at_ms = at_ms;
		heap_up(loop, t->slot - 1);
		heap_down(loop, t->slot - 1);
		return;
	}
	if (loop->nheap == loop->capheap) {
		size_t cap = loop->capheap ? 2 * loop->capheap : 64;
		struct tcploop_timer **heap =
			realloc(loop->heap, cap * sizeof(struct tcploop_timer *));
		if (!heap) {
			/* Users reserve their timers up front (tcploop_reserve_timers), so only
			 * a timer beyond the reservation can get here. */
			log_error("modbus tcp: out of memory for a timer; it will not fire");
			return;
		}
		loop->heap = heap;
		loop->capheap = cap;
	}
	t->at_ms = at_ms;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, loop->nheap - 1);
}

/* ---------------------------------------------------------------------------------- */
/* Turns and answers. */

static void mark_ready(struct tcp_ep *ep)
{
	if (ep->ready_listed)
		return;
	ep->ready_listed = true;
	ep->ready_next = ep->loop->ready_head;
	ep->loop->ready_head = ep;
}

void tcploop_wait_turn(struct tcp_ep *ep, struct tcp_client *c, bool first)
{
	c->ep = ep;
	c->state = TC_WAITING;
	c->next = NULL;
	if (first) {
		c->next = ep->wait_head;
		ep->wait_head = c;
		if (!ep->wait_tail)
			ep->wait_tail = c;
	} else {
		if (ep->wait_tail)
			ep->wait_tail->next = c;
		else
			ep->wait_head = c;
		ep->wait_tail = c;
	}
	mark_ready(ep);
}

bool tcploop_cancel_wait(struct tcp_client *c)
{
	if (c->state != TC_WAITING)
		return false;
	struct tcp_ep *ep = c->ep;
	struct tcp_client **pp = &ep->wait_head;
	ep->wait_tail = NULL;
	while (*pp) {
		if (*pp == c) {
			*pp = c->next;
			continue;
		}
		ep->wait_tail = *pp;
		pp = &(*pp)->next;
	}
	c->state = TC_IDLE;
	return true;
}

bool tcploop_client_busy(const struct tcp_client *c)
{
	return c->state != TC_IDLE;
}

void tcploop_end_turn(struct tcp_client *c)
{
	struct tcp_ep *ep = c->ep;
	c->state = TC_IDLE;
	ep->turns--;
	mark_ready(ep);
}

void tcploop_send(struct tcp_client *c, const struct mbtcp_request *rq, int timeout_ms)
{
	struct tcp_ep *ep = c->ep;
	c->rq = *rq;
	c->rq.tid = ep->next_tid++;
	c->timeout_ms = timeout_ms;
	ep_start(ep, c);
}

void tcploop_close_idle(struct tcp_ep *ep)
{
	if (ep->turns == 0 && !ep->wait_head && ep->fd >= 0)
		ep_close(ep);
}

void tcploop_complete(struct tcp_client *c, int rc, int exception, const char *reason)
{
	struct tcploop *loop = c->ep->loop;
	tcploop_timer_cancel(loop, &c->timer);
	c->state = TC_ANSWERED;
	c->outcome.rc = rc;
	c->outcome.exception = exception;
	c->outcome.values = NULL;
	snprintf(c->outcome.reason, sizeof(c->outcome.reason), "%s", reason ? reason : "");
	c->next = NULL;
	if (loop->done_tail)
		loop->done_tail->next = c;
	else
		loop->done_head = c;
	loop->done_tail = c;
}

void tcploop_answer(struct tcp_client *c, int rc, int exception, const char *reason,
		    const uint16_t *values)
{
	struct tcp_outcome o = {.rc = rc, .exception = exception, .values = values};
	tcploop_timer_cancel(c->ep->loop, &c->timer);
	snprintf(o.reason, sizeof(o.reason), "%s", reason ? reason : "");
	c->state = TC_TURN;
	c->on_answer(c, &o);
}

/* Hands out answers and turns until there are none left. */
static void run_callbacks(struct tcploop *loop)
{
	while (loop->done_head || loop->ready_head) {
		while (loop->done_head) {
			struct tcp_client *c = loop->done_head;
			loop->done_head = c->next;
			if (!loop->done_head)
				loop->done_tail = NULL;
			struct tcp_outcome o = c->outcome;
			c->state = TC_TURN;
			c->on_answer(c, &o);
		}
		while (loop->ready_head) {
			struct tcp_ep *ep = loop->ready_head;
			loop->ready_head = ep->ready_next;
			ep->ready_listed = false;
			while (ep->turns < ep->max_outstanding && ep->wait_head) {
				struct tcp_client *c = ep->wait_head;
				ep->wait_head = c->next;
				if (!ep->wait_head)
					ep->wait_tail = NULL;
				ep->turns++;
				c->state = TC_TURN;
				c->on_turn(c);
			}
		}
	}
}

void tcploop_watch(struct tcp_ep *ep, uint32_t events)
{
	if (ep->events == events || ep->fd < 0)
		return;
	struct epoll_event ev = {.events = events, .data.ptr = ep};
	int op = ep->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(ep->loop->epfd, op, ep->fd, &ev) != 0)
		log_error("%s: epoll_ctl: %s", ep->name, strerror(errno));
	ep->events = events;
}

void tcploop_wake(struct tcploop *loop)
{
	uint64_t one = 1;
	/* A full counter (EAGAIN) is a pending wake-up already. */
	ssize_t n = write(loop->evfd, &one, sizeof(one));
	(void)n;
}

void tcploop_step(struct tcploop *loop, int max_wait_ms)
{
	struct epoll_event events[STEP_EVENTS];
	int64_t now = time_mono_ms();
	int wait = max_wait_ms;

	if (loop->done_head || loop->ready_head)
		wait = 0;
	else if (loop->nheap && loop->heap[0]->at_ms - now < wait)
		wait = loop->heap[0]->at_ms <= now ? 0 : (int)(loop->heap[0]->at_ms - now);
	int n = epoll_wait(loop->epfd, events, STEP_EVENTS, wait);
	if (n < 0 && errno != EINTR)
		log_error("modbus tcp: epoll_wait: %s", strerror(errno));
	bool woken = false;
	for (int i = 0; i < n; i++) {
		struct tcp_ep *ep = events[i].data.ptr;
		if (!ep) {
			uint64_t count;
			ssize_t got = read(loop->evfd, &count, sizeof(count));
			(void)got;
			woken = true;
			continue;
		}
		ep_on_event(ep, events[i].events);
	}
	if (woken) {
		ep_helper_results(loop);
		if (loop->on_wake)
			loop->on_wake(loop->wake_ctx);
	}
	now = time_mono_ms();
	while (loop->nheap && loop->heap[0]->at_ms <= now) {
		struct tcploop_timer *t = loop->heap[0];
		tcploop_timer_cancel(loop, t);
		t->fire(t);
	}
	run_callbacks(loop);
}
