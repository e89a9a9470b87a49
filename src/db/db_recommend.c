/*
 * db_recommend.c — implementation of db_recommend.h.
 *
 * Runs in: modelhub-fcgi workers and the janitor.
 * Shared state: reads model, instance_metrics; writes recommendation,
 * job_run. All SQL parameterised.
 */
#include "db/db_recommend.h"
#include "lib/config.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const units[REC_RES_MAX] = {"m", "m", "MiB", "MiB"};

void db_recommend_config(struct rec_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	rec_config_default(cfg);
	cfg->cpu_step_m = (int)cfg_int("recommend.cpu_step_m", cfg->cpu_step_m);
	cfg->mem_step_mib = (int)cfg_int("recommend.mem_step_mib", cfg->mem_step_mib);
	cfg->cpu_floor_m = (int)cfg_int("recommend.cpu_floor_m", cfg->cpu_floor_m);
	cfg->mem_floor_mib = (int)cfg_int("recommend.mem_floor_mib", cfg->mem_floor_mib);
	cfg->oom_factor = cfg_double("recommend.oom_factor", cfg->oom_factor);
	cfg->min_bucket_instances = (int)cfg_int("recommend.min_bucket_instances",
						 cfg->min_bucket_instances);
	/* Never recommend more than the largest node can give (the VPA's
	 * best-known failure). Local backend: this machine. */
	cfg->max_cpu_m = (int)cfg_int("recommend.max_cpu_m", cores > 0 ? cores * 1000 : 0);
	cfg->max_mem_mib = (int)cfg_int("recommend.max_mem_mib",
					pages > 0 && psz > 0 ? (long)((double)pages * psz / 1048576) : 0);
}

static json_object *item_json(const struct rec_item *it, enum rec_resource r)
{
	json_object *o = json_object_new_object(), *band = NULL, *spread;

	json_object_object_add(o, "current", json_object_new_int(it->current));
	json_object_object_add(o, "recommended", json_object_new_int(it->recommended));
	json_object_object_add(o, "unit", json_object_new_string(units[r]));
	if (it->band) {
		band = json_object_new_object();
		json_object_object_add(band, "name", json_object_new_string(it->band->name));
		json_object_object_add(band, "colour", json_object_new_string(it->band->colour));
	}
	json_object_object_add(o, "band", band);
	json_object_object_add(o, "percent_used", json_object_new_double(it->percent_used));
	spread = json_object_new_object();
	json_object_object_add(spread, "min_percent", json_object_new_double(it->percent_min));
	json_object_object_add(spread, "max_percent", json_object_new_double(it->percent_max));
	json_object_object_add(o, "spread", spread);
	json_object_object_add(o, "usage", json_object_new_double(it->usage));
	json_object_object_add(o, "instances", json_object_new_int(it->instances));
	json_object_object_add(o, "capped", json_object_new_boolean(it->capped));
	json_object_object_add(o, "oom_adjusted", json_object_new_boolean(it->oom_adjusted));
	json_object_object_add(o, "reason", json_object_new_string(it->reason));
	return o;
}

static json_object *result_json(const struct rec_result *res)
{
	json_object *o = json_object_new_object(), *rs = json_object_new_object();

	json_object_object_add(o, "instances", json_object_new_int(res->instances));
	json_object_object_add(o, "oom_instances", json_object_new_int(res->oom_instances));
	json_object_object_add(o, "verdict", json_object_new_string(rec_verdict_name(res->verdict)));
	for (int r = 0; r < REC_RES_MAX; r++)
		json_object_object_add(rs, rec_resource_name((enum rec_resource)r),
				       item_json(&res->item[r], (enum rec_resource)r));
	json_object_object_add(o, "resources", rs);
	return o;
}

static double num(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

json_object *db_recommend_model(struct db *db, const struct rec_config *cfg,
				const char *model_id, const char *from, const char *to,
				int limit, int *status)
{
	const char *p[4];
	char lim[16];
	PGresult *m, *r;
	int current[REC_RES_MAX], n;
	struct rec_instance *in;
	struct rec_result res;
	struct rec_bucket buckets[REC_BUCKETS];
	json_object *o, *win, *arr;

	*status = -1;
	p[0] = model_id;
	m = db_prep(db, "rec_model",
		    "SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
		    " version, iso(now()) FROM model WHERE id = $1", 1, p);
	if (!m)
		return NULL;
	if (PQntuples(m) == 0) {
		PQclear(m);
		*status = 1;
		return NULL;
	}
	for (int i = 0; i < REC_RES_MAX; i++)
		current[i] = atoi(PQgetvalue(m, 0, i));
	if (limit <= 0)
		limit = 100;
	if (limit > DB_REC_MAX_LIMIT)
		limit = DB_REC_MAX_LIMIT;
	snprintf(lim, sizeof lim, "%d", limit);
	p[1] = from;
	p[2] = to;
	p[3] = lim;
	r = db_prep(db, "rec_instances",
		    "SELECT cpu_min_m, cpu_max_m, cpu_avg_m, mem_min_mib, mem_max_mib, mem_avg_mib,"
		    " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
		    " termination_reason = 'OOMKILLED', input_count"
		    " FROM instance_metrics WHERE model_id = $1"
		    " AND ($2::timestamptz IS NULL OR persisted_at >= $2::timestamptz)"
		    " AND ($3::timestamptz IS NULL OR persisted_at <= $3::timestamptz)"
		    " AND sample_count > 0"
		    " ORDER BY persisted_at DESC, instance_id DESC LIMIT $4::int",
		    4, p);
	if (!r) {
		PQclear(m);
		return NULL;
	}
	n = PQntuples(r);
	in = calloc((size_t)(n ? n : 1), sizeof *in);
	if (!in) {
		PQclear(r);
		PQclear(m);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		in[i].cpu_min_m = num(r, i, 0);
		in[i].cpu_max_m = num(r, i, 1);
		in[i].cpu_avg_m = num(r, i, 2);
		in[i].mem_min_mib = num(r, i, 3);
		in[i].mem_max_mib = num(r, i, 4);
		in[i].mem_avg_mib = num(r, i, 5);
		in[i].cpu_request_m = (int)num(r, i, 6);
		in[i].cpu_limit_m = (int)num(r, i, 7);
		in[i].memory_request_mib = (int)num(r, i, 8);
		in[i].memory_limit_mib = (int)num(r, i, 9);
		in[i].oom_killed = !PQgetisnull(r, i, 10) && PQgetvalue(r, i, 10)[0] == 't';
		in[i].input_count = (int)num(r, i, 11);
	}
	PQclear(r);
	rec_compute(cfg, in, n, current, &res);
	rec_compute_buckets(cfg, in, n, current, buckets);
	free(in);

	o = result_json(&res);
	json_object_object_add(o, "model_id", json_object_new_string(model_id));
	json_object_object_add(o, "model_version", json_object_new_int(atoi(PQgetvalue(m, 0, 4))));
	json_object_object_add(o, "computed_at", json_object_new_string(PQgetvalue(m, 0, 5)));
	PQclear(m);
	win = json_object_new_object();
	json_object_object_add(win, "from", from ? json_object_new_string(from) : NULL);
	json_object_object_add(win, "to", to ? json_object_new_string(to) : NULL);
	json_object_object_add(win, "limit", json_object_new_int(limit));
	json_object_object_add(o, "window", win);
	arr = json_object_new_array();
	for (int b = 0; b < REC_BUCKETS; b++) {
		json_object *bo;
		char label[32];

		if (buckets[b].result.instances == 0)
			continue;
		bo = result_json(&buckets[b].result);
		if (buckets[b].hi)
			snprintf(label, sizeof label, "%d-%d", buckets[b].lo, buckets[b].hi);
		else
			snprintf(label, sizeof label, "%d+", buckets[b].lo);
		json_object_object_add(bo, "inputs", json_object_new_string(label));
		json_object_object_add(bo, "enough_data", json_object_new_boolean(buckets[b].enough));
		json_object_array_add(arr, bo);
	}
	json_object_object_add(o, "by_input_size", arr);
	*status = 0;
	return o;
}

static const char *res_field(json_object *rec, const char *res, const char *field, char *tmp,
			     size_t n)
{
	json_object *rs, *it, *v;

	if (!json_object_object_get_ex(rec, "resources", &rs) ||
	    !json_object_object_get_ex(rs, res, &it) || !json_object_object_get_ex(it, field, &v))
		return NULL;
	snprintf(tmp, n, "%d", json_object_get_int(v));
	return tmp;
}

int db_recommend_store(struct db *db, json_object *rec, int64_t *id_out)
{
	char t[8][16], cnt[16];
	const char *p[14];
	json_object *v, *win;
	PGresult *r;
	int k = 0;

	p[k++] = json_object_object_get_ex(rec, "model_id", &v) ? json_object_get_string(v) : NULL;
	win = json_object_object_get_ex(rec, "window", &win) ? win : NULL;
	p[k++] = win && json_object_object_get_ex(win, "from", &v) && v ? json_object_get_string(v) : NULL;
	p[k++] = win && json_object_object_get_ex(win, "to", &v) && v ? json_object_get_string(v) : NULL;
	snprintf(cnt, sizeof cnt, "%d",
		 json_object_object_get_ex(rec, "instances", &v) ? json_object_get_int(v) : 0);
	p[k++] = cnt;
	for (int i = 0; i < REC_RES_MAX; i++)
		p[k++] = res_field(rec, rec_resource_name((enum rec_resource)i), "current", t[i], 16);
	for (int i = 0; i < REC_RES_MAX; i++)
		p[k++] = res_field(rec, rec_resource_name((enum rec_resource)i), "recommended",
				   t[4 + i], 16);
	p[k++] = json_object_object_get_ex(rec, "verdict", &v) ? json_object_get_string(v) : NULL;
	p[k++] = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN);
	r = db_prep(db, "rec_store",
		    "INSERT INTO recommendation (model_id, window_from, window_to, sample_count,"
		    " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
		    " rec_cpu_request_m, rec_cpu_limit_m, rec_memory_request_mib, rec_memory_limit_mib,"
		    " verdict, detail) VALUES ($1, $2::timestamptz, $3::timestamptz, $4::int,"
		    " $5::int, $6::int, $7::int, $8::int, $9::int, $10::int, $11::int, $12::int,"
		    " $13, $14::jsonb) RETURNING id",
		    14, p);
	if (!r)
		return -1;
	if (id_out)
		*id_out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

int db_recommend_nightly(struct db *db)
{
	const char *at = cfg_str("recommend.nightly_at", "03:00");
	const char *p[1] = {at};
	struct rec_config cfg;
	PGresult *due, *models;
	int stored = 0;

	/* Claim today's run atomically: the row moves forward only when the
	 * configured time of day has passed since the last run, so several
	 * janitors (or restarts) never run it twice. First ever run: at once. */
	due = db_prep(db, "rec_nightly_due",
		      "INSERT INTO job_run (job, last_at) VALUES ('recommendations', now())"
		      " ON CONFLICT (job) DO UPDATE SET last_at = now()"
		      " WHERE job_run.last_at < date_trunc('day', now()) + $1::time"
		      " AND now() >= date_trunc('day', now()) + $1::time RETURNING 1",
		      1, p);
	if (!due)
		return -1;
	if (PQntuples(due) == 0) {
		PQclear(due);
		return 0;
	}
	PQclear(due);
	models = db_prep(db, "rec_nightly_models", "SELECT id FROM model WHERE enabled ORDER BY id",
			 0, NULL);
	if (!models)
		return -1;
	db_recommend_config(&cfg);
	for (int i = 0; i < PQntuples(models); i++) {
		int st;
		json_object *rec = db_recommend_model(db, &cfg, PQgetvalue(models, i, 0), NULL, NULL,
						      100, &st);
		if (!rec)
			continue;
		if (db_recommend_store(db, rec, NULL) == 0)
			stored++;
		json_object_put(rec);
	}
	PQclear(models);
	log_info("recommend msg=\"nightly recommendations stored\" models=%d", stored);
	return stored;
}
