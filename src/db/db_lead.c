/*
 * db_lead.c — implementation of db_lead.h.
 *
 * Runs in: modelhubd children janitor and scraper. Called by: janitor.c,
 * scraper.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: see db_lead.h.
 */
#include "db/db_lead.h"

/* "This session holds the advisory lock $1" as an SQL expression. */
#define HELD_HERE \
	"EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'" \
	" AND pid = pg_backend_pid() AND granted" \
	" AND ((classid::bigint << 32) | objid::bigint) = $1::bigint)"

/* Run a boolean query about the lock key $1: 1 true, 0 false or error. */
static int lock_query(struct db *db, const char *name, const char *sql, int64_t key)
{
	const char *p[1] = {DB_INT(key)};
	PGresult *r = db_prep(db, name, sql, 1, p);
	int ok = r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';

	PQclear(r);
	return ok;
}

int db_lead_try(struct db *db, int64_t key)
{
	return lock_query(db, "lead_try", "SELECT pg_try_advisory_lock($1::bigint)", key);
}

int db_lead_still(struct db *db, int64_t key)
{
	return lock_query(db, "lead_still", "SELECT " HELD_HERE, key);
}

int db_lead_hold(struct db *db, int64_t key)
{
	return lock_query(db, "lead_hold",
			  "SELECT CASE WHEN " HELD_HERE " THEN true ELSE pg_try_advisory_lock($1::bigint) END",
			  key);
}
