/*
 * runner_req.c — one claimed request from claim to outcome: the inputs
 * without a result (SMILES screen, negative cache), the chunks and their
 * isolation (bisect.c), instance failures and admin stops, the final
 * status, the positive cache.
 *
 * Runs in: modelhubd runner children. Called by: runner.c (runner_process
 * for each claimed request).
 * Owns: struct job and the instance slot of the request (struct cur) while
 * it runs; the request's plan (bisect_plan), inputs (PGresult) and send[].
 * Shared state: the work_request row (RUNNING under runner_id and lease;
 * finished, completed or handed back by conditional updates, so a request
 * cancelled or requeued under us is never overwritten), result cache rows.
 *
 * DESIGN
 * - Instance failure policy: OOM-killed -> FAILED OOM_KILLED at once (the
 *   same limit would kill the next instance too); any other death -> one
 *   retry on a fresh instance within the same attempt (finished chunks are
 *   kept), a second death -> FAILED MODEL_ERROR; an admin stop moves the
 *   request to another instance (bounded).
 * - A database error leaves the request RUNNING: its lease expires and the
 *   janitor requeues it (counted as an attempt).
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

static void finish(struct runner *r, struct job *j, const char *status, const char *reason,
		   const char *detail)
{
	struct work_counts add = runner_counts_delta(j);

	/* detail stays in the row: it may quote the model's answer */
	if (db_work_finish(r->db, j->req->id, r->id, status, reason, detail, &add) == 1)
		log_info("runner model=%s status=%s reason=%s calls=%d extra_calls=%d db_trips=%lu"
			 " msg=\"request finished\"",
			 j->m->id, status, reason ? reason : "-", j->calls, j->counted.extra_calls,
			 db_round_trips(r->db));
	else
		log_info("runner msg=\"request changed under us (cancelled or requeued), not finishing\"");
}

/* The request ended with status: logged; 1 when it COMPLETED. */
static int ended(struct job *j, const char *status)
{
	/* db_trips: the runner connection's round trips so far (all its
	 * requests and housekeeping), for bench/concurrency */
	log_info("runner model=%s status=%s calls=%d extra_calls=%d isolation_ms=%lld screened=%d"
		 " known_bad=%d fail_weight=%.1f db_trips=%lu msg=\"request finished\"",
		 j->m->id, status, j->calls, j->counted.extra_calls, (long long)j->isolation_ms,
		 j->screened, j->known_bad, j->plan ? j->plan->fail_weight : 0.0, db_round_trips(j->r->db));
	return strcmp(status, "COMPLETED") == 0;
}

/* Every input was sent (and the last store did not end the request): one
 * statement counts the results and decides. 1 when it COMPLETED. */
static int complete(struct runner *r, struct job *j)
{
	char status[16] = "";
	struct work_counts add = runner_counts_delta(j);
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
			runner_error_row(rows, PQgetvalue(j->missing, k, 0), msg);
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
		runner_error_row(rows, PQgetvalue(j->missing, j->send[pos], 0), msg);
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
	if (!j->plan && (j->plan = bisect_plan_new(runner_chunk(r, j), 1, RUNNER_FAIL_WEIGHT_GUESS)))
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
	    runner_job_store(j, json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN), 0, 0) != BISECT_OK)
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
	j->help_tried = 0;
	t0 = mh_mono_ms();
	if (bisect_run(j->plan, ops, off, len, &j->st) < 0 && j->fatal == JF_NONE)
		j->fatal = JF_DB;
	if (j->st.failed_calls > failed)
		j->isolation_ms += mh_mono_ms() - t0;
}

/* After a failure, with warm instances borrowed: the next chunks (as many
 * as instances, each sized by the plan) at once, then their isolation.
 * Returns the inputs they cover. */
static int run_round(struct runner *r, struct job *j, const struct bisect_ops *ops, int off)
{
	int offs[RUNNER_PROBE_MAX + 1], lens[RUNNER_PROBE_MAX + 1], n = 0, at = off;
	int failed = j->st.failed_calls;
	struct bisect_stats after = j->st;
	int64_t t0;

	while (n < 1 + j->nhelp && at < j->nsend) {
		offs[n] = at;
		lens[n] = bisect_plan_chunk(j->plan, &after, j->nsend - at);
		after.settled += lens[n];
		at += lens[n++];
	}
	if (!j->next_sent) {
		char detail[96];

		snprintf(detail, sizeof detail, "{\"request_id\":%lld,\"inputs\":%d}",
			 (long long)j->req->id, at - off);
		db_inst_event(r->db, j->inst->wi.id, "CHUNK_SENT", detail);
	}
	/* no whole-chunk shortcuts (next chunk's event, ending with the store) */
	j->next_sent = 0;
	j->next_detail[0] = '\0';
	j->chunk_off = j->chunk_len = -1;
	j->sent_inputs += at - off;
	j->help_tried = 0;
	t0 = mh_mono_ms();
	if (bisect_run_many(j->plan, ops, offs, lens, n, &j->st) < 0 && j->fatal == JF_NONE)
		j->fatal = JF_DB;
	if (j->st.failed_calls > failed)
		j->isolation_ms += mh_mono_ms() - t0;
	return at - off;
}

/* Send every input without a result; returns with j->fatal set on failure. */
static void run_inputs(struct runner *r, struct job *j)
{
	/* parallel probing: SYNC calls or ASYNC jobs on borrowed warm instances */
	struct bisect_ops ops = {runner_job_call, runner_job_call_many,
				 runner_job_fail_one, j};

	j->next_sent = 0;
	if (prepare_inputs(r, j) == 0)
		for (int off = 0, len; off < j->nsend && j->fatal == JF_NONE; off += len) {
			if (j->nhelp > 0 && ops.call_many) {
				len = run_round(r, j, &ops, off);
				continue;
			}
			len = bisect_plan_chunk(j->plan, &j->st, j->nsend - off);
			run_chunk(r, j, &ops, off, len);
		}
	/* the instances borrowed after a failure go back to the model */
	runner_probe_release(j, 0);
	remember_known_bad(r, j);
	/* a call started for a chunk that will not run now (a failure):
	 * wait for it to end (an abort or a dead instance ends it at once),
	 * its answer is not used; the inputs stay without a result */
	runner_prefetch_drop(j);
	/* the last store; after a failure too, so that what was stored counts
	 * before anyone reads the missing inputs again (the first failure is
	 * the one reported) */
	if (j->fatal == JF_NONE) {
		runner_job_settle(j);
	} else if (j->store_pending) {
		enum fatal f = j->fatal;
		char err[sizeof j->err];

		memcpy(err, j->err, sizeof err);
		runner_job_settle(j);
		j->fatal = f;
		memcpy(j->err, err, sizeof err);
	}
	PQclear(j->missing);
	j->missing = NULL;
}

enum drive_rc { DRIVE_DONE, DRIVE_ABORTED, DRIVE_OUT };

/* Get an instance for the request; 1 when it has one. 0: it was handed
 * back or failed (j->got says DRIVE_OUT), or aborted (DRIVE_ABORTED). */
static int drive_get(struct runner *r, struct job *j, struct cur *in, struct work_model *m)
{
	const char *reason = NULL;
	char detail[600];

	switch (runner_inst_get(r, j, in, &reason, detail, sizeof detail)) {
	case GET_OK:
		return 1;
	case GET_HANDBACK:
		db_work_handback(r->db, j->req->id, r->id);
		runner_backoff_set(r, m->id, RUNNER_FULL_BACKOFF_MS);
		log_info("runner model=%s max_instances=%d msg=\"model at its instance limit, handed back\"",
			 m->id, m->max_instances);
		j->got = DRIVE_OUT;
		return 0;
	case GET_ABORT:
		j->got = DRIVE_ABORTED;
		return 0;
	case GET_FAILED:
		finish(r, j, "FAILED", reason, detail);
		break;
	}
	j->got = DRIVE_OUT;
	return 0;
}

/* Run the request's inputs on an instance (a new one after an instance
 * failure or an admin stop, bounded) until every input has a result
 * (DRIVE_DONE), the request is aborted (DRIVE_ABORTED) or it has been
 * failed, handed back or abandoned to its lease (DRIVE_OUT). */
static enum drive_rc drive(struct runner *r, struct job *j, struct cur *in, struct work_model *m)
{
	const char *reason;
	int retries = RUNNER_INSTANCE_RETRIES, admin_stops = 0;

	for (;;) {
		if (!in->wi.id && !drive_get(r, j, in, m))
			return (enum drive_rc)j->got;
		j->fatal = JF_NONE;
		j->err[0] = '\0';
		run_inputs(r, j);
		if (j->fatal == JF_NONE)
			return DRIVE_DONE;
		if ((j->fatal == JF_ABORT && j->abort == AB_INSTSTOP) || j->fatal == JF_STOPPED) {
			/* an admin stopped the instance: not the model's fault, go on
			 * with a new one (bounded, in case stops keep coming) */
			log_info("runner instance=%lld msg=\"instance stopped by request, continuing on another\"",
				 (long long)in->wi.id);
			j->abort = AB_NONE;
			runner_inst_put(j, j->fatal == JF_STOPPED);
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
			runner_inst_put(j, 0);
			return DRIVE_OUT;
		}
		if (j->fatal == JF_INSTANCE && retries-- > 0) {
			log_warn_x("runner model=%s error=\"%s\" msg=\"instance failed, retrying on a new instance\"",
				   m->id, j->err);
			runner_inst_put(j, 1);
			continue;
		}
		/* over its time budget the instance is sound but busy: recycled */
		runner_inst_put(j, j->fatal == JF_BUDGET ? 2 : 1);
		reason = j->fatal == JF_OOM ? "OOM_KILLED" : j->fatal == JF_BUDGET ? "TIME_BUDGET_EXCEEDED" :
			 j->fatal == JF_TIMEOUT || j->fatal == JF_DEADLINE ? "TIMEOUT" : "MODEL_ERROR";
		finish(r, j, "FAILED", reason, j->err);
		return DRIVE_OUT;
	}
}

/* The request was aborted: shutdown or an instance stopped while starting
 * hand it back; a cancellation leaves it as the API set it. A call cut
 * short (cancellation, time budget) may still run in the model, which
 * cannot be interrupted: that instance is recycled, never reused busy.
 * A shutdown's cut call was healthy and ends soon: the instance is left
 * like the others (kubernetes: handed over to the remaining replicas,
 * whose next call waits for it at the model; local: stopped). */
static void aborted(struct runner *r, struct job *j)
{
	runner_inst_put(j, j->call_cut && j->abort != AB_STOP ? 2 : 0);
	if (j->abort == AB_STOP || j->abort == AB_INSTSTOP) {
		db_work_handback(r->db, j->req->id, r->id);
		log_info("runner reason=%s msg=\"request handed back\"",
			 j->abort == AB_STOP ? "shutdown" : "instance stopped while starting");
	} else if (j->abort == AB_CANCELLED) {
		log_info("runner recycled=%d msg=\"request cancelled, work stopped\"", j->call_cut);
	}
}

/* Set up the job of claim c (and the slot claimed with it, if any). */
static void job_init(struct claim *c, struct job *j, struct cur *in)
{
	struct runner *r = c->r;

	memset(in, 0, sizeof *in);
	memset(j, 0, sizeof *j);
	j->r = r;
	j->req = &c->q;
	j->m = &c->m;
	j->inst = in;
	j->task = rl_self(r->loop);
	j->deadline_ms = mh_mono_ms() + (int64_t)(c->q.deadline_in_s * 1000.0);
	if (c->irc != WORK_SLOT_NONE) {
		j->claim_wi = c->wi;
		j->claim_rc = c->irc;
		j->cur_inst = c->wi.id;
	}
	j->mc = mc_new();
	if (j->mc) {
		mc_attach(j->mc, rl_multi(r->loop), rl_mc_wait, j->task);
		mc_set_tick(j->mc, runner_tick, j);
	}
	j->next = r->jobs;
	r->jobs = j;
}

static void job_end(struct job *j)
{
	struct runner *r = j->r;

	for (struct job **pp = &r->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	runner_probe_release(j, 1);
	bisect_plan_free(j->plan);
	free(j->send);
	mc_free(j->mc);
	db_work_model_clear(j->m);
	runner_job_ended(r);
}

/* The request's outcome before any instance: disabled model, deadline
 * passed, or every input already stored. 1 when it was settled here. */
static int settled_early(struct runner *r, struct job *j, int *done)
{
	const struct work_req *q = j->req;

	*done = 0;
	if (!j->mc) {
		log_error_x("runner msg=\"no HTTP client, handing the request back\"");
		db_work_handback(r->db, q->id, r->id);
		return 1;
	}
	if (!j->m->enabled) {
		finish(r, j, "FAILED", "MODEL_DISABLED", "the model is disabled");
		db_work_fail_disabled(r->db, q->model_id);
		return 1;
	}
	if (q->deadline_in_s <= 0) {
		finish(r, j, "FAILED", "TIMEOUT", "request deadline passed before it could run");
		return 1;
	}
	/* every input already has a result (an earlier attempt stored the last
	 * chunk and died before finishing; the store counts in the same
	 * statement): no instance needed */
	*done = q->done_count >= q->input_count;
	return 0;
}

/* The task of one claimed request (arg: a malloc()ed struct claim, freed
 * here with the model it holds). */
void runner_process(void *arg)
{
	struct claim *c = arg;
	struct runner *r = c->r;
	struct work_req *q = &c->q;
	struct cur in;
	struct job j;
	char rid[32];
	int completed, done;

	snprintf(rid, sizeof rid, "%lld", (long long)q->id);
	rl_set_tag(r->loop, rid);
	job_init(c, &j, &in);
	log_info("runner model=%s attempt=%d inputs=%d done=%d instance=%lld tasks=%d msg=\"claimed\"",
		 q->model_id, q->attempts, q->input_count, q->done_count,
		 c->irc != WORK_SLOT_NONE ? (long long)c->wi.id : 0LL, r->njobs);
	if (settled_early(r, &j, &done))
		goto out;
	if (!done) {
		switch (drive(r, &j, &in, &c->m)) {
		case DRIVE_DONE:
			break;
		case DRIVE_ABORTED:
			aborted(r, &j);
			goto out;
		case DRIVE_OUT:
			goto out;
		}
	}
	/* the request first (its owner is waiting), then the instance */
	completed = j.end_status[0] ? ended(&j, j.end_status) : complete(r, &j);
	runner_inst_put(&j, 0);
	if (completed)
		cache_results(r, q, &c->m);
out:
	job_end(&j);
	free(c);
}
