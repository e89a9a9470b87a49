/*
 * db_instance.h — queries on model instances: model_instance rows, their
 * instance_event and instance_log records.
 *
 * Runs in: modelhubd children (runner, janitor, monitor, scraper) and
 * supervisor; modelhub-fcgi workers (the instances API). Called by: those
 * files; db_work.h includes this header for the runner.
 * Returns: 0 / -1 unless said otherwise; PGresult* results are PQclear()ed
 * by the caller.
 */
#ifndef MH_DB_INSTANCE_H
#define MH_DB_INSTANCE_H

#include <stdint.h>

#include "db/db.h"

int db_inst_started(struct db *db, int64_t id, const char *name, const char *address, int pid,
		    const char *node);
/* Address (and node, when known) learnt after create. */
int db_inst_address(struct db *db, int64_t id, const char *address, const char *node);
/* Set state (and ready_at for READY/BUSY after start) and add an event. */
int db_inst_state(struct db *db, int64_t id, const char *state, const char *event,
		  const char *detail_json);
int db_inst_event(struct db *db, int64_t id, const char *kind, const char *detail_json);
/* BUSY -> IDLE (last_used_at = now). */
int db_inst_release(struct db *db, int64_t id);
/* IDLE -> TERMINATING if idle for at least idle_seconds; 1 done, 0 not. */
int db_inst_take_idle(struct db *db, int64_t id, int idle_seconds);
/* Record the end: TERMINATED with reason/detail, event(s), the log text. */
int db_inst_terminated(struct db *db, int64_t id, const char *reason, const char *detail,
		       const char *log_text);
/* Rows of these instances: id, state, stop_requested ('t'/'f'),
 * termination_reason. ids: Postgres array literal "{1,2}". */
PGresult *db_inst_poll(struct db *db, const char *ids);
/* Set stop_requested (a borrower asks the owner to stop it). */
int db_inst_request_stop(struct db *db, int64_t id);
/* Non-terminated instances of this replica: id, pid. */
PGresult *db_inst_active_of_replica(struct db *db, const char *replica_id);
/* Mark one instance LOST (its process is gone and nobody reaped it). */
int db_inst_lost(struct db *db, int64_t id, const char *detail);

#endif
