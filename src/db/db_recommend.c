/*
 * db_recommend.c — implementation of db_recommend.h.
 *
 * Runs in: modelhub-fcgi workers, the janitor and the runners (sizing a
 * new instance from the request, hubd/sizing.c).
 * Shared state: reads model, instance_metrics, recommendation; writes
 * recommendation (new rows, applied_at/by), model (apply), job_run (the
 * nightly claim), model_instance (the resources and chunk a sized instance
 * starts with). All SQL parameterised.
 */
#include "db/db_recommend.h"
#include "db/db_lead.h"
#include "lib/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double num(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

/* A usage aggregate: NULL (never measured) is NaN, not 0 (issue 16). */
static double usage(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NAN : strtod(PQgetvalue(r, row, col), NULL);
}

static enum db_rec_status load_model(struct db *db, const char *model_id, struct rec_report *m)
{
	const char *p[1] = {model_id};
	PGresult *r = db_prep(db, "rec_model",
			      "SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
			      " version, iso(now()) FROM model WHERE id = $1", 1, p);

	if (!r)
		return DB_REC_ERROR;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return DB_REC_NOT_FOUND;
	}
	for (int i = 0; i < REC_RES_MAX; i++)
		m->current[i] = atoi(PQgetvalue(r, 0, i));
	m->model_version = atoi(PQgetvalue(r, 0, 4));
	snprintf(m->computed_at, sizeof m->computed_at, "%s", PQgetvalue(r, 0, 5));
	PQclear(r);
	return DB_REC_OK;
}

/* Row i of the rec_instances query (column order of its SELECT). */
static void row_instance(PGresult *r, int i, struct rec_instance *x)
{
	x->cpu_m.min = usage(r, i, 0);
	x->cpu_m.max = usage(r, i, 1);
	x->cpu_m.avg = usage(r, i, 2);
	x->mem_mib.min = usage(r, i, 3);
	x->mem_mib.max = usage(r, i, 4);
	x->mem_mib.avg = usage(r, i, 5);
	for (int k = 0; k < REC_RES_MAX; k++)
		x->had[k] = (int)num(r, i, 6 + k);
	x->oom_killed = !PQgetisnull(r, i, 10) && PQgetvalue(r, i, 10)[0] == 't';
	x->input_count = (int)num(r, i, 11);
	x->samples = (int)num(r, i, 12);
	x->cpu_m.busy = usage(r, i, 13);
	x->mem_mib.busy = usage(r, i, 14);
	x->throttled_pct = usage(r, i, 15);
	x->call_inputs = (int)num(r, i, 16);
	x->request_inputs = (int)num(r, i, 17);
}

enum db_rec_status db_recommend_load(struct db *db, const char *model_id, const char *from,
				     const char *to, int limit, struct rec_report *rep,
				     struct rec_instance **in, int *n)
{
	const char *p[4] = {model_id, from, to, DB_INT(rec_limit(limit))};
	enum db_rec_status st;
	PGresult *r;

	*in = NULL;
	*n = 0;
	memset(rep, 0, sizeof *rep);
	rep->model_id = model_id;
	rep->from = from;
	rep->to = to;
	rep->limit = rec_limit(limit);
	st = load_model(db, model_id, rep);
	if (st != DB_REC_OK)
		return st;
	r = db_prep(db, "rec_instances",
		    "SELECT cpu_min_m, cpu_max_m, cpu_avg_m, mem_min_mib, mem_max_mib, mem_avg_mib,"
		    " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
		    " termination_reason = 'OOMKILLED', input_count, sample_count,"
		    " cpu_busy_m, mem_busy_mib, throttled_pct, call_inputs, request_inputs"
		    " FROM instance_metrics WHERE model_id = $1"
		    " AND ($2::timestamptz IS NULL OR persisted_at >= $2::timestamptz)"
		    " AND ($3::timestamptz IS NULL OR persisted_at <= $3::timestamptz)"
		    " AND (sample_count > 0 OR termination_reason = 'OOMKILLED')"
		    " ORDER BY persisted_at DESC, instance_id DESC LIMIT $4::int",
		    4, p);
	if (!r)
		return DB_REC_ERROR;
	*n = PQntuples(r);
	*in = calloc((size_t)(*n ? *n : 1), sizeof **in);
	if (!*in) {
		log_error("recommend msg=\"out of memory loading instances\" model=%s", model_id);
		PQclear(r);
		*n = 0;
		return DB_REC_ERROR;
	}
	for (int i = 0; i < *n; i++)
		row_instance(r, i, &(*in)[i]);
	PQclear(r);
	return DB_REC_OK;
}

int db_recommend_store(struct db *db, const struct rec_report *rep, const char *detail_json,
		       int64_t *id_out)
{
	const struct rec_item *it = rep->result.item;
	const char *p[14] = {
		rep->model_id, rep->from, rep->to, DB_INT(rep->result.instances),
		DB_INT(it[REC_CPU_REQUEST].current), DB_INT(it[REC_CPU_LIMIT].current),
		DB_INT(it[REC_MEM_REQUEST].current), DB_INT(it[REC_MEM_LIMIT].current),
		DB_INT(it[REC_CPU_REQUEST].recommended), DB_INT(it[REC_CPU_LIMIT].recommended),
		DB_INT(it[REC_MEM_REQUEST].recommended), DB_INT(it[REC_MEM_LIMIT].recommended),
		rec_verdict_name(rep->result.verdict), detail_json};
	PGresult *r;

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

PGresult *db_recommend_models(struct db *db, int enabled_only)
{
	if (enabled_only)
		return db_prep(db, "rec_enabled_models",
			       "SELECT id FROM model WHERE enabled ORDER BY id", 0, NULL);
	return db_prep(db, "rec_all_models", "SELECT id FROM model ORDER BY id", 0, NULL);
}

PGresult *db_recommend_history(struct db *db, const char *model_id, int limit)
{
	const char *p[2] = {model_id, DB_INT(limit)};

	return db_prep(db, "rec_history",
		       "SELECT id, model_id, iso(computed_at), iso(window_from), iso(window_to),"
		       " sample_count, verdict,"
		       " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
		       " rec_cpu_request_m, rec_cpu_limit_m, rec_memory_request_mib,"
		       " rec_memory_limit_mib, iso(applied_at), applied_by, detail"
		       " FROM recommendation WHERE ($1::text IS NULL OR model_id = $1)"
		       " ORDER BY computed_at DESC, id DESC LIMIT $2::int",
		       2, p);
}

enum db_rec_status db_recommend_stored(struct db *db, const char *model_id, int64_t rec_id,
				       int vals[REC_RES_MAX], int *version)
{
	const char *p[2] = {DB_INT(rec_id), model_id};
	PGresult *r;

	r = db_prep(db, "rec_load",
		    "SELECT rec_cpu_request_m, rec_cpu_limit_m, rec_memory_request_mib,"
		    " rec_memory_limit_mib, (detail->>'model_version')::int"
		    " FROM recommendation WHERE id = $1::bigint AND model_id = $2",
		    2, p);
	if (!r)
		return DB_REC_ERROR;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return DB_REC_NOT_FOUND;
	}
	for (int k = 0; k < REC_RES_MAX; k++)
		vals[k] = atoi(PQgetvalue(r, 0, k));
	*version = atoi(PQgetvalue(r, 0, 4));
	PQclear(r);
	return DB_REC_OK;
}

static int mark_applied(struct db *db, int64_t rec_id, int64_t user_id)
{
	const char *p[2] = {DB_INT(rec_id), user_id ? DB_INT(user_id) : NULL};

	return db_cmd(db, "UPDATE recommendation SET applied_at = now(), applied_by = $2::bigint"
		      " WHERE id = $1::bigint", 2, p);
}

enum db_rec_status db_recommend_apply(struct db *db, const char *model_id, int version,
				      const int vals[REC_RES_MAX], int64_t rec_id,
				      int64_t user_id, int out[REC_RES_MAX], int *new_version)
{
	const char *p[REC_RES_MAX + 2] = {
		model_id, DB_INT(version), DB_INT(vals[REC_CPU_REQUEST]), DB_INT(vals[REC_CPU_LIMIT]),
		DB_INT(vals[REC_MEM_REQUEST]), DB_INT(vals[REC_MEM_LIMIT])};
	PGresult *r;

	r = db_prep(db, "rec_apply_model",
		    "UPDATE model SET cpu_request_m = $3::int, cpu_limit_m = $4::int,"
		    " memory_request_mib = $5::int, memory_limit_mib = $6::int,"
		    " version = version + 1, updated_at = now()"
		    " WHERE id = $1 AND version = $2::int"
		    " RETURNING version, cpu_request_m, cpu_limit_m, memory_request_mib,"
		    " memory_limit_mib, pg_notify('model_changed', id)",
		    6, p);
	if (!r)
		return DB_REC_ERROR;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return DB_REC_STALE;
	}
	*new_version = atoi(PQgetvalue(r, 0, 0));
	for (int k = 0; k < REC_RES_MAX; k++)
		out[k] = atoi(PQgetvalue(r, 0, 1 + k));
	PQclear(r);
	return mark_applied(db, rec_id, user_id) < 0 ? DB_REC_ERROR : DB_REC_OK;
}

int db_recommend_nightly_claim(struct db *db, int64_t token, const char *at)
{
	const char *p[2] = {at, DB_INT(token)};
	PGresult *r;
	int due;

	/* The row moves forward only when the configured time of day has
	 * passed since the last run, so several janitors (or restarts) never
	 * run it twice. First ever run: at once. */
	r = db_prep(db, "rec_nightly_due",
		    "INSERT INTO job_run (job, last_at) SELECT 'recommendations', now()"
		    " WHERE " DB_LEASE_FENCE(2) " ON CONFLICT (job) DO UPDATE SET last_at = now()"
		    " WHERE job_run.last_at < date_trunc('day', now()) + $1::time"
		    " AND now() >= date_trunc('day', now()) + $1::time RETURNING 1",
		    2, p);
	if (!r)
		return -1;
	due = PQntuples(r) > 0;
	PQclear(r);
	return due;
}

int db_recommend_sizing_on(struct db *db, const char *model_id)
{
	const char *p[1] = {model_id};
	PGresult *r = db_prep(db, "rec_sizing_on",
			      "SELECT size_from_request FROM model WHERE id = $1", 1, p);
	int on;

	if (!r)
		return -1;
	on = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return on;
}

int db_recommend_sized(struct db *db, int64_t inst_id, const int res[REC_RES_MAX], int inputs,
		       int chunk)
{
	char b[7][DB_INT_LEN];
	const char *p[7];

	p[0] = db_int_text(b[0], inst_id);
	for (int i = 0; i < REC_RES_MAX; i++)
		p[1 + i] = res[i] > 0 ? db_int_text(b[1 + i], res[i]) : NULL;
	p[5] = db_int_text(b[5], inputs);
	p[6] = chunk > 0 ? db_int_text(b[6], chunk) : NULL;
	return db_done(db_prep(db, "rec_sized",
			       "UPDATE model_instance SET cpu_request_m = $2::int, cpu_limit_m = $3::int,"
			       " memory_request_mib = $4::int, memory_limit_mib = $5::int,"
			       " sized_inputs = $6::int, chunk_size = $7::int, updated_at = now(),"
			       " snapshot = coalesce(snapshot, '{}'::jsonb) || jsonb_build_object("
			       "  'sized_from_request', jsonb_build_object('inputs', $6::int,"
			       "  'chunk_size', $7::int, 'cpu_request_m', $2::int, 'cpu_limit_m', $3::int,"
			       "  'memory_request_mib', $4::int, 'memory_limit_mib', $5::int))"
			       " WHERE id = $1::bigint AND state = 'REQUESTED'",
			       7, p));
}
