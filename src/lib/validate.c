/*
 * validate.c — pure checks of account fields (see validate.h).
 *
 * Runs in: modelhub-fcgi workers and modelhubctl. Called by: api_auth.c,
 * the ctl create-admin command and t/014-validate-auth. Owns: nothing.
 *
 * NOTES: lengths are passed explicitly because JSON strings may carry an
 * embedded NUL ("\u0000"); such values are rejected rather than silently
 * truncated at the NUL by C string functions.
 */
#include "lib/validate.h"
#include "lib/utf8.h"

#include <string.h>
#include <strings.h>

static int has_nul(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

long validate_utf8_chars(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	long n = 0;

	for (size_t i = 0; i < len; n++) {
		uint32_t cp;
		size_t k = utf8_decode(p + i, len - i, &cp);

		/* malformed, C0 controls (NUL included), DEL, C1 controls */
		if (k == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return -1;
		i += k;
	}
	return n;
}

const char *validate_username(const char *s, size_t len)
{
	if (!s || len == 0)
		return "required";
	if (len < VALIDATE_USERNAME_MIN || len > VALIDATE_USERNAME_MAX)
		return "must be 3 to 32 characters long";
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return "may only contain lowercase letters, digits, '_', '.' and '-'";
	}
	return NULL;
}

static int is_atext(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL;
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_ldh(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '-';
}

static const char *check_local(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return "must have 1 to 64 characters before the '@'";
	if (s[0] == '.' || s[len - 1] == '.')
		return "must not start or end the part before '@' with a dot";
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return "must not contain two dots in a row";
			continue;
		}
		if (!is_atext(s[i]))
			return "contains a character not allowed in an email address";
	}
	return NULL;
}

static const char *check_domain(const char *s, size_t len)
{
	size_t start = 0, labels = 0, last_start = 0;

	if (len == 0 || len > 253)
		return "must have a domain after the '@'";
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!is_ldh(s[i]))
				return "has an invalid domain";
			continue;
		}
		size_t l = i - start;
		if (l == 0 || l > 63)
			return "has an invalid domain";
		if (s[start] == '-' || s[i - 1] == '-')
			return "has an invalid domain";
		labels++;
		last_start = start;
		start = i + 1;
	}
	if (labels < 2)
		return "must have a domain with a dot, e.g. example.org";
	if (len - last_start < 2)
		return "has an invalid top-level domain";
	for (size_t i = last_start; i < len; i++)
		if (!is_alpha(s[i]))
			return "has an invalid top-level domain";
	return NULL;
}

const char *validate_email(const char *s, size_t len)
{
	const char *at;
	const char *err;

	if (!s || len == 0)
		return "required";
	if (has_nul(s, len))
		return "is not a valid email address";
	if (len > VALIDATE_EMAIL_MAX)
		return "must be at most 254 characters long";
	at = memchr(s, '@', len);
	if (!at || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
		return "must contain exactly one '@'";
	if ((err = check_local(s, (size_t)(at - s))) != NULL)
		return err;
	return check_domain(at + 1, len - (size_t)(at - s) - 1);
}

const char *validate_password(const char *pw, size_t len, const char *username,
			      const char *email)
{
	long chars;

	if (!pw || len == 0)
		return "required";
	if (len > VALIDATE_PASSWORD_MAX)
		return "must be at most 1024 bytes long";
	chars = validate_utf8_chars(pw, len);
	if (chars < 0)
		return "must be valid UTF-8 text without control characters";
	if (chars < VALIDATE_PASSWORD_MIN)
		return "must be at least 10 characters long";
	if (username && strlen(username) == len && strncasecmp(pw, username, len) == 0)
		return "must not be the same as the username";
	if (email && strlen(email) == len && strncasecmp(pw, email, len) == 0)
		return "must not be the same as the email";
	return NULL;
}

const char *validate_name(const char *s, size_t len)
{
	long chars;

	if (!s)
		return NULL;
	chars = validate_utf8_chars(s, len);
	if (chars < 0)
		return "must be valid UTF-8 text without control characters";
	if (chars > VALIDATE_NAME_MAX)
		return "must be at most 100 characters long";
	return NULL;
}
