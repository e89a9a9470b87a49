/*
 * runner.c — the runner child's claim loop: claims work requests of its
 * assigned models and starts a task (runner_req.c) for each, up to its
 * share of hub.max_concurrent_requests at once; lease renewal, abort
 * checks and config reloads (DESIGN.md §5).
 *
 * Runs in: modelhubd, hub.runners children ("modelhubd: runner N").
 * Called by: supervisor.c (runner_main after fork).
 * Owns: its one Postgres connection (LISTEN work_queued, model_changed,
 * instance_stop, request_cancelled), shared by all its tasks; a cluster
 * backend handle; the event loop (runner_loop.c: the tasks, one curl multi
 * handle for every model call); the model instances it started (local
 * backend: their parent; it reaps them, stops them when idle or asked to,
 * and records their end).
 * Shared state: work_request rows it claimed (RUNNING, runner_id = its id;
 * every write says so), model_instance rows (BUSY/IDLE by conditional
 * updates, so instances of other runners of this replica can be borrowed
 * when IDLE), hubd_shm (heartbeat, busy flag at max_tasks; reads its model
 * assignment and nrunners).
 * On crash: its claimed requests' leases expire and the janitor requeues
 * them; its instances die with it (PR_SET_PDEATHSIG) and their rows are
 * marked LOST by the next runner's sweep; results already stored are kept
 * and never duplicated (ON CONFLICT DO NOTHING; only inputs without a
 * result are sent again).
 *
 * DESIGN
 * - Concurrency comes from hub.max_concurrent_requests (split evenly over
 *   the hub.runners processes: max_tasks each) and each model's
 *   max_instances, not from the number of processes: one process runs up
 *   to max_tasks requests, each a cooperative task that yields wherever the
 *   one-request runner used to block (model call, statement, sleep). A
 *   SIGHUP re-reads both; the supervisor adds or retires runners.
 * - Claim together with an instance slot, in one transaction: an IDLE
 *   instance of this replica, or a new one while the model is under
 *   max_instances (counted in model_instance under a per-model advisory
 *   lock, so every runner of every replica agrees). A request is never
 *   RUNNING without a slot, so no runner overtakes an older request of the
 *   model while another waits at the limit (FIFO per model). When the slot
 *   went between the claim's check and the take, nothing is claimed and
 *   the model is skipped for RUNNER_FULL_BACKOFF_MS; a request whose
 *   reused instance turns out dead gets another slot, or is handed back
 *   (QUEUED, attempt not counted) at the limit.
 * - Inputs without a result go in chunks of hub.chunk_size; a chunk the
 *   model rejects (HTTP error, failed job, wrong record count) is bisected
 *   (bisect.c) down to single inputs, which get a null record and an error.
 *   A call that finds the instance gone (connection refused/reset, process
 *   exited, OOM) is an instance failure, never a bad input.
 * - Deadlines: instance start (hub.instance_start_timeout) -> FAILED
 *   INSTANCE_START_TIMEOUT (NO_CAPACITY when still unschedulable, or when a
 *   quota refused every create; CLUSTER_ERROR when the API server did:
 *   refused creates are retried with jittered back-off until then); one
 *   call (hub.chunk_timeout) or the whole request (work_request.deadline,
 *   hub.request_timeout) -> FAILED TIMEOUT; a call longer than the model's
 *   time_budget_s per input -> FAILED TIME_BUDGET_EXCEEDED. A call cut short
 *   (timeout, budget, cancellation) may still run in the model: its
 *   instance is recycled, never reused busy.
 * - While a call is in flight its task ticks about once a second: every
 *   lease/3 (at most RUNNER_RENEW_MAX_MS) the first task to tick renews the
 *   leases of all the runner's requests in one statement; it aborts the
 *   call on SIGTERM (request handed back), cancellation (NOTIFY
 *   request_cancelled wakes the task at once) or a lost lease. Housekeeping
 *   (reap, idle-out, admin stops) runs in the claim loop's task.
 *
 * Files: runner.c (this claim loop), runner_pool.c (the instances it
 * starts and the slot of a request), runner_req.c (one request: inputs,
 * chunks, outcome, in its own task), runner_call.c (the model calls and
 * stores of a chunk), runner_loop.c (the event loop and its tasks);
 * runner.h holds what they share.
 */
#include "hubd/runner.h"
#include "db/db_autoscale.h"
#include "hubd/shared.h"
#include "lib/backoff.h"
#include "lib/cachekey.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/smiles.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* hub.max_concurrent_requests of the replica, shared by its runners */
static int max_tasks(void)
{
	long total = cfg_int("hub.max_concurrent_requests", 256);
	int n = hubd_shm && hubd_shm->nrunners > 0 ? hubd_shm->nrunners : 1;
	long per = (total + n - 1) / n;

	return per < 1 ? 1 : per > RUNNER_MAX_TASKS ? RUNNER_MAX_TASKS : (int)per;
}

static void config_read(struct runner *r)
{
	r->lease_s = (int)cfg_int("hub.lease_seconds", 30);
	r->chunk_size = (int)cfg_int("hub.chunk_size", 100);
	r->start_timeout_s = (int)cfg_int("hub.instance_start_timeout", 300);
	r->chunk_timeout_s = (int)cfg_int("hub.chunk_timeout", 600);
	r->request_timeout_s = (int)cfg_int("hub.request_timeout", 3600);
	r->halving = strcmp(cfg_str("hub.isolation", "adaptive"), "halving") == 0;
	r->probe_width = (int)cfg_int("hub.probe_width", 4);
	if (r->probe_width < 1)
		r->probe_width = 1;
	if (r->probe_width > RUNNER_PROBE_MAX + 1)
		r->probe_width = RUNNER_PROBE_MAX + 1;
	if (r->lease_s < 3)
		r->lease_s = 3;
	if (r->chunk_size < 1)
		r->chunk_size = 1;
	r->max_tasks = max_tasks();
}

/* The job of attempt att of request id, or NULL (it ended). */
static struct job *job_of_req(struct runner *r, int64_t id, int att)
{
	for (struct job *j = r->jobs; j; j = j->next)
		if (j->req && j->req->id == id && j->req->attempts == att)
			return j;
	return NULL;
}

/* Attempt att of request id was not renewed: cancelled, or requeued after
 * a lost lease (and maybe claimed again); its task stops its work. */
static void not_ours(struct runner *r, int64_t id, int att)
{
	char st[24] = "";
	struct job *j;

	db_work_status(r->db, id, st, sizeof st);
	j = job_of_req(r, id, att); /* the statement let other tasks run */
	if (!j || j->abort != AB_NONE)
		return;
	j->abort = strcmp(st, "CANCELLED") == 0 ? AB_CANCELLED : AB_LOST;
	log_info("runner request=%lld attempt=%d status=%s msg=\"request no longer ours, stopping work\"",
		 (long long)id, att, st[0] ? st : "gone");
	rl_wake(j->task);
}

/* Renew the leases of every request this runner runs, in one statement
 * (hundreds of requests would otherwise cost hundreds of statements a
 * second on the one connection). Run by whichever task ticks first once
 * it is due. */
static void renew_all(struct runner *r)
{
	int64_t ids[RUNNER_MAX_TASKS];
	int att[RUNNER_MAX_TASKS];
	unsigned char ok[RUNNER_MAX_TASKS];
	int n = 0, rc;

	r->renewing = 1;
	for (struct job *j = r->jobs; j && n < RUNNER_MAX_TASKS; j = j->next)
		if (j->req && j->abort == AB_NONE) {
			ids[n] = j->req->id;
			att[n++] = j->req->attempts;
		}
	rc = n > 0 ? db_work_renew_many(r->db, ids, att, n, r->id, r->lease_s, ok) : 0;
	r->last_renew = mh_mono_ms();
	for (int k = 0; rc >= 0 && k < n; k++)
		if (!ok[k])
			not_ours(r, ids[k], att[k]);
	r->renewing = 0;
}

/* Lease renewal (of all the runner's requests, renew_all) and abort checks
 * of job ctx; run by its task between steps and while a call is in flight
 * (modelclient's tick). Returns non-zero when its work must stop (j->abort
 * says why). */
int runner_tick(void *ctx)
{
	struct job *j = ctx;
	struct runner *r = j->r;
	int every = r->lease_s * 1000 / 3 < RUNNER_RENEW_MAX_MS ? r->lease_s * 1000 / 3 : RUNNER_RENEW_MAX_MS;

	if (hubd_should_stop() && j->abort == AB_NONE)
		j->abort = AB_STOP;
	if (!r->renewing && mh_mono_ms() - r->last_renew >= every)
		renew_all(r);
	return j->abort != AB_NONE;
}

/* Sleep up to ms (less when woken: a cancellation), then tick; non-zero
 * when the work must stop. */
int runner_nap(struct job *j, int ms)
{
	rl_wait(j->r->loop, -1, 0, ms);
	return runner_tick(j);
}

/* Sleep until the monotonic time t, ticking; non-zero when the request is
 * to be aborted (SIGTERM, cancellation, lost lease). */
int runner_nap_until(struct job *j, int64_t t)
{
	for (int64_t now = mh_mono_ms(); now < t; now = mh_mono_ms())
		if (runner_nap(j, (int)(t - now < RUNNER_POLL_MS * 4 ? t - now : RUNNER_POLL_MS * 4)))
			return 1;
	return 0;
}

/* Sleep ms whatever wakes the task meanwhile. */
void runner_sleep(struct runner *r, int ms)
{
	int64_t until = mh_mono_ms() + ms;

	for (int64_t now = mh_mono_ms(); now < until; now = mh_mono_ms())
		rl_wait(r->loop, -1, 0, (int)(until - now));
}

struct job *runner_job_of_inst(struct runner *r, int64_t id)
{
	for (struct job *j = r->jobs; j; j = j->next) {
		if (j->cur_inst == id)
			return j;
		/* instances it borrowed to probe on (runner_probe.c) */
		for (int k = 0; k < RUNNER_PROBE_MAX; k++)
			if (id && j->help[k].in.wi.id == id)
				return j;
	}
	return NULL;
}

void runner_backoff_set(struct runner *r, const char *model, int ms)
{
	int slot = 0;

	for (int i = 0; i < 64; i++) {
		if (strcmp(r->back[i].model, model) == 0) {
			slot = i;
			break;
		}
		if (r->back[i].until < r->back[slot].until)
			slot = i;
	}
	snprintf(r->back[slot].model, sizeof r->back[slot].model, "%s", model);
	r->back[slot].until = mh_mono_ms() + ms;
}

static int backoff_active(struct runner *r, const char *model)
{
	int64_t now = mh_mono_ms();

	for (int i = 0; i < 64; i++)
		if (r->back[i].until > now && strcmp(r->back[i].model, model) == 0)
			return 1;
	return 0;
}
/* ---------------------------------------------------------------- main */

/* A request was cancelled (NOTIFY request_cancelled from the API): its task
 * stops the call in flight now rather than at the next lease renewal. */
static void cancelled(struct runner *r, const char *id_text)
{
	int64_t id = strtoll(id_text, NULL, 10);

	for (struct job *j = r->jobs; j; j = j->next)
		if (j->req && j->req->id == id && j->abort == AB_NONE) {
			j->abort = AB_CANCELLED;
			log_info("runner request=%lld msg=\"cancelled: stopping its call\"", (long long)id);
			rl_wake(j->task);
		}
}

static void drain_notifies(struct runner *r)
{
	PGnotify *n;

	while ((n = db_next_notify(r->db)) != NULL) {
		if (strcmp(n->relname, "model_changed") == 0) {
			memset(r->back, 0, sizeof r->back);
			/* idle instances run the old command/resources: retire them */
			for (int i = 0; i < r->nown; i++) {
				int64_t id = r->own[i].id;
				if (strcmp(r->own[i].model, n->extra) == 0 && !runner_job_of_inst(r, id) &&
				    db_inst_take_idle(r->db, id, 0) == 1)
					runner_own_stop_id(r, id, "STOPPED", "MODEL_CHANGED");
			}
		} else if (strcmp(n->relname, "instance_stop") == 0) {
			r->last_housekeep = 0; /* an admin asked: look now */
		} else if (strcmp(n->relname, "request_cancelled") == 0) {
			cancelled(r, n->extra);
		}
		PQfreemem(n);
	}
}

/* The models worth a claim: the assigned ones and those of this runner's
 * own instances (a warm model is claimed on this runner's own NOTIFY,
 * without waiting for the supervisor to assign it again once its queue
 * drained: docs/performance.md, "Work requests"), less those backing off. */
static int claim_models(struct runner *r, struct hubd_runner_models *am, const char **models)
{
	int n = 0;

	hubd_assigned_models(r->c->role_index, am);
	for (int i = 0; i < am->n; i++)
		if (!backoff_active(r, am->id[i]))
			models[n++] = am->id[i];
	for (int i = 0; i < r->nown; i++) {
		int dup = backoff_active(r, r->own[i].model);

		for (int k = 0; k < n && !dup; k++)
			dup = strcmp(models[k], r->own[i].model) == 0;
		if (!dup)
			models[n++] = r->own[i].model;
	}
	return n;
}

/* Start the task of a claimed request; *m is the task's (or cleared). */
static void start_task(struct runner *r, const struct work_claimed *w, struct work_model *m)
{
	struct claim *c = malloc(sizeof *c);

	if (c) {
		*c = (struct claim){r, w->q, *m, w->wi, w->irc};
		if (rl_spawn(r->loop, runner_process, c)) {
			r->njobs++; /* counted until runner_process ends */
			return;
		}
		free(c);
	}
	log_error_x("runner request=%lld msg=\"no task for the request, handing it back\"",
		    (long long)w->q.id);
	db_work_handback(r->db, w->q.id, r->id);
	db_work_model_clear(m);
}

/* Start the tasks of n requests claimed together, each with its own copy
 * of their model *m (the last one takes *m itself). */
static void start_tasks(struct runner *r, const struct work_claimed *w, int n,
			struct work_model *m)
{
	for (int k = 0; k < n; k++) {
		struct work_model mk;

		if (k == n - 1)
			mk = *m;
		else if (db_work_model_copy(&mk, m) < 0) {
			log_error_x("runner request=%lld msg=\"out of memory, handing it back\"",
				    (long long)w[k].q.id);
			db_work_handback(r->db, w[k].q.id, r->id);
			continue;
		}
		start_task(r, &w[k], &mk);
	}
}

/* One claim among the claimable models: up to WORK_CLAIM_MAX requests of
 * one model (no more than max_tasks has room for). Extra models never take
 * a model from its assigned runner, and claims use FOR UPDATE SKIP LOCKED,
 * so two runners never get one request. 1 when requests were claimed
 * (their tasks started). */
static int claim_once(struct runner *r)
{
	struct hubd_runner_models am;
	const char *models[HUBD_MAX_ASSIGN + RUNNER_MAX_OWN];
	struct work_claimed got[WORK_CLAIM_MAX];
	enum work_claim_rc rc;
	int n = claim_models(r, &am, models);
	int room = r->max_tasks - r->njobs;

	while (n > 0) {
		struct work_claim c = {r->id, r->c->replica_id, r->backend, models, n,
				       r->lease_s, r->request_timeout_s,
				       room < WORK_CLAIM_MAX ? room : WORK_CLAIM_MAX};
		struct work_model m;
		int ngot;

		rc = db_work_claim(r->db, &c, &m, got, &ngot);
		if (rc == WORK_CLAIM_ERROR || rc == WORK_CLAIM_NONE)
			return 0;
		if (rc == WORK_CLAIM_OK) {
			log_info("runner model=%s claimed=%d asked=%d first=%lld", m.id, ngot, c.max,
				 (long long)got[0].q.id);
			start_tasks(r, got, ngot, &m);
			return 1;
		}
		/* FULL: the model filled up since the claim's check, skip it
		 * a while; TAKEN: others took its queue. Try the other models
		 * now. */
		if (rc == WORK_CLAIM_FULL)
			runner_backoff_set(r, m.id, RUNNER_FULL_BACKOFF_MS);
		for (int i = 0; i < n; i++)
			if (strcmp(models[i], m.id) == 0)
				models[i--] = models[--n];
	}
	return 0;
}

/* The busy flag the dealer reads: set at max_tasks; clearing it pokes the
 * dealer (through the supervisor) for a new assignment. */
static void set_busy(struct runner *r)
{
	int busy = r->njobs >= r->max_tasks;

	if (busy != r->busy) {
		r->busy = busy;
		hubd_set_busy(r->c->role_index, busy);
	}
}

/* Claim while under max_tasks and work comes; 1 when anything was claimed. */
static int claim_all(struct runner *r)
{
	int any = 0;

	while (r->njobs < r->max_tasks && !hubd_should_stop() && claim_once(r)) {
		any = 1;
		set_busy(r);
	}
	set_busy(r);
	return any;
}

/* One turn of the claim loop: claim when there is reason to (a NOTIFY
 * work_queued, a request ended, a poke, or RUNNER_IDLE_WAIT_MS passed),
 * housekeep, and sleep until the socket has news or a task wakes us. The
 * loop is woken by every statement's answer too (the socket is shared):
 * those turns only read notifications. */
static void loop_once(struct runner *r)
{
	int64_t now = mh_mono_ms();
	unsigned long seen;

	if (hubd_take_reload()) {
		config_read(r);
		r->wake_claim = 1;
		log_info("runner max_tasks=%d msg=\"config reloaded\"", r->max_tasks);
	}
	drain_notifies(r);
	seen = db_notify_count(r->db, "work_queued");
	if (r->wake_claim || seen != r->seen_queued || now - r->last_claim >= RUNNER_IDLE_WAIT_MS) {
		r->wake_claim = 0;
		r->seen_queued = seen;
		r->last_claim = now;
		claim_all(r);
		/* a NOTIFY that came with the claim's answer: claim again */
		drain_notifies(r);
		if (db_notify_count(r->db, "work_queued") != seen && r->njobs < r->max_tasks)
			return;
	}
	now = mh_mono_ms();
	if (now - r->last_housekeep >= RUNNER_HOUSEKEEP_MS)
		runner_housekeep(r);
	if (now - r->last_sweep >= RUNNER_SWEEP_MS)
		runner_sweep_lost(r);
	if (!r->wake_claim && !hubd_should_stop())
		rl_wait(r->loop, db_socket(r->db), POLLIN, RUNNER_HOUSEKEEP_MS);
}

/* The claim loop's task; at SIGTERM it waits for the requests' tasks to
 * hand their requests back, then stops the instances. */
static void claimer_main(void *arg)
{
	struct runner *r = arg;

	while (!hubd_should_stop())
		loop_once(r);
	while (r->njobs > 0) {
		for (struct job *j = r->jobs; j; j = j->next)
			rl_wake(j->task);
		rl_wait(r->loop, -1, 0, 100);
	}
	log_info("runner instances=%d msg=\"stopping\"", r->nown);
	while (r->nown > 0)
		runner_own_leave(r, r->nown - 1);
}

/* The scheduler saw SIGTERM, SIGHUP or a poke: wake the claim loop (and,
 * at SIGTERM, every request, whose tick then hands it back). */
static void on_signal(void *ctx, int poked)
{
	struct runner *r = ctx;

	(void)poked;
	r->wake_claim = 1;
	rl_wake(r->claimer);
	if (hubd_should_stop())
		for (struct job *j = r->jobs; j; j = j->next)
			rl_wake(j->task);
}

/* A request's task ended (runner_req.c): room for another claim. */
void runner_job_ended(struct runner *r)
{
	r->njobs--;
	r->wake_claim = 1;
	rl_wake(r->claimer);
}

int runner_main(struct hubd_child *c)
{
	struct runner *r = calloc(1, sizeof *r);
	int rc = 1;

	if (!r)
		return 1;
	r->c = c;
	r->db = c->db;
	snprintf(r->id, sizeof r->id, "%s/runner-%d/%d", c->replica_id, c->role_index, (int)getpid());
	snprintf(r->backend, sizeof r->backend, "%s", cfg_str("hub.backend", "local"));
	r->seed = (unsigned)getpid() ^ (unsigned)mh_mono_ms();
	gethostname(r->node, sizeof r->node - 1);
	config_read(r);
	r->cl = cluster_new(r->backend);
	r->loop = r->cl ? rl_new(c, r->db) : NULL;
	if (!r->loop)
		goto out;
	cluster_set_probe(r->cl, runner_probe, r);
	cluster_set_io(r->cl, &(struct cluster_io){rl_io_perform, rl_io_sleep, r->loop});
	db_listen(r->db, "work_queued");
	db_listen(r->db, "model_changed");
	db_listen(r->db, "instance_stop");
	db_listen(r->db, "request_cancelled");
	r->claimer = rl_spawn(r->loop, claimer_main, r);
	if (!r->claimer)
		goto out;
	rl_on_signal(r->loop, on_signal, r);
	rl_notify_to(r->loop, r->claimer);
	log_info("runner id=%s backend=%s max_tasks=%d msg=\"started\"", r->id, r->backend, r->max_tasks);
	rl_run(r->loop);
	rc = 0;
out:
	if (r->cl)
		cluster_set_io(r->cl, NULL); /* its stops at free block: the loop is gone */
	rl_free(r->loop);
	cluster_free(r->cl);
	free(r);
	return rc;
}
