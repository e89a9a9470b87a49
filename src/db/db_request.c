/*
 * db_request.c — work request queries of the API: submit with cache lookup,
 * owner views, admin list, results pages, cancel.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_requests.c.
 * Owns: nothing; returned PGresults belong to the caller.
 * Shared state: inserts work_request/work_request_input rows (status
 * QUEUED) that the runners claim; inserts work_request_result rows with
 * cached = true for cache hits (the runners compute only inputs without a
 * result row); cancel moves QUEUED/RUNNING to CANCELLED under the row lock,
 * so a runner finishing at the same moment either wins (cancel sees a
 * finished request, 409) or finds the request no longer RUNNING.
 *
 * DESIGN: submit is one statement (one round trip, its own transaction)
 * whatever the input count: cache hits are looked up first by joining
 * unnest($keys::text[]) to input_cache, the request row is inserted with
 * its counters (COMPLETED when every input hit), all inputs go in one
 * INSERT ... SELECT FROM unnest($inputs::text[]) WITH ORDINALITY
 * (ordinals are 1-based, in submit order), the hits into results, and the
 * NOTIFY (only for a QUEUED request) is delivered at COMMIT, so a runner
 * never wakes for a request it cannot see yet. The statement returns the
 * request's row, which is the API's answer (no re-read).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_request.h"
#include "lib/log.h"

#define REQ_COLS \
	"id, model_id, status, failure_reason, failure_detail, input_count, done_count, " \
	"cached_count, error_count, attempts, model_calls, extra_calls, has_header, header, " \
	"cache_opt_in, iso(created_at), iso(started_at), iso(finished_at), isolation_ms, " \
	"screened_count, known_bad_count, metadata->'input_columns', metadata->>'model_version'"

/* Owner as two parameters; the unset one is NULL so it never matches. */
static void owner_params(const struct db_owner *o, char *u, char *a, const char **pu,
			 const char **pa)
{
	db_int_text(u, o->user_id);
	db_int_text(a, o->anon_session_id);
	*pu = o->user_id > 0 ? u : NULL;
	*pa = o->user_id > 0 ? NULL : a;
}

char *db_text_array(char *const *v, size_t n)
{
	size_t cap = 3, k = 0;
	char *out;

	/* one allocation of the worst case (every byte escaped): this runs
	 * over every input of a submit, byte by byte through buf_addc it was
	 * a fifth of the submit's CPU */
	for (size_t i = 0; i < n; i++)
		cap += v[i] ? 2 * strlen(v[i]) + 3 : 5;
	out = malloc(cap);
	if (!out)
		return NULL;
	out[k++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			out[k++] = ',';
		if (!v[i]) {
			memcpy(out + k, "NULL", 4);
			k += 4;
			continue;
		}
		out[k++] = '"';
		for (const char *s = v[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				out[k++] = '\\';
			out[k++] = *s;
		}
		out[k++] = '"';
	}
	out[k++] = '}';
	out[k] = '\0';
	return out;
}

int db_request_model(struct db *db, const char *model_id, int *enabled, int *cache_lookup,
		     char *version_out, size_t version_size, int *max_input_chars)
{
	const char *p[1] = {model_id};
	PGresult *res;
	int rc = 1;

	res = db_prep(db, "req_model",
		      "SELECT enabled, cache_enabled AND EXISTS (SELECT 1 FROM input_cache c"
		      "  WHERE c.model_id = m.id AND c.model_version = m.model_version),"
		      " model_version, max_input_chars FROM model m WHERE id = $1", 1, p);
	if (!res)
		return -1;
	if (PQntuples(res) == 1) {
		*enabled = PQgetvalue(res, 0, 0)[0] == 't';
		*cache_lookup = PQgetvalue(res, 0, 1)[0] == 't';
		snprintf(version_out, version_size, "%s", PQgetvalue(res, 0, 2));
		*max_input_chars = atoi(PQgetvalue(res, 0, 3));
		rc = 0;
	}
	PQclear(res);
	return rc;
}

/* Existing request for an idempotency key: 0 found (*id set), 1 none, -1 error. */
static int find_idempotent(struct db *db, const struct db_request_new *rq, int64_t *id)
{
	char u[DB_INT_LEN], a[DB_INT_LEN];
	const char *p[3];
	PGresult *res;
	int rc = 1;

	owner_params(&rq->owner, u, a, &p[0], &p[1]);
	p[2] = rq->idempotency_key;
	res = db_prep(db, "req_idem",
		      "SELECT id FROM work_request WHERE idempotency_key = $3 AND "
		      "((user_id = $1::bigint) OR (anon_session_id = $2::bigint))", 3, p);
	if (!res)
		return -1;
	if (PQntuples(res) > 0) {
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

/* One statement (its own transaction, so the NOTIFY goes out at its
 * commit and only for a request left QUEUED). Cache hits are found
 * first (k), so the request row is inserted with its counters and,
 * when every input hit, COMPLETED. Null records (SQL NULL, JSON null,
 * or an object whose every value is null, which is how models answer
 * an invalid input) are not served from the cache: a null may come
 * from a transient failure, and upstream's cache kept nulls forever
 * (UPSTREAM.md 7.11). */
static const char SQL_SUBMIT[] =
	"WITH k AS (SELECT k.o, c.record "
	" FROM unnest($12::text[]) WITH ORDINALITY AS k(key, o) "
	" JOIN input_cache c ON c.model_id = $1 AND c.model_version = $11 "
	"  AND c.input_key = decode(k.key, 'hex') AND c.record IS NOT NULL "
	"  AND jsonb_typeof(c.record) <> 'null' "
	"  AND jsonb_strip_nulls(c.record) <> '{}'::jsonb), "
	"hc AS (SELECT count(*)::int AS n FROM k), "
	"r AS ("
	" INSERT INTO work_request (model_id, user_id, anon_session_id, has_header, "
	"  header, cache_opt_in, idempotency_key, metadata, input_count, "
	"  cached_count, done_count, status, started_at, finished_at, stored_bytes) "
	" SELECT $1, $2::bigint, $3::bigint, $4::boolean, $5, $6::boolean, $7, "
	/* the model's version at submit, shown on the request and its results */
	"  $8::jsonb || jsonb_build_object('model_version',"
	"   (SELECT model_version FROM model WHERE id = $1)), $9::int, hc.n, hc.n, "
	"  CASE WHEN hc.n >= $9::int THEN 'COMPLETED' ELSE 'QUEUED' END, "
	"  CASE WHEN hc.n >= $9::int THEN now() END, "
	"  CASE WHEN hc.n >= $9::int THEN now() END, $15::bigint FROM hc RETURNING *), "
	"i AS (INSERT INTO work_request_input (request_id, ordinal, input, key, extra) "
	" SELECT r.id, u.o, u.v, u.k, u.x::jsonb FROM r, "
	"  unnest($10::text[], $13::text[], $14::text[]) WITH ORDINALITY AS u(v, k, x, o)), "
	"h AS (INSERT INTO work_request_result (request_id, ordinal, record, cached) "
	" SELECT r.id, k.o, k.record, true FROM r, k), "
	"n AS (SELECT pg_notify('work_queued', $1) FROM r WHERE r.status = 'QUEUED') "
	"SELECT " REQ_COLS ", (SELECT count(*) FROM n) FROM r";

/* The text array literals of one submit (NULL when not used). */
struct submit_arrays {
	char *inputs, *keys, *row_keys, *row_extras;
};

/* SQL_SUBMIT for rq. */
static PGresult *submit_row(struct db *db, const struct db_request_new *rq,
			    const struct submit_arrays *ar)
{
	char u[DB_INT_LEN], a[DB_INT_LEN];
	char sb[DB_INT_LEN];
	const char *p[15];

	owner_params(&rq->owner, u, a, &p[1], &p[2]);
	p[0] = rq->model_id;
	p[3] = rq->has_header ? "t" : "f";
	p[4] = rq->header;
	p[5] = rq->cache_opt_in ? "t" : "f";
	p[6] = rq->idempotency_key;
	p[7] = rq->metadata ? rq->metadata : "{}";
	p[8] = DB_INT(rq->n_inputs);
	p[9] = ar->inputs;
	p[10] = ar->keys ? rq->model_version : NULL;
	p[11] = ar->keys;
	p[12] = ar->row_keys;
	p[13] = ar->row_extras;
	db_int_text(sb, rq->stored_bytes);
	p[14] = sb;
	return db_prep(db, "req_submit", SQL_SUBMIT, 15, p);
}

/* The caller's usage (quota.h), read under the caller's transaction-scoped
 * lock so two submissions of one caller are counted one after the other.
 * Must run inside a transaction. 0 / -1. */
static int quota_usage(struct db *db, const struct db_owner *o, int retention_days,
		       struct quota_use *use)
{
	char u[DB_INT_LEN], a[DB_INT_LEN], key[48];
	const char *p[3];
	PGresult *res;

	owner_params(o, u, a, &p[0], &p[1]);
	snprintf(key, sizeof key, "%s:%s", p[0] ? "u" : "a", p[0] ? u : a);
	p[2] = key;
	/* advisory lock class 29045 (0x7175, "qu"): one caller's submissions */
	res = db_prep(db, "req_quota_lock", "SELECT pg_advisory_xact_lock(29045, hashtext($1))",
		      1, &p[2]);
	if (!res)
		return -1;
	PQclear(res);
	res = db_prep(db, "req_quota_use",
		      "SELECT count(*) FILTER (WHERE status IN ('QUEUED', 'RUNNING')),"
		      " coalesce(sum(input_count) FILTER (WHERE created_at > now() - interval '1 day'), 0),"
		      " coalesce(sum(stored_bytes), 0),"
		      " coalesce(ceil(extract(epoch FROM min(created_at) FILTER (WHERE created_at >"
		      "  now() - interval '1 day') + interval '1 day' - now())), 1),"
		      " coalesce(ceil(extract(epoch FROM min(created_at) FILTER (WHERE stored_bytes > 0)"
		      "  + make_interval(days => $3::int) - now())), 1)"
		      " FROM work_request WHERE user_id = $1::bigint OR anon_session_id = $2::bigint",
		      3, (const char *const[]){p[0], p[1], DB_INT(retention_days)});
	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		return -1;
	}
	use->in_flight = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	use->inputs_day = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	use->stored_bytes = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	use->day_retry_s = strtol(PQgetvalue(res, 0, 3), NULL, 10);
	use->stored_retry_s = strtol(PQgetvalue(res, 0, 4), NULL, 10);
	PQclear(res);
	return 0;
}

static void rollback(struct db *db)
{
	db_cmd(db, "ROLLBACK", 0, NULL);
}

/* With a quota: BEGIN, the caller's lock and usage, the insert, COMMIT.
 * DB_SUBMIT_QUOTA (rolled back), or the insert's row / NULL as
 * submit_row. */
static PGresult *submit_quota(struct db *db, const struct db_request_new *rq,
			      const struct submit_arrays *ar, struct db_quota_refusal *qr, int *refused,
			      int *unique_violation)
{
	PGresult *res;

	*refused = *unique_violation = 0;
	memset(qr, 0, sizeof *qr);
	if (db_begin(db) < 0)
		return NULL;
	if (quota_usage(db, &rq->owner, rq->retention_days, &qr->use) < 0) {
		rollback(db);
		return NULL;
	}
	qr->kind = quota_check(rq->quota, &qr->use, (long)rq->n_inputs, rq->stored_bytes,
			       &qr->retry_s);
	if (qr->kind != QUOTA_OK) {
		rollback(db);
		*refused = 1;
		return NULL;
	}
	res = submit_row(db, rq, ar);
	if (!res || db_commit(db) < 0) {
		*unique_violation = db_is_unique_violation(db);
		PQclear(res);
		rollback(db);
		return NULL;
	}
	return res;
}

enum db_submit_rc db_request_submit(struct db *db, const struct db_request_new *rq,
				    int64_t *id_out, PGresult **row_out,
				    struct db_quota_refusal *qr)
{
	int refused = 0, uv = 0;
	int with_cache = rq->cache_enabled && rq->cache_keys && rq->model_version;
	struct submit_arrays ar = {NULL, NULL, NULL, NULL};
	PGresult *res = NULL;
	enum db_submit_rc rc = DB_SUBMIT_ERROR;
	long hits;

	*row_out = NULL;
	if (rq->idempotency_key) {
		int f = find_idempotent(db, rq, id_out);

		if (f <= 0)
			return f == 0 ? DB_SUBMIT_EXISTING : DB_SUBMIT_ERROR;
	}
	ar.inputs = db_text_array(rq->inputs, rq->n_inputs);
	ar.keys = with_cache ? db_text_array(rq->cache_keys, rq->n_inputs) : NULL;
	ar.row_keys = rq->row_keys ? db_text_array(rq->row_keys, rq->n_inputs) : NULL;
	ar.row_extras = rq->row_extras ? db_text_array(rq->row_extras, rq->n_inputs) : NULL;
	if (!ar.inputs || (with_cache && !ar.keys) || (rq->row_keys && !ar.row_keys) ||
	    (rq->row_extras && !ar.row_extras)) {
		log_error_x("request msg=\"out of memory building inputs\"");
		goto out;
	}
	res = rq->quota ? submit_quota(db, rq, &ar, qr, &refused, &uv) : submit_row(db, rq, &ar);
	if (refused) {
		rc = DB_SUBMIT_QUOTA;
		goto out;
	}
	if (!res) {
		/* Two retries with one key raced: the other insert won. */
		if ((uv || db_is_unique_violation(db)) && rq->idempotency_key &&
		    find_idempotent(db, rq, id_out) == 0)
			rc = DB_SUBMIT_EXISTING;
		goto out;
	}
	if (PQntuples(res) != 1) {
		log_error_x("request msg=\"submit returned no row\"");
		goto out;
	}
	*id_out = strtoll(PQgetvalue(res, 0, DBR_ID), NULL, 10);
	hits = strtol(PQgetvalue(res, 0, DBR_CACHED_COUNT), NULL, 10);
	if (hits > 0)
		log_info("request id=%" PRId64 " model=%s msg=\"cache hits at submit\" hits=%ld inputs=%zu",
			 *id_out, rq->model_id, hits, rq->n_inputs);
	*row_out = res;
	res = NULL;
	rc = DB_SUBMIT_CREATED;
out:
	PQclear(res);
	free(ar.inputs);
	free(ar.keys);
	free(ar.row_keys);
	free(ar.row_extras);
	return rc;
}

PGresult *db_request_get(struct db *db, int64_t id, const struct db_owner *o)
{
	char u[DB_INT_LEN], a[DB_INT_LEN];
	const char *ids = DB_INT(id);
	const char *p[3];

	p[0] = ids;
	owner_params(o, u, a, &p[1], &p[2]);
	return db_prep(db, "req_get",
		       "SELECT " REQ_COLS " FROM work_request WHERE id = $1::bigint AND "
		       "((user_id = $2::bigint) OR (anon_session_id = $3::bigint))", 3, p);
}

/* Filter parameters shared by both lists: $1 status, $2 model, $3 from,
 * $4 to, $5 before id, $6 limit + 1, $7 offset. */
static void filter_params(const struct db_request_filter *f, char bufs[3][DB_INT_LEN], const char **p)
{
	p[0] = f->status;
	p[1] = f->model_id;
	p[2] = f->date_from;
	p[3] = f->date_to;
	p[4] = f->before_id > 0 ? db_int_text(bufs[0], f->before_id) : NULL;
	p[5] = db_int_text(bufs[1], f->limit + 1);
	p[6] = db_int_text(bufs[2], f->offset);
}

#define FILTER_SQL \
	" ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR model_id = $2) " \
	" AND ($3::date IS NULL OR created_at >= ($3::date)::timestamp AT TIME ZONE 'UTC') " \
	" AND ($4::date IS NULL OR created_at < ($4::date + 1)::timestamp AT TIME ZONE 'UTC') " \
	" AND ($5::bigint IS NULL OR id < $5::bigint) "
#define PAGE_SQL " ORDER BY id DESC LIMIT $6::bigint OFFSET $7::bigint"

PGresult *db_request_list(struct db *db, const struct db_owner *o,
			  const struct db_request_filter *f)
{
	char bufs[3][DB_INT_LEN], u[DB_INT_LEN], a[DB_INT_LEN];
	const char *p[9];

	filter_params(f, bufs, p);
	owner_params(o, u, a, &p[7], &p[8]);
	/* Unprepared on purpose: optional filters plan better with the values. */
	return db_exec(db,
		       "SELECT " REQ_COLS " FROM work_request WHERE " FILTER_SQL
		       " AND ((user_id = $8::bigint) OR (anon_session_id = $9::bigint))" PAGE_SQL,
		       9, p);
}

/*
 * The admin list is ordered by (created_at, id) and pages with a keyset on
 * that pair: the cursor is still the last id shown, its created_at looked
 * up (the nearest row at or below it, should that row have been deleted
 * meanwhile). Every filter combination is then one ordered range scan of an
 * index ending in (created_at, id) (sql/013_admin_list.sql), and a one-day
 * filter is a range on created_at, not a walk over every newer row.
 * Unprepared: the optional filters fold away with the values known.
 * bench/admin-list carries a copy of this statement: keep them in step.
 */
PGresult *db_request_list_compat(struct db *db, const struct db_owner *o,
				 const struct db_compat_filter *f)
{
	char u[DB_INT_LEN], a[DB_INT_LEN], idb[DB_INT_LEN], lim[DB_INT_LEN];
	const char *p[8];

	owner_params(o, u, a, &p[0], &p[1]);
	p[2] = f->id > 0 ? db_int_text(idb, f->id) : NULL;
	p[3] = f->model_ids;
	p[4] = f->statuses;
	p[5] = f->from;
	p[6] = f->to;
	p[7] = db_int_text(lim, f->limit);
	return db_exec(db,
		       "SELECT " REQ_COLS " FROM work_request"
		       " WHERE ((user_id = $1::bigint) OR (anon_session_id = $2::bigint))"
		       " AND ($3::bigint IS NULL OR id = $3::bigint)"
		       " AND ($4::text[] IS NULL OR model_id = ANY($4::text[]))"
		       " AND ($5::text[] IS NULL OR status = ANY($5::text[]))"
		       " AND ($6::timestamptz IS NULL OR created_at >= $6::timestamptz)"
		       " AND ($7::timestamptz IS NULL OR created_at < $7::timestamptz)"
		       " ORDER BY id DESC LIMIT $8::bigint", 8, p);
}

PGresult *db_request_admin_list(struct db *db, const struct db_request_filter *f)
{
	char bufs[3][DB_INT_LEN], u[DB_INT_LEN], a[DB_INT_LEN];
	const char *p[9];

	filter_params(f, bufs, p);
	p[7] = f->user_id > 0 ? db_int_text(u, f->user_id) : NULL;
	p[8] = f->anon_session_id > 0 ? db_int_text(a, f->anon_session_id) : NULL;
	return db_exec(db,
		       "SELECT id, model_id, user_id, anon_session_id, status, failure_reason, "
		       " iso(created_at), iso(finished_at), "
		       " CASE status WHEN 'COMPLETED' THEN 'available' WHEN 'FAILED' THEN 'failed' "
		       "  WHEN 'CANCELLED' THEN 'none' ELSE 'pending' END, "
		       " input_count, error_count, model_calls, extra_calls, isolation_ms, "
		       " screened_count, known_bad_count "
		       "FROM work_request WHERE "
		       " ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR model_id = $2) "
		       " AND ($3::date IS NULL OR created_at >= ($3::date)::timestamp AT TIME ZONE 'UTC') "
		       " AND ($4::date IS NULL OR created_at < ($4::date + 1)::timestamp AT TIME ZONE 'UTC') "
		       " AND ($5::bigint IS NULL OR (created_at, id) < ((SELECT c.created_at "
		       "  FROM work_request c WHERE c.id <= $5::bigint ORDER BY c.id DESC LIMIT 1), $5::bigint)) "
		       " AND ($8::bigint IS NULL OR user_id = $8::bigint) "
		       " AND ($9::bigint IS NULL OR anon_session_id = $9::bigint)"
		       " ORDER BY created_at DESC, id DESC LIMIT $6::bigint OFFSET $7::bigint",
		       9, p);
}

enum db_cancel_rc db_request_cancel(struct db *db, int64_t id, const struct db_owner *o,
				    char *status_out)
{
	char u[DB_INT_LEN], a[DB_INT_LEN];
	const char *ids = DB_INT(id);
	const char *p[3];
	PGresult *res;
	enum db_cancel_rc rc;

	p[0] = ids;
	owner_params(o, u, a, &p[1], &p[2]);
	/* The outer SELECT reads the row as it was before the UPDATE (same
	 * snapshot), which is what the 409 reports when nothing was updated. */
	res = db_prep(db, "req_cancel",
		      "WITH c AS (UPDATE work_request SET status = 'CANCELLED', "
		      "  failure_reason = 'CANCELLED', failure_detail = 'cancelled by its owner', "
		      "  finished_at = now(), lease_expires_at = NULL "
		      " WHERE id = $1::bigint AND status IN ('QUEUED', 'RUNNING') AND "
		      " ((user_id = $2::bigint) OR (anon_session_id = $3::bigint)) RETURNING id), "
		      /* the runner running it stops its model call at once */
		      " n AS (SELECT pg_notify('request_cancelled', c.id::text) FROM c) "
		      "SELECT (SELECT count(*) FROM n), w.status FROM (SELECT 1) x "
		      "LEFT JOIN work_request w ON w.id = $1::bigint AND "
		      " ((w.user_id = $2::bigint) OR (w.anon_session_id = $3::bigint))", 3, p);
	if (!res)
		return DB_CANCEL_ERROR;
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		rc = DB_CANCEL_DONE;
	else if (PQgetisnull(res, 0, 1))
		rc = DB_CANCEL_NOT_FOUND;
	else {
		snprintf(status_out, 16, "%s", PQgetvalue(res, 0, 1));
		rc = DB_CANCEL_FINISHED;
	}
	PQclear(res);
	return rc;
}

enum db_cancel_rc db_request_admin_cancel(struct db *db, int64_t id, char *status_out)
{
	const char *p[1] = {DB_INT(id)};
	PGresult *res;
	enum db_cancel_rc rc;

	res = db_prep(db, "req_admin_cancel",
		      "WITH c AS (UPDATE work_request SET status = 'CANCELLED', "
		      "  failure_reason = 'CANCELLED', failure_detail = 'cancelled by an admin', "
		      "  finished_at = now(), lease_expires_at = NULL "
		      " WHERE id = $1::bigint AND status IN ('QUEUED', 'RUNNING') RETURNING model_id) "
		      "SELECT (SELECT count(*) FROM c), w.status FROM (SELECT 1) x "
		      "LEFT JOIN work_request w ON w.id = $1::bigint", 1, p);
	if (!res)
		return DB_CANCEL_ERROR;
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		rc = DB_CANCEL_DONE;
	else if (PQgetisnull(res, 0, 1))
		rc = DB_CANCEL_NOT_FOUND;
	else {
		snprintf(status_out, 16, "%s", PQgetvalue(res, 0, 1));
		rc = DB_CANCEL_FINISHED;
	}
	PQclear(res);
	return rc;
}

PGresult *db_request_result_meta(struct db *db, int64_t id, const struct db_owner *o,
				  int keys_over)
{
	char u[DB_INT_LEN], a[DB_INT_LEN];
	const char *ids = DB_INT(id);
	const char *ko = DB_INT(keys_over);
	const char *p[4];

	p[0] = ids;
	p[3] = ko;
	owner_params(o, u, a, &p[1], &p[2]);
	return db_prep(db, "req_result_meta",
		       "SELECT w.status, w.failure_reason, w.failure_detail, w.model_id, "
		       " m.details->'columns', w.metadata->'columns', "
		       " CASE WHEN w.input_count > $4::int THEN"
		       " (SELECT jsonb_agg(x.k ORDER BY x.ord, x.pos) FROM ("
		       "   SELECT DISTINCT ON (kv.k) kv.k, r.ordinal AS ord, kv.pos "
		       "   FROM work_request_result r, jsonb_object_keys(CASE WHEN "
		       "    jsonb_typeof(r.record) = 'object' THEN r.record ELSE '{}' END) "
		       "    WITH ORDINALITY AS kv(k, pos) "
		       "   WHERE r.request_id = w.id ORDER BY kv.k, r.ordinal, kv.pos) x) END, "
		       " w.input_count, w.metadata->'input_columns', w.metadata->>'model_version' "
		       "FROM work_request w LEFT JOIN model m ON m.id = w.model_id "
		       "WHERE w.id = $1::bigint AND "
		       " ((w.user_id = $2::bigint) OR (w.anon_session_id = $3::bigint))", 4, p);
}

int db_request_results_page(struct db *db, int64_t id, int after, int limit,
			    struct db_results_page *pg)
{
	const char *ids = DB_INT(id);
	const char *p[3] = {ids, DB_INT(after), DB_INT(limit)};

	pg->res = NULL;
	pg->in = db_prep(db, "req_page_inputs",
			 "SELECT ordinal, input, key, extra FROM work_request_input"
			 " WHERE request_id = $1::bigint AND ordinal > $2::int"
			 " ORDER BY ordinal LIMIT $3::int", 3, p);
	if (!pg->in)
		return -1;
	pg->res = db_prep(db, "req_page_results",
			  "SELECT ordinal, record, error, cached FROM work_request_result"
			  " WHERE request_id = $1::bigint AND ordinal > $2::int"
			  " AND ordinal <= $2::int + $3::int ORDER BY ordinal", 3, p);
	if (!pg->res) {
		PQclear(pg->in);
		pg->in = NULL;
		return -1;
	}
	return 0;
}

void db_results_page_clear(struct db_results_page *pg)
{
	PQclear(pg->in);
	PQclear(pg->res);
	pg->in = pg->res = NULL;
}
