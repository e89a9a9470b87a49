/*
 * bisect.c — chunk bisection planner (see bisect.h).
 *
 * Runs in: runners. Called by: runner.c (one chunk at a time).
 * Owns: nothing. Shared state: none.
 *
 * Bound: every call is a node of a binary tree over the chunk whose leaves
 * are single inputs, so there are at most 2n-1 calls for n inputs; skipping
 * the call on a right half already known bad only removes nodes.
 */
#include "hubd/bisect.h"

static int run(const struct bisect_ops *ops, int off, int len, int known_bad,
	       struct bisect_stats *st)
{
	enum bisect_rc rc;
	int half, left_ok;

	if (len <= 0)
		return 0;
	if (!known_bad || len == 1) {
		st->calls++;
		rc = ops->call(ops->ctx, off, len);
		if (rc == BISECT_FATAL)
			return -1;
		if (rc == BISECT_OK)
			return 0;
		if (len == 1) {
			st->failed_inputs++;
			return ops->fail_one(ops->ctx, off) < 0 ? -1 : 0;
		}
	}
	half = len / 2;
	left_ok = st->failed_inputs;
	if (run(ops, off, half, 0, st) < 0)
		return -1;
	left_ok = st->failed_inputs == left_ok;
	/* the whole batch failed but its left half did not: the right half is bad */
	return run(ops, off + half, len - half, left_ok, st);
}

int bisect_run(const struct bisect_ops *ops, int off, int len, struct bisect_stats *st)
{
	return run(ops, off, len, 0, st);
}
