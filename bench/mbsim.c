/*
 * mbsim.c - a fast Modbus TCP slave for benchmarks (libmodbus).
 *
 * The benchmark polls hundreds of devices, each at its own host:port, the way a plant
 * looks to a gateway. The Python simulator of the integration tests cannot answer that
 * fast without becoming the bottleneck, so this one is a single C process: one thread,
 * one poll() loop over many listening sockets and their accepted connections, and one
 * libmodbus context that is pointed at whichever socket has a complete request
 * (modbus_set_socket) before modbus_reply() answers it from the register map.
 *
 * Requests are framed here, not with modbus_receive(): libmodbus waits for data with
 * select(), which aborts the process ("bit out of range 0 - FD_SETSIZE") once a socket's
 * descriptor reaches 1024, and a thousand ports with their connections go past that. The
 * framing is the MBAP header's length field; each connection keeps its partial request,
 * so a client that sends half a frame never stalls the others.
 *
 * The data model is the same on every port and for every unit id: holding and input
 * register N hold N, coil and discrete input N hold N & 1. A benchmark can therefore check
 * any value it receives without asking the simulator.
 *
 * Stopping: SIGTERM and SIGINT arrive on a signalfd that is polled with the sockets.
 *
 * Output on stdout, for the runner: "LISTEN <index> <port>" per listening socket, then
 * "READY"; at exit "requests <n> connections <n>".
 *
 * This is a benchmark tool, not part of the gateway, so it may include <modbus.h>.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MBSIM_SPACE 65536 /* every address of each table */

/* A connection's bytes not yet answered: at most one request and the start of the next. */
struct conn {
	uint8_t buf[2 * MODBUS_TCP_MAX_ADU_LENGTH];
	size_t len;
};

struct mbsim {
	struct pollfd *fds;  /* [0] signalfd, [1..nlisten] listeners, then clients */
	struct conn **conns; /* parallel to fds; NULL for the signalfd and listeners */
	size_t nfds, cap;
	size_t nlisten;
	modbus_t *ctx;
	modbus_mapping_t *map;
	unsigned long long requests, connections;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: mbsim [-a ADDRESS] [-p BASE_PORT] [-n PORTS]\n"
		"\n"
		"A Modbus TCP slave for benchmarks: listens on PORTS ports (default 1) starting\n"
		"at BASE_PORT (default 0: each port picked by the kernel) on ADDRESS (default\n"
		"127.0.0.1). Register N holds N, coil N holds N & 1, for every unit id.\n"
		"Prints \"LISTEN <index> <port>\" per port, then \"READY\". SIGTERM/SIGINT stop it.\n");
}

/* Parses a whole decimal number within [min, max]; returns -1 when it is not one. */
static int parse_int(const char *text, int min, int max, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int add_fd(struct mbsim *s, int fd, struct conn *conn)
{
	if (s->nfds == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct pollfd *fds = realloc(s->fds, cap * sizeof(*fds));
		if (fds)
			s->fds = fds;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, on purpose */
		struct conn **conns = realloc(s->conns, cap * sizeof(*conns));
		if (conns)
			s->conns = conns;
		if (!fds || !conns)
			return -1;
		s->cap = cap;
	}
	s->fds[s->nfds] = (struct pollfd){.fd = fd, .events = POLLIN};
	s->conns[s->nfds] = conn;
	s->nfds++;
	return 0;
}

static int listen_on(const char *address, int port, int *bound_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd;

	if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
		fprintf(stderr, "mbsim: '%s' is not an IPv4 address\n", address);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		fprintf(stderr, "mbsim: cannot listen on %s:%d: %s\n", address, port,
			strerror(errno));
		close(fd);
		return -1;
	}
	*bound_port = ntohs(sa.sin_port);
	return fd;
}

static void fill_map(modbus_mapping_t *map)
{
	for (int i = 0; i < MBSIM_SPACE; i++) {
		map->tab_registers[i] = (uint16_t)i;
		map->tab_input_registers[i] = (uint16_t)i;
		map->tab_bits[i] = (uint8_t)(i & 1);
		map->tab_input_bits[i] = (uint8_t)(i & 1);
	}
}

static void accept_client(struct mbsim *s, int lfd)
{
	int one = 1;
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return;
	/* Replies are small and the client waits for each: never let Nagle hold one back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	struct conn *conn = calloc(1, sizeof(*conn));
	if (!conn || add_fd(s, fd, conn) != 0) {
		free(conn);
		close(fd);
		return;
	}
	s->connections++;
}

/* Reads what fds[i] has and answers every complete request; -1 when the connection ends. */
static int serve(struct mbsim *s, size_t i)
{
	struct conn *c = s->conns[i];
	ssize_t got = read(s->fds[i].fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (got == 0)
		return -1;
	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->len += (size_t)got;

	/* MBAP header: transaction id (2), protocol id (2), length (2), unit id (1). */
	while (c->len >= 7) {
		size_t length = (size_t)c->buf[4] << 8 | c->buf[5];
		if (length < 2 || length > MODBUS_TCP_MAX_ADU_LENGTH - 6)
			return -1; /* not Modbus TCP: drop the connection */
		size_t total = 6 + length;
		if (c->len < total)
			break;
		modbus_set_socket(s->ctx, s->fds[i].fd);
		if (modbus_reply(s->ctx, c->buf, (int)total, s->map) < 0)
			return -1;
		s->requests++;
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
	}
	return 0;
}

static void drop_client(struct mbsim *s, size_t i)
{
	close(s->fds[i].fd);
	free(s->conns[i]);
	s->nfds--;
	s->fds[i] = s->fds[s->nfds];
	s->conns[i] = s->conns[s->nfds];
}

int main(int argc, char **argv)
{
	const char *address = "127.0.0.1";
	int base_port = 0, ports = 1, c, rc = 1;
	struct mbsim s = {0};
	sigset_t mask;

	static const struct option opts[] = {
		{"address", required_argument, NULL, 'a'},
		{"port", required_argument, NULL, 'p'},
		{"ports", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	while ((c = getopt_long(argc, argv, "a:p:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a': address = optarg; break;
		case 'p':
			if (parse_int(optarg, 0, 65535, &base_port) != 0) {
				fprintf(stderr, "mbsim: -p: '%s' is not a port (0..65535)\n",
					optarg);
				return 2;
			}
			break;
		case 'n':
			if (parse_int(optarg, 1, 60000, &ports) != 0) {
				fprintf(stderr, "mbsim: -n: '%s' is not a count (1..60000)\n",
					optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (base_port && base_port + ports - 1 > 65535)) {
		usage(stderr);
		return 2;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN); /* a gateway closing its socket must not kill us */
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0 || add_fd(&s, sfd, NULL) != 0) {
		perror("mbsim: signalfd");
		goto out;
	}

	s.ctx = modbus_new_tcp(address, 502); /* never connects: only frames requests */
	s.map = modbus_mapping_new(MBSIM_SPACE, MBSIM_SPACE, MBSIM_SPACE, MBSIM_SPACE);
	if (!s.ctx || !s.map) {
		fprintf(stderr, "mbsim: %s\n", modbus_strerror(errno));
		goto out;
	}
	fill_map(s.map);

	for (int i = 0; i < ports; i++) {
		int bound = 0;
		int fd = listen_on(address, base_port ? base_port + i : 0, &bound);
		if (fd < 0 || add_fd(&s, fd, NULL) != 0)
			goto out;
		s.nlisten++;
		printf("LISTEN %d %d\n", i, bound);
	}
	printf("READY\n");
	fflush(stdout);

	for (;;) {
		int n = poll(s.fds, s.nfds, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("mbsim: poll");
			goto out;
		}
		if (s.fds[0].revents)
			break; /* SIGTERM or SIGINT */
		for (size_t i = 1; i <= s.nlisten; i++)
			if (s.fds[i].revents & POLLIN)
				accept_client(&s, s.fds[i].fd);
		/* Walk backwards so drop_client()'s swap with the last entry skips nothing. */
		for (size_t i = s.nfds; i-- > 1 + s.nlisten;) {
			if (!s.fds[i].revents)
				continue;
			if ((s.fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && serve(&s, i) != 0)
				drop_client(&s, i);
		}
	}
	rc = 0;
out:
	printf("requests %llu connections %llu\n", s.requests, s.connections);
	for (size_t i = 0; i < s.nfds; i++) {
		close(s.fds[i].fd);
		free(s.conns[i]);
	}
	free(s.fds);
	free(s.conns);
	modbus_mapping_free(s.map);
	modbus_free(s.ctx);
	return rc;
}
