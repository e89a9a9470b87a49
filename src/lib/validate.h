/*
 * validate.h — pure checks of account fields (signup, login, modelhubctl).
 *
 * Runs in: modelhub-fcgi workers (api_auth.c) and modelhubctl. Called by:
 * the signup/login handlers and create-admin. Owns: nothing; no I/O, no
 * allocation. Each check returns NULL when the value is acceptable, else a
 * static, user-facing message naming what is wrong (safe to put in the
 * "fields" object of an API error).
 */
#ifndef MH_VALIDATE_H
#define MH_VALIDATE_H

#include <stddef.h>

#define VALIDATE_USERNAME_MIN 3
#define VALIDATE_USERNAME_MAX 32
#define VALIDATE_EMAIL_MAX 254
#define VALIDATE_PASSWORD_MIN 10     /* characters (UTF-8 code points) */
#define VALIDATE_PASSWORD_MAX 1024   /* bytes: bounds the hashing work */
#define VALIDATE_NAME_MAX 100        /* first_name / last_name, characters */

/* 3–32 characters of [a-z0-9_.-]. */
const char *validate_username(const char *s, size_t len);
/* local@domain, RFC 5321 lengths, dot-atom local part, LDH domain labels
 * with at least two labels and an alphabetic TLD. */
const char *validate_email(const char *s, size_t len);
/* At least 10 characters, at most 1024 bytes, valid UTF-8 without control
 * characters, not equal (ignoring ASCII case) to username or email. */
const char *validate_password(const char *pw, size_t len, const char *username,
			      const char *email);
/* Optional display name: valid UTF-8, no control characters, ≤ 100 chars. */
const char *validate_name(const char *s, size_t len);

/* Number of UTF-8 code points, or -1 if s is not valid UTF-8 or holds a NUL
 * or another control character. */
long validate_utf8_chars(const char *s, size_t len);

#endif
