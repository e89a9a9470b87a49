/*
 * assign.c — weighted assignment of models to runners (see assign.h).
 *
 * Runs in: the supervisor. Called by: supervisor.c. Owns: nothing.
 *
 * DESIGN: longest-processing-time-first. Models sorted by depth (deepest
 * first) each go to the runner with the least load, where load = the depth
 * already given to it plus a large weight when the runner is busy. So a
 * model lands on an idle runner when there is one, and no runner holds two
 * models while another holds none. Runners still without a model then join
 * the model with the highest depth per runner that is under its cap.
 */
#include "hubd/assign.h"

#include <stdlib.h>
#include <string.h>

#define ASSIGN_BUSY_WEIGHT (1LL << 40)
#define ASSIGN_MAX 4096

/* One computation: the input, the output matrix and the running totals. */
struct plan {
	const struct assign_model *m;
	int nm, nr, maxper;
	const int *busy;
	unsigned char *out;             /* out[r * nm + i] */
	long long load[ASSIGN_MAX];     /* per runner: depth given + busy weight */
	int count[ASSIGN_MAX];          /* per runner: models given */
	int runners[ASSIGN_MAX];        /* per model: runners given */
};

static int is_busy(const struct plan *p, int r) { return p->busy && p->busy[r]; }

/* Model indexes by depth, deepest first; ties keep input order (insertion
 * sort: nm is small and the order must be stable). */
static void sort_by_depth(const struct assign_model *m, int nm, int *order)
{
	for (int i = 0; i < nm; i++) {
		int j = i;
		while (j > 0 && m[order[j - 1]].depth < m[i].depth) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
}

/* The runner with the least load (then the fewest models) that can take
 * one more model, or -1. */
static int least_loaded(const struct plan *p)
{
	int best = -1;

	for (int r = 0; r < p->nr; r++) {
		if (p->count[r] >= p->maxper)
			continue;
		if (best < 0 || p->load[r] < p->load[best] ||
		    (p->load[r] == p->load[best] && p->count[r] < p->count[best]))
			best = r;
	}
	return best;
}

static void give(struct plan *p, int r, int i)
{
	p->out[r * p->nm + i] = 1;
	p->count[r]++;
	p->runners[i]++;
}

/* Every model, deepest first, to the least-loaded runner. Returns how many
 * found no runner (all at maxper). */
static int place_models(struct plan *p)
{
	int order[ASSIGN_MAX], unassigned = 0;

	sort_by_depth(p->m, p->nm, order);
	for (int k = 0; k < p->nm; k++) {
		int i = order[k], r = least_loaded(p);

		if (r < 0) {
			unassigned++;
			continue;
		}
		give(p, r, i);
		p->load[r] += p->m[i].depth > 0 ? p->m[i].depth : 1;
	}
	return unassigned;
}

/* For a spare runner: the assigned model with the highest depth per runner
 * that is still under its cap and has more queued work than runners; -1. */
static int deepest_per_runner(const struct plan *p)
{
	const struct assign_model *m = p->m;
	int best = -1;

	for (int i = 0; i < p->nm; i++) {
		int cap = m[i].cap < 1 ? 1 : m[i].cap;
		if (p->runners[i] == 0 || p->runners[i] >= cap || p->runners[i] >= m[i].depth)
			continue;
		/* depth/runners, compared without division */
		if (best < 0 || (long long)m[i].depth * p->runners[best] >
				(long long)m[best].depth * p->runners[i])
			best = i;
	}
	return best;
}

/* Runners still without a model (idle ones first, then busy ones) join
 * the deepest queue per runner. */
static void add_spares(struct plan *p)
{
	for (int pass = 0; pass < 2; pass++)
		for (int r = 0; r < p->nr; r++) {
			int best;

			if (p->count[r] > 0 || (pass == 0) != !is_busy(p, r))
				continue;
			best = deepest_per_runner(p);
			if (best >= 0)
				give(p, r, best);
		}
}

int assign_compute(const struct assign_model *m, int nm, const int *busy, int nr, int maxper,
		   unsigned char *out)
{
	struct plan p; /* about 80 KiB of stack, as the arrays were before */
	int unassigned;

	if (nr <= 0 || nm <= 0)
		return nm > 0 ? nm : 0;
	p.m = m;
	p.nm = nm > ASSIGN_MAX ? ASSIGN_MAX : nm;
	p.nr = nr > ASSIGN_MAX ? ASSIGN_MAX : nr;
	p.maxper = maxper;
	p.busy = busy;
	p.out = out;
	memset(out, 0, (size_t)p.nr * (size_t)p.nm);
	for (int r = 0; r < p.nr; r++) {
		p.load[r] = is_busy(&p, r) ? ASSIGN_BUSY_WEIGHT : 0;
		p.count[r] = 0;
	}
	for (int i = 0; i < p.nm; i++)
		p.runners[i] = 0;
	unassigned = place_models(&p);
	add_spares(&p);
	return unassigned;
}
