/*
 * db_work_claim.c — claiming queued requests of a model together with an
 * instance slot for each (db_work_claim), and a slot alone
 * (db_inst_acquire, db_inst_take_warm).
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
 * only to find the limit). Nothing is locked. 1 into *m and its queued
 * requests (counted up to WORK_CLAIM_MAX) into *queued, 0 none, -1. */
static int claim_model(struct db *db, const struct work_claim *c, struct work_model *m,
		       int *queued)
{
	char *arr = text_array(c->models, c->n);
	const char *p[3] = {arr, c->replica_id, DB_INT(WORK_CLAIM_MAX)};
	PGresult *r;

	*queued = 0;
	if (!arr)
		return -1;
	r = db_prep(db, "work_claim_model",
		    "SELECT " MODEL_FIELDS ", (SELECT count(*) FROM (SELECT 1 FROM work_request q"
		    "  WHERE q.status = 'QUEUED' AND q.model_id = model.id LIMIT $3::int) x)"
		    " FROM model WHERE id = (SELECT w.model_id FROM work_request w"
		    " WHERE w.status = 'QUEUED' AND w.model_id IN (SELECT m.id FROM model m"
		    "  WHERE m.id = ANY($1::text[]) AND (NOT m.enabled"
		    "  OR EXISTS (SELECT 1 FROM model_instance i WHERE i.model_id = m.id"
		    "    AND i.state = 'IDLE' AND i.replica_id = $2 AND NOT i.stop_requested)"
		    "  OR (SELECT count(*) FROM model_instance i WHERE i.model_id = m.id"
		    "    AND i.state <> 'TERMINATED') < m.max_instances))"
		    " ORDER BY w.id LIMIT 1)",
		    3, p);
	free(arr);
	if (r && PQntuples(r) == 1)
		*queued = atoi(PQgetvalue(r, 0, PQnfields(r) - 1));
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
/* a batch claim (WORK_CLAIM_MAX) can take every candidate of one caller */
#define FAIR_STR_(x) #x
#define FAIR_STR(x) FAIR_STR_(x)
#define FAIR_DEPTH FAIR_STR(WORK_CLAIM_MAX)
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

static void req_row(PGresult *r, int k, struct work_req *out)
{
	out->id = strtoll(PQgetvalue(r, k, 0), NULL, 10);
	snprintf(out->model_id, sizeof out->model_id, "%s", PQgetvalue(r, k, 1));
	out->input_count = atoi(PQgetvalue(r, k, 2));
	out->done_count = atoi(PQgetvalue(r, k, 3));
	out->attempts = atoi(PQgetvalue(r, k, 4));
	out->cache_opt_in = PQgetvalue(r, k, 5)[0] == 't';
	out->user_id = strtoll(PQgetvalue(r, k, 6), NULL, 10);
	out->deadline_in_s = strtod(PQgetvalue(r, k, 7), NULL);
}

/* Up to max QUEUED requests of the model in the order of their turns
 * (FAIR_TURN), RUNNING under this runner, the k-th of them made the
 * request of the k-th slot in slots (none: no slot), in one statement,
 * into out[] in that order. started_at is the clock once every row is
 * locked (s is computed after c), not now(): a statement that began early
 * but was descheduled would otherwise date its requests before later
 * claims; a microsecond per rank keeps the turn order in started_at.
 * Rows claimed, -1 error. */
static int claim_rows(struct db *db, const struct work_claim *c, const char *model_id,
		      const int64_t *slots, int nslots, int max, struct work_claimed *out)
{
	char *ids = db_int_array(slots, NULL, nslots);
	const char *p[6] = {model_id, c->runner_id, DB_INT(c->lease_s),
			    DB_INT(c->request_timeout_s), ids, DB_INT(max)};
	PGresult *r;
	int n;

	if (!ids)
		return -1;
	r = db_prep(db, "work_claim",
		    FAIR_TURN
		    " c AS MATERIALIZED (SELECT w.id, t.r, t.last FROM work_request w"
		    "  JOIN turn t ON t.id = w.id WHERE w.status = 'QUEUED'"
		    "  ORDER BY t.r, t.last NULLS FIRST, w.id FOR UPDATE OF w SKIP LOCKED LIMIT $6::int),"
		    " s AS MATERIALIZED (SELECT x.id, x.ord,"
		    "  clock_timestamp() + x.ord * interval '1 microsecond' AS at"
		    "  FROM (SELECT id, row_number() OVER (ORDER BY r, last NULLS FIRST, id) AS ord"
		    "  FROM c) x),"
		    " q AS (UPDATE work_request SET status = 'RUNNING', runner_id = $2,"
		    " attempts = attempts + 1,"
		    " lease_expires_at = now() + make_interval(secs => $3::int),"
		    " started_at = COALESCE(started_at, s.at),"
		    " deadline = COALESCE(deadline, now() + make_interval(secs => $4::int)),"
		    " failure_reason = NULL, failure_detail = NULL"
		    " FROM s WHERE work_request.id = s.id"
		    " RETURNING work_request.id, model_id, input_count, done_count, attempts,"
		    " cache_opt_in, COALESCE(user_id, 0), extract(epoch FROM deadline - now()), s.ord),"
		    /* runs whether or not the outer query reads it */
		    " i AS (UPDATE model_instance SET current_request_id = q.id,"
		    "  request_ids = array_append(request_ids, q.id) FROM q"
		    "  WHERE model_instance.id = ($5::bigint[])[q.ord])"
		    " SELECT * FROM q ORDER BY ord",
		    6, p);
	free(ids);
	if (!r)
		return -1;
	n = PQntuples(r);
	if (n > max)
		n = max;
	for (int k = 0; k < n; k++)
		req_row(r, k, &out[k].q);
	PQclear(r);
	return n;
}

static void inst_row(PGresult *r, int k, struct work_inst *out)
{
	memset(out, 0, sizeof *out);
	out->id = strtoll(PQgetvalue(r, k, 0), NULL, 10);
	snprintf(out->name, sizeof out->name, "%s", PQgetvalue(r, k, 1));
	snprintf(out->address, sizeof out->address, "%s", PQgetvalue(r, k, 2));
	out->pid = atoi(PQgetvalue(r, k, 3));
	out->chunk_size = PQnfields(r) > 4 ? atoi(PQgetvalue(r, k, 4)) : 0;
}

/* Up to want of the most recently used IDLE instances of the model on
 * this replica (pi: model id, request id or NULL, replica id), now BUSY,
 * into out[] and how[] (WORK_SLOT_IDLE): the count, -1 error. */
static int idle_take(struct db *db, const char *const *pi, int want, struct work_inst *out,
		     enum work_slot *how)
{
	const char *p[4] = {pi[0], pi[1], pi[2], DB_INT(want)};
	PGresult *r;
	int n;

	r = db_prep(db, "inst_take_idle",
		    "UPDATE model_instance SET state = 'BUSY', current_request_id = $2::bigint,"
		    " request_ids = CASE WHEN $2::bigint IS NULL THEN request_ids"
		    "  ELSE array_append(request_ids, $2::bigint) END, last_used_at = now(),"
		    " updated_at = now()"
		    " WHERE id IN (SELECT id FROM model_instance WHERE model_id = $1 AND state = 'IDLE'"
		    "   AND replica_id = $3 AND NOT stop_requested AND address IS NOT NULL"
		    "   ORDER BY last_used_at DESC NULLS LAST LIMIT $4::int FOR UPDATE SKIP LOCKED)"
		    " RETURNING id, COALESCE(name, ''), COALESCE(address, ''), COALESCE(pid, 0),"
		    " COALESCE(chunk_size, 0)",
		    4, p);
	if (!r)
		return -1;
	n = PQntuples(r);
	if (n > want)
		n = want;
	for (int k = 0; k < n; k++) {
		inst_row(r, k, &out[k]);
		how[k] = WORK_SLOT_IDLE;
	}
	PQclear(r);
	return n;
}

/* Under the model's advisory lock (taken here, held to the caller's
 * commit): IDLE instances again (some may have gone IDLE meanwhile), then
 * REQUESTED rows for the rest while fewer than max_instances are not
 * TERMINATED. Slots got, -1 error. */
static int slots_locked(struct db *db, const struct work_model *m, const char *const *pi,
			const char *backend, int want, struct work_inst *out, enum work_slot *how)
{
	const char *pl[2] = {DB_INT(DB_LOCK_MODEL), m->id};
	const char *pc[2] = {m->id, DB_INT(m->max_instances)};
	const char *pn[9] = {m->id, backend, pi[2], pi[1], DB_INT(m->cpu_request_m),
			     DB_INT(m->cpu_limit_m), DB_INT(m->memory_request_mib),
			     DB_INT(m->memory_limit_mib), NULL};
	PGresult *r;
	int got, room;

	if (m->disable_memory_limit)
		pn[7] = NULL;
	if (db_done(db_prep(db, "inst_lock", "SELECT pg_advisory_xact_lock($1::int, hashtext($2))",
			    2, pl)) < 0)
		return -1;
	if ((got = idle_take(db, pi, want, out, how)) < 0 || got == want)
		return got;
	r = db_prep(db, "inst_room",
		    "SELECT $2::int - count(*) FROM model_instance"
		    " WHERE model_id = $1 AND state <> 'TERMINATED'",
		    2, pc);
	if (!r)
		return -1;
	room = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (room > want - got)
		room = want - got;
	if (room <= 0)
		return got;
	pn[8] = DB_INT(room);
	/* the REQUESTED events in the same statement: one round trip less on a
	 * runner's one connection, and they commit (or not) with the rows */
	r = db_prep(db, "inst_insert_ev",
		    "WITH x AS (INSERT INTO model_instance (model_id, backend, replica_id, state,"
		    " current_request_id, request_ids, cpu_request_m, cpu_limit_m, memory_request_mib,"
		    " memory_limit_mib)"
		    " SELECT $1, $2, $3, 'REQUESTED', $4::bigint,"
		    " CASE WHEN $4::bigint IS NULL THEN '{}' ELSE ARRAY[$4::bigint] END, $5::int, $6::int,"
		    " $7::int, $8::int FROM generate_series(1, $9::int)"
		    " RETURNING id),"
		    " e AS (INSERT INTO instance_event (instance_id, kind) SELECT id, 'REQUESTED' FROM x)"
		    " SELECT id, '', '', 0 FROM x",
		    9, pn);
	if (!r)
		return -1;
	for (int k = 0; k < PQntuples(r) && got < want; k++, got++) {
		inst_row(r, k, &out[got]);
		how[got] = WORK_SLOT_NEW;
	}
	PQclear(r);
	return got;
}

/* want slots for the model (request_id 0: a claim's slots, whose requests
 * come next), in the caller's open transaction: warm instances without
 * the lock, the rest under it. IDLE -> BUSY is one conditional update and
 * does not change the count the lock guards, so the common case costs one
 * round trip. Slots got, -1 error. */
static int slots_acquire(struct db *db, const struct work_model *m, int64_t request_id,
			 const char *replica_id, const char *backend, int want,
			 struct work_inst *out, enum work_slot *how)
{
	const char *pi[3] = {m->id, request_id ? DB_INT(request_id) : NULL, replica_id};
	int got = idle_take(db, pi, want, out, how);
	int more;

	if (got < 0 || got == want)
		return got;
	more = slots_locked(db, m, pi, backend, want - got, out + got, how + got);
	return more < 0 ? -1 : got + more;
}

enum work_slot db_inst_acquire(struct db *db, const struct work_model *m, int64_t request_id,
			       const char *replica_id, const char *backend, struct work_inst *out)
{
	enum work_slot how = WORK_SLOT_NONE;
	int got;

	memset(out, 0, sizeof *out);
	if (db_begin(db) < 0)
		return WORK_SLOT_ERROR;
	got = slots_acquire(db, m, request_id, replica_id, backend, 1, out, &how);
	if (got < 0) {
		db_rollback(db);
		return WORK_SLOT_ERROR;
	}
	if (db_commit(db) < 0)
		return WORK_SLOT_ERROR;
	return got ? how : WORK_SLOT_NONE;
}

enum work_slot db_inst_take_warm(struct db *db, const char *model_id, int64_t request_id,
				 const char *replica_id, struct work_inst *out)
{
	const char *pi[3] = {model_id, DB_INT(request_id), replica_id};
	enum work_slot how = WORK_SLOT_NONE;
	int got;

	memset(out, 0, sizeof *out);
	got = idle_take(db, pi, 1, out, &how);
	return got < 0 ? WORK_SLOT_ERROR : got ? how : WORK_SLOT_NONE;
}

/* Undo slots taken in this (uncommitted) transaction and left unused:
 * taken IDLE instances go back to IDLE, new rows (nobody saw them) are
 * deleted. */
static int slots_unclaim(struct db *db, const struct work_inst *wi, const enum work_slot *how,
			 const int *unused, int n)
{
	int64_t idle[WORK_CLAIM_MAX], fresh[WORK_CLAIM_MAX];
	int ni = 0, nf = 0, rc = 0;
	const char *p[1];
	char *arr;

	for (int k = 0; k < n; k++)
		if (unused[k]) {
			if (how[k] == WORK_SLOT_NEW)
				fresh[nf++] = wi[k].id;
			else
				idle[ni++] = wi[k].id;
		}
	if (nf) {
		if (!(p[0] = arr = db_int_array(fresh, NULL, nf)))
			return -1;
		rc = db_done(db_prep(db, "inst_unclaim_new",
				     "DELETE FROM model_instance WHERE id = ANY($1::bigint[])", 1, p));
		free(arr);
	}
	if (ni && rc == 0) {
		if (!(p[0] = arr = db_int_array(idle, NULL, ni)))
			return -1;
		rc = db_done(db_prep(db, "inst_unclaim_idle",
				     "UPDATE model_instance SET state = 'IDLE', current_request_id = NULL"
				     " WHERE id = ANY($1::bigint[])",
				     1, p));
		free(arr);
	}
	return rc;
}

/* In the open transaction: slots for up to want requests of *m, then the
 * requests; slots left over, and those of requests that end without an
 * instance, are given back. OK with *n rows in out[], or FULL, TAKEN,
 * ERROR. */
static enum work_claim_rc claim_in_tx(struct db *db, const struct work_claim *c,
				      const struct work_model *m, int want,
				      struct work_claimed *out, int *n)
{
	struct work_inst wi[WORK_CLAIM_MAX];
	enum work_slot how[WORK_CLAIM_MAX];
	int64_t ids[WORK_CLAIM_MAX];
	int unused[WORK_CLAIM_MAX];
	int nslots = 0, got;

	/* The slots before the requests: a runner that loses the race for an
	 * instance holds no request lock, so the winner always takes the
	 * oldest request and nobody overtakes a waiting one. */
	if (m->enabled) {
		nslots = slots_acquire(db, m, 0, c->replica_id, c->backend, want, wi, how);
		if (nslots <= 0) /* none: the limit was reached since the check */
			return nslots < 0 ? WORK_CLAIM_ERROR : WORK_CLAIM_FULL;
		want = nslots;
	}
	for (int k = 0; k < nslots; k++)
		ids[k] = wi[k].id;
	got = claim_rows(db, c, m->id, ids, nslots, want, out);
	if (got <= 0)
		return got < 0 ? WORK_CLAIM_ERROR : WORK_CLAIM_TAKEN;
	for (int k = 0; k < nslots; k++) {
		struct work_claimed *o = &out[k];

		unused[k] = k >= got || o->q.deadline_in_s <= 0 || o->q.done_count >= o->q.input_count;
		if (k < got && !unused[k]) {
			o->wi = wi[k];
			o->irc = how[k];
		}
	}
	if (slots_unclaim(db, wi, how, unused, nslots) < 0)
		return WORK_CLAIM_ERROR;
	*n = got;
	return WORK_CLAIM_OK;
}

enum work_claim_rc db_work_claim(struct db *db, const struct work_claim *c, struct work_model *m,
				 struct work_claimed *out, int *n)
{
	enum work_claim_rc rc;
	int got, queued, want = c->max;

	*n = 0;
	if (want < 1 || want > WORK_CLAIM_MAX)
		return WORK_CLAIM_ERROR;
	memset(out, 0, sizeof *out * (size_t)want);
	/* The candidate read locks nothing, so it needs no transaction: a
	 * runner woken while nothing can run (a model at its limit) costs one
	 * round trip, not three. */
	got = claim_model(db, c, m, &queued);
	if (got <= 0)
		return got < 0 ? WORK_CLAIM_ERROR : WORK_CLAIM_NONE;
	/* no more slots than requests queued: a lone request takes one warm
	 * instance, not a batch to give back */
	if (queued >= 1 && queued < want)
		want = queued;
	if (db_begin(db) < 0) {
		rc = WORK_CLAIM_ERROR;
		goto clear;
	}
	rc = claim_in_tx(db, c, m, want, out, n);
	if (rc != WORK_CLAIM_OK) {
		db_rollback(db);
		goto clear;
	}
	if (db_commit(db) < 0) {
		rc = WORK_CLAIM_ERROR;
		goto clear;
	}
	return WORK_CLAIM_OK;
clear:
	db_work_model_clear(m);
	memset(out, 0, sizeof *out * (size_t)want);
	*n = 0;
	return rc;
}
