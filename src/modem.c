/*
 * modem.c - the modem's AT port; see modem.h.
 *
 * A modem's reply to "AT+CSQ\r" typically looks like
 *     AT+CSQ\r            (the echo, while echo is on: ATE1, the default)
 *     \r\n+CSQ: 21,99\r\n (information lines)
 *     \r\nOK\r\n          (the final result code)
 * Lines are split on '\n' with '\r' removed; empty lines are skipped; the first line is
 * dropped when it is the echo of the command. Unsolicited result codes (RING, +CREG: ...)
 * that arrive in the middle are kept as information lines: they cannot be told apart.
 * Input that is waiting before a command (a late reply, an unsolicited code) is flushed so
 * it is never taken for the answer.
 */
#include "modem.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "timeutil.h"

/* Raw bytes kept from one reply before the line split; more is read and discarded. */
#define READ_MAX 8192

struct modem {
	const struct modem_config *cfg;
	int fd;
	/* One command at a time: the remote worker and the web UI's console share the port. */
	pthread_mutex_t lock;
};

int modem_new(const struct modem_config *cfg, struct modem **out)
{
	struct modem *m = calloc(1, sizeof(*m));
	if (!m)
		return MB_ERR_NOMEM;
	m->cfg = cfg;
	m->fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

static void port_close(struct modem *m)
{
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
}

void modem_free(struct modem *m)
{
	if (!m)
		return;
	port_close(m);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

const char *modem_device(const struct modem *m)
{
	return m->cfg->device;
}

static speed_t speed_of(int baudrate)
{
	switch (baudrate) {
	case 1200: return B1200;
	case 2400: return B2400;
	case 4800: return B4800;
	case 9600: return B9600;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	case 230400: return B230400;
	case 460800: return B460800;
	case 921600: return B921600;
	default: return B115200;
	}
}

static int port_open(struct modem *m, char *reason, size_t len)
{
	const char *dev = m->cfg->device;
	struct termios t;
	int fd = open(dev, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		snprintf(reason, len, "cannot open the modem %s: %s", dev, strerror(errno));
		return MB_ERR_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(reason, len, "the modem %s is in use by another process%s", dev,
			 errno == EWOULDBLOCK ? " (is the daemon running?)" : "");
		close(fd);
		return MB_ERR_IO;
	}
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		t.c_cflag |= CLOCAL | CREAD;
		t.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CRTSCTS);
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		cfsetispeed(&t, speed_of(m->cfg->baudrate));
		cfsetospeed(&t, speed_of(m->cfg->baudrate));
		if (tcsetattr(fd, TCSANOW, &t) != 0)
			log_debug("modem %s: cannot set the line settings: %s", dev,
				  strerror(errno));
	} else {
		/* Not a terminal (a test double on a plain pipe, say): use it as it is. */
		log_debug("modem %s: not a terminal: %s", dev, strerror(errno));
	}
	tcflush(fd, TCIOFLUSH);
	m->fd = fd;
	return 0;
}

static bool is_final(const char *line)
{
	static const char *const exact[] = {
		"OK", "ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE",
	};
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(line, exact[i]))
			return true;
	/* CONNECT ends the command phase too: the modem is then in data mode. */
	return !strncmp(line, "+CME ERROR", 10) || !strncmp(line, "+CMS ERROR", 10) ||
	       !strncmp(line, "CONNECT", 7);
}

/* Appends line to reply->text ('\n'-separated), marking a cut once when it is full. */
static void add_line(struct modem_reply *reply, size_t *used, bool *cut, const char *line)
{
	size_t n = strlen(line);
	if (*cut)
		return;
	if (*used + n + 2 > sizeof(reply->text) - 16) {
		snprintf(reply->text + *used, sizeof(reply->text) - *used, "%s(cut)",
			 *used ? "\n" : "");
		*used += strlen(reply->text + *used);
		*cut = true;
		return;
	}
	if (*used)
		reply->text[(*used)++] = '\n';
	memcpy(reply->text + *used, line, n + 1);
	*used += n;
}

static int write_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -1;
		int64_t left = deadline - time_mono_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		poll(&pfd, 1, (int)left);
	}
	return 0;
}

static int command_locked(struct modem *m, const char *command, struct modem_reply *reply,
			  char *reason, size_t reason_len)
{
	size_t clen = strlen(command);
	int timeout_ms = m->cfg->timeout_ms;

	if (clen == 0 || clen > MODEM_COMMAND_MAX) {
		snprintf(reason, reason_len, "a modem command has 1..%d characters",
			 MODEM_COMMAND_MAX);
		return MB_ERR_INVAL;
	}
	for (size_t i = 0; i < clen; i++) {
		if ((unsigned char)command[i] < 0x20 || command[i] == 0x7f) {
			snprintf(reason, reason_len, "a modem command must be one line of text");
			return MB_ERR_INVAL;
		}
	}
	if (m->fd < 0 && port_open(m, reason, reason_len) != 0)
		return MB_ERR_IO;

	/* Whatever is waiting (a late answer, an unsolicited code) is not our answer. */
	tcflush(m->fd, TCIFLUSH);
	int64_t deadline = time_mono_ms() + timeout_ms;
	char line_end = '\r';
	if (write_all(m->fd, command, clen, deadline) != 0 ||
	    write_all(m->fd, &line_end, 1, deadline) != 0) {
		snprintf(reason, reason_len, "cannot write to the modem %s: %s", m->cfg->device,
			 strerror(errno));
		port_close(m);
		return MB_ERR_IO;
	}

	char *raw = malloc(READ_MAX + 1);
	struct modem_reply *r = calloc(1, sizeof(*r));
	if (!raw || !r) {
		free(raw);
		free(r);
		snprintf(reason, reason_len, "out of memory");
		return MB_ERR_NOMEM;
	}
	size_t raw_len = 0, used = 0;
	bool cut = false, first = true, final = false;
	int rc = 0;

	while (!final) {
		int64_t left = deadline - time_mono_ms();
		if (left <= 0) {
			snprintf(reason, reason_len, "the modem %s did not answer within %d ms",
				 m->cfg->device, timeout_ms);
			rc = MB_ERR_IO;
			break;
		}
		struct pollfd pfd = {.fd = m->fd, .events = POLLIN};
		int n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			continue;
		char chunk[512];
		ssize_t got = n > 0 ? read(m->fd, chunk, sizeof(chunk)) : -1;
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0) {
			snprintf(reason, reason_len, "the modem %s stopped answering: %s",
				 m->cfg->device, got == 0 ? "end of file" : strerror(errno));
			port_close(m); /* reopened by the next command */
			rc = MB_ERR_IO;
			break;
		}
		for (ssize_t i = 0; i < got && !final; i++) {
			char c = chunk[i];
			if (c != '\n' && c != '\r') {
				if (raw_len < READ_MAX)
					raw[raw_len++] = c;
				continue;
			}
			/* A line is complete at '\r' or '\n'; "\r\n" gives one line and one empty. */
			raw[raw_len] = '\0';
			raw_len = 0;
			if (!raw[0])
				continue;
			if (first && !strcasecmp(raw, command)) {
				first = false; /* the echo */
				continue;
			}
			first = false;
			if (is_final(raw)) {
				snprintf(r->final, sizeof(r->final), "%s", raw);
				r->ok = !strcmp(raw, "OK");
				final = true;
			} else {
				add_line(r, &used, &cut, raw);
			}
		}
	}
	if (rc == 0)
		*reply = *r;
	free(raw);
	free(r);
	return rc;
}

int modem_command(struct modem *m, const char *command, struct modem_reply *reply, char *reason,
		  size_t reason_len)
{
	pthread_mutex_lock(&m->lock);
	int rc = command_locked(m, command, reply, reason, reason_len);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int modem_read_imei(struct modem *m, char *imei, size_t imei_len, char *reason, size_t reason_len)
{
	struct modem_reply r;
	int rc = modem_command(m, "AT+CGSN", &r, reason, reason_len);
	if (rc)
		return rc;
	if (!r.ok) {
		snprintf(reason, reason_len, "the modem answered AT+CGSN with %s", r.final);
		return MB_ERR_INVAL;
	}
	/* "357299070082380", or "+CGSN: \"357299070082380\"" on some modems. */
	for (char *line = r.text; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char digits[24];
		size_t n = 0;
		bool other = false;
		const char *p = line;
		if (!strncmp(p, "+CGSN:", 6))
			p += 6;
		for (; *p; p++) {
			if (isdigit((unsigned char)*p)) {
				if (n < sizeof(digits) - 1)
					digits[n++] = *p;
			} else if (*p != ' ' && *p != '"') {
				other = true;
			}
		}
		digits[n] = '\0';
		if (!other && n >= 14 && n <= 17 && n < imei_len) {
			memcpy(imei, digits, n + 1);
			return 0;
		}
		line = next;
	}
	snprintf(reason, reason_len, "the modem's answer to AT+CGSN holds no IMEI");
	return MB_ERR_INVAL;
}
