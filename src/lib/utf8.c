/*
 * utf8.c — implementation of utf8.h.
 *
 * Runs in: every process. Called by: see utf8.h. Owns: nothing.
 *
 * NOTES: the lead byte fixes the length and rules out the two-byte
 * overlongs (0xC0, 0xC1) and everything above 0xF4; the three- and
 * four-byte overlongs, the surrogates and code points above U+10FFFF are
 * caught on the decoded value. ASCII runs skip the decoder, which keeps
 * validating a large request body cheap.
 */
#include "lib/utf8.h"

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

static int scan(const char *str, size_t n, int nul_ok)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len;

		if (s[i] < 0x80) {
			if (s[i] == 0 && !nul_ok)
				return 0;
			i++;
			continue;
		}
		len = utf8_decode(s + i, n - i, &cp);
		if (len == 0)
			return 0;
		i += len;
	}
	return 1;
}

int utf8_valid(const char *s, size_t n) { return scan(s, n, 1); }
int utf8_valid_text(const char *s, size_t n) { return scan(s, n, 0); }
