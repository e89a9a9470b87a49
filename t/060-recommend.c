/*
 * 060-recommend.c — table-driven tests of the recommendation engine with
 * hand-computed answers (band boundaries, mixed resources, OOM, floors,
 * rounding, caps, clamping) and a comparison with a VPA-style recommender.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recommend/recommend.h"
#include "recommend/bands.h"
#include "tap.h"

static struct rec_config cfg;
static const int cur[REC_RES_MAX] = {100, 1000, 256, 1000};

static struct rec_instance inst(double cpu_min, double cpu_max, double mem_min, double mem_max)
{
	struct rec_instance x = {
		.cpu_m = {.min = cpu_min, .max = cpu_max, .avg = (cpu_min + cpu_max) / 2},
		.mem_mib = {.min = mem_min, .max = mem_max, .avg = (mem_min + mem_max) / 2},
		.had = {[REC_CPU_REQUEST] = 100, [REC_CPU_LIMIT] = 1000,
			[REC_MEM_REQUEST] = 256, [REC_MEM_LIMIT] = 1000},
		.samples = 10, .input_count = 5, .request_inputs = 5, .call_inputs = 5};
	x.cpu_m.busy = x.mem_mib.busy = x.throttled_pct = NAN;
	return x;
}

struct bcase {
	enum rec_resource res;
	double used;         /* max for limits (had 1000), min for requests */
	const char *band;
	int recommended;
};

static void boundary_cases(void)
{
	/* limits of 1000: percent == used / 10. Values: ceil(used/0.75/10)*10
	 * for CPU, ceil(used/0.725/16)*16 for memory; green keeps 1000. */
	static const struct bcase cases[] = {
		{REC_CPU_LIMIT, 399, "very_under", 540},  /* 532.0 -> 540 */
		{REC_CPU_LIMIT, 400, "under", 540},       /* 533.3 -> 540 */
		{REC_CPU_LIMIT, 649, "under", 870},       /* 865.3 -> 870 */
		{REC_CPU_LIMIT, 650, "recommended", 1000},
		{REC_CPU_LIMIT, 849, "recommended", 1000},
		{REC_CPU_LIMIT, 850, "over", 1140},       /* 1133.3 -> 1140 */
		{REC_CPU_LIMIT, 949, "over", 1270},       /* 1265.3 -> 1270 */
		/* >= 95 %: at the limit, see throttling() */
		{REC_MEM_LIMIT, 399, "very_under", 560},  /* 550.3 -> 560 */
		{REC_MEM_LIMIT, 400, "under", 560},       /* 551.7 -> 560 */
		{REC_MEM_LIMIT, 650, "recommended", 1000},
		{REC_MEM_LIMIT, 799, "recommended", 1000},
		{REC_MEM_LIMIT, 800, "over", 1104},       /* 1103.4 -> 1104 */
		{REC_MEM_LIMIT, 900, "very_over", 1248},  /* 1241.4 -> 1248 */
		{REC_MEM_LIMIT, 929, "very_over", 1296},  /* 1281.4 -> 1296 */
		{REC_MEM_LIMIT, 930, "critical", 1296},   /* 1282.8 -> 1296 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct bcase *c = &cases[i];
		struct rec_instance x = inst(50, 500, 100, 500);
		struct rec_result r;

		if (c->res == REC_CPU_LIMIT)
			x.cpu_m.max = c->used;
		else
			x.mem_mib.max = c->used;
		rec_compute(&cfg, &x, 1, cur, &r);
		const struct rec_item *it = &r.item[c->res];
		is_str(it->band ? it->band->name : "none", c->band, "%s used %.0f of 1000 -> band %s",
		       rec_resource_name(c->res), c->used, c->band);
		is_int(it->recommended, c->recommended, "%s used %.0f -> recommended %d",
		       rec_resource_name(c->res), c->used, c->recommended);
		is_dbl(it->percent_used, c->used / 10.0, 1e-9, "percent used %.1f", c->used / 10.0);
	}
	/* fractional boundaries: 39.9 % and 40 % exactly */
	struct rec_instance x = inst(50, 399.0, 100, 500);
	struct rec_result r;
	x.had[REC_CPU_LIMIT] = 1000;
	rec_compute(&cfg, &x, 1, cur, &r);
	is_str(r.item[REC_CPU_LIMIT].band->name, "very_under", "39.9%% cpu is very_under");
}

static void request_cases(void)
{
	/* cpu request 100: min 70 -> 70 % green, kept; min 30 -> 30 % -> 40 */
	struct rec_instance x = inst(70, 700, 180, 700);
	struct rec_result r;

	rec_compute(&cfg, &x, 1, cur, &r);
	is_str(r.item[REC_CPU_REQUEST].band->name, "recommended", "cpu request 70%% green");
	is_int(r.item[REC_CPU_REQUEST].recommended, 100, "green request kept");
	/* memory request 256: min 180 -> 70.3 % green */
	is_str(r.item[REC_MEM_REQUEST].band->name, "recommended", "mem request 70.3%% green");
	x.cpu_m.min = 30;
	x.mem_mib.min = 50;   /* 19.5 % of 256 -> 50/0.725 = 68.97 -> 80 */
	rec_compute(&cfg, &x, 1, cur, &r);
	is_int(r.item[REC_CPU_REQUEST].recommended, 40, "cpu request 30m -> 40m");
	is_int(r.item[REC_MEM_REQUEST].recommended, 80, "mem request 50Mi -> 80Mi");
	/* floors: 3m -> 4 -> floor 10; 20 MiB -> 27.6 -> 32 -> floor 64 */
	x.cpu_m.min = 3;
	x.mem_mib.min = 20;
	rec_compute(&cfg, &x, 1, cur, &r);
	is_int(r.item[REC_CPU_REQUEST].recommended, 10, "cpu floor 10m");
	is_int(r.item[REC_MEM_REQUEST].recommended, 64, "memory floor 64Mi");
	/* clamp: request 200 green (min 140 = 70 %), limit 2000 with max 140
	 * -> 186.7 -> 190: the kept request 200 must drop to 190 */
	x = inst(140, 140, 180, 700);
	x.had[REC_CPU_REQUEST] = 200;
	x.had[REC_CPU_LIMIT] = 2000;
	int cur2[REC_RES_MAX] = {200, 2000, 256, 1000};
	rec_compute(&cfg, &x, 1, cur2, &r);
	is_int(r.item[REC_CPU_LIMIT].recommended, 190, "limit 190m");
	is_int(r.item[REC_CPU_REQUEST].recommended, 190, "request clamped to limit");
	ok(strstr(r.item[REC_CPU_REQUEST].reason, "clamped") != NULL, "reason says clamped");
}

static void mixed_and_counts(void)
{
	struct rec_instance xs[3] = {0};
	struct rec_result r;

	/* zero instances */
	rec_compute(&cfg, xs, 0, cur, &r);
	is_int(r.verdict, REC_NO_DATA, "no instances -> no_data");
	is_int(r.item[REC_CPU_LIMIT].recommended, 1000, "no data keeps current");
	ok(r.item[REC_CPU_LIMIT].band == NULL, "no band without data");
	/* two instances with different limits: A 500/1000 = 50 %, B 1800/2000 = 90 %
	 * worst = 90 % (over); peak 1800 -> 2400 */
	xs[0] = inst(50, 500, 100, 700);
	xs[1] = inst(50, 1800, 100, 700);
	xs[1].had[REC_CPU_LIMIT] = 2000;
	rec_compute(&cfg, xs, 2, cur, &r);
	/* the band is judged against today's 1000: 1800 is 180 % of it */
	is_str(r.item[REC_CPU_LIMIT].band->name, "critical", "mixed: 1800 against today's 1000");
	is_dbl(r.item[REC_CPU_LIMIT].percent_used, 180, 1e-9, "percent against current");
	is_dbl(r.item[REC_CPU_LIMIT].percent_min, 50, 1e-9, "spread min 50%%");
	is_dbl(r.item[REC_CPU_LIMIT].percent_max, 90, 1e-9, "spread max 90%%");
	is_int(r.item[REC_CPU_LIMIT].recommended, 2400, "mixed: 1800/0.75 = 2400");
	is_int(r.item[REC_CPU_LIMIT].instances, 2, "two instances used");
	is_int(r.verdict, REC_CRITICAL, "verdict critical (raises a critical value)");
	/* many identical green instances -> ok */
	for (int i = 0; i < 3; i++)
		xs[i] = inst(75, 750, 180, 700);
	rec_compute(&cfg, xs, 3, cur, &r);
	is_int(r.verdict, REC_OK, "all green -> ok");
	/* instance without a memory limit (disabled) is skipped for that item */
	xs[0].had[REC_MEM_LIMIT] = 0;
	rec_compute(&cfg, xs, 3, cur, &r);
	is_int(r.item[REC_MEM_LIMIT].instances, 2, "instance without limit skipped");
}

static void oom_and_caps(void)
{
	struct rec_instance x = inst(50, 500, 100, 500);
	struct rec_result r;

	/* OOM at 512 (the model is at 512): at least max(512 x 1.2, 512 + 100)
	 * = 614.4 -> 624 */
	int cur512[REC_RES_MAX] = {100, 1000, 256, 512};
	x.had[REC_MEM_LIMIT] = 512;
	x.oom_killed = 1;
	rec_compute(&cfg, &x, 1, cur512, &r);
	is_int(r.item[REC_MEM_LIMIT].recommended, 624, "OOM: max(512 x1.2, 512+100) -> 624");
	is_str(r.item[REC_MEM_LIMIT].band->name, "critical", "OOM is critical");
	ok(r.item[REC_MEM_LIMIT].oom_adjusted, "oom_adjusted set");
	ok(strstr(r.item[REC_MEM_LIMIT].reason, "OOM") != NULL, "reason mentions OOM");
	is_int(r.verdict, REC_CRITICAL, "verdict critical");
	is_int(r.oom_instances, 1, "one OOM instance");
	/* caps: peak 1050m needs 1400m, node has 1200m */
	struct rec_config capped = cfg;
	capped.max_cpu_m = 1200;
	x = inst(50, 1050, 100, 500);
	x.had[REC_CPU_LIMIT] = 2000;
	rec_compute(&capped, &x, 1, cur, &r);
	is_int(r.item[REC_CPU_LIMIT].recommended, 1200, "capped at the largest node");
	ok(r.item[REC_CPU_LIMIT].capped, "capped flag");
	ok(strstr(r.item[REC_CPU_LIMIT].reason, "capped at the largest node") != NULL,
	   "reason says capped: %s", r.item[REC_CPU_LIMIT].reason);
	/* custom rounding step 32 Mi: 800 -> 1103.4 -> 1120 */
	struct rec_config step = cfg;
	step.mem_step_mib = 32;
	x = inst(50, 500, 100, 800);
	rec_compute(&step, &x, 1, cur, &r);
	is_int(r.item[REC_MEM_LIMIT].recommended, 1120, "rounding to 32Mi");
}

static void buckets(void)
{
	struct rec_instance xs[8];
	struct rec_bucket b[REC_BUCKETS];

	for (int i = 0; i < 8; i++) {
		xs[i] = inst(50, i < 4 ? 200 : 900, 100, 500);
		xs[i].request_inputs = i < 4 ? 5 : 500;
	}
	rec_compute_buckets(&cfg, xs, 8, cur, REC_BY_REQUEST, b);
	ok(b[0].enough && b[0].result.instances == 4, "bucket 1-10 has 4 instances");
	ok(!b[1].enough && b[1].result.instances == 0, "bucket 11-100 empty");
	ok(b[2].enough && b[2].result.instances == 4, "bucket 101-1000 has 4");
	is_int(b[0].result.item[REC_CPU_LIMIT].recommended, 270, "small inputs: 200/0.75 -> 270");
	is_int(b[2].result.item[REC_CPU_LIMIT].recommended, 1200, "large inputs: 900/0.75 = 1200");
}

/* VPA-style recommender for comparison: P90 of peaks + 15 %, OOM sample:
 * max(request, peak) bumped by max(x1.2, +100Mi). */
static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double vpa_memory(const struct rec_instance *in, int n)
{
	double peaks[64];
	for (int i = 0; i < n; i++) {
		peaks[i] = in[i].mem_mib.max;
		if (in[i].oom_killed) {
			double base = fmax(in[i].had[REC_MEM_REQUEST], in[i].mem_mib.max);
			double bump = base * 1.2;
			if (bump < base + 100)
				bump = base + 100;
			peaks[i] = bump;
		}
	}
	qsort(peaks, (size_t)n, sizeof peaks[0], cmp_dbl);
	int idx = (int)ceil(0.9 * n) - 1;
	return peaks[idx < 0 ? 0 : idx] * 1.15;
}

static void vpa_comparison(void)
{
	/* 20 short runs: 19 small batches peak at 300 Mi, one large batch at
	 * 900 Mi. P90 ignores the large run: VPA's limit (345 Mi) would OOM it;
	 * ours covers the worst instance (900 / 72.5 % -> 1248 Mi). */
	struct rec_instance xs[20];
	struct rec_result r;

	for (int i = 0; i < 20; i++)
		xs[i] = inst(50, 500, 100, i == 7 ? 900 : 300);
	double vpa = vpa_memory(xs, 20);
	rec_compute(&cfg, xs, 20, cur, &r);
	is_dbl(vpa, 345, 1e-6, "VPA P90+15%% = 345Mi");
	is_int(r.item[REC_MEM_LIMIT].recommended, 1248, "ours covers the peak run: 1248Mi");
	ok(vpa < 900 && r.item[REC_MEM_LIMIT].recommended > 900,
	   "VPA limit is below the observed peak, ours above it");
	/* OOM at a 512 Mi limit, peak seen 500, request 256: VPA bumps from
	 * max(request, peak) = 500 -> 600 (+100 wins) and adds 15 % = 690;
	 * ours bumps from the limit it died at (the kill proves usage reached
	 * it): max(614.4, 612) -> 624, no margin on top (a bounded step). */
	struct rec_instance o = inst(50, 500, 100, 500);
	int cur512[REC_RES_MAX] = {100, 1000, 256, 512};
	o.had[REC_MEM_LIMIT] = 512;
	o.oom_killed = 1;
	vpa = vpa_memory(&o, 1);
	rec_compute(&cfg, &o, 1, cur512, &r);
	is_dbl(vpa, 690, 1e-6, "VPA OOM bump 690Mi");
	is_int(r.item[REC_MEM_LIMIT].recommended, 624, "ours 624Mi after OOM");
}

static void report_and_limit(void)
{
	struct rec_instance xs[2] = {inst(50, 900, 100, 500), inst(50, 300, 100, 500)};
	struct rec_report rep = {.model_id = "m", .current = {100, 1000, 256, 1000}};
	struct rec_result r;

	xs[1].request_inputs = 50;
	rec_report_compute(&cfg, xs, 2, &rep);
	rec_compute(&cfg, xs, 2, cur, &r);
	is_int(rep.result.item[REC_CPU_LIMIT].recommended, r.item[REC_CPU_LIMIT].recommended,
	       "report: result against rep->current");
	is_int(rep.buckets[0].result.instances, 1, "report: bucket 1-10 has the 5-input run");
	is_int(rep.buckets[1].result.instances, 1, "report: bucket 11-100 has the 50-input run");
	is_int(rec_limit(0), REC_DEFAULT_LIMIT, "limit 0 -> default");
	is_int(rec_limit(-3), REC_DEFAULT_LIMIT, "negative limit -> default");
	is_int(rec_limit(7), 7, "limit kept");
	is_int(rec_limit(REC_MAX_LIMIT + 1), REC_MAX_LIMIT, "limit clamped to the maximum");
}

/* ---- issue 16: each case failed on the engine before it ---- */

/* 1. requests from the busy phase, not the all-time min of an idling instance */
static void d1_busy_requests(void)
{
	struct rec_instance xs[4];
	struct rec_result r;
	int c10[REC_RES_MAX] = {10, 2000, 64, 1000};

	for (int i = 0; i < 4; i++) {
		xs[i] = inst(0, 1300, 20, 500);   /* idles between calls: min ~0 */
		xs[i].had[REC_CPU_REQUEST] = 10;
		xs[i].had[REC_CPU_LIMIT] = 2000;
		xs[i].cpu_m.busy = 800;           /* low percentile of busy samples */
		xs[i].mem_mib.busy = 300;
	}
	rec_compute(&cfg, xs, 4, c10, &r);
	is_int(r.item[REC_CPU_REQUEST].recommended, 1070, "d1: cpu request from busy 800m -> 1070m, not the 10m floor");
	is_int(r.item[REC_MEM_REQUEST].recommended, 416, "d1: memory request from busy 300Mi -> 416Mi");
	ok(strstr(r.item[REC_CPU_REQUEST].reason, "busy floor") != NULL, "d1: reason names the busy floor");
	/* one run that never idled (OOM-killed, min 970) does not jump the request */
	xs[0].cpu_m.min = 970;
	xs[0].oom_killed = 1;
	rec_compute(&cfg, xs, 4, c10, &r);
	is_int(r.item[REC_CPU_REQUEST].recommended, 1070, "d1: a never-idle run does not move the busy request");
}

/* 2. keep only if green against the value that would be applied */
static void d2_keep_rechecks_current(void)
{
	struct rec_instance x = inst(50, 500, 100, 3000);
	struct rec_result r;
	int lowered[REC_RES_MAX] = {100, 1000, 256, 1024};

	x.had[REC_MEM_LIMIT] = 4096;                 /* 73 % of what it had: green */
	rec_compute(&cfg, &x, 1, lowered, &r);
	is_str(r.item[REC_MEM_LIMIT].band->name, "critical", "d2: 3000Mi against today's 1024Mi is critical");
	is_int(r.item[REC_MEM_LIMIT].recommended, 4144, "d2: raised to 3000/72.5%% -> 4144Mi");
	x = inst(400, 800, 100, 500);
	x.had[REC_CPU_REQUEST] = 500;                /* 80 % of the old 500m */
	x.cpu_m.busy = 400;
	int req200[REC_RES_MAX] = {200, 1000, 256, 1000};
	rec_compute(&cfg, &x, 1, req200, &r);
	is_int(r.item[REC_CPU_REQUEST].recommended, 540, "d2: 400m busy against today's 200m -> 540m");
	is_dbl(r.item[REC_CPU_REQUEST].percent_used, 200, 1e-9, "d2: percent against today's value");
}

/* 3. node cap from the nodes that can run the model, not this machine */
static void d3_node_cap(void)
{
	struct rec_node nodes[3] = {
		{.cpu_m = 4000, .mem_mib = 16000, .eligible = 1},
		{.cpu_m = 8000, .mem_mib = 30000, .eligible = 1},
		{.cpu_m = 64000, .mem_mib = 256000, .eligible = 0}}; /* tainted/other group */
	struct rec_config c = cfg;
	struct rec_instance x = inst(50, 500, 100, 30000);
	struct rec_result r;

	c.max_cpu_m = 2000;                          /* e.g. this machine */
	c.max_mem_mib = 4000;
	is_int(rec_cap_from_nodes(&c, nodes, 3), 2, "d3: two nodes can run the model");
	is_int(c.max_cpu_m, 8000, "d3: cpu cap = largest eligible allocatable");
	is_int(c.max_mem_mib, 30000, "d3: memory cap = largest eligible allocatable");
	rec_compute(&c, &x, 1, cur, &r);
	is_int(r.item[REC_MEM_LIMIT].recommended, 30000, "d3: capped at the node's 30000Mi");
	ok(strstr(r.item[REC_MEM_LIMIT].reason, "capped") != NULL, "d3: reason says capped");
	/* a kept (green) value above the cap is capped too: 3000m of a
	 * 4000m limit is 75 %, but no 2000m node holds 4000m */
	{
		int big[REC_RES_MAX] = {100, 4000, 256, 1000};
		struct rec_config small = cfg;

		x = inst(50, 3000, 100, 500);
		x.had[REC_CPU_LIMIT] = 4000;
		small.max_cpu_m = 2000;
		rec_compute(&small, &x, 1, big, &r);
		is_str(r.item[REC_CPU_LIMIT].band->name, "recommended", "d3: green against 4000m");
		is_int(r.item[REC_CPU_LIMIT].recommended, 2000, "d3: kept value above the cap -> cap");
		ok(r.item[REC_CPU_LIMIT].capped, "d3: kept value above the cap: capped flag");
		is_dbl(r.item[REC_CPU_LIMIT].percent_reached, 150, 1e-9, "d3: reaches 150%% of the cap");
		ok(strstr(r.item[REC_CPU_LIMIT].reason, "above the largest node: capped at 2000m (150.0%)") != NULL,
		   "d3: reason says the kept value is capped: %s", r.item[REC_CPU_LIMIT].reason);
		is_int(r.verdict, REC_ADJUST, "d3: a capped keep is a change");
		small.max_cpu_m = 4000;
		rec_compute(&small, &x, 1, big, &r);
		is_int(r.item[REC_CPU_LIMIT].recommended, 4000, "d3: green at the cap is kept");
		ok(!r.item[REC_CPU_LIMIT].capped, "d3: not capped at the cap");
		small.max_cpu_m = 0;
		rec_compute(&small, &x, 1, big, &r);
		is_int(r.item[REC_CPU_LIMIT].recommended, 4000, "d3: no cap known: kept");
		x = inst(50, 500, 2900, 3000);
		x.had[REC_MEM_REQUEST] = x.had[REC_MEM_LIMIT] = 4000;
		int mem4000[REC_RES_MAX] = {100, 1000, 4000, 4000};
		small.max_mem_mib = 3600;
		rec_compute(&small, &x, 1, mem4000, &r);
		is_int(r.item[REC_MEM_REQUEST].recommended, 3600, "d3: green memory request above the cap -> cap");
		is_int(r.item[REC_MEM_LIMIT].recommended, 3600, "d3: green memory limit above the cap -> cap");
	}
	c.max_cpu_m = 1234;
	is_int(rec_cap_from_nodes(&c, nodes + 2, 1), 0, "d3: no eligible node");
	is_int(c.max_cpu_m, 1234, "d3: no eligible node keeps the configured cap");
}

/* 4. OOM: bounded, not compounding, clears, reported without a limit */
static void d4_oom(void)
{
	struct rec_instance xs[5];
	struct rec_result r;
	int c624[REC_RES_MAX] = {100, 1000, 256, 624};

	xs[0] = inst(50, 500, 100, 620);            /* newest: killed at the applied 624 */
	xs[0].had[REC_MEM_LIMIT] = 624;
	xs[0].oom_killed = 1;
	xs[1] = inst(50, 500, 100, 510);            /* older: killed at 512 */
	xs[1].had[REC_MEM_LIMIT] = 512;
	xs[1].oom_killed = 1;
	rec_compute(&cfg, xs, 2, c624, &r);
	is_int(r.item[REC_MEM_LIMIT].recommended, 752, "d4: second kill: 624 x1.2 -> 752, not x2.07");
	ok(r.item[REC_MEM_LIMIT].recommended <= 624 * 1.21 + 16, "d4: one bounded step per kill");
	/* three healthy runs at 752 newer than the kills: no longer critical */
	int c752[REC_RES_MAX] = {100, 1000, 256, 752};
	for (int i = 0; i < 3; i++) {
		xs[i] = inst(75, 750, 180, 540);    /* all green; memory 71.8 % of 752 */
		xs[i].had[REC_MEM_LIMIT] = 752;
	}
	xs[3] = inst(50, 500, 100, 620);
	xs[3].had[REC_MEM_LIMIT] = 624;
	xs[3].oom_killed = 1;
	rec_compute(&cfg, xs, 4, c752, &r);
	is_int(r.oom_active, 0, "d4: kill cleared by 3 healthy runs");
	is_int(r.verdict, REC_OK, "d4: healthy after the kill -> ok, not critical");
	is_int(r.item[REC_MEM_LIMIT].recommended, 752, "d4: fixed point at 752");
	rec_compute(&cfg, xs + 1, 3, c752, &r);   /* only two healthy runs newer */
	is_int(r.oom_active, 1, "d4: two healthy runs do not clear it yet");
	/* OOM without a memory limit is reported */
	int nolimit[REC_RES_MAX] = {100, 1000, 256, 0};
	xs[4] = inst(50, 500, 100, 900);
	xs[4].had[REC_MEM_LIMIT] = 0;
	xs[4].oom_killed = 1;
	rec_compute(&cfg, &xs[4], 1, nolimit, &r);
	is_int(r.oom_unlimited, 1, "d4: OOM without a limit counted");
	is_int(r.verdict, REC_CRITICAL, "d4: OOM without a limit is critical");
	ok(strstr(r.item[REC_MEM_LIMIT].reason, "without a memory limit") != NULL,
	   "d4: reason reports it: %s", r.item[REC_MEM_LIMIT].reason);
}

/* 5. separate floors for limits and requests */
static void d5_floors(void)
{
	struct rec_instance x = inst(1, 5, 10, 20);
	struct rec_result r;

	rec_compute(&cfg, &x, 1, cur, &r);
	is_int(r.item[REC_CPU_LIMIT].recommended, 100, "d5: cpu limit floor 100m");
	is_int(r.item[REC_MEM_LIMIT].recommended, 128, "d5: memory limit floor 128Mi");
	is_int(r.item[REC_CPU_REQUEST].recommended, 10, "d5: cpu request floor 10m");
	is_int(r.item[REC_MEM_REQUEST].recommended, 64, "d5: memory request floor 64Mi");
}

/* 6. buckets by request and call size; sizing from the request */
static void d6_buckets(void)
{
	struct rec_instance xs[6];
	struct rec_report rep = {.model_id = "m", .current = {100, 1000, 256, 1000}};
	struct rec_config c = cfg;
	int res[REC_RES_MAX], chunk = 0;

	c.max_mem_mib = 2000;
	for (int i = 0; i < 6; i++) {
		int big = i >= 3;
		xs[i] = inst(50, 500, 100, big ? 1800 : 300);
		xs[i].input_count = 5000;            /* warm: served many requests */
		xs[i].request_inputs = big ? 500 : 5;
		xs[i].call_inputs = big ? 500 : 5;
	}
	rec_report_compute(&c, xs, 6, &rep);
	is_int(rep.buckets[0].result.instances, 3, "d6: 5-input requests in 1-10 (not by input_count)");
	is_int(rep.buckets[2].result.instances, 3, "d6: 500-input requests in 101-1000");
	is_int(rep.call_buckets[2].result.instances, 3, "d6: 500-input calls in 101-1000");
	ok(rec_size_for_request(&c, &rep, 5, 100, res, &chunk), "d6: small request sized from its bucket");
	is_int(res[REC_MEM_LIMIT], 416, "d6: small request: 300/72.5%% -> 416Mi");
	is_int(chunk, 5, "d6: chunk = the request");
	rec_size_for_request(&c, &rep, 500, 500, res, &chunk);
	is_int(chunk, 10, "d6: 500-input chunks do not fit 2000Mi: chunk of the fitting bucket");
	ok(res[REC_MEM_LIMIT] <= 2000, "d6: sized within the node");
}

/* 7. a throttled CPU limit does not ratchet; binding throttling: bounded step */
static void d7_throttle(void)
{
	int c[REC_RES_MAX] = {100, 1000, 256, 1000};
	struct rec_result r;

	for (int apply = 0; apply < 8; apply++) {
		struct rec_instance x = inst(50, c[REC_CPU_LIMIT], 100, 500); /* reads ~100 % */
		x.had[REC_CPU_LIMIT] = c[REC_CPU_LIMIT];
		rec_compute(&cfg, &x, 1, c, &r);
		c[REC_CPU_LIMIT] = r.item[REC_CPU_LIMIT].recommended;
	}
	is_int(c[REC_CPU_LIMIT], 1000, "d7: 8 applies at 100 %% without throttling evidence: 1000m");
	struct rec_instance x = inst(50, 1000, 100, 500);
	x.throttled_pct = 30;
	int c1[REC_RES_MAX] = {100, 1000, 256, 1000};
	rec_compute(&cfg, &x, 1, c1, &r);
	is_int(r.item[REC_CPU_LIMIT].recommended, 1250, "d7: binding: 1000 x1.25 = 1250m");
	ok(r.item[REC_CPU_LIMIT].throttle_adjusted, "d7: throttle_adjusted");
	x.throttled_pct = 0.5;                     /* known and not binding */
	rec_compute(&cfg, &x, 1, c1, &r);
	is_int(r.item[REC_CPU_LIMIT].recommended, 1000, "d7: not binding: kept");
}

/* 9. missing data is missing; % reached; labels match the action */
static void d9_missing_reason_labels(void)
{
	struct rec_instance xs[4];
	struct rec_result r;

	xs[0] = inst(NAN, NAN, 100, 700);          /* no CPU samples */
	xs[0].cpu_m.avg = NAN;
	rec_compute(&cfg, xs, 1, cur, &r);
	is_int(r.item[REC_MEM_LIMIT].instances, 1, "d9: its memory peak still counts");
	is_dbl(r.item[REC_MEM_LIMIT].usage, 700, 1e-9, "d9: memory usage 700");
	ok(r.item[REC_CPU_LIMIT].band == NULL, "d9: no CPU band without CPU samples");
	is_int(r.item[REC_CPU_LIMIT].recommended, 1000, "d9: CPU limit untouched");
	xs[0] = inst(3, 500, 100, 500);            /* 3m busy floor -> 10m floor */
	xs[0].cpu_m.busy = 3;
	rec_compute(&cfg, xs, 1, cur, &r);
	is_dbl(r.item[REC_CPU_REQUEST].percent_reached, 30, 1e-9, "d9: 3m of 10m = 30 %% reached");
	ok(strstr(r.item[REC_CPU_REQUEST].reason, "at 30.0%") != NULL,
	   "d9: reason states the reached 30%%: %s", r.item[REC_CPU_REQUEST].reason);
	/* an old cleared OOM and every value going down: adjust, not critical */
	int big[REC_RES_MAX] = {1000, 4000, 2048, 4096};
	for (int i = 0; i < 3; i++)
		xs[i] = inst(50, 500, 100, 500);
	xs[3] = inst(50, 500, 100, 500);
	xs[3].had[REC_MEM_LIMIT] = 512;
	xs[3].oom_killed = 1;
	rec_compute(&cfg, xs, 4, big, &r);
	ok(r.item[REC_MEM_LIMIT].recommended < 4096, "d9: memory limit goes down");
	is_int(r.verdict, REC_ADJUST, "d9: every value goes down: adjust, not critical");
}

int main(void)
{
	rec_config_default(&cfg);
	boundary_cases();
	request_cases();
	mixed_and_counts();
	oom_and_caps();
	buckets();
	vpa_comparison();
	report_and_limit();
	d1_busy_requests();
	d2_keep_rechecks_current();
	d3_node_cap();
	d4_oom();
	d5_floors();
	d6_buckets();
	d7_throttle();
	d9_missing_reason_labels();
	return done_testing();
}
