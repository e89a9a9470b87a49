/*
 * view.h — JSON views of metrics slots: aggregates with units, gauges with
 * bands, samples. One place so the scraper (instance_live rows), the
 * monitor (final snapshot) and the API answer with the same shapes.
 *
 * Runs in: scraper, monitor, modelhub-fcgi workers. Called by:
 * hubd/scraper.c, hubd/monitor.c, fcgi/api_instances.c.
 * Owns: nothing; every function returns a new json-c object the caller
 * owns (json_object_put), or NULL on out of memory.
 *
 * Aggregates object (also stored in instance_live.aggregates):
 *   {"sample_count": n, "first_sample_at_ms"?, "last_sample_at_ms": ms,
 *    "cpu":    {"unit":"millicores","count","min","max","avg",
 *               "last_60s":{"count","min","max","avg"}},
 *    "memory": {"unit":"MiB", ... same ...},
 *    "busy":   {"count", "percentile": 10, "cpu_m"|null, "memory_mib"|null},
 *    "throttled_pct": percent of CFS periods throttled | null}
 * busy: the samples taken while the instance served a request (shm.h
 * SHM_F_BUSY) and their low percentile, the request basis of the
 * recommendations (issue 16). A copy read back from instance_live
 * (view_aggregates_parse) has no histogram: view_busy_parse reads the
 * stored percentiles instead.
 * Gauges array (DESIGN §6): for cpu and memory, max vs limit, min vs
 * request, avg vs limit:
 *   {"resource":"cpu","stat":"max","against":"limit","value":v,"of":l,
 *    "unit":"millicores","percent":p|null,"band":"…"|null,"colour":"…"|null,
 *    "text":"v / l"}
 */
#ifndef MH_METRICS_VIEW_H
#define MH_METRICS_VIEW_H

#include <json-c/json.h>

#include "metrics/shm.h"

/* Aggregates of a slot (see above). */
json_object *view_aggregates(const struct shm_slot_data *d);
/* Resources object {"cpu_request_m","cpu_limit_m","memory_request_mib",
 * "memory_limit_mib"} with null for unknown (<= 0). */
json_object *view_resources(int cpu_req_m, int cpu_lim_m, int mem_req_mib, int mem_lim_mib);
/* Gauges from an aggregates object (as made by view_aggregates or read
 * back from instance_live / instance_metrics) and the resources. */
json_object *view_gauges(json_object *aggregates, int cpu_req_m, int cpu_lim_m, int mem_req_mib,
			 int mem_lim_mib);
/* Samples as {"t_ms","cpu_m","memory_mib"} objects, oldest first. */
json_object *view_samples(const struct shm_sample *s, int n);
/* One gauge (exposed for tests). value/of < 0 means unknown. */
json_object *view_gauge(const char *resource, const char *stat, const char *against, double value,
			double of);
/* Read an aggregates object back (instance_live.aggregates) into the
 * cpu/mem aggregates and last_sample_ms of d. 0 / -1 when not an object. */
int view_aggregates_parse(json_object *aggs, struct shm_slot_data *d);
/* Busy phase and throttling of one instance, as persisted in
 * instance_metrics (cpu_busy_m, mem_busy_mib, busy_samples,
 * throttled_pct); NaN = not measured. */
struct view_busy {
	int count;
	double cpu_m, mem_mib, throttled_pct;
};
/* From an aggregates object (instance_live); NULL aggs gives NaNs. */
void view_busy_parse(json_object *aggs, struct view_busy *out);
/* From a slot. */
void view_busy_of(const struct shm_slot_data *d, struct view_busy *out);
struct rec_node;
/* The node slots of the segment as recommendation nodes (allocatable,
 * eligible): up to max into out. Returns the count (0 without a segment).
 * Kubernetes: every node the leader's scraper saw; local: this machine. */
int view_node_caps(struct metrics_seg *seg, struct rec_node *out, int max);
/* A JSON number rounded to one decimal and printed as such. */
json_object *view_num(double v);
/* Round to one decimal (JSON stays short and stable). */
double view_round1(double v);

#endif
