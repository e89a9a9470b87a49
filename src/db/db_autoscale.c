/*
 * db_autoscale.c — implementation of db_autoscale.h.
 *
 * Runs in: the autoscaler child, runners, FastCGI workers.
 * Called by: hubd/autoscaler.c, hubd/runner.c, fcgi/api_autoscaler.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: see db_autoscale.h. Every write carries the hub lease's
 * fencing token (DB_LEASE_FENCE): a leader that lost the lease (frozen,
 * partitioned) writes nothing, whatever it believes.
 */
#include "db/db_autoscale.h"
#include "db/db_lead.h"

#include <stdio.h>
#include <string.h>

static const char *nz(const char *s)
{
	return s && s[0] ? s : NULL;
}

int db_as_decision_add(struct db *db, int64_t token, const struct db_as_decision *d)
{
	const char *p[11] = {d->replica, d->mode, d->action, nz(d->group), nz(d->node), nz(d->pod),
			     nz(d->model), d->count >= 0 ? DB_INT(d->count) : NULL, d->reason, d->detail_json,
			     DB_INT(token)};

	return db_done(db_prep(db, "as_decision",
			       "INSERT INTO autoscaler_decision (replica, mode, action, node_group, node, pod,"
			       " model_id, count, reason, detail)"
			       " SELECT $1, $2, $3, $4, $5, $6, $7, $8::int, $9, $10::jsonb WHERE " DB_LEASE_FENCE(11),
			       11, p));
}

int db_as_status_put(struct db *db, int64_t token, const char *replica, const char *snapshot_json)
{
	const char *p[3] = {replica, snapshot_json, DB_INT(token)};

	return db_done(db_prep(db, "as_status",
			       "INSERT INTO autoscaler_status (replica, snapshot) SELECT $1, $2::jsonb"
			       " WHERE " DB_LEASE_FENCE(3)
			       " ON CONFLICT (replica) DO UPDATE SET snapshot = EXCLUDED.snapshot, updated_at = now()",
			       3, p));
}

int db_as_pod_set(struct db *db, int64_t token, const char *pod, const char *model, const char *verdict,
		  const char *message, const char *group)
{
	const char *p[6] = {pod, nz(model), verdict, message ? message : "", nz(group), DB_INT(token)};

	return db_done(db_prep(db, "as_pod_set",
			       "INSERT INTO autoscaler_pod (pod, model_id, verdict, message, node_group)"
			       " SELECT $1, $2, $3, $4, $5 WHERE " DB_LEASE_FENCE(6) " ON CONFLICT (pod) DO UPDATE SET"
			       " model_id = EXCLUDED.model_id, verdict = EXCLUDED.verdict,"
			       " message = EXCLUDED.message, node_group = EXCLUDED.node_group, updated_at = now()",
			       6, p));
}

int db_as_pod_prune(struct db *db, int64_t token, double older_s)
{
	char s[32];
	const char *p[2] = {s, DB_INT(token)};

	snprintf(s, sizeof s, "%.3f", older_s);
	return db_done(db_prep(db, "as_pod_prune",
			       "DELETE FROM autoscaler_pod WHERE updated_at < now() - make_interval(secs => $1::float8)"
			       " AND " DB_LEASE_FENCE(2),
			       2, p));
}

int db_as_fence_ok(struct db *db, int64_t token)
{
	const char *p[1] = {DB_INT(token)};
	PGresult *r = db_prep(db, "as_fence", "SELECT " DB_LEASE_FENCE(1), 1, p);
	int rc = r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';

	PQclear(r);
	return rc;
}

int db_as_pod_get(struct db *db, const char *pod, char *verdict, size_t vlen, char *message, size_t mlen)
{
	const char *p[1] = {pod};
	PGresult *r = db_prep(db, "as_pod_get", "SELECT verdict, message FROM autoscaler_pod WHERE pod = $1", 1, p);
	int rc = -1;

	if (r) {
		rc = PQntuples(r) == 1;
		if (rc) {
			snprintf(verdict, vlen, "%s", PQgetvalue(r, 0, 0));
			snprintf(message, mlen, "%s", PQgetvalue(r, 0, 1));
		}
	}
	PQclear(r);
	return rc;
}

int db_as_node_mark(struct db *db, int64_t token, const char *node, const char *group, const char *purpose)
{
	const char *p[4] = {node, group, purpose, DB_INT(token)};

	return db_done(db_prep(db, "as_node_mark",
			       "INSERT INTO autoscaler_node (node, node_group, purpose) SELECT $1, $2, $3"
			       " WHERE " DB_LEASE_FENCE(4) " ON CONFLICT (node) DO UPDATE SET purpose = EXCLUDED.purpose",
			       4, p));
}

int db_as_node_unmark(struct db *db, int64_t token, const char *node)
{
	const char *p[2] = {node, DB_INT(token)};

	return db_done(db_prep(db, "as_node_unmark",
			       "DELETE FROM autoscaler_node WHERE node = $1 AND " DB_LEASE_FENCE(2), 2, p));
}

int db_as_node_purpose(struct db *db, const char *node, char *purpose, size_t n)
{
	const char *p[1] = {node};
	PGresult *r = db_prep(db, "as_node_purpose", "SELECT purpose FROM autoscaler_node WHERE node = $1", 1, p);
	int rc = -1;

	if (r) {
		rc = PQntuples(r) == 1;
		if (rc)
			snprintf(purpose, n, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

/* Append each row's columns (space-separated) as one line. */
static int lines(PGresult *r, struct buf *out)
{
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		for (int c = 0; c < PQnfields(r); c++)
			buf_printf(out, "%s%s", c ? " " : "", PQgetvalue(r, i, c));
		buf_addc(out, '\n');
	}
	PQclear(r);
	return 0;
}

int db_as_busy_pods(struct db *db, struct buf *out)
{
	return lines(db_prep(db, "as_busy", "SELECT name FROM model_instance WHERE state = 'BUSY' AND name IS NOT NULL",
			     0, NULL), out);
}

int db_as_idle_pods(struct db *db, struct buf *out)
{
	return lines(db_prep(db, "as_idle", "SELECT name FROM model_instance WHERE state = 'IDLE' AND name IS NOT NULL",
			     0, NULL), out);
}

int db_as_model_requests(struct db *db, struct buf *out)
{
	return lines(db_prep(db, "as_model_req", "SELECT id, cpu_request_m, memory_request_mib FROM model", 0, NULL),
		     out);
}

int db_as_report(struct db *db, int limit, struct buf *out)
{
	const char *p[1] = {DB_INT(limit)};
	PGresult *r = db_prep(db, "as_report",
			      "SELECT json_build_object("
			      " 'updated_at', (SELECT updated_at FROM autoscaler_status ORDER BY updated_at DESC LIMIT 1),"
			      " 'replica', (SELECT replica FROM autoscaler_status ORDER BY updated_at DESC LIMIT 1),"
			      " 'snapshot', (SELECT snapshot FROM autoscaler_status ORDER BY updated_at DESC LIMIT 1),"
			      " 'decisions', COALESCE((SELECT json_agg(d ORDER BY d.id DESC) FROM"
			      "  (SELECT id, at, replica, mode, action, node_group, node, pod, model_id, count, reason,"
			      "   detail FROM autoscaler_decision ORDER BY id DESC LIMIT $1::int) d), '[]'::json))",
			      1, p);

	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		return -1;
	}
	buf_adds(out, PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}
