/*
 * passwd.h - password hashes for the web UI's logins, over libcrypt (libxcrypt).
 *
 * The only module that includes <crypt.h>. `modbridge passwd` makes a hash with
 * passwd_hash (yescrypt, "$y$...", the default of Debian 12 and of OpenWrt's shadow
 * passwords); the configuration holds it as web.users[].password_hash and the web UI checks
 * a login with passwd_verify. yescrypt is deliberately slow (tens of ms), which also slows a
 * guessing attack down.
 *
 * Thread-safe: every call works on its own struct crypt_data (heap, ~32 KB while it runs).
 * Errors: MB_ERR_INVAL (a password or hash that cannot be used), MB_ERR_NOMEM.
 * Never log a password, and never send a hash back to a browser.
 */
#ifndef MODBRIDGE_PASSWD_H
#define MODBRIDGE_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

/* Longest password accepted, in bytes. */
#define PASSWD_MAX_LEN 1024
/* Room for any hash passwd_hash makes. */
#define PASSWD_HASH_MAX 384

/*
 * Hashes password with yescrypt and a fresh random salt into out (out_len >= PASSWD_HASH_MAX
 * is always enough). Returns 0, MB_ERR_INVAL (empty, too long, or a NUL inside) or
 * MB_ERR_NOMEM / MB_ERR_IO (no randomness).
 */
int passwd_hash(const char *password, char *out, size_t out_len);

/* True when password matches hash (compared in constant time). False for any problem. */
bool passwd_verify(const char *password, const char *hash);

/*
 * Whether hash is a crypt(3) hash libcrypt can check (yescrypt, bcrypt, sha512crypt, ...).
 * Returns NULL when usable, else a static reason for the configuration's message.
 */
const char *passwd_hash_problem(const char *hash);

#endif
