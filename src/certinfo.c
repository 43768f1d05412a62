/* certinfo.c - certificate fingerprints and key checks with OpenSSL; see certinfo.h. */
#include "certinfo.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

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
		snprintf(buf, len, "'%s' holds no PEM certificate", path);
	return cert;
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
	FILE *f = fopen(key_path, "r");
	if (!f) {
		snprintf(buf, len, "cannot read '%s': %s", key_path, strerror(errno));
		X509_free(cert);
		return MB_ERR_TLS;
	}
	/* An empty pass phrase: an encrypted key fails here instead of prompting. */
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, (void *)"");
	fclose(f);
	int rc = 0;
	if (!key) {
		snprintf(buf, len, "'%s' holds no unencrypted PEM private key", key_path);
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
