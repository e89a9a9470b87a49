/*
 * db_lead.h — electing one replica: the leader lease, a row in
 * leader_lease with a fencing token (sql/012), for the janitor's sweeps,
 * the nightly recommendations, the kubelet scraping and leader-only roles.
 * (Session advisory locks are not used: a frozen process keeps its session
 * and so its lock.)
 *
 * Runs in: modelhubd child janitor (the elector); the fence macro in any
 * leader-only statement. Called by: janitor.c, db_janitor.c,
 * db_recommend.c.
 * Shared state: leader_lease (the lease rows).
 *
 * Lease contract: db_lease_hold takes or renews the lease for ttl_s seconds
 * of database time and returns its token; the token grows each time the
 * lease changes hands (or lapsed before its holder renewed it). A
 * leader-only write passes the token it was elected with as a parameter
 * and adds DB_LEASE_FENCE(n) to its WHERE clause: the write does nothing
 * once the lease has expired or moved on, whatever the writer believes.
 */
#ifndef MH_DB_LEAD_H
#define MH_DB_LEAD_H

#include <stdint.h>

#include "db/db.h"

/* The lease of the hub's leader (janitor, leader-only roles). */
#define DB_LEASE_HUB "hub"

/* SQL condition "the hub lease is still held with token $n" ($n a bigint
 * parameter): put it in the WHERE clause of every leader-only write. */
#define DB_LEASE_FENCE(n)                                                      \
	"EXISTS (SELECT 1 FROM leader_lease WHERE name = '" DB_LEASE_HUB "'" \
	" AND token = $" #n "::bigint AND expires_at > clock_timestamp())"

/* Take the lease name for holder, or renew it if holder has it and it has
 * not expired, for ttl_s seconds. 1 held (*token set), 0 another holder
 * has it, -1 database error. */
int db_lease_hold(struct db *db, const char *name, const char *holder, int ttl_s,
		  int64_t *token);
/* Give the lease up at once (clean stop), if holder still has it with
 * token: 0 / -1. */
int db_lease_drop(struct db *db, const char *name, const char *holder, int64_t token);
#endif
