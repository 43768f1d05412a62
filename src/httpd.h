/*
 * httpd.h - a small HTTP(S) server inside the daemon, over libmicrohttpd.
 *
 * The only module that includes <microhttpd.h>. It listens, speaks HTTP/1.1 (and TLS when
 * given a certificate and key), collects each request's body up to a size limit (a larger
 * one is answered 413 without reaching the handler), and hands the complete request to
 * one handler, which fills in a response. It knows no routes and no pages: the web UI
 * (web*.c) routes on top of it, and so can a metrics endpoint. Bodies of forms are
 * parsed by httpform.h, not here.
 *
 * Threading: libmicrohttpd's listening thread plus one thread per connection (bounded by
 * max_connections), so a slow handler (a Modbus read) delays only its own connection;
 * the handler runs on those threads, several at once, and must be thread-safe. Idle, the
 * server is one thread blocked in poll(). httpd_start and httpd_stop from one thread;
 * httpd_stop waits for handlers in progress.
 *
 * Ownership: a request and everything it points to are borrowed for the handler's call; the
 * response's body and headers are malloc'd by the handler (httpd_respond & co.) and freed
 * here. Errors: httpd_start returns 0, MB_ERR_IO (cannot listen: the reason is logged),
 * MB_ERR_TLS (the certificate or key cannot be read) or MB_ERR_NOMEM.
 */
#ifndef MODBRIDGE_HTTPD_H
#define MODBRIDGE_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#define HTTPD_MAX_HEADERS 8

struct httpd;

struct httpd_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* decoded path, without the query string */
	const char *body;   /* the whole body, NUL-terminated (may hold NUL bytes itself) */
	size_t body_len;
	const char *content_type; /* NULL when absent */
	const char *client;       /* the peer's address, numeric */
	bool tls;
	void *conn; /* private: for httpd_header, httpd_cookie, httpd_query */
};

/* A request header, cookie or query argument (decoded) by name; NULL when absent. */
const char *httpd_header(const struct httpd_request *req, const char *name);
const char *httpd_cookie(const struct httpd_request *req, const char *name);
const char *httpd_query(const struct httpd_request *req, const char *name);

struct httpd_response {
	int status;               /* default 500 until set */
	const char *content_type; /* static string */
	const char *body;         /* see owned */
	size_t body_len;
	bool owned; /* body is malloc'd and freed by the server; else static, kept as is */
	char *headers[HTTPD_MAX_HEADERS]; /* "Name: value", malloc'd */
	size_t header_count;
	bool nomem; /* a header or body could not be allocated: the client gets a 500 */
};

/* Sets the status, type and a static body (not copied). */
void httpd_respond_static(struct httpd_response *resp, int status, const char *type,
			  const char *body, size_t len);

/* Sets the status, type and a malloc'd body that the server frees (NULL: out of memory). */
void httpd_respond_owned(struct httpd_response *resp, int status, const char *type, char *body,
			 size_t len);

/* Adds a response header (printf-style value). */
void httpd_add_header(struct httpd_response *resp, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

typedef void (*httpd_handler_fn)(void *ctx, const struct httpd_request *req,
				 struct httpd_response *resp);

struct httpd_options {
	const char *name;          /* for the log: "web" */
	const char *host;          /* numeric address to bind: "127.0.0.1", "::", ... */
	int port;                  /* 0: any free port (see httpd_port) */
	const char *tls_cert_file; /* both set: HTTPS */
	const char *tls_key_file;
	size_t max_body;          /* longest request body accepted */
	unsigned max_connections; /* at once; more wait in the kernel's listen queue */
	unsigned idle_timeout_s;  /* a connection idle this long is closed */
	httpd_handler_fn handler;
	void *ctx;
};

/* Listens and starts the server. Returns 0 and *out, or an error (logged). */
int httpd_start(const struct httpd_options *opt, struct httpd **out);

/* The port listened on (useful with port 0). */
int httpd_port(const struct httpd *h);

/* Stops listening, waits for handlers in progress, closes every connection, frees.
 * Accepts NULL. */
void httpd_stop(struct httpd *h);

#endif
