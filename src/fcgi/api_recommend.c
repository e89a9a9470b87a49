/*
 * api_recommend.c — resource recommendations API (issue 7):
 *   GET  /api/recommendations?model_id=&from=&to=&limit=   computed on demand
 *   GET  /api/recommendations/history?model_id=&limit=     stored (nightly) ones
 *   POST /api/models/{id}/apply-recommendation             one-click apply
 *
 * Runs in: modelhub-fcgi workers. Called by: the router (admin routes only).
 * Owns: per-request JSON objects and the loaded instance arrays. Loading
 * and storing are in db/db_recommend.c, the computation in the pure engine
 * (recommend/recommend.h), the JSON shape in recommend/rec_json.c (all
 * three shared with the janitor's nightly run).
 */
#include "fcgi/api.h"
#include "db/db_recommend.h"
#include "lib/log.h"
#include "recommend/rec_json.h"
#include "autoscale/as_config.h"
#include "metrics/view.h"

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

/* Load and compute the recommendation of model into *rep. */
static enum db_rec_status compute(struct db *db, const struct rec_config *cfg, const char *model,
				  const char *from, const char *to, int limit,
				  struct rec_report *rep)
{
	struct rec_instance *in;
	int n;
	enum db_rec_status st = db_recommend_load(db, model, from, to, limit, rep, &in, &n);

	if (st == DB_REC_OK)
		rec_report_compute(cfg, in, n, rep);
	free(in);
	return st;
}

/* GET /api/recommendations for every model: {"items":[...]}. */
/* The engine's settings with the node caps of this cluster
 * (as_config_rec_caps: node groups, else the nodes the segment holds). */
static void rec_settings(struct rec_config *cfg)
{
	struct rec_node seen[64];

	rec_config_read(cfg);
	as_config_rec_caps(cfg, seen, view_node_caps(api_seg(), seen, 64));
}

static enum api_err list_all(struct api_req *r, const struct rec_config *cfg, const char *from,
			     const char *to, int limit)
{
	PGresult *models = db_recommend_models(r->db, 0);
	struct rec_report rep;
	json_object *items, *out;

	if (!models)
		return api_db_fail(r);
	items = json_object_new_array();
	for (int i = 0; i < PQntuples(models); i++) {
		enum db_rec_status st = compute(r->db, cfg, PQgetvalue(models, i, 0), from, to, limit,
						&rep);
		if (st == DB_REC_ERROR) {
			PQclear(models);
			json_object_put(items);
			return api_db_fail(r);
		}
		if (st == DB_REC_OK)
			json_object_array_add(items, rec_report_json(&rep));
	}
	PQclear(models);
	out = json_object_new_object();
	json_object_object_add(out, "items", items);
	return api_json(r, 200, out);
}

static enum api_err rec_list(struct api_req *r)
{
	const char *model = api_query(r, "model_id");
	const char *from = api_query(r, "from"), *to = api_query(r, "to");
	int limit = parse_limit(api_query(r, "limit"), REC_DEFAULT_LIMIT, REC_MAX_LIMIT);
	struct rec_config cfg;
	struct rec_report rep;
	json_object *fields = json_object_new_object();
	enum db_rec_status st;

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
	rec_settings(&cfg);
	if (!model)
		return list_all(r, &cfg, from, to, limit);
	st = compute(r->db, &cfg, model, from, to, limit, &rep);
	if (st != DB_REC_OK)
		return st == DB_REC_NOT_FOUND
			       ? api_fail(r, API_NOT_FOUND, "model_not_found", "no model with this id")
			       : api_db_fail(r);
	return api_json(r, 200, rec_report_json(&rep));
}

static json_object *history_item(PGresult *res, int i)
{
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
	return o;
}

static enum api_err rec_history(struct api_req *r)
{
	int limit = parse_limit(api_query(r, "limit"), 50, 500);
	PGresult *res;
	json_object *items, *out;

	if (limit < 0)
		return api_fail(r, API_UNPROCESSABLE, "validation_failed", "limit must be 1..500");
	res = db_recommend_history(r->db, api_query(r, "model_id"), limit);
	if (!res)
		return api_db_fail(r);
	items = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_object_array_add(items, history_item(res, i));
	PQclear(res);
	out = json_object_new_object();
	json_object_object_add(out, "items", items);
	return api_json(r, 200, out);
}

/* What POST .../apply-recommendation applies: the stored recommendation
 * rec_id (when stored; otherwise one computed now and stored) at model
 * version `version` (when has_version; otherwise the version the
 * recommendation was computed against). */
struct apply_req {
	int stored, has_version;
	int64_t rec_id;
	int version;
	int vals[REC_RES_MAX];
	int has_expect;          /* the values the admin saw (body "expect") */
	int expect[REC_RES_MAX];
	char from[40], to[40];   /* the window the admin saw (body "window") */
	int limit;
};

/* "expect": {cpu_request_m: int, ...} (all four) and "window": {from, to,
 * limit} of the body: apply exactly what was shown (issue 16). */
static enum api_err apply_shown(struct api_req *r, json_object *body, struct apply_req *a)
{
	json_object *ex, *w, *v;

	a->limit = REC_DEFAULT_LIMIT;
	if (json_object_object_get_ex(body, "window", &w) && json_object_is_type(w, json_type_object)) {
		if (json_object_object_get_ex(w, "from", &v) && json_object_is_type(v, json_type_string))
			snprintf(a->from, sizeof a->from, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(w, "to", &v) && json_object_is_type(v, json_type_string))
			snprintf(a->to, sizeof a->to, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(w, "limit", &v) && json_object_is_type(v, json_type_int))
			a->limit = rec_limit(json_object_get_int(v));
	}
	if (!valid_when(a->from[0] ? a->from : NULL) || !valid_when(a->to[0] ? a->to : NULL))
		return api_fail(r, API_UNPROCESSABLE, "validation_failed",
				"window from/to: expected YYYY-MM-DD[THH:MM:SS]");
	if (!json_object_object_get_ex(body, "expect", &ex) || !ex)
		return API_OK;
	for (int k = 0; k < REC_RES_MAX; k++) {
		if (!json_object_is_type(ex, json_type_object) ||
		    !json_object_object_get_ex(ex, rec_resource_name((enum rec_resource)k), &v) ||
		    !json_object_is_type(v, json_type_int))
			return api_fail(r, API_UNPROCESSABLE, "validation_failed",
					"expect must give the four recommended values as integers");
		a->expect[k] = json_object_get_int(v);
	}
	a->has_expect = 1;
	return API_OK;
}

/* Parse the optional body {"recommendation_id": int, "version": int}. */
static enum api_err apply_body(struct api_req *r, struct apply_req *a)
{
	json_object *body = NULL, *v;
	enum api_err e;

	memset(a, 0, sizeof *a);
	a->limit = REC_DEFAULT_LIMIT;
	if (r->body_len == 0)
		return API_OK;
	e = api_body_json(r, &body);
	if (e != API_OK)
		return e;
	if (body && json_object_object_get_ex(body, "recommendation_id", &v) && v) {
		if (!json_object_is_type(v, json_type_int)) {
			json_object_put(body);
			return api_fail(r, API_UNPROCESSABLE, "validation_failed",
					"recommendation_id must be an integer");
		}
		a->rec_id = json_object_get_int64(v);
		a->stored = 1;
	}
	if (body && json_object_object_get_ex(body, "version", &v) && v) {
		if (!json_object_is_type(v, json_type_int)) {
			json_object_put(body);
			return api_fail(r, API_UNPROCESSABLE, "validation_failed",
					"version must be an integer");
		}
		a->version = json_object_get_int(v);
		a->has_version = 1;
	}
	e = body ? apply_shown(r, body, a) : API_OK;
	json_object_put(body);
	return e;
}

/* Compute the model's recommendation now and store it (inside the caller's
 * transaction); a->vals, a->rec_id and (unless given) a->version are set.
 * API_OK or the failure sent. */
static enum api_err apply_fresh(struct api_req *r, const char *model, struct apply_req *a)
{
	struct rec_config cfg;
	struct rec_report rep;
	enum db_rec_status st;
	json_object *detail;
	int rc;

	rec_settings(&cfg);
	st = compute(r->db, &cfg, model, a->from[0] ? a->from : NULL, a->to[0] ? a->to : NULL,
		     a->limit, &rep);
	if (st != DB_REC_OK)
		return st == DB_REC_NOT_FOUND
			       ? api_fail(r, API_NOT_FOUND, "model_not_found", "no model with this id")
			       : api_db_fail(r);
	if (rep.result.verdict == REC_NO_DATA)
		return api_fail(r, API_UNPROCESSABLE, "no_data",
				"no finished instance of this model has metrics yet");
	for (int k = 0; k < REC_RES_MAX; k++)
		a->vals[k] = rep.result.item[k].recommended;
	if (!a->has_version)
		a->version = rep.model_version;
	detail = rec_report_json(&rep);
	rc = detail ? db_recommend_store(r->db, &rep,
					 json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN),
					 &a->rec_id)
		    : -1;
	json_object_put(detail);
	return rc < 0 ? api_db_fail(r) : API_OK;
}

/* The values to apply: the stored recommendation or a fresh one. */
static enum api_err apply_values(struct api_req *r, const char *model, struct apply_req *a)
{
	enum db_rec_status st;
	int stored_ver;

	if (!a->stored)
		return apply_fresh(r, model, a);
	st = db_recommend_stored(r->db, model, a->rec_id, a->vals, &stored_ver);
	if (st != DB_REC_OK)
		return st == DB_REC_NOT_FOUND
			       ? api_fail(r, API_NOT_FOUND, "recommendation_not_found",
					  "no such recommendation for this model")
			       : api_db_fail(r);
	if (!a->has_version)
		a->version = stored_ver;
	return API_OK;
}

/* The values to apply are those the admin saw, or 409. */
static enum api_err apply_check(struct api_req *r, const struct apply_req *a)
{
	if (!a->has_expect)
		return API_OK;
	for (int k = 0; k < REC_RES_MAX; k++)
		if (a->vals[k] != a->expect[k])
			return api_fail(r, API_CONFLICT, "recommendation_changed",
					"the recommendation changed since it was shown (new instances finished); reload and check again");
	return API_OK;
}

static enum api_err rec_apply(struct api_req *r)
{
	const char *model = r->params[0];
	struct apply_req a;
	int got[REC_RES_MAX], version;
	enum db_rec_status st;
	enum api_err e;
	json_object *out;

	e = apply_body(r, &a);
	if (e != API_OK)
		return e;
	if (db_begin(r->db) < 0)
		return api_db_fail(r);
	e = apply_values(r, model, &a);
	if (e == API_OK)
		e = apply_check(r, &a);
	if (e != API_OK) {
		db_rollback(r->db);
		return e;
	}
	st = db_recommend_apply(r->db, model, a.version, a.vals, a.rec_id, r->auth.user_id, got,
				&version);
	if (st != DB_REC_OK || db_commit(r->db) < 0) {
		db_rollback(r->db);
		return st == DB_REC_STALE
			       ? api_fail(r, API_CONFLICT, "stale_version",
					  "the model changed since this recommendation was computed; reload and retry")
			       : api_db_fail(r);
	}
	out = json_object_new_object();
	json_object_object_add(out, "model_id", json_object_new_string(model));
	json_object_object_add(out, "version", json_object_new_int(version));
	for (int k = 0; k < REC_RES_MAX; k++)
		json_object_object_add(out, rec_resource_name((enum rec_resource)k),
				       json_object_new_int(got[k]));
	json_object_object_add(out, "recommendation_id", json_object_new_int64(a.rec_id));
	log_info("recommend msg=\"applied\" model=%s recommendation=%lld user=%lld", model,
		 (long long)a.rec_id, (long long)r->auth.user_id);
	return api_json(r, 200, out);
}

const struct api_route api_recommend_routes[] = {
	{"GET", "/api/recommendations", ACCESS_ADMIN, rec_list},
	{"GET", "/api/recommendations/history", ACCESS_ADMIN, rec_history},
	{"POST", "/api/models/{}/apply-recommendation", ACCESS_ADMIN, rec_apply},
	{0},
};
