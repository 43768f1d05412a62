/*
 * httpd.c - the HTTP(S) server, over libmicrohttpd; see httpd.h.
 *
 * Why libmicrohttpd (and not civetweb): it is a GNU library packaged by Debian
 * (libmicrohttpd12) and OpenWrt (libmicrohttpd), with a long security record and a plain C
 * API whose one job is the protocol: no file serving, CGI, Lua or WebSocket to turn off,
 * and TLS through GnuTLS from PEM in memory. civetweb would bring its own embedded options
 * parser and a document root we do not want.
 *
 * libmicrohttpd is loaded with dlopen when the first server starts, not linked: it pulls in
 * GnuTLS and its helpers (p11-kit, nettle, gmp...), about 2.5 MiB of resident pages at
 * start-up, which a gateway without the web UI should not pay. The calls below go through
 * the table `mhd`, filled from the library's own symbols (the types are its header's).
 *
 * We make the listening socket ourselves, so an address in use is our clear error at
 * start-up, and hand it to libmicrohttpd. A request's body is gathered in a buffer that
 * grows up to max_body; past that the rest is read and dropped and the client gets 413.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

/* A certificate or key file is a few KB; this bounds a wrong path. */
#define PEM_MAX ((size_t)256 * 1024)
#define THREAD_STACK ((size_t)512 * 1024)

/* The soname of Debian 12's libmicrohttpd12 and of OpenWrt's libmicrohttpd. */
#define MHD_SONAME "libmicrohttpd.so.12"

static struct {
	const char *(*lookup_connection_value)(struct MHD_Connection *, enum MHD_ValueKind,
					       const char *);
	struct MHD_Response *(*create_response_from_buffer)(size_t, void *,
							    enum MHD_ResponseMemoryMode);
	enum MHD_Result (*add_response_header)(struct MHD_Response *, const char *, const char *);
	enum MHD_Result (*queue_response)(struct MHD_Connection *, unsigned int,
					  struct MHD_Response *);
	void (*destroy_response)(struct MHD_Response *);
	const union MHD_ConnectionInfo *(*get_connection_info)(struct MHD_Connection *,
							       enum MHD_ConnectionInfoType, ...);
	enum MHD_Result (*is_feature_supported)(enum MHD_FEATURE);
	struct MHD_Daemon *(*start_daemon)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
					   MHD_AccessHandlerCallback, void *, ...);
	void (*stop_daemon)(struct MHD_Daemon *);
} mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static char mhd_error[256]; /* written once, under mhd_once */

static void mhd_load(void)
{
	void *h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(mhd_error, sizeof(mhd_error), "cannot load %s: %s", MHD_SONAME, dlerror());
		return;
	}
	/* POSIX: a function pointer converts through void * as dlsym returns it. */
#define LOAD(field, name) \
	do { \
		void *sym = dlsym(h, name); \
		if (!sym) { \
			snprintf(mhd_error, sizeof(mhd_error), "%s has no %s", MHD_SONAME, name); \
			return; \
		} \
		memcpy(&mhd.field, &sym, sizeof(sym)); \
	} while (0)
	LOAD(lookup_connection_value, "MHD_lookup_connection_value");
	LOAD(create_response_from_buffer, "MHD_create_response_from_buffer");
	LOAD(add_response_header, "MHD_add_response_header");
	LOAD(queue_response, "MHD_queue_response");
	LOAD(destroy_response, "MHD_destroy_response");
	LOAD(get_connection_info, "MHD_get_connection_info");
	LOAD(is_feature_supported, "MHD_is_feature_supported");
	LOAD(start_daemon, "MHD_start_daemon");
	LOAD(stop_daemon, "MHD_stop_daemon");
#undef LOAD
	/* Kept loaded for the life of the process: servers come and go across restarts. */
}

struct httpd {
	struct MHD_Daemon *mhd;
	int fd;
	int port;
	bool tls;
	char name[32];
	size_t max_body;
	httpd_handler_fn handler;
	void *ctx;
	char *pem_cert, *pem_key;
};

/* One request in progress (libmicrohttpd's per-connection "con_cls"). */
struct pending {
	char *body;
	size_t len, cap;
	bool too_big;
	bool nomem;
};

static const char *lookup(const struct httpd_request *req, enum MHD_ValueKind kind,
			  const char *name)
{
	return mhd.lookup_connection_value((struct MHD_Connection *)req->conn, kind, name);
}

const char *httpd_header(const struct httpd_request *req, const char *name)
{
	return lookup(req, MHD_HEADER_KIND, name);
}

const char *httpd_cookie(const struct httpd_request *req, const char *name)
{
	return lookup(req, MHD_COOKIE_KIND, name);
}

const char *httpd_query(const struct httpd_request *req, const char *name)
{
	return lookup(req, MHD_GET_ARGUMENT_KIND, name);
}

static void clear_body(struct httpd_response *resp)
{
	if (resp->owned)
		free((void *)resp->body);
	resp->body = NULL;
	resp->owned = false;
}

void httpd_respond_static(struct httpd_response *resp, int status, const char *type,
			  const char *body, size_t len)
{
	clear_body(resp);
	resp->status = status;
	resp->content_type = type;
	resp->body = body;
	resp->body_len = len;
}

void httpd_respond_owned(struct httpd_response *resp, int status, const char *type, char *body,
			 size_t len)
{
	clear_body(resp);
	if (!body) {
		resp->nomem = true;
		return;
	}
	resp->status = status;
	resp->content_type = type;
	resp->body = body;
	resp->body_len = len;
	resp->owned = true;
}

void httpd_add_header(struct httpd_response *resp, const char *name, const char *fmt, ...)
{
	char value[1024];
	va_list ap;
	int n;

	if (resp->header_count >= HTTPD_MAX_HEADERS) {
		resp->nomem = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value)) {
		resp->nomem = true;
		return;
	}
	size_t len = strlen(name) + 2 + (size_t)n + 1;
	char *h = malloc(len);
	if (!h) {
		resp->nomem = true;
		return;
	}
	snprintf(h, len, "%s: %s", name, value);
	resp->headers[resp->header_count++] = h;
}

/* Headers every answer carries: no sniffing, no framing, no caching of private pages. */
static void add_common_headers(struct MHD_Response *r)
{
	mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
	mhd.add_response_header(r, "X-Frame-Options", "DENY");
	mhd.add_response_header(r, "Referrer-Policy", "no-referrer");
	mhd.add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
				"form-action 'self'; base-uri 'none'");
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct httpd_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (resp->nomem) {
		clear_body(resp);
		resp->status = 500;
		resp->content_type = "text/plain; charset=utf-8";
		resp->body = "out of memory\n";
		resp->body_len = strlen(resp->body);
		for (size_t i = 0; i < resp->header_count; i++)
			free(resp->headers[i]);
		resp->header_count = 0;
	}
	if (resp->owned) {
		r = mhd.create_response_from_buffer(resp->body_len, (void *)resp->body,
						    MHD_RESPMEM_MUST_FREE);
		if (r)
			resp->owned = false; /* libmicrohttpd frees it now */
	} else {
		r = mhd.create_response_from_buffer(resp->body_len, (void *)resp->body,
						    MHD_RESPMEM_PERSISTENT);
	}
	if (!r) {
		clear_body(resp);
		for (size_t i = 0; i < resp->header_count; i++)
			free(resp->headers[i]);
		return MHD_NO;
	}
	if (resp->content_type)
		mhd.add_response_header(r, "Content-Type", resp->content_type);
	add_common_headers(r);
	for (size_t i = 0; i < resp->header_count; i++) {
		char *colon = strchr(resp->headers[i], ':');
		if (colon) {
			*colon = '\0';
			mhd.add_response_header(r, resp->headers[i], colon + 2);
		}
		free(resp->headers[i]);
	}
	resp->header_count = 0;
	ok = mhd.queue_response(c, (unsigned)resp->status, r);
	mhd.destroy_response(r);
	return ok;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		mhd.get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(buf, len, "?");
	if (!sa)
		return;
	socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	if (getnameinfo(sa, sl, buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(buf, len, "?");
}

static bool body_append(struct pending *p, size_t max, const char *data, size_t n)
{
	if (p->too_big || p->nomem)
		return false;
	if (n > max - p->len) {
		p->too_big = true;
		free(p->body);
		p->body = NULL;
		p->len = p->cap = 0;
		return false;
	}
	if (p->len + n + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		while (cap < p->len + n + 1)
			cap *= 2;
		char *b = realloc(p->body, cap);
		if (!b) {
			p->nomem = true;
			return false;
		}
		p->body = b;
		p->cap = cap;
	}
	memcpy(p->body + p->len, data, n);
	p->len += n;
	p->body[p->len] = '\0';
	return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct httpd *h = cls;
	struct pending *p = *con_cls;
	struct httpd_response resp = {.status = 500};
	char client[64];

	(void)version;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return MHD_NO;
		*con_cls = p;
		/* A declared length beyond the limit is refused before anything is read. */
		const char *cl = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > h->max_body)
			p->too_big = true;
		return MHD_YES;
	}
	if (*upload_size) {
		body_append(p, h->max_body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (p->too_big) {
		static const char msg[] = "request body too large\n";
		log_warn("%s: %s %s from a client: body over %zu bytes, refused (413)", h->name,
			 method, url, h->max_body);
		httpd_respond_static(&resp, 413, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
		return send_response(c, &resp);
	}
	if (p->nomem) {
		resp.nomem = true;
		return send_response(c, &resp);
	}
	client_address(c, client, sizeof(client));
	struct httpd_request req = {
		.method = method,
		.path = url,
		.body = p->body ? p->body : "",
		.body_len = p->len,
		.content_type = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
							    MHD_HTTP_HEADER_CONTENT_TYPE),
		.client = client,
		.tls = h->tls,
		.conn = c,
	};
	h->handler(h->ctx, &req, &resp);
	return send_response(c, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pending *p = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (p) {
		free(p->body);
		free(p);
		*con_cls = NULL;
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	const struct httpd *h = cls;
	char text[512];

	vsnprintf(text, sizeof(text), fmt, ap);
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	log_debug("%s: libmicrohttpd: %s", h->name, text);
}

static char *read_pem(const char *path, char *why, size_t why_len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(PEM_MAX + 1);
	if (!buf) {
		fclose(f);
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, PEM_MAX, f);
	fclose(f);
	if (n == 0 || n == PEM_MAX) {
		snprintf(why, why_len, "%s is empty or larger than %zu bytes", path, PEM_MAX);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static int listen_on(struct httpd *h, const char *host, int port, int *family)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	char service[16];
	int fd, one = 1, rc;

	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host, service, &hints, &ai);
	if (rc != 0) {
		log_error("%s: cannot listen on %s port %d: %s", h->name, host, port,
			  gai_strerror(rc));
		return MB_ERR_IO;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("%s: cannot listen on %s port %d: %s", h->name, host, port,
			  strerror(errno));
		freeaddrinfo(ai);
		return MB_ERR_IO;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 32) != 0) {
		log_error("%s: cannot listen on %s port %d: %s%s", h->name, host, port,
			  strerror(errno),
			  errno == EADDRINUSE ? " (another program uses that port: set web.listen)"
					      : "");
		close(fd);
		freeaddrinfo(ai);
		return MB_ERR_IO;
	}
	*family = ai->ai_family;
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	h->port = port;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	h->fd = fd;
	return 0;
}

int httpd_start(const struct httpd_options *opt, struct httpd **out)
{
	struct httpd *h = calloc(1, sizeof(*h));
	unsigned flags =
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	char why[512];
	int family = AF_INET, rc;

	if (!h)
		return MB_ERR_NOMEM;
	pthread_once(&mhd_once, mhd_load);
	if (mhd_error[0]) {
		log_error("%s: %s (install libmicrohttpd12)", opt->name ? opt->name : "httpd",
			  mhd_error);
		free(h);
		return MB_ERR_IO;
	}
	h->fd = -1;
	snprintf(h->name, sizeof(h->name), "%s", opt->name ? opt->name : "httpd");
	h->max_body = opt->max_body;
	h->handler = opt->handler;
	h->ctx = opt->ctx;
	if (opt->tls_cert_file && opt->tls_key_file) {
		if (mhd.is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			log_error("%s: this libmicrohttpd has no TLS support; HTTPS is not available",
				  h->name);
			free(h);
			return MB_ERR_TLS;
		}
		h->pem_cert = read_pem(opt->tls_cert_file, why, sizeof(why));
		h->pem_key = h->pem_cert ? read_pem(opt->tls_key_file, why, sizeof(why)) : NULL;
		if (!h->pem_key) {
			log_error("%s: %s", h->name, why);
			httpd_stop(h);
			return MB_ERR_TLS;
		}
		h->tls = true;
		flags |= MHD_USE_TLS;
	}
	rc = listen_on(h, opt->host, opt->port, &family);
	if (rc) {
		httpd_stop(h);
		return rc;
	}
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem tls_opts[] = {
		{MHD_OPTION_HTTPS_MEM_CERT, 0, h->pem_cert},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, h->pem_key},
		{MHD_OPTION_END, 0, NULL},
	};
	h->mhd = mhd.start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET,
				  h->fd, MHD_OPTION_CONNECTION_LIMIT,
				  opt->max_connections ? opt->max_connections : 16,
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  opt->idle_timeout_s ? opt->idle_timeout_s : 60,
				  MHD_OPTION_THREAD_STACK_SIZE, THREAD_STACK,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_ARRAY,
				  h->tls ? tls_opts : &tls_opts[2], MHD_OPTION_END);
	if (!h->mhd) {
		log_error("%s: the HTTP server could not start on %s port %d%s", h->name, opt->host,
			  h->port,
			  h->tls ? " (is the TLS key unencrypted and of the certificate?)" : "");
		bool tls = h->tls;
		httpd_stop(h);
		return tls ? MB_ERR_TLS : MB_ERR_IO;
	}
	log_info("%s: listening on %s://%s%s%s:%d/", h->name, h->tls ? "https" : "http",
		 family == AF_INET6 ? "[" : "", opt->host, family == AF_INET6 ? "]" : "", h->port);
	*out = h;
	return 0;
}

int httpd_port(const struct httpd *h)
{
	return h ? h->port : 0;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	if (h->mhd) {
		/* MHD_stop_daemon closes the listening socket it was given. */
		mhd.stop_daemon(h->mhd);
		h->fd = -1;
	}
	if (h->fd >= 0)
		close(h->fd);
	if (h->pem_key)
		explicit_bzero(h->pem_key, strlen(h->pem_key));
	free(h->pem_key);
	free(h->pem_cert);
	free(h);
}
