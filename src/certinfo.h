/*
 * certinfo.h - certificates with OpenSSL: facts about certificate files for `modbridge
 * check` and the loader, and why a broker's certificate was refused.
 *
 * Like the router's certificate screen, we show each certificate's SHA-1 fingerprint, so a
 * user can compare it with what the broker operator published. The file checks are
 * thread-safe. A certinfo_verify belongs to one MQTT link: it is written during that
 * link's handshakes and read between them, on the link's network thread only.
 */
#ifndef MODBRIDGE_CERTINFO_H
#define MODBRIDGE_CERTINFO_H

#include <stddef.h>

/*
 * Describes the first certificate in the PEM file at path as
 * "SHA1 06:90:...; subject CN=...; expires 2027-01-01" into buf.
 * Returns 0, or MB_ERR_TLS with the reason in buf.
 */
int certinfo_describe(const char *path, char *buf, size_t len);

/* Checks that path holds a PEM certificate (the first of a CA bundle is enough).
 * Returns 0, or MB_ERR_TLS with the reason in buf ("'x' holds a private key, not a
 * certificate", ...). */
int certinfo_check_cert_file(const char *path, char *buf, size_t len);

/* Checks that path holds an unencrypted PEM private key (a daemon cannot ask for a pass
 * phrase). Returns 0, or MB_ERR_TLS with the reason in buf. */
int certinfo_check_key_file(const char *path, char *buf, size_t len);

/* Checks that the private key in key_path belongs to the certificate in cert_path.
 * Returns 0, or MB_ERR_TLS with the reason in buf. */
int certinfo_check_key_pair(const char *cert_path, const char *key_path, char *buf, size_t len);

struct certinfo_verify;

/*
 * Makes an OpenSSL SSL_CTX (returned as void *, for libmosquitto's MOSQ_OPT_SSL_CTX) whose
 * certificate verification works as usual but keeps, in *verify, why it failed. host is
 * the name connected to and ca_desc names the trust anchors for messages ("ca_file
 * '/etc/x.crt'"). Returns 0 or MB_ERR_NOMEM. Free both with certinfo_client_ctx_free.
 */
int certinfo_client_ctx_new(const char *host, const char *ca_desc, void **ssl_ctx,
			    struct certinfo_verify **verify);

/* Drops our reference to ssl_ctx (libmosquitto keeps its own) and frees verify. NULLs ok. */
void certinfo_client_ctx_free(void *ssl_ctx, struct certinfo_verify *verify);

/* Forgets the last result: call before each connection attempt. */
void certinfo_verify_reset(struct certinfo_verify *verify);

/*
 * Why the broker's certificate was refused since the last reset ("the broker's
 * certificate expired on 2020-01-02 00:00 UTC ...", "... is for host a.example, not b"),
 * or NULL when no verification failed. Valid until the next handshake or reset.
 */
const char *certinfo_verify_failure(const struct certinfo_verify *verify);

/*
 * Whether host:port answers a TLS client hello with a server hello: for the hint "this is
 * a TLS port" when a plain-TCP peer (MQTT over tcp://, Modbus TCP) drops the connection
 * without a word. Blocks for at most about 2 x timeout_ms. Returns 1 (TLS) or 0 (not TLS,
 * or no answer).
 */
int certinfo_probe_tls(const char *host, int port, int timeout_ms);

#endif
