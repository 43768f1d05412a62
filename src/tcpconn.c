/*
 * tcpconn.c - one Modbus TCP endpoint's connection, on the event loop; see tcploop.h.
 *
 * Connecting: non-blocking, to each address of the host in turn (a host name is looked up
 * on the helper thread, so a slow DNS never stalls the loop), bounded by the response
 * time-out of the request that needs the connection (as libmodbus bounds its connect). A
 * connection that cannot be made fails the requests waiting for it with MB_ERR_IO and
 * "connection refused" or "connect: <why>": nothing was sent.
 *
 * The protocol's details:
 *   - Transaction ids: every request gets the endpoint's next id, and an answer is taken
 *     only by the request in flight with its id. A late answer to a request that timed out
 *     is discarded (debug log), never taken for the next request's: the TCP form of the
 *     RTU trap in FIELD-NOTES.md. So the connection stays open after a time-out.
 *   - Partial reads: bytes are kept until mbtcp_frame_size() says a frame is whole, and
 *     several frames in one read are all handled.
 *   - A connection refused, reset or closed by the peer fails the requests in flight
 *     ("connection lost": the caller may retry, which connects again). Bytes that cannot
 *     be Modbus TCP (a wrong protocol id or length) mean the stream is out of step: the
 *     connection is closed the same way.
 *   - Half-open connections (the peer gone without a reset) show only as time-outs:
 *     after EP_SILENT_TIMEOUTS of them in a row with not one byte received, the connection
 *     is dropped and the next request connects afresh.
 *   - A peer that drops a fresh connection (or answers garbage) without one Modbus answer
 *     may be a TLS port: once per episode the helper thread asks it with a TLS handshake
 *     (certinfo_probe_tls) and logs the answer, as modbus_io.c did.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "certinfo.h"
#include "error.h"
#include "log.h"
#include "tcploop_internal.h"
#include "timeutil.h"

/* The helper thread's stack: a look-up or a TLS handshake needs tens of KB. */
#define HELPER_STACK_BYTES ((size_t)256 * 1024)

enum { JOB_RESOLVE, JOB_PROBE_TLS };

struct helper_job {
	struct helper_job *next;
	int kind;
	struct tcp_ep *ep; /* JOB_RESOLVE: whose look-up (endpoints live as long as the loop) */
	unsigned gen;
	char *host;
	int port;
	int timeout_ms;
	char name[160];
	/* JOB_RESOLVE's answer. */
	struct sockaddr_storage addrs[EP_MAX_ADDRS];
	socklen_t addrlens[EP_MAX_ADDRS];
	size_t naddrs;
	char error[96];
};

static void helper_submit(struct tcploop *loop, struct helper_job *job);

void ep_init_address(struct tcp_ep *ep)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ep->addrs[0];
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ep->addrs[0];

	if (inet_pton(AF_INET, ep->host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)ep->port);
		ep->addrlens[0] = sizeof(*v4);
	} else if (inet_pton(AF_INET6, ep->host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)ep->port);
		ep->addrlens[0] = sizeof(*v6);
	} else {
		return;
	}
	ep->naddrs = 1;
	ep->numeric = true;
}

/* The socket goes; requests are not touched. */
static void conn_drop(struct tcp_ep *ep)
{
	if (ep->fd >= 0)
		close(ep->fd); /* also leaves the epoll set */
	ep->fd = -1;
	ep->events = 0;
	ep->state = EP_CLOSED;
	ep->conn_gen++;
	ep->rlen = 0;
	ep->wlen = 0;
	ep->silent_timeouts = 0;
	tcploop_timer_cancel(ep->loop, &ep->connect_timer);
}

void ep_close(struct tcp_ep *ep)
{
	conn_drop(ep);
}

/* Fails the requests waiting for a connection. */
static void fail_pending(struct tcp_ep *ep, int rc, const char *reason)
{
	for (int i = 0; i < ep->npending; i++)
		tcploop_complete(ep->pending[i], rc, 0, reason);
	ep->npending = 0;
}

static void ask_tls(struct tcp_ep *ep, int timeout_ms)
{
	if (ep->tls_hint_given)
		return;
	ep->tls_hint_given = true;
	struct helper_job *job = calloc(1, sizeof(*job));
	if (!job || !(job->host = strdup(ep->host))) {
		free(job);
		return; /* only a hint: without memory, none */
	}
	job->kind = JOB_PROBE_TLS;
	job->port = ep->port;
	job->timeout_ms = timeout_ms;
	snprintf(job->name, sizeof(job->name), "%s", ep->name);
	helper_submit(ep->loop, job);
}

/* The connection failed with requests on it: they fail with reason (retried by their
 * users), and the next request connects again. tls_question: the peer dropped it (or sent
 * garbage) before its first answer. */
static void conn_fail(struct tcp_ep *ep, const char *reason, bool tls_question)
{
	int timeout_ms = ep->ninflight ? ep->inflight[0]->timeout_ms : ep->connect_timeout_ms;
	if (tls_question && !ep->answered)
		ask_tls(ep, timeout_ms);
	for (int i = 0; i < ep->ninflight; i++)
		tcploop_complete(ep->inflight[i], MB_ERR_MODBUS, 0, reason);
	ep->ninflight = 0;
	fail_pending(ep, MB_ERR_MODBUS, reason);
	conn_drop(ep);
	ep->lost = true;
}

static void connect_failed(struct tcp_ep *ep, const char *reason)
{
	conn_drop(ep);
	fail_pending(ep, MB_ERR_IO, reason);
	ep->lost = true;
}

static void connect_failed_errno(struct tcp_ep *ep, int err)
{
	char reason[128];
	if (err == ECONNREFUSED)
		snprintf(reason, sizeof(reason), "connection refused");
	else
		snprintf(reason, sizeof(reason), "connect: %s", strerror(err));
	connect_failed(ep, reason);
}

/* Appends bytes to the output that send() has not taken yet. */
static bool out_append(struct tcp_ep *ep, const uint8_t *data, size_t n)
{
	if (ep->wlen + n > ep->wcap) {
		size_t cap = ep->wcap ? 2 * ep->wcap : 512;
		while (cap < ep->wlen + n)
			cap *= 2;
		uint8_t *buf = realloc(ep->wbuf, cap);
		if (!buf)
			return false;
		ep->wbuf = buf;
		ep->wcap = cap;
	}
	memcpy(ep->wbuf + ep->wlen, data, n);
	ep->wlen += n;
	return true;
}

static void write_failed(struct tcp_ep *ep, int err)
{
	char reason[128];
	bool lost = err == EPIPE || err == ECONNRESET;
	if (lost)
		snprintf(reason, sizeof(reason), "connection lost");
	else
		snprintf(reason, sizeof(reason), "send: %s", strerror(err));
	conn_fail(ep, reason, lost);
}

/* Sends data, or keeps what the socket does not take now. Returns false when the
 * connection failed (its requests failed with it). */
static bool ep_write(struct tcp_ep *ep, const uint8_t *data, size_t n)
{
	if (ep->wlen == 0) {
		ssize_t sent = send(ep->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent == (ssize_t)n)
			return true;
		if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			write_failed(ep, errno);
			return false;
		}
		if (sent > 0) {
			data += sent;
			n -= (size_t)sent;
		}
	}
	if (!out_append(ep, data, n)) {
		conn_fail(ep, "out of memory", false);
		return false;
	}
	tcploop_watch(ep, EPOLLIN | EPOLLOUT);
	return true;
}

static void flush_out(struct tcp_ep *ep)
{
	while (ep->wlen) {
		ssize_t sent = send(ep->fd, ep->wbuf, ep->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			write_failed(ep, errno);
			return;
		}
		memmove(ep->wbuf, ep->wbuf + sent, ep->wlen - (size_t)sent);
		ep->wlen -= (size_t)sent;
	}
	tcploop_watch(ep, EPOLLIN);
}

static void on_request_timeout(struct tcploop_timer *t)
{
	struct tcp_client *c =
		(struct tcp_client *)((char *)t - offsetof(struct tcp_client, timer));
	struct tcp_ep *ep = c->ep;

	for (int i = 0; i < ep->ninflight; i++) {
		if (ep->inflight[i] == c) {
			ep->inflight[i] = ep->inflight[--ep->ninflight];
			break;
		}
	}
	/* Its answer may still come: its transaction id then matches nothing and it is
	 * discarded. The connection stays, unless it looks half-open. */
	ep->silent_timeouts++;
	tcploop_complete(c, MB_ERR_MODBUS, 0, "timeout");
	if (ep->silent_timeouts >= EP_SILENT_TIMEOUTS && ep->ninflight == 0 && ep->fd >= 0) {
		log_debug("%s: no byte received for %u requests in a row: opening a new connection",
			  ep->name, ep->silent_timeouts);
		conn_drop(ep);
	}
}

void ep_transmit(struct tcp_ep *ep, struct tcp_client *c)
{
	uint8_t adu[MBTCP_MAX_ADU];
	size_t n = mbtcp_encode(&c->rq, adu);

	c->state = TC_SENT;
	ep->inflight[ep->ninflight++] = c;
	c->timer.fire = on_request_timeout;
	tcploop_timer_set(ep->loop, &c->timer, time_mono_ms() + c->timeout_ms);
	ep_write(ep, adu, n);
}

static void connected(struct tcp_ep *ep)
{
	struct tcp_client *waiting[TCPLOOP_MAX_OUTSTANDING];
	int n = ep->npending;

	tcploop_timer_cancel(ep->loop, &ep->connect_timer);
	ep->state = EP_OPEN;
	ep->answered = false;
	ep->silent_timeouts = 0;
	tcploop_watch(ep, EPOLLIN);
	if (ep->lost) {
		ep->lost = false;
		log_debug("%s: connected again", ep->name);
	}
	memcpy(waiting, ep->pending, sizeof(struct tcp_client *) * (size_t)n);
	ep->npending = 0;
	for (int i = 0; i < n; i++) {
		if (ep->state == EP_OPEN)
			ep_transmit(ep, waiting[i]);
		else /* the first ones broke the connection */
			tcploop_complete(waiting[i], MB_ERR_MODBUS, 0, "connection lost");
	}
}

/* Tries the endpoint's addresses from addr_index on. */
static void try_connect(struct tcp_ep *ep)
{
	int err = EHOSTUNREACH;
	int one = 1;

	for (; ep->addr_index < ep->naddrs; ep->addr_index++) {
		const struct sockaddr *sa = (const struct sockaddr *)&ep->addrs[ep->addr_index];
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			break; /* out of descriptors or memory: another address will not help */
		}
		/* Requests are small and each waits for its answer: no Nagle delay. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ep->fd = fd;
		if (connect(fd, sa, ep->addrlens[ep->addr_index]) == 0) {
			connected(ep);
			return;
		}
		if (errno == EINPROGRESS) {
			ep->state = EP_CONNECTING;
			tcploop_watch(ep, EPOLLOUT);
			return;
		}
		err = errno;
		close(fd);
		ep->fd = -1;
	}
	connect_failed_errno(ep, err);
}

static void on_connect_timeout(struct tcploop_timer *t)
{
	struct tcp_ep *ep = (struct tcp_ep *)((char *)t - offsetof(struct tcp_ep, connect_timer));
	if (ep->state == EP_RESOLVING)
		ep->resolve_gen++; /* its answer, when it comes, is for nobody */
	if (ep->state == EP_RESOLVING || ep->state == EP_CONNECTING)
		connect_failed_errno(ep, ETIMEDOUT);
}

static void start_connect(struct tcp_ep *ep, int timeout_ms)
{
	ep->connect_timeout_ms = timeout_ms;
	ep->connect_timer.fire = on_connect_timeout;
	tcploop_timer_set(ep->loop, &ep->connect_timer, time_mono_ms() + timeout_ms);
	if (ep->numeric) {
		ep->addr_index = 0;
		try_connect(ep);
		return;
	}
	struct helper_job *job = calloc(1, sizeof(*job));
	if (!job || !(job->host = strdup(ep->host))) {
		free(job);
		connect_failed(ep, "connect: out of memory");
		return;
	}
	ep->state = EP_RESOLVING;
	job->kind = JOB_RESOLVE;
	job->ep = ep;
	job->gen = ++ep->resolve_gen;
	job->port = ep->port;
	helper_submit(ep->loop, job);
}

void ep_start(struct tcp_ep *ep, struct tcp_client *c)
{
	if (ep->state == EP_OPEN) {
		ep_transmit(ep, c);
		return;
	}
	c->state = TC_PENDING;
	ep->pending[ep->npending++] = c;
	if (ep->state == EP_CLOSED)
		start_connect(ep, c->timeout_ms);
}

/* A whole frame: the answer of the request in flight with its transaction id. */
static void take_frame(struct tcp_ep *ep, const uint8_t *adu, size_t len)
{
	uint16_t tid = mbtcp_tid(adu);
	struct tcp_client *c = NULL;

	for (int i = 0; i < ep->ninflight; i++) {
		if (ep->inflight[i]->rq.tid == tid) {
			c = ep->inflight[i];
			ep->inflight[i] = ep->inflight[--ep->ninflight];
			break;
		}
	}
	if (!c) {
		ep->late_discarded++;
		log_debug("%s: discarded an answer to no request in flight (transaction %u; "
			  "a late answer to a request that timed out)",
			  ep->name, (unsigned)tid);
		return;
	}
	int exception = 0;
	uint16_t *values = ep->loop->scratch;
	enum mbtcp_status st = mbtcp_parse(&c->rq, adu, len, values, &exception);
	if (st == MBTCP_OK || st == MBTCP_EXCEPTION) {
		ep->answered = true;
		ep->tls_hint_given = false;
	}
	if (st == MBTCP_OK) {
		tcploop_answer(c, 0, 0, "", c->rq.function <= 4 ? values : NULL);
		return;
	}
	char reason[128];
	mbtcp_reason(st, exception, reason, sizeof(reason));
	tcploop_answer(c, MB_ERR_MODBUS, exception, reason, NULL);
}

static void receive(struct tcp_ep *ep)
{
	ssize_t got = read(ep->fd, ep->rbuf + ep->rlen, sizeof(ep->rbuf) - ep->rlen);
	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (got <= 0) {
		if (ep->ninflight == 0 && ep->npending == 0) {
			conn_drop(
				ep); /* the peer closed an idle connection: reopened when needed */
			return;
		}
		conn_fail(ep, "connection lost", got == 0 || errno == ECONNRESET || errno == EPIPE);
		return;
	}
	ep->rlen += (size_t)got;
	ep->silent_timeouts = 0;
	unsigned gen = ep->conn_gen;
	size_t at = 0;
	for (;;) {
		int size = mbtcp_frame_size(ep->rbuf + at, ep->rlen - at);
		if (size < 0) {
			conn_fail(ep, "invalid data in response", true);
			return;
		}
		if (size == 0)
			break;
		take_frame(ep, ep->rbuf + at, (size_t)size);
		at += (size_t)size;
		if (ep->conn_gen != gen) /* an answer's user broke the connection */
			return;
	}
	memmove(ep->rbuf, ep->rbuf + at, ep->rlen - at);
	ep->rlen -= at;
}

void ep_on_event(struct tcp_ep *ep, uint32_t events)
{
	if (ep->state == EP_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0) {
			connected(ep);
			return;
		}
		close(ep->fd);
		ep->fd = -1;
		ep->events = 0;
		ep->addr_index++;
		if (ep->addr_index < ep->naddrs)
			try_connect(ep);
		else
			connect_failed_errno(ep, err);
		return;
	}
	if (ep->state != EP_OPEN)
		return;
	if (events & EPOLLOUT)
		flush_out(ep);
	if (ep->state == EP_OPEN && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		receive(ep);
}

/* ---------------------------------------------------------------------------------- */
/* The helper thread: look-ups and TLS probes, which block. */

static void run_resolve(struct helper_job *job)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	char service[8];

	snprintf(service, sizeof(service), "%d", job->port);
	int rc = getaddrinfo(job->host, service, &hints, &res);
	if (rc != 0) {
		snprintf(job->error, sizeof(job->error), "%s",
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return;
	}
	for (struct addrinfo *ai = res; ai && job->naddrs < EP_MAX_ADDRS; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(job->addrs[0]))
			continue;
		memcpy(&job->addrs[job->naddrs], ai->ai_addr, ai->ai_addrlen);
		job->addrlens[job->naddrs++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	if (!job->naddrs)
		snprintf(job->error, sizeof(job->error), "no address");
}

static void run_probe(const struct helper_job *job)
{
	if (certinfo_probe_tls(job->host, job->port, job->timeout_ms))
		log_warn("%s: the peer closed the connection without a Modbus answer, and port %d "
			 "speaks TLS: is this a TLS port? Modbus TCP is plain TCP",
			 job->name, job->port);
	else
		log_warn("%s: the peer closed the connection right after connect, without a "
			 "Modbus answer: is this a Modbus TCP port?",
			 job->name);
}

static void job_free(struct helper_job *job)
{
	free(job->host);
	free(job);
}

static void *helper_main(void *arg)
{
	struct tcploop *loop = arg;

	pthread_mutex_lock(&loop->helper_lock);
	while (!loop->helper_stop) {
		struct helper_job *job = loop->jobs;
		if (!job) {
			pthread_cond_wait(&loop->helper_cond, &loop->helper_lock);
			continue;
		}
		loop->jobs = job->next;
		pthread_mutex_unlock(&loop->helper_lock);
		if (job->kind == JOB_RESOLVE) {
			run_resolve(job);
		} else {
			run_probe(job);
			job_free(job);
			job = NULL;
		}
		pthread_mutex_lock(&loop->helper_lock);
		if (job) {
			job->next = loop->results;
			loop->results = job;
			tcploop_wake(loop);
		}
	}
	pthread_mutex_unlock(&loop->helper_lock);
	return NULL;
}

static void helper_submit(struct tcploop *loop, struct helper_job *job)
{
	pthread_mutex_lock(&loop->helper_lock);
	if (!loop->helper_started) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, HELPER_STACK_BYTES);
		loop->helper_started = pthread_create(&loop->helper, &attr, helper_main, loop) == 0;
		pthread_attr_destroy(&attr);
		if (!loop->helper_started)
			log_error("modbus tcp: cannot start the helper thread for host names and "
				  "TLS probes");
	}
	/* Without the thread a look-up waits for nothing: its connect time-out fails it. */
	struct helper_job **pp = &loop->jobs;
	while (*pp)
		pp = &(*pp)->next;
	job->next = NULL;
	*pp = job;
	pthread_cond_signal(&loop->helper_cond);
	pthread_mutex_unlock(&loop->helper_lock);
}

void ep_helper_results(struct tcploop *loop)
{
	pthread_mutex_lock(&loop->helper_lock);
	struct helper_job *job = loop->results;
	loop->results = NULL;
	pthread_mutex_unlock(&loop->helper_lock);
	while (job) {
		struct helper_job *next = job->next;
		struct tcp_ep *ep = job->ep;
		if (ep->state == EP_RESOLVING && job->gen == ep->resolve_gen) {
			if (job->naddrs == 0) {
				char reason[160];
				snprintf(reason, sizeof(reason), "connect: cannot resolve %s: %s",
					 ep->host, job->error);
				connect_failed(ep, reason);
			} else {
				memcpy(ep->addrs, job->addrs, sizeof(ep->addrs));
				memcpy(ep->addrlens, job->addrlens, sizeof(ep->addrlens));
				ep->naddrs = job->naddrs;
				ep->addr_index = 0;
				try_connect(ep);
			}
		}
		job_free(job);
		job = next;
	}
}

void ep_helper_stop(struct tcploop *loop)
{
	pthread_mutex_lock(&loop->helper_lock);
	loop->helper_stop = true;
	pthread_cond_signal(&loop->helper_cond);
	pthread_mutex_unlock(&loop->helper_lock);
	if (loop->helper_started)
		pthread_join(loop->helper, NULL);
	loop->helper_started = false;
	struct helper_job *lists[2] = {loop->jobs, loop->results};
	loop->jobs = loop->results = NULL;
	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct helper_job *job = lists[i];
			lists[i] = job->next;
			job_free(job);
		}
	}
}
