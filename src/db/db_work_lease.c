/*
 * db_work_lease.c — a running request's lease: renew, hand back, read its status.
 *
 * Runs in: modelhubd children and supervisor. Called by: runner.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: work_request rows RUNNING under the calling runner (see the
 * ownership rule in db_work.h).
 */
#include "db/db_work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_work_handback(struct db *db, int64_t id, const char *runner_id)
{
	const char *p[2] = {DB_INT(id), runner_id};

	/* The attempt is not counted; a request never started loses its start. */
	return db_affected(db_prep(db, "work_handback",
				"UPDATE work_request SET status = 'QUEUED', runner_id = NULL,"
				" lease_expires_at = NULL, attempts = GREATEST(attempts - 1, 0),"
				" started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,"
				" deadline = CASE WHEN attempts <= 1 THEN NULL ELSE deadline END"
				" WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2",
				2, p)) < 0 ? -1 : 0;
}

int db_work_renew_many(struct db *db, const int64_t *ids, const int *attempts, int n, const char *runner_id,
		       int lease_s, unsigned char *ok)
{
	char *ai = db_int_array(ids, NULL, n), *aa = db_int_array(NULL, attempts, n);
	const char *p[4] = {ai, runner_id, DB_INT(lease_s), aa};
	PGresult *r = NULL;
	int got = -1;

	memset(ok, 0, (size_t)n);
	if (ai && aa)
		r = db_prep(db, "work_renew_many",
			    "UPDATE work_request w SET lease_expires_at = now() + make_interval(secs => $3::int)"
			    " FROM unnest($1::bigint[], $4::int[]) AS a(id, attempts)"
			    " WHERE w.id = a.id AND w.attempts = a.attempts AND w.status = 'RUNNING'"
			    " AND w.runner_id = $2 RETURNING w.id, w.attempts",
			    4, p);
	free(ai);
	free(aa);
	if (!r)
		return -1;
	got = PQntuples(r);
	for (int i = 0; i < got; i++) {
		int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		int att = atoi(PQgetvalue(r, i, 1));
		for (int k = 0; k < n; k++)
			if (ids[k] == id && attempts[k] == att)
				ok[k] = 1;
	}
	PQclear(r);
	return got;
}

int db_work_status(struct db *db, int64_t id, char *out, size_t outlen)
{
	const char *p[1] = {DB_INT(id)};
	PGresult *r;
	int rc = 1;

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
