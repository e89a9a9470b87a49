/*
 * db_pod.c — the pod watch's records of model instances (see db_pod.h).
 *
 * Runs in: the kubewatch child. Called by: hubd/kubewatch.c.
 * Owns: nothing beyond the arrays it hands out; every PGresult is cleared.
 * Shared state: model_instance (also replica_id, when adopting a row
 * another replica left), instance_event, instance_log (written);
 * work_request, hub_server, model (read). Each write is one statement, so
 * each is atomic on its own; rows are ended only while still active
 * (state <> 'TERMINATED'), so a runner ending the same row at the same
 * moment wins or loses cleanly and its reason is kept.
 *
 * NOTES: statements are prepared once per connection under "pod_*" names;
 * inputs are always bound parameters, integers formatted here.
 */
#include "db/db_pod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The latest pod in the row's snapshot, and each change in the history:
 * a POD_STATE event (source k8s) carrying that moment's pod state and the
 * pod's status object, so the history keeps one pod dump per change, not
 * only the last (issue 19 #12). The watch calls this only when the pod's
 * phase, reason, readiness, node, address, restarts or deletion changed. */
static const char SQL_POD[] =
	"WITH u AS (UPDATE model_instance SET node = CASE WHEN $3 <> '' THEN $3 ELSE node END, "
	"       address = CASE WHEN $4 <> '' THEN $4 ELSE address END, "
	"       snapshot = coalesce(snapshot, '{}'::jsonb) || jsonb_build_object('pod', $5::jsonb, "
	"                  'pod_state', $6::jsonb) "
	"WHERE id = $1 AND backend = 'kubernetes' AND (name = $2 OR name IS NULL) RETURNING id) "
	"INSERT INTO instance_event (instance_id, kind, source, detail) "
	"SELECT id, 'POD_STATE', 'k8s', $6::jsonb || jsonb_build_object('pod', $2::text, "
	"       'node', nullif($3, ''), 'pod_status', $5::jsonb->'status') FROM u";

/* A batch of Kubernetes events ($1: a JSON array of {id, pod, at, kind,
 * uid, count, detail}, kubeevents.c's lines): each a source 'k8s'
 * instance_event of the instance row that has that pod name, once per
 * (uid, count) — in the batch and among the rows already there — in the
 * batch's order (the events' ids follow their arrival, as one at a time). */
static const char SQL_EVENTS[] =
	"INSERT INTO instance_event (instance_id, at, kind, source, detail) "
	"SELECT mi.id, CASE WHEN (d.e->>'at')::bigint > 0 "
	"                   THEN to_timestamp((d.e->>'at')::bigint / 1000.0) ELSE now() END, "
	"       d.e->>'kind', 'k8s', d.e->'detail' "
	"FROM (SELECT DISTINCT ON (e->>'id', e->>'uid', e->>'count') e, n "
	"      FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(e, n) "
	"      ORDER BY e->>'id', e->>'uid', e->>'count', n) d "
	"JOIN model_instance mi ON mi.id = (d.e->>'id')::bigint AND mi.name = d.e->>'pod' "
	"WHERE NOT EXISTS (SELECT 1 FROM instance_event x WHERE x.instance_id = mi.id "
	"                  AND x.source = 'k8s' AND x.detail->>'uid' = d.e->>'uid' "
	"                  AND x.detail->>'count' = d.e->>'count') "
	"ORDER BY d.n";

/* Column 2: may another replica's ended pod go? Its request is no longer
 * leased (not RUNNING, or the lease expired), or its replica stopped
 * beating (hub_server) for $2 seconds. */
static const char SQL_ROWS[] =
	"SELECT mi.id, mi.state = 'TERMINATED', "
	"       coalesce((SELECT w.status <> 'RUNNING' OR w.lease_expires_at < now() "
	"                 FROM work_request w WHERE w.id = mi.current_request_id), true) "
	"       OR NOT EXISTS (SELECT 1 FROM hub_server h WHERE h.replica_id = mi.replica_id "
	"                      AND h.heartbeat_at > now() - make_interval(secs => $2::int)) "
	"FROM model_instance mi WHERE mi.id = ANY ($1::bigint[])";

/* Active rows of replicas that stopped beating, and rows handed over at a
 * shutdown that nobody adopted within $2 s (their pod was not ready
 * anywhere): their runners are gone but pods outlive them; end the rows so
 * their pods can be deleted. Runs after db_pod_adopt in a pass. */
static const char SQL_DEAD_REPLICAS[] =
	"WITH x AS (UPDATE model_instance mi SET state = 'TERMINATED', "
	"    termination_reason = coalesce(termination_reason, 'LOST'), "
	"    termination_detail = coalesce(termination_detail, 'its hub replica stopped'), "
	"    terminated_at = now(), updated_at = now() "
	"  WHERE mi.backend = 'kubernetes' AND mi.state <> 'TERMINATED' "
	"    AND (mi.replica_id IS NOT NULL AND mi.replica_id <> $1 "
	"    AND NOT EXISTS (SELECT 1 FROM hub_server h WHERE h.replica_id = mi.replica_id "
	"                    AND h.heartbeat_at > now() - make_interval(secs => $2::int)) "
	"      OR mi.replica_id IS NULL AND mi.updated_at < now() - make_interval(secs => $2::int)) "
	"  RETURNING mi.id, mi.replica_id) "
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"SELECT id, 'TERMINATED', jsonb_build_object('reason', 'LOST', 'by', 'kubewatch', "
	"       'replica', replica_id) FROM x RETURNING instance_id";

/* Column 4: an admin asked for its log within $2 s (db_inst_log_wanted). */
static const char SQL_ACTIVE[] =
	"SELECT id, coalesce(name, ''), coalesce(address, ''), "
	"       (extract(epoch FROM now() - started_at) * 1000)::bigint, "
	"       coalesce((snapshot->>'log_wanted_at')::timestamptz > "
	"                now() - make_interval(secs => $2::int), false) "
	"FROM model_instance WHERE backend = 'kubernetes' AND state <> 'TERMINATED' "
	"  AND replica_id = $1 ORDER BY id";

static const char SQL_ADDRESS[] =
	"UPDATE model_instance SET address = $2 WHERE id = $1 AND state <> 'TERMINATED'";

static const char SQL_LOST[] =
	"WITH x AS (UPDATE model_instance SET state = 'TERMINATED', "
	"    termination_reason = coalesce(termination_reason, $3), "
	"    termination_detail = coalesce(termination_detail, $2), "
	"    terminated_at = now(), updated_at = now() "
	"  WHERE id = $1 AND state <> 'TERMINATED' RETURNING id, termination_reason) "
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"SELECT id, 'TERMINATED', jsonb_build_object('reason', termination_reason, "
	"       'by', 'kubewatch', 'detail', $2::text) FROM x RETURNING instance_id";

/* IDLE past the model's idle_seconds + $2: the runner that would have
 * stopped it is gone (pods outlive runners), so end it here (an adopted
 * row, which no runner owns, at idle_seconds); the pod is
 * then deleted by the watch's reconcile pass. Conditional on IDLE, so a
 * runner taking the instance at the same moment wins or loses cleanly. */
static const char SQL_IDLE_ORPHANS[] =
	"WITH x AS (UPDATE model_instance mi SET state = 'TERMINATED', termination_reason = 'IDLE', "
	"    termination_detail = 'idle past the model''s idle_seconds with no runner to stop it', "
	"    terminated_at = now(), updated_at = now() "
	"  FROM model m WHERE m.id = mi.model_id AND mi.backend = 'kubernetes' "
	"    AND mi.replica_id = $1 AND mi.state = 'IDLE' "
	"    AND coalesce(mi.last_used_at, mi.started_at) < now() - make_interval(secs => "
	"        m.idle_seconds + CASE WHEN mi.snapshot->>'adopted_by' = $1 THEN 0 ELSE $2::int END) "
	"  RETURNING mi.id) "
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"SELECT id, 'TERMINATED', '{\"reason\":\"IDLE\",\"by\":\"kubewatch\"}'::jsonb FROM x "
	"RETURNING instance_id";

/* Warm pods a replica left behind, adopted by replica $1: rows handed over
 * at their replica's shutdown (replica_id NULL), and rows of a replica that
 * has not beaten (hub_server) for $2 s — IDLE, or BUSY once their request
 * is no longer leased (the runner that used it died with its replica).
 * Only pods the caller's watch sees ready ($3: their instance ids). SKIP
 * LOCKED and the conditions re-checked on the locked row, so two replicas
 * never adopt the same one. The adopted row is IDLE with a full idle
 * period ahead; NOTIFY work_queued wakes runners with requests for it. */
static const char SQL_ADOPT[] =
	"WITH c AS (SELECT mi.id FROM model_instance mi "
	"  WHERE mi.id = ANY ($3::bigint[]) AND mi.backend = 'kubernetes' AND mi.name IS NOT NULL "
	"    AND NOT mi.stop_requested "
	"    AND (mi.replica_id IS NULL AND mi.state = 'IDLE' "
	"      OR mi.replica_id <> $1 AND NOT EXISTS (SELECT 1 FROM hub_server h "
	"           WHERE h.replica_id = mi.replica_id "
	"             AND h.heartbeat_at > now() - make_interval(secs => $2::int)) "
	"         AND (mi.state = 'IDLE' OR mi.state = 'BUSY' AND coalesce((SELECT w.status <> 'RUNNING' "
	"              OR w.lease_expires_at < now() FROM work_request w "
	"              WHERE w.id = mi.current_request_id), true))) "
	"  ORDER BY mi.id LIMIT 256 FOR UPDATE OF mi SKIP LOCKED), "
	"x AS (UPDATE model_instance mi SET replica_id = $1, state = 'IDLE', current_request_id = NULL, "
	"    last_used_at = now(), updated_at = now(), "
	"    snapshot = mi.snapshot || jsonb_build_object('adopted_by', $1::text, 'adopted_from', "
	"               coalesce(mi.replica_id, mi.snapshot->>'handed_over_by')) "
	"  FROM c WHERE mi.id = c.id RETURNING mi.id, mi.name, mi.model_id, mi.snapshot->>'adopted_from' AS old), "
	"e AS (INSERT INTO instance_event (instance_id, kind, detail) "
	"  SELECT id, 'ADOPTED', jsonb_build_object('by', $1::text, 'from', old) FROM x) "
	"SELECT x.id, x.name, x.old, pg_notify('work_queued', x.model_id) FROM x";

/* Adopted rows of replica $1 an admin (or a runner that found the pod
 * broken) asked to stop: no runner owns them, so they end here once no
 * request uses them; the reconcile pass then deletes the pod. */
static const char SQL_ADOPTED_STOPS[] =
	"WITH x AS (UPDATE model_instance mi SET state = 'TERMINATED', termination_reason = 'STOPPED', "
	"    termination_detail = 'stop requested (adopted instance)', "
	"    terminated_at = now(), updated_at = now() "
	"  WHERE mi.backend = 'kubernetes' AND mi.replica_id = $1 AND mi.stop_requested "
	"    AND mi.snapshot->>'adopted_by' = $1 AND (mi.state = 'IDLE' OR mi.state = 'BUSY' "
	"      AND coalesce((SELECT w.status <> 'RUNNING' OR w.lease_expires_at < now() "
	"           FROM work_request w WHERE w.id = mi.current_request_id), true)) "
	"  RETURNING mi.id) "
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"SELECT id, 'TERMINATED', '{\"reason\":\"STOPPED\",\"by\":\"kubewatch\"}'::jsonb FROM x "
	"RETURNING instance_id";

/* Shutdown of replica $1: its adopted IDLE rows (no runner owns them, so
 * no runner hands them over) are left for the replicas that remain. */
static const char SQL_HAND_OVER_ADOPTED[] =
	"WITH x AS (UPDATE model_instance SET replica_id = NULL, updated_at = now(), "
	"    snapshot = snapshot || jsonb_build_object('handed_over_by', $1::text) "
	"  WHERE backend = 'kubernetes' AND replica_id = $1 AND state = 'IDLE' AND NOT stop_requested "
	"    AND snapshot->>'adopted_by' = $1 RETURNING id) "
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"SELECT id, 'HANDED_OVER', jsonb_build_object('by', $1::text) FROM x RETURNING instance_id";

/* Never over the runner's final copy: only while the row is active. */
static const char SQL_LOG_LIVE[] =
	"INSERT INTO instance_log (instance_id, text, updated_at) "
	"SELECT $1::bigint, $2::text, now() WHERE EXISTS (SELECT 1 FROM model_instance "
	"  WHERE id = $1::bigint AND state <> 'TERMINATED') "
	"ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now()";

/* An ended pod's log: kept unless a longer copy (the runner's) is there. */
static const char SQL_LOG_ONCE[] =
	"INSERT INTO instance_log (instance_id, text, updated_at) VALUES ($1, $2, now()) "
	"ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now() "
	"WHERE length(instance_log.text) < length(EXCLUDED.text)";

typedef char num_t[24];

static const char *num(num_t out, int64_t v)
{
	snprintf(out, sizeof(num_t), "%lld", (long long)v);
	return out;
}

int db_pod_record(struct db *db, int64_t id, const char *pod, const char *node,
		  const char *address, const char *pod_json, const char *state_json)
{
	num_t ids;
	const char *p[6] = {num(ids, id), pod, node, address, pod_json, state_json};
	PGresult *r = db_prep(db, "pod_record", SQL_POD, 6, p);

	PQclear(r);
	return r ? 0 : -1;
}

int db_pod_events_add(struct db *db, const char *events_json)
{
	const char *p[1] = {events_json};

	return db_affected(db_prep(db, "pod_events", SQL_EVENTS, 1, p));
}

int db_pod_rows(struct db *db, const int64_t *ids, int n, int dead_s, struct db_pod_row **out,
		int *nout)
{
	num_t dead;
	char *arr = db_int_array(ids, NULL, n);
	const char *p[2] = {arr, num(dead, dead_s)};
	PGresult *r;

	*out = NULL;
	*nout = 0;
	if (!arr)
		return -1;
	r = db_prep(db, "pod_rows", SQL_ROWS, 2, p);
	free(arr);
	if (!r)
		return -1;
	if (PQntuples(r) > 0 && !(*out = calloc((size_t)PQntuples(r), sizeof **out))) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct db_pod_row *x = &(*out)[(*nout)++];
		x->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		x->terminated = PQgetvalue(r, i, 1)[0] == 't';
		x->reapable = PQgetisnull(r, i, 2) || PQgetvalue(r, i, 2)[0] == 't';
	}
	PQclear(r);
	return 0;
}

int db_pod_active(struct db *db, const char *replica, int view_s, struct db_pod_active **out, int *n)
{
	num_t vs;
	const char *p[2] = {replica, num(vs, view_s)};
	PGresult *r = db_prep(db, "pod_active", SQL_ACTIVE, 2, p);

	*out = NULL;
	*n = 0;
	if (!r)
		return -1;
	if (PQntuples(r) > 0 && !(*out = calloc((size_t)PQntuples(r), sizeof **out))) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct db_pod_active *x = &(*out)[(*n)++];
		x->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		snprintf(x->name, sizeof x->name, "%s", PQgetvalue(r, i, 1));
		snprintf(x->address, sizeof x->address, "%s", PQgetvalue(r, i, 2));
		x->age_ms = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		x->log_wanted = PQgetvalue(r, i, 4)[0] == 't';
	}
	PQclear(r);
	return 0;
}

int db_pod_set_address(struct db *db, int64_t id, const char *address)
{
	num_t ids;
	const char *p[2] = {num(ids, id), address};
	PGresult *r = db_prep(db, "pod_address", SQL_ADDRESS, 2, p);

	PQclear(r);
	return r ? 0 : -1;
}

int db_pod_end_lost(struct db *db, int64_t id, const char *why, const char *reason)
{
	num_t ids;
	const char *p[3] = {num(ids, id), why, reason};
	PGresult *r = db_prep(db, "pod_lost", SQL_LOST, 3, p);
	int rc = r ? PQntuples(r) == 1 : -1;

	PQclear(r);
	return rc;
}

/* The ids a RETURNING statement gave, into a malloc()ed array. */
static int take_ids(PGresult *r, int64_t **ids, int *n)
{
	*ids = NULL;
	*n = 0;
	if (!r)
		return -1;
	if (PQntuples(r) > 0 && !(*ids = calloc((size_t)PQntuples(r), sizeof **ids))) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++)
		(*ids)[(*n)++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	return 0;
}

int db_pod_end_dead_replicas(struct db *db, const char *replica, int dead_s, int64_t **ids,
			     int *n)
{
	num_t dead;
	const char *p[2] = {replica, num(dead, dead_s)};

	return take_ids(db_prep(db, "pod_dead_replicas", SQL_DEAD_REPLICAS, 2, p), ids, n);
}

int db_pod_end_idle_orphans(struct db *db, const char *replica, int grace_s, int64_t **ids,
			    int *n)
{
	num_t grace;
	const char *p[2] = {replica, num(grace, grace_s)};

	return take_ids(db_prep(db, "pod_idle_orphans", SQL_IDLE_ORPHANS, 2, p), ids, n);
}

int db_pod_log_store(struct db *db, int64_t id, const char *text, int live)
{
	num_t ids;
	const char *p[2] = {num(ids, id), text};
	PGresult *r = live ? db_prep(db, "pod_log_live", SQL_LOG_LIVE, 2, p) :
			     db_prep(db, "pod_log_once", SQL_LOG_ONCE, 2, p);

	PQclear(r);
	return r ? 0 : -1;
}

int db_pod_adopt(struct db *db, const char *replica, int dead_s, const int64_t *ready, int n,
		 struct db_pod_adopted **out, int *nout)
{
	num_t dead;
	char *arr;
	const char *p[3] = {replica, num(dead, dead_s), NULL};
	PGresult *r;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	if (!(arr = db_int_array(ready, NULL, n)))
		return -1;
	p[2] = arr;
	r = db_prep(db, "pod_adopt", SQL_ADOPT, 3, p);
	free(arr);
	if (!r)
		return -1;
	if (PQntuples(r) > 0 && !(*out = calloc((size_t)PQntuples(r), sizeof **out))) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct db_pod_adopted *x = &(*out)[(*nout)++];
		x->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		snprintf(x->name, sizeof x->name, "%s", PQgetvalue(r, i, 1));
		snprintf(x->from, sizeof x->from, "%s", PQgetvalue(r, i, 2));
	}
	PQclear(r);
	return 0;
}

int db_pod_end_adopted_stops(struct db *db, const char *replica, int64_t **ids, int *n)
{
	const char *p[1] = {replica};

	return take_ids(db_prep(db, "pod_adopted_stops", SQL_ADOPTED_STOPS, 1, p), ids, n);
}

int db_pod_hand_over_adopted(struct db *db, const char *replica, int64_t **ids, int *n)
{
	const char *p[1] = {replica};

	return take_ids(db_prep(db, "pod_hand_over_adopted", SQL_HAND_OVER_ADOPTED, 1, p), ids, n);
}
