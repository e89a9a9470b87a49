/*
 * db_recommend.h — recommendation data: load the finished-instance metrics
 * a recommendation is computed from, store computed recommendations, read
 * their history, apply one to its model.
 *
 * Runs in: modelhub-fcgi workers (GET /api/recommendations, history, apply)
 * and the janitor (nightly run). Called by: fcgi/api_recommend.c,
 * hubd/janitor.c. The engine (recommend/recommend.h) runs in the caller;
 * this file only fills its input type and stores its result.
 * Owns: nothing beyond each call; arrays and results returned belong to the
 * caller as documented per function.
 */
#ifndef MH_DB_RECOMMEND_H
#define MH_DB_RECOMMEND_H

#include <stdint.h>

#include "db/db.h"
#include "recommend/recommend.h"

/* Outcome of the loads and of apply. */
enum db_rec_status {
	DB_REC_ERROR = -1,   /* database error (logged) */
	DB_REC_OK = 0,
	DB_REC_NOT_FOUND,    /* no such model / no such recommendation of it */
	DB_REC_STALE,        /* apply: the model's version moved on */
};

/* Load model_id and its finished instances with metrics (persisted_at in
 * [from, to], ISO dates/timestamps or NULL; newest first; at most limit,
 * clamped by rec_limit). Fills what rep is computed against and over
 * (model_id, model_version, current, computed_at = now(), from, to, limit;
 * result and buckets zeroed) and *in, malloc'd (caller frees, also when
 * *n = 0 or on error). Missing aggregates (NULL) are loaded as 0.
 * OK, NOT_FOUND (no such model) or ERROR. */
enum db_rec_status db_recommend_load(struct db *db, const char *model_id, const char *from,
				     const char *to, int limit, struct rec_report *rep,
				     struct rec_instance **in, int *n);

/* Insert rep into table recommendation with detail_json (its rendering)
 * as the detail column; *id_out set when not NULL. 0 / -1. */
int db_recommend_store(struct db *db, const struct rec_report *rep, const char *detail_json,
		       int64_t *id_out);

/* Model ids in id order: all of them, or the enabled ones. PGresult with
 * one column (caller PQclear()s) or NULL on error. */
PGresult *db_recommend_models(struct db *db, int enabled_only);

/* Stored recommendations, newest first (model_id NULL: all models).
 * Columns: 0 id, 1 model_id, 2 computed_at, 3 window_from, 4 window_to,
 * 5 sample_count, 6 verdict, 7-10 current values and 11-14 recommended
 * values (enum rec_resource order), 15 applied_at, 16 applied_by,
 * 17 detail (JSON). Times ISO 8601 UTC. Caller PQclear()s; NULL on error. */
PGresult *db_recommend_history(struct db *db, const char *model_id, int limit);

/* A stored recommendation of model_id: its recommended values and the
 * model version it was computed against. OK, NOT_FOUND or ERROR. */
enum db_rec_status db_recommend_stored(struct db *db, const char *model_id, int64_t rec_id,
				       int vals[REC_RES_MAX], int *version);

/* Set the model's resources to vals if its version is still `version`
 * (version + 1, NOTIFY model_changed) and mark recommendation rec_id
 * applied by user_id (0: nobody). out[] and *new_version get the stored
 * values. OK, STALE (nothing written) or ERROR. Run inside a transaction. */
enum db_rec_status db_recommend_apply(struct db *db, const char *model_id, int version,
				      const int vals[REC_RES_MAX], int64_t rec_id,
				      int64_t user_id, int out[REC_RES_MAX], int *new_version);

/* Claim today's nightly run: 1 when the UTC time of day at ("HH:MM") has
 * passed since the last run (or there was none) and this caller now owns
 * the run, 0 when not due (or the hub lease is no longer held with token,
 * db_lead.h), -1 on error. Atomic across replicas. */
int db_recommend_nightly_claim(struct db *db, int64_t token, const char *at);

/* "Size instances from the request" (sql/014): 1 when model_id opted in,
 * 0 when not (or no such model), -1 on error. */
int db_recommend_sizing_on(struct db *db, const char *model_id);

/* Record on a REQUESTED instance row the resources it is started with
 * (enum rec_resource order; <= 0: NULL, e.g. no memory limit), the request
 * size it was sized for and the largest call it gets (<= 0: NULL, the
 * hub's chunk size), also as snapshot.sized_from_request (shown by the
 * instances API). 0 / -1. */
int db_recommend_sized(struct db *db, int64_t inst_id, const int res[REC_RES_MAX], int inputs,
		       int chunk);

#endif
