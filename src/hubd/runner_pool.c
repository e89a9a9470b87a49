/*
 * runner_pool.c — the runner's instance pool: the model instances it
 * started (create with back-off, readiness, reaping, idling out, stops an
 * admin asked for, the LOST sweep of this replica's rows) and the slot a
 * request runs on (claimed with it, an IDLE warm instance, or a new one).
 *
 * Runs in: modelhubd runner children. Called by: runner.c (housekeeping,
 * sweep, shutdown), runner_req.c (runner_inst_get/put), runner_call.c
 * (runner_inst_dead after a failed call).
 * Owns: struct runner.own[] (instances this runner started; local backend:
 * their parent, it reaps them) and the cluster backend calls about them.
 * Shared state: model_instance rows (REQUESTED -> READY -> BUSY/IDLE ->
 * TERMINATING -> TERMINATED, by conditional updates, so an IDLE instance
 * of another runner of this replica can be borrowed), instance events and
 * logs (db_inst_*), the autoscaler's verdict on a Pending pod.
 * On crash: instances die with the runner (PR_SET_PDEATHSIG); the next
 * runner's sweep marks their rows LOST after two sightings.
 *
 * DESIGN
 * - A new instance is created with capped, jittered back-off while the
 *   backend refuses it for a reason that may pass (API server, quota), until
 *   the start deadline (hub.instance_start_timeout; extended while the node
 *   autoscaler provisions capacity for it, cut short when it says none can
 *   exist): then NO_CAPACITY / CLUSTER_ERROR / INSTANCE_START_TIMEOUT, never
 *   MODEL_ERROR, which is the model's own fault.
 * - A reused instance is checked alive before use; a borrowed one (another
 *   runner's) is judged by its pid, its owner records the reason.
 */
#include "hubd/runner.h"
#include "db/db_autoscale.h"
#include "hubd/shared.h"
#include "hubd/sizing.h"
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

static const char *term_reason(enum cluster_term t, const char *fallback)
{
	if (t == CLUSTER_TERM_STOPPED || t == CLUSTER_TERM_NONE)
		return fallback;
	return cluster_term_name(t);
}

int runner_own_find(struct runner *r, int64_t id)
{
	for (int i = 0; i < r->nown; i++)
		if (r->own[i].id == id)
			return i;
	return -1;
}

static void own_drop(struct runner *r, int i)
{
	r->own[i] = r->own[--r->nown];
}

/* Record the end of instance o (stopping it first if still running). */
static void own_end(struct runner *r, const struct owned *o, const char *reason, const char *why)
{
	struct cluster_instance ci;
	struct buf logs = BUF_INIT;
	const char *rsn = reason;
	char detail[300];
	int g;

	memset(&ci, 0, sizeof ci);
	g = cluster_get(r->cl, o->name, &ci);
	if (g != 0 || ci.state != CLUSTER_EXITED) {
		/* running, or unknown to the backend (a pod not seen yet): delete */
		cluster_delete(r->cl, o->name, RUNNER_STOP_GRACE_MS);
		memset(&ci, 0, sizeof ci);
		cluster_get(r->cl, o->name, &ci);
	}
	if (ci.state == CLUSTER_EXITED)
		rsn = term_reason(ci.term, reason);
	snprintf(detail, sizeof detail, "%s%s%s", why ? why : "", why && ci.detail[0] ? "; " : "",
		 ci.detail);
	cluster_logs(r->cl, o->name, &logs, RUNNER_LOG_MAX);
	buf_cstr(&logs);
	db_inst_terminated(r->db, o->id, rsn, detail, logs.data ? logs.data : "");
	buf_free(&logs);
	log_info("runner instance=%lld model=%s reason=%s detail=\"%s\" msg=\"instance ended\"",
		 (long long)o->id, o->model, rsn, detail);
}

/* An instance being ended by a task of its own. */
struct ending {
	struct runner *r;
	struct owned o;
	char reason[24], why[96];
	int record; /* 0: only delete it (its row was ended by someone else) */
	struct ending *next;
};

static void ending_main(void *arg)
{
	struct ending *e = arg, **pp;
	struct runner *r = e->r;

	if (e->record)
		own_end(r, &e->o, e->reason, e->why);
	else
		cluster_delete(r->cl, e->o.name, RUNNER_STOP_GRACE_MS);
	for (pp = &r->endings; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	free(e);
}

/* The claim loop never waits for an instance to stop (up to
 * RUNNER_STOP_GRACE_MS for a process that ignores SIGTERM; a pod delete
 * waits for the watch to see it go): its housekeeping hands the stop to a
 * task of its own and goes on claiming. A request's task stops its
 * instance itself (its own time). 1 when a task took it. */
static int end_in_task(struct runner *r, const struct owned *o, const char *reason, const char *why,
		       int record)
{
	struct ending *e;

	if (rl_self(r->loop) != r->claimer || hubd_should_stop() || !(e = calloc(1, sizeof *e)))
		return 0;
	*e = (struct ending){.r = r, .o = *o, .record = record, .next = r->endings};
	snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
	snprintf(e->why, sizeof e->why, "%s", why ? why : "");
	if (!rl_spawn(r->loop, ending_main, e)) {
		free(e);
		return 0;
	}
	r->endings = e;
	return 1;
}

int runner_ending(const struct runner *r, int64_t id)
{
	for (const struct ending *e = r->endings; e; e = e->next)
		if (e->o.id == id)
			return 1;
	return 0;
}

/* Record the end of an owned instance (stopping it first if still running)
 * and forget it. reason is used when we stopped it (IDLE, STOPPED, FAILED). */
void runner_own_finish(struct runner *r, int i, const char *reason, const char *why)
{
	struct owned o = r->own[i];

	/* out of the table first: the statements below let other tasks run */
	own_drop(r, i);
	if (!end_in_task(r, &o, reason, why, 1))
		own_end(r, &o, reason, why);
}

/* Stop instance i for reason (IDLE or STOPPED) after marking it TERMINATING. */
void runner_own_stop(struct runner *r, int i, const char *reason, const char *event)
{
	int64_t id = r->own[i].id;

	db_inst_state(r->db, id, "TERMINATING", event, NULL);
	/* the statement let other tasks run: find it again */
	i = runner_own_find(r, id);
	if (i >= 0)
		runner_own_finish(r, i, reason, reason);
}

/* runner_own_stop of the instance with that id, if still in the table (a
 * statement since it was found let other tasks run). */
void runner_own_stop_id(struct runner *r, int64_t id, const char *reason, const char *event)
{
	int i = runner_own_find(r, id);

	if (i >= 0)
		runner_own_stop(r, i, reason, event);
}

static void own_finish_id(struct runner *r, int64_t id, const char *reason, const char *why)
{
	int i = runner_own_find(r, id);

	if (i >= 0)
		runner_own_finish(r, i, reason, why);
}

void runner_own_leave(struct runner *r, int i)
{
	int64_t id = r->own[i].id;

	if (strcmp(r->backend, "kubernetes") == 0 && db_inst_hand_over(r->db, id, r->c->replica_id) == 1) {
		/* the statement let other tasks run: find it again */
		i = runner_own_find(r, id);
		if (i < 0)
			return;
		log_info("runner instance=%lld model=%s msg=\"instance handed over to the remaining replicas\"",
			 (long long)id, r->own[i].model);
		own_drop(r, i);
		return;
	}
	runner_own_stop_id(r, id, "STOPPED", "STOP_SHUTDOWN");
}

/* An owned instance no job uses, yet BUSY or READY in the table at two
 * housekeeping passes in a row: its release was lost to a database outage
 * (issue 17, t/913: an immediate Postgres restart while results were
 * stored left every max_instances slot held for good). Released again.
 * Two passes, because between a job's acquire and its cur_inst the row is
 * legitimately BUSY. 1 when handled. */
static int lost_release(struct runner *r, int i, int64_t id, const char *state, int serving)
{
	/* serving: the request on it is RUNNING, under another runner of this
	 * replica that borrowed the IDLE instance */
	if (serving || runner_job_of_inst(r, id) ||
	    (strcmp(state, "BUSY") != 0 && strcmp(state, "READY") != 0)) {
		r->own[i].busy_unused = 0;
		return 0;
	}
	if (!r->own[i].busy_unused++)
		return 1;
	r->own[i].busy_unused = 0;
	log_warn_x("runner instance=%lld msg=\"released again (release lost to a database error)\"",
		   (long long)id);
	db_inst_release(r->db, id);
	return 1;
}

/* Make the owned instances match their rows (db_inst_poll: id, state,
 * stop requested, reason, serving a RUNNING request). */
static void own_reconcile(struct runner *r, PGresult *res)
{
	for (int k = 0; k < PQntuples(res); k++) {
		int64_t id = strtoll(PQgetvalue(res, k, 0), NULL, 10);
		const char *state = PQgetvalue(res, k, 1);
		int stop = PQgetvalue(res, k, 2)[0] == 't';
		int i = runner_own_find(r, id);
		if (i < 0)
			continue;
		if (strcmp(state, "TERMINATED") == 0) {
			/* someone (janitor, admin) ended the row: make it true */
			if (!end_in_task(r, &r->own[i], NULL, NULL, 0))
				cluster_delete(r->cl, r->own[i].name, RUNNER_STOP_GRACE_MS);
			i = runner_own_find(r, id); /* a delete lets other tasks run */
			if (i >= 0)
				own_drop(r, i);
			continue;
		}
		if (stop) {
			struct job *uj = runner_job_of_inst(r, id);
			if (uj) {
				/* abort the call; the request goes on elsewhere */
				r->own[i].stop_after = 1;
				if (uj->abort == AB_NONE) {
					uj->abort = AB_INSTSTOP;
					rl_wake(uj->task);
				}
			} else
				runner_own_stop(r, i, "STOPPED", "STOP_REQUESTED");
			continue;
		}
		if (lost_release(r, i, id, state, PQgetvalue(res, k, 4)[0] == 't'))
			continue;
		if (!runner_job_of_inst(r, id) && strcmp(state, "IDLE") == 0 &&
		    db_inst_take_idle(r->db, id, r->own[i].idle_seconds) == 1)
			runner_own_stop_id(r, id, "IDLE", "STOP_IDLE");
	}
}

/* Reap, idle out and stop-on-request the instances this runner started,
 * except those a request uses. */
void runner_housekeep(struct runner *r)
{
	struct buf ids = BUF_INIT;
	PGresult *res;

	r->last_housekeep = mh_mono_ms();
	for (int i = 0; i < r->nown; i++) {
		struct cluster_instance ci;
		if (runner_job_of_inst(r, r->own[i].id))
			continue;
		int g = cluster_get(r->cl, r->own[i].name, &ci);
		if (g == 1 && mh_mono_ms() - r->own[i].created_ms < RUNNER_UNKNOWN_GRACE_MS)
			continue;
		if (g != 0 || ci.state == CLUSTER_EXITED) {
			runner_own_finish(r, i, "FAILED", "exited while not serving");
			i--;
		}
	}
	if (r->nown == 0)
		return;
	buf_addc(&ids, '{');
	for (int i = 0; i < r->nown; i++)
		buf_printf(&ids, "%s%lld", i ? "," : "", (long long)r->own[i].id);
	buf_addc(&ids, '}');
	res = db_inst_poll(r->db, buf_cstr(&ids));
	buf_free(&ids);
	if (!res)
		return;
	own_reconcile(r, res);
	PQclear(res);
}

/* 1 while pid runs; a zombie (dead, not yet reaped by whoever adopted it)
 * counts as gone. */
int runner_pid_alive(int pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int alive = 1;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return 0;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 1;
	if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')) && p[1] == ' ' && p[2] == 'Z')
		alive = 0;
	fclose(f);
	return alive;
}

static int suspect_seen(struct runner *r, int64_t id)
{
	for (int i = 0; i < r->nsuspects; i++)
		if (r->suspects[i] == id)
			return 1;
	return 0;
}

/* The runner of runner_id ("<replica>/runner-<n>/<pid>", this replica's)
 * is alive. */
static int owner_alive(const char *runner_id)
{
	const char *slash = strrchr(runner_id, '/');

	return slash && atoi(slash + 1) > 0 && runner_pid_alive(atoi(slash + 1));
}

/* Rows of this replica whose process is gone and that nobody reaped (their
 * runner died): LOST once seen dead on two sweeps in a row, so an owner that
 * is just recording the real reason wins. */
void runner_sweep_lost(struct runner *r)
{
	int64_t seen[64];
	int nseen = 0;
	PGresult *res;

	r->last_sweep = mh_mono_ms();
	/* kubernetes: pods outlive runners; the kubewatch child ends rows
	 * whose pod is gone (kubewatch.c) */
	if (strcmp(r->backend, "local") != 0)
		return;
	res = db_inst_active_of_replica(r->db, r->c->replica_id);
	if (!res)
		return;
	for (int k = 0; k < PQntuples(res); k++) {
		int64_t id = strtoll(PQgetvalue(res, k, 0), NULL, 10);
		int pid = atoi(PQgetvalue(res, k, 1));
		if (runner_own_find(r, id) >= 0 || runner_ending(r, id))
			continue;
		/* pid 0 past REQUESTED: not a local process (a pod); the backend's
		 * own watch (monitor) decides about those */
		if (pid == 0 && strcmp(PQgetvalue(res, k, 2), "REQUESTED") != 0)
			continue;
		/* not started yet by a runner that lives: a busy runner may take
		 * seconds between the claim and the start */
		if (pid == 0 && owner_alive(PQgetvalue(res, k, 3)))
			continue;
		if (pid > 0 && runner_pid_alive(pid))
			continue;
		if (suspect_seen(r, id)) {
			log_warn_x("runner instance=%lld pid=%d msg=\"instance process gone, marking LOST\"",
				   (long long)id, pid);
			db_inst_lost(r->db, id, pid ? "process gone, owner died" : "never started, owner died");
		} else if (nseen < 64) {
			seen[nseen++] = id;
		}
	}
	PQclear(res);
	memcpy(r->suspects, seen, sizeof seen[0] * (size_t)nseen);
	r->nsuspects = nseen;
}

/* ---------------------------------------------------------- instances */

static void inst_spec(const struct work_model *m, const struct runner *r, int64_t inst_id,
		      int64_t req_id, struct cluster_spec *s, char *reqbuf, size_t reqlen)
{
	memset(s, 0, sizeof *s);
	snprintf(reqbuf, reqlen, "%lld", (long long)req_id);
	s->instance_id = inst_id;
	s->model_id = m->id;
	s->image = m->image[0] ? m->image : NULL;
	s->image_tag = m->image_tag;
	s->local_command = (const char *const *)m->cmd;
	s->ncommand = m->ncmd;
	s->port = m->port;
	s->cpu_request_m = m->cpu_request_m;
	s->cpu_limit_m = m->cpu_limit_m;
	s->memory_request_mib = m->memory_request_mib;
	s->memory_limit_mib = m->disable_memory_limit ? 0 : m->memory_limit_mib;
	s->request_id = reqbuf;
	s->replica_id = r->c->replica_id;
}

/* Is the instance gone? 1 dead (*oom set when killed at its memory
 * limit, why filled), 2 stopped on request (admin), 0 alive. Waits briefly
 * for a dying process. */
int runner_inst_dead(struct runner *r, struct cur *in, int *oom, char *why, size_t whylen)
{
	*oom = 0;
	for (int t = 0; t < 10; t++) {
		if (in->owned) {
			struct cluster_instance ci;
			if (cluster_get(r->cl, in->wi.name, &ci) != 0)
				return 1;
			if (ci.state == CLUSTER_EXITED) {
				*oom = ci.term == CLUSTER_TERM_OOMKILLED;
				snprintf(why, whylen, "%s", ci.detail);
				if (!*oom) {
					/* without a cgroup the scraper kills at the limit
					 * and records OOMKILLED on the row first */
					char ids[32];
					PGresult *res;
					snprintf(ids, sizeof ids, "{%lld}", (long long)in->wi.id);
					res = db_inst_poll(r->db, ids);
					if (res && PQntuples(res) == 1 &&
					    strcmp(PQgetvalue(res, 0, 3), "OOMKILLED") == 0) {
						*oom = 1;
						snprintf(why, whylen, "killed at its memory limit (scraper)");
					}
					PQclear(res);
				}
				return 1;
			}
		} else if (in->wi.pid > 0 && !runner_pid_alive(in->wi.pid)) {
			/* borrowed: its owner records the reason; give it a moment */
			char ids[32], reason[24] = "";
			PGresult *res;
			snprintf(ids, sizeof ids, "{%lld}", (long long)in->wi.id);
			for (int k = 0; k < 12 && !reason[0]; k++) {
				res = db_inst_poll(r->db, ids);
				if (res && PQntuples(res) == 1)
					snprintf(reason, sizeof reason, "%s", PQgetvalue(res, 0, 3));
				PQclear(res);
				if (!reason[0])
					runner_sleep(r, RUNNER_POLL_MS);
			}
			*oom = strcmp(reason, "OOMKILLED") == 0;
			snprintf(why, whylen, "instance process %d gone%s%s", in->wi.pid,
				 reason[0] ? ", " : "", reason);
			return strcmp(reason, "STOPPED") == 0 ? 2 : 1;
		}
		if (t < 9)
			runner_sleep(r, 200);
	}
	return 0;
}



/* The node autoscaler's verdict on a pod still Pending (autoscaler_pod,
 * DESIGN.md §7), read every RUNNER_CAPACITY_MS: while capacity is being
 * provisioned for it the start deadline is extended to hub.provision_timeout
 * (default 15 min) after the instance was created; when nothing can ever hold it the start
 * fails at once: returns 1 with reason NO_CAPACITY and the autoscaler's
 * message. 0 otherwise (keep waiting). */
static int capacity_word(struct runner *r, struct cur *in, int64_t *until, int64_t *asked, char *detail,
			 size_t dlen, const char **reason)
{
	char verdict[32], msg[512];
	int64_t now = mh_mono_ms(), longest;
	int i;

	if (strcmp(r->backend, "kubernetes") != 0 || now - *asked < RUNNER_CAPACITY_MS)
		return 0;
	*asked = now;
	if (db_as_pod_get(r->db, in->wi.name, verdict, sizeof verdict, msg, sizeof msg) != 1)
		return 0;
	if (strcmp(verdict, "no_capacity") == 0) {
		snprintf(detail, dlen, "no node can hold the instance: %s", msg);
		*reason = "NO_CAPACITY";
		return 1;
	}
	i = runner_own_find(r, in->wi.id);
	longest = (i >= 0 ? r->own[i].created_ms : now) + (int64_t)(cfg_double("hub.provision_timeout", 900) * 1000);
	if (strcmp(verdict, "provisioning") == 0 && *until < longest) {
		log_info("runner instance=%lld pod=%s msg=\"capacity is being provisioned: start deadline extended\" "
			 "detail=\"%s\"", (long long)in->wi.id, in->wi.name, msg);
		*until = longest;
	}
	return 0;
}

/* Why an instance was not ready at its start deadline: no node could take
 * it (NO_CAPACITY), the API server could not say (CLUSTER_ERROR), or it
 * was scheduled and still not ready (INSTANCE_START_TIMEOUT). */
static const char *start_timeout_reason(const struct cluster_instance *ci)
{
	if (ci->no_capacity)
		return "NO_CAPACITY";
	return ci->api_error ? "CLUSTER_ERROR" : "INSTANCE_START_TIMEOUT";
}

/* Create the instance of spec. Refusals that may go away (API server
 * unreachable, slow, 429, 5xx, quota) are retried with capped, jittered
 * back-off (the server's Retry-After when longer) until the start deadline
 * until; then the request fails NO_CAPACITY (the last refusal was a quota)
 * or CLUSTER_ERROR, never MODEL_ERROR, which is the model's own fault. */
static enum get_rc inst_create(struct runner *r, struct job *j, const struct cluster_spec *spec, struct cluster_instance *ci,
			       int64_t until, const char **reason, char *detail, size_t dlen)
{
	for (int n = 1;; n++) {
		int rc = cluster_create(r->cl, spec, ci);
		int64_t wait;
		if (rc == 0)
			return GET_OK;
		if (rc != CLUSTER_ERR_RETRY && rc != CLUSTER_ERR_QUOTA) {
			/* final: the API server refused us (RBAC), or the model's pod spec */
			*reason = ci->api_error ? "CLUSTER_ERROR" : "MODEL_ERROR";
			snprintf(detail, dlen, "could not start an instance of model %s: %s", spec->model_id, ci->detail);
			return GET_FAILED;
		}
		if (mh_mono_ms() >= until) {
			*reason = rc == CLUSTER_ERR_QUOTA ? "NO_CAPACITY" : "CLUSTER_ERROR";
			snprintf(detail, dlen, "instance not created within %d s (%d attempts): %s", r->start_timeout_s,
				 n, ci->detail);
			return GET_FAILED;
		}
		wait = mh_backoff_ms(n, RUNNER_CREATE_BASE_MS, RUNNER_CREATE_CAP_MS, ci->retry_after_ms, &r->seed);
		log_warn_x("runner instance=%lld model=%s attempt=%d wait_ms=%lld detail=\"%s\" "
			   "msg=\"instance create refused, retrying\"", (long long)spec->instance_id, spec->model_id, n,
			   (long long)wait, ci->detail);
		if (runner_nap_until(j, mh_mono_ms() + wait < until ? mh_mono_ms() + wait : until))
			return GET_ABORT;
	}
}

/* An IDLE instance just taken (now BUSY): still there? Sets in->owned.
 * When gone, its row is ended (owned: FAILED; borrowed: LOST) and 0. */
static int warm_alive(struct runner *r, struct cur *in)
{
	struct cluster_instance ci;
	int i = runner_own_find(r, in->wi.id), oom;
	char why[256];

	in->owned = i >= 0;
	if (in->owned && (cluster_get(r->cl, in->wi.name, &ci) != 0 || ci.state == CLUSTER_EXITED)) {
		runner_own_finish(r, i, "FAILED", "exited while idle");
		return 0;
	}
	if (!in->owned && in->wi.pid > 0 && !runner_pid_alive(in->wi.pid) &&
	    runner_inst_dead(r, in, &oom, why, sizeof why)) {
		db_inst_lost(r->db, in->wi.id, why);
		return 0;
	}
	return 1;
}

int runner_inst_borrow(struct runner *r, struct job *j, struct cur *in)
{
	for (;;) {
		memset(in, 0, sizeof *in);
		if (db_inst_take_warm(r->db, j->m->id, j->req->id, r->c->replica_id, &in->wi) !=
		    WORK_SLOT_IDLE)
			return 0;
		if (!warm_alive(r, in))
			continue;
		/* sized for smaller calls than the request's (sql/014): a part
		 * could be too large for it */
		if (in->wi.chunk_size > 0 && in->wi.chunk_size < runner_chunk(r, j)) {
			runner_cur_put(j, in, 0);
			return 0;
		}
		return 1;
	}
}

/* Take a slot for the current request: the one claimed with it, or an
 * IDLE warm instance (checked still alive), or a new REQUESTED row. GET_OK
 * with *fresh 0 for a reused instance, *fresh 1 for a new row to start. */
static enum get_rc inst_take(struct runner *r, struct job *j, struct cur *in, int *fresh, const char **reason,
			     char *detail, size_t dlen)
{
	enum work_slot rc;

	*fresh = 0;
	for (;;) {
		memset(in, 0, sizeof *in);
		if (j->claim_rc != WORK_SLOT_NONE) {
			in->wi = j->claim_wi;
			rc = j->claim_rc;
			j->claim_rc = WORK_SLOT_NONE;
		} else {
			rc = db_inst_acquire(r->db, j->m, j->req->id, r->c->replica_id, r->backend, &in->wi);
		}
		if (rc != WORK_SLOT_ERROR && rc != WORK_SLOT_NONE)
			j->cur_inst = in->wi.id; /* housekeeping leaves it alone */
		if (rc == WORK_SLOT_ERROR) {
			*reason = "MODEL_ERROR";
			snprintf(detail, dlen, "database error while getting an instance");
			return GET_FAILED;
		}
		if (rc == WORK_SLOT_NONE)
			return GET_HANDBACK;
		if (rc == WORK_SLOT_IDLE) {
			/* reused: make sure it is still there */
			if (!warm_alive(r, in))
				continue;
			j->cur_inst = in->wi.id;
			log_info("runner instance=%lld model=%s owned=%d msg=\"reusing idle instance\"",
				 (long long)in->wi.id, j->m->id, in->owned);
			return GET_OK;
		}
		*fresh = 1;
		return GET_OK;
	}
}

/* Wait until the new instance in *in is ready (GET_OK, state BUSY), or fail
 * it: exited, no node can hold it, start deadline until passed, or the
 * request aborted. */
static enum get_rc inst_wait_ready(struct runner *r, struct job *j, struct cur *in, int64_t until,
				   const char **reason, char *detail, size_t dlen)
{
	struct cluster_instance ci;

	for (int64_t asked = 0;;) {
		int g = cluster_get(r->cl, in->wi.name, &ci);
		if (g == 1 && mh_mono_ms() - r->own[runner_own_find(r, in->wi.id)].created_ms >= RUNNER_UNKNOWN_GRACE_MS)
			ci.state = CLUSTER_EXITED;
		else if (g != 0)
			ci.state = CLUSTER_PENDING;
		if (ci.state == CLUSTER_READY) {
			/* kubernetes: the pod IP is known only once it runs */
			int moved = ci.address[0] && strcmp(ci.address, in->wi.address) != 0;
			if (moved)
				snprintf(in->wi.address, sizeof in->wi.address, "%s", ci.address);
			db_inst_ready_busy(r->db, in->wi.id, moved ? ci.address : NULL, ci.node);
			log_info("runner instance=%lld model=%s address=%s msg=\"instance ready\"",
				 (long long)in->wi.id, j->m->id, in->wi.address);
			return GET_OK;
		}
		if (ci.state == CLUSTER_EXITED) {
			int oom = ci.term == CLUSTER_TERM_OOMKILLED;
			snprintf(detail, dlen, "instance exited before it was ready: %s", ci.detail);
			*reason = oom ? "OOM_KILLED" : "MODEL_ERROR";
			own_finish_id(r, in->wi.id, "FAILED", "exited before ready");
			j->cur_inst = 0;
			return GET_FAILED;
		}
		if (ci.state == CLUSTER_PENDING && capacity_word(r, in, &until, &asked, detail, dlen, reason)) {
			db_inst_state(r->db, in->wi.id, "TERMINATING", "NO_CAPACITY", NULL);
			own_finish_id(r, in->wi.id, "FAILED", "no node can hold it");
			j->cur_inst = 0;
			return GET_FAILED;
		}
		if (mh_mono_ms() >= until) {
			/* the backend's last word says why (kubernetes: Unschedulable, ImagePullBackOff) */
			snprintf(detail, dlen, "instance not ready after %d s%s%.200s", r->start_timeout_s,
				 ci.detail[0] ? ": " : "", ci.detail);
			*reason = start_timeout_reason(&ci);
			db_inst_state(r->db, in->wi.id, "TERMINATING", "START_TIMEOUT", NULL);
			own_finish_id(r, in->wi.id, "FAILED", "not ready in time");
			j->cur_inst = 0;
			return GET_FAILED;
		}
		if (runner_nap(j, RUNNER_POLL_MS)) {
			own_finish_id(r, in->wi.id, "STOPPED", "stopped while starting");
			j->cur_inst = 0;
			return GET_ABORT;
		}
	}
}


/* Get an instance for the current request into *in. On GET_FAILED,
 * reason/detail say why (request to be failed). */
enum get_rc runner_inst_get(struct runner *r, struct job *j, struct cur *in, const char **reason,
			    char *detail, size_t dlen)
{
	struct cluster_spec spec;
	struct cluster_instance ci;
	char reqbuf[24];
	int64_t until;
	enum get_rc rc2;
	int i, fresh;

	rc2 = inst_take(r, j, in, &fresh, reason, detail, dlen);
	if (rc2 != GET_OK || !fresh)
		return rc2;
	/* a new instance row (REQUESTED) is ours: start it */
	j->cur_inst = in->wi.id;
	if (r->nown >= RUNNER_MAX_OWN) {
		db_inst_terminated(r->db, in->wi.id, "FAILED", "runner instance table full", NULL);
		j->cur_inst = 0;
		return GET_HANDBACK;
	}
	inst_spec(j->m, r, in->wi.id, j->req->id, &spec, reqbuf, sizeof reqbuf);
	/* opt-in: the resources of the request's size bucket (sql/014) */
	sizing_apply(r->db, r->c->seg, j->req->input_count, r->chunk_size, j->m->disable_memory_limit,
		     &spec, &in->wi.chunk_size);
	until = mh_mono_ms() + (int64_t)r->start_timeout_s * 1000;
	rc2 = inst_create(r, j, &spec, &ci, until, reason, detail, dlen);
	if (rc2 != GET_OK) {
		db_inst_terminated(r->db, in->wi.id, rc2 == GET_ABORT ? "STOPPED" : "FAILED",
				   rc2 == GET_ABORT ? "stopped while starting" : detail, NULL);
		j->cur_inst = 0;
		return rc2;
	}
	i = r->nown++;
	memset(&r->own[i], 0, sizeof r->own[i]);
	r->own[i].id = in->wi.id;
	snprintf(r->own[i].name, sizeof r->own[i].name, "%s", ci.name);
	snprintf(r->own[i].model, sizeof r->own[i].model, "%s", j->m->id);
	r->own[i].idle_seconds = j->m->idle_seconds;
	r->own[i].pid = ci.pid;
	r->own[i].created_ms = mh_mono_ms();
	in->owned = 1;
	snprintf(in->wi.name, sizeof in->wi.name, "%s", ci.name);
	snprintf(in->wi.address, sizeof in->wi.address, "%s", ci.address);
	in->wi.pid = ci.pid;
	db_inst_started(r->db, in->wi.id, ci.name, ci.address, ci.pid, ci.node[0] ? ci.node : r->node);
	return inst_wait_ready(r, j, in, until, reason, detail, dlen);
}

/* The local backend's readiness probe (cluster_set_probe): a client of
 * its own on the loop's multi handle, so the task waits and the others
 * run; blocking only on the scheduler's own stack. */
int runner_probe(void *ctx, const char *address, int timeout_ms)
{
	struct runner *r = ctx;
	struct rl_task *t = rl_self(r->loop);
	struct mc *m = mc_new();
	int ok;

	if (!m)
		return 0;
	if (t)
		mc_attach(m, rl_multi(r->loop), rl_mc_wait, t);
	ok = mc_healthz(m, address, timeout_ms);
	mc_free(m);
	return ok;
}

int runner_chunk(const struct runner *r, const struct job *j)
{
	int c = j && j->inst ? j->inst->wi.chunk_size : 0;

	return c > 0 && c < r->chunk_size ? c : r->chunk_size;
}

/* The request is done with its instance: back to IDLE, or stopped when the
 * model keeps no idle instances, an admin asked, or it failed (broken 1);
 * broken 2: a call on it was abandoned (cancellation, time budget), so it
 * is stopped (recycled) rather than reused while the model still works. */
void runner_inst_put(struct job *j, int broken)
{
	j->cur_inst = 0;
	runner_cur_put(j, j->inst, broken);
}

void runner_cur_put(struct job *j, struct cur *in, int broken)
{
	struct runner *r = j->r;
	const struct work_model *m = j->m;
	int64_t id = in->wi.id;
	int i = in->owned ? runner_own_find(r, id) : -1;

	if (!id)
		return;
	if (broken == 2) {
		/* a call was cut short and may still run in it */
		if (i >= 0)
			runner_own_stop(r, i, "STOPPED", "STOP_ABANDONED_CALL");
		else
			db_inst_request_stop(r->db, id);
	} else if (i >= 0) {
		if (broken) {
			runner_own_finish(r, i, "FAILED", "failed while serving");
		} else if (r->own[i].stop_after) {
			runner_own_stop(r, i, "STOPPED", "STOP_REQUESTED");
		} else if (hubd_should_stop()) {
			db_inst_release(r->db, id);
			i = runner_own_find(r, id);
			if (i >= 0)
				runner_own_leave(r, i);
		} else if (m->idle_seconds == 0) {
			db_inst_release(r->db, id);
			if (db_inst_take_idle(r->db, id, 0) == 1)
				runner_own_stop_id(r, id, "IDLE", "STOP_IDLE");
		} else {
			db_inst_release(r->db, id);
		}
	} else if (broken) {
		db_inst_request_stop(r->db, id);
	} else {
		db_inst_release(r->db, id);
		/* kubernetes: an adopted instance has no runner owner to hand it over */
		if (hubd_should_stop() && strcmp(r->backend, "kubernetes") == 0)
			db_inst_hand_over(r->db, id, r->c->replica_id);
	}
	memset(in, 0, sizeof *in);
}
