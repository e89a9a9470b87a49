/* t/212-backoff.c — unit tests of the retry back-off (lib/backoff.c): growth, cap, jitter range and spread, Retry-After honoured up to the cap. */
#include "lib/backoff.h"
#include "../t/lib/tap.h"

int main(void)
{
	unsigned seed = 12345;
	int in_range = 1, distinct = 0, capped = 1;
	int64_t prev = -1, lo = 1 << 30, hi = 0;

	for (int n = 1; n <= 12; n++) {
		int64_t d = 200;
		for (int i = 1; i < n && d < 5000; i++)
			d *= 2;
		if (d > 5000)
			d = 5000;
		for (int k = 0; k < 1000; k++) {
			int64_t w = mh_backoff_ms(n, 200, 5000, 0, &seed);
			if (w < d / 2 || w > d)
				in_range = 0;
			if (w > 5000)
				capped = 0;
			if (n == 1 && w != prev)
				distinct++;
			if (n == 12) {
				lo = w < lo ? w : lo;
				hi = w > hi ? w : hi;
			}
			prev = w;
		}
	}
	ok(in_range, "attempt n waits within [d/2, d], d = min(cap, base * 2^(n-1))");
	ok(capped, "no wait exceeds the cap");
	ok(distinct > 500, "waits are jittered (%d changes in 1000 draws)", distinct);
	ok(lo < 2700 && hi > 4700, "at the cap the jitter spans [cap/2, cap] (%lld..%lld)", (long long)lo,
	   (long long)hi);
	ok(mh_backoff_ms(1, 200, 5000, 3000, &seed) == 3000, "a longer Retry-After wins");
	ok(mh_backoff_ms(1, 200, 5000, 60000, &seed) == 5000, "Retry-After is capped");
	ok(mh_backoff_ms(6, 200, 5000, 10, &seed) >= 2500, "a shorter Retry-After does not shorten the wait");
	ok(mh_backoff_ms(40, 200, 5000, 0, &seed) <= 5000, "huge attempt numbers do not overflow");
	return done_testing();
}
