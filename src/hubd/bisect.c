/*
 * bisect.c — isolation planner with adaptive group testing (see bisect.h).
 *
 * Runs in: runners. Called by: runner.c (one plan per request, one
 * bisect_run per chunk). Owns: the plan's cost tables (g, k), freed by
 * bisect_plan_free. Shared state: none.
 *
 * DESIGN
 * Costs are counted in good calls: a good call costs 1, a failed one
 * fail_weight (a real ersilia-pack server fails slowly, about ten good
 * calls' worth; the runner measures it). g[n] is the expected cost of
 * finding the bad input among n known to hold one (the common case when
 * bad inputs are rare): split into k parts, call the first k-1 in order,
 * and the last only when one of the others failed (otherwise it is the bad
 * one, known without a call). With the last part the largest,
 *   g[n] = min over k of  (k-1) + (1 - s_last/n) * fail_weight
 *                         + sum over parts (s_i/n) * g[s_i],   g[1] = 0.
 * Plain halving is k = 2 everywhere; cheap good calls and dear failed ones
 * make k around sqrt(n·fail_weight) better (many small good calls, few
 * failed ones). With parallel probing (width > 1, call_many) the k-1
 * probes go width at once, so the term k-1 becomes the rounds
 * ceil((k-1)/width): costs are then in time, not calls, and k = width+1
 * (one round) or a multiple is usually best. The calls still form the
 * same tree, so the worst-case bound holds whatever width. The chunk size after a failure minimises
 *   (1 + P(fail) * (fail_weight - 1 + g[s])) / s,  P(fail) = 1 - (1-p)^s
 * with p the failure rate seen so far in the request.
 */
#include "hubd/bisect.h"

#include <math.h>
#include <stdlib.h>

#define BISECT_MAX_K 64     /* parts of one split (bounds the table work) */
#define BISECT_MAX_WEIGHT 1000.0

struct bisect_plan *bisect_plan_new(int chunk_size, int width, double fail_weight)
{
	struct bisect_plan *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->chunk_size = chunk_size < 1 ? 1 : chunk_size;
	bisect_plan_tune(p, width, fail_weight);
	return p;
}

void bisect_plan_free(struct bisect_plan *p)
{
	if (!p)
		return;
	free(p->g);
	free(p->k);
	free(p);
}

void bisect_plan_tune(struct bisect_plan *p, int width, double fail_weight)
{
	if (!(fail_weight >= 1.0))
		fail_weight = 1.0;
	if (fail_weight > BISECT_MAX_WEIGHT)
		fail_weight = BISECT_MAX_WEIGHT;
	if (width < 1)
		width = 1;
	if (fail_weight != p->fail_weight || width != p->width)
		p->tabled = 0;
	p->width = width;
	p->fail_weight = fail_weight;
}

/* Sizes of part i of n split in k: the last parts take the remainder. */
static int part_len(int n, int k, int i)
{
	int q = n / k, r = n % k;

	return q + (i >= k - r);
}

static double split_cost(const struct bisect_plan *p, int n, int k)
{
	int q = n / k, r = n % k, last = part_len(n, k, k - 1);
	/* the k-1 probes take ceil((k-1)/width) rounds of calls at once */
	int rounds = (k - 1 + p->width - 1) / p->width;
	double c = rounds + (1.0 - (double)last / n) * p->fail_weight;

	c += (double)(k - r) * q / n * p->g[q];
	if (r)
		c += (double)r * (q + 1) / n * p->g[q + 1];
	return c;
}

/* Build g[]/k[] up to min(chunk_size, BISECT_PLAN_MAX). -1 out of memory. */
static int table(struct bisect_plan *p)
{
	int top = p->chunk_size < BISECT_PLAN_MAX ? p->chunk_size : BISECT_PLAN_MAX;

	if (p->tabled)
		return 0;
	if (!p->g) {
		p->g = calloc((size_t)top + 2, sizeof *p->g);
		p->k = calloc((size_t)top + 2, sizeof *p->k);
		if (!p->g || !p->k)
			return -1;
	}
	p->g[1] = 0;
	p->k[1] = 1;
	for (int n = 2; n <= top; n++) {
		int kmax = n < BISECT_MAX_K ? n : BISECT_MAX_K;
		p->k[n] = 2;
		p->g[n] = split_cost(p, n, 2);
		for (int k = 3; k <= kmax; k++) {
			double c = split_cost(p, n, k);
			if (c < p->g[n]) {
				p->g[n] = c;
				p->k[n] = k;
			}
		}
	}
	p->tabled = top;
	return 0;
}

/* Parts for a known-bad group of n. */
static int parts_for(struct bisect_plan *p, int n)
{
	int k = !p->halving && table(p) == 0 && n <= p->tabled ? p->k[n] : 2;

	if (p->halving)
		return n < 2 ? n : 2;
	return k > n ? n : k;
}

/* Expected cost per input of a chunk of s at failure rate r: its call,
 * and when it fails (chance pf) the dearer call plus isolating its
 * m = s*r/pf expected bad inputs, each in about s/m inputs, every one
 * after the first costing at least one more failed call. */
static double chunk_cost(const struct bisect_plan *p, int s, double r)
{
	double pf = 1.0 - pow(1.0 - r, s), m, iso;
	int sub;

	if (pf <= 0)
		return 1.0 / s;
	m = s * r / pf;
	if (m < 1)
		m = 1;
	sub = (int)ceil(s / m);
	iso = m * p->g[sub < 1 ? 1 : sub] + (m - 1) * p->fail_weight;
	return (1.0 + pf * (p->fail_weight - 1.0 + iso)) / s;
}

int bisect_plan_chunk(struct bisect_plan *p, const struct bisect_stats *st, int left)
{
	int top = left < p->chunk_size ? left : p->chunk_size, best = top;
	double rate, best_cost = 0;

	if (top <= 1 || st->failed_inputs == 0 || p->halving || table(p) < 0)
		return top < 1 ? 1 : top;
	if (top > p->tabled)
		top = p->tabled;
	/* the failure rate so far, with a prior worth five clean chunks: one
	 * bad input in the first chunk is not yet a rate of 1 % */
	rate = (st->failed_inputs + 0.5) / (st->settled + 1.0 + 5.0 * p->chunk_size);
	for (int s = 1; s <= top; s++) {
		double c = chunk_cost(p, s, rate);
		if (s == 1 || c < best_cost) {
			best = s;
			best_cost = c;
		}
	}
	return best;
}

/* One call of [off, off+len); *rc its outcome. -1 to stop. */
static int probe(const struct bisect_ops *ops, int off, int len, struct bisect_stats *st,
		 enum bisect_rc *rc)
{
	st->calls++;
	*rc = ops->call(ops->ctx, off, len);
	if (*rc == BISECT_FATAL)
		return -1;
	if (*rc == BISECT_OK)
		st->settled += len;
	else
		st->failed_calls++;
	return 0;
}

static int isolate(struct bisect_plan *p, const struct bisect_ops *ops, int off, int len,
		   int called, struct bisect_stats *st);

/* The first k-1 parts of a split, width at a time through call_many;
 * rc[i] per part. -1 to stop. */
static int probe_many(const struct bisect_ops *ops, int width, const int *po, const int *pl,
		      int n, struct bisect_stats *st, enum bisect_rc *rc)
{
	for (int i = 0; i < n; i += width) {
		int m = n - i < width ? n - i : width;
		if (ops->call_many(ops->ctx, po + i, pl + i, m, rc + i) < 0)
			return -1;
		for (int j = i; j < i + m; j++) {
			st->calls++;
			if (rc[j] == BISECT_FATAL)
				return -1;
			if (rc[j] == BISECT_OK)
				st->settled += pl[j];
			else
				st->failed_calls++;
		}
	}
	return 0;
}

/* Parts 0..k-2 of [off, off+len) are called; those that fail are isolated
 * in turn. *failed: one of them failed. */
static int probe_parts(struct bisect_plan *p, const struct bisect_ops *ops, int off, int len,
		       int k, int *failed, struct bisect_stats *st)
{
	int po[BISECT_MAX_K + 1] = {0}, pl[BISECT_MAX_K + 1] = {0};
	enum bisect_rc rc[BISECT_MAX_K + 1];
	int parallel = ops->call_many && p->width > 1 && k > 2;

	for (int i = 0, o = off; i < k; o += pl[i], i++) {
		po[i] = o;
		pl[i] = part_len(len, k, i);
	}
	*failed = 0;
	if (parallel && probe_many(ops, p->width, po, pl, k - 1, st, rc) < 0)
		return -1;
	for (int i = 0; i < k - 1; i++) {
		if (!parallel && probe(ops, po[i], pl[i], st, &rc[i]) < 0)
			return -1;
		if (rc[i] == BISECT_BAD) {
			*failed = 1;
			if (isolate(p, ops, po[i], pl[i], 1, st) < 0)
				return -1;
		}
	}
	return 0;
}

/* [off, off+len) holds at least one bad input: its own call failed
 * (called) or every other part of its parent succeeded. */
static int isolate(struct bisect_plan *p, const struct bisect_ops *ops, int off, int len,
		   int called, struct bisect_stats *st)
{
	enum bisect_rc rc;
	int k, failed, last_off, last_len;

	if (len == 1) {
		st->failed_inputs++;
		st->settled++;
		return ops->fail_one(ops->ctx, off, called) < 0 ? -1 : 0;
	}
	k = parts_for(p, len);
	if (k > BISECT_MAX_K + 1)
		k = BISECT_MAX_K + 1;
	if (probe_parts(p, ops, off, len, k, &failed, st) < 0)
		return -1;
	last_len = part_len(len, k, k - 1);
	last_off = off + len - last_len;
	/* every other part succeeded: the last one holds the bad input */
	if (!failed)
		return isolate(p, ops, last_off, last_len, 0, st);
	if (probe(ops, last_off, last_len, st, &rc) < 0)
		return -1;
	return rc == BISECT_BAD ? isolate(p, ops, last_off, last_len, 1, st) : 0;
}

int bisect_run_many(struct bisect_plan *p, const struct bisect_ops *ops, const int *off,
		    const int *len, int n, struct bisect_stats *st)
{
	enum bisect_rc rc[BISECT_MAX_K + 1];

	if (n > BISECT_MAX_K + 1)
		n = BISECT_MAX_K + 1;
	if (n <= 1 || !ops->call_many || p->width < 2) {
		for (int i = 0; i < n; i++)
			if (bisect_run(p, ops, off[i], len[i], st) < 0)
				return -1;
		return 0;
	}
	if (probe_many(ops, p->width, off, len, n, st, rc) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (rc[i] == BISECT_BAD && isolate(p, ops, off[i], len[i], 1, st) < 0)
			return -1;
	return 0;
}

int bisect_run(struct bisect_plan *p, const struct bisect_ops *ops, int off, int len,
	       struct bisect_stats *st)
{
	enum bisect_rc rc;

	if (len <= 0)
		return 0;
	if (probe(ops, off, len, st, &rc) < 0)
		return -1;
	return rc == BISECT_BAD ? isolate(p, ops, off, len, 1, st) : 0;
}
