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
		.samples = 10, .input_count = 5};
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
		{REC_CPU_LIMIT, 950, "very_over", 1270},  /* 1266.7 -> 1270 */
		{REC_CPU_LIMIT, 1049, "very_over", 1400}, /* 1398.7 -> 1400 */
		{REC_CPU_LIMIT, 1050, "critical", 1400},  /* 1400 */
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
	is_str(r.item[REC_CPU_LIMIT].band->name, "over", "mixed: worst instance 90%% over");
	is_dbl(r.item[REC_CPU_LIMIT].percent_min, 50, 1e-9, "spread min 50%%");
	is_dbl(r.item[REC_CPU_LIMIT].percent_max, 90, 1e-9, "spread max 90%%");
	is_int(r.item[REC_CPU_LIMIT].recommended, 2400, "mixed: 1800/0.75 = 2400");
	is_int(r.item[REC_CPU_LIMIT].instances, 2, "two instances used");
	is_int(r.verdict, REC_ADJUST, "verdict adjust");
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

	/* OOM at 512: need 512 * 1.5 = 768 -> /0.725 = 1059.3 -> 1072 */
	x.had[REC_MEM_LIMIT] = 512;
	x.oom_killed = 1;
	rec_compute(&cfg, &x, 1, cur, &r);
	is_int(r.item[REC_MEM_LIMIT].recommended, 1072, "OOM: 512 x1.5 / 72.5%% -> 1072");
	is_str(r.item[REC_MEM_LIMIT].band->name, "critical", "OOM is critical");
	ok(r.item[REC_MEM_LIMIT].oom_adjusted, "oom_adjusted set");
	ok(strstr(r.item[REC_MEM_LIMIT].reason, "OOM") != NULL, "reason mentions OOM");
	is_int(r.verdict, REC_CRITICAL, "verdict critical");
	is_int(r.oom_instances, 1, "one OOM instance");
	/* caps: peak 1050m needs 1400m, node has 1200m */
	struct rec_config capped = cfg;
	capped.max_cpu_m = 1200;
	x = inst(50, 1050, 100, 500);
	rec_compute(&capped, &x, 1, cur, &r);
	is_int(r.item[REC_CPU_LIMIT].recommended, 1200, "capped at the largest node");
	ok(r.item[REC_CPU_LIMIT].capped, "capped flag");
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
		xs[i].input_count = i < 4 ? 5 : 500;
	}
	rec_compute_buckets(&cfg, xs, 8, cur, b);
	ok(b[0].enough && b[0].result.instances == 4, "bucket 1-10 has 4 instances");
	ok(!b[1].enough && b[1].result.instances == 0, "bucket 11-100 empty");
	ok(b[2].enough && b[2].result.instances == 4, "bucket 101-1000 has 4");
	is_int(b[0].result.item[REC_CPU_LIMIT].recommended, 270, "small inputs: 200/0.75 -> 270");
	is_int(b[2].result.item[REC_CPU_LIMIT].recommended, 1200, "large inputs: 900/0.75 = 1200");
}

/* VPA-style recommender for comparison: P90 of peaks + 15 %, OOM: max(x1.2, +100Mi). */
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
			double bump = in[i].had[REC_MEM_LIMIT] * 1.2;
			if (bump < in[i].had[REC_MEM_LIMIT] + 100)
				bump = in[i].had[REC_MEM_LIMIT] + 100;
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
	/* OOM at 512 Mi: VPA bump = max(614.4, 612) * 1.15 = 706.6; ours 1072 */
	struct rec_instance o = inst(50, 500, 100, 500);
	o.had[REC_MEM_LIMIT] = 512;
	o.oom_killed = 1;
	vpa = vpa_memory(&o, 1);
	rec_compute(&cfg, &o, 1, cur, &r);
	is_dbl(vpa, 706.56, 1e-6, "VPA OOM bump 706.56Mi");
	is_int(r.item[REC_MEM_LIMIT].recommended, 1072, "ours 1072Mi after OOM");
}

static void report_and_limit(void)
{
	struct rec_instance xs[2] = {inst(50, 900, 100, 500), inst(50, 300, 100, 500)};
	struct rec_report rep = {.model_id = "m", .current = {100, 1000, 256, 1000}};
	struct rec_result r;

	xs[1].input_count = 50;
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
	return done_testing();
}
