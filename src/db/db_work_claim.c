/*
 * db_work_claim.c — claiming a queued request together with an instance
 * slot for it (db_work_claim, db_inst_acquire).
 *
 * Runs in: modelhubd children and supervisor. Called by: runner.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: see db_work.h. Concurrency: claims use FOR UPDATE SKIP
 * LOCKED; the instance limit per model is kept under a transaction-scoped
 * advisory lock (class DB_LOCK_MODEL, key hashtext(model id)), so runners of
 * every replica count and insert instance rows one at a time per model.
 */
#include "db/db_work.h"
#include "db/db_work_int.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_LOCK_MODEL 0x6d68 /* advisory lock class: per-model instance limit */

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
	return db_work_model_fill(r, m);
}

/* Fair scheduling between callers within a model (issue 17): callers (the
 * user, or the anonymous session negated: the id spaces differ; 0 for
 * neither) take turns. Each caller's first FAIR_DEPTH queued requests are
 * candidates; rank 1 of every caller goes before any rank 2, and within a
 * rank the caller whose last start on the model is the oldest (never:
 * first) goes first, then the oldest request. So one caller's long queue
 * cannot starve another's single request, one caller's requests start in
 * order, and concurrent runners find a next candidate when one is locked.
 * Cost: a loose index scan over the queued callers (o, one probe each in
 * work_request_fair_queue_idx) and one probe per caller for its last start
 * (work_request_fair_started_idx), not a scan of the queue (sql/007).
 * turn is MATERIALIZED: inlined, the planner (with a young table's stats:
 * one row estimated) scanned the queue and re-ran turn's laterals for every
 * queued row, callers x FAIR_DEPTH probes each time: 13-22 ms a claim with
 * 500 queued, and the claim holds the model's instance lock meanwhile
 * (bench/concurrency: claims of 500 took 6.2 s, longer than the 5 s call). */
#define FAIR_OWNER "coalesce(user_id, -anon_session_id, 0)"
#define FAIR_DEPTH "8"
#define FAIR_TURN \
	"WITH RECURSIVE o AS ((SELECT " FAIR_OWNER " AS o FROM work_request" \
	"  WHERE status = 'QUEUED' AND model_id = $1 ORDER BY 1 LIMIT 1)" \
	" UNION ALL SELECT (SELECT " FAIR_OWNER " FROM work_request WHERE status = 'QUEUED'" \
	"  AND model_id = $1 AND " FAIR_OWNER " > o.o ORDER BY 1 LIMIT 1) FROM o" \
	"  WHERE o.o IS NOT NULL)," \
	" turn AS MATERIALIZED (SELECT c.id, c.r, s.last FROM o CROSS JOIN LATERAL (SELECT id," \
	"  row_number() OVER (ORDER BY id) AS r FROM work_request WHERE status = 'QUEUED'" \
	"  AND model_id = $1 AND " FAIR_OWNER " = o.o ORDER BY id LIMIT " FAIR_DEPTH ") c" \
	"  CROSS JOIN LATERAL (SELECT max(started_at) AS last FROM work_request" \
	"  WHERE model_id = $1 AND " FAIR_OWNER " = o.o AND started_at IS NOT NULL) s" \
	"  WHERE o.o IS NOT NULL),"

/* The QUEUED request of the model whose turn comes first (FAIR_TURN),
 * RUNNING under this runner, and
 * the slot (inst, 0 for none) made its instance, in one statement.
 * started_at is the clock when the row is taken, not now(): a statement
 * that began early but was descheduled would otherwise date its request
 * before later claims. 1, 0 none left, -1 error. */
static int claim_row(struct db *db, const struct work_claim *c, const char *model_id,
		     int64_t inst, struct work_req *out)
{
	const char *p[5] = {model_id, c->runner_id, DB_INT(c->lease_s),
			    DB_INT(c->request_timeout_s), DB_INT(inst)};
	PGresult *r;
	int rc = 0;

	r = db_prep(db, "work_claim",
		    FAIR_TURN
		    " q AS (UPDATE work_request SET status = 'RUNNING', runner_id = $2,"
		    " attempts = attempts + 1,"
		    " lease_expires_at = now() + make_interval(secs => $3::int),"
		    " started_at = COALESCE(started_at, clock_timestamp()),"
		    " deadline = COALESCE(deadline, now() + make_interval(secs => $4::int)),"
		    " failure_reason = NULL, failure_detail = NULL"
		    " WHERE id = (SELECT w.id FROM work_request w JOIN turn t ON t.id = w.id"
		    "   WHERE w.status = 'QUEUED' ORDER BY t.r, t.last NULLS FIRST, w.id"
		    "   FOR UPDATE OF w SKIP LOCKED LIMIT 1)"
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
		       " RETURNING id, COALESCE(name, ''), COALESCE(address, ''), COALESCE(pid, 0),"
		       " COALESCE(chunk_size, 0)",
		       3, pi);
}

static void inst_row(PGresult *r, struct work_inst *out)
{
	out->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	snprintf(out->name, sizeof out->name, "%s", PQgetvalue(r, 0, 1));
	snprintf(out->address, sizeof out->address, "%s", PQgetvalue(r, 0, 2));
	out->pid = atoi(PQgetvalue(r, 0, 3));
	out->chunk_size = PQnfields(r) > 4 ? atoi(PQgetvalue(r, 0, 4)) : 0;
}

/* take_idle into *out: WORK_SLOT_IDLE, WORK_SLOT_NONE (none IDLE) or
 * WORK_SLOT_ERROR. */
static enum work_slot idle_take(struct db *db, const char *const *pi, struct work_inst *out)
{
	PGresult *r = take_idle(db, pi);
	enum work_slot rc = WORK_SLOT_NONE;

	if (!r)
		return WORK_SLOT_ERROR;
	if (PQntuples(r) == 1) {
		inst_row(r, out);
		rc = WORK_SLOT_IDLE;
	}
	PQclear(r);
	return rc;
}

/* The slow path of db_inst_acquire, inside the caller's transaction: the
 * model's advisory lock, an IDLE instance again (one may have gone IDLE
 * meanwhile), else count and insert a REQUESTED row. Same returns. */
static enum work_slot inst_acquire_locked(struct db *db, const struct work_model *m,
					  int64_t request_id, const char *replica_id,
					  const char *backend, struct work_inst *out)
{
	const char *rid = DB_INT(request_id);
	const char *pl[2] = {DB_INT(DB_LOCK_MODEL), m->id};
	const char *pi[3] = {m->id, rid, replica_id};
	const char *pc[2] = {m->id, DB_INT(m->max_instances)};
	const char *pn[9] = {m->id, backend, replica_id, rid, DB_INT(m->cpu_request_m),
			     DB_INT(m->cpu_limit_m), DB_INT(m->memory_request_mib),
			     DB_INT(m->memory_limit_mib), NULL};
	PGresult *r;
	enum work_slot rc;
	int room;

	if (request_id == 0)
		pi[1] = pn[3] = NULL; /* a claim's slot: its request comes next */
	if (m->disable_memory_limit)
		pn[7] = NULL;
	if (db_done(db_prep(db, "inst_lock", "SELECT pg_advisory_xact_lock($1::int, hashtext($2))",
			    2, pl)) < 0)
		return WORK_SLOT_ERROR;
	if ((rc = idle_take(db, pi, out)) != WORK_SLOT_NONE)
		return rc;
	r = db_prep(db, "inst_count",
		    "SELECT count(*) < $2::int FROM model_instance"
		    " WHERE model_id = $1 AND state <> 'TERMINATED'",
		    2, pc);
	if (!r)
		return WORK_SLOT_ERROR;
	room = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!room)
		return WORK_SLOT_NONE;
	/* the REQUESTED event in the same statement: one round trip less on a
	 * runner's one connection, and it commits (or not) with the row */
	r = db_prep(db, "inst_insert_ev",
		    "WITH x AS (INSERT INTO model_instance (model_id, backend, replica_id, state,"
		    " current_request_id, request_ids, cpu_request_m, cpu_limit_m, memory_request_mib,"
		    " memory_limit_mib)"
		    " VALUES ($1, $2, $3, 'REQUESTED', $4::bigint,"
		    " CASE WHEN $4::bigint IS NULL THEN '{}' ELSE ARRAY[$4::bigint] END, $5::int, $6::int,"
		    " $7::int, $8::int)"
		    " RETURNING id),"
		    " e AS (INSERT INTO instance_event (instance_id, kind) SELECT id, 'REQUESTED' FROM x)"
		    " SELECT id, '', '', 0 FROM x",
		    8, pn);
	if (!r)
		return WORK_SLOT_ERROR;
	inst_row(r, out);
	PQclear(r);
	return WORK_SLOT_NEW;
}

/* A warm instance without the lock, else inst_acquire_locked; in the
 * caller's transaction when one is open. */
static enum work_slot inst_acquire(struct db *db, const struct work_model *m, int64_t request_id,
				   const char *replica_id, const char *backend,
				   struct work_inst *out)
{
	const char *pi[3] = {m->id, DB_INT(request_id), replica_id};
	enum work_slot rc;

	memset(out, 0, sizeof *out);
	if (request_id == 0)
		pi[1] = NULL;
	/* IDLE -> BUSY is one conditional update and does not change the
	 * count the lock guards, so the common case costs one round trip. */
	if ((rc = idle_take(db, pi, out)) != WORK_SLOT_NONE)
		return rc;
	return inst_acquire_locked(db, m, request_id, replica_id, backend, out);
}

enum work_slot db_inst_acquire(struct db *db, const struct work_model *m, int64_t request_id,
			       const char *replica_id, const char *backend, struct work_inst *out)
{
	enum work_slot rc;

	if (db_begin(db) < 0)
		return WORK_SLOT_ERROR;
	rc = inst_acquire(db, m, request_id, replica_id, backend, out);
	if (rc == WORK_SLOT_ERROR) {
		db_rollback(db);
		return WORK_SLOT_ERROR;
	}
	if (db_commit(db) < 0)
		return WORK_SLOT_ERROR;
	return rc;
}

enum work_slot db_inst_take_warm(struct db *db, const char *model_id, int64_t request_id,
				 const char *replica_id, struct work_inst *out)
{
	const char *pi[3] = {model_id, DB_INT(request_id), replica_id};

	memset(out, 0, sizeof *out);
	return idle_take(db, pi, out);
}

/* Undo a slot taken in this (uncommitted) transaction: the taken IDLE
 * instance goes back to IDLE, the new row (nobody saw it) is deleted. */
static int inst_unclaim(struct db *db, int64_t id, enum work_slot how)
{
	const char *p[1] = {DB_INT(id)};

	if (how == WORK_SLOT_NEW)
		return db_done(db_prep(db, "inst_unclaim_new",
				       "DELETE FROM model_instance WHERE id = $1", 1, p));
	return db_done(db_prep(db, "inst_unclaim_idle",
			   "UPDATE model_instance SET state = 'IDLE', current_request_id = NULL"
			   " WHERE id = $1",
			   1, p));
}

enum work_claim_rc db_work_claim(struct db *db, const struct work_claim *c, struct work_req *q,
				 struct work_model *m, struct work_inst *wi, enum work_slot *inst_rc)
{
	enum work_claim_rc rc;
	int got;

	memset(wi, 0, sizeof *wi);
	*inst_rc = WORK_SLOT_NONE;
	/* The candidate read locks nothing, so it needs no transaction: a
	 * runner woken while nothing can run (a model at its limit) costs one
	 * round trip, not three. */
	got = claim_model(db, c, m);
	if (got <= 0)
		return got < 0 ? WORK_CLAIM_ERROR : WORK_CLAIM_NONE;
	if (db_begin(db) < 0) {
		rc = WORK_CLAIM_ERROR;
		goto clear;
	}
	/* The slot before the request: a runner that loses the race for an
	 * instance holds no request lock, so the winner always takes the
	 * oldest request and nobody overtakes a waiting one. */
	if (m->enabled) {
		*inst_rc = inst_acquire(db, m, 0, c->replica_id, c->backend, wi);
		if (*inst_rc == WORK_SLOT_ERROR || *inst_rc == WORK_SLOT_NONE) {
			/* none: the limit was reached since the check */
			rc = *inst_rc == WORK_SLOT_ERROR ? WORK_CLAIM_ERROR : WORK_CLAIM_FULL;
			goto undo;
		}
	}
	got = claim_row(db, c, m->id, wi->id, q);
	rc = got < 0 ? WORK_CLAIM_ERROR : got == 0 ? WORK_CLAIM_TAKEN : WORK_CLAIM_OK;
	if (rc == WORK_CLAIM_OK && *inst_rc != WORK_SLOT_NONE &&
	    (q->deadline_in_s <= 0 || q->done_count >= q->input_count)) {
		/* it ends without an instance: give the slot back unused */
		rc = inst_unclaim(db, wi->id, *inst_rc) < 0 ? WORK_CLAIM_ERROR : WORK_CLAIM_OK;
		memset(wi, 0, sizeof *wi);
		*inst_rc = WORK_SLOT_NONE;
	}
	if (rc != WORK_CLAIM_OK)
		goto undo;
	if (db_commit(db) < 0) {
		rc = WORK_CLAIM_ERROR;
		goto clear;
	}
	return WORK_CLAIM_OK;
undo:
	if (rc == WORK_CLAIM_FULL || rc == WORK_CLAIM_TAKEN)
		snprintf(q->model_id, sizeof q->model_id, "%s", m->id);
	db_rollback(db);
clear:
	db_work_model_clear(m);
	*inst_rc = WORK_SLOT_NONE;
	return rc;
}
