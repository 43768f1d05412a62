/*
 * passwd.c - password hashes with libcrypt; see passwd.h.
 *
 * crypt_gensalt_rn with a NULL random source takes its salt from the kernel (getrandom),
 * so no seeding is ours to get wrong. A verification always runs the hash, even for an
 * unknown user (the caller passes a dummy hash), so the time taken does not tell which
 * user names exist.
 */
#include "passwd.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int passwd_hash(const char *password, char *out, size_t out_len)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *h;
	int rc = 0;

	if (!password || !*password || strlen(password) > PASSWD_MAX_LEN || !out)
		return MB_ERR_INVAL;
	/* count 0: libcrypt's default cost for yescrypt. */
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)))
		return MB_ERR_IO;
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return MB_ERR_NOMEM;
	h = crypt_r(password, setting, cd);
	if (!h || h[0] == '*' || strlen(h) >= out_len)
		rc = MB_ERR_INVAL;
	else
		memcpy(out, h, strlen(h) + 1);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

bool passwd_verify(const char *password, const char *hash)
{
	struct crypt_data *cd;
	const char *h;
	bool ok = false;

	if (!password || !hash || strlen(password) > PASSWD_MAX_LEN)
		return false;
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return false;
	h = crypt_r(password, hash, cd);
	if (h && h[0] != '*') {
		size_t n = strlen(hash);
		unsigned char diff = (unsigned char)(strlen(h) != n);

		for (size_t i = 0; i < n && h[i]; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		ok = diff == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

const char *passwd_hash_problem(const char *hash)
{
	if (!hash || !*hash)
		return "empty (make one with: modbridge passwd)";
	if (hash[0] != '$')
		return "not a password hash (make one with: modbridge passwd; never write the password itself)";
	switch (crypt_checksalt(hash)) {
	case CRYPT_SALT_OK: return NULL;
	case CRYPT_SALT_METHOD_LEGACY:
		return "uses a weak legacy method (make a new one with: modbridge passwd)";
	case CRYPT_SALT_METHOD_DISABLED: return "uses a method this libcrypt has disabled";
	default: return "not a hash libcrypt can check (make one with: modbridge passwd)";
	}
}
