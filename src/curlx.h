/*
 * curlx.h - transfers with libcurl for the HTTP and FTP uplinks: the one module that
 * includes <curl/curl.h>.
 *
 * A curlx owns one libcurl multi handle and one thread that drives it. The uplink's logic
 * runs on that thread too: each turn of the loop calls the owner's tick() (which may
 * submit transfers and says how long it may wait) and reports every finished transfer to
 * done(). So connection reuse comes from the multi handle's cache (HTTP keep-alive, one
 * FTP control connection while uploads follow each other), and the owner needs no lock
 * for what only its callbacks touch. Proxies come from the usual environment variables
 * (http_proxy, https_proxy, no_proxy...), as libcurl does by default: nothing here turns
 * that off.
 *
 * Threading: curlx_new/start/stop/free on the owner's thread; curlx_wake from any thread;
 * curlx_submit only from tick() or done() (the curlx thread). After curlx_stop returns no
 * callback runs any more; transfers not finished are abandoned without a done() call.
 * Ownership: a request's strings and body are borrowed until its done() call (or the stop).
 * Errors: 0 or a negative mb_error (error.h).
 */
#ifndef MODBRIDGE_CURLX_H
#define MODBRIDGE_CURLX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curlx;

enum curlx_method {
	CURLX_POST,   /* HTTP POST of the body */
	CURLX_PUT,    /* HTTP PUT of the body */
	CURLX_GET,    /* HTTP GET (the body is not sent) */
	CURLX_UPLOAD, /* FTP/SFTP upload of the body to the URL's file */
};

struct curlx_request {
	const char *url; /* http(s)://, ftp://, ftps:// (implicit TLS), sftp:// */
	enum curlx_method method;
	const char *body;
	size_t len;
	const char *const *headers; /* "Name: value", HTTP only */
	size_t nheaders;
	const char *username; /* NULL: none */
	const char *password;
	const char *bearer; /* HTTP bearer token, NULL: none */
	/* TLS (https, ftp with ftp_tls). NULL ca_file: the system's CA store. */
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	bool insecure; /* no peer or host name verification (allow_all_certificates) */
	bool ftp_tls;  /* ftp://: AUTH TLS required (explicit FTPS) */
	/* SFTP: private key (public key derived by libssh2) and the known_hosts file; with
	 * ssh_insecure any host key is accepted. */
	const char *ssh_key_file;
	const char *known_hosts;
	bool ssh_insecure;
	/* Commands after the upload on the same connection (FTP: "RNFR a", "RNTO b"; SFTP:
	 * "rename /a /b"); a leading '*' lets a failure pass. */
	const char *const *postquote;
	size_t npostquote;
	int timeout_ms; /* whole transfer, > 0 */
	void *user;     /* handed back in done() */
};

struct curlx_result {
	void *user;
	int error;              /* 0: the transfer completed (whatever the HTTP status) */
	char message[300];      /* why, when error != 0 */
	long status;            /* HTTP status, or the last FTP reply code; 0 when none */
	int64_t retry_after_ms; /* HTTP Retry-After (seconds or date) from now; -1: none */
	char reply[128];        /* the first bytes of an HTTP reply body (NUL-terminated) */
	size_t reply_len;
};

struct curlx_hooks {
	/* Called every turn of the loop: submit what is due; returns how long the loop may
	 * sleep at most (ms) before the next call. */
	int64_t (*tick)(void *ctx, struct curlx *cx);
	/* A transfer finished (successfully or not). */
	void (*done)(void *ctx, struct curlx *cx, const struct curlx_result *res);
	void *ctx;
};

/* Once per process before any thread starts (libcurl's global init is not thread-safe). */
int curlx_global_init(void);
void curlx_global_cleanup(void);

/* Creates a curlx (not started). Returns 0, MB_ERR_NOMEM. */
int curlx_new(const struct curlx_hooks *hooks, struct curlx **out);

/* Starts the thread. Returns 0 or MB_ERR_NOMEM. */
int curlx_start(struct curlx *cx);

/* Makes the loop call tick() soon. Any thread. */
void curlx_wake(struct curlx *cx);

/* Starts a transfer (curlx thread only). Returns 0, MB_ERR_NOMEM or MB_ERR_INVAL. */
int curlx_submit(struct curlx *cx, const struct curlx_request *req);

/* Transfers running now (curlx thread only). */
size_t curlx_running(const struct curlx *cx);

/* Stops the thread; unfinished transfers are dropped without done(). Accepts NULL. */
void curlx_stop(struct curlx *cx);

/* Frees a stopped curlx. Accepts NULL. */
void curlx_free(struct curlx *cx);

/*
 * An HTTP Retry-After value in ms from now_s (seconds since the epoch): delta-seconds or
 * an HTTP date (a date in the past is 0). Returns -1 when it is neither. Pure.
 */
int64_t curlx_retry_after_ms(const char *value, int64_t now_s);

/* Percent-encodes text for a URL query into a malloc'd string (NULL: out of memory). */
char *curlx_escape(const char *text, size_t len);

/* libcurl's version and what it supports, for messages ("libcurl/7.88.1 ... sftp"). */
const char *curlx_version(void);

/* Whether this libcurl can speak the scheme ("sftp", "ftps", "https"). */
bool curlx_supports(const char *scheme);

#endif
