/* 017-fuzz-replay — runs the fuzz target t/fuzz/fuzz-api-input.c (body JSON, model validation, query decoding) over a seed corpus and 100000 deterministic mutations; crashes and leaks show under ASan (make check-asan). */
#include "lib/tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const seeds[] = {
	"\x00{\"id\":\"m1\",\"local_command\":[\"a\",\"{port}\"],\"details\":{\"x\":[1,2,{\"y\":null}]}}",
	"\x01{\"id\":\"m1\",\"cpu_request_m\":5000,\"cpu_limit_m\":10,\"memory_limit_mib\":-1}",
	"\x00{\"enabled\":true,\"execution_mode\":\"ASYNC\",\"image\":null,\"image_tag\":\"v1\"}",
	"\x00{\"version\":3,\"id\":\"X\",\"unknown\":{},\"port\":65536,\"description\":\"\\u0000\"}",
	"\x00[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	"\x02a=1&model_id=J%C3%B6rg+x&b&=&%zz&%4",
	"\x00{\"a\":\"caf\xc3\xa9\",\"b\":\"\xff\"}",
	"\x00{\"a\":1.5e308,\"b\":-9223372036854775809,\"c\":1e999}",
	"\x03",
};

int main(void)
{
	unsigned char buf[512];
	unsigned long x = 0x9e3779b97f4a7c15UL;
	int n = 0;

	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		size_t len = seeds[i][0] ? strlen(seeds[i]) : 1 + strlen(seeds[i] + 1);
		LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], len);
		n++;
	}
	/* xorshift mutations of the seeds: flips, inserts of JSON punctuation,
	 * truncation */
	for (int round = 0; round < 100000; round++) {
		const char *s = seeds[round % (sizeof seeds / sizeof seeds[0])];
		size_t len = s[0] ? strlen(s) : 1 + strlen(s + 1);
		static const char punct[] = "{}[]\":,\\u0 -+.eE\xc3\xff";
		int edits;

		if (len > sizeof buf)
			len = sizeof buf;
		memcpy(buf, s, len);
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		edits = 1 + (int)(x % 4);
		for (int e = 0; e < edits && len > 1; e++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			size_t pos = 1 + (size_t)(x % (len - 1));
			switch ((x >> 20) % 3) {
			case 0:
				buf[pos] ^= (unsigned char)(1u << ((x >> 8) % 8));
				break;
			case 1:
				buf[pos] = (unsigned char)punct[(x >> 12) % (sizeof punct - 1)];
				break;
			default:
				len = pos;
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	ok(n == 100000 + (int)(sizeof seeds / sizeof seeds[0]),
	   "%d inputs through the fuzz target without a crash", n);
	return done_testing();
}
