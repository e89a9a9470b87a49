/*
 * runner_probe.c — parallel probing (issue 20): when a chunk fails, its
 * parts are called at once on several warm instances of the model, up to
 * hub.probe_width (the request's own instance and borrowed IDLE ones).
 *
 * Runs in: modelhubd runner children. Called by: runner_call.c
 * (runner_probe_prepare after a rejected call, runner_probe_verdict from
 * fail_one), bisect.c through the ops (runner_job_call_many), runner_req.c
 * (run_round, runner_probe_release at the end of the inputs and of the
 * request).
 * Owns: the borrowed instances (struct job.help[]: BUSY for the request
 * from the borrow to the release) and their HTTP clients (freed with the
 * final release); the bodies and answers of one round of calls.
 * Shared state: model_instance rows (IDLE -> BUSY by the same conditional
 * update as any reuse, back to IDLE, or recycled after a cut call), the
 * request's results (stores, as runner_call.c).
 * On crash: the borrowed rows are the runner's like its own slot: its
 * instances die with it and the sweep marks them LOST.
 *
 * DESIGN
 * - Only instances already warm are used: starting one costs far more
 *   than the isolation it would shorten. They are borrowed once a chunk
 *   was rejected (runner_probe_prepare, at most once per chunk or round)
 *   and kept to the end of the request's inputs: after a failure its
 *   remaining chunks go as many at once as instances are held (runner_req.c
 *   run_round), so the smaller chunks and extra calls that isolation costs
 *   are paid on several instances. Other requests of the model wait for
 *   them that long at most; hub.probe_width = 1 turns it off. The plan's
 *   width is the number of instances held: bisect.c then counts rounds of
 *   calls, not calls, and never makes more calls than plain halving in the
 *   worst case.
 * - One round: every part's call is started (mc_start, each on its own
 *   client and instance, all on the loop's multi handle), then each is
 *   finished in turn; the task waits while the others run. Every answer is
 *   judged and stored as one call of runner_job_call would be, whatever
 *   the others did; the first fatal outcome is the one kept.
 * - A borrowed instance that dies or is stopped is the helper's fault, not
 *   the request's: it is dropped and its part called again on the
 *   request's own instance. A cut call (cancellation, time budget) on a
 *   helper recycles that helper, as for the request's own instance.
 * - ASYNC models: each part's job is submitted on its instance, then the
 *   round polls every job still running (one status call each, then one
 *   nap for all, backing off as runner_call.c's one job does) and fetches
 *   each result as its job completes; the jobs run at once in the models.
 *   A part's verdict is kept with the part (the request's error state is
 *   shared) and judged with the others after the round.
 */
#include "hubd/runner.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One part of a round: its instance, client, body and answer. */
struct part {
	struct cur *in;
	struct mc *mc;
	struct helper *h; /* NULL: the request's own instance */
	char *body;
	struct buf out;
	int off, len, started;
	enum mc_rc rc;
	long st;
	enum call_limit limit;
	/* ASYNC: the job, its state and its verdict, kept apart from j's */
	char job_id[100];
	int running;
	int64_t t0, until, ms;
	enum bisect_rc brc;
	enum fatal fatal;
	int cacheable, cut;
	char err[sizeof(((struct job *)0)->err)];
};

/* A new client for helper h on the request's loop, ticking like its own. */
static int helper_client(struct job *j, struct helper *h)
{
	if (h->mc)
		return 0;
	h->mc = mc_new();
	if (!h->mc)
		return -1;
	mc_attach(h->mc, rl_multi(j->r->loop), rl_mc_wait, j->task);
	mc_set_tick(h->mc, runner_tick, j);
	return 0;
}

void runner_probe_prepare(struct job *j)
{
	int want = j->r->probe_width - 1, had = j->nhelp;

	if (j->plan->halving || want < 1 || j->help_tried)
		return;
	j->help_tried = 1;
	if (want > RUNNER_PROBE_MAX)
		want = RUNNER_PROBE_MAX;
	while (j->nhelp < want) {
		struct helper *h = &j->help[j->nhelp];
		if (helper_client(j, h) < 0 || !runner_inst_borrow(j->r, j, &h->in))
			break;
		h->cut = 0;
		j->nhelp++;
	}
	bisect_plan_tune(j->plan, 1 + j->nhelp, j->plan->fail_weight);
	if (j->nhelp > had)
		log_info("runner model=%s helpers=%d msg=\"warm instances borrowed to isolate bad inputs\"",
			 j->m->id, j->nhelp);
}

/* Give helper k back (recycled when a call on it was cut, stopped when
 * broken) and close the gap in help[]. */
static void helper_drop(struct job *j, int k, int broken)
{
	struct helper *h = &j->help[k];
	struct mc *mc = h->mc;

	runner_cur_put(j, &h->in, h->cut ? 2 : broken);
	memset(&h->in, 0, sizeof h->in);
	h->cut = 0;
	/* the last helper takes the slot; the dropped one keeps its client */
	j->help[k] = j->help[j->nhelp - 1];
	j->help[j->nhelp - 1] = (struct helper){.mc = mc};
	j->nhelp--;
}

void runner_probe_release(struct job *j, int final)
{
	while (j->nhelp > 0)
		helper_drop(j, j->nhelp - 1, 0);
	j->help_tried = 0;
	j->nperr = 0;
	if (!final)
		return;
	for (int k = 0; k < RUNNER_PROBE_MAX; k++) {
		mc_free(j->help[k].mc);
		j->help[k].mc = NULL;
	}
}

void runner_probe_verdict(struct job *j, int idx)
{
	for (int k = 0; k < j->nperr; k++)
		if (j->perr[k].off == idx) {
			snprintf(j->err, sizeof j->err, "%s", j->perr[k].err);
			j->cacheable = j->perr[k].cacheable;
			j->perr[k] = j->perr[--j->nperr];
			return;
		}
}

/* Part p's inputs as the call's body, counted as one call. -1 out of
 * memory (j->fatal set). */
static int part_body(struct job *j, struct part *p)
{
	p->body = runner_inputs_json(j, p->off, p->len);
	if (!p->body) {
		j->fatal = JF_DB;
		snprintf(j->err, sizeof j->err, "out of memory");
		return -1;
	}
	j->calls++;
	return 0;
}

/* Start part p's call. -1 out of memory (j->fatal set). */
static int part_start(struct job *j, struct part *p)
{
	if (part_body(j, p) < 0)
		return -1;
	p->limit = LIM_CHUNK;
	if (mc_start(p->mc, "POST", p->in->wi.address, "/run?orient=records", p->body,
		     runner_call_timeout(j, p->len), &p->out) == 0) {
		p->limit = j->call_limit;
		p->started = 1;
	} else {
		p->rc = MC_ERROR; /* judged as an unreachable instance */
	}
	return 0;
}

/* Part p's answer judged, timed and stored, as runner_job_call would. */
static enum bisect_rc part_judge(struct job *j, struct part *p)
{
	struct buf rows = BUF_INIT;
	enum bisect_rc rc = BISECT_OK;
	int cut = j->call_cut;

	j->call_limit = p->limit;
	j->call_len = p->len;
	if (p->h)
		j->call_cut = 0;
	if (j->m->async && p->brc != BISECT_OK) {
		rc = p->brc;
		j->fatal = p->fatal;
		j->cacheable = p->cacheable;
		j->call_cut |= p->cut;
		memcpy(j->err, p->err, sizeof j->err);
	} else if (!j->m->async && (p->rc != MC_OK || p->st != 200)) {
		rc = runner_call_failed(j, p->in, p->rc, p->st, "POST /run", &p->out);
	}
	if (p->h) {
		/* a cut call recycles the helper, not the request's own instance */
		p->h->cut |= j->call_cut;
		j->call_cut = cut;
	}
	if (rc != BISECT_FATAL && p->started)
		runner_call_timed(j, rc, j->m->async ? p->ms : mc_total_ms(p->mc));
	if (rc == BISECT_OK) {
		if (runner_records_to_rows(j, buf_cstr(&p->out), p->off, p->len, &rows) < 0) {
			rc = BISECT_BAD;
			j->cacheable = 1;
		} else {
			rc = runner_job_store(j, buf_cstr(&rows), p->off, p->len);
		}
	}
	if (rc == BISECT_BAD)
		log_info("runner inputs=%d offset=%d instance=%lld msg=\"batch rejected by the model\"",
			 p->len, p->off, (long long)p->in->wi.id);
	buf_free(&rows);
	return rc;
}

/* A helper's instance failed under part p (died, unreachable, stopped):
 * drop it and call the part again on the request's own instance. */
static enum bisect_rc part_again(struct job *j, struct part *p)
{
	for (int k = 0; k < j->nhelp; k++)
		if (&j->help[k] == p->h) {
			log_warn_x("runner instance=%lld error=\"%s\" msg=\"borrowed instance failed,"
				   " its part goes to the request's own\"", (long long)p->in->wi.id, j->err);
			helper_drop(j, k, 1);
			break;
		}
	j->fatal = JF_NONE;
	j->err[0] = '\0';
	return runner_job_call(j, p->off, p->len);
}

/* Keep part p's verdict: the request's error state after the round is the
 * first failed part's; a single input's goes to fail_one. */
static void part_verdict(struct job *j, const struct part *p, int *first_bad, char *err0,
			 int *cache0)
{
	if (p->len == 1 && j->nperr < RUNNER_PERR_MAX) {
		struct part_err *e = &j->perr[j->nperr++];
		size_t n = strnlen(j->err, sizeof e->err - 1);

		e->off = p->off;
		e->cacheable = j->cacheable;
		memcpy(e->err, j->err, n);
		e->err[n] = '\0';
	}
	if (!*first_bad) {
		*first_bad = 1;
		memcpy(err0, j->err, sizeof j->err);
		*cache0 = j->cacheable;
	}
}

/* The parts' outcomes into rc[]; the first fatal one stays in j->fatal and
 * j->err. -1 when one was fatal. */
static int round_judge(struct job *j, struct part *pt, int n, enum bisect_rc *rc)
{
	enum fatal f = JF_NONE;
	char ferr[sizeof j->err], err0[sizeof j->err];
	int first_bad = 0, cache0 = 0;

	for (int i = 0; i < n; i++) {
		rc[i] = part_judge(j, &pt[i]);
		if (rc[i] == BISECT_FATAL && pt[i].h && (j->fatal == JF_INSTANCE || j->fatal == JF_STOPPED))
			rc[i] = part_again(j, &pt[i]);
		if (rc[i] == BISECT_FATAL) {
			if (f == JF_NONE) {
				f = j->fatal;
				memcpy(ferr, j->err, sizeof ferr);
			}
			j->fatal = JF_NONE;
		} else if (rc[i] == BISECT_BAD) {
			part_verdict(j, &pt[i], &first_bad, err0, &cache0);
		}
	}
	if (f != JF_NONE) {
		j->fatal = f;
		memcpy(j->err, ferr, sizeof ferr);
		return -1;
	}
	if (first_bad) {
		memcpy(j->err, err0, sizeof err0);
		j->cacheable = cache0;
	}
	return 0;
}

/* Part p's ASYNC job ended (-1: with verdict brc, j's error state moved
 * into the part and cleared for the next part). */
static void part_async_end(struct job *j, struct part *p, int r, enum bisect_rc brc, int cut0)
{
	p->running = 0;
	p->ms = mh_mono_ms() - p->t0;
	p->brc = r == 0 ? BISECT_OK : brc;
	if (r == 0)
		return;
	p->fatal = j->fatal;
	p->cacheable = j->cacheable;
	p->cut = j->call_cut;
	memcpy(p->err, j->err, sizeof p->err);
	j->fatal = JF_NONE;
	j->call_cut = cut0;
}

/* Submit part p's job. -1 out of memory (j->fatal set). */
static int part_async_start(struct job *j, struct part *p)
{
	int cut0 = j->call_cut;
	enum bisect_rc brc;

	if (part_body(j, p) < 0)
		return -1;
	j->call_len = p->len;
	p->t0 = mh_mono_ms();
	p->until = p->t0 + runner_call_timeout(j, p->len);
	p->limit = j->call_limit;
	p->started = 1;
	brc = runner_async_submit(j, p->in, p->mc, p->body, p->job_id, sizeof p->job_id, &p->out);
	if (brc == BISECT_OK)
		p->running = 1;
	else
		part_async_end(j, p, -1, brc, cut0);
	return 0;
}

/* Every started job polled in turn until none runs; a stop or a deadline
 * of the request cuts the ones still running (the models go on: their
 * instances are recycled). */
static void round_async_wait(struct job *j, struct part *pt, int n)
{
	int poll_ms = 5, running;

	do {
		running = 0;
		for (int i = 0; i < n; i++) {
			int cut0 = j->call_cut, r;
			enum bisect_rc brc = BISECT_OK;

			if (!pt[i].running)
				continue;
			j->call_len = pt[i].len;
			j->call_limit = pt[i].limit;
			r = runner_async_step(j, pt[i].in, pt[i].mc, pt[i].job_id, pt[i].until, &pt[i].out, &brc);
			if (r <= 0)
				part_async_end(j, &pt[i], r, brc, cut0);
			else
				running++;
		}
		poll_ms = runner_async_backoff(poll_ms);
	} while (running && !runner_nap(j, poll_ms));
	for (int i = 0; i < n; i++)
		if (pt[i].running) {
			int cut0 = j->call_cut;

			j->call_cut = 1;
			j->fatal = JF_ABORT;
			part_async_end(j, &pt[i], -1, BISECT_FATAL, cut0);
		}
}

/* One round: parts [0, n) at once, part 0 on the request's instance, part
 * i on helper i-1 (n <= 1 + nhelp). 0, or -1 to stop. */
static int round_run(struct job *j, const int *off, const int *len, int n, enum bisect_rc *rc)
{
	struct part pt[RUNNER_PROBE_MAX + 1];
	int ret = 0;

	memset(pt, 0, sizeof pt);
	for (int i = 0; i < n; i++) {
		pt[i].in = i ? &j->help[i - 1].in : j->inst;
		pt[i].mc = i ? j->help[i - 1].mc : j->mc;
		pt[i].h = i ? &j->help[i - 1] : NULL;
		pt[i].off = off[i];
		pt[i].len = len[i];
		if (ret == 0 && (j->m->async ? part_async_start(j, &pt[i]) : part_start(j, &pt[i])) < 0)
			ret = -1;
	}
	/* every started call is finished, even after a failure: a client is
	 * free again only then */
	if (j->m->async)
		round_async_wait(j, pt, n);
	else
		for (int i = 0; i < n; i++)
			if (pt[i].started)
				pt[i].rc = mc_finish(pt[i].mc, &pt[i].out, &pt[i].st);
	if (ret == 0)
		ret = round_judge(j, pt, n, rc);
	for (int i = 0; i < n; i++) {
		free(pt[i].body);
		buf_free(&pt[i].out);
	}
	return ret;
}

int runner_job_call_many(void *ctx, const int *off, const int *len, int n, enum bisect_rc *rc)
{
	struct job *j = ctx;
	int64_t t0 = mh_mono_ms();

	if (j->ok_t0 > 0)
		runner_call_timed(j, BISECT_OK, t0 - j->ok_t0);
	j->ok_t0 = 0;
	if (runner_tick(j)) {
		j->fatal = JF_ABORT;
		return -1;
	}
	/* the request's client is free once a prefetched call was answered */
	runner_prefetch_wait(j);
	for (int i = 0; i < n;) {
		int m = n - i < 1 + j->nhelp ? n - i : 1 + j->nhelp;
		if (round_run(j, off + i, len + i, m, rc + i) < 0)
			return -1;
		i += m;
	}
	return 0;
}
