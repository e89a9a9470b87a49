/*
 * runner.c — the runner child's claim loop: claims work requests of its
 * assigned models and hands each to runner_req.c; lease renewal, abort
 * checks and config reloads (DESIGN.md §5).
 *
 * Runs in: modelhubd, hub.runners children ("modelhubd: runner N").
 * Called by: supervisor.c (runner_main after fork).
 * Owns: its Postgres connection (LISTEN work_queued, model_changed,
 * instance_stop), a cluster backend handle, an HTTP client, and the model
 * instances it started (local backend: their parent; it reaps them, stops
 * them when idle or asked to, and records their end).
 * Shared state: work_request rows it claimed (RUNNING, runner_id = its id;
 * every write says so), model_instance rows (BUSY/IDLE by conditional
 * updates, so instances of other runners of this replica can be borrowed
 * when IDLE), hubd_shm (heartbeat, busy flag; reads its model assignment).
 * On crash: its claimed request's lease expires and the janitor requeues
 * it; its instances die with it (PR_SET_PDEATHSIG) and their rows are marked
 * LOST by the next runner's sweep; results already stored are kept and
 * never duplicated (ON CONFLICT DO NOTHING; only inputs without a result are
 * sent again).
 *
 * DESIGN
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
 * - Instance failure policy: OOM-killed -> FAILED OOM_KILLED at once (the
 *   same limit would kill the next instance too); any other death -> one
 *   retry on a fresh instance within the same attempt (finished chunks are
 *   kept), a second death -> FAILED MODEL_ERROR.
 * - Deadlines: instance start (hub.instance_start_timeout) -> FAILED
 *   INSTANCE_START_TIMEOUT (NO_CAPACITY when still unschedulable, or when a
 *   quota refused every create; CLUSTER_ERROR when the API server did:
 *   refused creates are retried with jittered back-off until then); one call (hub.chunk_timeout) or the whole
 *   request (work_request.deadline, hub.request_timeout) -> FAILED TIMEOUT,
 *   and the possibly wedged instance is stopped.
 * - While a call is in flight the HTTP client's tick (about once a second)
 *   beats the heartbeat, renews the lease every lease/3, reaps and idles out
 *   other instances, and aborts the call on SIGTERM (request handed back),
 *   cancellation (status CANCELLED) or a lost lease.
 *
 * Files: runner.c (this claim loop), runner_pool.c (the instances it
 * starts and the slot of a request), runner_req.c (one request: inputs,
 * chunks, outcome), runner_call.c (the model calls and stores of a chunk);
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void config_read(struct runner *r)
{
	r->lease_s = (int)cfg_int("hub.lease_seconds", 30);
	r->chunk_size = (int)cfg_int("hub.chunk_size", 100);
	r->start_timeout_s = (int)cfg_int("hub.instance_start_timeout", 300);
	r->chunk_timeout_s = (int)cfg_int("hub.chunk_timeout", 600);
	r->request_timeout_s = (int)cfg_int("hub.request_timeout", 3600);
	r->halving = strcmp(cfg_str("hub.isolation", "adaptive"), "halving") == 0;
	if (r->lease_s < 3)
		r->lease_s = 3;
	if (r->chunk_size < 1)
		r->chunk_size = 1;
}

/* Lease renewal and abort checks; also run from the HTTP client's tick.
 * Returns non-zero when the current work must stop (r->abort says why). */
int runner_tick(void *ctx)
{
	struct runner *r = ctx;
	int64_t now = mh_mono_ms();

	hubd_heartbeat(r->c);
	if (hubd_should_stop() && r->abort == AB_NONE)
		r->abort = AB_STOP;
	if (r->req && r->abort == AB_NONE &&
	    now - r->last_renew >= (r->lease_s * 1000 / 3 < RUNNER_RENEW_MAX_MS ? r->lease_s * 1000 / 3 : RUNNER_RENEW_MAX_MS)) {
		int ok = db_work_renew(r->db, r->req->id, r->id, r->lease_s);
		r->last_renew = now;
		if (ok == 0) {
			char st[24] = "";
			db_work_status(r->db, r->req->id, st, sizeof st);
			r->abort = strcmp(st, "CANCELLED") == 0 ? AB_CANCELLED : AB_LOST;
			log_info("runner status=%s msg=\"request no longer ours, stopping work\"",
				 st[0] ? st : "gone");
		}
	}
	if (now - r->last_housekeep >= RUNNER_HOUSEKEEP_MS)
		runner_housekeep(r);
	return r->abort != AB_NONE;
}

/* Sleep ms while ticking; non-zero when the work must stop. */
int runner_nap(struct runner *r, int ms)
{
	if (hubd_wait(r->c, -1, ms) < 0 && r->abort == AB_NONE)
		r->abort = AB_STOP;
	return runner_tick(r);
}

/* Sleep until the monotonic time t, doing the runner's housekeeping; non-zero
 * when the request is to be aborted (SIGTERM, cancellation, lost lease). */
int runner_nap_until(struct runner *r, int64_t t)
{
	for (int64_t now = mh_mono_ms(); now < t; now = mh_mono_ms())
		if (runner_nap(r, (int)(t - now < RUNNER_POLL_MS * 4 ? t - now : RUNNER_POLL_MS * 4)))
			return 1;
	return 0;
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

static void drain_notifies(struct runner *r)
{
	PGnotify *n;

	while ((n = db_next_notify(r->db)) != NULL) {
		if (strcmp(n->relname, "model_changed") == 0) {
			memset(r->back, 0, sizeof r->back);
			/* idle instances run the old command/resources: retire them */
			for (int i = 0; i < r->nown; i++)
				if (strcmp(r->own[i].model, n->extra) == 0 && r->own[i].id != r->cur_inst &&
				    db_inst_take_idle(r->db, r->own[i].id, 0) == 1) {
					runner_own_stop(r, i, "STOPPED", "MODEL_CHANGED");
					i--;
				}
		}
		else if (strcmp(n->relname, "instance_stop") == 0)
			r->last_housekeep = 0; /* an admin asked: look now */
		PQfreemem(n);
	}
}

/* One claim attempt among the assigned models and the models of this
 * runner's own instances (a warm model is claimed on this runner's own
 * NOTIFY, without waiting for the supervisor to assign it again once its
 * queue drained: docs/performance.md, "Work requests"). Extra models never
 * take a model from its assigned runner, and claims use FOR UPDATE SKIP
 * LOCKED, so two runners never get one request. 1 when work was done. */
static int claim_once(struct runner *r)
{
	struct hubd_runner_models am;
	const char *models[HUBD_MAX_ASSIGN + RUNNER_MAX_OWN];
	struct work_req q;
	enum work_claim_rc rc;
	int n = 0;

	hubd_assigned_models(r->c->role_index, &am);
	for (int i = 0; i < am.n; i++)
		if (!backoff_active(r, am.id[i]))
			models[n++] = am.id[i];
	for (int i = 0; i < r->nown; i++) {
		int dup = backoff_active(r, r->own[i].model);

		for (int k = 0; k < n && !dup; k++)
			dup = strcmp(models[k], r->own[i].model) == 0;
		if (!dup)
			models[n++] = r->own[i].model;
	}
	if (n == 0)
		return 0;
	for (;;) {
		struct work_claim c = {r->id, r->c->replica_id, r->backend, models, n,
				       r->lease_s, r->request_timeout_s};
		struct work_model m;
		struct work_inst wi;
		enum work_slot irc;

		rc = db_work_claim(r->db, &c, &q, &m, &wi, &irc);
		if (rc == WORK_CLAIM_ERROR || rc == WORK_CLAIM_NONE)
			return 0;
		if (rc == WORK_CLAIM_OK) {
			hubd_set_busy(r->c->role_index, 1);
			runner_process(r, &q, &m, &wi, irc);
			hubd_set_busy(r->c->role_index, 0);
			return 1;
		}
		/* FULL: the model filled up since the claim's check, skip it
		 * a while; TAKEN: others took its queue. Try the other models
		 * now. */
		if (rc == WORK_CLAIM_FULL)
			runner_backoff_set(r, q.model_id, RUNNER_FULL_BACKOFF_MS);
		for (int i = 0; i < n; i++)
			if (strcmp(models[i], q.model_id) == 0)
				models[i--] = models[--n];
		if (n == 0)
			return 0;
	}
}

/* One turn of the claim loop: claim, else housekeep and sleep until a
 * NOTIFY, a poke or RUNNER_IDLE_WAIT_MS. */
static void loop_once(struct runner *r)
{
	int64_t now;
	unsigned long seen;

	hubd_heartbeat(r->c);
	if (hubd_take_reload())
		config_read(r);
	drain_notifies(r);
	seen = db_notify_count(r->db, "work_queued");
	/* Claim before housekeeping: a request that woke us should not
	 * wait for the reap/idle checks. Those run when there is nothing
	 * to claim, and from the tick during calls; a runner that stays
	 * busy still sweeps between requests. */
	if (claim_once(r)) {
		if (mh_mono_ms() - r->last_sweep >= RUNNER_SWEEP_MS * 3)
			runner_sweep_lost(r);
		return;
	}
	/* A NOTIFY that came in with the claim's answer sits in libpq's
	 * buffer, where poll() cannot see it: take it out and claim
	 * again rather than sleep on a socket with nothing new. */
	drain_notifies(r);
	if (db_notify_count(r->db, "work_queued") != seen)
		return;
	now = mh_mono_ms();
	if (now - r->last_housekeep >= RUNNER_HOUSEKEEP_MS)
		runner_housekeep(r);
	if (now - r->last_sweep >= RUNNER_SWEEP_MS)
		runner_sweep_lost(r);
	if (hubd_wait(r->c, db_socket(r->db), RUNNER_IDLE_WAIT_MS) == 1)
		drain_notifies(r);
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
	r->mc = mc_new();
	if (!r->cl || !r->mc)
		goto out;
	mc_set_tick(r->mc, runner_tick, r);
	db_listen(r->db, "work_queued");
	db_listen(r->db, "model_changed");
	db_listen(r->db, "instance_stop");
	log_info("runner id=%s backend=%s msg=\"started\"", r->id, r->backend);
	while (!hubd_should_stop())
		loop_once(r);
	log_info("runner instances=%d msg=\"stopping\"", r->nown);
	while (r->nown > 0)
		runner_own_leave(r, r->nown - 1);
	rc = 0;
out:
	mc_free(r->mc);
	cluster_free(r->cl);
	free(r);
	return rc;
}
