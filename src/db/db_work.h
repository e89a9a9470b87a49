/*
 * db_work.h — queries of the work-request engine: claiming and finishing
 * requests, storing results, model instance rows and their events, the
 * janitor's sweeps.
 *
 * Runs in: modelhubd runners, janitor and supervisor. Called by: runner.c,
 * janitor.c, supervisor.c. Implemented by db_work_claim.c (claim and slot),
 * db_work_lease.c, db_work_store.c (results, ending a request, the input
 * cache), db_work_model.c, db_janitor.c and db_hub.c; the instance rows are
 * in db_instance.h (included here). Tables: work_request (+_input, _result), model,
 * model_instance, instance_event, instance_log, input_cache, session,
 * hub_server.
 *
 * Ownership rule: a runner changes a request only while it is RUNNING with
 * runner_id = that runner (every UPDATE says so in its WHERE clause), so a
 * runner that lost its lease or whose request was cancelled changes nothing.
 * Returns: 0 / -1 unless said otherwise; PGresult* results are PQclear()ed
 * by the caller.
 */
#ifndef MH_DB_WORK_H
#define MH_DB_WORK_H

#include <stdint.h>

#include "db/db.h"
#include "db/db_instance.h"

struct work_req {
	int64_t id;
	char model_id[72];
	int input_count, done_count, attempts;
	int cache_opt_in;
	int64_t user_id;       /* 0 for anonymous */
	double deadline_in_s;  /* seconds left until the request deadline */
};

struct work_model {
	char id[72];
	int enabled, async;
	char image[256], image_tag[64];
	char **cmd;            /* local_command (malloc()ed), NULL when none */
	int ncmd;
	int port;
	int cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib;
	int disable_memory_limit;
	int max_instances, idle_seconds, cache_enabled;
	char version[64];
	int compound; /* inputs are SMILES (details.input "Compound"): screen them */
	int time_budget_s; /* per input; a longer call is aborted (0: none) */
};

/* Requests */
/* Give the request back to the queue without counting the attempt. */
int db_work_handback(struct db *db, int64_t id, const char *runner_id);
/* Renew the leases of n requests in one statement, each as claimed in
 * attempts[k] (a request requeued under us and claimed again, even by this
 * runner, is another attempt): ok[k] = 1 when renewed, 0 when no longer
 * ours (see db_work_status). Returns the count renewed, -1 error. */
int db_work_renew_many(struct db *db, const int64_t *ids, const int *attempts, int n, const char *runner_id,
		       int lease_s, unsigned char *ok);
/* Current status into out (e.g. "CANCELLED"); 0, 1 when the row is gone, -1. */
int db_work_status(struct db *db, int64_t id, char *out, size_t outlen);
/* Inputs without a result row: columns ordinal, input; in ordinal order.
 * none_stored: the caller knows no result exists yet (first attempt, no
 * cache hit, nothing sent), so every input is read without the anti-join. */
PGresult *db_work_missing(struct db *db, int64_t id, int none_stored);
/* Counters added to the request's row as it goes (model_calls,
 * extra_calls, isolation_ms, screened_count, known_bad_count): deltas since
 * the last time they were sent. */
struct work_counts {
	int calls, extra_calls;
	int64_t isolation_ms;
	int screened, known_bad;
};
/* How a request ends when its last records are stored (see below). */
struct work_end {
	const char *last_error; /* quoted when every input failed; may be NULL */
};
/* Store records: rows is a JSON array of [ordinal, record|null, error|null].
 * Sent without waiting (db_send), so the caller can call the model for the
 * next chunk meanwhile; 0 sent, -1 error. db_work_store_collect then
 * returns rows inserted (>= 0; duplicates are skipped), -2 when the request
 * is no longer RUNNING for this runner, -1 on error. Renews the lease.
 * With event_inst > 0 the same statement also records instance event
 * CHUNK_SENT with event_detail (JSON) for that instance (saves the runner a
 * round trip per chunk: the next chunk's event rides on this store).
 * add (may be NULL) is added to the request's counters. With end (the last
 * records of the request), the same statement also ends the request as
 * db_work_complete does, and collect puts the final status into status_out
 * (untouched otherwise). */
int db_work_store_send(struct db *db, int64_t id, const char *runner_id, const char *rows,
		       int lease_s, int64_t event_inst, const char *event_detail,
		       const struct work_counts *add, const struct work_end *end);
int db_work_store_collect(struct db *db, char *status_out, size_t status_size);
/* End a request whose inputs were all sent, in one statement: counts the
 * results and sets COMPLETED, or FAILED RESULT_MISMATCH (fewer results
 * than inputs) or MODEL_ERROR (every input failed; last_error quoted).
 * 1 finished (status into status_out), 0 the request is no longer RUNNING
 * for this runner, -1 error. */
int db_work_complete(struct db *db, int64_t id, const char *runner_id,
		     const struct work_counts *add, const char *last_error, char *status_out,
		     size_t status_size);
/* Final state: status COMPLETED or FAILED (reason, detail may be NULL). */
int db_work_finish(struct db *db, int64_t id, const char *runner_id, const char *status,
		   const char *reason, const char *detail, const struct work_counts *add);
/* Negative cache (input_failure, sql/009): keys_json is a JSON array of
 * cachekey hex strings; returns rows (o, error) for the 1-based positions
 * o of the keys that failed alone on this model version before. */
PGresult *db_work_known_bad(struct db *db, const char *model_id, const char *version,
			    const char *keys_json);
/* Remember inputs that failed alone: rows is a JSON array of [key_hex,
 * error]. Rows inserted, or -1. */
int db_work_known_bad_put(struct db *db, const char *model_id, const char *version,
			  const char *rows);
/* Fail every QUEUED request of a disabled model at once; rows affected. */
int db_work_fail_disabled(struct db *db, const char *model_id);
/* Computed (not cached) results worth caching: columns input, record. */
PGresult *db_work_cache_candidates(struct db *db, int64_t id);
/* rows: JSON array of [key_hex, input, record]; rows inserted or -1. */
int db_work_cache_put(struct db *db, const char *model_id, const char *version, int64_t user_id,
		      const char *rows);

/* Models */
/* 1 found, 0 no such model, -1 error. Free with db_work_model_clear(). */
int db_work_model(struct db *db, const char *model_id, struct work_model *m);
void db_work_model_clear(struct work_model *m);
/* *dst = *src with its own copy of cmd: 0, or -1 (out of memory; *dst
 * then holds no cmd). */
int db_work_model_copy(struct work_model *dst, const struct work_model *src);

/* Model instances */
struct work_inst {
	int64_t id;
	char name[64], address[128];
	int pid;
	int chunk_size; /* largest call it takes (sized instance, sql/014); 0: hub.chunk_size */
};
/* An instance slot for a request. */
enum work_slot {
	WORK_SLOT_ERROR = -1,
	WORK_SLOT_NONE = 0, /* the model is at its limit (or no slot was needed) */
	WORK_SLOT_IDLE = 1, /* an IDLE instance of this replica, now BUSY */
	WORK_SLOT_NEW = 2,  /* a new REQUESTED row, for the caller to start */
};
/* Under the model's advisory lock: take an IDLE instance of this replica
 * (state BUSY), or insert a REQUESTED row when fewer than max_instances
 * instances are not TERMINATED, or none when the model is at its limit. */
enum work_slot db_inst_acquire(struct db *db, const struct work_model *m, int64_t request_id,
			       const char *replica_id, const char *backend, struct work_inst *out);

/* Only a warm instance: the most recently used IDLE instance of the model
 * on this replica, now BUSY for request_id (parallel probing borrows it
 * for a while; never a new row). WORK_SLOT_IDLE, WORK_SLOT_NONE or
 * WORK_SLOT_ERROR. */
enum work_slot db_inst_take_warm(struct db *db, const char *model_id, int64_t request_id,
				 const char *replica_id, struct work_inst *out);

/* Claim: the model of the oldest QUEUED request among models that can get
 * an instance now (read without a transaction), then in one transaction
 * instance slots for up to max of its requests and as many of its
 * requests, in its fair order (FAIR_TURN in db_work_claim.c). A request
 * is RUNNING only once it can run, and a runner that loses the race for a
 * slot holds no request, so nobody overtakes it (FIFO per model,
 * docs/hubd.md). One transaction for several requests: under a burst the
 * claim rate, not the model, bounds how many run at once (issue 15). */
struct work_claim {
	const char *runner_id, *replica_id, *backend;
	const char *const *models;
	int n, lease_s, request_timeout_s;
	int max; /* requests to claim at most (1..WORK_CLAIM_MAX) */
};
#define WORK_CLAIM_MAX 8 /* the fair turn's depth per caller: see FAIR_DEPTH */
/* One claimed request and its slot, as db_inst_acquire returns it (NONE:
 * none needed, the model is disabled or gone, the deadline passed or
 * every input has a result). */
struct work_claimed {
	struct work_req q;
	struct work_inst wi;
	enum work_slot irc;
};
enum work_claim_rc {
	WORK_CLAIM_ERROR = -1,
	WORK_CLAIM_NONE = 0,  /* nothing queued for these models */
	WORK_CLAIM_OK = 1,    /* claimed (see db_work_claim) */
	WORK_CLAIM_FULL = 2,  /* m->id is at its instance limit after all */
	WORK_CLAIM_TAKEN = 3, /* m->id's queue was taken by other runners */
};
/* OK: out[0..*n) in their fair order, and their model *m (free with
 * db_work_model_clear). FULL and TAKEN: only m->id is set. Nothing is
 * claimed for any other outcome. */
enum work_claim_rc db_work_claim(struct db *db, const struct work_claim *c, struct work_model *m,
				 struct work_claimed *out, int *n);
/* Janitor. Every sweep takes the token of the hub lease it was elected
 * with (db_lead.h) and changes nothing unless the lease is still held with
 * that token (DB_LEASE_FENCE), so a leader that lost its lease while
 * frozen writes nothing when it wakes. */
/* Requeue RUNNING requests whose lease expired (FAILED ATTEMPTS_EXHAUSTED
 * at max_attempts); rows changed or -1. */
int db_janitor_requeue(struct db *db, int64_t token, int max_attempts);
/* Delete up to batch requests older than days (with inputs, results);
 * rows deleted or -1. */
int db_janitor_retention(struct db *db, int64_t token, int days, int batch);
int db_janitor_old_instances(struct db *db, int64_t token, int days, int batch);
/* Delete up to batch instance_metrics rows persisted more than days ago. */
int db_janitor_old_metrics(struct db *db, int64_t token, int days, int batch);
int db_janitor_sessions(struct db *db, int64_t token);
int db_janitor_disabled(struct db *db, int64_t token);
/* Instances of replicas whose hub_server heartbeat is older than stale_s,
 * never those of self (the sweeping replica's id): its own work is alive
 * by definition, even if its heartbeat stalled while it was frozen. */
int db_janitor_dead_replicas(struct db *db, int64_t token, const char *self, int stale_s);
/* Record the time of a retention pass in job_run. */
int db_janitor_retention_done(struct db *db);

/* Supervisor */
int db_hub_server_beat(struct db *db, const char *replica_id, const char *hostname, int pid,
		       const char *version, const char *detail_json, int starting);
/* Queued work per model: model_id, depth, max_instances. */
PGresult *db_work_queue_depths(struct db *db);

#endif
