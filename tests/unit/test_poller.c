/*
 * test_poller.c - remote requests on a bus without a polled device (src/poller.c,
 * poller_execute): with no poller (`modbridge at`) and inside a running poller, where
 * they take turns per bus, give up after their wait, leave other buses alone and are
 * released when the poller stops. The Modbus peer is a small TCP server in this file
 * (functions 3 and 6) that counts connections and requests and can answer late.
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
#include "poller.h"
#include "poller_internal.h"
#include "timeutil.h"

#define PEER_MAX_CONNECTIONS 16
#define REQUEST_TIMEOUT_MS 3000

struct peer;

struct conn_arg {
	struct peer *peer;
	int fd;
};

struct peer {
	int listen_fd;
	int port;
	atomic_int delay_ms;    /* before each answer */
	atomic_int connections; /* accepted so far */
	atomic_int requests;    /* received so far */
	atomic_int in_flight;   /* received and not answered yet */
	atomic_int max_in_flight;
	atomic_int last_write_address, last_write_value;
	pthread_t acceptor;
	pthread_t conn_threads[PEER_MAX_CONNECTIONS];
	struct conn_arg conns[PEER_MAX_CONNECTIONS];
};

static bool read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* Serves one connection: MBAP header, then read holding registers (value = address) or
 * write single register (echoed), answered after the peer's delay. */
static void *peer_conn_main(void *arg)
{
	struct peer *peer = ((struct conn_arg *)arg)->peer;
	int fd = ((struct conn_arg *)arg)->fd;
	uint8_t req[260], rsp[260];

	while (read_full(fd, req, 7)) {
		size_t len = ((size_t)req[4] << 8) | req[5];
		if (len < 2 || len > 254 || !read_full(fd, req + 7, len - 1))
			break;
		atomic_fetch_add(&peer->requests, 1);
		int now = atomic_fetch_add(&peer->in_flight, 1) + 1;
		int max = atomic_load(&peer->max_in_flight);
		while (now > max && !atomic_compare_exchange_weak(&peer->max_in_flight, &max, now))
			;
		int delay = atomic_load(&peer->delay_ms);
		if (delay > 0)
			time_sleep_ms(delay);
		uint16_t addr = (uint16_t)((req[8] << 8) | req[9]);
		uint16_t n = (uint16_t)((req[10] << 8) | req[11]);
		size_t pdu;
		memcpy(rsp, req, 7); /* transaction id, protocol, unit */
		rsp[7] = req[7];
		if (req[7] == 3 && n >= 1 && n <= 125) {
			rsp[8] = (uint8_t)(2 * n);
			for (uint16_t i = 0; i < n; i++) {
				rsp[9 + 2 * i] = (uint8_t)((addr + i) >> 8);
				rsp[10 + 2 * i] = (uint8_t)(addr + i);
			}
			pdu = 2 + 2 * (size_t)n;
		} else if (req[7] == 6) {
			atomic_store(&peer->last_write_address, addr);
			atomic_store(&peer->last_write_value, n);
			memcpy(rsp + 8, req + 8, 4);
			pdu = 5;
		} else {
			rsp[7] = (uint8_t)(req[7] | 0x80);
			rsp[8] = 1; /* illegal function */
			pdu = 2;
		}
		rsp[4] = (uint8_t)((pdu + 1) >> 8);
		rsp[5] = (uint8_t)(pdu + 1);
		/* Not in flight once answered: a request that follows this answer must not be
		 * counted as overlapping it. */
		atomic_fetch_sub(&peer->in_flight, 1);
		if (write(fd, rsp, 7 + pdu) != (ssize_t)(7 + pdu))
			break;
	}
	return NULL;
}

static void *peer_accept_main(void *arg)
{
	struct peer *peer = arg;

	for (;;) {
		int fd = accept(peer->listen_fd, NULL, NULL);
		if (fd < 0)
			break; /* the test shut the listening socket down */
		int i = atomic_load(&peer->connections);
		/* A connection it cannot serve is closed: the client sees it fail. */
		if (i == PEER_MAX_CONNECTIONS) {
			close(fd);
			continue;
		}
		peer->conns[i] = (struct conn_arg){.peer = peer, .fd = fd};
		if (pthread_create(&peer->conn_threads[i], NULL, peer_conn_main, &peer->conns[i])) {
			close(fd);
			continue;
		}
		atomic_store(&peer->connections, i + 1);
	}
	return NULL;
}

static void peer_start(struct peer *peer, int delay_ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t sl = sizeof(sa);

	memset(peer, 0, sizeof(*peer));
	atomic_store(&peer->delay_ms, delay_ms);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peer->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(peer->listen_fd >= 0);
	assert_int_equal(bind(peer->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(peer->listen_fd, 8), 0);
	assert_int_equal(getsockname(peer->listen_fd, (struct sockaddr *)&sa, &sl), 0);
	peer->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&peer->acceptor, NULL, peer_accept_main, peer), 0);
}

static void peer_stop(struct peer *peer)
{
	shutdown(peer->listen_fd, SHUT_RDWR);
	pthread_join(peer->acceptor, NULL);
	close(peer->listen_fd);
	int n = atomic_load(&peer->connections);
	for (int i = 0; i < n; i++) {
		shutdown(peer->conns[i].fd, SHUT_RDWR);
		pthread_join(peer->conn_threads[i], NULL);
		close(peer->conns[i].fd);
	}
}

/* Waits up to 5 s until *counter reaches want. */
static bool wait_for(atomic_int *counter, int want)
{
	for (int i = 0; i < 500 && atomic_load(counter) < want; i++)
		time_sleep_ms(10);
	return atomic_load(counter) >= want;
}

/* One remote read of 3 holding registers at address 10 of the peer, on its own thread. */
struct call {
	struct poller *poller;
	const struct peer *peer;
	int wait_ms;
	uint16_t values[3];
	struct poll_request req;
	int rc;
	int64_t took_ms;
	pthread_t thread;
};

static void call_run(struct call *c)
{
	memset(&c->req, 0, sizeof(c->req));
	c->req.slave = 1;
	c->req.function = 3;
	c->req.address = 10;
	c->req.count = 3;
	c->req.values = c->values;
	c->req.timeout_ms = REQUEST_TIMEOUT_MS;
	int64_t t0 = time_mono_ms();
	c->rc = poller_execute(c->poller, NULL, "127.0.0.1", c->peer->port, &c->req, c->wait_ms);
	c->took_ms = time_mono_ms() - t0;
}

static void *call_main(void *arg)
{
	call_run(arg);
	return NULL;
}

static void call_start(struct call *c, struct poller *p, const struct peer *peer, int wait_ms)
{
	memset(c, 0, sizeof(*c));
	c->poller = p;
	c->peer = peer;
	c->wait_ms = wait_ms;
	assert_int_equal(pthread_create(&c->thread, NULL, call_main, c), 0);
}

static void assert_read_ok(const struct call *c)
{
	assert_int_equal(c->rc, 0);
	assert_int_equal(c->req.rc, 0);
	assert_int_equal(c->values[0], 10);
	assert_int_equal(c->values[1], 11);
	assert_int_equal(c->values[2], 12);
}

static void no_sink(void *ctx, const struct reading *r)
{
	(void)ctx;
	(void)r;
	fail_msg("no device is polled, so no reading may come");
}

/* A running poller with no polled device: every bus is one it does not serve. */
static struct poller *start_empty_poller(void)
{
	static const struct config cfg = {.modbus_enabled = true};
	struct poller *p = NULL;
	assert_int_equal(poller_start(&cfg, no_sink, NULL, &p), 0);
	assert_non_null(p);
	return p;
}

static void without_a_poller_the_bus_is_opened_directly(void **state)
{
	(void)state;
	struct peer peer;
	struct call c = {0};
	peer_start(&peer, 0);

	c.peer = &peer;
	c.wait_ms = 1000;
	call_run(&c); /* poller NULL: `modbridge at` without a daemon */
	assert_read_ok(&c);

	uint16_t value = 4242;
	struct poll_request w = {.write = true,
				 .slave = 1,
				 .function = 6,
				 .address = 5,
				 .count = 1,
				 .values = &value,
				 .timeout_ms = REQUEST_TIMEOUT_MS};
	assert_int_equal(poller_execute(NULL, NULL, "127.0.0.1", peer.port, &w, 1000), 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(atomic_load(&peer.last_write_address), 5);
	assert_int_equal(atomic_load(&peer.last_write_value), 4242);
	peer_stop(&peer);
	assert_int_equal(atomic_load(&peer.requests), 2);
}

static void an_unpolled_bus_is_served_by_the_poller(void **state)
{
	(void)state;
	struct peer peer;
	struct call c = {0};
	peer_start(&peer, 0);
	struct poller *p = start_empty_poller();

	c.poller = p;
	c.peer = &peer;
	c.wait_ms = 1000;
	call_run(&c);
	assert_read_ok(&c);
	/* And a peer that is not there: the device's reason, not a poller error. */
	struct peer gone;
	peer_start(&gone, 0);
	peer_stop(&gone);
	c.peer = &gone;
	call_run(&c);
	assert_int_equal(c.rc, 0);
	assert_int_not_equal(c.req.rc, 0);
	assert_string_equal(c.req.reason, "connection refused");

	poller_stop(p);
	peer_stop(&peer);
}

static void requests_on_an_unpolled_bus_take_turns(void **state)
{
	(void)state;
	struct peer peer;
	struct call a, b, c;
	peer_start(&peer, 300);
	struct poller *p = start_empty_poller();

	int64_t t0 = time_mono_ms();
	call_start(&a, p, &peer, 5000);
	call_start(&b, p, &peer, 5000);
	call_start(&c, p, &peer, 5000);
	pthread_join(a.thread, NULL);
	pthread_join(b.thread, NULL);
	pthread_join(c.thread, NULL);
	int64_t took = time_mono_ms() - t0;
	assert_read_ok(&a);
	assert_read_ok(&b);
	assert_read_ok(&c);
	/* One after the other, never two on the bus at once. */
	assert_int_equal(atomic_load(&peer.requests), 3);
	assert_int_equal(atomic_load(&peer.max_in_flight), 1);
	assert_true(took >= 3 * 300);

	poller_stop(p);
	peer_stop(&peer);
}

static void a_request_that_waits_too_long_is_withdrawn(void **state)
{
	(void)state;
	struct peer peer;
	struct call a, b;
	peer_start(&peer, 1500);
	struct poller *p = start_empty_poller();

	call_start(&a, p, &peer, 5000);
	assert_true(wait_for(&peer.requests, 1)); /* a is on the bus */
	call_start(&b, p, &peer, 200);
	pthread_join(b.thread, NULL);
	assert_int_equal(b.rc, MB_ERR_BUSY);
	assert_true(b.took_ms >= 150 && b.took_ms < 1200);
	pthread_join(a.thread, NULL);
	assert_read_ok(&a);
	/* Nothing of b reached the bus, then or later. */
	time_sleep_ms(100);
	assert_int_equal(atomic_load(&peer.requests), 1);
	assert_int_equal(atomic_load(&peer.connections), 1);

	poller_stop(p);
	peer_stop(&peer);
}

static void other_buses_do_not_wait(void **state)
{
	(void)state;
	struct peer slow, quick;
	struct call a, b;
	peer_start(&slow, 1500);
	peer_start(&quick, 0);
	struct poller *p = start_empty_poller();

	call_start(&a, p, &slow, 5000);
	assert_true(wait_for(&slow.requests, 1));
	call_start(&b, p, &quick, 200);
	pthread_join(b.thread, NULL);
	assert_read_ok(&b);
	assert_true(b.took_ms < 1000);
	pthread_join(a.thread, NULL);
	assert_read_ok(&a);

	poller_stop(p);
	peer_stop(&slow);
	peer_stop(&quick);
}

static int users(struct poller *p)
{
	pthread_mutex_lock(&p->users_lock);
	int n = p->users;
	pthread_mutex_unlock(&p->users_lock);
	return n;
}

static void stopping_releases_the_waiting_requests(void **state)
{
	(void)state;
	struct peer peer;
	struct call a, b;
	peer_start(&peer, 1000);
	struct poller *p = start_empty_poller();

	call_start(&a, p, &peer, 10000);
	assert_true(wait_for(&peer.requests, 1));
	call_start(&b, p, &peer, 10000);
	for (int i = 0; i < 500 && users(p) < 2; i++)
		time_sleep_ms(10);
	assert_int_equal(users(p), 2); /* b waits for its turn */

	poller_stop(p); /* returns once both callers have left */
	pthread_join(b.thread, NULL);
	pthread_join(a.thread, NULL);
	assert_int_equal(b.rc, MB_ERR_BUSY);
	assert_true(b.took_ms < 5000);
	assert_read_ok(&a); /* the request on the bus finished first */
	assert_int_equal(atomic_load(&peer.requests), 1);
	peer_stop(&peer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(without_a_poller_the_bus_is_opened_directly),
		cmocka_unit_test(an_unpolled_bus_is_served_by_the_poller),
		cmocka_unit_test(requests_on_an_unpolled_bus_take_turns),
		cmocka_unit_test(a_request_that_waits_too_long_is_withdrawn),
		cmocka_unit_test(other_buses_do_not_wait),
		cmocka_unit_test(stopping_releases_the_waiting_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
