/*
 * bisect.h — isolation planner: find the inputs that make a model call
 * fail, with adaptive group testing (DESIGN.md §5 step 5, issue 20).
 *
 * Runs in: runners. Called by: runner.c. Pure: all I/O goes through the
 * callbacks, so t/020-bisect.c tests it without a model.
 *
 * A plan lives for one request: it sizes the chunks (bisect_plan_chunk:
 * the configured chunk size until an input has failed, then the size that
 * costs least per input at the failure rate seen so far) and isolates the
 * bad inputs of a failing chunk (bisect_run: split it into k parts, k
 * chosen for the least expected cost when a failed call costs fail_weight
 * good ones; parts called in order, the last one not called when all the
 * others succeeded; with width > 1 and call_many, up to width parts are
 * called at once on several instances and k is chosen for the least
 * expected time: rounds of width calls instead of calls).
 *
 * Bound: every call is a node of a tree over its chunk whose leaves are
 * single inputs and whose inner nodes have at least two children, so a
 * chunk of n costs at most 2n-1 calls, and since no chunk is longer than
 * chunk_size a request of N inputs costs at most 2N - ceil(N/chunk_size):
 * the worst case of plain halving with fixed chunks (t/020 checks it
 * exhaustively on small cases).
 */
#ifndef MH_BISECT_H
#define MH_BISECT_H

enum bisect_rc {
	BISECT_OK = 0,     /* the call succeeded and its records are stored */
	BISECT_BAD = 1,    /* the model rejected the batch: split it */
	BISECT_FATAL = -1, /* stop everything (instance died, cancelled, DB) */
};

struct bisect_ops {
	/* Send inputs [off, off+len) to the model and store the records. */
	enum bisect_rc (*call)(void *ctx, int off, int len);
	/* Optional (parallel probing): send the n parts [off[i], off[i]+len[i])
	 * at once, each on its own instance, storing the records of those that
	 * succeed; rc[i] per part. Returns 0, or -1 to stop (then rc is not
	 * read). NULL: parts are called one at a time. */
	int (*call_many)(void *ctx, const int *off, const int *len, int n, enum bisect_rc *rc);
	/* Input idx is bad: store a null record with an error. alone: 1 when it
	 * failed in a call of its own, 0 when that is deduced (its group
	 * failed and every other part succeeded). 0, or -1 to stop. */
	int (*fail_one)(void *ctx, int idx, int alone);
	void *ctx;
};

struct bisect_stats {
	int calls;         /* model calls made */
	int failed_calls;  /* of which failed (BISECT_BAD) */
	int failed_inputs; /* inputs given up on */
	int settled;       /* inputs stored or given up on */
};

#define BISECT_PLAN_MAX 4096 /* expected costs are tabled up to this size */

struct bisect_plan {
	int chunk_size;
	int width;          /* parts called at once; > 1 only with call_many
			     * (the cost tables count rounds of width calls) */
	double fail_weight; /* a failed call costs this many good ones */
	int halving;        /* plain halving and fixed chunks (the planner before
			     * issue 20, kept to compare: hub.isolation) */
	int tabled;         /* g[]/k[] valid up to this size (0: not built) */
	double *g;          /* g[n]: expected cost to isolate one bad of n */
	int *k;             /* k[n]: the split that achieves it */
};

/* A plan for a request (chunk_size >= 1, width >= 1, fail_weight >= 1,
 * clamped). NULL when out of memory. bisect_plan_free is NULL-safe. */
struct bisect_plan *bisect_plan_new(int chunk_size, int width, double fail_weight);
void bisect_plan_free(struct bisect_plan *p);
/* Change the cost ratio or width (observed as the request goes on). */
void bisect_plan_tune(struct bisect_plan *p, int width, double fail_weight);
/* Length of the next chunk when left inputs remain, given what st has
 * seen so far in this request (1 <= result <= min(left, chunk_size)). */
int bisect_plan_chunk(struct bisect_plan *p, const struct bisect_stats *st, int left);
/* Process inputs [off, off+len): one call; when it fails, isolate the bad
 * inputs as described above. st accumulates over the request. Returns 0,
 * or -1 when a call or fail_one asked to stop. */
int bisect_run(struct bisect_plan *p, const struct bisect_ops *ops, int off, int len,
	       struct bisect_stats *st);

/* Chunks [off[i], off[i]+len[i]) at once (call_many, width at a time),
 * then the bad inputs of each that failed isolated in turn, as bisect_run
 * does for one (n <= 65; without call_many or width 1: bisect_run each). */
int bisect_run_many(struct bisect_plan *p, const struct bisect_ops *ops, const int *off,
		    const int *len, int n, struct bisect_stats *st);

#endif
