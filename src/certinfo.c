/*
 * certinfo.c - certificate facts and checks with OpenSSL; see certinfo.h.
 *
 * The only module that includes OpenSSL. libmosquitto does the TLS handshakes, but it
 * reports a refused broker certificate only as "certificate verify failed"; the SSL_CTX
 * made here for it keeps OpenSSL's actual verification result (expired, wrong host, wrong
 * CA), so the log can say which.
 */
#include "certinfo.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "error.h"

/* The type of the first PEM block in the file ("PRIVATE KEY", ...), or "" when none. */
static void first_pem_name(const char *path, char *out, size_t len)
{
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	FILE *f = fopen(path, "r");

	out[0] = '\0';
	if (!f)
		return;
	if (PEM_read(f, &name, &header, &data, &dlen) == 1)
		snprintf(out, len, "%s", name);
	fclose(f);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	ERR_clear_error();
}

/* Why a file holds no certificate, in terms a user can act on. */
static void not_a_cert(const char *path, char *buf, size_t len)
{
	char pem[64];

	first_pem_name(path, pem, sizeof(pem));
	if (strstr(pem, "PRIVATE KEY"))
		snprintf(buf, len, "'%s' holds a private key, not a certificate", path);
	else if (pem[0])
		snprintf(buf, len, "'%s' holds a PEM '%s', not a certificate", path, pem);
	else
		snprintf(buf, len,
			 "'%s' holds no PEM certificate (expected a '-----BEGIN CERTIFICATE-----' "
			 "block; a DER file converts with openssl x509 -inform der)",
			 path);
}

static X509 *load_cert(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(buf, len, "cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!cert)
		not_a_cert(path, buf, len);
	ERR_clear_error();
	return cert;
}

/* Never prompts (a daemon has no terminal); notes that a pass phrase was wanted. */
static int passphrase_wanted(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)userdata = 1;
	return -1;
}

static EVP_PKEY *load_key(const char *path, char *buf, size_t len)
{
	int encrypted = 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(buf, len, "cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, passphrase_wanted, &encrypted);
	fclose(f);
	ERR_clear_error();
	if (key)
		return key;
	char pem[64];
	first_pem_name(path, pem, sizeof(pem));
	if (encrypted)
		snprintf(buf, len,
			 "'%s' holds an encrypted private key, and a daemon cannot ask for its pass "
			 "phrase (store it unencrypted: openssl pkey -in KEY -out KEY.plain)",
			 path);
	else if (!strcmp(pem, "CERTIFICATE"))
		snprintf(buf, len, "'%s' holds a certificate, not a private key", path);
	else
		snprintf(buf, len, "'%s' holds no PEM private key", path);
	return NULL;
}

int certinfo_check_cert_file(const char *path, char *buf, size_t len)
{
	X509 *cert = load_cert(path, buf, len);
	if (!cert)
		return MB_ERR_TLS;
	X509_free(cert);
	return 0;
}

int certinfo_check_key_file(const char *path, char *buf, size_t len)
{
	EVP_PKEY *key = load_key(path, buf, len);
	if (!key)
		return MB_ERR_TLS;
	EVP_PKEY_free(key);
	return 0;
}

int certinfo_describe(const char *path, char *buf, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char fp[EVP_MAX_MD_SIZE * 3 + 1] = "";
	char subject[256] = "";
	char expires[64] = "";

	X509 *cert = load_cert(path, buf, len);
	if (!cert)
		return MB_ERR_TLS;
	if (X509_digest(cert, EVP_sha1(), md, &mdlen) == 1) {
		for (size_t i = 0; i < mdlen; i++)
			snprintf(fp + i * 3, sizeof(fp) - i * 3, "%02X%s", md[i],
				 i + 1 < mdlen ? ":" : "");
	}
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		strftime(expires, sizeof(expires), "%Y-%m-%d", &tm);
	snprintf(buf, len, "SHA1 %s; subject %s; expires %s", fp, subject, expires);
	X509_free(cert);
	return 0;
}

int certinfo_check_key_pair(const char *cert_path, const char *key_path, char *buf, size_t len)
{
	X509 *cert = load_cert(cert_path, buf, len);
	if (!cert)
		return MB_ERR_TLS;
	EVP_PKEY *key = load_key(key_path, buf, len);
	int rc = 0;
	if (!key) {
		rc = MB_ERR_TLS;
	} else if (X509_check_private_key(cert, key) != 1) {
		snprintf(buf, len, "the key in '%s' does not belong to the certificate in '%s'",
			 key_path, cert_path);
		rc = MB_ERR_TLS;
	}
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

/* ---------------------------------------------------------------- handshake verification */

struct certinfo_verify {
	char *host;    /* the host name we connect to */
	char *ca_desc; /* "ca_file /etc/x.crt", "the system CA store", ... */
	bool failed;   /* the last handshake's verification failed: text says why */
	char text[400];
};

static void format_time(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	if (t && ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm);
	else
		snprintf(out, len, "(unknown)");
}

static void subject_of(X509 *cert, char *out, size_t len)
{
	out[0] = '\0';
	if (cert)
		X509_NAME_oneline(X509_get_subject_name(cert), out, (int)len);
}

/* The host names a certificate is for: its DNS and IP alternative names, else its CN. */
static void names_of(X509 *cert, char *out, size_t len)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && used < len; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		char ip[64] = "";
		const char *name = NULL;
		if (gn->type == GEN_DNS) {
			name = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
		} else if (gn->type == GEN_IPADD) {
			const unsigned char *a = ASN1_STRING_get0_data(gn->d.iPAddress);
			int n = ASN1_STRING_length(gn->d.iPAddress);
			if (n == 4)
				snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
			else
				snprintf(ip, sizeof(ip), "an IPv6 address");
			name = ip;
		}
		if (name) {
			int w = snprintf(out + used, len - used, "%s%s", used ? ", " : "", name);
			if (w < 0)
				break;
			used += (size_t)w;
		}
	}
	GENERAL_NAMES_free(sans);
	if (!out[0]) {
		X509_NAME *subject = X509_get_subject_name(cert);
		int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
		const ASN1_STRING *cn =
			i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)) : NULL;
		snprintf(out, len, "%s",
			 cn ? (const char *)ASN1_STRING_get0_data(cn) : "(no name)");
	}
}

/* Turns the result of a failed verification into one sentence a user can act on. */
static void describe_verify_error(struct certinfo_verify *v, X509_STORE_CTX *ctx)
{
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
	char when[40], who[256], names[256];

	if (!cur)
		cur = leaf;
	subject_of(cur, who, sizeof(who));
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		format_time(cur ? X509_get0_notAfter(cur) : NULL, when, sizeof(when));
		if (depth == 0)
			snprintf(v->text, sizeof(v->text),
				 "the broker's certificate expired on %s (subject %s); it must be "
				 "renewed on the broker",
				 when, who);
		else
			snprintf(v->text, sizeof(v->text),
				 "the CA certificate %s in the broker's chain expired on %s", who,
				 when);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		format_time(cur ? X509_get0_notBefore(cur) : NULL, when, sizeof(when));
		snprintf(v->text, sizeof(v->text),
			 "the %s certificate %s is not valid before %s: is the gateway's clock "
			 "right?",
			 depth == 0 ? "broker's" : "CA", who, when);
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		names_of(leaf, names, sizeof(names));
		snprintf(v->text, sizeof(v->text),
			 "the broker's certificate is for host %s, not %s (connect with a name "
			 "the certificate lists)",
			 names, v->host);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE: {
		char issuer[256] = "";
		if (cur)
			X509_NAME_oneline(X509_get_issuer_name(cur), issuer, sizeof(issuer));
		snprintf(v->text, sizeof(v->text),
			 "the broker's certificate is not signed by the CA in %s (it was issued by "
			 "%s)",
			 v->ca_desc, issuer);
		break;
	}
	default:
		snprintf(v->text, sizeof(v->text),
			 "the broker's certificate was refused: %s (certificate %s, depth %d)",
			 X509_verify_cert_error_string(err), who, depth);
		break;
	}
}

/* OpenSSL's verdict on each certificate, unchanged. */
static int keep_verdict(int ok, X509_STORE_CTX *ctx)
{
	(void)ctx;
	return ok;
}

/*
 * OpenSSL's certificate check, host name included (set on the SSL_CTX), with its result
 * kept for the log. libmosquitto's own verify callback is replaced: with an SSL_CTX of
 * ours, libmosquitto 2.0.11 never allocates the ex_data index its callback looks itself
 * up with, and that callback then refuses every certificate ("unspecified" error).
 */
static int verify_and_record(X509_STORE_CTX *ctx, void *arg)
{
	struct certinfo_verify *v = arg;
	X509_STORE_CTX_set_verify_cb(ctx, keep_verdict);
	int ok = X509_verify_cert(ctx);

	if (ok <= 0) {
		v->failed = true;
		describe_verify_error(v, ctx);
	}
	return ok;
}

int certinfo_client_ctx_new(const char *host, const char *ca_desc, void **ssl_ctx,
			    struct certinfo_verify **verify)
{
	struct certinfo_verify *v = calloc(1, sizeof(*v));
	SSL_CTX *ctx = NULL;

	if (!v || !(v->host = strdup(host)) || !(v->ca_desc = strdup(ca_desc)) ||
	    !(ctx = SSL_CTX_new(TLS_client_method()))) {
		certinfo_client_ctx_free(NULL, v);
		ERR_clear_error();
		return MB_ERR_NOMEM;
	}
	/* The host name check libmosquitto would do, done by OpenSSL (RFC 6125 rules). */
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 &&
	    X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
		SSL_CTX_free(ctx);
		certinfo_client_ctx_free(NULL, v);
		ERR_clear_error();
		return MB_ERR_NOMEM;
	}
	ERR_clear_error();
	SSL_CTX_set_cert_verify_callback(ctx, verify_and_record, v);
	*ssl_ctx = ctx;
	*verify = v;
	return 0;
}

void certinfo_client_ctx_free(void *ssl_ctx, struct certinfo_verify *verify)
{
	SSL_CTX_free(ssl_ctx);
	if (verify) {
		free(verify->host);
		free(verify->ca_desc);
		free(verify);
	}
}

void certinfo_verify_reset(struct certinfo_verify *verify)
{
	verify->failed = false;
	verify->text[0] = '\0';
}

const char *certinfo_verify_failure(const struct certinfo_verify *verify)
{
	return verify->failed ? verify->text : NULL;
}

/* ---------------------------------------------------------------- TLS probe */

/* A blocking TCP connection to host:port, or -1; every send and receive bounded. */
static int connect_bounded(const char *host, int port, int timeout_ms)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct timeval tv = {timeout_ms / 1000, (suseconds_t)(timeout_ms % 1000) * 1000};
	char service[8];
	int fd = -1;

	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		/* Linux bounds connect() by the send time-out. */
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
		    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

int certinfo_probe_tls(const char *host, int port, int timeout_ms)
{
	int fd = connect_bounded(host, port, timeout_ms);
	if (fd < 0)
		return 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	int tls = 0;
	if (ssl && SSL_set_fd(ssl, fd) == 1) {
		/* Nothing is verified: the question is only whether the peer speaks TLS. */
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
		SSL_set_tlsext_host_name(ssl, host);
		int rc = SSL_connect(ssl);
		/* A server hello (and its certificate) arrived even when the server then wants
		 * a client certificate we did not send. */
		tls = rc == 1 || SSL_get0_peer_certificate(ssl) != NULL;
		if (rc == 1)
			SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	close(fd);
	return tls;
}
