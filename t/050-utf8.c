/* t/050-utf8.c — unit tests of the one UTF-8 validator (lib/utf8.c) and of its users' rules. */
#include "lib/utf8.h"
#include "lib/validate.h"
#include "../t/lib/tap.h"

#define S(x) x, sizeof(x) - 1

static void decode(void)
{
	uint32_t cp = 0;

	is_int(utf8_decode((const unsigned char *)"A", 1, &cp), 1, "ASCII is one byte");
	is_int(cp, 'A', "ASCII code point");
	is_int(utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp), 2, "2-byte sequence");
	is_int(cp, 0xe9, "U+00E9");
	is_int(utf8_decode((const unsigned char *)"\xe2\x82\xac", 3, &cp), 3, "3-byte sequence");
	is_int(cp, 0x20ac, "U+20AC");
	is_int(utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4, "4-byte sequence");
	is_int(cp, 0x1f600, "U+1F600");
	is_int(utf8_decode((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp), 4, "U+10FFFF ok");
	is_int(utf8_decode((const unsigned char *)"\xee\x80\x80", 3, &cp), 3, "U+E000 ok");
	is_int(utf8_decode((const unsigned char *)"\xed\x9f\xbf", 3, &cp), 3, "U+D7FF ok");
	is_int(utf8_decode((const unsigned char *)"\xe2\x82\xac", 2, &cp), 0, "cut short by n");
	is_int(utf8_decode((const unsigned char *)"\xc0\xaf", 2, &cp), 0, "2-byte overlong (C0)");
	is_int(utf8_decode((const unsigned char *)"\xc1\xbf", 2, &cp), 0, "2-byte overlong (C1)");
	is_int(utf8_decode((const unsigned char *)"\xe0\x9f\xbf", 3, &cp), 0, "3-byte overlong");
	is_int(utf8_decode((const unsigned char *)"\xf0\x8f\xbf\xbf", 4, &cp), 0, "4-byte overlong");
	is_int(utf8_decode((const unsigned char *)"\xed\xa0\x80", 3, &cp), 0, "surrogate D800");
	is_int(utf8_decode((const unsigned char *)"\xed\xbf\xbf", 3, &cp), 0, "surrogate DFFF");
	is_int(utf8_decode((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), 0, "above U+10FFFF");
	is_int(utf8_decode((const unsigned char *)"\xf5\x80\x80\x80", 4, &cp), 0, "lead F5");
	is_int(utf8_decode((const unsigned char *)"\xff", 1, &cp), 0, "lead FF");
	is_int(utf8_decode((const unsigned char *)"\x80", 1, &cp), 0, "lone continuation");
	is_int(utf8_decode((const unsigned char *)"\xc3\x28", 2, &cp), 0, "bad continuation");
}

static void valid(void)
{
	ok(utf8_valid(S("C\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")), "2-, 3-, 4-byte ok");
	ok(utf8_valid("", 0), "empty ok");
	ok(utf8_valid(S("a\0b")), "NUL allowed by utf8_valid");
	ok(!utf8_valid_text(S("a\0b")), "NUL refused by utf8_valid_text");
	ok(utf8_valid_text(S("caf\xc3\xa9")), "text ok");
	ok(!utf8_valid(S("\xc0\xaf")), "overlong rejected");
	ok(!utf8_valid(S("\xed\xa0\x80")), "surrogate rejected");
	ok(!utf8_valid(S("ab\xe2\x82")), "truncated at the end rejected");
	ok(!utf8_valid(S("\xf4\x90\x80\x80")), "above U+10FFFF rejected");
	ok(!utf8_valid(S("x\x80y")), "lone continuation rejected");
	ok(!utf8_valid_text(S("\xe2\x82\xac\xc3")), "text: truncated rejected");
	/* the length is honoured: a valid prefix of a longer buffer */
	ok(utf8_valid("ab\xff", 2), "only n bytes are read");
}

static void chars(void)
{
	is_int(validate_utf8_chars(S("a\xc3\xb1\xe2\x82\xac\xf0\x9f\x98\x80")), 4, "code points counted");
	is_int(validate_utf8_chars("", 0), 0, "empty is 0 characters");
	is_int(validate_utf8_chars(S("\xf4\x90\x80\x80")), -1, "beyond U+10FFFF rejected");
	is_int(validate_utf8_chars(S("\xc2\x85")), -1, "C1 control rejected");
	is_int(validate_utf8_chars(S("\xc2\xa0")), 1, "U+00A0 (after C1) accepted");
	is_int(validate_utf8_chars(S("\x7f")), -1, "DEL rejected");
	is_int(validate_utf8_chars(S("a\tb")), -1, "tab rejected");
	is_int(validate_utf8_chars(S("a\0b")), -1, "NUL rejected");
	is_int(validate_utf8_chars(S("\xe2\x82")), -1, "truncated rejected");
}

int main(void)
{
	decode();
	valid();
	chars();
	return done_testing();
}
