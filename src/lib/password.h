/*
 * password.h — password hashing and verification (libsodium argon2id,
 * crypto_pwhash_str).
 *
 * Runs in: modelhub-fcgi workers (signup, login, rehash on login) and
 * modelhubctl (create-admin, reset-password). Called by: api_auth.c,
 * db_user.c, t/052-password. Owns: nothing; the caller holds the password
 * and the hash, and wipes its own copies. Callers must have called
 * sodium_init().
 *
 * Limits are OPSLIMIT/MEMLIMIT_INTERACTIVE (2 passes, 64 MiB), or the MIN
 * limits when the config key auth.pwhash_fast is true (tests only: hashing
 * then takes microseconds; a production config must never set it). Hashes
 * made with other limits still verify: the string carries them, and
 * password_needs_rehash() tells the caller to store a fresh one.
 */
#ifndef MH_PASSWORD_H
#define MH_PASSWORD_H

#include <stddef.h>

/* crypto_pwhash_STRBYTES: the NUL-terminated hash string fits in 128 bytes. */
#define PASSWORD_HASH_LEN 128

/* Hash pw[0..len) into out. 0 / -1 (out of memory; logged). */
int password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_LEN]);
/* 1 match, 0 no match (or a malformed hash). */
int password_verify(const char *hash, const char *pw, size_t len);
/* 1 when the hash was made with other limits than the current ones. */
int password_needs_rehash(const char *hash);

#endif
