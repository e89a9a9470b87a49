/*
 * db_lead.c — implementation of db_lead.h.
 *
 * Runs in: modelhubd child janitor. Called by: janitor.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: see db_lead.h.
 */
#include "db/db_lead.h"

#include <stdio.h>
#include <stdlib.h>

int db_lease_hold(struct db *db, const char *name, const char *holder, int ttl_s,
		  int64_t *token)
{
	const char *p[3] = {name, holder, DB_INT(ttl_s)};
	PGresult *r;
	int held;

	/* ON CONFLICT ... WHERE: the row changes only for its holder or once
	 * expired; a new holder (or a lapsed one) gets token + 1 */
	r = db_prep(db, "lease_hold",
		    "INSERT INTO leader_lease AS l (name, holder, token, expires_at, renewed_at)"
		    " VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::int),"
		    "  clock_timestamp())"
		    " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
		    "  token = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > clock_timestamp()"
		    "   THEN l.token ELSE l.token + 1 END,"
		    "  expires_at = EXCLUDED.expires_at, renewed_at = EXCLUDED.renewed_at"
		    " WHERE l.holder = EXCLUDED.holder OR l.expires_at <= clock_timestamp()"
		    " RETURNING token",
		    3, p);
	if (!r)
		return -1;
	held = PQntuples(r) == 1;
	if (held && token)
		*token = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return held;
}

int db_lease_drop(struct db *db, const char *name, const char *holder, int64_t token)
{
	const char *p[3] = {name, holder, DB_INT(token)};

	return db_done(db_prep(db, "lease_drop",
			       "UPDATE leader_lease SET expires_at = clock_timestamp()"
			       " WHERE name = $1 AND holder = $2 AND token = $3::bigint"
			       " AND expires_at > clock_timestamp()",
			       3, p));
}
