/*
 * db_recommend.h — recommendations: load finished-instance metrics, compute
 * with the pure engine (recommend/recommend.h), render JSON, store history,
 * apply to a model.
 *
 * Runs in: modelhub-fcgi workers (GET /api/recommendations, apply) and the
 * janitor (nightly run). Called by: fcgi/api_recommend.c, hubd/janitor.c.
 * Owns: nothing beyond each call; JSON objects returned belong to the caller.
 */
#ifndef MH_DB_RECOMMEND_H
#define MH_DB_RECOMMEND_H

#include <stdint.h>

#include <json-c/json.h>

#include "db/db.h"
#include "recommend/recommend.h"

#define DB_REC_MAX_LIMIT 1000

/* Engine settings from config (recommend.*) with node caps from this
 * machine when not configured. */
void db_recommend_config(struct rec_config *cfg);

/* Compute the recommendation of one model over its finished instances
 * (persisted_at in [from, to], newest first, at most limit). from/to are
 * ISO dates/timestamps or NULL. Returns a JSON object (caller puts it),
 * or NULL with *status: 1 = no such model, -1 = db error. */
json_object *db_recommend_model(struct db *db, const struct rec_config *cfg,
				const char *model_id, const char *from, const char *to,
				int limit, int *status);

/* Store a computed recommendation (the JSON from db_recommend_model) in
 * table recommendation; *id_out set. 0 / -1. */
int db_recommend_store(struct db *db, json_object *rec, int64_t *id_out);

/* Nightly job: if due (recommend.nightly_at, UTC "HH:MM", once per day and
 * once on first run), compute and store for every enabled model. Returns
 * the number stored, 0 when not due, -1 on error. */
int db_recommend_nightly(struct db *db);

#endif
