/*
 * db_stats.h — counts and status read for /metrics and /api/health.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_metrics.c, api_health.c.
 * Shared state: reads work_request, model_instance, schema_migration.
 * Returns: a PGresult (PQclear()ed by the caller) or NULL on error.
 */
#ifndef MH_DB_STATS_H
#define MH_DB_STATS_H

#include "db/db.h"

/* Each two columns (label value, count), one row per label. */
PGresult *db_stats_requests(struct db *db);     /* by status, every status listed */
PGresult *db_stats_queue(struct db *db);        /* QUEUED per model */
PGresult *db_stats_instances(struct db *db);    /* by state, every state listed */
PGresult *db_stats_terminations(struct db *db); /* ended instances by reason */
/* One row: latest applied migration (NULL when none), current schema. */
PGresult *db_stats_health(struct db *db);

#endif
