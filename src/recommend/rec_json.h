/*
 * rec_json.h — the JSON shape of a recommendation (GET /api/recommendations,
 * the detail column of table recommendation), rendered from a rec_report.
 *
 * Runs in: modelhub-fcgi workers and the janitor. Pure: builds json-c
 * objects, no I/O. Called by: fcgi/api_recommend.c, hubd/janitor.c.
 * Owns: nothing; the returned object belongs to the caller (json_object_put).
 *
 * Shape: {instances, oom_instances, oom_active, oom_unlimited, verdict,
 * resources: {cpu_request_m: {current, recommended, unit, band: {name,
 * colour}|null, percent_used (against current), spread: {min_percent,
 * max_percent}, percent_reached (against recommended), usage, lower_bound,
 * instances, capped, oom_adjusted, throttle_adjusted, reason}, ...},
 * model_id, model_version, computed_at, window: {from, to, limit},
 * by_input_size (largest request served) and by_call_size (largest chunk
 * per model call): [{instances, ..., resources, inputs: "1-10",
 * enough_data}, ...]} (buckets without instances left out).
 */
#ifndef MH_REC_JSON_H
#define MH_REC_JSON_H

#include <json-c/json.h>

#include "recommend/recommend.h"

/* The whole recommendation; NULL only when json-c cannot allocate. */
json_object *rec_report_json(const struct rec_report *rep);

#endif
