/*
 * mbsim.c - a fast Modbus TCP slave for benchmarks (libmodbus).
 *
 * The benchmark polls thousands of devices, each at its own host:port, the way a plant
 * looks to a gateway. The Python simulator of the integration tests cannot answer that
 * fast without becoming the bottleneck, so this one is a single C process: one thread,
 * one epoll loop over many listening sockets and their accepted connections (poll() would
 * walk all 10,000 descriptors of 5,000 ports at every wake-up), and one libmodbus context
 * that is pointed at whichever socket has a complete request (modbus_set_socket) before
 * modbus_reply() answers it from the register map.
 *
 * Requests are framed here, not with modbus_receive(): libmodbus waits for data with
 * select(), which aborts the process ("bit out of range 0 - FD_SETSIZE") once a socket's
 * descriptor reaches 1024, and a thousand ports with their connections go past that. The
 * framing is the MBAP header's length field; each connection keeps its partial request,
 * so a client that sends half a frame never stalls the others. Several requests in one
 * read (a client that pipelines them) are all answered, in order.
 *
 * Silent ports (-s): accept connections and read requests, but never answer, like a
 * device that hangs behind a live TCP stack; they count their requests separately.
 *
 * The data model is the same on every port and for every unit id: holding and input
 * register N hold N, coil and discrete input N hold N & 1. A benchmark can therefore check
 * any value it receives without asking the simulator.
 *
 * Stopping: SIGTERM and SIGINT arrive on a signalfd that is polled with the sockets.
 *
 * Output on stdout, for the runner: "LISTEN <index> <port>" per answering port, "SILENT
 * <index> <port>" per silent one, then "READY"; at exit "requests <n> connections <n>
 * unanswered <n>". The open-file limit is raised to what the ports need.
 *
 * This is a benchmark tool, not part of the gateway, so it may include <modbus.h>.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MBSIM_SPACE 65536 /* every address of each table */

/* What an epoll event is about: the signalfd, a listening port, or a connection. */
enum kind { K_SIGNAL, K_LISTEN, K_CONN };

/* A connection's bytes not yet answered: at most one request and the start of the next. */
struct conn {
	enum kind kind;
	int fd;
	bool silent; /* from a silent port: read, never answered */
	uint8_t buf[2 * MODBUS_TCP_MAX_ADU_LENGTH];
	size_t len;
};

struct mbsim {
	int epfd;
	struct conn signal;
	struct conn *listeners; /* answering ports, then silent ones */
	size_t nlisten, nsilent;
	modbus_t *ctx;
	modbus_mapping_t *map;
	unsigned long long requests, connections, unanswered;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: mbsim [-a ADDRESS] [-p BASE_PORT] [-n PORTS] [-s SILENT_PORTS]\n"
		"\n"
		"A Modbus TCP slave for benchmarks: listens on PORTS ports (default 1) starting\n"
		"at BASE_PORT (default 0: each port picked by the kernel) on ADDRESS (default\n"
		"127.0.0.1). Register N holds N, coil N holds N & 1, for every unit id.\n"
		"SILENT_PORTS more ports (default 0) accept connections and never answer.\n"
		"Prints \"LISTEN <index> <port>\" per port and \"SILENT <index> <port>\" per\n"
		"silent one, then \"READY\". SIGTERM/SIGINT stop it.\n");
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

static int watch(struct mbsim *s, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Room for every port, its connection and a margin: raise the soft limit to it. */
static void raise_fd_limit(size_t ports)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)(2 * ports + 64);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		fprintf(stderr,
			"mbsim: the open-file limit (%llu) is below the %llu descriptors "
			"%zu ports need\n",
			(unsigned long long)rl.rlim_cur, (unsigned long long)want, ports);
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

static void accept_client(struct mbsim *s, const struct conn *l)
{
	int one = 1;
	int fd = accept(l->fd, NULL, NULL);
	if (fd < 0)
		return;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* Replies are small and the client waits for each: never let Nagle hold one back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->kind = K_CONN;
	c->fd = fd;
	c->silent = l->silent;
	if (watch(s, c) != 0) {
		close(fd);
		free(c);
		return;
	}
	/* c is owned by the epoll set now (data.ptr), freed when its connection ends. */
	// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
	s->connections++;
}

/* Reads what c has and answers every complete request; -1 when the connection ends. */
static int serve(struct mbsim *s, struct conn *c)
{
	ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (got == 0)
		return -1;
	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->len += (size_t)got;

	/* MBAP header: transaction id (2), protocol id (2), length (2), unit id (1). */
	size_t at = 0;
	while (c->len - at >= 7) {
		const uint8_t *req = c->buf + at;
		size_t length = (size_t)req[4] << 8 | req[5];
		if (length < 2 || length > MODBUS_TCP_MAX_ADU_LENGTH - 6)
			return -1; /* not Modbus TCP: drop the connection */
		size_t total = 6 + length;
		if (c->len - at < total)
			break;
		if (c->silent) {
			s->unanswered++;
		} else {
			modbus_set_socket(s->ctx, c->fd);
			if (modbus_reply(s->ctx, req, (int)total, s->map) < 0)
				return -1;
			s->requests++;
		}
		at += total;
	}
	memmove(c->buf, c->buf + at, c->len - at);
	c->len -= at;
	return 0;
}

static void drop_client(struct conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	free(c);
}

static int open_ports(struct mbsim *s, const char *address, int base_port, size_t n, bool silent)
{
	for (size_t i = 0; i < n; i++) {
		int bound = 0;
		size_t k = s->nlisten + s->nsilent;
		int fd = listen_on(address, base_port ? base_port + (int)k : 0, &bound);
		if (fd < 0)
			return -1;
		struct conn *l = &s->listeners[k];
		*l = (struct conn){.kind = K_LISTEN, .fd = fd, .silent = silent};
		if (watch(s, l) != 0) {
			perror("mbsim: epoll_ctl");
			return -1;
		}
		if (silent)
			s->nsilent++;
		else
			s->nlisten++;
		printf("%s %zu %d\n", silent ? "SILENT" : "LISTEN", i, bound);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *address = "127.0.0.1";
	int base_port = 0, ports = 1, silent = 0, c, rc = 1;
	struct mbsim s = {.epfd = -1};
	sigset_t mask;

	static const struct option opts[] = {
		{"address", required_argument, NULL, 'a'}, {"port", required_argument, NULL, 'p'},
		{"ports", required_argument, NULL, 'n'},   {"silent", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	while ((c = getopt_long(argc, argv, "a:p:n:s:h", opts, NULL)) != -1) {
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
		case 's':
			if (parse_int(optarg, 0, 60000, &silent) != 0) {
				fprintf(stderr, "mbsim: -s: '%s' is not a count (0..60000)\n",
					optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (base_port && base_port + ports + silent - 1 > 65535)) {
		usage(stderr);
		return 2;
	}

	raise_fd_limit((size_t)ports + (size_t)silent);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN); /* a gateway closing its socket must not kill us */
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	s.signal = (struct conn){.kind = K_SIGNAL, .fd = signalfd(-1, &mask, SFD_CLOEXEC)};
	if (s.epfd < 0 || s.signal.fd < 0 || watch(&s, &s.signal) != 0) {
		perror("mbsim: epoll/signalfd");
		goto out;
	}

	s.ctx = modbus_new_tcp(address, 502); /* never connects: only frames requests */
	s.map = modbus_mapping_new(MBSIM_SPACE, MBSIM_SPACE, MBSIM_SPACE, MBSIM_SPACE);
	s.listeners = calloc((size_t)ports + (size_t)silent, sizeof(*s.listeners));
	if (!s.ctx || !s.map || !s.listeners) {
		fprintf(stderr, "mbsim: %s\n", modbus_strerror(errno));
		goto out;
	}
	fill_map(s.map);
	if (open_ports(&s, address, base_port, (size_t)ports, false) != 0 ||
	    open_ports(&s, address, base_port, (size_t)silent, true) != 0)
		goto out;
	printf("READY\n");
	fflush(stdout);

	for (;;) {
		struct epoll_event events[256];
		int n = epoll_wait(s.epfd, events, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("mbsim: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct conn *conn = events[i].data.ptr;
			if (conn->kind == K_SIGNAL)
				goto done; /* SIGTERM or SIGINT */
			if (conn->kind == K_LISTEN)
				accept_client(&s, conn);
			else if (serve(&s, conn) != 0)
				drop_client(conn);
		}
	}
done:
	rc = 0;
out:
	printf("requests %llu connections %llu unanswered %llu\n", s.requests, s.connections,
	       s.unanswered);
	/* The connections' memory goes with the process; the ports are closed by exit. */
	free(s.listeners);
	modbus_mapping_free(s.map);
	if (s.ctx)
		modbus_free(s.ctx);
	return rc;
}
