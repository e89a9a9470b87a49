/* 022-cachekey.c — unit test of the compound-cache key (lib/cachekey.c). */
#include "lib/cachekey.h"
#include "t/lib/tap.h"

int main(void)
{
	char a[CACHEKEY_HEX_LEN + 1], b[CACHEKEY_HEX_LEN + 1];
	const char *s;
	size_t n;

	is_int(cachekey_hex("CCO", a), 0, "key computed");
	is_str(a, "ab1de819ede91df490e6441934decfa9041b49f91d6bbadbba4df634ccff57fa",
	       "key is the SHA-256 hex of the text");
	cachekey_hex("  CCO\t\r\n", b);
	is_str(b, a, "leading/trailing whitespace does not change the key");
	cachekey_hex("C CO", b);
	ok(strcmp(a, b) != 0, "inner whitespace does");
	cachekey_hex("cco", b);
	ok(strcmp(a, b) != 0, "case matters (SMILES are case sensitive)");
	n = cachekey_canonical("   ", 3, &s);
	is_int((long long)n, 0, "all-blank input is empty");
	cachekey_hex("", b);
	is_str(b, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty input");
	return done_testing();
}
