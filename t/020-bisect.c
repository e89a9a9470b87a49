/* 020-bisect.c — unit test of the isolation planner (hubd/bisect.c): correctness, the
 * worst-case bound against plain halving (exhaustive on small cases), the expected cost
 * with dear failed calls, chunk sizing, parallel probing, fatal stops. */
#include "hubd/bisect.h"
#include "t/lib/tap.h"

#include <stdint.h>

#define N 1000

struct fake {
	int bad[N];      /* 1 = this input makes any batch containing it fail */
	int done[N];     /* stored ok */
	int failed[N];   /* given up on */
	int alone[N];    /* failed_one said "failed alone" */
	int fatal_after; /* calls before BISECT_FATAL (0 = never) */
	int calls, bad_calls, rounds, max_round;
	int many_calls;  /* calls made through call_many */
	int last_settled, in_order;
};

static void settle(struct fake *f, int off, int len)
{
	if (off < f->last_settled)
		f->in_order = 0;
	f->last_settled = off + len;
}

static enum bisect_rc call(void *ctx, int off, int len)
{
	struct fake *f = ctx;

	f->calls++;
	if (f->fatal_after && f->calls > f->fatal_after)
		return BISECT_FATAL;
	for (int i = off; i < off + len; i++)
		if (f->bad[i]) {
			f->bad_calls++;
			return BISECT_BAD;
		}
	for (int i = off; i < off + len; i++)
		f->done[i]++;
	settle(f, off, len);
	return BISECT_OK;
}

static int call_many(void *ctx, const int *off, const int *len, int n, enum bisect_rc *rc)
{
	struct fake *f = ctx;

	f->rounds++;
	f->many_calls += n;
	if (n > f->max_round)
		f->max_round = n;
	for (int i = 0; i < n; i++)
		rc[i] = call(ctx, off[i], len[i]);
	return 0;
}

static int fail_one(void *ctx, int idx, int alone)
{
	struct fake *f = ctx;

	f->failed[idx]++;
	f->alone[idx] = alone;
	settle(f, idx, 1);
	return 0;
}

/* Today's (before issue 20) halving, as the baseline: calls for one chunk. */
static int old_run(const int *bad, int off, int len, int known_bad, int *failed, int *bad_calls)
{
	int calls = 0, half, before;

	if (len <= 0)
		return 0;
	if (!known_bad || len == 1) {
		int any = 0;
		calls++;
		for (int i = off; i < off + len; i++)
			any |= bad[i];
		if (!any)
			return calls;
		(*bad_calls)++;
		if (len == 1) {
			(*failed)++;
			return calls;
		}
	}
	half = len / 2;
	before = *failed;
	calls += old_run(bad, off, half, 0, failed, bad_calls);
	return calls + old_run(bad, off + half, len - half, *failed == before, failed, bad_calls);
}

static int old_request(const int *bad, int n, int chunk, int *bad_calls)
{
	int calls = 0, failed = 0, dummy = 0;

	if (!bad_calls)
		bad_calls = &dummy;
	for (int off = 0; off < n; off += chunk)
		calls += old_run(bad, off, n - off < chunk ? n - off : chunk, 0, &failed, bad_calls);
	return calls;
}

/* The runner's loop: chunk lengths from the plan. -1 when bisect_run stopped. */
static int request(struct fake *f, struct bisect_plan *p, int parallel, int n,
		   struct bisect_stats *st)
{
	struct bisect_ops ops = {call, parallel ? call_many : NULL, fail_one, f};

	f->in_order = 1;
	for (int off = 0; off < n;) {
		int len = bisect_plan_chunk(p, st, n - off);
		if (len < 1 || len > n - off || len > p->chunk_size)
			return -2;
		if (bisect_run(p, &ops, off, len, st) < 0)
			return -1;
		off += len;
	}
	return 0;
}

/* Outcome right: every good input stored once, every bad one failed once. */
static int outcome_ok(const struct fake *f, int n)
{
	for (int i = 0; i < n; i++)
		if (f->done[i] != !f->bad[i] || f->failed[i] != f->bad[i])
			return 0;
	return 1;
}

/* Every bad set of n <= 10 inputs, for several chunk sizes, weights and
 * widths: right outcome, and never more calls than halving's worst case. */
static void exhaustive(void)
{
	static const double weights[] = {1, 3, 10, 100};
	int cases = 0, wrong = 0, over = 0, worse_worst = 0, disorder = 0;

	for (int n = 1; n <= 10; n++)
		for (int chunk = 1; chunk <= n; chunk++)
			for (int w = 0; w < 4; w++)
				for (int width = 1; width <= 3; width += 2) {
					int bound = 2 * n - (n + chunk - 1) / chunk, worst_old = 0, worst_new = 0;
					struct bisect_plan *p = bisect_plan_new(chunk, width, weights[w]);
					for (uint32_t set = 0; set < (1u << n); set++) {
						static struct fake f;
						struct bisect_stats st = {0};
						int old;
						memset(&f, 0, sizeof f);
						for (int i = 0; i < n; i++)
							f.bad[i] = (set >> i) & 1;
						old = old_request(f.bad, n, chunk, NULL);
						if (request(&f, p, width > 1, n, &st) != 0 || !outcome_ok(&f, n) ||
						    st.calls != f.calls || st.failed_inputs != __builtin_popcount(set))
							wrong++;
						if (st.calls > bound)
							over++;
						if (width == 1 && !f.in_order)
							disorder++;
						worst_old = old > worst_old ? old : worst_old;
						worst_new = st.calls > worst_new ? st.calls : worst_new;
						cases++;
					}
					if (worst_new > worst_old)
						worse_worst++;
					bisect_plan_free(p);
				}
	ok(cases > 100000, "exhaustive: %d (inputs, chunk, weight, width, bad set) cases", cases);
	is_int(wrong, 0, "exhaustive: every case stores each good input once and fails each bad one");
	is_int(over, 0, "exhaustive: no case exceeds 2N - ceil(N/chunk) calls");
	is_int(worse_worst, 0, "exhaustive: worst case never above plain halving's worst case");
	is_int(disorder, 0, "exhaustive: one at a time, results are settled in input order");
}

/* hub.isolation = halving: for every bad set, no more calls than the
 * planner before issue 20 (it only skips calling a single input already
 * known bad). */
static void halving(void)
{
	int worse = 0, wrong = 0, cases = 0;

	for (int n = 1; n <= 10; n++)
		for (int chunk = 1; chunk <= n; chunk++) {
			struct bisect_plan *p = bisect_plan_new(chunk, 1, 10);
			p->halving = 1;
			for (uint32_t set = 0; set < (1u << n); set++) {
				static struct fake f;
				struct bisect_stats st = {0};
				memset(&f, 0, sizeof f);
				for (int i = 0; i < n; i++)
					f.bad[i] = (set >> i) & 1;
				if (request(&f, p, 0, n, &st) != 0 || !outcome_ok(&f, n))
					wrong++;
				if (st.calls > old_request(f.bad, n, chunk, NULL))
					worse++;
				cases++;
			}
			bisect_plan_free(p);
		}
	is_int(wrong, 0, "halving: right outcome in all %d cases", cases);
	is_int(worse, 0, "halving: never more calls than before issue 20, bad set by bad set");
}

static uint64_t rng = 20;

static int rnd(int n)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int)((rng >> 33) % (uint64_t)n);
}

/* Mean cost (good calls 1, failed calls weight) and calls of new and old
 * over random placements of nbad bad inputs in 1000 with chunk 100. */
struct mean {
	double cost_new, cost_old, calls_new, calls_old;
};

static struct mean expected(int nbad, double weight)
{
	const int trials = 100;
	struct mean m = {0, 0, 0, 0};

	for (int t = 0; t < trials; t++) {
		static struct fake f;
		struct bisect_stats st = {0};
		struct bisect_plan *p = bisect_plan_new(100, 1, weight);
		int oc, of = 0;
		memset(&f, 0, sizeof f);
		for (int b = 0; b < nbad;) {
			int i = rnd(N);
			b += !f.bad[i];
			f.bad[i] = 1;
		}
		request(&f, p, 0, N, &st);
		m.cost_new += (st.calls - st.failed_calls) + weight * st.failed_calls;
		m.calls_new += st.calls;
		oc = old_request(f.bad, N, 100, &of);
		m.cost_old += (oc - of) + weight * of;
		m.calls_old += oc;
		bisect_plan_free(p);
	}
	m.cost_new /= trials;
	m.cost_old /= trials;
	m.calls_new /= trials;
	m.calls_old /= trials;
	return m;
}

static void costs(void)
{
	static const int bads[] = {1, 10, 50};

	for (int b = 0; b < 3; b++) {
		struct mean m = expected(bads[b], 10);
		ok(m.cost_new < 0.9 * m.cost_old,
		   "%d bad in 1000, failed call = 10 good ones: cost %.1f, halving %.1f (calls %.1f vs %.1f)",
		   bads[b], m.cost_new, m.cost_old, m.calls_new, m.calls_old);
	}
	{
		struct mean m = expected(10, 1);
		ok(m.cost_new <= 1.05 * m.cost_old,
		   "10 bad in 1000, failed calls as cheap as good ones: %.1f calls, halving %.1f",
		   m.cost_new, m.cost_old);
	}
	{
		struct mean m = expected(0, 10);
		is_dbl(m.calls_new, 10, 0, "no bad input: one call per chunk of 100");
	}
}

/* Chunk sizing follows the failure rate seen. */
static void sizing(void)
{
	struct bisect_plan *p = bisect_plan_new(100, 1, 10);
	struct bisect_stats none = {.calls = 5, .settled = 500};
	struct bisect_stats low = {.calls = 20, .settled = 500, .failed_inputs = 1, .failed_calls = 5};
	struct bisect_stats high = {.calls = 60, .settled = 300, .failed_inputs = 30,
				    .failed_calls = 25};
	int a = bisect_plan_chunk(p, &none, 1000), b = bisect_plan_chunk(p, &low, 1000);
	int c = bisect_plan_chunk(p, &high, 1000);

	is_int(a, 100, "no failure yet: the configured chunk size");
	ok(b <= 100 && b >= 30, "0.2%% failed: chunks stay large (%d)", b);
	ok(c < b && c <= 20, "10%% failed: chunks shrink (%d)", c);
	is_int(bisect_plan_chunk(p, &high, 3), 3 < c ? 3 : c, "never more than what is left");
	bisect_plan_tune(p, 1, 1);
	ok(bisect_plan_chunk(p, &high, 1000) >= c, "cheap failed calls: chunks shrink less (%d)",
	   bisect_plan_chunk(p, &high, 1000));
	bisect_plan_free(p);
}

/* Parallel probing: width parts at once, fewer rounds than calls. */
static void parallel(void)
{
	static struct fake f;
	struct bisect_plan *p = bisect_plan_new(100, 4, 10);
	struct bisect_stats st = {0};
	int bads[] = {7, 61};

	memset(&f, 0, sizeof f);
	for (int i = 0; i < 2; i++)
		f.bad[bads[i]] = 1;
	is_int(request(&f, p, 1, 100, &st), 0, "parallel: completes");
	ok(outcome_ok(&f, 100), "parallel: right outcome");
	ok(f.max_round > 1 && f.max_round <= 4, "parallel: up to 4 calls at once (%d)", f.max_round);
	ok(f.rounds < st.calls, "parallel: %d rounds for %d calls", f.rounds, st.calls);
	{
		/* chunks at once (bisect_run_many), then their isolation */
		int off[4] = {0, 25, 50, 75}, len[4] = {25, 25, 25, 25};
		struct bisect_ops ops = {call, call_many, fail_one, &f};
		struct bisect_stats s2 = {0};
		memset(&f, 0, sizeof f);
		for (int i = 0; i < 2; i++)
			f.bad[bads[i]] = 1;
		is_int(bisect_run_many(p, &ops, off, len, 4, &s2), 0, "chunks at once: completes");
		ok(outcome_ok(&f, 100) && f.max_round == 4 && s2.calls <= 2 * 100 - 4,
		   "chunks at once: right outcome, 4 chunks in one round, %d calls", s2.calls);
		ops.call_many = NULL;
		memset(&f, 0, sizeof f);
		memset(&s2, 0, sizeof s2);
		f.bad[30] = 1;
		is_int(bisect_run_many(p, &ops, off, len, 4, &s2), 0, "chunks without call_many: in turn");
		ok(outcome_ok(&f, 100) && f.rounds == 0, "  right outcome, no round");
	}
	bisect_plan_free(p);
}

/* Parallel probing in time: a round of calls at once takes one call's
 * time. 10 bad inputs in 1000 at random places, failed calls as dear as
 * good ones (the real bundle measured here): rounds plus the calls made
 * one at a time, against the calls of the same planner with width 1. */
static void parallel_time(void)
{
	const int trials = 50;
	double t_par = 0, t_ser = 0, c_par = 0, c_ser = 0;

	for (int t = 0; t < trials; t++) {
		static struct fake f, g;
		struct bisect_stats sp = {0}, ss = {0};
		struct bisect_plan *pp = bisect_plan_new(100, 4, 1), *ps = bisect_plan_new(100, 1, 1);
		memset(&f, 0, sizeof f);
		for (int b = 0; b < 10;) {
			int i = rnd(N);
			b += !f.bad[i];
			f.bad[i] = 1;
		}
		g = f;
		request(&f, pp, 1, N, &sp);
		request(&g, ps, 0, N, &ss);
		t_par += f.rounds + (sp.calls - f.many_calls);
		c_par += sp.calls;
		t_ser += ss.calls;
		c_ser += ss.calls;
		bisect_plan_free(pp);
		bisect_plan_free(ps);
	}
	ok(t_par < 0.6 * t_ser, "width 4, 10 bad in 1000: %.1f call times (%.1f calls), one at a time"
	   " %.1f", t_par / trials, c_par / trials, t_ser / trials);
}

static void flags_and_stops(void)
{
	static struct fake f;
	struct bisect_plan *p = bisect_plan_new(100, 1, 10);
	struct bisect_ops ops = {call, NULL, fail_one, &f};
	struct bisect_stats st = {0};
	int fails = 0;

	memset(&f, 0, sizeof f);
	f.bad[0] = 1;
	bisect_run(p, &ops, 0, 1, &st);
	ok(f.failed[0] == 1 && f.alone[0] == 1, "a single input that fails failed alone");
	memset(&f, 0, sizeof f);
	memset(&st, 0, sizeof st);
	f.bad[99] = 1;
	bisect_run(p, &ops, 0, 100, &st);
	ok(f.failed[99] == 1 && f.alone[99] == 0, "the last input, found by elimination, is not "
	   "called alone (%d calls)", st.calls);
	memset(&f, 0, sizeof f);
	memset(&st, 0, sizeof st);
	f.bad[10] = 1;
	f.fatal_after = 2;
	is_int(bisect_run(p, &ops, 0, 100, &st), -1, "fatal call aborts the chunk");
	for (int i = 0; i < 100; i++)
		fails += f.failed[i];
	is_int(fails, 0, "no input blamed when the instance fails");
	memset(&f, 0, sizeof f);
	memset(&st, 0, sizeof st);
	is_int(bisect_run(p, &ops, 0, 0, &st), 0, "empty range is a no-op");
	is_int(st.calls, 0, "empty range makes no call");
	bisect_plan_free(p);
	ok(bisect_plan_new(0, 0, -5) != NULL, "odd parameters are clamped");
	bisect_plan_free(NULL);
}

int main(void)
{
	exhaustive();
	halving();
	costs();
	sizing();
	parallel();
	parallel_time();
	flags_and_stops();
	return done_testing();
}
