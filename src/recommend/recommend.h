/*
 * recommend.h — resource recommendations for one model from the metrics of
 * its finished instances (issue 7, DESIGN.md §6).
 *
 * Runs in: modelhub-fcgi workers (GET /api/recommendations, apply) and the
 * janitor (nightly persistence). Pure: no I/O, no allocation beyond what the
 * caller passes in; deterministic. Called by: db/db_recommend.c.
 *
 * DESIGN
 * Each instance may have run with different resources, so every comparison
 * is made per instance against what that instance had (normalised), then
 * combined conservatively:
 *   limit   <- peak usage (max) of each instance, worst instance wins;
 *   request <- floor usage (min) of each instance, the highest floor wins,
 *              because a request must cover what the model always needs.
 * The recommended value puts that usage at the middle of the green band
 * (CPU 75 %, memory 72.5 %), rounded UP to the configured step, never below
 * the floors nor above the largest node, and request <= limit. A resource
 * whose observed usage is already green keeps its current value (no churn).
 * OOM-killed instances hide their true peak: memory limit = observed max
 * times oom_factor (and never below the limit it died with times the factor),
 * and the reason says so.
 */
#ifndef MH_RECOMMEND_H
#define MH_RECOMMEND_H

#include "recommend/bands.h"

/* One finished instance, as persisted in instance_metrics. */
struct rec_instance {
	double cpu_min_m, cpu_max_m, cpu_avg_m;
	double mem_min_mib, mem_max_mib, mem_avg_mib;
	int cpu_request_m, cpu_limit_m;         /* what it ran with */
	int memory_request_mib, memory_limit_mib;
	int oom_killed;
	int input_count;                        /* inputs it served (0 unknown) */
};

struct rec_config {
	int cpu_step_m;          /* rounding step, default 10 */
	int mem_step_mib;        /* default 16 */
	int cpu_floor_m;         /* default 10 */
	int mem_floor_mib;       /* default 64 */
	double oom_factor;       /* default 1.5 */
	int max_cpu_m;           /* largest node allocatable; 0 = no cap */
	int max_mem_mib;
	int min_bucket_instances;/* per input-size bucket, default 3 */
};

enum rec_resource { REC_CPU_REQUEST = 0, REC_CPU_LIMIT, REC_MEM_REQUEST, REC_MEM_LIMIT, REC_RES_MAX };

struct rec_item {
	int current;             /* the model's value now */
	int recommended;
	const struct band *band; /* band of the observed usage (worst instance) */
	double percent_used;     /* worst instance, percent of what it had */
	double percent_min;      /* spread: lowest per-instance percent */
	double percent_max;      /* spread: highest per-instance percent */
	double usage;            /* the usage the recommendation is based on */
	int instances;           /* instances that had this resource set */
	int capped;              /* hit the node maximum */
	int oom_adjusted;        /* raised because of OOM kills */
	char reason[160];
};

enum rec_verdict { REC_NO_DATA = 0, REC_OK, REC_ADJUST, REC_CRITICAL };

struct rec_result {
	int instances;           /* instances used */
	int oom_instances;
	struct rec_item item[REC_RES_MAX];
	enum rec_verdict verdict;
};

/* Input-size buckets reported beside the overall result. */
#define REC_BUCKETS 4
struct rec_bucket {
	int lo, hi;              /* inputs, inclusive; hi 0 = open */
	int enough;              /* 1 when >= min_bucket_instances */
	struct rec_result result;
};

void rec_config_default(struct rec_config *cfg);
/* current[] in enum rec_resource order: the model's present settings. */
void rec_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
		 const int current[REC_RES_MAX], struct rec_result *out);
/* Same per input-size bucket (1-10, 11-100, 101-1000, 1001+). */
void rec_compute_buckets(const struct rec_config *cfg, const struct rec_instance *in, int n,
			 const int current[REC_RES_MAX], struct rec_bucket out[REC_BUCKETS]);

const char *rec_resource_name(enum rec_resource r);  /* "cpu_request_m", ... */
const char *rec_verdict_name(enum rec_verdict v);    /* "no_data", "ok", ... */

#endif
