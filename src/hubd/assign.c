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

int assign_compute(const struct assign_model *m, int nm, const int *busy, int nr, int maxper,
		   unsigned char *out)
{
	long long load[ASSIGN_MAX];
	int order[ASSIGN_MAX], count[ASSIGN_MAX], runners[ASSIGN_MAX];
	int unassigned = 0;

	if (nr <= 0 || nm <= 0)
		return nm > 0 ? nm : 0;
	if (nr > ASSIGN_MAX)
		nr = ASSIGN_MAX;
	if (nm > ASSIGN_MAX)
		nm = ASSIGN_MAX;
	memset(out, 0, (size_t)nr * (size_t)nm);
	for (int r = 0; r < nr; r++) {
		load[r] = busy && busy[r] ? ASSIGN_BUSY_WEIGHT : 0;
		count[r] = 0;
	}
	/* insertion sort by depth, descending; ties keep input order */
	for (int i = 0; i < nm; i++) {
		int j = i;
		while (j > 0 && m[order[j - 1]].depth < m[i].depth) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
		runners[i] = 0;
	}
	for (int k = 0; k < nm; k++) {
		int i = order[k], best = -1;
		for (int r = 0; r < nr; r++) {
			if (count[r] >= maxper)
				continue;
			if (best < 0 || load[r] < load[best] ||
			    (load[r] == load[best] && count[r] < count[best]))
				best = r;
		}
		if (best < 0) {
			unassigned++;
			continue;
		}
		out[best * nm + i] = 1;
		load[best] += m[i].depth > 0 ? m[i].depth : 1;
		count[best]++;
		runners[i]++;
	}
	/* spare runners (idle ones first) join the deepest queue per runner */
	for (int pass = 0; pass < 2; pass++)
		for (int r = 0; r < nr; r++) {
			int best = -1;
			if (count[r] > 0 || (pass == 0) != !(busy && busy[r]))
				continue;
			for (int i = 0; i < nm; i++) {
				int cap = m[i].cap < 1 ? 1 : m[i].cap;
				if (runners[i] == 0 || runners[i] >= cap || runners[i] >= m[i].depth)
					continue;
				/* depth/runners, compared without division */
				if (best < 0 || (long long)m[i].depth * runners[best] >
						(long long)m[best].depth * runners[i])
					best = i;
			}
			if (best < 0)
				continue;
			out[r * nm + best] = 1;
			count[r]++;
			runners[best]++;
		}
	return unassigned;
}
