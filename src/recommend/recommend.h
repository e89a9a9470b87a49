/*
 * recommend.h — resource recommendations for one model from the metrics of
 * its finished instances (issue 7, DESIGN.md §6).
 *
 * Runs in: modelhub-fcgi workers (GET /api/recommendations, apply) and the
 * janitor (nightly persistence). Pure: no I/O, no allocation beyond what the
 * caller passes in; deterministic. Called by: fcgi/api_recommend.c and
 * hubd/janitor.c, which load the input with db/db_recommend.h, compute here,
 * render with recommend/rec_json.h and store with db/db_recommend.h.
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

struct band;                             /* recommend/bands.h */

enum rec_resource { REC_CPU_REQUEST = 0, REC_CPU_LIMIT, REC_MEM_REQUEST, REC_MEM_LIMIT, REC_RES_MAX };

#define REC_DEFAULT_LIMIT 100            /* newest instances a recommendation uses */
#define REC_MAX_LIMIT 1000

/* Usage aggregates of one resource over the samples of one instance. A
 * value the sampler never measured arrives as 0 (see db_recommend_load). */
struct rec_usage {
	double min, max, avg;
};

/* One finished instance: the engine's whole input. */
struct rec_instance {
	int had[REC_RES_MAX];    /* resources it ran with (enum rec_resource
				  * order; <= 0 = not set, e.g. no memory limit) */
	struct rec_usage cpu_m;  /* CPU, millicores */
	struct rec_usage mem_mib;/* memory, MiB */
	int samples;             /* samples behind the aggregates */
	int oom_killed;          /* it was killed by the OOM killer */
	int input_count;         /* inputs it served (0 unknown) */
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

/* One recommendation as shown (rec_json.h) and stored (db_recommend.h):
 * what it was computed against and over (filled by db_recommend_load), the
 * result and its input-size buckets (rec_report_compute). model_id, from
 * and to are borrowed from the caller. */
struct rec_report {
	const char *model_id;
	int model_version;       /* model.version the result was computed against */
	int current[REC_RES_MAX];/* the model's resources then, enum rec_resource order */
	char computed_at[40];    /* ISO 8601 UTC */
	const char *from, *to;   /* window on persisted_at; NULL = open */
	int limit;               /* newest instances considered */
	struct rec_result result;
	struct rec_bucket buckets[REC_BUCKETS];
};

void rec_config_default(struct rec_config *cfg);
/* Defaults overridden by recommend.* from the configuration; node caps
 * default to this machine (rec_config.c). */
void rec_config_read(struct rec_config *cfg);
/* current[] in enum rec_resource order: the model's present settings. */
void rec_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
		 const int current[REC_RES_MAX], struct rec_result *out);
/* Same per input-size bucket (1-10, 11-100, 101-1000, 1001+). */
void rec_compute_buckets(const struct rec_config *cfg, const struct rec_instance *in, int n,
			 const int current[REC_RES_MAX], struct rec_bucket out[REC_BUCKETS]);
/* rec_compute and rec_compute_buckets against rep->current into
 * rep->result and rep->buckets. */
void rec_report_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
			struct rec_report *rep);
/* limit clamped to [1, REC_MAX_LIMIT]; <= 0 means REC_DEFAULT_LIMIT. */
int rec_limit(int limit);

const char *rec_resource_name(enum rec_resource r);  /* "cpu_request_m", ... */
const char *rec_verdict_name(enum rec_verdict v);    /* "no_data", "ok", ... */

#endif
