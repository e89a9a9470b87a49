/*
 * db_work.c — implementation of db_work.h (work requests, instances,
 * janitor sweeps).
 *
 * Runs in: modelhubd children and supervisor. Called by: runner.c,
 * janitor.c, supervisor.c. Owns: nothing beyond the statements it prepares
 * on the caller's connection.
 * Shared state: see db_work.h. Concurrency: claims use FOR UPDATE SKIP
 * LOCKED; the instance limit per model is kept under a transaction-scoped
 * advisory lock (class DB_LOCK_MODEL, key hashtext(model id)), so runners of
 * every replica count and insert instance rows one at a time per model.
 */
#include "db/db_work.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_LOCK_MODEL 0x6d68 /* advisory lock class: per-model instance limit */

#define MODEL_COLS \
	"SELECT enabled, execution_mode, COALESCE(image, ''), image_tag," \
	" array_to_json(local_command)::text, port, cpu_request_m, cpu_limit_m," \
	" memory_request_mib, memory_limit_mib, disable_memory_limit, max_instances," \
	" idle_seconds, cache_enabled, model_version, id FROM model"

static int model_fill(PGresult *r, struct work_model *m);
static void i64(char *buf, size_t n, int64_t v) { snprintf(buf, n, "%lld", (long long)v); }

/* db_prep returns a result to clear; wrap for statements without rows. */
static int cmd(PGresult *r)
{
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

static int affected(PGresult *r)
{
	int n;

	if (!r)
		return -1;
	n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n;
}

/* "{"a","b"}" for model ids (ids cannot hold quotes or backslashes: see the
 * CHECK on model.id), built into a malloc()ed string. */
static char *text_array(const char *const *v, int n)
{
	size_t len = 3;
	char *s, *p;

	for (int i = 0; i < n; i++)
		len += strlen(v[i]) + 3;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*p++ = '{';
	for (int i = 0; i < n; i++) {
		if (strchr(v[i], '"') || strchr(v[i], '\\'))
			continue;
		p += sprintf(p, "%s\"%s\"", p > s + 1 ? "," : "", v[i]);
	}
	*p++ = '}';
	*p = '\0';
	return s;
}

/* The model of the oldest QUEUED request among models that can get an
 * instance now: disabled ones (to fail their requests), ones with an IDLE
 * instance on this replica, or under max_instances (avoids taking a slot
 * only to find the limit). Nothing is locked. 1 into *m, 0 none, -1. */
static int claim_model(struct db *db, const struct work_claim *c, struct work_model *m)
{
	char *arr = text_array(c->models, c->n);
	const char *p[2] = {arr, c->replica_id};
	PGresult *r;

	if (!arr)
		return -1;
	r = db_prep(db, "work_claim_model",
		    MODEL_COLS " WHERE id = (SELECT w.model_id FROM work_request w"
		    " WHERE w.status = 'QUEUED' AND w.model_id IN (SELECT m.id FROM model m"
		    "  WHERE m.id = ANY($1::text[]) AND (NOT m.enabled"
		    "  OR EXISTS (SELECT 1 FROM model_instance i WHERE i.model_id = m.id"
		    "    AND i.state = 'IDLE' AND i.replica_id = $2 AND NOT i.stop_requested)"
		    "  OR (SELECT count(*) FROM model_instance i WHERE i.model_id = m.id"
		    "    AND i.state <> 'TERMINATED') < m.max_instances))"
		    " ORDER BY w.id LIMIT 1)",
		    2, p);
	free(arr);
	return model_fill(r, m);
}

/* The oldest QUEUED request of the model, RUNNING under this runner, and
 * the slot (inst, 0 for none) made its instance, in one statement.
 * started_at is the clock when the row is taken, not now(): a statement
 * that began early but was descheduled would otherwise date its request
 * before later claims. 1, 0 none left, -1 error. */
static int claim_row(struct db *db, const struct work_claim *c, const char *model_id,
		     int64_t inst, struct work_req *out)
{
	char lease[16], tmo[16], ids[24];
	const char *p[5] = {model_id, c->runner_id, lease, tmo, ids};
	PGresult *r;
	int rc = 0;

	snprintf(lease, sizeof lease, "%d", c->lease_s);
	snprintf(tmo, sizeof tmo, "%d", c->request_timeout_s);
	i64(ids, sizeof ids, inst);
	r = db_prep(db, "work_claim",
		    "WITH q AS (UPDATE work_request SET status = 'RUNNING', runner_id = $2,"
		    " attempts = attempts + 1,"
		    " lease_expires_at = now() + make_interval(secs => $3::int),"
		    " started_at = COALESCE(started_at, clock_timestamp()),"
		    " deadline = COALESCE(deadline, now() + make_interval(secs => $4::int)),"
		    " failure_reason = NULL, failure_detail = NULL"
		    " WHERE id = (SELECT id FROM work_request WHERE status = 'QUEUED'"
		    "   AND model_id = $1 ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)"
		    " RETURNING id, model_id, input_count, done_count, attempts, cache_opt_in,"
		    " COALESCE(user_id, 0), extract(epoch FROM deadline - now())),"
		    /* runs whether or not the outer query reads it */
		    " i AS (UPDATE model_instance SET current_request_id = q.id,"
		    "  request_ids = array_append(request_ids, q.id) FROM q"
		    "  WHERE model_instance.id = $5::bigint)"
		    " SELECT * FROM q",
		    5, p);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		out->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		snprintf(out->model_id, sizeof out->model_id, "%s", PQgetvalue(r, 0, 1));
		out->input_count = atoi(PQgetvalue(r, 0, 2));
		out->done_count = atoi(PQgetvalue(r, 0, 3));
		out->attempts = atoi(PQgetvalue(r, 0, 4));
		out->cache_opt_in = PQgetvalue(r, 0, 5)[0] == 't';
		out->user_id = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
		out->deadline_in_s = strtod(PQgetvalue(r, 0, 7), NULL);
		rc = 1;
	}
	PQclear(r);
	return rc;
}

int db_work_handback(struct db *db, int64_t id, const char *runner_id)
{
	char ids[24];
	const char *p[2] = {ids, runner_id};

	i64(ids, sizeof ids, id);
	/* The attempt is not counted; a request never started loses its start. */
	return affected(db_prep(db, "work_handback",
				"UPDATE work_request SET status = 'QUEUED', runner_id = NULL,"
				" lease_expires_at = NULL, attempts = GREATEST(attempts - 1, 0),"
				" started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,"
				" deadline = CASE WHEN attempts <= 1 THEN NULL ELSE deadline END"
				" WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2",
				2, p)) < 0 ? -1 : 0;
}

int db_work_renew(struct db *db, int64_t id, const char *runner_id, int lease_s)
{
	char ids[24], lease[16];
	const char *p[3] = {ids, runner_id, lease};
	int n;

	i64(ids, sizeof ids, id);
	snprintf(lease, sizeof lease, "%d", lease_s);
	n = affected(db_prep(db, "work_renew",
			     "UPDATE work_request SET lease_expires_at = now() + make_interval(secs => $3::int)"
			     " WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2",
			     3, p));
	return n < 0 ? -1 : n > 0;
}

int db_work_status(struct db *db, int64_t id, char *out, size_t outlen)
{
	char ids[24];
	const char *p[1] = {ids};
	PGresult *r;
	int rc = 1;

	i64(ids, sizeof ids, id);
	r = db_prep(db, "work_status", "SELECT status FROM work_request WHERE id = $1", 1, p);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	return rc;
}

PGresult *db_work_missing(struct db *db, int64_t id, int none_stored)
{
	char ids[24];
	const char *p[1] = {ids};

	i64(ids, sizeof ids, id);
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

/* The end of a request, given its result and error counts n and e (SQL
 * expressions over CTE c): COMPLETED, or FAILED RESULT_MISMATCH / MODEL_ERROR
 * ($5: last error). Shared by the final store and db_work_complete.
 * finished_at is the clock when the row is updated, after the last results
 * went in, not the statement's start (now()): it says when the result
 * became complete. */
#define WORK_END_SET \
	"  status = CASE WHEN c.n < w.input_count OR c.e >= w.input_count" \
	"   THEN 'FAILED' ELSE 'COMPLETED' END," \
	"  failure_reason = CASE WHEN c.n < w.input_count THEN 'RESULT_MISMATCH'" \
	"   WHEN c.e >= w.input_count THEN 'MODEL_ERROR' END," \
	"  failure_detail = CASE WHEN c.n < w.input_count" \
	"   THEN format('%s results for %s inputs', c.n, w.input_count)" \
	"   WHEN c.e >= w.input_count THEN 'every input failed; last error: ' || $5 END," \
	"  finished_at = clock_timestamp(), lease_expires_at = NULL," \
	"  model_calls = w.model_calls + $3::int, extra_calls = w.extra_calls + $4::int," \
	"  done_count = c.n, error_count = c.e"

/* Insert the records of parameter ROWS (a JSON array of [ordinal, record,
 * error]) only while the request is RUNNING for this runner ($1 id, $2
 * runner id); CTE ins says which went in. */
#define WORK_STORE_OK(ROWS) \
	"WITH ok AS (SELECT 1 FROM work_request" \
	"  WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2)," \
	" ins AS (INSERT INTO work_request_result (request_id, ordinal, record, error)" \
	"  SELECT $1, (e->>0)::int, NULLIF(e->1, 'null'::jsonb), e->>2" \
	"  FROM jsonb_array_elements(" ROWS "::jsonb) e WHERE EXISTS (SELECT 1 FROM ok)" \
	"  ON CONFLICT DO NOTHING RETURNING (error IS NOT NULL) AS err)"

int db_work_store_send(struct db *db, int64_t id, const char *runner_id, const char *rows,
		       int lease_s, int64_t event_inst, const char *event_detail,
		       const struct work_end *end)
{
	char ids[24], lease[16], inst[24], c1[16], c2[16];
	const char *p[6] = {ids, runner_id, rows, lease, event_inst > 0 ? inst : NULL,
			    event_detail ? event_detail : "{}"};

	i64(ids, sizeof ids, id);
	if (end) {
		/* the last chunk: stored and the request ended in one statement
		 * (the results counted are those before it plus its own: the
		 * statement's parts share one snapshot) */
		const char *pe[6] = {ids, runner_id, c1, c2, end->last_error ? end->last_error : "",
				     rows};

		snprintf(c1, sizeof c1, "%d", end->calls);
		snprintf(c2, sizeof c2, "%d", end->extra_calls);
		return db_send(db, "work_store_end",
			       WORK_STORE_OK("$6") ","
			       " c AS (SELECT (SELECT count(*) FROM work_request_result"
			       "   WHERE request_id = $1)::int + (SELECT count(*) FROM ins)::int AS n,"
			       "  (SELECT count(*) FROM work_request_result WHERE request_id = $1"
			       "   AND error IS NOT NULL)::int + (SELECT count(*) FROM ins WHERE err)::int AS e)"
			       " UPDATE work_request w SET" WORK_END_SET
			       " FROM c WHERE w.id = $1 AND w.status = 'RUNNING' AND w.runner_id = $2"
			       " RETURNING (SELECT count(*) FROM ins), w.status",
			       6, pe);
	}
	i64(inst, sizeof inst, event_inst);
	snprintf(lease, sizeof lease, "%d", lease_s);
	return db_send(db, "work_store",
		       WORK_STORE_OK("$3") ","
		       " ev AS (INSERT INTO instance_event (instance_id, kind, detail)"
		       "  SELECT $5::bigint, 'CHUNK_SENT', $6::jsonb"
		       "  WHERE $5::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM ok))"
		       " UPDATE work_request SET done_count = done_count + (SELECT count(*) FROM ins),"
		       "  error_count = error_count + (SELECT count(*) FROM ins WHERE err),"
		       "  lease_expires_at = now() + make_interval(secs => $4::int)"
		       " WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2"
		       " RETURNING (SELECT count(*) FROM ins), NULL::text",
		       6, p);
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

int db_work_complete(struct db *db, int64_t id, const char *runner_id, int calls,
		     int extra_calls, const char *last_error, char *status_out, size_t status_size)
{
	char ids[24], c1[16], c2[16];
	const char *p[5] = {ids, runner_id, c1, c2, last_error ? last_error : ""};
	PGresult *r;
	int rc = 0;

	i64(ids, sizeof ids, id);
	snprintf(c1, sizeof c1, "%d", calls);
	snprintf(c2, sizeof c2, "%d", extra_calls);
	r = db_prep(db, "work_complete",
		    "WITH c AS (SELECT count(*)::int AS n,"
		    "  (count(*) FILTER (WHERE error IS NOT NULL))::int AS e"
		    "  FROM work_request_result WHERE request_id = $1)"
		    " UPDATE work_request w SET" WORK_END_SET
		    " FROM c WHERE w.id = $1 AND w.status = 'RUNNING' AND w.runner_id = $2"
		    " RETURNING w.status, w.failure_reason",
		    5, p);
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
		   const char *reason, const char *detail, int calls, int extra_calls)
{
	char ids[24], c1[16], c2[16];
	const char *p[7] = {ids, runner_id, status, reason, detail, c1, c2};

	i64(ids, sizeof ids, id);
	snprintf(c1, sizeof c1, "%d", calls);
	snprintf(c2, sizeof c2, "%d", extra_calls);
	return affected(db_prep(db, "work_finish",
				"UPDATE work_request SET status = $3, failure_reason = $4, failure_detail = $5,"
				" finished_at = now(), lease_expires_at = NULL,"
				" model_calls = model_calls + $6::int, extra_calls = extra_calls + $7::int,"
				" done_count = (SELECT count(*) FROM work_request_result WHERE request_id = $1),"
				" error_count = (SELECT count(*) FROM work_request_result"
				"   WHERE request_id = $1 AND error IS NOT NULL)"
				" WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2",
				7, p));
}

int db_work_fail_disabled(struct db *db, const char *model_id)
{
	const char *p[1] = {model_id};

	return affected(db_prep(db, "work_fail_disabled",
				"UPDATE work_request w SET status = 'FAILED', failure_reason = 'MODEL_DISABLED',"
				" failure_detail = 'model ' || w.model_id || ' is disabled', finished_at = now(),"
				" runner_id = NULL, lease_expires_at = NULL"
				" FROM model m WHERE m.id = w.model_id AND NOT m.enabled"
				" AND w.model_id = $1 AND w.status = 'QUEUED'",
				1, p));
}

PGresult *db_work_cache_candidates(struct db *db, int64_t id)
{
	char ids[24];
	const char *p[1] = {ids};

	i64(ids, sizeof ids, id);
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
	char uid[24];
	const char *p[4] = {model_id, version, uid, rows};

	i64(uid, sizeof uid, user_id);
	return affected(db_prep(db, "work_cache_put",
				"INSERT INTO input_cache (model_id, model_version, input_key, input, record, user_id)"
				" SELECT $1, $2, decode(e->>0, 'hex'), e->>1, e->2, $3::bigint"
				" FROM jsonb_array_elements($4::jsonb) e ON CONFLICT DO NOTHING",
				4, p));
}

void db_work_model_clear(struct work_model *m)
{
	if (m->cmd) {
		for (int i = 0; i < m->ncmd; i++)
			free(m->cmd[i]);
		free(m->cmd);
	}
	m->cmd = NULL;
	m->ncmd = 0;
}

static int parse_cmd(struct work_model *m, const char *json)
{
	struct json_object *a = json_tokener_parse(json);
	int n, rc = -1;

	if (!a || !json_object_is_type(a, json_type_array))
		goto out;
	n = (int)json_object_array_length(a);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	m->cmd = calloc((size_t)n, sizeof *m->cmd);
	if (!m->cmd)
		goto out;
	for (int i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, (size_t)i));
		if (!(m->cmd[i] = strdup(s ? s : "")))
			goto out;
		m->ncmd = i + 1;
	}
	rc = 0;
out:
	json_object_put(a);
	return rc;
}

/* One row of MODEL_COLS into *m: 1, 0 no row, -1 error; r is cleared. */
static int model_fill(PGresult *r, struct work_model *m)
{
	int rc = 0;

	memset(m, 0, sizeof *m);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		snprintf(m->id, sizeof m->id, "%s", PQgetvalue(r, 0, 15));
		m->enabled = PQgetvalue(r, 0, 0)[0] == 't';
		m->async = strcmp(PQgetvalue(r, 0, 1), "ASYNC") == 0;
		snprintf(m->image, sizeof m->image, "%s", PQgetvalue(r, 0, 2));
		snprintf(m->image_tag, sizeof m->image_tag, "%s", PQgetvalue(r, 0, 3));
		if (!PQgetisnull(r, 0, 4) && parse_cmd(m, PQgetvalue(r, 0, 4)) < 0) {
			db_work_model_clear(m);
			PQclear(r);
			return -1;
		}
		m->port = atoi(PQgetvalue(r, 0, 5));
		m->cpu_request_m = atoi(PQgetvalue(r, 0, 6));
		m->cpu_limit_m = atoi(PQgetvalue(r, 0, 7));
		m->memory_request_mib = atoi(PQgetvalue(r, 0, 8));
		m->memory_limit_mib = atoi(PQgetvalue(r, 0, 9));
		m->disable_memory_limit = PQgetvalue(r, 0, 10)[0] == 't';
		m->max_instances = atoi(PQgetvalue(r, 0, 11));
		m->idle_seconds = atoi(PQgetvalue(r, 0, 12));
		m->cache_enabled = PQgetvalue(r, 0, 13)[0] == 't';
		snprintf(m->version, sizeof m->version, "%s", PQgetvalue(r, 0, 14));
		rc = 1;
	}
	PQclear(r);
	return rc;
}

int db_work_model(struct db *db, const char *model_id, struct work_model *m)
{
	const char *p[1] = {model_id};

	return model_fill(db_prep(db, "work_model", MODEL_COLS " WHERE id = $1", 1, p), m);
}

/* Take the most recently used IDLE instance of the model on this replica
 * (pi: model id, request id, replica id); 0 or 1 rows, NULL on error. */
static PGresult *take_idle(struct db *db, const char *const *pi)
{
	return db_prep(db, "inst_take_idle",
		       "UPDATE model_instance SET state = 'BUSY', current_request_id = $2::bigint,"
		       " request_ids = CASE WHEN $2::bigint IS NULL THEN request_ids"
		       "  ELSE array_append(request_ids, $2::bigint) END, last_used_at = now(),"
		       " updated_at = now()"
		       " WHERE id = (SELECT id FROM model_instance WHERE model_id = $1 AND state = 'IDLE'"
		       "   AND replica_id = $3 AND NOT stop_requested AND address IS NOT NULL"
		       "   ORDER BY last_used_at DESC NULLS LAST LIMIT 1 FOR UPDATE SKIP LOCKED)"
		       " RETURNING id, COALESCE(name, ''), COALESCE(address, ''), COALESCE(pid, 0)",
		       3, pi);
}

static void inst_row(PGresult *r, struct work_inst *out)
{
	out->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	snprintf(out->name, sizeof out->name, "%s", PQgetvalue(r, 0, 1));
	snprintf(out->address, sizeof out->address, "%s", PQgetvalue(r, 0, 2));
	out->pid = atoi(PQgetvalue(r, 0, 3));
}

/* take_idle into *out: 1 taken, 0 none IDLE, -1 error. */
static int idle_take(struct db *db, const char *const *pi, struct work_inst *out)
{
	PGresult *r = take_idle(db, pi);
	int n;

	if (!r)
		return -1;
	n = PQntuples(r) == 1;
	if (n)
		inst_row(r, out);
	PQclear(r);
	return n;
}

/* The slow path of db_inst_acquire, inside the caller's transaction: the
 * model's advisory lock, an IDLE instance again (one may have gone IDLE
 * meanwhile), else count and insert a REQUESTED row. Same returns. */
static int inst_acquire_locked(struct db *db, const struct work_model *m, int64_t request_id,
			       const char *replica_id, const char *backend, struct work_inst *out)
{
	char rid[24], lockc[16], maxi[16], c1[16], c2[16], m1[16], m2[16];
	const char *pl[2] = {lockc, m->id};
	const char *pi[3] = {m->id, rid, replica_id};
	const char *pc[2] = {m->id, maxi};
	const char *pn[9] = {m->id, backend, replica_id, rid, c1, c2, m1, m2, NULL};
	PGresult *r;
	int rc;

	i64(rid, sizeof rid, request_id);
	if (request_id == 0)
		pi[1] = pn[3] = NULL; /* a claim's slot: its request comes next */
	snprintf(lockc, sizeof lockc, "%d", DB_LOCK_MODEL);
	snprintf(maxi, sizeof maxi, "%d", m->max_instances);
	snprintf(c1, sizeof c1, "%d", m->cpu_request_m);
	snprintf(c2, sizeof c2, "%d", m->cpu_limit_m);
	snprintf(m1, sizeof m1, "%d", m->memory_request_mib);
	snprintf(m2, sizeof m2, "%d", m->disable_memory_limit ? 0 : m->memory_limit_mib);
	pn[7] = m->disable_memory_limit ? NULL : m2;
	if (cmd(db_prep(db, "inst_lock", "SELECT pg_advisory_xact_lock($1::int, hashtext($2))", 2, pl)) < 0)
		return -1;
	if ((rc = idle_take(db, pi, out)) != 0)
		return rc;
	r = db_prep(db, "inst_count",
		    "SELECT count(*) < $2::int FROM model_instance"
		    " WHERE model_id = $1 AND state <> 'TERMINATED'",
		    2, pc);
	if (!r)
		return -1;
	rc = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!rc)
		return 0;
	r = db_prep(db, "inst_insert",
		    "INSERT INTO model_instance (model_id, backend, replica_id, state, current_request_id,"
		    " request_ids, cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib)"
		    " VALUES ($1, $2, $3, 'REQUESTED', $4::bigint,"
		    " CASE WHEN $4::bigint IS NULL THEN '{}' ELSE ARRAY[$4::bigint] END, $5::int, $6::int,"
		    " $7::int, $8::int)"
		    " RETURNING id, '', '', 0",
		    8, pn);
	if (!r)
		return -1;
	inst_row(r, out);
	PQclear(r);
	return 2;
}

/* A warm instance without the lock, else inst_acquire_locked; in the
 * caller's transaction when one is open. */
static int inst_acquire(struct db *db, const struct work_model *m, int64_t request_id,
			const char *replica_id, const char *backend, struct work_inst *out)
{
	char rid[24];
	const char *pi[3] = {m->id, rid, replica_id};
	int rc;

	memset(out, 0, sizeof *out);
	i64(rid, sizeof rid, request_id);
	if (request_id == 0)
		pi[1] = NULL;
	/* IDLE -> BUSY is one conditional update and does not change the
	 * count the lock guards, so the common case costs one round trip. */
	if ((rc = idle_take(db, pi, out)) != 0)
		return rc;
	return inst_acquire_locked(db, m, request_id, replica_id, backend, out);
}

int db_inst_acquire(struct db *db, const struct work_model *m, int64_t request_id,
		    const char *replica_id, const char *backend, struct work_inst *out)
{
	int rc;

	if (db_begin(db) < 0)
		return -1;
	rc = inst_acquire(db, m, request_id, replica_id, backend, out);
	if (rc < 0) {
		db_rollback(db);
		return -1;
	}
	if (db_commit(db) < 0)
		return -1;
	if (rc == 2)
		db_inst_event(db, out->id, "REQUESTED", NULL);
	return rc;
}

/* Undo a slot taken in this (uncommitted) transaction: the taken IDLE
 * instance goes back to IDLE, the new row (nobody saw it) is deleted. */
static int inst_unclaim(struct db *db, int64_t id, int how)
{
	char ids[24];
	const char *p[1] = {ids};

	i64(ids, sizeof ids, id);
	if (how == 2)
		return cmd(db_prep(db, "inst_unclaim_new", "DELETE FROM model_instance WHERE id = $1", 1, p));
	return cmd(db_prep(db, "inst_unclaim_idle",
			   "UPDATE model_instance SET state = 'IDLE', current_request_id = NULL"
			   " WHERE id = $1",
			   1, p));
}

int db_work_claim(struct db *db, const struct work_claim *c, struct work_req *q,
		  struct work_model *m, struct work_inst *wi, int *inst_rc)
{
	int rc;

	memset(wi, 0, sizeof *wi);
	*inst_rc = 0;
	/* The candidate read locks nothing, so it needs no transaction: a
	 * runner woken while nothing can run (a model at its limit) costs one
	 * round trip, not three. */
	rc = claim_model(db, c, m);
	if (rc <= 0)
		return rc;
	if (db_begin(db) < 0) {
		rc = -1;
		goto clear;
	}
	/* The slot before the request: a runner that loses the race for an
	 * instance holds no request lock, so the winner always takes the
	 * oldest request and nobody overtakes a waiting one. */
	if (m->enabled) {
		*inst_rc = inst_acquire(db, m, 0, c->replica_id, c->backend, wi);
		if (*inst_rc <= 0) {
			/* 2: the limit was reached since the check */
			rc = *inst_rc < 0 ? -1 : 2;
			goto undo;
		}
	}
	rc = claim_row(db, c, m->id, wi->id, q);
	if (rc == 0) {
		rc = 3; /* other runners took what was queued meanwhile */
	} else if (rc > 0 && *inst_rc > 0 &&
		   (q->deadline_in_s <= 0 || q->done_count >= q->input_count)) {
		/* it ends without an instance: give the slot back unused */
		rc = inst_unclaim(db, wi->id, *inst_rc) < 0 ? -1 : 1;
		memset(wi, 0, sizeof *wi);
		*inst_rc = 0;
	}
	if (rc != 1)
		goto undo;
	if (db_commit(db) < 0) {
		rc = -1;
		goto clear;
	}
	if (*inst_rc == 2)
		db_inst_event(db, wi->id, "REQUESTED", NULL);
	return 1;
undo:
	if (rc == 2 || rc == 3)
		snprintf(q->model_id, sizeof q->model_id, "%s", m->id);
	db_rollback(db);
clear:
	db_work_model_clear(m);
	*inst_rc = 0;
	return rc;
}

int db_inst_event(struct db *db, int64_t id, const char *kind, const char *detail_json)
{
	char ids[24];
	const char *p[3] = {ids, kind, detail_json ? detail_json : "{}"};

	i64(ids, sizeof ids, id);
	return cmd(db_prep(db, "inst_event",
			   "INSERT INTO instance_event (instance_id, kind, detail) VALUES ($1, $2, $3::jsonb)",
			   3, p));
}


int db_inst_started(struct db *db, int64_t id, const char *name, const char *address, int pid,
		    const char *node)
{
	char ids[24], pids[16];
	const char *p[5] = {ids, name, address, pids, node};
	char detail[256];

	i64(ids, sizeof ids, id);
	snprintf(pids, sizeof pids, "%d", pid);
	if (cmd(db_prep(db, "inst_started",
			"UPDATE model_instance SET state = 'STARTING', name = $2, address = $3,"
			" pid = $4::int, node = $5, updated_at = now() WHERE id = $1",
			5, p)) < 0)
		return -1;
	snprintf(detail, sizeof detail, "{\"pid\":%d}", pid);
	return db_inst_event(db, id, "STARTED", detail);
}

int db_inst_address(struct db *db, int64_t id, const char *address, const char *node)
{
	char ids[24];
	const char *p[3] = {ids, address, node && *node ? node : NULL};

	i64(ids, sizeof ids, id);
	return cmd(db_prep(db, "inst_address",
			   "UPDATE model_instance SET address = $2, node = COALESCE($3, node),"
			   " updated_at = now() WHERE id = $1",
			   3, p));
}

int db_inst_state(struct db *db, int64_t id, const char *state, const char *event,
		  const char *detail_json)
{
	char ids[24];
	const char *p[2] = {ids, state};

	i64(ids, sizeof ids, id);
	if (cmd(db_prep(db, "inst_state",
			"UPDATE model_instance SET state = $2, updated_at = now(),"
			" ready_at = CASE WHEN $2 IN ('READY', 'BUSY') AND ready_at IS NULL"
			"   THEN now() ELSE ready_at END,"
			" last_used_at = CASE WHEN $2 = 'BUSY' THEN now() ELSE last_used_at END"
			" WHERE id = $1 AND state <> 'TERMINATED'",
			2, p)) < 0)
		return -1;
	return event ? db_inst_event(db, id, event, detail_json) : 0;
}

int db_inst_release(struct db *db, int64_t id)
{
	char ids[24];
	const char *p[1] = {ids};
	int n;

	i64(ids, sizeof ids, id);
	/* the NOTIFY wakes runners waiting for an instance of this model; the
	 * IDLE event goes in the same statement (one round trip) */
	n = affected(db_prep(db, "inst_release",
			     "WITH x AS (UPDATE model_instance SET state = 'IDLE', current_request_id = NULL,"
			     " last_used_at = now(), updated_at = now()"
			     " WHERE id = $1 AND state IN ('BUSY', 'READY') RETURNING id, model_id),"
			     " e AS (INSERT INTO instance_event (instance_id, kind, detail)"
			     "  SELECT id, 'IDLE', '{}'::jsonb FROM x)"
			     " SELECT pg_notify('work_queued', model_id) FROM x",
			     1, p));
	return n < 0 ? -1 : 0;
}

int db_inst_take_idle(struct db *db, int64_t id, int idle_seconds)
{
	char ids[24], secs[16];
	const char *p[2] = {ids, secs};
	int n;

	i64(ids, sizeof ids, id);
	snprintf(secs, sizeof secs, "%d", idle_seconds);
	n = affected(db_prep(db, "inst_take_idle_stop",
			     "UPDATE model_instance SET state = 'TERMINATING', updated_at = now()"
			     " WHERE id = $1 AND state = 'IDLE'"
			     " AND last_used_at <= now() - make_interval(secs => $2::int)",
			     2, p));
	return n < 0 ? -1 : n > 0;
}

int db_inst_terminated(struct db *db, int64_t id, const char *reason, const char *detail,
		       const char *log_text)
{
	char ids[24];
	const char *p[3] = {ids, reason, detail};
	const char *pl[2] = {ids, log_text ? log_text : ""};
	struct json_object *d = json_object_new_object();
	int rc;

	i64(ids, sizeof ids, id);
	rc = affected(db_prep(db, "inst_terminated",
			 "WITH x AS (UPDATE model_instance SET state = 'TERMINATED',"
			 " termination_reason = COALESCE(termination_reason, $2),"
			 " termination_detail = COALESCE(termination_detail, $3), terminated_at = now(), current_request_id = NULL,"
			 " updated_at = now() WHERE id = $1 AND state <> 'TERMINATED' RETURNING model_id)"
			 " SELECT pg_notify('work_queued', model_id) FROM x",
			 3, p));
	if (d && rc > 0) {
		json_object_object_add(d, "reason", json_object_new_string(reason));
		json_object_object_add(d, "detail", json_object_new_string(detail ? detail : ""));
		if (strcmp(reason, "OOMKILLED") == 0)
			db_inst_event(db, id, "OOM_KILLED", json_object_to_json_string(d));
		db_inst_event(db, id, "TERMINATED", json_object_to_json_string(d));
	}
	if (cmd(db_prep(db, "inst_log",
			"INSERT INTO instance_log (instance_id, text) VALUES ($1, $2)"
			" ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now()",
			2, pl)) < 0)
		rc = -1;
	json_object_put(d);
	return rc < 0 ? -1 : 0;
}

PGresult *db_inst_poll(struct db *db, const char *ids)
{
	const char *p[1] = {ids};

	return db_prep(db, "inst_poll",
		       "SELECT id, state, stop_requested, COALESCE(termination_reason, '')"
		       " FROM model_instance WHERE id = ANY($1::bigint[])",
		       1, p);
}

int db_inst_request_stop(struct db *db, int64_t id)
{
	char ids[24];
	const char *p[1] = {ids};

	i64(ids, sizeof ids, id);
	return cmd(db_prep(db, "inst_request_stop",
			   "UPDATE model_instance SET stop_requested = true, updated_at = now()"
			   " WHERE id = $1",
			   1, p));
}

PGresult *db_inst_active_of_replica(struct db *db, const char *replica_id)
{
	const char *p[1] = {replica_id};

	return db_prep(db, "inst_active_replica",
		       "SELECT id, COALESCE(pid, 0), state FROM model_instance"
		       " WHERE replica_id = $1 AND state <> 'TERMINATED'"
		       " AND updated_at < now() - interval '5 seconds'",
		       1, p);
}

int db_inst_lost(struct db *db, int64_t id, const char *detail)
{
	return db_inst_terminated(db, id, "LOST", detail, NULL);
}

int db_janitor_requeue(struct db *db, int max_attempts)
{
	char maxa[16];
	const char *p[1] = {maxa};

	snprintf(maxa, sizeof maxa, "%d", max_attempts);
	return affected(db_prep(db, "jan_requeue",
				"WITH x AS (UPDATE work_request SET"
				"  status = CASE WHEN attempts >= $1::int THEN 'FAILED' ELSE 'QUEUED' END,"
				"  failure_reason = CASE WHEN attempts >= $1::int THEN 'ATTEMPTS_EXHAUSTED' END,"
				"  failure_detail = CASE WHEN attempts >= $1::int"
				"    THEN 'lease expired after ' || attempts || ' attempts' END,"
				"  finished_at = CASE WHEN attempts >= $1::int THEN now() END,"
				"  runner_id = NULL, lease_expires_at = NULL"
				"  WHERE status = 'RUNNING' AND lease_expires_at < now()"
				"  RETURNING model_id, status)"
				" SELECT pg_notify('work_queued', model_id) FROM x WHERE status = 'QUEUED'",
				1, p));
}

int db_janitor_retention(struct db *db, int days, int batch)
{
	char d[16], b[16];
	const char *p[2] = {d, b};

	snprintf(d, sizeof d, "%d", days);
	snprintf(b, sizeof b, "%d", batch);
	/* inputs and results go by ON DELETE CASCADE */
	return affected(db_prep(db, "jan_retention",
				"DELETE FROM work_request WHERE id IN (SELECT id FROM work_request"
				" WHERE created_at < now() - make_interval(days => $1::int)"
				" AND status <> 'RUNNING' ORDER BY id LIMIT $2::int)",
				2, p));
}

int db_janitor_old_instances(struct db *db, int days, int batch)
{
	char d[16], b[16];
	const char *p[2] = {d, b};

	snprintf(d, sizeof d, "%d", days);
	snprintf(b, sizeof b, "%d", batch);
	return affected(db_prep(db, "jan_old_instances",
				"DELETE FROM model_instance WHERE id IN (SELECT id FROM model_instance"
				" WHERE state = 'TERMINATED'"
				" AND terminated_at < now() - make_interval(days => $1::int)"
				" ORDER BY id LIMIT $2::int)",
				2, p));
}

int db_janitor_sessions(struct db *db)
{
	return affected(db_prep(db, "jan_sessions",
				"DELETE FROM session WHERE absolute_expires_at < now()", 0, NULL));
}

int db_janitor_disabled(struct db *db)
{
	return affected(db_prep(db, "jan_disabled",
				"UPDATE work_request w SET status = 'FAILED', failure_reason = 'MODEL_DISABLED',"
				" failure_detail = 'model ' || w.model_id || ' is disabled', finished_at = now()"
				" FROM model m WHERE m.id = w.model_id AND NOT m.enabled AND w.status = 'QUEUED'",
				0, NULL));
}

int db_janitor_dead_replicas(struct db *db, int stale_s)
{
	char s[16];
	const char *p[1] = {s};

	snprintf(s, sizeof s, "%d", stale_s);
	return affected(db_prep(db, "jan_dead_replicas",
				"WITH x AS (UPDATE model_instance i SET state = 'TERMINATED',"
				"  termination_reason = 'LOST', termination_detail = 'replica stopped beating',"
				"  terminated_at = now(), updated_at = now()"
				"  FROM hub_server h WHERE h.replica_id = i.replica_id AND i.state <> 'TERMINATED'"
				"  AND h.heartbeat_at < now() - make_interval(secs => $1::int)"
				"  RETURNING i.id, i.model_id)"
				" , ev AS (INSERT INTO instance_event (instance_id, kind, detail)"
				"  SELECT id, 'TERMINATED', '{\"reason\":\"LOST\"}' FROM x)"
				" SELECT pg_notify('work_queued', model_id) FROM x",
				1, p));
}

int db_hub_server_beat(struct db *db, const char *replica_id, const char *hostname, int pid,
		       const char *version, const char *detail_json, int starting)
{
	char pids[16];
	const char *p[6] = {replica_id, hostname, pids, version, detail_json ? detail_json : "{}",
			    starting ? "t" : "f"};

	snprintf(pids, sizeof pids, "%d", pid);
	return cmd(db_prep(db, "hub_server_beat",
			   "INSERT INTO hub_server (replica_id, hostname, pid, version, detail)"
			   " VALUES ($1, $2, $3::int, $4, $5::jsonb)"
			   " ON CONFLICT (replica_id) DO UPDATE SET hostname = EXCLUDED.hostname,"
			   " pid = EXCLUDED.pid, version = EXCLUDED.version, detail = EXCLUDED.detail,"
			   " heartbeat_at = now(),"
			   " started_at = CASE WHEN $6::boolean THEN now() ELSE hub_server.started_at END",
			   6, p));
}

PGresult *db_work_queue_depths(struct db *db)
{
	return db_prep(db, "work_queue_depths",
		       "SELECT w.model_id, count(*), max(m.max_instances) FROM work_request w"
		       " JOIN model m ON m.id = w.model_id WHERE w.status = 'QUEUED'"
		       " GROUP BY w.model_id ORDER BY w.model_id",
		       0, NULL);
}
