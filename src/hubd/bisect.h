/*
 * bisect.h — chunk bisection planner: find the inputs that make a model
 * call fail, with at most 2n-1 calls for n inputs (DESIGN.md §5 step 5).
 *
 * Runs in: runners. Called by: runner.c. Pure: all I/O goes through the
 * callbacks, so t/020-bisect.c tests it without a model.
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
	/* Input idx failed on its own: store a null record with an error.
	 * 0, or -1 to stop. */
	int (*fail_one)(void *ctx, int idx);
	void *ctx;
};

struct bisect_stats {
	int calls;         /* model calls made */
	int failed_inputs; /* inputs given up on */
};

/* Process inputs [off, off+len): one call; on BISECT_BAD split in halves
 * recursively down to single inputs. When the left half of a failed batch
 * succeeds the right half is known bad and is split without calling it as a
 * whole. Returns 0, or -1 when a call or fail_one asked to stop. */
int bisect_run(const struct bisect_ops *ops, int off, int len, struct bisect_stats *st);

#endif
