/*
 * utf8.h — the one UTF-8 validator: well-formed sequences only (no
 * overlong forms, surrogates, code points above U+10FFFF, stray or missing
 * continuation bytes).
 *
 * Runs in: every process. Called by: api_core.c (JSON bodies), csvin.c and
 * api_requests.c (submitted inputs), validate.c (account fields), and
 * t/050-utf8. Owns: nothing. Pure: no I/O, no allocation.
 *
 * Lengths are always explicit: JSON strings may carry an embedded NUL
 * (\u0000), which the callers that store text must refuse rather than
 * silently truncate.
 */
#ifndef MH_UTF8_H
#define MH_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decode the sequence at s[0..n) (n > 0): its length in bytes (1 to 4) with
 * the code point in *cp, or 0 when it is not well-formed (including a
 * sequence cut short by n). */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* 1 if s[0..n) is well-formed UTF-8 (NUL bytes allowed), else 0. */
int utf8_valid(const char *s, size_t n);
/* 1 if s[0..n) is well-formed UTF-8 without NUL bytes (storable text). */
int utf8_valid_text(const char *s, size_t n);

#endif
