/*
 * db_work_store.c — storing a request's results and ending it (complete,
 * finish, fail), and the input cache.
 *
 * Runs in: modelhubd children and supervisor. Called by: runner.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: work_request, work_request_input, work_request_result,
 * input_cache, input_failure (the negative cache, sql/009), instance_event
 * (the CHUNK_SENT event riding on a store).
 */
#include "db/db_work.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGresult *db_work_missing(struct db *db, int64_t id, int none_stored)
{
	const char *p[1] = {DB_INT(id)};

	if (none_stored)
		return db_prep(db, "work_inputs",
			       "SELECT ordinal, input FROM work_request_input WHERE request_id = $1"
			       " ORDER BY ordinal",
			       1, p);
	return db_prep(db, "work_missing",
		       "SELECT i.ordinal, i.input FROM work_request_input i WHERE i.request_id = $1"
		       " AND NOT EXISTS (SELECT 1 FROM work_request_result r"
		       "   WHERE r.request_id = i.request_id AND r.ordinal = i.ordinal)"
		       " ORDER BY i.ordinal",
		       1, p);
}

/* The error of an input whose record has no value (see WORK_STORE_OK). */
#define WORK_NO_RESULT "no result: the model returned no values for this input" \
	" (for a molecule: it could not be read)"

/* The end of a request, given its result and error counts n and e (SQL
 * expressions over CTE c): COMPLETED, or FAILED RESULT_MISMATCH / MODEL_ERROR
 * ($5: last error; the counters of struct work_counts: $3, $4 and the
 * parameters named). Shared by the final store and db_work_complete.
 * finished_at is the clock when the row is updated, after the last results
 * went in, not the statement's start (now()): it says when the result
 * became complete. */
#define WORK_END_SET(ISO, SCREENED, KNOWN) \
	"  status = CASE WHEN c.n < w.input_count OR c.e >= w.input_count" \
	"   THEN 'FAILED' ELSE 'COMPLETED' END," \
	"  failure_reason = CASE WHEN c.n < w.input_count THEN 'RESULT_MISMATCH'" \
	"   WHEN c.e >= w.input_count THEN 'MODEL_ERROR' END," \
	"  failure_detail = CASE WHEN c.n < w.input_count" \
	"   THEN format('%s results for %s inputs', c.n, w.input_count)" \
	"   WHEN c.e >= w.input_count THEN 'every input failed; last error: '" \
	"    || COALESCE(NULLIF($5, ''), '" WORK_NO_RESULT "') END," \
	"  finished_at = clock_timestamp(), lease_expires_at = NULL," \
	"  model_calls = w.model_calls + $3::int, extra_calls = w.extra_calls + $4::int," \
	"  isolation_ms = w.isolation_ms + " ISO "::bigint," \
	"  screened_count = w.screened_count + " SCREENED "::int," \
	"  known_bad_count = w.known_bad_count + " KNOWN "::int," \
	"  done_count = c.n, error_count = c.e"

/* Insert the records of parameter ROWS (a JSON array of [ordinal, record,
 * error]) only while the request is RUNNING for this runner ($1 id, $2
 * runner id); CTE ins says which went in. A record without a value (null,
 * or an object whose members are all null) and no error is a "no result"
 * (issue 19 #2: the demo models answer an unreadable molecule so): it gets
 * the error WORK_NO_RESULT, so it is counted in error_count and named in
 * the downloads instead of passing as empty cells. */
#define WORK_STORE_OK(ROWS) \
	"WITH ok AS (SELECT 1 FROM work_request" \
	"  WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2)," \
	" ins AS (INSERT INTO work_request_result (request_id, ordinal, record, error)" \
	"  SELECT $1, (e->>0)::int, NULLIF(e->1, 'null'::jsonb), COALESCE(e->>2," \
	"   CASE WHEN coalesce(jsonb_typeof(e->1), 'null') = 'null'" \
	"    OR jsonb_typeof(e->1) = 'object' AND NOT EXISTS (SELECT 1" \
	"     FROM jsonb_each(e->1) x WHERE jsonb_typeof(x.value) <> 'null')" \
	"   THEN '" WORK_NO_RESULT "' END)" \
	"  FROM jsonb_array_elements(" ROWS "::jsonb) e WHERE EXISTS (SELECT 1 FROM ok)" \
	"  ON CONFLICT DO NOTHING RETURNING (error IS NOT NULL) AS err)"

int db_work_store_send(struct db *db, int64_t id, const char *runner_id, const char *rows,
		       int lease_s, int64_t event_inst, const char *event_detail,
		       const struct work_counts *add, const struct work_end *end)
{
	static const struct work_counts zero;
	const struct work_counts *a = add ? add : &zero;
	const char *ids = DB_INT(id);
	const char *p[11] = {ids, runner_id, rows, DB_INT(lease_s),
			     event_inst > 0 ? DB_INT(event_inst) : NULL,
			     event_detail ? event_detail : "{}", DB_INT(a->calls),
			     DB_INT(a->extra_calls), DB_INT(a->isolation_ms), DB_INT(a->screened),
			     DB_INT(a->known_bad)};

	if (end) {
		/* the last chunk: stored and the request ended in one statement
		 * (the results counted are those before it plus its own: the
		 * statement's parts share one snapshot) */
		const char *pe[9] = {ids, runner_id, DB_INT(a->calls), DB_INT(a->extra_calls),
				     end->last_error ? end->last_error : "", rows,
				     DB_INT(a->isolation_ms), DB_INT(a->screened),
				     DB_INT(a->known_bad)};

		return db_send(db, "work_store_end",
			       WORK_STORE_OK("$6") ","
			       " c AS (SELECT (SELECT count(*) FROM work_request_result"
			       "   WHERE request_id = $1)::int + (SELECT count(*) FROM ins)::int AS n,"
			       "  (SELECT count(*) FROM work_request_result WHERE request_id = $1"
			       "   AND error IS NOT NULL)::int + (SELECT count(*) FROM ins WHERE err)::int AS e)"
			       " UPDATE work_request w SET" WORK_END_SET("$7", "$8", "$9")
			       " FROM c WHERE w.id = $1 AND w.status = 'RUNNING' AND w.runner_id = $2"
			       " RETURNING (SELECT count(*) FROM ins), w.status",
			       9, pe);
	}
	return db_send(db, "work_store",
		       WORK_STORE_OK("$3") ","
		       " ev AS (INSERT INTO instance_event (instance_id, kind, detail)"
		       "  SELECT $5::bigint, 'CHUNK_SENT', $6::jsonb"
		       "  WHERE $5::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM ok))"
		       " UPDATE work_request SET done_count = done_count + (SELECT count(*) FROM ins),"
		       "  error_count = error_count + (SELECT count(*) FROM ins WHERE err),"
		       "  model_calls = model_calls + $7::int, extra_calls = extra_calls + $8::int,"
		       "  isolation_ms = isolation_ms + $9::bigint,"
		       "  screened_count = screened_count + $10::int,"
		       "  known_bad_count = known_bad_count + $11::int,"
		       "  lease_expires_at = now() + make_interval(secs => $4::int)"
		       " WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2"
		       " RETURNING (SELECT count(*) FROM ins), NULL::text",
		       11, p);
}

int db_work_store_collect(struct db *db, char *status_out, size_t status_size)
{
	PGresult *r = db_collect(db);
	int rc;

	if (!r)
		return -1;
	rc = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -2;
	if (rc >= 0 && !PQgetisnull(r, 0, 1))
		snprintf(status_out, status_size, "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	return rc;
}

int db_work_complete(struct db *db, int64_t id, const char *runner_id,
		     const struct work_counts *add, const char *last_error, char *status_out,
		     size_t status_size)
{
	const char *p[8] = {DB_INT(id), runner_id, DB_INT(add->calls), DB_INT(add->extra_calls),
			    last_error ? last_error : "", DB_INT(add->isolation_ms),
			    DB_INT(add->screened), DB_INT(add->known_bad)};
	PGresult *r;
	int rc = 0;

	r = db_prep(db, "work_complete",
		    "WITH c AS (SELECT count(*)::int AS n,"
		    "  (count(*) FILTER (WHERE error IS NOT NULL))::int AS e"
		    "  FROM work_request_result WHERE request_id = $1)"
		    " UPDATE work_request w SET" WORK_END_SET("$6", "$7", "$8")
		    " FROM c WHERE w.id = $1 AND w.status = 'RUNNING' AND w.runner_id = $2"
		    " RETURNING w.status, w.failure_reason",
		    8, p);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		snprintf(status_out, status_size, "%s", PQgetvalue(r, 0, 0));
		rc = 1;
	}
	PQclear(r);
	return rc;
}

int db_work_finish(struct db *db, int64_t id, const char *runner_id, const char *status,
		   const char *reason, const char *detail, const struct work_counts *add)
{
	const char *p[10] = {DB_INT(id), runner_id, status, reason, detail, DB_INT(add->calls),
			     DB_INT(add->extra_calls), DB_INT(add->isolation_ms),
			     DB_INT(add->screened), DB_INT(add->known_bad)};

	return db_affected(db_prep(db, "work_finish",
				"UPDATE work_request SET status = $3, failure_reason = $4, failure_detail = $5,"
				" finished_at = now(), lease_expires_at = NULL,"
				" model_calls = model_calls + $6::int, extra_calls = extra_calls + $7::int,"
				" isolation_ms = isolation_ms + $8::bigint,"
				" screened_count = screened_count + $9::int,"
				" known_bad_count = known_bad_count + $10::int,"
				" done_count = (SELECT count(*) FROM work_request_result WHERE request_id = $1),"
				" error_count = (SELECT count(*) FROM work_request_result"
				"   WHERE request_id = $1 AND error IS NOT NULL)"
				" WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2",
				10, p));
}

PGresult *db_work_known_bad(struct db *db, const char *model_id, const char *version,
			    const char *keys_json)
{
	const char *p[3] = {model_id, version, keys_json};

	return db_prep(db, "work_known_bad",
		       "SELECT k.o, f.error FROM jsonb_array_elements_text($3::jsonb)"
		       "  WITH ORDINALITY AS k(key, o)"
		       " JOIN input_failure f ON f.model_id = $1 AND f.model_version = $2"
		       "  AND f.input_key = decode(k.key, 'hex') ORDER BY k.o",
		       3, p);
}

int db_work_known_bad_put(struct db *db, const char *model_id, const char *version,
			  const char *rows)
{
	const char *p[3] = {model_id, version, rows};

	return db_affected(db_prep(db, "work_known_bad_put",
				"INSERT INTO input_failure (model_id, model_version, input_key, error)"
				" SELECT $1, $2, decode(e->>0, 'hex'), e->>1"
				" FROM jsonb_array_elements($3::jsonb) e"
				" ON CONFLICT (model_id, model_version, input_key)"
				" DO UPDATE SET error = EXCLUDED.error, created_at = now()",
				3, p));
}

int db_work_fail_disabled(struct db *db, const char *model_id)
{
	const char *p[1] = {model_id};

	return db_affected(db_prep(db, "work_fail_disabled",
				"UPDATE work_request w SET status = 'FAILED', failure_reason = 'MODEL_DISABLED',"
				" failure_detail = 'model ' || w.model_id || ' is disabled', finished_at = now(),"
				" runner_id = NULL, lease_expires_at = NULL"
				" FROM model m WHERE m.id = w.model_id AND NOT m.enabled"
				" AND w.model_id = $1 AND w.status = 'QUEUED'",
				1, p));
}

PGresult *db_work_cache_candidates(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	/* never cache null records, all-null records (an invalid input) or
	 * per-input errors: upstream cached nulls forever */
	return db_prep(db, "work_cache_candidates",
		       "SELECT i.input, r.record::text FROM work_request_result r"
		       " JOIN work_request_input i ON i.request_id = r.request_id AND i.ordinal = r.ordinal"
		       " WHERE r.request_id = $1 AND NOT r.cached AND r.record IS NOT NULL"
		       " AND r.error IS NULL AND CASE WHEN jsonb_typeof(r.record) = 'object'"
		       "   THEN EXISTS (SELECT 1 FROM jsonb_each(r.record) e"
		       "     WHERE jsonb_typeof(e.value) <> 'null')"
		       "   ELSE jsonb_typeof(r.record) <> 'null' END"
		       " ORDER BY r.ordinal",
		       1, p);
}

int db_work_cache_put(struct db *db, const char *model_id, const char *version, int64_t user_id,
		      const char *rows)
{
	const char *p[4] = {model_id, version, DB_INT(user_id), rows};

	return db_affected(db_prep(db, "work_cache_put",
				"INSERT INTO input_cache (model_id, model_version, input_key, input, record, user_id)"
				" SELECT $1, $2, decode(e->>0, 'hex'), e->>1, e->2, $3::bigint"
				" FROM jsonb_array_elements($4::jsonb) e ON CONFLICT DO NOTHING",
				4, p));
}
