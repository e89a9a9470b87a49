/*
 * view.c — JSON views of metrics slots (see view.h).
 *
 * Runs in: scraper, monitor, API workers. Called by: see view.h.
 * Owns: nothing beyond the objects it returns.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/json.h"
#include "recommend/bands.h"
#include "recommend/recommend.h"
#include "metrics/view.h"

double view_round1(double v)
{
	if (!isfinite(v))
		return 0;
	return round(v * 10.0) / 10.0;
}

json_object *view_num(double v)
{
	char txt[48];

	v = view_round1(v);
	snprintf(txt, sizeof(txt), "%.1f", v);
	/* serialised as written: 99.6, not 99.599999999999994 */
	return json_object_new_double_s(v, txt);
}

static json_object *num(double v)
{
	return view_num(v);
}

static json_object *agg_json(const struct shm_agg *a, const char *unit)
{
	json_object *o = json_object_new_object(), *w = json_object_new_object();

	json_object_object_add(o, "unit", json_object_new_string(unit));
	json_object_object_add(o, "count", json_object_new_int64((int64_t)a->count));
	json_object_object_add(o, "min", a->count ? num(a->min) : NULL);
	json_object_object_add(o, "max", a->count ? num(a->max) : NULL);
	json_object_object_add(o, "avg", a->count ? num(shm_agg_avg(a)) : NULL);
	json_object_object_add(w, "count", json_object_new_int64(a->w_count));
	json_object_object_add(w, "min", a->w_count ? num(a->w_min) : NULL);
	json_object_object_add(w, "max", a->w_count ? num(a->w_max) : NULL);
	json_object_object_add(w, "avg", a->w_count ? num(a->w_avg) : NULL);
	json_object_object_add(o, "last_60s", w);
	return o;
}

static json_object *num_or_null(double v)
{
	return isfinite(v) ? num(v) : NULL;
}

/* The busy phase: its sample count and low percentile per resource. */
static json_object *busy_json(const struct shm_slot_data *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "count", json_object_new_int64((int64_t)d->busy.count));
	json_object_object_add(o, "percentile", num(SHM_BUSY_PCT));
	json_object_object_add(o, "cpu_m", num_or_null(shm_busy_percentile(&d->busy, 1, SHM_BUSY_PCT)));
	json_object_object_add(o, "memory_mib",
			       num_or_null(shm_busy_percentile(&d->busy, 0, SHM_BUSY_PCT)));
	return o;
}

json_object *view_aggregates(const struct shm_slot_data *d)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "sample_count", json_object_new_int64((int64_t)d->cpu.count));
	json_object_object_add(o, "last_sample_at_ms",
			       d->last_sample_ms ? json_object_new_int64(d->last_sample_ms) : NULL);
	json_object_object_add(o, "cpu", agg_json(&d->cpu, "millicores"));
	json_object_object_add(o, "memory", agg_json(&d->mem, "MiB"));
	json_object_object_add(o, "busy", busy_json(d));
	json_object_object_add(o, "throttled_pct", num_or_null(shm_throttled_pct(d)));
	return o;
}

static json_object *int_or_null(int v)
{
	return v > 0 ? json_object_new_int(v) : NULL;
}

json_object *view_resources(int cpu_req_m, int cpu_lim_m, int mem_req_mib, int mem_lim_mib)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "cpu_request_m", int_or_null(cpu_req_m));
	json_object_object_add(o, "cpu_limit_m", int_or_null(cpu_lim_m));
	json_object_object_add(o, "memory_request_mib", int_or_null(mem_req_mib));
	json_object_object_add(o, "memory_limit_mib", int_or_null(mem_lim_mib));
	return o;
}

json_object *view_gauge(const char *resource, const char *stat, const char *against, double value,
			double of)
{
	json_object *o = json_object_new_object();
	int is_cpu = strcmp(resource, "cpu") == 0;
	const char *unit = is_cpu ? "millicores" : "MiB";
	double pct = value >= 0 && of > 0 ? band_percent(value, of) : -1;
	const struct band *b = pct >= 0 ? band_of(is_cpu ? BAND_CPU : BAND_MEMORY, pct) : NULL;
	char text[96];

	json_object_object_add(o, "resource", json_object_new_string(resource));
	json_object_object_add(o, "stat", json_object_new_string(stat));
	json_object_object_add(o, "against", json_object_new_string(against));
	json_object_object_add(o, "unit", json_object_new_string(unit));
	json_object_object_add(o, "value", value >= 0 ? num(value) : NULL);
	json_object_object_add(o, "of", of > 0 ? num(of) : NULL);
	json_object_object_add(o, "percent", pct >= 0 ? num(pct) : NULL);
	json_object_object_add(o, "band", b ? json_object_new_string(b->name) : NULL);
	json_object_object_add(o, "colour", b ? json_object_new_string(b->colour) : NULL);
	if (value >= 0 && of > 0)
		snprintf(text, sizeof(text), "%.0f / %.0f %s", value, of, is_cpu ? "m" : "MiB");
	else if (value >= 0)
		snprintf(text, sizeof(text), "%.0f / - %s", value, is_cpu ? "m" : "MiB");
	else
		snprintf(text, sizeof(text), "- / %s", of > 0 ? "?" : "-");
	json_object_object_add(o, "text", json_object_new_string(text));
	return o;
}

/* aggregates.<res>.<stat> as a number, -1 when missing/null. */
static double agg_get(json_object *aggs, const char *res, const char *stat)
{
	return jx_num(jx_get(aggs, res, NULL), stat, -1);
}

json_object *view_gauges(json_object *aggs, int cpu_req_m, int cpu_lim_m, int mem_req_mib,
			 int mem_lim_mib)
{
	json_object *a = json_object_new_array();

	json_object_array_add(a, view_gauge("cpu", "max", "limit", agg_get(aggs, "cpu", "max"),
					    cpu_lim_m));
	json_object_array_add(a, view_gauge("cpu", "min", "request", agg_get(aggs, "cpu", "min"),
					    cpu_req_m));
	json_object_array_add(a, view_gauge("cpu", "avg", "limit", agg_get(aggs, "cpu", "avg"),
					    cpu_lim_m));
	json_object_array_add(a, view_gauge("memory", "max", "limit",
					    agg_get(aggs, "memory", "max"), mem_lim_mib));
	json_object_array_add(a, view_gauge("memory", "min", "request",
					    agg_get(aggs, "memory", "min"), mem_req_mib));
	json_object_array_add(a, view_gauge("memory", "avg", "limit",
					    agg_get(aggs, "memory", "avg"), mem_lim_mib));
	return a;
}

json_object *view_samples(const struct shm_sample *s, int n)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < n; i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "t_ms", json_object_new_int64(s[i].t_ms));
		json_object_object_add(o, "cpu_m", num(s[i].cpu_m));
		json_object_object_add(o, "memory_mib", num(s[i].mem_mib));
		json_object_array_add(a, o);
	}
	return a;
}

static void agg_parse(json_object *o, struct shm_agg *a)
{
	json_object *w = NULL;
	double n = jx_num(o, "count", 0);

	memset(a, 0, sizeof(*a));
	if (n <= 0)
		return;
	a->count = (uint64_t)n;
	a->min = jx_num(o, "min", 0);
	a->max = jx_num(o, "max", 0);
	a->sum = jx_num(o, "avg", 0) * n;
	if (o && json_object_object_get_ex(o, "last_60s", &w) && w) {
		a->w_count = (uint32_t)jx_num(w, "count", 0);
		a->w_min = jx_num(w, "min", 0);
		a->w_max = jx_num(w, "max", 0);
		a->w_avg = jx_num(w, "avg", 0);
	}
}

int view_aggregates_parse(json_object *aggs, struct shm_slot_data *d)
{
	json_object *c = NULL, *m = NULL;

	if (!aggs || !json_object_is_type(aggs, json_type_object))
		return -1;
	json_object_object_get_ex(aggs, "cpu", &c);
	json_object_object_get_ex(aggs, "memory", &m);
	agg_parse(c, &d->cpu);
	agg_parse(m, &d->mem);
	d->last_sample_ms = (int64_t)jx_num(aggs, "last_sample_at_ms", 0);
	return 0;
}

void view_busy_parse(json_object *aggs, struct view_busy *out)
{
	json_object *b = jx_get(aggs, "busy", NULL);

	out->count = b ? (int)jx_num(b, "count", 0) : 0;
	out->cpu_m = jx_num(b, "cpu_m", -1);
	out->mem_mib = jx_num(b, "memory_mib", -1);
	if (out->count <= 0 || out->cpu_m < 0)
		out->cpu_m = NAN;
	if (out->count <= 0 || out->mem_mib < 0)
		out->mem_mib = NAN;
	out->throttled_pct = jx_num(aggs, "throttled_pct", -1);
	if (out->throttled_pct < 0)
		out->throttled_pct = NAN;
}

void view_busy_of(const struct shm_slot_data *d, struct view_busy *out)
{
	out->count = (int)d->busy.count;
	out->cpu_m = shm_busy_percentile(&d->busy, 1, SHM_BUSY_PCT);
	out->mem_mib = shm_busy_percentile(&d->busy, 0, SHM_BUSY_PCT);
	out->throttled_pct = shm_throttled_pct(d);
}

int view_node_caps(struct metrics_seg *seg, struct rec_node *out, int max)
{
	int n = 0, slots = seg ? shm_nslots(seg, SHM_NODE) : 0;
	struct shm_snap sn;

	for (int i = 0; i < slots && n < max; i++) {
		if (shm_slot_snapshot(seg, SHM_NODE, i, &sn, NULL, 0, 0) != 1 ||
		    !(sn.d.cpu_allocatable_m > 0) || !(sn.d.mem_allocatable_mib > 0))
			continue;
		out[n].cpu_m = (int)sn.d.cpu_allocatable_m;
		out[n].mem_mib = (int)sn.d.mem_allocatable_mib;
		out[n].eligible = 1;
		n++;
	}
	return n;
}
