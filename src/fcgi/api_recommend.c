/*
 * api_recommend.c — resource recommendations API (issue 7):
 *   GET  /api/recommendations?model_id=&from=&to=&limit=   computed on demand
 *   GET  /api/recommendations/history?model_id=&limit=     stored (nightly) ones
 *   POST /api/models/{id}/apply-recommendation             one-click apply
 *
 * Runs in: modelhub-fcgi workers. Called by: the router (admin routes only).
 * Owns: per-request JSON objects. The computation is in db/db_recommend.c
 * (shared with the janitor's nightly run) on top of the pure engine.
 */
#include "fcgi/api.h"
#include "db/db_recommend.h"
#include "lib/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* YYYY-MM-DD, optionally followed by a time part Postgres will parse. */
static int valid_when(const char *s)
{
	if (!s)
		return 1;
	for (int i = 0; i < 10; i++) {
		if (i == 4 || i == 7) {
			if (s[i] != '-')
				return 0;
		} else if (!isdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	if (s[10] == '\0')
		return 1;
	if (s[10] != 'T' && s[10] != ' ')
		return 0;
	for (const char *p = s + 11; *p; p++)
		if (!isdigit((unsigned char)*p) && !strchr(":.+-Z", *p))
			return 0;
	return strlen(s) <= 40;
}

/* limit in [1, max] or the default; -1 when invalid. */
static int parse_limit(const char *s, int def, int max)
{
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 10);
	if (*end || v < 1 || v > max)
		return -1;
	return (int)v;
}

static enum api_err rec_list(struct api_req *r)
{
	const char *model = api_query(r, "model_id");
	const char *from = api_query(r, "from"), *to = api_query(r, "to");
	int limit = parse_limit(api_query(r, "limit"), 100, DB_REC_MAX_LIMIT);
	struct rec_config cfg;
	json_object *fields = json_object_new_object(), *items, *out;
	PGresult *models;
	int st;

	if (!valid_when(from))
		json_object_object_add(fields, "from", json_object_new_string("expected YYYY-MM-DD[THH:MM:SS]"));
	if (!valid_when(to))
		json_object_object_add(fields, "to", json_object_new_string("expected YYYY-MM-DD[THH:MM:SS]"));
	if (limit < 0)
		json_object_object_add(fields, "limit", json_object_new_string("expected 1..1000"));
	if (json_object_object_length(fields))
		return api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", fields,
				       "invalid query parameters");
	json_object_put(fields);
	db_recommend_config(&cfg);
	if (model) {
		json_object *rec = db_recommend_model(r->db, &cfg, model, from, to, limit, &st);
		if (!rec)
			return st == 1 ? api_fail(r, API_NOT_FOUND, "model_not_found",
						  "no model with this id")
				       : api_db_fail(r);
		return api_json(r, 200, rec);
	}
	models = db_prep(r->db, "rec_all_models", "SELECT id FROM model ORDER BY id", 0, NULL);
	if (!models)
		return api_db_fail(r);
	items = json_object_new_array();
	for (int i = 0; i < PQntuples(models); i++) {
		json_object *rec = db_recommend_model(r->db, &cfg, PQgetvalue(models, i, 0), from, to,
						      limit, &st);
		if (!rec && st < 0) {
			PQclear(models);
			json_object_put(items);
			return api_db_fail(r);
		}
		if (rec)
			json_object_array_add(items, rec);
	}
	PQclear(models);
	out = json_object_new_object();
	json_object_object_add(out, "items", items);
	return api_json(r, 200, out);
}

static enum api_err rec_history(struct api_req *r)
{
	const char *model = api_query(r, "model_id");
	int limit = parse_limit(api_query(r, "limit"), 50, 500);
	char lim[16];
	const char *p[2];
	PGresult *res;
	json_object *items, *out;

	if (limit < 0)
		return api_fail(r, API_UNPROCESSABLE, "validation_failed", "limit must be 1..500");
	snprintf(lim, sizeof lim, "%d", limit);
	p[0] = model;
	p[1] = lim;
	res = db_prep(r->db, "rec_history",
		      "SELECT id, model_id, iso(computed_at), iso(window_from), iso(window_to),"
		      " sample_count, verdict,"
		      " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
		      " rec_cpu_request_m, rec_cpu_limit_m, rec_memory_request_mib, rec_memory_limit_mib,"
		      " iso(applied_at), applied_by, detail"
		      " FROM recommendation WHERE ($1::text IS NULL OR model_id = $1)"
		      " ORDER BY computed_at DESC, id DESC LIMIT $2::int",
		      2, p);
	if (!res)
		return api_db_fail(r);
	items = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *o = json_object_new_object(), *cur = json_object_new_object(),
			    *rec = json_object_new_object();
		jx_add_pg_int(o, "id", res, i, 0);
		jx_add_pg_str(o, "model_id", res, i, 1);
		jx_add_pg_str(o, "computed_at", res, i, 2);
		jx_add_pg_str(o, "window_from", res, i, 3);
		jx_add_pg_str(o, "window_to", res, i, 4);
		jx_add_pg_int(o, "instances", res, i, 5);
		jx_add_pg_str(o, "verdict", res, i, 6);
		for (int k = 0; k < REC_RES_MAX; k++) {
			jx_add_pg_int(cur, rec_resource_name((enum rec_resource)k), res, i, 7 + k);
			jx_add_pg_int(rec, rec_resource_name((enum rec_resource)k), res, i, 11 + k);
		}
		json_object_object_add(o, "current", cur);
		json_object_object_add(o, "recommended", rec);
		jx_add_pg_str(o, "applied_at", res, i, 15);
		jx_add_pg_int(o, "applied_by", res, i, 16);
		jx_add_pg_json(o, "detail", res, i, 17);
		json_object_array_add(items, o);
	}
	PQclear(res);
	out = json_object_new_object();
	json_object_object_add(out, "items", items);
	return api_json(r, 200, out);
}

/* Load a stored recommendation of this model: its recommended values and
 * the model version it was computed against. 0, 1 not found, -1 error. */
static int load_stored(struct db *db, const char *model, const char *rec_id,
		       char vals[REC_RES_MAX][16], char *ver, size_t verlen)
{
	const char *p[2] = {rec_id, model};
	PGresult *res = db_prep(db, "rec_load",
				"SELECT rec_cpu_request_m, rec_cpu_limit_m, rec_memory_request_mib,"
				" rec_memory_limit_mib, detail->>'model_version'"
				" FROM recommendation WHERE id = $1::bigint AND model_id = $2",
				2, p);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 1;
	}
	for (int k = 0; k < REC_RES_MAX; k++)
		snprintf(vals[k], 16, "%s", PQgetvalue(res, 0, k));
	snprintf(ver, verlen, "%s", PQgetvalue(res, 0, 4));
	PQclear(res);
	return 0;
}

static enum api_err rec_apply(struct api_req *r)
{
	const char *model = r->params[0];
	json_object *body = NULL, *v, *rec = NULL, *out;
	char vals[REC_RES_MAX][16], ver[16] = "", idbuf[24], uid[24];
	const char *rec_id = NULL;
	const char *p[8];
	enum api_err e;
	int64_t new_id;
	PGresult *res;
	int st;

	if (r->body_len > 0) {
		e = api_body_json(r, &body);
		if (e != API_OK)
			return e;
	}
	if (body && json_object_object_get_ex(body, "recommendation_id", &v) && v) {
		if (!json_object_is_type(v, json_type_int)) {
			json_object_put(body);
			return api_fail(r, API_UNPROCESSABLE, "validation_failed",
					"recommendation_id must be an integer");
		}
		snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_object_get_int64(v));
		rec_id = idbuf;
	}
	if (body && json_object_object_get_ex(body, "version", &v) && v) {
		if (!json_object_is_type(v, json_type_int)) {
			json_object_put(body);
			return api_fail(r, API_UNPROCESSABLE, "validation_failed",
					"version must be an integer");
		}
		snprintf(ver, sizeof ver, "%d", json_object_get_int(v));
	}
	json_object_put(body);

	if (db_begin(r->db) < 0)
		return api_db_fail(r);
	if (rec_id) {
		char stored_ver[16];
		st = load_stored(r->db, model, rec_id, vals, stored_ver, sizeof stored_ver);
		if (st != 0) {
			db_rollback(r->db);
			return st > 0 ? api_fail(r, API_NOT_FOUND, "recommendation_not_found",
						 "no such recommendation for this model")
				      : api_db_fail(r);
		}
		if (!ver[0])
			snprintf(ver, sizeof ver, "%s", stored_ver);
	} else {
		struct rec_config cfg;
		json_object *rs, *it;

		db_recommend_config(&cfg);
		rec = db_recommend_model(r->db, &cfg, model, NULL, NULL, 100, &st);
		if (!rec) {
			db_rollback(r->db);
			return st > 0 ? api_fail(r, API_NOT_FOUND, "model_not_found", "no model with this id")
				      : api_db_fail(r);
		}
		if (json_object_object_get_ex(rec, "verdict", &v) &&
		    strcmp(json_object_get_string(v), "no_data") == 0) {
			json_object_put(rec);
			db_rollback(r->db);
			return api_fail(r, API_UNPROCESSABLE, "no_data",
					"no finished instance of this model has metrics yet");
		}
		json_object_object_get_ex(rec, "resources", &rs);
		for (int k = 0; k < REC_RES_MAX; k++) {
			json_object_object_get_ex(rs, rec_resource_name((enum rec_resource)k), &it);
			json_object_object_get_ex(it, "recommended", &v);
			snprintf(vals[k], 16, "%d", json_object_get_int(v));
		}
		if (!ver[0] && json_object_object_get_ex(rec, "model_version", &v))
			snprintf(ver, sizeof ver, "%d", json_object_get_int(v));
		if (db_recommend_store(r->db, rec, &new_id) < 0) {
			json_object_put(rec);
			db_rollback(r->db);
			return api_db_fail(r);
		}
		json_object_put(rec);
		snprintf(idbuf, sizeof idbuf, "%lld", (long long)new_id);
		rec_id = idbuf;
	}
	p[0] = model;
	p[1] = ver;
	for (int k = 0; k < REC_RES_MAX; k++)
		p[2 + k] = vals[k];
	res = db_prep(r->db, "rec_apply_model",
		      "UPDATE model SET cpu_request_m = $3::int, cpu_limit_m = $4::int,"
		      " memory_request_mib = $5::int, memory_limit_mib = $6::int,"
		      " version = version + 1, updated_at = now()"
		      " WHERE id = $1 AND version = $2::int"
		      " RETURNING version, cpu_request_m, cpu_limit_m, memory_request_mib,"
		      " memory_limit_mib, pg_notify('model_changed', id)",
		      6, p);
	if (!res) {
		db_rollback(r->db);
		return api_db_fail(r);
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(r->db);
		return api_fail(r, API_CONFLICT, "stale_version",
				"the model changed since this recommendation was computed; reload and retry");
	}
	out = json_object_new_object();
	json_object_object_add(out, "model_id", json_object_new_string(model));
	jx_add_pg_int(out, "version", res, 0, 0);
	for (int k = 0; k < REC_RES_MAX; k++)
		jx_add_pg_int(out, rec_resource_name((enum rec_resource)k), res, 0, 1 + k);
	PQclear(res);
	snprintf(uid, sizeof uid, "%lld", (long long)r->auth.user_id);
	p[0] = rec_id;
	p[1] = r->auth.user_id ? uid : NULL;
	if (db_cmd(r->db, "UPDATE recommendation SET applied_at = now(), applied_by = $2::bigint"
		   " WHERE id = $1::bigint", 2, p) < 0 || db_commit(r->db) < 0) {
		json_object_put(out);
		db_rollback(r->db);
		return api_db_fail(r);
	}
	json_object_object_add(out, "recommendation_id", json_object_new_int64(strtoll(rec_id, NULL, 10)));
	log_info("recommend msg=\"applied\" model=%s recommendation=%s user=%lld", model, rec_id,
		 (long long)r->auth.user_id);
	return api_json(r, 200, out);
}

const struct api_route api_recommend_routes[] = {
	{"GET", "/api/recommendations", ACCESS_ADMIN, rec_list},
	{"GET", "/api/recommendations/history", ACCESS_ADMIN, rec_history},
	{"POST", "/api/models/{}/apply-recommendation", ACCESS_ADMIN, rec_apply},
	{0},
};
