/*
 * test_tcploop.c - the Modbus TCP event loop (src/tcploop.c, src/tcpconn.c) against a peer
 * in this file that misbehaves on cue: a late answer to a timed-out request (discarded by
 * its transaction id, never taken for the next request), an answer sent one byte at a
 * time, answers out of order in one write, a refused connection, a reset one, a half-open
 * one (never answers, never closes), bytes that are not Modbus TCP, an answer from the
 * wrong unit, an exception; several unit ids sharing one connection; and the window of
 * max_outstanding requests in flight.
 *
 * The peer runs on its own thread and serves one connection at a time with a scenario
 * function; the loop runs on the test's thread (tcploop_step) until what the test waits
 * for has happened.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "mbtcp.h"
#include "tcploop.h"
#include "timeutil.h"

struct peer;
typedef void (*scenario_fn)(struct peer *p, int fd);

struct peer {
	int listen_fd;
	int port;
	scenario_fn scenario;
	atomic_int connections;
	atomic_int requests;
	atomic_int max_in_flight; /* requests read before the peer answered any */
	atomic_bool stop;
	pthread_t thread;
};

/* Reads one whole request (into 260 bytes); false when the connection ended or the bytes
 * are not Modbus TCP (the loop's TLS probe, for one). */
static bool read_request(int fd, uint8_t *req)
{
	size_t got = 0, want = 7;
	while (got < want) {
		ssize_t n = read(fd, req + got, want - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
		if (got == 7) {
			want = 6 + ((size_t)req[4] << 8 | req[5]);
			if (want > 260 || want < 8)
				return false;
		}
	}
	return true;
}

/* The answer to a read of holding registers: value = address + unit * 1000. */
static size_t answer(const uint8_t *req, uint8_t *rsp)
{
	uint16_t addr = (uint16_t)(req[8] << 8 | req[9]);
	uint16_t n = (uint16_t)(req[10] << 8 | req[11]);
	memcpy(rsp, req, 8);
	rsp[8] = (uint8_t)(2 * n);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t v = (uint16_t)(addr + i + req[6] * 1000);
		rsp[9 + 2 * i] = (uint8_t)(v >> 8);
		rsp[10 + 2 * i] = (uint8_t)v;
	}
	rsp[4] = 0;
	rsp[5] = (uint8_t)(3 + 2 * n);
	return 9 + 2 * (size_t)n;
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	while (!atomic_load(&p->stop)) {
		int fd = accept(p->listen_fd, NULL, NULL);
		if (fd < 0)
			break;
		atomic_fetch_add(&p->connections, 1);
		p->scenario(p, fd);
		close(fd);
	}
	return NULL;
}

static void peer_start(struct peer *p, scenario_fn scenario)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(p, 0, sizeof(*p));
	p->scenario = scenario;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->listen_fd >= 0);
	setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->listen_fd, 8), 0);
	assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&sa, &sl), 0);
	p->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p)
{
	atomic_store(&p->stop, true);
	shutdown(p->listen_fd, SHUT_RDWR);
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
}

/* ---------------------------------------------------------------------------------- */
/* The loop's side. */

struct client {
	struct tcp_client c;
	bool turn;
	int answers;
	struct tcp_outcome last;
	uint16_t values[8];
};

static void on_turn(struct tcp_client *c)
{
	((struct client *)c)->turn = true;
}

static void on_answer(struct tcp_client *c, const struct tcp_outcome *o)
{
	struct client *cl = (struct client *)c;
	cl->answers++;
	cl->last = *o;
	if (o->rc == 0 && o->values)
		memcpy(cl->values, o->values, sizeof(uint16_t) * c->rq.count);
}

static void client_init(struct client *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->c.on_turn = on_turn;
	cl->c.on_answer = on_answer;
}

/* Steps the loop until *counter reaches want, or 5 s pass. */
static bool run_until(struct tcploop *loop, const int *counter, int want)
{
	int64_t deadline = time_mono_ms() + 5000;
	while (*counter < want && time_mono_ms() < deadline)
		tcploop_step(loop, 20);
	return *counter >= want;
}

static bool run_until_turn(struct tcploop *loop, struct client *cl)
{
	int64_t deadline = time_mono_ms() + 5000;
	while (!cl->turn && time_mono_ms() < deadline)
		tcploop_step(loop, 20);
	return cl->turn;
}

static void read_regs(struct client *cl, uint8_t unit, uint16_t addr, int timeout_ms)
{
	struct mbtcp_request rq = {.unit = unit, .function = 3, .address = addr, .count = 2};
	tcploop_send(&cl->c, &rq, timeout_ms);
}

struct fixture {
	struct peer peer;
	struct tcploop *loop;
	struct tcp_ep *ep;
};

static void setup(struct fixture *f, scenario_fn scenario, int window)
{
	peer_start(&f->peer, scenario);
	assert_int_equal(tcploop_new(NULL, NULL, &f->loop), 0);
	assert_int_equal(tcploop_reserve_timers(f->loop, 16), 0);
	assert_int_equal(tcploop_endpoint(f->loop, "127.0.0.1", f->peer.port, window, &f->ep), 0);
}

/* One client on one connection, holding its turn: how most scenarios begin. */
static void setup_one(struct fixture *f, scenario_fn scenario, struct client *cl)
{
	setup(f, scenario, 1);
	client_init(cl);
	tcploop_wait_turn(f->ep, &cl->c, false);
	assert_true(run_until_turn(f->loop, cl));
}

static void teardown(struct fixture *f)
{
	tcploop_close_idle(f->ep);
	peer_stop(&f->peer);
	tcploop_free(f->loop);
}

/* ---------------------------------------------------------------------------------- */

/* The first request is answered late, after the second was sent: its answer (same unit,
 * function and byte count) must be discarded, and the second gets its own. */
static void late_first(struct peer *p, int fd)
{
	uint8_t a[260], b[260], rsp[260];
	if (!read_request(fd, a) || !read_request(fd, b))
		return;
	atomic_fetch_add(&p->requests, 2);
	size_t n = answer(a, rsp);
	if (write(fd, rsp, n) != (ssize_t)n)
		return;
	n = answer(b, rsp);
	if (write(fd, rsp, n) != (ssize_t)n)
		return;
	while (read_request(fd, a))
		;
}

static void a_late_answer_is_discarded(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl;
	setup_one(&f, late_first, &cl);
	read_regs(&cl, 1, 0, 150);
	assert_true(run_until(f.loop, &cl.answers, 1));
	assert_int_equal(cl.last.rc, MB_ERR_MODBUS);
	assert_string_equal(cl.last.reason, "timeout");
	read_regs(&cl, 1, 100, 2000);
	assert_true(run_until(f.loop, &cl.answers, 2));
	assert_int_equal(cl.last.rc, 0);
	assert_int_equal(cl.values[0], 1100); /* register 100 of unit 1, not register 0 */
	assert_int_equal(cl.values[1], 1101);
	assert_int_equal(atomic_load(&f.peer.connections), 1); /* kept after the time-out */
	tcploop_end_turn(&cl.c);
	teardown(&f);
}

/* Answers one byte at a time. */
static void trickle(struct peer *p, int fd)
{
	uint8_t req[260], rsp[260];
	while (read_request(fd, req)) {
		atomic_fetch_add(&p->requests, 1);
		size_t n = answer(req, rsp);
		for (size_t i = 0; i < n; i++) {
			if (write(fd, rsp + i, 1) != 1)
				return;
			time_sleep_ms(5);
		}
	}
}

static void a_partial_answer_is_completed(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl;
	setup_one(&f, trickle, &cl);
	read_regs(&cl, 3, 7, 2000);
	assert_true(run_until(f.loop, &cl.answers, 1));
	assert_int_equal(cl.last.rc, 0);
	assert_int_equal(cl.values[0], 3007);
	assert_int_equal(cl.values[1], 3008);
	tcploop_end_turn(&cl.c);
	teardown(&f);
}

/* Reads three requests before answering (a pipelining gateway), then answers them in
 * reverse order, all in one write. */
static void three_reversed(struct peer *p, int fd)
{
	uint8_t req[3][260], rsp[800];
	for (;;) {
		for (int i = 0; i < 3; i++)
			if (!read_request(fd, req[i]))
				return;
		atomic_fetch_add(&p->requests, 3);
		atomic_store(&p->max_in_flight, 3);
		size_t n = 0;
		for (int i = 2; i >= 0; i--)
			n += answer(req[i], rsp + n);
		if (write(fd, rsp, n) != (ssize_t)n)
			return;
	}
}

static void a_window_of_three_on_one_connection(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl[3];
	setup(&f, three_reversed, 3);
	for (int i = 0; i < 3; i++) {
		client_init(&cl[i]);
		tcploop_wait_turn(f.ep, &cl[i].c, false);
	}
	for (int i = 0; i < 3; i++)
		assert_true(run_until_turn(f.loop, &cl[i])); /* three turns at once */
	for (int i = 0; i < 3; i++)
		read_regs(&cl[i], (uint8_t)(i + 1), (uint16_t)(10 * i), 2000);
	for (int i = 0; i < 3; i++) {
		assert_true(run_until(f.loop, &cl[i].answers, 1));
		assert_int_equal(cl[i].last.rc, 0);
		assert_int_equal(cl[i].values[0], (i + 1) * 1000 + 10 * i); /* its own unit's */
	}
	assert_int_equal(atomic_load(&f.peer.connections), 1); /* three unit ids, one connection */
	for (int i = 0; i < 3; i++)
		tcploop_end_turn(&cl[i].c);
	teardown(&f);
}

/* Answers each request at once, counting how many arrived before it answered. */
static void prompt(struct peer *p, int fd)
{
	uint8_t req[260], rsp[260];
	while (read_request(fd, req)) {
		atomic_fetch_add(&p->requests, 1);
		size_t n = answer(req, rsp);
		if (write(fd, rsp, n) != (ssize_t)n)
			return;
	}
}

static void a_window_of_one_gives_turns_in_order(void **state)
{
	(void)state;
	struct fixture f;
	struct client a, b, first;
	setup(&f, prompt, 1);
	client_init(&a);
	client_init(&b);
	client_init(&first);
	tcploop_wait_turn(f.ep, &a.c, false);
	tcploop_wait_turn(f.ep, &b.c, false);
	assert_true(run_until_turn(f.loop, &a));
	tcploop_wait_turn(f.ep, &first.c, true); /* a remote request: ahead of b */
	for (int i = 0; i < 5; i++)
		tcploop_step(f.loop, 10);
	assert_false(b.turn); /* a holds the only turn */
	assert_false(first.turn);
	read_regs(&a, 1, 0, 2000);
	assert_true(run_until(f.loop, &a.answers, 1));
	tcploop_end_turn(&a.c);
	assert_true(run_until_turn(f.loop, &first));
	assert_false(b.turn);
	tcploop_end_turn(&first.c);
	assert_true(run_until_turn(f.loop, &b));
	tcploop_end_turn(&b.c);
	teardown(&f);
}

/* On the first connection: answers one request, then resets the connection (RST) on the
 * next; later connections are served. (The first answer matters: a fresh connection
 * dropped without one would make the loop probe the port for TLS on a connection of its
 * own, and this peer serves one connection at a time: under valgrind the probe's slow
 * handshake then held the peer past the retry's time-out.) */
static void reset_second(struct peer *p, int fd)
{
	uint8_t req[260], rsp[260];
	if (atomic_load(&p->connections) == 1) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		if (!read_request(fd, req))
			return;
		atomic_fetch_add(&p->requests, 1);
		size_t n = answer(req, rsp);
		if (write(fd, rsp, n) != (ssize_t)n)
			return;
		if (read_request(fd, req))
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return;
	}
	prompt(p, fd);
}

static void a_reset_fails_the_request_and_reconnects(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl;
	setup_one(&f, reset_second, &cl);
	read_regs(&cl, 1, 0, 2000);
	assert_true(run_until(f.loop, &cl.answers, 1));
	assert_int_equal(cl.last.rc, 0);
	assert_int_equal(cl.values[0], 1000);
	read_regs(&cl, 1, 2, 2000);
	assert_true(run_until(f.loop, &cl.answers, 2));
	assert_int_equal(cl.last.rc, MB_ERR_MODBUS);
	assert_string_equal(cl.last.reason, "connection lost");
	read_regs(&cl, 1, 4, 2000);
	assert_true(run_until(f.loop, &cl.answers, 3));
	assert_int_equal(cl.last.rc, 0);
	assert_int_equal(cl.values[0], 1004);
	/* A new connection, and no TLS probe: the first connection had answered. */
	assert_int_equal(atomic_load(&f.peer.connections), 2);
	assert_int_equal(atomic_load(&f.peer.requests), 2);
	tcploop_end_turn(&cl.c);
	teardown(&f);
}

/* Reads requests, never answers, never closes: a half-open connection, as the client
 * sees it. */
static void black_hole(struct peer *p, int fd)
{
	uint8_t req[260];
	while (read_request(fd, req))
		atomic_fetch_add(&p->requests, 1);
}

static void a_silent_connection_is_replaced(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl;
	setup_one(&f, black_hole, &cl);
	for (int i = 1; i <= 3; i++) {
		read_regs(&cl, 1, 0, 60);
		assert_true(run_until(f.loop, &cl.answers, i));
		assert_string_equal(cl.last.reason, "timeout");
	}
	/* Two time-outs in a row without a byte: the third request went on a new connection
	 * (the peer, serving one connection at a time, took it once the first was closed). */
	for (int i = 0; i < 100 && atomic_load(&f.peer.requests) < 3; i++)
		time_sleep_ms(10);
	assert_int_equal(atomic_load(&f.peer.connections), 2);
	assert_int_equal(atomic_load(&f.peer.requests), 3);
	tcploop_end_turn(&cl.c);
	tcploop_close_idle(f.ep);
	teardown(&f);
}

static void garbage(struct peer *p, int fd)
{
	uint8_t req[260];
	static const uint8_t junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	if (read_request(fd, req) && write(fd, junk, sizeof(junk)) > 0)
		atomic_fetch_add(&p->requests, 1);
	while (read_request(fd, req))
		;
}

static void bytes_that_are_not_modbus_close_the_connection(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl;
	setup_one(&f, garbage, &cl);
	read_regs(&cl, 1, 0, 2000);
	assert_true(run_until(f.loop, &cl.answers, 1));
	assert_int_equal(cl.last.rc, MB_ERR_MODBUS);
	assert_string_equal(cl.last.reason, "invalid data in response");
	tcploop_end_turn(&cl.c);
	teardown(&f);
}

/* Answers as unit 9, then with exception 2. */
static void wrong_unit_then_exception(struct peer *p, int fd)
{
	uint8_t req[260], rsp[260];
	if (!read_request(fd, req))
		return;
	size_t n = answer(req, rsp);
	rsp[6] = 9;
	if (write(fd, rsp, n) != (ssize_t)n || !read_request(fd, req))
		return;
	memcpy(rsp, req, 8);
	rsp[5] = 3;
	rsp[7] = 0x83;
	rsp[8] = 2;
	if (write(fd, rsp, 9) != 9)
		return;
	atomic_fetch_add(&p->requests, 2);
	while (read_request(fd, req))
		;
}

static void a_wrong_unit_and_an_exception(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl;
	setup_one(&f, wrong_unit_then_exception, &cl);
	read_regs(&cl, 1, 0, 2000);
	assert_true(run_until(f.loop, &cl.answers, 1));
	assert_int_equal(cl.last.rc, MB_ERR_MODBUS);
	assert_int_equal(cl.last.exception, 0);
	assert_string_equal(cl.last.reason, "response from wrong slave");
	read_regs(&cl, 1, 0, 2000);
	assert_true(run_until(f.loop, &cl.answers, 2));
	assert_int_equal(cl.last.rc, MB_ERR_MODBUS);
	assert_int_equal(cl.last.exception, 2);
	assert_string_equal(cl.last.reason, "exception 2 illegal data address");
	tcploop_end_turn(&cl.c);
	teardown(&f);
}

static void a_refused_connection_sends_nothing(void **state)
{
	(void)state;
	struct fixture f;
	struct client cl;
	setup(&f, prompt, 1);
	peer_stop(&f.peer); /* nobody listens on that port now */
	client_init(&cl);
	tcploop_wait_turn(f.ep, &cl.c, false);
	assert_true(run_until_turn(f.loop, &cl));
	read_regs(&cl, 1, 0, 2000);
	assert_true(run_until(f.loop, &cl.answers, 1));
	assert_int_equal(cl.last.rc, MB_ERR_IO);
	assert_string_equal(cl.last.reason, "connection refused");
	tcploop_end_turn(&cl.c);
	tcploop_free(f.loop);
}

struct rec {
	struct tcploop_timer t;
	int id;
};

static int fired[8], nfired;

static void record(struct tcploop_timer *t)
{
	fired[nfired++] = ((struct rec *)t)->id;
}

static void timers_fire_in_order(void **state)
{
	(void)state;
	struct tcploop *loop;
	struct rec r[5];
	static const int at[] = {40, 10, 30, 20, 50};
	assert_int_equal(tcploop_new(NULL, NULL, &loop), 0);
	int64_t now = time_mono_ms();
	nfired = 0;
	for (int i = 0; i < 5; i++) {
		r[i] = (struct rec){.t = {.fire = record}, .id = i};
		tcploop_timer_set(loop, &r[i].t, now + at[i]);
	}
	tcploop_timer_cancel(loop, &r[2].t);       /* never fires */
	tcploop_timer_set(loop, &r[4].t, now + 5); /* moved ahead of all */
	tcploop_timer_cancel(loop, &r[2].t);       /* a second cancel is harmless */
	int64_t deadline = now + 2000;
	while (nfired < 4 && time_mono_ms() < deadline)
		tcploop_step(loop, 100);
	for (int i = 0; i < 5; i++)
		tcploop_step(loop, 10);
	assert_int_equal(nfired, 4);
	assert_int_equal(fired[0], 4);
	assert_int_equal(fired[1], 1);
	assert_int_equal(fired[2], 3);
	assert_int_equal(fired[3], 0);
	assert_true(time_mono_ms() - now >= 40);
	tcploop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_late_answer_is_discarded),
		cmocka_unit_test(a_partial_answer_is_completed),
		cmocka_unit_test(a_window_of_three_on_one_connection),
		cmocka_unit_test(a_window_of_one_gives_turns_in_order),
		cmocka_unit_test(a_reset_fails_the_request_and_reconnects),
		cmocka_unit_test(a_silent_connection_is_replaced),
		cmocka_unit_test(bytes_that_are_not_modbus_close_the_connection),
		cmocka_unit_test(a_wrong_unit_and_an_exception),
		cmocka_unit_test(a_refused_connection_sends_nothing),
		cmocka_unit_test(timers_fire_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
