/*
 * certinfo.h - facts about certificate files for `modbridge check` (OpenSSL).
 * Like the router's certificate screen, we show each certificate's SHA-1 fingerprint, so a
 * user can compare it with what the broker operator published.
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

/* Checks that the private key in key_path belongs to the certificate in cert_path.
 * Returns 0, or MB_ERR_TLS with the reason in buf. */
int certinfo_check_key_pair(const char *cert_path, const char *key_path, char *buf, size_t len);

#endif
