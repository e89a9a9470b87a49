/*
 * db_instance.h — queries on model instances: model_instance rows, their
 * instance_event and instance_log records.
 *
 * Runs in: modelhubd children (runner, janitor, monitor, scraper) and
 * supervisor; modelhub-fcgi workers (the instances API). Called by: those
 * files (api_instances.c for the admin views); db_work.h includes this
 * header for the runner.
 * Returns: 0 / -1 unless said otherwise; PGresult* results are PQclear()ed
 * by the caller.
 */
#ifndef MH_DB_INSTANCE_H
#define MH_DB_INSTANCE_H

#include <stdint.h>

#include "db/db.h"

/* STARTING with its name, address, pid and node, and the STARTED event. */
int db_inst_started(struct db *db, int64_t id, const char *name, const char *address, int pid,
		    const char *node);
/* READY (event) and BUSY at once, with the address (and node) learnt after
 * create unless address is NULL: one statement. */
int db_inst_ready_busy(struct db *db, int64_t id, const char *address, const char *node);
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
 * termination_reason, serving ('t': its current request is RUNNING).
 * ids: Postgres array literal "{1,2}". */
PGresult *db_inst_poll(struct db *db, const char *ids);
/* Set stop_requested (a borrower asks the owner to stop it). */
int db_inst_request_stop(struct db *db, int64_t id);
/* Shutdown of a replica (kubernetes: pods outlive it): leave its IDLE
 * instance running for another replica to adopt (replica_id set to NULL,
 * event HANDED_OVER). 1 handed over, or no longer this replica's (another
 * of its runners handed it over, or another replica adopted it): not ours
 * to stop; 0 still ours but not IDLE (or stop requested), -1. */
int db_inst_hand_over(struct db *db, int64_t id, const char *replica_id);
/* Non-terminated instances of this replica not updated for 5 s: id, pid,
 * state, and the runner_id of the RUNNING request they serve ('' none). */
PGresult *db_inst_active_of_replica(struct db *db, const char *replica_id);
/* Mark one instance LOST (its process is gone and nobody reaped it). */
int db_inst_lost(struct db *db, int64_t id, const char *detail);


/* ---- the admin views (api_instances.c) ---- */

/* Columns of the rows of db_inst_list and db_inst_get (model_instance
 * joined with instance_live and instance_metrics). */
enum db_inst_col {
	DB_IC_ID, DB_IC_MODEL, DB_IC_BACKEND, DB_IC_NAME, DB_IC_NODE, DB_IC_ADDRESS,
	DB_IC_PID, DB_IC_REPLICA, DB_IC_STATE, DB_IC_TREASON, DB_IC_TDETAIL, DB_IC_STOPREQ,
	DB_IC_CURREQ, DB_IC_REQIDS, DB_IC_CPU_REQ, DB_IC_CPU_LIM, DB_IC_MEM_REQ,
	DB_IC_MEM_LIM, DB_IC_STARTED, DB_IC_READY, DB_IC_LASTUSED, DB_IC_TERMINATED,
	DB_IC_UPDATED, DB_IC_SNAPSHOT, DB_IC_LIVE_AGG, DB_IC_LIVE_AT, DB_IC_M_COUNT,
	DB_IC_M_CPU_MIN, DB_IC_M_CPU_MAX, DB_IC_M_CPU_AVG, DB_IC_M_CPU60_MIN,
	DB_IC_M_CPU60_MAX, DB_IC_M_CPU60_AVG, DB_IC_M_MEM_MIN, DB_IC_M_MEM_MAX,
	DB_IC_M_MEM_AVG, DB_IC_M_MEM60_MIN, DB_IC_M_MEM60_MAX, DB_IC_M_MEM60_AVG,
	DB_IC_M_INPUTS, DB_IC_M_REASON, DB_IC_M_AT, DB_IC_M_CPU_REQ, DB_IC_M_CPU_LIM,
	DB_IC_M_MEM_REQ, DB_IC_M_MEM_LIM
};

/* Filters of db_inst_list; NULL strings do not filter. state: "active",
 * "finished" or "all"; status matches the state or the termination
 * reason; from/to: dates or ISO times (to as a date includes that day);
 * cursor: ids below it (0: from the newest); at most limit rows. */
struct db_inst_filter {
	const char *state, *model, *status, *from, *to;
	int64_t cursor, limit;
};
/* Rows (enum db_inst_col), newest first. NULL on error: SQLSTATE class 22
 * when from/to is not a valid time. */
PGresult *db_inst_list(struct db *db, const struct db_inst_filter *f);
/* The row of one instance (0 or 1 rows). */
PGresult *db_inst_get(struct db *db, int64_t id);
/* The samples the monitor kept in snapshot.samples when the instance
 * ended (jsonb array of {t_ms, cpu_m, memory_mib} or NULL); the instance
 * columns above leave them out so listings stay small. */
PGresult *db_inst_saved_samples(struct db *db, int64_t id);
/* Its events: id, at, kind, source, detail; oldest first. */
PGresult *db_inst_events(struct db *db, int64_t id);
/* Its stored log: text (0 or 1 row). */
PGresult *db_inst_log_text(struct db *db, int64_t id);
/* An admin is reading the log of a running kubernetes instance: the
 * kubewatch child keeps its tail in instance_log fresh for a while
 * (snapshot.log_wanted_at; pods nobody views are never read live). */
int db_inst_log_wanted(struct db *db, int64_t id);
/* Non-terminated instances per node: node ('' when unknown), count. */
PGresult *db_inst_node_counts(struct db *db);

/* Outcome of db_inst_admin_stop. */
enum db_inst_stop {
	DB_INST_STOP_ERROR = -1,
	DB_INST_STOP_SET,        /* stop_requested set now: event + NOTIFY sent */
	DB_INST_STOP_ALREADY,    /* it was already set: nothing more written */
	DB_INST_STOP_TERMINATED, /* the instance has terminated (or is gone) */
};
/* An admin asks for a stop, in one transaction: set stop_requested, and
 * the first time add instance_event STOP_REQUESTED naming the admin and
 * send NOTIFY instance_stop with the id. The state it was in goes to
 * state_out (SET / ALREADY). */
enum db_inst_stop db_inst_admin_stop(struct db *db, int64_t id, const char *username,
				     int64_t user_id, char *state_out, size_t state_size);


/* ---- the monitor and the scraper (db_inst_metrics.c) ---- */

/* Non-terminated rows of this replica (or of none): id, model_id, backend,
 * name, node, pid, state, cpu_request_m, cpu_limit_m, memory_request_mib,
 * memory_limit_mib, age in ms since started_at. */
PGresult *db_inst_active_rows(struct db *db, const char *replica_id);
/* TERMINATED rows without instance_metrics (this replica's, or anyone's
 * after 60 s; ended within a day; at most 100): id, model_id,
 * termination_reason, cpu_request_m, cpu_limit_m, memory_request_mib,
 * memory_limit_mib, input_count (sum over its requests), instance_live
 * aggregates, backend, largest request, largest uncached inputs of a
 * request, chunk_size (0: none of its own), sized from the request. */
PGresult *db_inst_to_persist(struct db *db, const char *replica_id);

/* One aggregate as persisted; the all-time figures need count > 0, the
 * window's w_count > 0 (NULL columns otherwise). */
struct db_agg {
	unsigned long long count, w_count;
	double min, max, avg, w_min, w_max, w_avg;
};
/* The record of an ended instance. */
struct db_inst_final {
	int64_t id;
	const char *model_id;
	unsigned long long sample_count;
	struct db_agg cpu, mem;
	int cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib; /* <= 0: NULL */
	const char *input_count;   /* as db_inst_to_persist read it */
	/* busy phase (samples while serving a request): count and low
	 * percentile; CFS periods throttled, percent. NaN: NULL (unmeasured) */
	int busy_samples;
	double cpu_busy_m, mem_busy_mib, throttled_pct;
	/* input sizes (<= 0: NULL): the largest request it served, and the
	 * largest model call (that request's uncached inputs, at most the
	 * runner's hub.chunk_size) */
	int request_inputs, call_inputs;
	int sized;                 /* started sized from the request (sql/014) */
	const char *reason;        /* termination reason, may be NULL */
	const char *snapshot_json; /* merged into model_instance.snapshot */
};
/* In one transaction: insert instance_metrics (ON CONFLICT DO NOTHING),
 * merge the snapshot, delete instance_live. 0 / -1 (rolled back). */
int db_inst_persist(struct db *db, const struct db_inst_final *f);
/* End a row the monitor found without a process: TERMINATED LOST (unless
 * a reason was set) with detail why, plus a TERMINATED event by "monitor".
 * 1 marked, 0 it had already ended, -1 error. */
int db_inst_monitor_lost(struct db *db, int64_t id, const char *why);
/* 1 when the slot of id can go: the row has ended and is persisted, or is
 * gone; 0 not yet; -1 error. */
int db_inst_slot_done(struct db *db, int64_t id);
/* Upsert the copied log text. */
int db_inst_log_put(struct db *db, int64_t id, const char *text);

/* Local-backend rows of this replica with a pid, not TERMINATED: id, pid,
 * memory_limit_mib, disable_memory_limit, has a termination_reason,
 * starting (REQUESTED/STARTING). */
PGresult *db_inst_local_rows(struct db *db, const char *replica_id);
/* Ids of the instances serving a request now (state BUSY, any replica),
 * ascending: the scraper's busy phase (shm.h SHM_F_BUSY). */
PGresult *db_inst_busy_ids(struct db *db);
/* termination_reason OOMKILLED with detail (first reason wins) and an
 * OOM_KILLED event (event_json); failures are logged by db.c only. */
void db_inst_oom_mark(struct db *db, int64_t id, const char *detail, const char *event_json);
/* Upsert instance_live (aggregates JSON); fails harmlessly when the row
 * was deleted meanwhile (foreign key). */
int db_inst_live_put(struct db *db, int64_t id, const char *aggregates_json);

#endif
