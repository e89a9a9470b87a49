/*
 * backoff.c — capped, jittered exponential back-off (see backoff.h).
 *
 * Runs in: modelhubd children. Called by: hubd/runner.c, cluster/kube.c.
 * Owns: nothing.
 */
#include "lib/backoff.h"

#include <stdlib.h>

int64_t mh_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms, unsigned *seed)
{
	int64_t d = base_ms > 0 ? base_ms : 1, half;

	for (int i = 1; i < n && d < cap_ms; i++)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	half = d / 2;
	d = half + (int64_t)((double)rand_r(seed) / ((double)RAND_MAX + 1.0) * (double)(d - half + 1));
	if (retry_after_ms > d)
		d = retry_after_ms < cap_ms ? retry_after_ms : cap_ms;
	return d;
}
