/*
 * password.c — implementation of password.h. Called by: see password.h.
 *
 * NOTES: crypto_pwhash_str_alg pins argon2id (the default algorithm of
 * crypto_pwhash_str may change between libsodium versions). The limits are
 * read from the configuration at every call, so a SIGHUP reload applies to
 * the next hash without restarting.
 */
#include "lib/password.h"
#include "lib/config.h"
#include "lib/log.h"

#include <sodium.h>

_Static_assert(PASSWORD_HASH_LEN == crypto_pwhash_STRBYTES, "hash string size");

static void limits(unsigned long long *ops, size_t *mem)
{
	if (cfg_bool("auth.pwhash_fast", 0)) {
		*ops = crypto_pwhash_OPSLIMIT_MIN;
		*mem = crypto_pwhash_MEMLIMIT_MIN;
	} else {
		*ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		*mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	}
}

int password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_LEN])
{
	unsigned long long ops;
	size_t mem;

	limits(&ops, &mem);
	if (crypto_pwhash_str_alg(out, pw, len, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		log_error_x("auth msg=\"password hashing failed (out of memory)\"");
		return -1;
	}
	return 0;
}

int password_verify(const char *hash, const char *pw, size_t len)
{
	return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

int password_needs_rehash(const char *hash)
{
	unsigned long long ops;
	size_t mem;

	limits(&ops, &mem);
	return crypto_pwhash_str_needs_rehash(hash, ops, mem) != 0;
}
