/*
 * recommend.c — implementation of recommend.h (pure computation).
 *
 * Runs in: modelhub-fcgi workers and the janitor. Called by:
 * fcgi/api_recommend.c, hubd/janitor.c and the unit tests t/060-recommend.c.
 * Owns: nothing; results are written into caller-provided structs.
 */
#include "recommend/recommend.h"
#include "recommend/bands.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const res_names[REC_RES_MAX] = {
	"cpu_request_m", "cpu_limit_m", "memory_request_mib", "memory_limit_mib"};
static const char *const verdict_names[] = {"no_data", "ok", "adjust", "critical"};

const char *rec_resource_name(enum rec_resource r) { return res_names[r]; }
const char *rec_verdict_name(enum rec_verdict v) { return verdict_names[v]; }

void rec_config_default(struct rec_config *cfg)
{
	cfg->cpu_step_m = 10;
	cfg->mem_step_mib = 16;
	cfg->cpu_floor_m = 10;
	cfg->mem_floor_mib = 64;
	cfg->oom_factor = 1.5;
	cfg->max_cpu_m = 0;
	cfg->max_mem_mib = 0;
	cfg->min_bucket_instances = 3;
}

static int is_cpu(enum rec_resource r) { return r == REC_CPU_REQUEST || r == REC_CPU_LIMIT; }
static int is_limit(enum rec_resource r) { return r == REC_CPU_LIMIT || r == REC_MEM_LIMIT; }

int rec_limit(int limit)
{
	if (limit <= 0)
		return REC_DEFAULT_LIMIT;
	return limit > REC_MAX_LIMIT ? REC_MAX_LIMIT : limit;
}

/* What instance x used and had for resource r: a request is compared with
 * the floor (min) of usage, a limit with the peak (max). */
static void pick(const struct rec_instance *x, enum rec_resource r, double *used, int *had)
{
	const struct rec_usage *u = is_cpu(r) ? &x->cpu_m : &x->mem_mib;

	*used = is_limit(r) ? u->max : u->min;
	*had = x->had[r];
}

/* Round up to a multiple of step (step <= 0: whole units). */
static int round_up(double v, int step)
{
	if (step <= 0)
		step = 1;
	double q = ceil(v / step - 1e-9);
	if (q < 1)
		q = 1;
	return (int)q * step;
}

/* Pass over the instances for resource r: usage (worst instance), spread
 * and count into *it. Returns the number of OOM-killed instances counted. */
static int scan(const struct rec_config *cfg, const struct rec_instance *in, int n,
		enum rec_resource r, struct rec_item *it)
{
	int oom = 0;

	it->percent_min = INFINITY;
	it->percent_max = -INFINITY;
	for (int i = 0; i < n; i++) {
		double used, pct;
		int had;

		pick(&in[i], r, &used, &had);
		if (had <= 0 || !isfinite(used) || used < 0)
			continue;
		pct = band_percent(used, had);
		if (r == REC_MEM_LIMIT && in[i].oom_killed) {
			/* The kill hid the real peak: it needed more than it had. */
			double need = (used > had ? used : had) * cfg->oom_factor;
			if (need > it->usage)
				it->usage = need;
			if (pct < 100)
				pct = 100;
			oom++;
		} else if (used > it->usage) {
			it->usage = used;
		}
		if (pct < it->percent_min)
			it->percent_min = pct;
		if (pct > it->percent_max)
			it->percent_max = pct;
		it->instances++;
	}
	return oom;
}

/* The value that puts it->usage at the middle of the green band, rounded
 * up to the step, within the floor and the node cap (sets it->capped). */
static int target_value(const struct rec_config *cfg, enum rec_resource r, struct rec_item *it)
{
	double want = it->usage * 100.0 / band_target_percent(is_cpu(r) ? BAND_CPU : BAND_MEMORY);
	int floor_v = is_cpu(r) ? cfg->cpu_floor_m : cfg->mem_floor_mib;
	int cap = is_cpu(r) ? cfg->max_cpu_m : cfg->max_mem_mib;
	int v = round_up(want, is_cpu(r) ? cfg->cpu_step_m : cfg->mem_step_mib);

	if (v < floor_v)
		v = floor_v;
	if (cap > 0 && v > cap) {
		v = cap;
		it->capped = 1;
	}
	return v;
}

/* The reason text of an item whose value changes (oom: OOM kills seen). */
static void change_reason(const struct rec_config *cfg, enum rec_resource r, int oom,
			  struct rec_item *it)
{
	const char *unit = is_cpu(r) ? "m" : "Mi";
	const char *capped = it->capped ? " (capped at the largest node)" : "";

	if (oom)
		snprintf(it->reason, sizeof it->reason,
			 "%d of %d instances were OOM-killed: true peak unknown, observed max x%.2f = %.0f%s%s",
			 oom, it->instances, cfg->oom_factor, it->usage, unit, capped);
	else
		snprintf(it->reason, sizeof it->reason,
			 "%s usage %.0f%s is %.1f%% at worst (%s) over %d instances; %d%s puts it at %.1f%%%s",
			 is_limit(r) ? "peak" : "floor", it->usage, unit, it->percent_used,
			 it->band->name, it->instances, it->recommended, unit,
			 band_target_percent(is_cpu(r) ? BAND_CPU : BAND_MEMORY), capped);
}

static void compute_item(const struct rec_config *cfg, const struct rec_instance *in, int n,
			 enum rec_resource r, int current, struct rec_item *it, int *oom_seen)
{
	enum band_kind kind = is_cpu(r) ? BAND_CPU : BAND_MEMORY;
	int oom;

	memset(it, 0, sizeof *it);
	it->current = current;
	it->recommended = current;
	oom = scan(cfg, in, n, r, it);
	if (it->instances == 0) {
		it->percent_min = it->percent_max = 0;
		snprintf(it->reason, sizeof it->reason, "no finished instance had a %s set",
			 is_limit(r) ? "limit" : "request");
		return;
	}
	it->percent_used = it->percent_max;
	it->band = band_of(kind, it->percent_used);
	if (oom) {
		it->band = band_of(kind, 1e9); /* critical: it hit the limit */
		it->oom_adjusted = 1;
		*oom_seen += oom;
	}
	if (it->band->id == BAND_RECOMMENDED) {
		snprintf(it->reason, sizeof it->reason,
			 "%s usage %.0f%s is %.1f%% at worst over %d instances: within the recommended band",
			 is_limit(r) ? "peak" : "floor", it->usage, is_cpu(r) ? "m" : "Mi",
			 it->percent_used, it->instances);
		return;
	}
	it->recommended = target_value(cfg, r, it);
	change_reason(cfg, r, oom, it);
}

void rec_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
		 const int current[REC_RES_MAX], struct rec_result *out)
{
	int critical = 0, changed = 0;

	memset(out, 0, sizeof *out);
	out->instances = n;
	for (int r = 0; r < REC_RES_MAX; r++)
		compute_item(cfg, in, n, (enum rec_resource)r, current[r], &out->item[r],
			     &out->oom_instances);
	/* A request above its limit is invalid in Kubernetes: clamp. */
	for (int r = REC_CPU_REQUEST; r <= REC_MEM_REQUEST; r += 2) {
		struct rec_item *req = &out->item[r], *lim = &out->item[r + 1];
		if (lim->recommended > 0 && req->recommended > lim->recommended) {
			req->recommended = lim->recommended;
			size_t l = strlen(req->reason);
			snprintf(req->reason + l, sizeof req->reason - l, "; clamped to the limit");
		}
	}
	if (n == 0) {
		out->verdict = REC_NO_DATA;
		return;
	}
	for (int r = 0; r < REC_RES_MAX; r++) {
		const struct rec_item *it = &out->item[r];
		if (it->band && it->band->id == BAND_CRITICAL)
			critical = 1;
		if (it->recommended != it->current)
			changed = 1;
	}
	if (out->oom_instances || critical)
		out->verdict = REC_CRITICAL;
	else
		out->verdict = changed ? REC_ADJUST : REC_OK;
}

void rec_compute_buckets(const struct rec_config *cfg, const struct rec_instance *in, int n,
			 const int current[REC_RES_MAX], struct rec_bucket out[REC_BUCKETS])
{
	static const int lo[REC_BUCKETS] = {1, 11, 101, 1001};
	static const int hi[REC_BUCKETS] = {10, 100, 1000, 0};
	struct rec_instance sub[256];

	for (int b = 0; b < REC_BUCKETS; b++) {
		int m = 0, total = 0;

		for (int i = 0; i < n; i++) {
			int c = in[i].input_count;
			if (c < lo[b] || (hi[b] && c > hi[b]))
				continue;
			total++;
			/* newest first: the first 256 of a bucket are enough */
			if (m < (int)(sizeof sub / sizeof sub[0]))
				sub[m++] = in[i];
		}
		out[b].lo = lo[b];
		out[b].hi = hi[b];
		out[b].enough = total >= cfg->min_bucket_instances;
		rec_compute(cfg, sub, m, current, &out[b].result);
	}
}

void rec_report_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
			struct rec_report *rep)
{
	rec_compute(cfg, in, n, rep->current, &rep->result);
	rec_compute_buckets(cfg, in, n, rep->current, rep->buckets);
}
