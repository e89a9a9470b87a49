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
#include <stdarg.h>
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
	cfg->cpu_limit_floor_m = 100;
	cfg->mem_limit_floor_mib = 128;
	cfg->oom_factor = 1.2;
	cfg->oom_min_step_mib = 100;
	cfg->oom_clear_runs = 3;
	cfg->throttle_binding_pct = 5;
	cfg->cpu_throttle_step = 1.25;
	cfg->max_cpu_m = 0;
	cfg->max_mem_mib = 0;
	cfg->min_bucket_instances = 3;
}

int rec_cap_from_nodes(struct rec_config *cfg, const struct rec_node *nodes, int n)
{
	int count = 0, cpu = 0, mem = 0;

	for (int i = 0; i < n; i++) {
		if (!nodes[i].eligible)
			continue;
		count++;
		if (nodes[i].cpu_m > cpu)
			cpu = nodes[i].cpu_m;
		if (nodes[i].mem_mib > mem)
			mem = nodes[i].mem_mib;
	}
	if (count) {
		cfg->max_cpu_m = cpu;
		cfg->max_mem_mib = mem;
	}
	return count;
}

static int is_cpu(enum rec_resource r) { return r == REC_CPU_REQUEST || r == REC_CPU_LIMIT; }
static int is_limit(enum rec_resource r) { return r == REC_CPU_LIMIT || r == REC_MEM_LIMIT; }
static double target_pct(enum rec_resource r)
{
	return band_target_percent(is_cpu(r) ? BAND_CPU : BAND_MEMORY);
}

int rec_limit(int limit)
{
	if (limit <= 0)
		return REC_DEFAULT_LIMIT;
	return limit > REC_MAX_LIMIT ? REC_MAX_LIMIT : limit;
}

/* What instance x used for resource r (NaN: not measured): a limit is
 * compared with the peak, a request with the busy-phase floor (the
 * all-time min for rows recorded without busy samples). */
static double used_of(const struct rec_instance *x, enum rec_resource r)
{
	const struct rec_usage *u = is_cpu(r) ? &x->cpu_m : &x->mem_mib;

	if (is_limit(r))
		return u->max;
	return isfinite(u->busy) ? u->busy : u->min;
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

static void raise_to(double *v, double x)
{
	if (isfinite(x) && x > *v)
		*v = x;
}

/* The OOM lower bound of one killed instance: usage reached at least
 * max(request, peak, limit) it had; bump x oom_factor, at least +step. */
static double oom_bound(const struct rec_config *cfg, const struct rec_instance *x)
{
	double base = 0, bump;

	raise_to(&base, x->had[REC_MEM_REQUEST]);
	raise_to(&base, x->had[REC_MEM_LIMIT]);
	raise_to(&base, x->mem_mib.max);
	bump = base * cfg->oom_factor;
	return bump > base + cfg->oom_min_step_mib ? bump : base + cfg->oom_min_step_mib;
}

/* The usage instance x contributes to a CPU limit. A peak at the limit
 * (>= 95 %) is censored: with the throttling counters showing the limit
 * binding the value must reach had x cpu_throttle_step (a bounded step);
 * either way the censored peak itself counts as the green target of had,
 * so it never ratchets the limit up on its own. */
static double cpu_limit_usage(const struct rec_config *cfg, const struct rec_instance *x,
			      double used, struct rec_item *it)
{
	int had = x->had[REC_CPU_LIMIT];
	int binding = had > 0 && isfinite(x->throttled_pct) &&
		      x->throttled_pct >= cfg->throttle_binding_pct;

	if (binding) {
		raise_to(&it->lower_bound, had * cfg->cpu_throttle_step);
		it->throttle_adjusted = 1;
	}
	if (had > 0 && used >= 0.95 * had)
		return had * target_pct(REC_CPU_LIMIT) / 100.0;
	return used;
}

struct scan_out {
	int oom, oom_active, oom_unlimited;
};

static void spread(struct rec_item *it, double pct)
{
	if (pct < it->percent_min)
		it->percent_min = pct;
	if (pct > it->percent_max)
		it->percent_max = pct;
	it->instances++;
}

/* Pass over the instances (newest first) for resource r: usage, lower
 * bound, spread and count into *it, OOM counts into *so. */
static void scan(const struct rec_config *cfg, const struct rec_instance *in, int n,
		 enum rec_resource r, struct rec_item *it, struct scan_out *so)
{
	int healthy_newer = 0;

	it->percent_min = INFINITY;
	it->percent_max = -INFINITY;
	for (int i = 0; i < n; i++) {
		const struct rec_instance *x = &in[i];
		double used = used_of(x, r);
		int had = x->had[r];

		if (had > 0 && isfinite(used) && used >= 0)
			spread(it, band_percent(used, had));
		if (r == REC_MEM_LIMIT && x->oom_killed) {
			raise_to(&it->lower_bound, oom_bound(cfg, x));
			so->oom++;
			so->oom_active += healthy_newer < cfg->oom_clear_runs;
			so->oom_unlimited += had <= 0;
		} else if (isfinite(used) && used >= 0) {
			raise_to(&it->usage, r == REC_CPU_LIMIT ? cpu_limit_usage(cfg, x, used, it) : used);
		}
		healthy_newer += !x->oom_killed;
	}
	if (it->instances == 0)
		it->percent_min = it->percent_max = 0;
}

/* The value that puts the usage at the middle of the green band and
 * covers the lower bound, rounded up to the step, within the floor and
 * the node cap (sets it->capped). */
static int target_value(const struct rec_config *cfg, enum rec_resource r, struct rec_item *it)
{
	double want = it->usage * 100.0 / target_pct(r);
	int step = is_cpu(r) ? cfg->cpu_step_m : cfg->mem_step_mib;
	int floor_v = is_limit(r) ? (is_cpu(r) ? cfg->cpu_limit_floor_m : cfg->mem_limit_floor_mib)
				  : (is_cpu(r) ? cfg->cpu_floor_m : cfg->mem_floor_mib);
	int cap = is_cpu(r) ? cfg->max_cpu_m : cfg->max_mem_mib;
	int v;

	if (it->lower_bound > want)
		want = it->lower_bound;
	v = round_up(want, step);
	if (v < floor_v)
		v = floor_v;
	if (cap > 0 && v > cap) {
		v = cap;
		it->capped = 1;
	}
	return v;
}

static void append(struct rec_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void append(struct rec_item *it, const char *fmt, ...)
{
	size_t l = strlen(it->reason);
	va_list ap;

	if (l >= sizeof it->reason - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(it->reason + l, sizeof it->reason - l, fmt, ap);
	va_end(ap);
}

static const char *what(enum rec_resource r, const struct rec_instance *in, int n)
{
	int busy = 0;

	if (is_limit(r))
		return "peak";
	for (int i = 0; i < n; i++)
		busy += isfinite(is_cpu(r) ? in[i].cpu_m.busy : in[i].mem_mib.busy);
	return busy ? "busy floor" : "floor (no busy samples)";
}

/* The reason text of an item whose value changes. */
static void change_reason(const struct rec_config *cfg, enum rec_resource r, const char *w,
			  const struct scan_out *so, struct rec_item *it)
{
	const char *unit = is_cpu(r) ? "m" : "Mi";

	append(it, "%s %.0f%s is %.1f%% of %d%s (%s); %d%s puts it at %.1f%%", w, it->usage, unit,
	       it->percent_used, it->current, unit, it->band->name, it->recommended, unit,
	       it->percent_reached);
	if (so->oom)
		append(it, "; %d OOM kill(s): at least %.0f%s (x%.2f, >= +%d from max(request, peak, limit))",
		       so->oom, it->lower_bound, unit, cfg->oom_factor, cfg->oom_min_step_mib);
	if (it->throttle_adjusted && it->lower_bound > 0 && r == REC_CPU_LIMIT)
		append(it, "; throttling shows the limit binding: at least %.0f%s", it->lower_bound, unit);
	if (it->capped)
		append(it, "; capped at the largest node (%d%s)", it->recommended, unit);
}

/* Nothing to compare with: no usable sample, or the model leaves r unset. */
static int no_basis(enum rec_resource r, const struct scan_out *so, struct rec_item *it)
{
	if (it->usage <= 0 && it->lower_bound <= 0) {
		snprintf(it->reason, sizeof it->reason, "no finished instance measured the %s usage",
			 is_cpu(r) ? "CPU" : "memory");
		return 1;
	}
	if (it->current > 0)
		return 0;
	snprintf(it->reason, sizeof it->reason, "not set on the model; %s %.0f%s",
		 is_limit(r) ? "peak" : "floor", it->usage, is_cpu(r) ? "m" : "Mi");
	if (so->oom_unlimited)
		append(it, "; %d OOM kill(s) without a memory limit (the node ran out): set one of at least %.0fMi",
		       so->oom_unlimited, it->lower_bound);
	return 1;
}

/* Green against the current value: keep it, unless it is above the
 * node cap (no node could hold it; the model was set by hand or the
 * nodes shrank): then the cap, saying so and what it reaches. */
static void keep_green(const struct rec_config *cfg, enum rec_resource r, const char *w,
		       struct rec_item *it)
{
	const char *unit = is_cpu(r) ? "m" : "Mi";
	int cap = is_cpu(r) ? cfg->max_cpu_m : cfg->max_mem_mib;

	it->percent_reached = it->percent_used;
	snprintf(it->reason, sizeof it->reason,
		 "%s %.0f%s is %.1f%% of the current %d%s over %d instances: within the recommended band",
		 w, it->usage, unit, it->percent_used, it->current, unit, it->instances);
	if (cap <= 0 || it->current <= cap)
		return;
	it->recommended = cap;
	it->capped = 1;
	it->percent_reached = band_percent(it->usage, cap);
	append(it, "; but %d%s is above the largest node: capped at %d%s (%.1f%%)", it->current,
	       unit, cap, unit, it->percent_reached);
}

static void compute_item(const struct rec_config *cfg, const struct rec_instance *in, int n,
			 enum rec_resource r, int current, struct rec_item *it, struct scan_out *so)
{
	enum band_kind kind = is_cpu(r) ? BAND_CPU : BAND_MEMORY;

	memset(it, 0, sizeof *it);
	it->current = current;
	it->recommended = current;
	scan(cfg, in, n, r, it, so);
	raise_to(&it->usage, it->lower_bound * target_pct(r) / 100.0);
	it->oom_adjusted = r == REC_MEM_LIMIT && so->oom > 0;
	if (no_basis(r, so, it))
		return;
	it->percent_used = band_percent(it->usage, current);
	it->band = band_of(kind, it->lower_bound > current ? 1e9 : it->percent_used);
	if (it->band->id == BAND_RECOMMENDED) {
		keep_green(cfg, r, what(r, in, n), it);
		return;
	}
	it->recommended = target_value(cfg, r, it);
	it->percent_reached = band_percent(it->usage, it->recommended);
	change_reason(cfg, r, what(r, in, n), so, it);
}

static enum rec_verdict verdict_of(const struct rec_result *out, const struct scan_out *so)
{
	int critical = so->oom_unlimited > 0, changed = 0;

	for (int r = 0; r < REC_RES_MAX; r++) {
		const struct rec_item *it = &out->item[r];
		int raises = it->recommended > it->current;

		/* critical only when the action raises the value it is about */
		if (raises && it->band && it->band->id == BAND_CRITICAL)
			critical = 1;
		if (raises && r == REC_MEM_LIMIT && so->oom_active)
			critical = 1;
		if (it->recommended != it->current)
			changed = 1;
	}
	if (critical)
		return REC_CRITICAL;
	return changed ? REC_ADJUST : REC_OK;
}

void rec_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
		 const int current[REC_RES_MAX], struct rec_result *out)
{
	struct scan_out so = {0};

	memset(out, 0, sizeof *out);
	out->instances = n;
	for (int r = 0; r < REC_RES_MAX; r++) {
		struct scan_out s = {0};
		compute_item(cfg, in, n, (enum rec_resource)r, current[r], &out->item[r], &s);
		if (r == REC_MEM_LIMIT)
			so = s;
	}
	out->oom_instances = so.oom;
	out->oom_active = so.oom_active;
	out->oom_unlimited = so.oom_unlimited;
	/* A request above its limit is invalid in Kubernetes: clamp. */
	for (int r = REC_CPU_REQUEST; r <= REC_MEM_REQUEST; r += 2) {
		struct rec_item *req = &out->item[r], *lim = &out->item[r + 1];
		if (lim->recommended > 0 && req->recommended > lim->recommended) {
			req->recommended = lim->recommended;
			req->percent_reached = band_percent(req->usage, req->recommended);
			append(req, "; clamped to the limit");
		}
	}
	out->verdict = n == 0 ? REC_NO_DATA : verdict_of(out, &so);
}

static int bucket_key(const struct rec_instance *x, enum rec_bucket_key key)
{
	return key == REC_BY_CALL ? x->call_inputs : x->request_inputs;
}

static const int bucket_lo[REC_BUCKETS] = {1, 11, 101, 1001};
static const int bucket_hi[REC_BUCKETS] = {10, 100, 1000, 0};

static int bucket_of(int inputs)
{
	int b = 0;

	while (b < REC_BUCKETS - 1 && inputs > bucket_hi[b])
		b++;
	return b;
}

void rec_compute_buckets(const struct rec_config *cfg, const struct rec_instance *in, int n,
			 const int current[REC_RES_MAX], enum rec_bucket_key key,
			 struct rec_bucket out[REC_BUCKETS])
{
	struct rec_instance sub[256];

	for (int b = 0; b < REC_BUCKETS; b++) {
		int m = 0, total = 0;

		for (int i = 0; i < n; i++) {
			int c = bucket_key(&in[i], key);
			if (c < bucket_lo[b] || (bucket_hi[b] && c > bucket_hi[b]))
				continue;
			total++;
			/* newest first: the first 256 of a bucket are enough */
			if (m < (int)(sizeof sub / sizeof sub[0]))
				sub[m++] = in[i];
		}
		out[b].lo = bucket_lo[b];
		out[b].hi = bucket_hi[b];
		out[b].enough = total >= cfg->min_bucket_instances;
		rec_compute(cfg, sub, m, current, &out[b].result);
	}
}

void rec_report_compute(const struct rec_config *cfg, const struct rec_instance *in, int n,
			struct rec_report *rep)
{
	rec_compute(cfg, in, n, rep->current, &rep->result);
	rec_compute_buckets(cfg, in, n, rep->current, REC_BY_REQUEST, rep->buckets);
	rec_compute_buckets(cfg, in, n, rep->current, REC_BY_CALL, rep->call_buckets);
}

static int too_big(const struct rec_config *cfg, const struct rec_bucket *b)
{
	const struct rec_item *m = &b->result.item[REC_MEM_LIMIT];

	return m->capped || (cfg->max_mem_mib > 0 && m->recommended > cfg->max_mem_mib);
}

int rec_size_for_request(const struct rec_config *cfg, const struct rec_report *rep,
			 int inputs, int chunk, int res[REC_RES_MAX], int *chunk_out)
{
	const struct rec_bucket *rb = &rep->buckets[bucket_of(inputs > 0 ? inputs : 1)];
	const struct rec_bucket *cb;
	int c = chunk > 0 && chunk < inputs ? chunk : (inputs > 0 ? inputs : 1);
	int used = 0;

	for (int r = 0; r < REC_RES_MAX; r++)
		res[r] = rep->current[r];
	if (rb->enough && rb->result.instances > 0) {
		for (int r = 0; r < REC_RES_MAX; r++)
			res[r] = rb->result.item[r].recommended;
		used = 1;
	}
	/* a chunk whose calls would not fit the largest node: the largest
	 * chunk of the next smaller bucket, while there is one */
	cb = &rep->call_buckets[bucket_of(c)];
	while (c > 1 && cb->enough && too_big(cfg, cb)) {
		int b = bucket_of(c), lower = b - 1;
		if (b == 0)
			break;
		while (lower > 0 && !rep->call_buckets[lower].enough)
			lower--;          /* the next smaller chunk size with data */
		c = bucket_hi[lower];
		cb = &rep->call_buckets[lower];
	}
	if (cb->enough && cb->result.instances > 0) {
		int m = cb->result.item[REC_MEM_LIMIT].recommended;
		if (m > res[REC_MEM_LIMIT] || !used)
			res[REC_MEM_LIMIT] = m;
		used = 1;
	}
	*chunk_out = c;
	return used;
}
