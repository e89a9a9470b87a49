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

int db_work_renew(struct db *db, int64_t id, const char *runner_id, int lease_s)
{
	const char *p[3] = {DB_INT(id), runner_id, DB_INT(lease_s)};
	int n;

	n = db_affected(db_prep(db, "work_renew",
			     "UPDATE work_request SET lease_expires_at = now() + make_interval(secs => $3::int)"
			     " WHERE id = $1 AND status = 'RUNNING' AND runner_id = $2",
			     3, p));
	return n < 0 ? -1 : n > 0;
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
