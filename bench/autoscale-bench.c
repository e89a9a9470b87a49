/*
 * autoscale-bench.c — the node autoscaler's planner on a large pending set:
 * 200 pending pods of 30 models on 50 existing nodes (nearly full), two node
 * groups (general 8 CPU / 32 GiB; gpu 16 CPU / 64 GiB, labelled and tainted,
 * for 5 of the models). Reports, as ratios measured in this run:
 *   - decision time of as_plan_compute (process CPU time, median and worst
 *     of the rounds; wall median too) against the 50 ms target;
 *   - nodes requested against the bin-packing lower bound (per group:
 *     ceil(max(cpu, memory) deficit after the existing free room / node
 *     size)), target <= 1.1, with first-fit in arrival order (no sorting,
 *     no least-waste) as the baseline planner in the same run.
 * Instances are pseudo-random from a fixed seed (--seed N for another one;
 * --seeds N runs seeds 1..N and prints the mean and worst).
 *
 * Runs in: bench/autoscale (script). Called by: an operator. Owns: its arrays.
 */
#include "autoscale/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NMODELS 30
#define NPODS 200
#define NNODES 50
#define NGPU_MODELS 5
#define ROUNDS 31
#define TARGET_MS 50.0
#define TARGET_RATIO 1.1

static const struct as_kv gpu_labels[] = {{"accel", "gpu"}};
static const struct as_taint gpu_taints[] = {{"modelhub.io/gpu", "true", "NoSchedule"}};
static const struct as_toleration gpu_tol[] = {{"modelhub.io/gpu", "Equal", "true", "NoSchedule"}};

static unsigned long long rng_state;

static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng_state >> 33) % n;
}

/* CPU time of this process: the planner's own cost, without the time the
 * shared machine's scheduler gives to others (wall time is printed too). */
static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void make_instance(struct as_pod *pods, struct as_node *nodes, struct as_group *groups)
{
	struct as_pod models[NMODELS];

	for (int m = 0; m < NMODELS; m++) {
		models[m] = (struct as_pod){250 * (1 + (int64_t)rnd(16)), 256 * (1 + (int64_t)rnd(48)), NULL, 0, NULL, 0};
		if (m < NGPU_MODELS)
			models[m] = (struct as_pod){1000 * (1 + (int64_t)rnd(8)), 1024 * (2 + (int64_t)rnd(24)),
						    gpu_labels, 1, gpu_tol, 1};
	}
	for (int i = 0; i < NPODS; i++)
		pods[i] = models[rnd(NMODELS)];
	for (int i = 0; i < NNODES; i++) {
		int64_t ucpu = 8000 - 250 * (int64_t)rnd(3), umem = 32768 - 512 * (int64_t)rnd(4);

		nodes[i] = (struct as_node){0, 8000, 32768, 110, ucpu, umem, 8, NULL, 0, NULL, 0, 1, 0, 0,
					    2, 2, 0, 0};
	}
	groups[0] = (struct as_group){8000, 32768, 110, NULL, 0, NULL, 0, 0, 500, NNODES, 0, 600, 0};
	groups[1] = (struct as_group){16000, 65536, 110, gpu_labels, 1, gpu_taints, 1, 0, 100, 0, 0, 600, 0};
}

static int64_t ceil_div(int64_t a, int64_t b)
{
	return a <= 0 ? 0 : (a + b - 1) / b;
}

/* Lower bound of new nodes per group: pods of group g need at least the
 * larger of their cpu and memory deficit (after the free room existing nodes
 * could give them) in whole nodes. */
static int64_t lower_bound(const struct as_pod *pods, const struct as_node *nodes, const struct as_group *groups,
			   int g)
{
	int64_t cpu = 0, mem = 0, a, b;

	for (int i = 0; i < NPODS; i++)
		if ((pods[i].nselector > 0) == (g == 1)) {
			cpu += pods[i].cpu_m;
			mem += pods[i].mem_mib;
		}
	if (g == 0)
		for (int i = 0; i < NNODES; i++) {
			cpu -= nodes[i].alloc_cpu_m - nodes[i].used_cpu_m;
			mem -= nodes[i].alloc_mem_mib - nodes[i].used_mem_mib;
		}
	a = ceil_div(cpu, groups[g].cpu_m);
	b = ceil_div(mem, groups[g].mem_mib);
	return a > b ? a : b;
}

/* Baseline planner: each pod in arrival order to the first node with room,
 * existing nodes first, then new nodes of the first group it fits. */
static int naive_nodes(const struct as_pod *pods, const struct as_node *nodes, const struct as_group *groups,
		       int *per_group)
{
	static int64_t fc[NNODES + NPODS], fm[NNODES + NPODS];
	static int grp[NNODES + NPODS];
	int nb = 0, added = 0;

	for (int i = 0; i < NNODES; i++, nb++) {
		fc[nb] = nodes[i].alloc_cpu_m - nodes[i].used_cpu_m;
		fm[nb] = nodes[i].alloc_mem_mib - nodes[i].used_mem_mib;
		grp[nb] = 0;
	}
	per_group[0] = per_group[1] = 0;
	for (int i = 0; i < NPODS; i++) {
		int g = as_fits_any(groups, 2, &pods[i]), b;

		for (b = 0; b < nb && !(grp[b] == g && fc[b] >= pods[i].cpu_m && fm[b] >= pods[i].mem_mib); b++)
			;
		if (b == nb) {
			fc[nb] = groups[g].cpu_m;
			fm[nb] = groups[g].mem_mib;
			grp[nb++] = g;
			per_group[g]++;
			added++;
		}
		fc[b] -= pods[i].cpu_m;
		fm[b] -= pods[i].mem_mib;
	}
	return added;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double worst_ms, median_ms, wall_median_ms, ratio, naive_ratio;
	int add[2], naive[2], unplaced;
	int64_t lb[2];
};

static int run(unsigned long long seed, struct result *r)
{
	static struct as_pod pods[NPODS];
	static struct as_node nodes[NNODES];
	static struct as_pod_result pres[NPODS];
	static struct as_node_result nres[NNODES];
	struct as_group groups[2];
	struct as_plan out = {r->add, pres, nres};
	struct as_settings set = {0.25};
	double ms[ROUNDS], wall[ROUNDS];

	rng_state = seed;
	make_instance(pods, nodes, groups);
	for (int k = 0; k < ROUNDS; k++) {
		double t0 = cpu_ms(), w0 = now_ms();

		if (as_plan_compute(pods, NPODS, nodes, NNODES, groups, 2, &set, &out) < 0)
			return -1;
		ms[k] = cpu_ms() - t0;
		wall[k] = now_ms() - w0;
	}
	qsort(ms, ROUNDS, sizeof *ms, cmp_dbl);
	qsort(wall, ROUNDS, sizeof *wall, cmp_dbl);
	r->wall_median_ms = wall[ROUNDS / 2];
	r->median_ms = ms[ROUNDS / 2];
	r->worst_ms = ms[ROUNDS - 1];
	r->unplaced = 0;
	for (int i = 0; i < NPODS; i++)
		r->unplaced += pres[i].fate == AS_POD_AT_MAX || pres[i].fate == AS_POD_NO_GROUP;
	r->lb[0] = lower_bound(pods, nodes, groups, 0);
	r->lb[1] = lower_bound(pods, nodes, groups, 1);
	naive_nodes(pods, nodes, groups, r->naive);
	r->ratio = (double)(r->add[0] + r->add[1]) / (double)(r->lb[0] + r->lb[1]);
	r->naive_ratio = (double)(r->naive[0] + r->naive[1]) / (double)(r->lb[0] + r->lb[1]);
	return 0;
}

static int many(int n)
{
	double sum = 0, nsum = 0, worst = 0, max = 0, med = 0;
	int over = 0;

	for (int s = 1; s <= n; s++) {
		struct result r;

		if (run((unsigned long long)s, &r) < 0 || r.unplaced)
			return 1;
		sum += r.ratio;
		nsum += r.naive_ratio;
		max = r.ratio > max ? r.ratio : max;
		worst = r.worst_ms > worst ? r.worst_ms : worst;
		med = r.median_ms > med ? r.median_ms : med;
		over += r.ratio > TARGET_RATIO;
	}
	printf("%d instances (seeds 1..%d): nodes requested / lower bound: planner mean %.3f, max %.3f "
	       "(%d over %.1f); first-fit baseline mean %.3f; decision CPU time: largest median %.3f ms, worst %.3f ms "
	       "(%.4fx the %.0f ms target)\n", n, n, sum / n, max, over, TARGET_RATIO, nsum / n, med, worst,
	       worst / TARGET_MS, TARGET_MS);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long seed = 20261204;
	struct result r;
	double load[3] = {0, 0, 0};

	if (argc > 2 && strcmp(argv[1], "--seeds") == 0)
		return many(atoi(argv[2]));
	if (argc > 2 && strcmp(argv[1], "--seed") == 0)
		seed = strtoull(argv[2], NULL, 10);
	if (run(seed, &r) < 0) {
		fprintf(stderr, "autoscale-bench: out of memory\n");
		return 1;
	}
	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	printf("autoscale planner: %d pending pods of %d models, %d existing nodes, 2 groups (seed %llu, load %.1f)\n",
	       NPODS, NMODELS, NNODES, seed, load[0]);
	printf("decision time (CPU): median %.3f ms, worst %.3f ms of %d rounds = %.4fx the %.0f ms target (%s); "
	       "wall median %.3f ms\n", r.median_ms, r.worst_ms, ROUNDS, r.worst_ms / TARGET_MS, TARGET_MS,
	       r.worst_ms < TARGET_MS ? "met" : "NOT met", r.wall_median_ms);
	for (int g = 0; g < 2; g++)
		printf("group %s: planner %d nodes, first-fit baseline %d, lower bound %lld\n",
		       g ? "gpu" : "general", r.add[g], r.naive[g], (long long)r.lb[g]);
	printf("nodes requested / lower bound: planner %.3f (%s, target <= %.1f), first-fit baseline %.3f\n",
	       r.ratio, r.ratio <= TARGET_RATIO ? "met" : "NOT met", TARGET_RATIO, r.naive_ratio);
	printf("pods left unplaced: %d\n", r.unplaced);
	return r.unplaced ? 1 : 0;
}
