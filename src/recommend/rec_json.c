/*
 * rec_json.c — implementation of rec_json.h (JSON rendering of a report).
 *
 * Runs in: modelhub-fcgi workers and the janitor. Called by:
 * fcgi/api_recommend.c, hubd/janitor.c. Owns: nothing beyond each call.
 */
#include "recommend/rec_json.h"
#include "recommend/bands.h"

#include <stdio.h>

static const char *const units[REC_RES_MAX] = {"m", "m", "MiB", "MiB"};

static json_object *band_json(const struct band *b)
{
	json_object *o;

	if (!b)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(b->name));
	json_object_object_add(o, "colour", json_object_new_string(b->colour));
	return o;
}

static json_object *item_json(const struct rec_item *it, enum rec_resource r)
{
	json_object *o = json_object_new_object(), *spread;

	json_object_object_add(o, "current", json_object_new_int(it->current));
	json_object_object_add(o, "recommended", json_object_new_int(it->recommended));
	json_object_object_add(o, "unit", json_object_new_string(units[r]));
	json_object_object_add(o, "band", band_json(it->band));
	json_object_object_add(o, "percent_used", json_object_new_double(it->percent_used));
	spread = json_object_new_object();
	json_object_object_add(spread, "min_percent", json_object_new_double(it->percent_min));
	json_object_object_add(spread, "max_percent", json_object_new_double(it->percent_max));
	json_object_object_add(o, "spread", spread);
	json_object_object_add(o, "percent_reached", json_object_new_double(it->percent_reached));
	json_object_object_add(o, "usage", json_object_new_double(it->usage));
	json_object_object_add(o, "lower_bound", json_object_new_double(it->lower_bound));
	json_object_object_add(o, "instances", json_object_new_int(it->instances));
	json_object_object_add(o, "capped", json_object_new_boolean(it->capped));
	json_object_object_add(o, "oom_adjusted", json_object_new_boolean(it->oom_adjusted));
	json_object_object_add(o, "throttle_adjusted", json_object_new_boolean(it->throttle_adjusted));
	json_object_object_add(o, "reason", json_object_new_string(it->reason));
	return o;
}

static json_object *result_json(const struct rec_result *res)
{
	json_object *o = json_object_new_object(), *rs = json_object_new_object();

	json_object_object_add(o, "instances", json_object_new_int(res->instances));
	json_object_object_add(o, "oom_instances", json_object_new_int(res->oom_instances));
	json_object_object_add(o, "oom_active", json_object_new_int(res->oom_active));
	json_object_object_add(o, "oom_unlimited", json_object_new_int(res->oom_unlimited));
	json_object_object_add(o, "verdict", json_object_new_string(rec_verdict_name(res->verdict)));
	for (int r = 0; r < REC_RES_MAX; r++)
		json_object_object_add(rs, rec_resource_name((enum rec_resource)r),
				       item_json(&res->item[r], (enum rec_resource)r));
	json_object_object_add(o, "resources", rs);
	return o;
}

static json_object *buckets_json(const struct rec_bucket *b)
{
	json_object *arr = json_object_new_array();

	for (int i = 0; i < REC_BUCKETS; i++) {
		json_object *bo;
		char label[32];

		if (b[i].result.instances == 0)
			continue;
		bo = result_json(&b[i].result);
		if (b[i].hi)
			snprintf(label, sizeof label, "%d-%d", b[i].lo, b[i].hi);
		else
			snprintf(label, sizeof label, "%d+", b[i].lo);
		json_object_object_add(bo, "inputs", json_object_new_string(label));
		json_object_object_add(bo, "enough_data", json_object_new_boolean(b[i].enough));
		json_object_array_add(arr, bo);
	}
	return arr;
}

json_object *rec_report_json(const struct rec_report *rep)
{
	json_object *o = result_json(&rep->result), *win;

	if (!o)
		return NULL;
	json_object_object_add(o, "model_id", json_object_new_string(rep->model_id));
	json_object_object_add(o, "model_version", json_object_new_int(rep->model_version));
	json_object_object_add(o, "computed_at", json_object_new_string(rep->computed_at));
	win = json_object_new_object();
	json_object_object_add(win, "from", rep->from ? json_object_new_string(rep->from) : NULL);
	json_object_object_add(win, "to", rep->to ? json_object_new_string(rep->to) : NULL);
	json_object_object_add(win, "limit", json_object_new_int(rep->limit));
	json_object_object_add(o, "window", win);
	json_object_object_add(o, "by_input_size", buckets_json(rep->buckets));
	json_object_object_add(o, "by_call_size", buckets_json(rep->call_buckets));
	return o;
}
