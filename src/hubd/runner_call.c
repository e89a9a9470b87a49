/*
 * runner_call.c — the model calls of one chunk and the stores of their
 * answers: bisect's callbacks (runner_job_call, runner_job_fail_one) for the
 * request being run, SYNC (/run) and ASYNC (/job/...) models, the
 * prefetched next chunk, the negative-cache rows of inputs found bad.
 *
 * Runs in: modelhubd runner children. Called by: bisect.c through the ops
 * runner_req.c gives it; runner_req.c (stores of screened inputs, settle);
 * runner_probe.c (the parts called at once: the outcome of a call, its
 * timing and its store).
 * Owns: the buffers of a call; the prefetched call's body and answer
 * (struct job.pf), freed by runner_prefetch_drop.
 * Shared state: work_request_result rows of the request (added only,
 * ON CONFLICT DO NOTHING, under the lease) and its counters (deltas).
 *
 * DESIGN
 * - A call that finds the instance gone (refused, reset, process exited,
 *   OOM) is an instance failure (BISECT_FATAL), never a bad input; an HTTP
 *   answer of rejection (500/422, a failed job, a wrong record count) is
 *   BISECT_BAD and the chunk is bisected.
 * - A store is collected at once (runner_job_store / runner_job_settle):
 *   the runner's one Postgres connection serves all its requests' tasks,
 *   and a statement in flight keeps it for its task (runner_loop.c). The
 *   next chunk's call still starts before the answer is parsed and stored
 *   (prefetch), so the model does not wait for the store.
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

/* ------------------------------------------------------------- calls */

/* Parse a records array of exactly want elements; rows JSON appended for
 * db_work_store. 0 ok, -1 with j->err set. */
int runner_records_to_rows(struct job *j, const char *body, int off, int want, struct buf *rows)
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

char *runner_inputs_json(struct job *j, int off, int len)
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

/* Remaining time for a call of n inputs, in ms: the chunk timeout, the
 * request's deadline or the model's time budget (time_budget_s per input),
 * whichever is nearer; j->call_limit says which. */
int runner_call_timeout(struct job *j, int n)
{
	int64_t left = j->deadline_ms - mh_mono_ms();
	int64_t lim = (int64_t)j->r->chunk_timeout_s * 1000;
	int64_t budget = (int64_t)j->m->time_budget_s * 1000 * (n > 0 ? n : 1);

	j->call_limit = LIM_CHUNK;
	if (left < lim) {
		lim = left;
		j->call_limit = LIM_REQUEST;
	}
	if (j->m->time_budget_s > 0 && budget < lim) {
		lim = budget;
		j->call_limit = LIM_BUDGET;
	}
	return (int)(lim < 1 ? 1 : lim);
}

/* The reason in a model's error answer: FastAPI's {"detail": "..."} when
 * it is a string (ersilia-pack adds a long "traceback" beside it), else
 * the body; at most 200 characters, quotes and line breaks blanked. */
static void short_detail(const char *body, char *out, size_t n)
{
	json_object *o = body && *body == '{' ? json_tokener_parse(body) : NULL, *d;
	size_t k = 0;

	if (o && json_object_object_get_ex(o, "detail", &d) && json_object_is_type(d, json_type_string))
		body = json_object_get_string(d);
	for (; body && *body && k + 1 < n && k < 200; body++)
		out[k++] = (*body == '"' || *body == '\n' || *body == '\r') ? ' ' : *body;
	out[k] = '\0';
	json_object_put(o);
}

/* Transport failure or a 5xx: decide between "instance died" (fatal) and
 * "the batch was rejected" (bisect). */
enum bisect_rc runner_call_failed(struct job *j, struct cur *in, enum mc_rc rc, long st,
				  const char *what, const struct buf *body)
{
	int oom = 0, is_req = j->call_limit == LIM_REQUEST;
	char why[256], txt[220];

	if (rc == MC_ABORTED) {
		/* the model may still be computing: recycle the instance */
		j->call_cut = 1;
		j->fatal = JF_ABORT;
		return BISECT_FATAL;
	}
	if (rc == MC_TIMEOUT && j->call_limit == LIM_BUDGET) {
		j->call_cut = 1;
		j->fatal = JF_BUDGET;
		snprintf(j->err, sizeof j->err, "%s: exceeded the model's time budget of %d s per input (%d inputs)",
			 what, j->m->time_budget_s, j->call_len);
		return BISECT_FATAL;
	}
	if (rc == MC_TIMEOUT) {
		j->fatal = is_req ? JF_DEADLINE : JF_TIMEOUT;
		snprintf(j->err, sizeof j->err, "%s: no answer within %s", what,
			 is_req ? "the request deadline" : "the chunk timeout");
		return BISECT_FATAL;
	}
	if (rc == MC_TOO_LARGE) {
		/* the inputs' doing, like a rejection: bisected down to the input
		 * whose answer alone is too large (issue 17) */
		snprintf(j->err, sizeof j->err, "%s: the model's answer is larger than"
			 " hub.max_response_mib (%ld MiB)", what,
			 cfg_int("hub.max_response_mib", MC_DEFAULT_MAX_RESPONSE_MIB));
		j->cacheable = 0;
		return BISECT_BAD;
	}
	if (rc != MC_OK || st >= 500 || st == 0) {
		int dead = runner_inst_dead(j->r, in, &oom, why, sizeof why);
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
	long st;
	enum mc_rc rc = mc_call(j->mc, "POST", j->inst->wi.address, "/run?orient=records", body,
				runner_call_timeout(j, j->call_len), out, &st);

	if (rc != MC_OK || st != 200)
		return runner_call_failed(j, j->inst, rc, st, "POST /run", out);
	return BISECT_OK;
}

/* Read the answer of the prefetched call, keeping it for job_call. */
void runner_prefetch_wait(struct job *j)
{
	if (j->pf.active && !j->pf.done) {
		j->pf.rc = mc_finish(j->mc, &j->pf.out, &j->pf.st);
		j->pf.done = 1;
	}
}

void runner_prefetch_drop(struct job *j)
{
	runner_prefetch_wait(j);
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
	int n = j->nsend, next = off + len, nlen;

	/* only while nothing failed: then the next chunk is a full one */
	if (j->m->async || j->pf.active || off != j->chunk_off || len != j->chunk_len || next >= n ||
	    j->st.failed_calls > 0)
		return;
	nlen = n - next < runner_chunk(j->r, j) ? n - next : runner_chunk(j->r, j);
	j->pf.body = runner_inputs_json(j, next, nlen);
	if (!j->pf.body)
		return;
	if (mc_start(j->mc, "POST", j->inst->wi.address, "/run?orient=records", j->pf.body,
		     runner_call_timeout(j, nlen), &j->pf.out) < 0) {
		runner_prefetch_drop(j);
		return;
	}
	j->pf.limit = j->call_limit;
	j->pf.active = 1;
	j->pf.off = next;
	j->pf.len = nlen;
}

/* Submit body as an ASYNC job on instance in (client mc): BISECT_OK with
 * its id in job_id, else the call's verdict (j->err set). */
enum bisect_rc runner_async_submit(struct job *j, struct cur *in, struct mc *mc, const char *body,
				   char *job_id, size_t n, struct buf *out)
{
	struct json_object *o = NULL, *v;
	long st;
	enum mc_rc rc;

	rc = mc_call(mc, "POST", in->wi.address, "/job/submit?orient=records", body,
		     runner_call_timeout(j, j->call_len), out, &st);
	if (rc != MC_OK || st != 200)
		return runner_call_failed(j, in, rc, st, "POST /job/submit", out);
	o = json_tokener_parse(buf_cstr(out));
	if (!o || !json_object_object_get_ex(o, "job_id", &v) || !json_object_get_string(v)) {
		json_object_put(o);
		snprintf(j->err, sizeof j->err, "job submit answer without job_id");
		j->cacheable = 0;
		return BISECT_BAD;
	}
	snprintf(job_id, n, "%s", json_object_get_string(v));
	json_object_put(o);
	return BISECT_OK;
}

/* One look at ASYNC job job_id on instance in: 1 still running; 0
 * completed, its records in out; -1 ended otherwise, the verdict in *rc
 * (j->err set): failed, forgotten by the server, past until, an error. */
int runner_async_step(struct job *j, struct cur *in, struct mc *mc, const char *job_id, int64_t until,
		      struct buf *out, enum bisect_rc *vrc)
{
	struct json_object *o, *v;
	const char *status = NULL;
	char path[200];
	int done, failed;
	long st;
	enum mc_rc rc;

	if (mh_mono_ms() >= until) {
		*vrc = runner_call_failed(j, in, MC_TIMEOUT, 0, "ASYNC job", NULL);
		return -1;
	}
	snprintf(path, sizeof path, "/job/status/%s", job_id);
	rc = mc_call(mc, "GET", in->wi.address, path, NULL, 30000, out, &st);
	if (rc != MC_OK || st >= 500) {
		*vrc = runner_call_failed(j, in, rc, st, "GET /job/status", out);
		return -1;
	}
	if (st == 404) {
		/* the server forgot the job: it restarted, so the instance failed */
		j->fatal = JF_INSTANCE;
		snprintf(j->err, sizeof j->err, "job %s unknown to the instance (restarted?)", job_id);
		*vrc = BISECT_FATAL;
		return -1;
	}
	o = json_tokener_parse(buf_cstr(out));
	if (o && json_object_object_get_ex(o, "status", &v))
		status = json_object_get_string(v);
	done = status && strcmp(status, "completed") == 0;
	failed = status && strcmp(status, "failed") == 0;
	json_object_put(o);
	if (failed) {
		snprintf(j->err, sizeof j->err, "ASYNC job failed");
		j->cacheable = 1;
		*vrc = BISECT_BAD;
		return -1;
	}
	if (!done)
		return 1;
	snprintf(path, sizeof path, "/job/result/%s", job_id);
	rc = mc_call(mc, "GET", in->wi.address, path, NULL, runner_call_timeout(j, j->call_len), out, &st);
	if (rc != MC_OK || st != 200) {
		*vrc = runner_call_failed(j, in, rc, st, "GET /job/result", out);
		return -1;
	}
	return 0;
}

/* The next ASYNC poll interval: short jobs are the common case, so poll
 * fast first, then back off to RUNNER_POLL_MS. */
int runner_async_backoff(int poll_ms)
{
	return poll_ms * 2 < RUNNER_POLL_MS ? poll_ms * 2 : RUNNER_POLL_MS;
}

static enum bisect_rc run_async(struct job *j, const char *body, struct buf *out)
{
	char job_id[100];
	int64_t until = mh_mono_ms() + runner_call_timeout(j, j->call_len);
	enum bisect_rc brc = runner_async_submit(j, j->inst, j->mc, body, job_id, sizeof job_id, out);
	int poll_ms = 5, r;

	if (brc != BISECT_OK)
		return brc;
	while ((r = runner_async_step(j, j->inst, j->mc, job_id, until, out, &brc)) > 0) {
		poll_ms = runner_async_backoff(poll_ms);
		if (runner_nap(j, poll_ms)) {
			j->call_cut = 1; /* the job goes on in the model */
			j->fatal = JF_ABORT;
			return BISECT_FATAL;
		}
	}
	return r == 0 ? BISECT_OK : brc;
}

/* The request row's counters not yet reported (and now counted as such).
 * extra_calls: calls beyond one per chunk (runner_chunk) of inputs sent, which is
 * what the inputs would have cost had none failed. */
struct work_counts runner_counts_delta(struct job *j)
{
	int chunk = runner_chunk(j->r, j), base = (j->sent_inputs + chunk - 1) / chunk;
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
void runner_call_timed(struct job *j, enum bisect_rc rc, int64_t ms)
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
		bisect_plan_tune(j->plan, j->plan->width, bad / (ok > 1 ? ok : 1));
	}
}

/* Wait for the store in flight, if any (see job_store). */
enum bisect_rc runner_job_settle(struct job *j)
{
	int n;

	if (!j->store_pending)
		return BISECT_OK;
	j->store_pending = 0;
	n = db_work_store_collect(j->r->db, j->end_status, sizeof j->end_status);
	if (n == -2) {
		runner_tick(j); /* finds out: cancelled or lost */
		if (j->abort == AB_NONE)
			j->abort = AB_LOST;
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
 * Results are only ever added (ON CONFLICT DO NOTHING) and a retry sends
 * only the inputs without one. */
enum bisect_rc runner_job_store(struct job *j, const char *rows, int off, int len)
{
	int whole = len > 0 && off == j->chunk_off && len == j->chunk_len;
	int ev = whole && j->next_detail[0];
	/* the whole last chunk answered at once: its store also ends the
	 * request (one statement less between the model's last answer and
	 * the result being downloadable) */
	int last = whole && off + len == j->nsend;
	struct work_end end = {j->err};
	struct work_counts add;

	if (runner_job_settle(j) != BISECT_OK)
		return BISECT_FATAL;
	add = runner_counts_delta(j);
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
	/* collected now: the runner's one connection is shared by all its
	 * requests, and a statement left in flight would hold it for the
	 * length of the next model call */
	return runner_job_settle(j);
}

/* The call of this chunk was started with the previous answer: its
 * outcome, the answer moved to *out. */
static enum bisect_rc call_prefetched(struct job *j, struct buf *out)
{
	enum bisect_rc rc;

	runner_prefetch_wait(j);
	j->calls++;
	j->call_limit = j->pf.limit;
	j->call_len = j->pf.len;
	rc = j->pf.rc != MC_OK || j->pf.st != 200 ?
	     runner_call_failed(j, j->inst, j->pf.rc, j->pf.st, "POST /run", &j->pf.out) : BISECT_OK;
	buf_free(out);
	*out = j->pf.out;
	j->pf.out = (struct buf)BUF_INIT;
	runner_prefetch_drop(j);
	return rc;
}

enum bisect_rc runner_job_call(void *ctx, int off, int len)
{
	struct job *j = ctx;
	struct buf out = BUF_INIT, rows = BUF_INIT;
	char *body;
	enum bisect_rc rc;
	int64_t t0 = mh_mono_ms(), timed = 1;

	if (j->ok_t0 > 0)
		runner_call_timed(j, BISECT_OK, t0 - j->ok_t0);
	j->ok_t0 = 0;
	if (runner_tick(j)) {
		j->fatal = JF_ABORT;
		return BISECT_FATAL;
	}
	if (j->pf.active && j->pf.off == off && j->pf.len == len) {
		timed = 0; /* started earlier: its duration is not known here */
		rc = call_prefetched(j, &out);
	} else {
		/* one call at a time per instance: a prefetched one of other
		 * inputs is answered first and waits for its turn */
		runner_prefetch_wait(j);
		body = runner_inputs_json(j, off, len);
		if (!body) {
			j->fatal = JF_DB;
			snprintf(j->err, sizeof j->err, "out of memory");
			return BISECT_FATAL;
		}
		j->calls++;
		j->call_len = len;
		rc = j->m->async ? run_async(j, body, &out) : run_sync(j, body, &out);
		free(body);
	}
	if (rc == BISECT_BAD)
		runner_call_timed(j, rc, mh_mono_ms() - t0);
	else if (rc == BISECT_OK && timed)
		j->ok_t0 = t0;
	if (rc == BISECT_OK) {
		prefetch_next(j, off, len);
		if (runner_records_to_rows(j, buf_cstr(&out), off, len, &rows) < 0) {
			rc = BISECT_BAD;
			j->cacheable = 1;
		} else {
			rc = runner_job_store(j, buf_cstr(&rows), off, len);
		}
	}
	/* the model's answer may echo molecules: it goes to the result's error
	 * column (the owner's own data), never to the log */
	if (rc == BISECT_BAD)
		log_info("runner inputs=%d offset=%d msg=\"batch rejected by the model\"", len, off);
	buf_free(&out);
	buf_free(&rows);
	/* isolation comes next: borrow warm instances to probe on at once */
	if (rc == BISECT_BAD && len > 1)
		runner_probe_prepare(j);
	return rc;
}

/* One [ordinal, null, error] row appended to rows. */
void runner_error_row(struct json_object *rows, const char *ordinal, const char *error)
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
int runner_job_fail_one(void *ctx, int idx, int alone)
{
	struct job *j = ctx;
	struct json_object *a = json_object_new_array();
	const char *input = PQgetvalue(j->missing, j->send[idx], 1);
	char msg[700], hex[CACHEKEY_HEX_LEN + 1];
	enum bisect_rc rc;

	if (!a)
		return -1;
	/* failed alone among parts called at once: its own call's verdict */
	if (alone)
		runner_probe_verdict(j, idx);
	if (alone)
		snprintf(msg, sizeof msg, "%s", j->err[0] ? j->err : "model failed on this input");
	else
		snprintf(msg, sizeof msg, "rejected in every batch that held it (last: %s)", j->err);
	runner_error_row(a, PQgetvalue(j->missing, j->send[idx], 0), msg);
	rc = runner_job_store(j, json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN), idx, 0);
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
