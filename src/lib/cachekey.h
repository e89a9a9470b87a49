/*
 * cachekey.h — the compound-cache key (DESIGN.md §4 input_cache).
 *
 * Runs in: API workers (lookup at submit) and runners (insert after a
 * request completes); both must use this one function so keys agree.
 * Key = SHA-256 (libsodium crypto_hash_sha256) of the canonical input, as
 * 64 lower-case hex digits; the model version is a separate column of the
 * cache's primary key. Canonical input = the text with leading and trailing
 * ASCII whitespace removed (the API never talks to a model, so it cannot ask
 * a model server for canonical SMILES; both sides use the trimmed text).
 */
#ifndef MH_CACHEKEY_H
#define MH_CACHEKEY_H

#include <stddef.h>

#define CACHEKEY_HEX_LEN 64

/* Canonical form of input[0..len): *start and the returned length. */
size_t cachekey_canonical(const char *input, size_t len, const char **start);
/* hex: CACHEKEY_HEX_LEN + 1 bytes. 0, or -1 when libsodium cannot start. */
int cachekey_hex(const char *input, char *hex);
/* Raw 32-byte digest of the canonical input. 0 / -1. */
int cachekey_raw(const char *input, unsigned char out[32]);

#endif
