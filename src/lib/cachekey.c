/*
 * cachekey.c — implementation of cachekey.h.
 *
 * Runs in: modelhub-fcgi workers and modelhubd runners. Owns: nothing.
 */
#include "lib/cachekey.h"

#include <sodium.h>
#include <string.h>

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t cachekey_canonical(const char *input, size_t len, const char **start)
{
	while (len > 0 && is_ws(*input)) {
		input++;
		len--;
	}
	while (len > 0 && is_ws(input[len - 1]))
		len--;
	*start = input;
	return len;
}

int cachekey_raw(const char *input, unsigned char out[32])
{
	const char *s;
	size_t n;

	if (sodium_init() < 0)
		return -1;
	n = cachekey_canonical(input, strlen(input), &s);
	crypto_hash_sha256(out, (const unsigned char *)s, n);
	return 0;
}

int cachekey_hex(const char *input, char *hex)
{
	unsigned char d[crypto_hash_sha256_BYTES];

	if (cachekey_raw(input, d) < 0)
		return -1;
	sodium_bin2hex(hex, CACHEKEY_HEX_LEN + 1, d, sizeof d);
	return 0;
}
