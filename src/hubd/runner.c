/*
 * runner.c — the runner child: claims work requests of its assigned models,
 * drives model instances and stores results (DESIGN.md §5).
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
 */
#include "cluster/cluster.h"
#include "cluster/modelclient.h"
#include "db/db_autoscale.h"
#include "db/db_work.h"
#include "hubd/bisect.h"
#include "hubd/hubd.h"
#include "hubd/shared.h"
#include "lib/backoff.h"
#include "lib/buf.h"
#include "lib/cachekey.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/smiles.h"

#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUNNER_MAX_OWN 32
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
/* a failed call's cost in good calls until both kinds were timed
 * (ersilia-pack's measure about 9, the demo models' about 1) */
#define RUNNER_FAIL_WEIGHT_GUESS 4.0

/* AB_INSTSTOP: an admin asked to stop the instance the request is using */
enum abort_kind { AB_NONE = 0, AB_STOP, AB_CANCELLED, AB_LOST, AB_INSTSTOP };

struct owned {
	int64_t id;
	char name[64];
	char model[72];
	int idle_seconds;
	int pid;
	int stop_after; /* stop requested while serving us */
	int64_t created_ms;
};

struct backoff {
	char model[72];
	int64_t until;
};

struct runner {
	struct hubd_child *c;
	struct db *db;
	struct cluster *cl;
	struct mc *mc;
	char id[160];
	char backend[32];
	char node[64];
	int lease_s, chunk_size, start_timeout_s, chunk_timeout_s, request_timeout_s;
	int halving; /* hub.isolation = halving: the planner before issue 20 */
	struct owned own[RUNNER_MAX_OWN];
	int nown;
	struct backoff back[64];
	int64_t last_housekeep, last_sweep, last_renew;
	int64_t suspects[64];
	int nsuspects;
	/* the request in progress */
	struct work_req *req;
	int64_t cur_inst;
	enum abort_kind abort;
	unsigned seed; /* back-off jitter */
};

/* Instance in use by the current request. */
struct cur {
	struct work_inst wi;
	int owned; /* started by this runner */
};

enum fatal { JF_NONE = 0, JF_INSTANCE, JF_OOM, JF_TIMEOUT, JF_DEADLINE, JF_ABORT, JF_DB, JF_STOPPED };

struct job {
	struct runner *r;
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
	} pf;
	/* set when the last store also ended the request: its final status */
	char end_status[16];
	int64_t deadline_ms; /* monotonic */
	/* the instance slot that came with the claim (WORK_SLOT_NONE:
	 * none), taken by the first inst_get */
	enum work_slot claim_rc;
	struct work_inst claim_wi;
	enum fatal fatal;
	char err[512];
};

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

static const char *term_reason(enum cluster_term t, const char *fallback)
{
	if (t == CLUSTER_TERM_STOPPED || t == CLUSTER_TERM_NONE)
		return fallback;
	return cluster_term_name(t);
}

static int own_find(struct runner *r, int64_t id)
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

/* Record the end of an owned instance (stopping it first if still running)
 * and forget it. reason is used when we stopped it (IDLE, STOPPED, FAILED). */
static void own_finish(struct runner *r, int i, const char *reason, const char *why)
{
	struct cluster_instance ci;
	struct buf logs = BUF_INIT;
	struct owned o = r->own[i];
	const char *rsn = reason;
	char detail[300];
	int g;

	memset(&ci, 0, sizeof ci);
	g = cluster_get(r->cl, o.name, &ci);
	if (g != 0 || ci.state != CLUSTER_EXITED) {
		/* running, or unknown to the backend (a pod not seen yet): delete */
		cluster_delete(r->cl, o.name, RUNNER_STOP_GRACE_MS);
		memset(&ci, 0, sizeof ci);
		cluster_get(r->cl, o.name, &ci);
	}
	if (ci.state == CLUSTER_EXITED)
		rsn = term_reason(ci.term, reason);
	snprintf(detail, sizeof detail, "%s%s%s", why ? why : "", why && ci.detail[0] ? "; " : "",
		 ci.detail);
	cluster_logs(r->cl, o.name, &logs, RUNNER_LOG_MAX);
	buf_cstr(&logs);
	db_inst_terminated(r->db, o.id, rsn, detail, logs.data ? logs.data : "");
	buf_free(&logs);
	log_info("runner instance=%lld model=%s reason=%s detail=\"%s\" msg=\"instance ended\"",
		 (long long)o.id, o.model, rsn, detail);
	own_drop(r, i);
}

/* Stop instance i for reason (IDLE or STOPPED) after marking it TERMINATING. */
static void own_stop(struct runner *r, int i, const char *reason, const char *event)
{
	db_inst_state(r->db, r->own[i].id, "TERMINATING", event, NULL);
	own_finish(r, i, reason, reason);
}

/* Reap, idle out and stop-on-request the instances this runner started,
 * except the one the current request uses. */
static void housekeep(struct runner *r)
{
	struct buf ids = BUF_INIT;
	PGresult *res;

	r->last_housekeep = mh_mono_ms();
	for (int i = 0; i < r->nown; i++) {
		struct cluster_instance ci;
		if (r->own[i].id == r->cur_inst)
			continue;
		int g = cluster_get(r->cl, r->own[i].name, &ci);
		if (g == 1 && mh_mono_ms() - r->own[i].created_ms < RUNNER_UNKNOWN_GRACE_MS)
			continue;
		if (g != 0 || ci.state == CLUSTER_EXITED) {
			own_finish(r, i, "FAILED", "exited while not serving");
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
	for (int k = 0; k < PQntuples(res); k++) {
		int64_t id = strtoll(PQgetvalue(res, k, 0), NULL, 10);
		const char *state = PQgetvalue(res, k, 1);
		int stop = PQgetvalue(res, k, 2)[0] == 't';
		int i = own_find(r, id);
		if (i < 0)
			continue;
		if (strcmp(state, "TERMINATED") == 0) {
			/* someone (janitor, admin) ended the row: make it true */
			cluster_delete(r->cl, r->own[i].name, RUNNER_STOP_GRACE_MS);
			own_drop(r, i);
			continue;
		}
		if (stop) {
			if (id == r->cur_inst) {
				/* abort the call; the request goes on elsewhere */
				r->own[i].stop_after = 1;
				if (r->abort == AB_NONE)
					r->abort = AB_INSTSTOP;
			} else
				own_stop(r, i, "STOPPED", "STOP_REQUESTED");
			continue;
		}
		if (id != r->cur_inst && strcmp(state, "IDLE") == 0 &&
		    db_inst_take_idle(r->db, id, r->own[i].idle_seconds) == 1)
			own_stop(r, i, "IDLE", "STOP_IDLE");
	}
	PQclear(res);
}

/* 1 while pid runs; a zombie (dead, not yet reaped by whoever adopted it)
 * counts as gone. */
static int pid_alive(int pid)
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

/* Rows of this replica whose process is gone and that nobody reaped (their
 * runner died): LOST once seen dead on two sweeps in a row, so an owner that
 * is just recording the real reason wins. */
static void sweep_lost(struct runner *r)
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
		if (own_find(r, id) >= 0)
			continue;
		/* pid 0 past REQUESTED: not a local process (a pod); the backend's
		 * own watch (monitor) decides about those */
		if (pid == 0 && strcmp(PQgetvalue(res, k, 2), "REQUESTED") != 0)
			continue;
		if (pid > 0 && pid_alive(pid))
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

/* Lease renewal and abort checks; also run from the HTTP client's tick.
 * Returns non-zero when the current work must stop (r->abort says why). */
static int tick(void *ctx)
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
		housekeep(r);
	return r->abort != AB_NONE;
}

/* Sleep ms while ticking; non-zero when the work must stop. */
static int nap(struct runner *r, int ms)
{
	if (hubd_wait(r->c, -1, ms) < 0 && r->abort == AB_NONE)
		r->abort = AB_STOP;
	return tick(r);
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
static int inst_dead(struct runner *r, struct cur *in, int *oom, char *why, size_t whylen)
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
		} else if (in->wi.pid > 0 && !pid_alive(in->wi.pid)) {
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
					hubd_wait(r->c, -1, RUNNER_POLL_MS);
			}
			*oom = strcmp(reason, "OOMKILLED") == 0;
			snprintf(why, whylen, "instance process %d gone%s%s", in->wi.pid,
				 reason[0] ? ", " : "", reason);
			return strcmp(reason, "STOPPED") == 0 ? 2 : 1;
		}
		if (t < 9)
			hubd_wait(r->c, -1, 200);
	}
	return 0;
}

enum get_rc { GET_OK = 0, GET_HANDBACK, GET_FAILED, GET_ABORT };


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
	i = own_find(r, in->wi.id);
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

/* Sleep until the monotonic time t, doing the runner's housekeeping; non-zero
 * when the request is to be aborted (SIGTERM, cancellation, lost lease). */
static int nap_until(struct runner *r, int64_t t)
{
	for (int64_t now = mh_mono_ms(); now < t; now = mh_mono_ms())
		if (nap(r, (int)(t - now < RUNNER_POLL_MS * 4 ? t - now : RUNNER_POLL_MS * 4)))
			return 1;
	return 0;
}

/* Create the instance of spec. Refusals that may go away (API server
 * unreachable, slow, 429, 5xx, quota) are retried with capped, jittered
 * back-off (the server's Retry-After when longer) until the start deadline
 * until; then the request fails NO_CAPACITY (the last refusal was a quota)
 * or CLUSTER_ERROR, never MODEL_ERROR, which is the model's own fault. */
static enum get_rc inst_create(struct runner *r, const struct cluster_spec *spec, struct cluster_instance *ci,
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
		if (nap_until(r, mh_mono_ms() + wait < until ? mh_mono_ms() + wait : until))
			return GET_ABORT;
	}
}

/* Take a slot for the current request: the one claimed with it, or an
 * IDLE warm instance (checked still alive), or a new REQUESTED row. GET_OK
 * with *fresh 0 for a reused instance, *fresh 1 for a new row to start. */
static enum get_rc inst_take(struct runner *r, struct job *j, struct cur *in, int *fresh, const char **reason,
			     char *detail, size_t dlen)
{
	struct cluster_instance ci;
	enum work_slot rc;
	int i;

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
		if (rc == WORK_SLOT_ERROR) {
			*reason = "MODEL_ERROR";
			snprintf(detail, dlen, "database error while getting an instance");
			return GET_FAILED;
		}
		if (rc == WORK_SLOT_NONE)
			return GET_HANDBACK;
		if (rc == WORK_SLOT_IDLE) {
			/* reused: make sure it is still there */
			int oom;
			char why[256];
			i = own_find(r, in->wi.id);
			in->owned = i >= 0;
			if (in->owned && (cluster_get(r->cl, in->wi.name, &ci) != 0 ||
					  ci.state == CLUSTER_EXITED)) {
				own_finish(r, i, "FAILED", "exited while idle");
				continue;
			}
			if (!in->owned && in->wi.pid > 0 && !pid_alive(in->wi.pid) &&
			    inst_dead(r, in, &oom, why, sizeof why)) {
				db_inst_lost(r->db, in->wi.id, why);
				continue;
			}
			r->cur_inst = in->wi.id;
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
		if (g == 1 && mh_mono_ms() - r->own[own_find(r, in->wi.id)].created_ms >= RUNNER_UNKNOWN_GRACE_MS)
			ci.state = CLUSTER_EXITED;
		else if (g != 0)
			ci.state = CLUSTER_PENDING;
		if (ci.state == CLUSTER_READY) {
			/* kubernetes: the pod IP is known only once it runs */
			if (ci.address[0] && strcmp(ci.address, in->wi.address) != 0) {
				snprintf(in->wi.address, sizeof in->wi.address, "%s", ci.address);
				db_inst_address(r->db, in->wi.id, ci.address, ci.node);
			}
			db_inst_state(r->db, in->wi.id, "READY", "READY", NULL);
			db_inst_state(r->db, in->wi.id, "BUSY", NULL, NULL);
			log_info("runner instance=%lld model=%s address=%s msg=\"instance ready\"",
				 (long long)in->wi.id, j->m->id, in->wi.address);
			return GET_OK;
		}
		if (ci.state == CLUSTER_EXITED) {
			int oom = ci.term == CLUSTER_TERM_OOMKILLED;
			snprintf(detail, dlen, "instance exited before it was ready: %s", ci.detail);
			*reason = oom ? "OOM_KILLED" : "MODEL_ERROR";
			own_finish(r, own_find(r, in->wi.id), "FAILED", "exited before ready");
			r->cur_inst = 0;
			return GET_FAILED;
		}
		if (ci.state == CLUSTER_PENDING && capacity_word(r, in, &until, &asked, detail, dlen, reason)) {
			db_inst_state(r->db, in->wi.id, "TERMINATING", "NO_CAPACITY", NULL);
			own_finish(r, own_find(r, in->wi.id), "FAILED", "no node can hold it");
			r->cur_inst = 0;
			return GET_FAILED;
		}
		if (mh_mono_ms() >= until) {
			/* the backend's last word says why (kubernetes: Unschedulable, ImagePullBackOff) */
			snprintf(detail, dlen, "instance not ready after %d s%s%.200s", r->start_timeout_s,
				 ci.detail[0] ? ": " : "", ci.detail);
			*reason = start_timeout_reason(&ci);
			db_inst_state(r->db, in->wi.id, "TERMINATING", "START_TIMEOUT", NULL);
			own_finish(r, own_find(r, in->wi.id), "FAILED", "not ready in time");
			r->cur_inst = 0;
			return GET_FAILED;
		}
		if (nap(r, RUNNER_POLL_MS)) {
			own_finish(r, own_find(r, in->wi.id), "STOPPED", "stopped while starting");
			r->cur_inst = 0;
			return GET_ABORT;
		}
	}
}


/* Get an instance for the current request into *in. On GET_FAILED,
 * reason/detail say why (request to be failed). */
static enum get_rc inst_get(struct runner *r, struct job *j, struct cur *in, const char **reason,
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
	r->cur_inst = in->wi.id;
	if (r->nown >= RUNNER_MAX_OWN) {
		db_inst_terminated(r->db, in->wi.id, "FAILED", "runner instance table full", NULL);
		r->cur_inst = 0;
		return GET_HANDBACK;
	}
	inst_spec(j->m, r, in->wi.id, j->req->id, &spec, reqbuf, sizeof reqbuf);
	until = mh_mono_ms() + (int64_t)r->start_timeout_s * 1000;
	rc2 = inst_create(r, &spec, &ci, until, reason, detail, dlen);
	if (rc2 != GET_OK) {
		db_inst_terminated(r->db, in->wi.id, rc2 == GET_ABORT ? "STOPPED" : "FAILED",
				   rc2 == GET_ABORT ? "stopped while starting" : detail, NULL);
		r->cur_inst = 0;
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

/* The request is done with its instance: back to IDLE, or stopped when the
 * model keeps no idle instances, an admin asked, or it failed. */
static void inst_put(struct runner *r, struct cur *in, const struct work_model *m, int broken)
{
	int i = in->owned ? own_find(r, in->wi.id) : -1;

	r->cur_inst = 0;
	if (!in->wi.id)
		return;
	if (i >= 0) {
		if (broken) {
			own_finish(r, i, "FAILED", "failed while serving");
		} else if (r->own[i].stop_after) {
			own_stop(r, i, "STOPPED", "STOP_REQUESTED");
		} else if (hubd_should_stop()) {
			db_inst_release(r->db, in->wi.id);
			own_stop(r, i, "STOPPED", "STOP_SHUTDOWN");
		} else if (m->idle_seconds == 0) {
			db_inst_release(r->db, in->wi.id);
			if (db_inst_take_idle(r->db, in->wi.id, 0) == 1)
				own_stop(r, i, "IDLE", "STOP_IDLE");
		} else {
			db_inst_release(r->db, in->wi.id);
		}
	} else if (broken) {
		db_inst_request_stop(r->db, in->wi.id);
	} else {
		db_inst_release(r->db, in->wi.id);
	}
	memset(in, 0, sizeof *in);
}

/* ------------------------------------------------------------- calls */

/* Parse a records array of exactly want elements; rows JSON appended for
 * db_work_store. 0 ok, -1 with j->err set. */
static int records_to_rows(struct job *j, const char *body, int off, int want, struct buf *rows)
{
	struct json_object *a = json_tokener_parse(body);
	int n, rc = -1;

	if (!a || !json_object_is_type(a, json_type_array)) {
		snprintf(j->err, sizeof j->err, "model answer is not a JSON array of records");
		goto out;
	}
	n = (int)json_object_array_length(a);
	if (n != want) {
		snprintf(j->err, sizeof j->err, "result count mismatch: %d records for %d inputs", n, want);
		goto out;
	}
	buf_addc(rows, '[');
	for (int k = 0; k < n; k++) {
		struct json_object *rec = json_object_array_get_idx(a, (size_t)k);
		buf_printf(rows, "%s[%s,%s,null]", k ? "," : "",
			   PQgetvalue(j->missing, j->send[off + k], 0),
			   rec ? json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN) : "null");
	}
	buf_addc(rows, ']');
	rc = rows->oom ? -1 : 0;
out:
	json_object_put(a);
	return rc;
}

static char *inputs_json(struct job *j, int off, int len)
{
	struct json_object *a = json_object_new_array();
	char *s = NULL;

	if (!a)
		return NULL;
	for (int k = 0; k < len; k++)
		json_object_array_add(a, json_object_new_string(PQgetvalue(j->missing, j->send[off + k], 1)));
	s = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
	json_object_put(a);
	return s;
}

/* Remaining time for one call, in ms; sets which deadline is nearer. */
static int call_timeout(struct job *j, int *is_request)
{
	int64_t left = j->deadline_ms - mh_mono_ms();
	int64_t chunk = (int64_t)j->r->chunk_timeout_s * 1000;

	*is_request = left < chunk;
	if (left < 1)
		left = 1;
	return (int)(left < chunk ? left : chunk);
}

static void short_detail(const char *body, char *out, size_t n)
{
	size_t k = 0;

	for (; body && *body && k + 1 < n && k < 200; body++)
		out[k++] = (*body == '"' || *body == '\n' || *body == '\r') ? ' ' : *body;
	out[k] = '\0';
}

/* Transport failure or a 5xx: decide between "instance died" (fatal) and
 * "the batch was rejected" (bisect). */
static enum bisect_rc call_failed(struct job *j, enum mc_rc rc, long st, const char *what,
				  const struct buf *body)
{
	int oom = 0, is_req = 0;
	char why[256], txt[220];

	if (rc == MC_ABORTED) {
		j->fatal = JF_ABORT;
		return BISECT_FATAL;
	}
	if (rc == MC_TIMEOUT) {
		call_timeout(j, &is_req);
		j->fatal = is_req ? JF_DEADLINE : JF_TIMEOUT;
		snprintf(j->err, sizeof j->err, "%s: no answer within %s", what,
			 is_req ? "the request deadline" : "the chunk timeout");
		return BISECT_FATAL;
	}
	if (rc != MC_OK || st >= 500 || st == 0) {
		int dead = inst_dead(j->r, j->inst, &oom, why, sizeof why);
		if (dead) {
			j->fatal = dead == 2 ? JF_STOPPED : oom ? JF_OOM : JF_INSTANCE;
			snprintf(j->err, sizeof j->err, "instance died during %s: %s", what, why);
			return BISECT_FATAL;
		}
		if (rc != MC_OK) {
			j->fatal = JF_INSTANCE;
			snprintf(j->err, sizeof j->err, "%s: instance unreachable (%s)", what, mc_rc_name(rc));
			return BISECT_FATAL;
		}
	}
	short_detail(body ? buf_cstr((struct buf *)body) : "", txt, sizeof txt);
	snprintf(j->err, sizeof j->err, "%s: HTTP %ld %s", what, st, txt);
	/* a rejection (500, like ersilia-pack's, or 422) is the input's
	 * doing; 502/503/504 may pass (breaker open, proxy, overload) */
	j->cacheable = st == 500 || st == 422;
	return BISECT_BAD;
}

static enum bisect_rc run_sync(struct job *j, const char *body, struct buf *out)
{
	int is_req;
	long st;
	enum mc_rc rc = mc_call(j->r->mc, "POST", j->inst->wi.address, "/run?orient=records", body,
				call_timeout(j, &is_req), out, &st);

	if (rc != MC_OK || st != 200)
		return call_failed(j, rc, st, "POST /run", out);
	return BISECT_OK;
}

/* Read the answer of the prefetched call, keeping it for job_call. */
static void prefetch_wait(struct job *j)
{
	if (j->pf.active && !j->pf.done) {
		j->pf.rc = mc_finish(j->r->mc, &j->pf.out, &j->pf.st);
		j->pf.done = 1;
	}
}

static void prefetch_drop(struct job *j)
{
	prefetch_wait(j);
	free(j->pf.body);
	buf_free(&j->pf.out);
	memset(&j->pf, 0, sizeof j->pf);
}

/* The whole chunk [off, off+len) was answered: start the next chunk's call
 * now, so the model computes while this answer is parsed and stored (the
 * ~0.2-0.4 ms per chunk the instance otherwise sat idle). Only between
 * whole chunks of a SYNC model; a chunk being bisected calls in order. */
static void prefetch_next(struct job *j, int off, int len)
{
	int n = j->nsend, next = off + len, nlen, is_req;

	/* only while nothing failed: then the next chunk is a full one */
	if (j->m->async || j->pf.active || off != j->chunk_off || len != j->chunk_len || next >= n ||
	    j->st.failed_calls > 0)
		return;
	nlen = n - next < j->r->chunk_size ? n - next : j->r->chunk_size;
	j->pf.body = inputs_json(j, next, nlen);
	if (!j->pf.body)
		return;
	if (mc_start(j->r->mc, "POST", j->inst->wi.address, "/run?orient=records", j->pf.body,
		     call_timeout(j, &is_req), &j->pf.out) < 0) {
		prefetch_drop(j);
		return;
	}
	j->pf.active = 1;
	j->pf.off = next;
	j->pf.len = nlen;
}

static enum bisect_rc run_async(struct job *j, const char *body, struct buf *out)
{
	struct json_object *o = NULL, *v;
	char path[200], job_id[100];
	int is_req;
	long st;
	enum mc_rc rc;
	int64_t until;
	int poll_ms = 5;

	until = mh_mono_ms() + call_timeout(j, &is_req);
	rc = mc_call(j->r->mc, "POST", j->inst->wi.address, "/job/submit?orient=records", body,
		     call_timeout(j, &is_req), out, &st);
	if (rc != MC_OK || st != 200)
		return call_failed(j, rc, st, "POST /job/submit", out);
	o = json_tokener_parse(buf_cstr(out));
	if (!o || !json_object_object_get_ex(o, "job_id", &v) || !json_object_get_string(v)) {
		json_object_put(o);
		snprintf(j->err, sizeof j->err, "job submit answer without job_id");
		j->cacheable = 0;
		return BISECT_BAD;
	}
	snprintf(job_id, sizeof job_id, "%s", json_object_get_string(v));
	json_object_put(o);
	for (;;) {
		const char *status = NULL;
		if (poll_ms < RUNNER_POLL_MS)
			poll_ms = poll_ms * 2 < RUNNER_POLL_MS ? poll_ms * 2 : RUNNER_POLL_MS;
		if (mh_mono_ms() >= until)
			return call_failed(j, MC_TIMEOUT, 0, "ASYNC job", NULL);
		snprintf(path, sizeof path, "/job/status/%s", job_id);
		rc = mc_call(j->r->mc, "GET", j->inst->wi.address, path, NULL, 30000, out, &st);
		if (rc != MC_OK || st >= 500)
			return call_failed(j, rc, st, "GET /job/status", out);
		if (st == 404) {
			/* the server forgot the job: it restarted, so the instance failed */
			j->fatal = JF_INSTANCE;
			snprintf(j->err, sizeof j->err, "job %s unknown to the instance (restarted?)", job_id);
			return BISECT_FATAL;
		}
		o = json_tokener_parse(buf_cstr(out));
		if (o && json_object_object_get_ex(o, "status", &v))
			status = json_object_get_string(v);
		if (status && strcmp(status, "completed") == 0) {
			json_object_put(o);
			break;
		}
		if (status && strcmp(status, "failed") == 0) {
			json_object_put(o);
			snprintf(j->err, sizeof j->err, "ASYNC job failed");
			j->cacheable = 1;
			return BISECT_BAD;
		}
		json_object_put(o);
		/* short jobs are the common case: poll fast first, then back off */
		if (nap(j->r, poll_ms)) {
			j->fatal = JF_ABORT;
			return BISECT_FATAL;
		}
	}
	snprintf(path, sizeof path, "/job/result/%s", job_id);
	rc = mc_call(j->r->mc, "GET", j->inst->wi.address, path, NULL, call_timeout(j, &is_req), out,
		     &st);
	if (rc != MC_OK || st != 200)
		return call_failed(j, rc, st, "GET /job/result", out);
	return BISECT_OK;
}

/* The request row's counters not yet reported (and now counted as such).
 * extra_calls: calls beyond one per hub.chunk_size inputs sent, which is
 * what the inputs would have cost had none failed. */
static struct work_counts counts_delta(struct job *j)
{
	int base = (j->sent_inputs + j->r->chunk_size - 1) / j->r->chunk_size;
	int extra = j->calls > base ? j->calls - base : 0;
	struct work_counts now = {j->calls, extra, j->isolation_ms, j->screened, j->known_bad};
	struct work_counts d = {now.calls - j->counted.calls, now.extra_calls - j->counted.extra_calls,
				now.isolation_ms - j->counted.isolation_ms,
				now.screened - j->counted.screened, now.known_bad - j->counted.known_bad};

	j->counted = now;
	return d;
}

/* A call took ms: keep the cost of a failed call against a good one up
 * to date in the plan (bisect.c sizes chunks and splits with it). A good
 * call is timed from its start to the next call's start, so that what the
 * runner does for it (parse, store) counts; a failed one has no such work
 * and is timed at once, so the first isolation already knows its cost. */
static void call_timed(struct job *j, enum bisect_rc rc, int64_t ms)
{
	if (rc == BISECT_OK) {
		j->ok_ms += ms;
		j->ok_n++;
	} else if (rc == BISECT_BAD) {
		j->fail_ms += ms;
		j->fail_n++;
	}
	if (j->ok_n > 0 && j->fail_n > 0) {
		double ok = (double)j->ok_ms / j->ok_n, bad = (double)j->fail_ms / j->fail_n;
		bisect_plan_tune(j->plan, 1, bad / (ok > 1 ? ok : 1));
	}
}

/* Wait for the store in flight, if any (see job_store). */
static enum bisect_rc job_settle(struct job *j)
{
	int n;

	if (!j->store_pending)
		return BISECT_OK;
	j->store_pending = 0;
	n = db_work_store_collect(j->r->db, j->end_status, sizeof j->end_status);
	if (n == -2) {
		tick(j->r); /* finds out: cancelled or lost */
		if (j->r->abort == AB_NONE)
			j->r->abort = AB_LOST;
		j->fatal = JF_ABORT;
		return BISECT_FATAL;
	}
	if (n < 0) {
		j->fatal = JF_DB;
		snprintf(j->err, sizeof j->err, "database error while storing results");
		return BISECT_FATAL;
	}
	return BISECT_OK;
}

/* Store records; off/len: the inputs stored (len 0: not a call's answer).
 * The statement is sent and left in flight: the runner calls the model for
 * the next chunk while Postgres stores this one, and collects the outcome
 * (job_settle) once that call has answered, before the next store. A store
 * that fails is thus noticed one chunk later, which loses nothing: results
 * are only ever added (ON CONFLICT DO NOTHING) and a retry sends only the
 * inputs without one. */
static enum bisect_rc job_store(struct job *j, const char *rows, int off, int len)
{
	int whole = len > 0 && off == j->chunk_off && len == j->chunk_len;
	int ev = whole && j->next_detail[0];
	/* the whole last chunk answered at once: its store also ends the
	 * request (one statement less between the model's last answer and
	 * the result being downloadable) */
	int last = whole && off + len == j->nsend;
	struct work_end end = {j->err};
	struct work_counts add;

	if (job_settle(j) != BISECT_OK)
		return BISECT_FATAL;
	add = counts_delta(j);
	if (db_work_store_send(j->r->db, j->req->id, j->r->id, rows, j->r->lease_s,
			       ev ? j->inst->wi.id : 0, ev ? j->next_detail : NULL, &add,
			       last ? &end : NULL) < 0) {
		j->fatal = JF_DB;
		snprintf(j->err, sizeof j->err, "database error while storing results");
		return BISECT_FATAL;
	}
	j->store_pending = 1;
	j->stores++;
	/* counted as recorded now: a store that fails stops the request */
	if (ev)
		j->next_sent = 1;
	j->r->last_renew = mh_mono_ms();
	return BISECT_OK;
}

static enum bisect_rc job_call(void *ctx, int off, int len)
{
	struct job *j = ctx;
	struct buf out = BUF_INIT, rows = BUF_INIT;
	char *body;
	enum bisect_rc rc;
	int64_t t0 = mh_mono_ms(), timed = 1;

	if (j->ok_t0 > 0)
		call_timed(j, BISECT_OK, t0 - j->ok_t0);
	j->ok_t0 = 0;
	if (tick(j->r)) {
		j->fatal = JF_ABORT;
		return BISECT_FATAL;
	}
	if (j->pf.active && j->pf.off == off && j->pf.len == len) {
		/* this call was started with the previous answer */
		prefetch_wait(j);
		j->calls++;
		timed = 0; /* started earlier: its duration is not known here */
		rc = j->pf.rc != MC_OK || j->pf.st != 200 ?
		     call_failed(j, j->pf.rc, j->pf.st, "POST /run", &j->pf.out) : BISECT_OK;
		buf_free(&out);
		out = j->pf.out;
		j->pf.out = (struct buf)BUF_INIT;
		prefetch_drop(j);
	} else {
		/* one call at a time per instance: a prefetched one of other
		 * inputs is answered first and waits for its turn */
		prefetch_wait(j);
		body = inputs_json(j, off, len);
		if (!body) {
			j->fatal = JF_DB;
			snprintf(j->err, sizeof j->err, "out of memory");
			return BISECT_FATAL;
		}
		j->calls++;
		rc = j->m->async ? run_async(j, body, &out) : run_sync(j, body, &out);
		free(body);
	}
	if (rc == BISECT_BAD)
		call_timed(j, rc, mh_mono_ms() - t0);
	else if (rc == BISECT_OK && timed)
		j->ok_t0 = t0;
	if (rc == BISECT_OK) {
		prefetch_next(j, off, len);
		if (records_to_rows(j, buf_cstr(&out), off, len, &rows) < 0) {
			rc = BISECT_BAD;
			j->cacheable = 1;
		} else {
			rc = job_store(j, buf_cstr(&rows), off, len);
		}
	}
	/* the model's answer may echo molecules: it goes to the result's error
	 * column (the owner's own data), never to the log */
	if (rc == BISECT_BAD)
		log_info("runner inputs=%d offset=%d msg=\"batch rejected by the model\"", len, off);
	buf_free(&out);
	buf_free(&rows);
	return rc;
}

/* One [ordinal, null, error] row appended to rows. */
static void error_row(struct json_object *rows, const char *ordinal, const char *error)
{
	struct json_object *e = json_object_new_array();

	if (!e)
		return;
	json_object_array_add(e, json_object_new_int(atoi(ordinal)));
	json_object_array_add(e, NULL);
	json_object_array_add(e, json_object_new_string(error));
	json_object_array_add(rows, e);
}

/* Input idx (of send[]) is bad: a null record with the error. It is
 * remembered (negative cache) when the failure that condemned it was a
 * rejection (j->cacheable): its own call's, or, found by elimination, that
 * of the batch whose other parts all passed (the same verdict, one failed
 * call cheaper). */
static int job_fail_one(void *ctx, int idx, int alone)
{
	struct job *j = ctx;
	struct json_object *a = json_object_new_array();
	const char *input = PQgetvalue(j->missing, j->send[idx], 1);
	char msg[700], hex[CACHEKEY_HEX_LEN + 1];
	enum bisect_rc rc;

	if (!a)
		return -1;
	if (alone)
		snprintf(msg, sizeof msg, "%s", j->err[0] ? j->err : "model failed on this input");
	else
		snprintf(msg, sizeof msg, "rejected in every batch that held it (last: %s)", j->err);
	error_row(a, PQgetvalue(j->missing, j->send[idx], 0), msg);
	rc = job_store(j, json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN), idx, 0);
	json_object_put(a);
	if (j->cacheable && cachekey_hex(input, hex) == 0) {
		struct json_object *e = json_object_new_array();
		if (!j->known_rows)
			j->known_rows = json_object_new_array();
		if (e && j->known_rows) {
			json_object_array_add(e, json_object_new_string(hex));
			json_object_array_add(e, json_object_new_string(msg));
			json_object_array_add(j->known_rows, e);
		} else {
			json_object_put(e);
		}
	}
	return rc == BISECT_OK ? 0 : -1;
}

/* ------------------------------------------------------------ request */

static void cache_results(struct runner *r, const struct work_req *q, const struct work_model *m)
{
	PGresult *res;
	struct json_object *a;
	int n;

	if (!m->cache_enabled || !q->cache_opt_in || q->user_id <= 0)
		return;
	res = db_work_cache_candidates(r->db, q->id);
	if (!res)
		return;
	a = json_object_new_array();
	for (int k = 0; a && k < PQntuples(res); k++) {
		char hex[CACHEKEY_HEX_LEN + 1];
		struct json_object *e = json_object_new_array();
		if (!e || cachekey_hex(PQgetvalue(res, k, 0), hex) < 0) {
			json_object_put(e);
			continue;
		}
		json_object_array_add(e, json_object_new_string(hex));
		json_object_array_add(e, json_object_new_string(PQgetvalue(res, k, 0)));
		json_object_array_add(e, json_tokener_parse(PQgetvalue(res, k, 1)));
		json_object_array_add(a, e);
	}
	PQclear(res);
	if (a && json_object_array_length(a) > 0) {
		n = db_work_cache_put(r->db, m->id, m->version, q->user_id,
				      json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
		log_info("runner model=%s cached=%d msg=\"results added to the cache\"", m->id, n);
	}
	json_object_put(a);
}

static void backoff_set(struct runner *r, const char *model, int ms)
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

static void finish(struct runner *r, struct job *j, const char *status, const char *reason,
		   const char *detail)
{
	struct work_counts add = counts_delta(j);

	/* detail stays in the row: it may quote the model's answer */
	if (db_work_finish(r->db, j->req->id, r->id, status, reason, detail, &add) == 1)
		log_info("runner model=%s status=%s reason=%s calls=%d extra_calls=%d"
			 " msg=\"request finished\"",
			 j->m->id, status, reason ? reason : "-", j->calls, j->counted.extra_calls);
	else
		log_info("runner msg=\"request changed under us (cancelled or requeued), not finishing\"");
}

/* The request ended with status: logged; 1 when it COMPLETED. */
static int ended(struct job *j, const char *status)
{
	log_info("runner model=%s status=%s calls=%d extra_calls=%d isolation_ms=%lld screened=%d"
		 " known_bad=%d fail_weight=%.1f msg=\"request finished\"",
		 j->m->id, status, j->calls, j->counted.extra_calls, (long long)j->isolation_ms,
		 j->screened, j->known_bad, j->plan ? j->plan->fail_weight : 0.0);
	return strcmp(status, "COMPLETED") == 0;
}

/* Every input was sent (and the last store did not end the request): one
 * statement counts the results and decides. 1 when it COMPLETED. */
static int complete(struct runner *r, struct job *j)
{
	char status[16] = "";
	struct work_counts add = counts_delta(j);
	int rc = db_work_complete(r->db, j->req->id, r->id, &add, j->err, status, sizeof status);

	if (rc < 0) {
		db_work_handback(r->db, j->req->id, r->id);
		return 0;
	}
	if (rc == 0) {
		log_info("runner msg=\"request changed under us (cancelled or requeued), not finishing\"");
		return 0;
	}
	return ended(j, status);
}

/* Inputs the model need not see: rejected by the SMILES screen (compound
 * models) or found bad by this model version before (input_failure).
 * j->send lists the others; the keys of those go to keys (a JSON array). */
static void screen_inputs(struct job *j, struct json_object *rows, struct json_object *keys)
{
	char why[SMILES_WHY_MAX], msg[160], hex[CACHEKEY_HEX_LEN + 1];

	for (int k = 0; k < PQntuples(j->missing); k++) {
		const char *input = PQgetvalue(j->missing, k, 1);
		if (j->m->compound && smiles_screen(input, why, sizeof why) < 0) {
			snprintf(msg, sizeof msg, "invalid SMILES: %s", why);
			error_row(rows, PQgetvalue(j->missing, k, 0), msg);
			j->screened++;
			continue;
		}
		j->send[j->nsend++] = k;
		json_object_array_add(keys, json_object_new_string(
			cachekey_hex(input, hex) == 0 ? hex : ""));
	}
}

/* Of send[], drop the inputs found in the negative cache (their errors go
 * to rows). A failed lookup only means they are sent. */
static void known_bad(struct job *j, struct json_object *rows, struct json_object *keys)
{
	PGresult *res;
	int drop = 0, w = 0;
	char msg[700];

	if (j->nsend == 0)
		return;
	res = db_work_known_bad(j->r->db, j->m->id, j->m->version,
				json_object_to_json_string_ext(keys, JSON_C_TO_STRING_PLAIN));
	if (!res)
		return;
	for (int k = 0; k < PQntuples(res); k++) {
		int pos = atoi(PQgetvalue(res, k, 0)) - 1;
		if (pos < 0 || pos >= j->nsend || j->send[pos] < 0)
			continue;
		snprintf(msg, sizeof msg, "known to fail on model version %s: %s",
			 j->m->version, PQgetvalue(res, k, 1));
		error_row(rows, PQgetvalue(j->missing, j->send[pos], 0), msg);
		j->send[pos] = -1;
		drop++;
	}
	PQclear(res);
	for (int k = 0; k < j->nsend; k++)
		if (j->send[k] >= 0)
			j->send[w++] = j->send[k];
	j->nsend = w;
	j->known_bad += drop;
}

/* Read the inputs without a result and store the errors of those the
 * model need not see. 0, or -1 with j->fatal set. */
static int prepare_inputs(struct runner *r, struct job *j)
{
	struct json_object *rows, *keys;
	int rc = 0;

	/* done_count is the claim's: exact while this attempt stored nothing */
	j->missing = db_work_missing(r->db, j->req->id,
				     j->req->done_count == 0 && j->calls == 0 && j->stores == 0);
	free(j->send);
	j->nsend = 0;
	j->send = j->missing ? malloc(((size_t)PQntuples(j->missing) + 1) * sizeof *j->send) : NULL;
	if (!j->plan && (j->plan = bisect_plan_new(r->chunk_size, 1, RUNNER_FAIL_WEIGHT_GUESS)))
		j->plan->halving = r->halving;
	rows = json_object_new_array();
	keys = json_object_new_array();
	if (!j->missing || !j->send || !j->plan || !rows || !keys) {
		j->fatal = JF_DB;
		snprintf(j->err, sizeof j->err, "database error reading inputs");
		rc = -1;
		goto out;
	}
	screen_inputs(j, rows, keys);
	known_bad(j, rows, keys);
	if (json_object_array_length(rows) > 0 &&
	    job_store(j, json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN), 0, 0) != BISECT_OK)
		rc = -1;
	if (j->screened || j->known_bad)
		log_info("runner screened=%d known_bad=%d to_send=%d msg=\"inputs not sent to the model\"",
			 j->screened, j->known_bad, j->nsend);
out:
	json_object_put(rows);
	json_object_put(keys);
	return rc;
}

/* Remember the inputs found bad by a rejection (negative cache). */
static void remember_known_bad(struct runner *r, struct job *j)
{
	if (!j->known_rows)
		return;
	if (json_object_array_length(j->known_rows) > 0 &&
	    db_work_known_bad_put(r->db, j->m->id, j->m->version,
				  json_object_to_json_string_ext(j->known_rows,
								 JSON_C_TO_STRING_PLAIN)) < 0)
		log_warn_x("runner msg=\"could not remember the failing inputs\"");
	json_object_put(j->known_rows);
	j->known_rows = NULL;
}

/* One chunk [off, off+len) of send[]: its CHUNK_SENT event (unless it rode
 * on the previous store), then the call and the isolation of its bad
 * inputs, timed. */
static void run_chunk(struct runner *r, struct job *j, const struct bisect_ops *ops, int off,
		      int len)
{
	struct bisect_stats after = j->st;
	int n = j->nsend, next, failed = j->st.failed_calls;
	int64_t t0;

	/* the next chunk's length, should this one pass whole */
	after.settled += len;
	next = n - off - len > 0 ? bisect_plan_chunk(j->plan, &after, n - off - len) : 0;
	if (!j->next_sent) {
		char detail[96];

		snprintf(detail, sizeof detail, "{\"request_id\":%lld,\"inputs\":%d}",
			 (long long)j->req->id, len);
		db_inst_event(r->db, j->inst->wi.id, "CHUNK_SENT", detail);
	}
	j->next_sent = 0;
	j->chunk_off = off;
	j->chunk_len = len;
	j->next_detail[0] = '\0';
	if (next > 0)
		snprintf(j->next_detail, sizeof j->next_detail, "{\"request_id\":%lld,\"inputs\":%d}",
			 (long long)j->req->id, next);
	j->sent_inputs += len;
	t0 = mh_mono_ms();
	if (bisect_run(j->plan, ops, off, len, &j->st) < 0 && j->fatal == JF_NONE)
		j->fatal = JF_DB;
	if (j->st.failed_calls > failed)
		j->isolation_ms += mh_mono_ms() - t0;
}

/* Send every input without a result; returns with j->fatal set on failure. */
static void run_inputs(struct runner *r, struct job *j)
{
	struct bisect_ops ops = {job_call, NULL, job_fail_one, j};

	j->next_sent = 0;
	if (prepare_inputs(r, j) == 0)
		for (int off = 0, len; off < j->nsend && j->fatal == JF_NONE; off += len) {
			len = bisect_plan_chunk(j->plan, &j->st, j->nsend - off);
			run_chunk(r, j, &ops, off, len);
		}
	remember_known_bad(r, j);
	/* a call started for a chunk that will not run now (a failure):
	 * wait for it to end (an abort or a dead instance ends it at once),
	 * its answer is not used; the inputs stay without a result */
	prefetch_drop(j);
	/* the last store; after a failure too, so that what was stored counts
	 * before anyone reads the missing inputs again (the first failure is
	 * the one reported) */
	if (j->fatal == JF_NONE) {
		job_settle(j);
	} else if (j->store_pending) {
		enum fatal f = j->fatal;
		char err[sizeof j->err];

		memcpy(err, j->err, sizeof err);
		job_settle(j);
		j->fatal = f;
		memcpy(j->err, err, sizeof err);
	}
	PQclear(j->missing);
	j->missing = NULL;
}

enum drive_rc { DRIVE_DONE, DRIVE_ABORTED, DRIVE_OUT };

/* Run the request's inputs on an instance (a new one after an instance
 * failure or an admin stop, bounded) until every input has a result
 * (DRIVE_DONE), the request is aborted (DRIVE_ABORTED) or it has been
 * failed, handed back or abandoned to its lease (DRIVE_OUT). */
static enum drive_rc drive(struct runner *r, struct job *j, struct cur *in, struct work_model *m)
{
	struct work_req *q = j->req;
	const char *reason = NULL;
	char detail[600];
	int retries = RUNNER_INSTANCE_RETRIES, admin_stops = 0;

	for (;;) {
		if (!in->wi.id) {
			switch (inst_get(r, j, in, &reason, detail, sizeof detail)) {
			case GET_OK:
				break;
			case GET_HANDBACK:
				db_work_handback(r->db, q->id, r->id);
				backoff_set(r, m->id, RUNNER_FULL_BACKOFF_MS);
				log_info("runner model=%s max_instances=%d msg=\"model at its instance limit, handed back\"",
					 m->id, m->max_instances);
				return DRIVE_OUT;
			case GET_ABORT:
				return DRIVE_ABORTED;
			case GET_FAILED:
				finish(r, j, "FAILED", reason, detail);
				return DRIVE_OUT;
			}
		}
		j->fatal = JF_NONE;
		j->err[0] = '\0';
		run_inputs(r, j);
		if (j->fatal == JF_NONE)
			return DRIVE_DONE;
		if ((j->fatal == JF_ABORT && r->abort == AB_INSTSTOP) || j->fatal == JF_STOPPED) {
			/* an admin stopped the instance: not the model's fault, go on
			 * with a new one (bounded, in case stops keep coming) */
			log_info("runner instance=%lld msg=\"instance stopped by request, continuing on another\"",
				 (long long)in->wi.id);
			r->abort = AB_NONE;
			inst_put(r, in, m, j->fatal == JF_STOPPED);
			if (admin_stops++ < RUNNER_MAX_ADMIN_STOPS)
				continue;
			finish(r, j, "FAILED", "MODEL_ERROR", "instances kept being stopped by an administrator");
			return DRIVE_OUT;
		}
		if (j->fatal == JF_ABORT)
			return DRIVE_ABORTED;
		if (j->fatal == JF_DB) {
			/* not the model's fault: leave the request RUNNING; its lease
			 * expires and the janitor requeues it (counted, so a request
			 * that keeps failing in the database ends ATTEMPTS_EXHAUSTED) */
			log_warn_x("runner error=\"%s\" msg=\"database error, abandoning the request to its lease\"",
				   j->err);
			inst_put(r, in, m, 0);
			return DRIVE_OUT;
		}
		if (j->fatal == JF_INSTANCE && retries-- > 0) {
			log_warn_x("runner model=%s error=\"%s\" msg=\"instance failed, retrying on a new instance\"",
				   m->id, j->err);
			inst_put(r, in, m, 1);
			continue;
		}
		inst_put(r, in, m, 1);
		reason = j->fatal == JF_OOM ? "OOM_KILLED" :
			 j->fatal == JF_TIMEOUT || j->fatal == JF_DEADLINE ? "TIMEOUT" : "MODEL_ERROR";
		finish(r, j, "FAILED", reason, j->err);
		return DRIVE_OUT;
	}
}

/* The request was aborted: shutdown or an instance stopped while starting
 * hand it back; a cancellation leaves it as the API set it. */
static void aborted(struct runner *r, const struct work_req *q, struct cur *in, const struct work_model *m)
{
	inst_put(r, in, m, 0);
	if (r->abort == AB_STOP || r->abort == AB_INSTSTOP) {
		db_work_handback(r->db, q->id, r->id);
		log_info("runner reason=%s msg=\"request handed back\"",
			 r->abort == AB_STOP ? "shutdown" : "instance stopped while starting");
	} else if (r->abort == AB_CANCELLED) {
		log_info("runner msg=\"request cancelled, work stopped\"");
	}
}

/* Set up the job of claimed request q on model m (and the slot claimed
 * with it, if any). */
static void job_init(struct runner *r, struct job *j, struct cur *in, struct work_req *q, struct work_model *m,
		     const struct work_inst *wi, enum work_slot inst_rc)
{
	memset(in, 0, sizeof *in);
	memset(j, 0, sizeof *j);
	r->req = q;
	r->abort = AB_NONE;
	r->last_renew = mh_mono_ms();
	j->r = r;
	j->req = q;
	j->m = m;
	j->inst = in;
	j->deadline_ms = mh_mono_ms() + (int64_t)(q->deadline_in_s * 1000.0);
	if (inst_rc != WORK_SLOT_NONE) {
		j->claim_wi = *wi;
		j->claim_rc = inst_rc;
	}
}

/* Run one claimed request; m (owned: cleared here) and, unless inst_rc is
 * WORK_SLOT_NONE, the instance slot wi were taken with the claim
 * (db_work_claim). */
static void process(struct runner *r, struct work_req *q, struct work_model *mp,
		    const struct work_inst *wi, enum work_slot inst_rc)
{
	struct work_model m = *mp;
	struct cur in;
	struct job j;
	char rid[32];
	int completed;

	snprintf(rid, sizeof rid, "%lld", (long long)q->id);
	log_set_req(rid);
	job_init(r, &j, &in, q, &m, wi, inst_rc);
	log_info("runner model=%s attempt=%d inputs=%d done=%d instance=%lld msg=\"claimed\"",
		 q->model_id, q->attempts, q->input_count, q->done_count,
		 inst_rc != WORK_SLOT_NONE ? (long long)wi->id : 0LL);
	if (!m.enabled) {
		finish(r, &j, "FAILED", "MODEL_DISABLED", "the model is disabled");
		db_work_fail_disabled(r->db, q->model_id);
		goto out;
	}
	if (q->deadline_in_s <= 0) {
		finish(r, &j, "FAILED", "TIMEOUT", "request deadline passed before it could run");
		goto out;
	}
	if (q->done_count >= q->input_count) {
		/* every input already has a result (an earlier attempt stored the
		 * last chunk and died before finishing; the store counts in the
		 * same statement): no instance needed */
		goto done;
	}
	switch (drive(r, &j, &in, &m)) {
	case DRIVE_DONE:
		break;
	case DRIVE_ABORTED:
		aborted(r, q, &in, &m);
		goto out;
	case DRIVE_OUT:
		goto out;
	}
done:
	/* the request first (its owner is waiting), then the instance */
	completed = j.end_status[0] ? ended(&j, j.end_status) : complete(r, &j);
	inst_put(r, &in, &m, 0);
	if (completed)
		cache_results(r, q, &m);
out:
	bisect_plan_free(j.plan);
	free(j.send);
	db_work_model_clear(&m);
	r->req = NULL;
	r->cur_inst = 0;
	log_set_req(NULL);
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
					own_stop(r, i, "STOPPED", "MODEL_CHANGED");
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
			process(r, &q, &m, &wi, irc);
			hubd_set_busy(r->c->role_index, 0);
			return 1;
		}
		/* FULL: the model filled up since the claim's check, skip it
		 * a while; TAKEN: others took its queue. Try the other models
		 * now. */
		if (rc == WORK_CLAIM_FULL)
			backoff_set(r, q.model_id, RUNNER_FULL_BACKOFF_MS);
		for (int i = 0; i < n; i++)
			if (strcmp(models[i], q.model_id) == 0)
				models[i--] = models[--n];
		if (n == 0)
			return 0;
	}
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
	mc_set_tick(r->mc, tick, r);
	db_listen(r->db, "work_queued");
	db_listen(r->db, "model_changed");
	db_listen(r->db, "instance_stop");
	log_info("runner id=%s backend=%s msg=\"started\"", r->id, r->backend);
	while (!hubd_should_stop()) {
		int64_t now = mh_mono_ms();
		unsigned long seen;

		hubd_heartbeat(c);
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
				sweep_lost(r);
			continue;
		}
		/* A NOTIFY that came in with the claim's answer sits in libpq's
		 * buffer, where poll() cannot see it: take it out and claim
		 * again rather than sleep on a socket with nothing new. */
		drain_notifies(r);
		if (db_notify_count(r->db, "work_queued") != seen)
			continue;
		now = mh_mono_ms();
		if (now - r->last_housekeep >= RUNNER_HOUSEKEEP_MS)
			housekeep(r);
		if (now - r->last_sweep >= RUNNER_SWEEP_MS)
			sweep_lost(r);
		if (hubd_wait(c, db_socket(r->db), RUNNER_IDLE_WAIT_MS) == 1)
			drain_notifies(r);
	}
	log_info("runner instances=%d msg=\"stopping\"", r->nown);
	while (r->nown > 0)
		own_stop(r, r->nown - 1, "STOPPED", "STOP_SHUTDOWN");
	rc = 0;
out:
	mc_free(r->mc);
	cluster_free(r->cl);
	free(r);
	return rc;
}
