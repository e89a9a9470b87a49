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
 * DESIGN (issue 16; docs/recommendations.md compares it with VPA and KRR)
 * Each instance may have run with different resources; usage is absolute
 * (millicores, MiB) and combined conservatively over the instances:
 *   limit   <- peak usage (max over the samples: the memory a model loaded
 *              is held after READY; start-up CPU is not sampled on the
 *              local backend), worst instance wins;
 *   request <- busy-phase floor: a low percentile of the samples taken while
 *              the instance served a call (idle time between calls would drag
 *              every request to the floor); rows without busy samples fall
 *              back to the all-time min. The highest instance wins.
 * The band is judged against the value that would be applied (the model's
 * current value), not the one past instances had: a value is kept only if
 * the usage is green against it. Otherwise the recommendation puts the
 * usage at the middle of the green band (CPU 75 %, memory 72.5 %), rounded
 * up to the step, within the floors (separate for requests and limits) and
 * the node cap, request <= limit. A kept (green) value above the node
 * cap becomes the cap too (capped, with the percentage it reaches).
 * Censored data: an OOM kill or a binding CPU throttle means usage >= what
 * the instance had is only a lower bound. OOM: the memory limit becomes at
 * least max(request, peak) x oom_factor (1.2) and >= +oom_min_step_mib
 * (100), from what that instance had (never compounding); the critical
 * state clears after oom_clear_runs healthy runs newer than the kill.
 * CPU limits rise above a peak that sits at the limit only when the
 * throttling counters show the limit binding, by cpu_throttle_step (x1.25)
 * of what the instance had; without that evidence a peak at the limit
 * means the limit was enough (no ratchet).
 * Missing data is NaN, never 0: an instance without CPU samples still
 * counts for memory.
 */
#ifndef MH_RECOMMEND_H
#define MH_RECOMMEND_H

struct band;                             /* recommend/bands.h */

enum rec_resource { REC_CPU_REQUEST = 0, REC_CPU_LIMIT, REC_MEM_REQUEST, REC_MEM_LIMIT, REC_RES_MAX };

#define REC_DEFAULT_LIMIT 100            /* newest instances a recommendation uses */
#define REC_MAX_LIMIT 1000

/* Usage aggregates of one resource over the samples of one instance. A
 * value the sampler never measured is NaN (db_recommend_load maps NULL to
 * NaN); busy is the low percentile of the busy-phase samples (NaN: none). */
struct rec_usage {
	double min, max, avg, busy;
};

/* One finished instance: the engine's whole input. */
struct rec_instance {
	int had[REC_RES_MAX];    /* resources it ran with (enum rec_resource
				  * order; <= 0 = not set, e.g. no memory limit) */
	struct rec_usage cpu_m;  /* CPU, millicores */
	struct rec_usage mem_mib;/* memory, MiB */
	int samples;             /* samples behind the aggregates */
	int oom_killed;          /* it was killed by the OOM killer */
	double throttled_pct;    /* CFS periods throttled, percent (NaN unknown) */
	int input_count;         /* inputs it served in total (0 unknown) */
	int call_inputs;         /* largest chunk sent in one model call (0 unknown) */
	int request_inputs;      /* largest request it served, inputs (0 unknown) */
};

struct rec_config {
	int cpu_step_m;          /* rounding step, default 10 */
	int mem_step_mib;        /* default 16 */
	int cpu_floor_m;         /* request floors: default 10 */
	int mem_floor_mib;       /* default 64 */
	int cpu_limit_floor_m;   /* limit floors: default 100 */
	int mem_limit_floor_mib; /* default 128 */
	double oom_factor;       /* OOM bump, default 1.2 ... */
	int oom_min_step_mib;    /* ... and at least this, default 100 */
	int oom_clear_runs;      /* healthy runs after a kill that clear it, default 3 */
	double throttle_binding_pct; /* throttled periods that make a limit binding, 5 */
	double cpu_throttle_step;/* CPU limit bump when binding, default 1.25 */
	int max_cpu_m;           /* largest node allocatable; 0 = no cap */
	int max_mem_mib;
	int min_bucket_instances;/* per input-size bucket, default 3 */
};

struct rec_item {
	int current;             /* the model's value now */
	int recommended;
	const struct band *band; /* band of the usage against current */
	double percent_used;     /* usage against current (the value kept) */
	double percent_min;      /* spread: lowest per-instance percent of what it had */
	double percent_max;      /* spread: highest per-instance percent */
	double percent_reached;  /* usage against recommended (after rounding, floors, cap) */
	double usage;            /* the usage the recommendation is based on */
	double lower_bound;      /* censored runs: the value must be at least this */
	int instances;           /* instances that had this resource set */
	int capped;              /* hit the node maximum */
	int oom_adjusted;        /* raised because of OOM kills */
	int throttle_adjusted;   /* raised because throttling showed the limit binding */
	char reason[200];
};

enum rec_verdict { REC_NO_DATA = 0, REC_OK, REC_ADJUST, REC_CRITICAL };

struct rec_result {
	int instances;           /* instances used */
	int oom_instances;
	int oom_active;          /* kills not yet followed by oom_clear_runs healthy runs */
	int oom_unlimited;       /* kills of instances without a memory limit */
	struct rec_item item[REC_RES_MAX];
	enum rec_verdict verdict;
};

/* Input-size buckets reported beside the overall result: by the largest
 * request an instance served (rec_report.buckets) and by the largest chunk
 * sent in one model call (rec_report.call_buckets). */
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
	struct rec_bucket buckets[REC_BUCKETS];      /* by request_inputs */
	struct rec_bucket call_buckets[REC_BUCKETS]; /* by call_inputs */
};

enum rec_bucket_key { REC_BY_REQUEST = 0, REC_BY_CALL };

/* "Size instances from the request": the resources (enum rec_resource
 * order) and chunk for a new instance about to serve a request of
 * `inputs` inputs, from rep's buckets. Starts from the model's current
 * values; with enough data in the request's bucket (by_input_size) takes
 * its recommendation, lower or higher than current (a small request gets
 * a small instance). The chunk is min(chunk, inputs); while the call
 * bucket of that size has enough data and its memory limit does not fit
 * cfg->max_mem_mib, it becomes the largest chunk of the next smaller call
 * bucket with data; the memory limit is then at least that call bucket's.
 * Returns 1 when a bucket was used, 0 when current values stand. */
int rec_size_for_request(const struct rec_config *cfg, const struct rec_report *rep,
			 int inputs, int chunk, int res[REC_RES_MAX], int *chunk_out);

/* A node (or a node group's shape) a model could run on. */
struct rec_node {
	int cpu_m, mem_mib;      /* allocatable */
	int eligible;            /* the model can run there (selector, taints) */
};

void rec_config_default(struct rec_config *cfg);
/* Node caps = the largest allocatable CPU and memory over the eligible
 * nodes (each dimension on its own). Returns the eligible count; with none
 * the caps are left as they were (e.g. this machine, local backend). */
int rec_cap_from_nodes(struct rec_config *cfg, const struct rec_node *nodes, int n);
/* Defaults overridden by recommend.* from the configuration; node caps
 * default to this machine (rec_config.c). */
void rec_config_read(struct rec_config *cfg);
/* current[] in enum rec_resource order: the model's present settings.
 * in[] newest first (the OOM clearing counts healthy runs newer than a kill). */
void rec_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
		 const int current[REC_RES_MAX], struct rec_result *out);
/* Same per input-size bucket (1-10, 11-100, 101-1000, 1001+) keyed by
 * request_inputs or call_inputs; instances with the key unknown are left out. */
void rec_compute_buckets(const struct rec_config *cfg, const struct rec_instance *in, int n,
			 const int current[REC_RES_MAX], enum rec_bucket_key key,
			 struct rec_bucket out[REC_BUCKETS]);
/* rec_compute and rec_compute_buckets against rep->current into
 * rep->result and rep->buckets. */
void rec_report_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
			struct rec_report *rep);
/* limit clamped to [1, REC_MAX_LIMIT]; <= 0 means REC_DEFAULT_LIMIT. */
int rec_limit(int limit);

const char *rec_resource_name(enum rec_resource r);  /* "cpu_request_m", ... */
const char *rec_verdict_name(enum rec_verdict v);    /* "no_data", "ok", ... */

#endif
