/*
 * backoff.h — capped, jittered exponential back-off for retried calls.
 *
 * Runs in: modelhubd children (runners retrying Kubernetes API calls, the
 * kubernetes backend retrying a pod delete). Called by: hubd/runner.c,
 * cluster/kube.c, t/212-backoff.
 * Owns: nothing; the caller keeps the attempt number and the seed.
 *
 * DESIGN: "equal jitter": attempt n (1, 2, ...) waits a uniform time in
 * [d/2, d] with d = min(cap, base * 2^(n-1)), so a crowd of clients that
 * failed together (an API server restart, a 429 storm) spreads out instead
 * of retrying in step, and no wait is ever shorter than half the nominal
 * one. A server's Retry-After wins when longer, up to the cap.
 */
#ifndef MH_BACKOFF_H
#define MH_BACKOFF_H

#include <stdint.h>

/* Milliseconds to wait before attempt n + 1 after n failed attempts
 * (n >= 1); retry_after_ms is the server's hint (0: none). seed is the
 * caller's rand_r() state. */
int64_t mh_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms, unsigned *seed);

#endif
