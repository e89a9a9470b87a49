/* 020-bisect.c — unit test of the chunk bisection planner (hubd/bisect.c). */
#include "hubd/bisect.h"
#include "t/lib/tap.h"

#define N 1000

struct fake {
	int bad[N];      /* 1 = this input makes any batch containing it fail */
	int done[N];     /* stored ok */
	int failed[N];   /* given up on */
	int fatal_after; /* calls before BISECT_FATAL (0 = never) */
	int calls;
};

static enum bisect_rc call(void *ctx, int off, int len)
{
	struct fake *f = ctx;

	f->calls++;
	if (f->fatal_after && f->calls > f->fatal_after)
		return BISECT_FATAL;
	for (int i = off; i < off + len; i++)
		if (f->bad[i])
			return BISECT_BAD;
	for (int i = off; i < off + len; i++)
		f->done[i]++;
	return BISECT_OK;
}

static int fail_one(void *ctx, int idx)
{
	struct fake *f = ctx;

	f->failed[idx]++;
	return 0;
}

/* Run one chunk of n inputs with the given bad positions; check outcome. */
static void check(const char *name, int n, const int *badpos, int nbad)
{
	static struct fake f;
	struct bisect_ops ops = {call, fail_one, &f};
	struct bisect_stats st = {0, 0};
	int ok_all = 1, rc;

	memset(&f, 0, sizeof f);
	for (int i = 0; i < nbad; i++)
		f.bad[badpos[i]] = 1;
	rc = bisect_run(&ops, 0, n, &st);
	is_int(rc, 0, "%s: completes", name);
	for (int i = 0; i < n; i++)
		if (f.done[i] != !f.bad[i] || f.failed[i] != f.bad[i])
			ok_all = 0;
	ok(ok_all, "%s: every good input stored once, every bad input failed once", name);
	is_int(st.failed_inputs, nbad, "%s: failed input count", name);
	is_int(st.calls, f.calls, "%s: calls counted", name);
	ok(st.calls <= 2 * n - 1 || n == 0, "%s: %d calls for %d inputs (bound 2n-1)", name, st.calls, n);
}

int main(void)
{
	int none[1] = {0};
	int three[3] = {5, 50, 97};
	int edges[2] = {0, 99};
	int all[100];
	int one[1] = {0};

	check("no bad input: one call", 100, none, 0);
	{
		static struct fake f;
		struct bisect_ops ops = {call, fail_one, &f};
		struct bisect_stats st = {0, 0};
		memset(&f, 0, sizeof f);
		bisect_run(&ops, 0, 100, &st);
		is_int(st.calls, 1, "clean chunk costs exactly one call");
	}
	check("3 bad of 100", 100, three, 3);
	check("first and last bad", 100, edges, 2);
	for (int i = 0; i < 100; i++)
		all[i] = i;
	check("all 100 bad", 100, all, 100);
	check("single bad input", 1, one, 1);
	check("odd size 37 with bad at 0", 37, one, 1);
	{
		/* the bound holds for every single bad position */
		int worst = 0;
		for (int b = 0; b < 64; b++) {
			static struct fake f;
			struct bisect_ops ops = {call, fail_one, &f};
			struct bisect_stats st = {0, 0};
			memset(&f, 0, sizeof f);
			f.bad[b] = 1;
			bisect_run(&ops, 0, 64, &st);
			if (st.calls > worst)
				worst = st.calls;
		}
		ok(worst <= 2 * 6 + 1, "one bad input in 64 costs at most 2*log2(64)+1 calls (worst %d)", worst);
	}
	{
		/* a fatal call stops everything, nothing is marked failed */
		static struct fake f;
		struct bisect_ops ops = {call, fail_one, &f};
		struct bisect_stats st = {0, 0};
		int fails = 0;
		memset(&f, 0, sizeof f);
		f.bad[10] = 1;
		f.fatal_after = 2;
		is_int(bisect_run(&ops, 0, 100, &st), -1, "fatal call aborts the chunk");
		for (int i = 0; i < 100; i++)
			fails += f.failed[i];
		is_int(fails, 0, "no input blamed when the instance fails");
	}
	{
		struct fake f;
		struct bisect_ops ops = {call, fail_one, &f};
		struct bisect_stats st = {0, 0};
		memset(&f, 0, sizeof f);
		is_int(bisect_run(&ops, 0, 0, &st), 0, "empty range is a no-op");
		is_int(st.calls, 0, "empty range makes no call");
	}
	return done_testing();
}
