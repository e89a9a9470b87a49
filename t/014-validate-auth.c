/* t/014-validate-auth.c — unit tests of the account validators (lib/validate.c). */
#include "lib/validate.h"
#include "../t/lib/tap.h"

#define S(x) x, sizeof(x) - 1

static void usernames(void)
{
	ok(!validate_username(S("abc")), "3-char username ok");
	ok(!validate_username(S("a.b-c_d9")), "all allowed characters ok");
	ok(!validate_username(S("abcdefghijklmnopqrstuvwxyz012345")), "32 chars ok");
	ok(validate_username(S("abcdefghijklmnopqrstuvwxyz0123456")) != NULL, "33 chars rejected");
	ok(validate_username(S("ab")) != NULL, "2 chars rejected");
	ok(validate_username("", 0) != NULL, "empty rejected");
	ok(validate_username(NULL, 0) != NULL, "NULL rejected");
	is_str(validate_username("", 0), "required", "empty says required");
	ok(validate_username(S("Alice")) != NULL, "uppercase rejected");
	ok(validate_username(S("al ice")) != NULL, "space rejected");
	ok(validate_username(S("al@ice")) != NULL, "@ rejected");
	ok(validate_username(S("al\0ce")) != NULL, "embedded NUL rejected");
	ok(validate_username(S("ålice")) != NULL, "non-ASCII rejected");
}

static void emails(void)
{
	ok(!validate_email(S("a@example.org")), "simple email ok");
	ok(!validate_email(S("first.last+tag@sub.example.co")), "dots, plus, subdomain ok");
	ok(!validate_email(S("UPPER@Example.ORG")), "upper case ok");
	ok(!validate_email(S("x@a-b.io")), "hyphen inside label ok");
	is_str(validate_email("", 0), "required", "empty email says required");
	ok(validate_email(NULL, 0) != NULL, "NULL email rejected");
	ok(validate_email(S("plainaddress")) != NULL, "no @ rejected");
	ok(validate_email(S("a@@example.org")) != NULL, "two @ rejected");
	ok(validate_email(S("a@b@example.org")) != NULL, "two separated @ rejected");
	ok(validate_email(S("@example.org")) != NULL, "empty local part rejected");
	ok(validate_email(S("a@")) != NULL, "empty domain rejected");
	ok(validate_email(S("a@localhost")) != NULL, "single-label domain rejected");
	ok(validate_email(S(".a@example.org")) != NULL, "leading dot rejected");
	ok(validate_email(S("a.@example.org")) != NULL, "trailing dot in local rejected");
	ok(validate_email(S("a..b@example.org")) != NULL, "double dot rejected");
	ok(validate_email(S("a b@example.org")) != NULL, "space rejected");
	ok(validate_email(S("a@exa mple.org")) != NULL, "space in domain rejected");
	ok(validate_email(S("a@-example.org")) != NULL, "label starting with - rejected");
	ok(validate_email(S("a@example-.org")) != NULL, "label ending with - rejected");
	ok(validate_email(S("a@example..org")) != NULL, "empty label rejected");
	ok(validate_email(S("a@example.org.")) != NULL, "trailing dot in domain rejected");
	ok(validate_email(S("a@example.c")) != NULL, "1-letter TLD rejected");
	ok(validate_email(S("a@example.123")) != NULL, "numeric TLD rejected");
	ok(validate_email(S("a\0b@example.org")) != NULL, "embedded NUL rejected");
	ok(validate_email(S("a\n@example.org")) != NULL, "newline rejected");
	ok(validate_email(S("\"a\"@example.org")) != NULL, "quoted local part rejected");

	char big[300];
	memset(big, 'a', sizeof big);
	memcpy(big + 64, "@", 1);
	memcpy(big + 290, ".org", 4);
	for (int i = 65; i < 290; i += 50)
		big[i] = '.';
	ok(validate_email(big, 294) != NULL, "over 254 chars rejected");
	ok(validate_email(S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.org")) !=
		   NULL, "65-char local part rejected");
	ok(!validate_email(S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.org")),
	   "64-char local part ok");
}

static void passwords(void)
{
	ok(!validate_password(S("correct horse"), "alice", "a@example.org"), "good password ok");
	ok(!validate_password(S("0123456789"), "alice", "a@example.org"), "exactly 10 ok");
	ok(validate_password(S("012345678"), "alice", "a@example.org") != NULL, "9 rejected");
	is_str(validate_password("", 0, "alice", NULL), "required", "empty says required");
	ok(validate_password(NULL, 0, NULL, NULL) != NULL, "NULL rejected");
	/* 10 bytes but 5 characters: length counts characters */
	ok(validate_password(S("ééééé"), NULL, NULL) != NULL, "5 two-byte chars rejected");
	ok(!validate_password(S("éééééééééé"), NULL, NULL), "10 two-byte chars ok");
	ok(validate_password(S("aliceliddell"), "aliceliddell", NULL) != NULL,
	   "equal to username rejected");
	ok(validate_password(S("AliceLiddell"), "aliceliddell", NULL) != NULL,
	   "equal to username ignoring case rejected");
	ok(validate_password(S("a@example.org"), "alice", "a@example.org") != NULL,
	   "equal to email rejected");
	ok(!validate_password(S("a@example.org1"), "alice", "a@example.org"),
	   "email plus a char ok");
	ok(validate_password(S("abcdefghij\0k"), NULL, NULL) != NULL, "embedded NUL rejected");
	ok(validate_password(S("abcdefghij\tk"), NULL, NULL) != NULL, "control char rejected");
	ok(validate_password(S("abcdefghij\xff"), NULL, NULL) != NULL, "invalid UTF-8 rejected");
	ok(validate_password(S("abcdefghij\xc3"), NULL, NULL) != NULL, "truncated UTF-8 rejected");
	ok(validate_password(S("abcdefghij\xed\xa0\x80"), NULL, NULL) != NULL,
	   "UTF-8 surrogate rejected");
	ok(validate_password(S("abcdefghij\xc0\xaf"), NULL, NULL) != NULL, "overlong rejected");

	static char longpw[1100];
	memset(longpw, 'x', sizeof longpw);
	ok(!validate_password(longpw, 1024, NULL, NULL), "1024 bytes ok");
	ok(validate_password(longpw, 1025, NULL, NULL) != NULL, "1025 bytes rejected");
}

static void names(void)
{
	ok(!validate_name(NULL, 0), "absent name ok");
	ok(!validate_name(S("")), "empty name ok");
	ok(!validate_name(S("Zoë O'Brien")), "accented name ok");
	ok(validate_name(S("a\nb")) != NULL, "newline rejected");
	static char n[120];
	memset(n, 'n', sizeof n);
	ok(!validate_name(n, 100), "100 chars ok");
	ok(validate_name(n, 101) != NULL, "101 chars rejected");
	is_int(validate_utf8_chars(S("añ€😀")), 4, "code points counted");
	is_int(validate_utf8_chars(S("\xf4\x90\x80\x80")), -1, "beyond U+10FFFF rejected");
	is_int(validate_utf8_chars(S("\xc2\x85")), -1, "C1 control rejected");
	is_int(validate_utf8_chars(S("\x7f")), -1, "DEL rejected");
}

int main(void)
{
	usernames();
	emails();
	passwords();
	names();
	return done_testing();
}
