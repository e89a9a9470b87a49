/* t/051-clock.c — unit tests of the clock helpers (lib/clock.c): units, monotonicity, wall time. */
#include "lib/clock.h"
#include "../t/lib/tap.h"

#include <time.h>

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

int main(void)
{
	int64_t m0 = mh_mono_ms(), u0 = mh_mono_us(), w0 = mh_wall_ms();
	int64_t t0 = (int64_t)time(NULL) * 1000, m1, u1, w1, prev;
	int backwards = 0;

	/* same clock: microseconds / 1000 agree with milliseconds read just before */
	ok(u0 / 1000 >= m0 && u0 / 1000 - m0 < 1000, "mono_us and mono_ms are one clock in two units");
	ok(w0 >= t0 - 1000 && w0 <= t0 + 2000, "wall_ms is the Unix time in ms");
	ok(w0 > 1600000000000LL, "wall_ms is after 2020 (milliseconds, not seconds)");
	prev = mh_mono_us();
	for (int i = 0; i < 100000; i++) {
		int64_t v = mh_mono_us();
		if (v < prev)
			backwards++;
		prev = v;
	}
	is_int(backwards, 0, "monotonic clock never goes back");
	nap_ms(50);
	m1 = mh_mono_ms();
	u1 = mh_mono_us();
	w1 = mh_wall_ms();
	ok(m1 - m0 >= 50, "mono_ms advances by at least the 50 ms slept (%lld)", (long long)(m1 - m0));
	ok(u1 - u0 >= 50000, "mono_us advances by at least 50000 us (%lld)", (long long)(u1 - u0));
	/* generous upper bound: the machine may be loaded */
	ok(m1 - m0 < 10000, "mono_ms did not jump (%lld ms)", (long long)(m1 - m0));
	ok(w1 - w0 >= 40 && w1 - w0 < 10000, "wall_ms advances too (%lld ms)", (long long)(w1 - w0));
	return done_testing();
}
