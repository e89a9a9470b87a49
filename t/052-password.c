/* t/052-password.c — unit tests of password hashing (lib/password.c): argon2id, verify, limits, rehash. */
#include "lib/config.h"
#include "lib/password.h"
#include "../t/lib/tap.h"

#include <sodium.h>

#define S(x) x, sizeof(x) - 1

int main(void)
{
	char h1[PASSWORD_HASH_LEN], h2[PASSWORD_HASH_LEN], fast[PASSWORD_HASH_LEN];

	if (sodium_init() < 0) {
		ok(0, "sodium_init");
		return done_testing();
	}
	/* the real (INTERACTIVE) limits once: what production stores */
	cfg_set("auth.pwhash_fast", "0");
	is_int(password_hash(S("correct horse"), h1), 0, "hash with the interactive limits");
	ok(strncmp(h1, "$argon2id$", 10) == 0, "argon2id string: %.30s", h1);
	ok(strstr(h1, "m=65536") != NULL, "64 MiB memory limit in the string");
	ok(password_verify(h1, S("correct horse")), "right password verifies");
	ok(!password_verify(h1, S("correct horsf")), "wrong password does not");
	ok(!password_verify(h1, S("correct hors")), "a prefix does not");
	ok(!password_verify(h1, "correct horse\0x", 15), "the length counts, not the NUL");
	ok(!password_needs_rehash(h1), "current limits: no rehash");

	/* a second hash of the same password is salted differently */
	is_int(password_hash(S("correct horse"), h2), 0, "hash again");
	ok(strcmp(h1, h2) != 0, "random salt: two hashes differ");

	/* the test-only fast limits */
	cfg_set("auth.pwhash_fast", "1");
	is_int(password_hash(S("correct horse"), fast), 0, "hash with the MIN limits");
	ok(strstr(fast, "m=8,") != NULL, "8 KiB memory limit in the string: %s", fast);
	ok(password_verify(fast, S("correct horse")), "fast hash verifies");
	ok(password_verify(h1, S("correct horse")), "old-limit hash still verifies");
	ok(password_needs_rehash(h1), "other limits than the current ones: rehash");
	ok(!password_needs_rehash(fast), "current limits: no rehash");

	ok(!password_verify("not a hash", S("correct horse")), "malformed hash: no match");
	ok(!password_verify("", S("")), "empty hash: no match");
	ok(password_needs_rehash("$argon2i$bogus"), "malformed hash needs a rehash");
	is_int(password_hash("", 0, fast), 0, "empty password hashes");
	ok(password_verify(fast, "", 0), "and verifies");
	cfg_free();
	return done_testing();
}
