/*
 * runner.h — what the runner's files share: the runner and its request's
 * state, and the functions each file offers the others (DESIGN.md §5).
 *
 * Runs in: modelhubd runner children only. Called by: runner.c (the claim
 * loop), runner_pool.c (instances), runner_req.c (one request),
 * runner_call.c (the model calls of a chunk).
 * Owns: nothing; the types below are owned by runner_main's struct runner.
 */
#ifndef MH_HUBD_RUNNER_H
#define MH_HUBD_RUNNER_H

#include "cluster/cluster.h"
#include "cluster/modelclient.h"
#include "db/db_work.h"
#include "hubd/bisect.h"
#include "hubd/hubd.h"
#include "lib/buf.h"

#include <json-c/json.h>
#include <stdint.h>

#define RUNNER_MAX_OWN 1024          /* instances one runner process started */
#define RUNNER_MAX_TASKS 1024        /* requests one runner process runs at once */
#define RUNNER_HOUSEKEEP_MS 1000      /* reap/idle/stop checks of own instances */
#define RUNNER_SWEEP_MS 3000          /* LOST sweep of this replica's rows */
#define RUNNER_IDLE_WAIT_MS 1000      /* sleep when there is nothing to claim */
#define RUNNER_FULL_BACKOFF_MS 500    /* skip a model at its instance limit */
#define RUNNER_STOP_GRACE_MS 5000     /* SIGTERM -> SIGKILL for instances */
#define RUNNER_LOG_MAX (1 << 20)      /* instance log kept in Postgres */
#define RUNNER_POLL_MS 250            /* readiness / ASYNC job polling */
#define RUNNER_CAPACITY_MS 2000       /* a Pending instance: the autoscaler's verdict, this often */
#define RUNNER_INSTANCE_RETRIES 1
#define RUNNER_MAX_ADMIN_STOPS 3
#define RUNNER_UNKNOWN_GRACE_MS 10000 /* a new pod may be unknown to the watch a while */
#define RUNNER_RENEW_MAX_MS 2000       /* lease renewal doubles as the cancel check */
#define RUNNER_CREATE_BASE_MS 250      /* first back-off of a refused instance create */
#define RUNNER_CREATE_CAP_MS 8000      /* longest back-off between create attempts */
#define RUNNER_PROBE_MAX 8 /* warm instances one request borrows to probe on */
/* verdicts of single-input parts not yet given to fail_one: width per
 * level of the isolation tree at most */
#define RUNNER_PERR_MAX 24
/* a failed call's cost in good calls until both kinds were timed
 * (ersilia-pack's measure about 9, the demo models' about 1) */
#define RUNNER_FAIL_WEIGHT_GUESS 4.0

/* AB_INSTSTOP: an admin asked to stop the instance the request is using */
enum abort_kind { AB_NONE = 0, AB_STOP, AB_CANCELLED, AB_LOST, AB_INSTSTOP };

struct rl;
struct rl_task;
struct job;
struct ending;

struct owned {
	int64_t id;
	char name[64];
	char model[72];
	int idle_seconds;
	int pid;
	int stop_after; /* stop requested while serving us */
	int64_t created_ms;
	int busy_unused; /* housekeeping passes seeing it BUSY with no job (lost release) */
};

struct backoff {
	char model[72];
	int64_t until;
};

struct runner {
	struct hubd_child *c;
	struct db *db;
	struct cluster *cl;
	struct rl *loop;
	struct rl_task *claimer; /* the claim loop's task */
	char id[160];
	char backend[32];
	char node[64];
	int lease_s, chunk_size, start_timeout_s, chunk_timeout_s, request_timeout_s;
	int halving; /* hub.isolation = halving: the planner before issue 20 */
	int probe_width; /* hub.probe_width: instances a failing chunk's parts run on at once */
	struct owned own[RUNNER_MAX_OWN];
	int nown;
	struct backoff back[64];
	int64_t last_housekeep, last_sweep;
	int64_t suspects[64];
	int nsuspects;
	/* the requests in progress, one task each (runner_req.c) */
	struct job *jobs;
	int njobs;
	int max_tasks; /* hub.max_concurrent_requests / hub.runners, rounded up */
	int busy;      /* at max_tasks (hubd_set_busy) */
	int wake_claim; /* the claim loop was woken: claim before sleeping */
	unsigned long seen_queued; /* work_queued notifications at the last claim */
	int64_t last_claim;
	int64_t last_renew; /* the leases of all its requests (renew_all) */
	int renewing;       /* a renew_all statement is under way */
	unsigned seed; /* back-off jitter */
	/* instances out of own[] whose stop runs in a task of its own
	 * (runner_pool.c, end_in_task): the LOST sweep leaves them alone */
	struct ending *endings;
};

/* Instance in use by the current request. */
struct cur {
	struct work_inst wi;
	int owned; /* started by this runner */
};

/* A warm instance borrowed for parallel probing (runner_probe.c): held
 * from a chunk's failure to the end of the request's inputs, with an HTTP
 * client of its own. */
struct helper {
	struct cur in;
	struct mc *mc;
	int cut; /* a call on it was cut short: recycle it */
};

/* The verdict of a single-input part that failed among parts called at
 * once (fail_one reads it: j->err holds only the last call's). */
struct part_err {
	int off, cacheable;
	char err[300]; /* a model's reason is cut to 200 characters */
};

enum fatal { JF_NONE = 0, JF_INSTANCE, JF_OOM, JF_TIMEOUT, JF_DEADLINE, JF_ABORT, JF_DB, JF_STOPPED, JF_BUDGET };

/* which limit bounds a call (call_timeout) */
enum call_limit { LIM_CHUNK = 0, LIM_REQUEST, LIM_BUDGET };

struct job {
	struct runner *r;
	struct job *next;      /* r->jobs */
	struct rl_task *task;  /* the task running it */
	struct mc *mc;         /* its HTTP client, on the loop's multi handle */
	enum abort_kind abort; /* why the work must stop (AB_NONE: it goes on) */
	int64_t cur_inst;      /* the instance it uses (0: none) */
	struct work_req *req;
	struct work_model *m;
	struct cur *inst;
	PGresult *missing;
	/* the inputs to send: rows of missing (screened and known-bad ones
	 * left out), so bisect's offsets index send[] */
	int *send, nsend;
	int calls, stores;
	int sent_inputs; /* inputs of the chunks started (extra_calls' base) */
	struct bisect_plan *plan;
	struct bisect_stats st;
	/* counters of the request's row; reported as deltas with each store
	 * (work_counts), so model_calls and extra_calls move while it runs */
	struct work_counts counted;
	int64_t isolation_ms;
	int screened, known_bad;
	/* call durations, for the cost of a failed call against a good one */
	int64_t ok_ms, fail_ms;
	int ok_n, fail_n;
	int64_t ok_t0; /* start of the last good call not yet timed (0: none) */
	int cacheable; /* the last failure is a rejection worth remembering */
	struct json_object *known_rows; /* [key_hex, error] found bad */
	/* the current chunk; the next chunk's CHUNK_SENT event rides on the
	 * store of this chunk's full answer (next_detail, next_sent) */
	int chunk_off, chunk_len, next_sent;
	char next_detail[96];
	/* a store sent and not yet collected (job_settle) */
	int store_pending;
	/* SYNC models: the next whole chunk's call, started as soon as the
	 * previous answer arrived, before that answer is parsed and stored
	 * (prefetch_next); done once its answer was read (to free the
	 * instance for another call) and not yet used */
	struct {
		int active, done, off, len;
		char *body;
		struct buf out;
		enum mc_rc rc;
		long st;
		enum call_limit limit;
	} pf;
	/* set when the last store also ended the request: its final status */
	char end_status[16];
	int64_t deadline_ms; /* monotonic */
	/* the instance slot that came with the claim (WORK_SLOT_NONE:
	 * none), taken by the first inst_get */
	enum work_slot claim_rc;
	struct work_inst claim_wi;
	enum fatal fatal;
	int got; /* drive_get's verdict when it found no instance */
	enum call_limit call_limit; /* of the call under way */
	int call_len;               /* its inputs */
	int call_cut;  /* a call was aborted: the model may still run it */
	char err[512];
	/* parallel probing (runner_probe.c): warm instances borrowed while a
	 * chunk is isolated, and the verdicts of its single-input parts */
	struct helper help[RUNNER_PROBE_MAX];
	int nhelp;
	int help_tried; /* this chunk looked for warm instances already */
	struct part_err perr[RUNNER_PERR_MAX];
	int nperr;
};

enum get_rc { GET_OK = 0, GET_HANDBACK, GET_FAILED, GET_ABORT };

/* runner.c: the claim loop's services to the requests being run */
int runner_tick(void *ctx);
int runner_nap(struct job *j, int ms);
int runner_nap_until(struct job *j, int64_t t);
void runner_sleep(struct runner *r, int ms);
void runner_backoff_set(struct runner *r, const char *model, int ms);
/* A request's task ended: one task less, the claim loop may claim again. */
void runner_job_ended(struct runner *r);
/* The job using instance id, or NULL. */
struct job *runner_job_of_inst(struct runner *r, int64_t id);

/* runner_loop.c: the event loop (see its header) */
struct rl *rl_new(struct hubd_child *c, struct db *db);
void rl_free(struct rl *l);
struct rl_task *rl_spawn(struct rl *l, void (*fn)(void *), void *arg);
void rl_run(struct rl *l);
/* In a task: until fd has events (fd -1: none), ms passed (-1: no timer)
 * or rl_wake; 1 when woken or fd ready, 0 on time. */
int rl_wait(struct rl *l, int fd, short events, int ms);
void rl_wake(struct rl_task *t);
struct rl_task *rl_self(const struct rl *l);
/* The running task's req= in the log (kept across switches). */
void rl_set_tag(struct rl *l, const char *tag);
int rl_ntasks(const struct rl *l);
void *rl_multi(struct rl *l);
int rl_mc_wait(void *task, int ms);
void rl_on_signal(struct rl *l, void (*fn)(void *ctx, int poked), void *ctx);
void rl_notify_to(struct rl *l, struct rl_task *t);
/* Run a configured curl easy handle to its end on the loop's multi handle
 * (the task waits, others run; blocking on the scheduler's own stack);
 * the CURLcode. The handle stays the caller's. */
int rl_perform(struct rl *l, void *easy);
/* cluster_io for the backend (cluster_set_io): rl_perform, and a sleep
 * that yields (blocks on the scheduler's stack). */
int rl_io_perform(void *ctx, void *easy);
void rl_io_sleep(void *ctx, int ms);

/* runner_pool.c: the instances this runner started, and the slot of the
 * request being run */
int runner_own_find(struct runner *r, int64_t id);
void runner_own_finish(struct runner *r, int i, const char *reason, const char *why);
/* 1 while instance id, out of own[], is being stopped by a task of its own. */
int runner_ending(const struct runner *r, int64_t id);
void runner_own_stop(struct runner *r, int i, const char *reason, const char *event);
/* Shutdown: leave instance i to the replicas that remain when its pod
 * outlives us (kubernetes, IDLE: handed over, adopted by their kubewatch),
 * else stop it (STOP_SHUTDOWN). */
void runner_own_leave(struct runner *r, int i);
/* The same by id, if the instance is still in the table. */
void runner_own_stop_id(struct runner *r, int64_t id, const char *reason, const char *event);
void runner_housekeep(struct runner *r);
void runner_sweep_lost(struct runner *r);
int runner_pid_alive(int pid);
int runner_inst_dead(struct runner *r, struct cur *in, int *oom, char *why, size_t whylen);
enum get_rc runner_inst_get(struct runner *r, struct job *j, struct cur *in, const char **reason,
			    char *detail, size_t dlen);
void runner_inst_put(struct job *j, int broken);
/* The same for any instance the request holds (a borrowed helper too). */
void runner_cur_put(struct job *j, struct cur *in, int broken);
/* A warm (IDLE, alive) instance of j's model for parallel probing, into
 * *in (BUSY for j): 1, or 0 when there is none. */
int runner_inst_borrow(struct runner *r, struct job *j, struct cur *in);
int runner_probe(void *ctx, const char *address, int timeout_ms);
/* Inputs per model call for j: hub.chunk_size, or less for an instance
 * sized from the request (hubd/sizing.h). */
int runner_chunk(const struct runner *r, const struct job *j);

/* runner_call.c: the calls of a chunk (bisect's callbacks) and the stores */
enum bisect_rc runner_job_call(void *ctx, int off, int len);
int runner_job_fail_one(void *ctx, int idx, int alone);
enum bisect_rc runner_job_store(struct job *j, const char *rows, int off, int len);
enum bisect_rc runner_job_settle(struct job *j);
struct work_counts runner_counts_delta(struct job *j);
void runner_prefetch_drop(struct job *j);
void runner_error_row(struct json_object *rows, const char *ordinal, const char *error);
int runner_records_to_rows(struct job *j, const char *body, int off, int want, struct buf *rows);
char *runner_inputs_json(struct job *j, int off, int len);
int runner_call_timeout(struct job *j, int n);
enum bisect_rc runner_call_failed(struct job *j, struct cur *in, enum mc_rc rc, long st,
				  const char *what, const struct buf *body);
void runner_prefetch_wait(struct job *j);
void runner_call_timed(struct job *j, enum bisect_rc rc, int64_t ms);
/* ASYNC jobs, one at a time (runner_call.c) or several at once
 * (runner_probe.c); j->call_len and j->call_limit are the job's. */
enum bisect_rc runner_async_submit(struct job *j, struct cur *in, struct mc *mc, const char *body,
				   char *job_id, size_t n, struct buf *out);
int runner_async_step(struct job *j, struct cur *in, struct mc *mc, const char *job_id, int64_t until,
		      struct buf *out, enum bisect_rc *vrc);
int runner_async_backoff(int poll_ms);

/* runner_probe.c: parallel probing on borrowed warm instances */
/* A chunk failed: borrow up to hub.probe_width - 1 warm instances (once a
 * chunk) and tell the plan how many parts can go at once. */
void runner_probe_prepare(struct job *j);
/* bisect's call_many: the parts at once, part 0 on the request's instance,
 * the others on helpers (in rounds when fewer are held). */
int runner_job_call_many(void *ctx, const int *off, const int *len, int n, enum bisect_rc *rc);
/* Input idx failed alone in a call_many: j->err and j->cacheable become
 * that call's. */
void runner_probe_verdict(struct job *j, int idx);
/* The inputs are done (or the request): give the helpers back (recycled
 * when a call on one was cut short); free their clients when final. */
void runner_probe_release(struct job *j, int final);

/* runner_req.c: run one claimed request (in its own task) */
struct claim {
	struct runner *r;
	struct work_req q;
	struct work_model m; /* owned: cleared by runner_process */
	struct work_inst wi;
	enum work_slot irc;
};
/* The task's function: arg is a malloc()ed struct claim, freed here. */
void runner_process(void *arg);

#endif
