/*
 * api_stats.c — request statistics for admins: GET /api/stats.
 *
 * Runs in: modelhub-fcgi workers. Called by: the router (ACCESS_ADMIN).
 * Owns: nothing beyond the request.
 * Shared state: reads request_stats_model_day, request_stats_reason_day,
 * request_stats_cum (rollups folded by the janitor, sql/021) with
 * request_stats_pending (kept by a trigger, sql/016) and the open requests
 * of work_request, through db/db_stats.h.
 *
 *   GET /api/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&model_id=ID[&format=csv]
 *     from/to: days (UTC) a request finished, both included; default the
 *     30 days up to today; at most 366 days. 422 invalid_date /
 *     invalid_parameter naming the field.
 *     JSON: totals (completed, failed, cancelled, inputs, cached_inputs,
 *     cache_hit_rate), open (queued, running now), by_day, by_model,
 *     by_model_day, failure_reasons, by_size (input-size buckets, each with
 *     its run-time percentiles), queue_wait_ms and run_ms percentiles.
 *     format=csv: one line per day and model (the by_model_day table).
 *
 * DESIGN: four queries, each returning about as many rows as its part of
 * the answer has lines (sql/021): the (day, model) counts, ordered, added
 * up here into by_model_day, by_day, by_model and totals in one pass; the
 * failure reasons; six rows of running totals per size bucket (the range
 * is the totals at `to` minus those before `from`, plus what is still
 * pending), which give by_size and the duration histograms; the open
 * requests. The CSV needs the first only. Duration percentiles come from
 * the summed 96-bucket histograms (bucket i >= 1 is
 * [10 ms * 2^((i-1)/4), 10 ms * 2^(i/4))): a percentile is reported as the
 * upper bound of the bucket it falls in, so it is never below the true
 * value and at most 19 % above it. The cost grows with days x models in
 * the range (the by_model_day lines), not with the number of stored
 * requests, nor, for the percentiles, with the range.
 */
#include "fcgi/api.h"
#include "db/db_model.h"
#include "db/db_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATS_MAX_DAYS 366
#define STATS_DEFAULT_DAYS 30
#define NSIZE 6

enum { OUT_COMPLETED, OUT_FAILED, OUT_CANCELLED, NOUT };
static const char *const out_names[NOUT] = {"completed", "failed", "cancelled"};
static const struct { int min, max; const char *label; } sizes[NSIZE] = {
	{1, 1, "1"},          {2, 10, "2-10"},          {11, 100, "11-100"},
	{101, 1000, "101-1000"}, {1001, 10000, "1001-10000"}, {10001, 0, ">10000"},
};

struct counts {
	int64_t out[NOUT], inputs, cached;
};

struct hists {
	int64_t wait[DB_STATS_HIST], run[DB_STATS_HIST];
};

struct model_acc {
	char id[DB_MODEL_ID_MAX + 1];
	struct counts c;
};

struct acc {
	struct counts total, size[NSIZE];
	struct hists h, size_h[NSIZE];
	struct model_acc *model;
	int nmodel, cap_model;
	json_object *by_day, *by_model_day;
	char day[16], md_day[16], md_model[DB_MODEL_ID_MAX + 1];
	struct counts day_c, md_c;
};

/* ---- parameters ---- */

static int parse_day(const char *s, time_t *out)
{
	struct tm tm = {0}, back;
	int y, m, d;
	char tail;

	if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	*out = timegm(&tm);
	gmtime_r(out, &back);
	return back.tm_year == tm.tm_year && back.tm_mon == tm.tm_mon && back.tm_mday == d ? 0 : -1;
}

static void fmt_day(time_t t, char out[16])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

static enum api_err bad_field(struct api_req *r, const char *code, const char *field,
			      const char *msg)
{
	json_object *f = json_object_new_object();

	json_object_object_add(f, field, json_object_new_string(msg));
	return api_fail_fields(r, API_UNPROCESSABLE, code, f, "%s: %s", field, msg);
}

/* from/to (filled, YYYY-MM-DD) and model ("" for all) from the query. */
static enum api_err read_params(struct api_req *r, char from[16], char to[16], const char **model)
{
	const char *f = api_query(r, "from"), *t = api_query(r, "to"), *fmt = api_query(r, "format");
	time_t tf, tt = time(NULL);

	*model = api_query(r, "model_id");
	if (!*model)
		*model = "";
	if (**model && !db_model_valid_id(*model))
		return bad_field(r, "invalid_parameter", "model_id", "is not a valid model id");
	if (fmt && *fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0)
		return bad_field(r, "invalid_parameter", "format", "must be json or csv");
	if (t && *t && parse_day(t, &tt) < 0)
		return bad_field(r, "invalid_date", "to", "must be a date YYYY-MM-DD");
	tf = tt - (time_t)(STATS_DEFAULT_DAYS - 1) * 86400;
	if (f && *f && parse_day(f, &tf) < 0)
		return bad_field(r, "invalid_date", "from", "must be a date YYYY-MM-DD");
	fmt_day(tf, from);
	fmt_day(tt, to);
	if (tf > tt)
		return bad_field(r, "invalid_date", "to", "must not be before from");
	if ((tt - tf) / 86400 + 1 > STATS_MAX_DAYS)
		return bad_field(r, "invalid_date", "from", "the range is at most 366 days");
	return API_OK;
}

/* ---- adding rows up ---- */

/* "{1,0,...}" times sign added into h[DB_STATS_HIST] ("" adds nothing). */
static void add_hist(int64_t *h, const char *s, int sign)
{
	char *end;

	if (*s == '{')
		s++;
	for (int i = 0; i < DB_STATS_HIST && *s && *s != '}'; i++) {
		h[i] += sign * strtoll(s, &end, 10);
		s = *end == ',' ? end + 1 : end;
	}
}

/* Columns col.. col+4 of a row (completed, failed, cancelled, inputs,
 * cached; "" counts 0) times sign into c. */
static void counts_read(struct counts *c, PGresult *res, int i, int col, int sign)
{
	for (int o = 0; o < NOUT; o++)
		c->out[o] += sign * atoll(PQgetvalue(res, i, col + o));
	c->inputs += sign * atoll(PQgetvalue(res, i, col + NOUT));
	c->cached += sign * atoll(PQgetvalue(res, i, col + NOUT + 1));
}

static void counts_sum(struct counts *c, const struct counts *x)
{
	for (int o = 0; o < NOUT; o++)
		c->out[o] += x->out[o];
	c->inputs += x->inputs;
	c->cached += x->cached;
}

static json_object *counts_json(const struct counts *c)
{
	json_object *o = json_object_new_object();

	for (int i = 0; i < NOUT; i++)
		json_object_object_add(o, out_names[i], json_object_new_int64(c->out[i]));
	json_object_object_add(o, "requests",
			       json_object_new_int64(c->out[0] + c->out[1] + c->out[2]));
	json_object_object_add(o, "inputs", json_object_new_int64(c->inputs));
	json_object_object_add(o, "cached_inputs", json_object_new_int64(c->cached));
	json_object_object_add(o, "cache_hit_rate",
			       c->inputs ? json_object_new_double(
						   round((double)c->cached / (double)c->inputs * 1e4) / 1e4)
					 : NULL);
	return o;
}

static struct model_acc *model_slot(struct acc *a, const char *id)
{
	for (int i = 0; i < a->nmodel; i++)
		if (strcmp(a->model[i].id, id) == 0)
			return &a->model[i];
	if (a->nmodel == a->cap_model) {
		int cap = a->cap_model ? a->cap_model * 2 : 16;
		struct model_acc *m = realloc(a->model, (size_t)cap * sizeof *m);
		if (!m)
			return NULL;
		a->model = m;
		a->cap_model = cap;
	}
	memset(&a->model[a->nmodel], 0, sizeof a->model[0]);
	snprintf(a->model[a->nmodel].id, sizeof a->model[0].id, "%s", id);
	return &a->model[a->nmodel++];
}

/* Flush the running day and (day, model) groups when the key changes
 * (rows come ordered by day, model); day NULL flushes both at the end. */
static void flush_groups(struct acc *a, const char *day, const char *model)
{
	json_object *o;

	if (a->md_day[0] && (!day || strcmp(day, a->md_day) || strcmp(model, a->md_model))) {
		o = counts_json(&a->md_c);
		json_object_object_add(o, "day", json_object_new_string(a->md_day));
		json_object_object_add(o, "model_id", json_object_new_string(a->md_model));
		json_object_array_add(a->by_model_day, o);
		memset(&a->md_c, 0, sizeof a->md_c);
		a->md_day[0] = 0;
	}
	if (a->day[0] && (!day || strcmp(day, a->day))) {
		o = counts_json(&a->day_c);
		json_object_object_add(o, "day", json_object_new_string(a->day));
		json_object_array_add(a->by_day, o);
		memset(&a->day_c, 0, sizeof a->day_c);
		a->day[0] = 0;
	}
	if (day && !a->day[0])
		snprintf(a->day, sizeof a->day, "%s", day);
	if (day && !a->md_day[0]) {
		snprintf(a->md_day, sizeof a->md_day, "%s", day);
		snprintf(a->md_model, sizeof a->md_model, "%s", model);
	}
}

/* One row of db_stats_model_days. */
static int add_day_row(struct acc *a, PGresult *res, int i)
{
	const char *day = PQgetvalue(res, i, 0), *model = PQgetvalue(res, i, 1);
	struct model_acc *m = model_slot(a, model);
	struct counts c = {0};

	if (!m)
		return -1;
	flush_groups(a, day, model);
	counts_read(&c, res, i, 2, 1);
	counts_sum(&a->total, &c);
	counts_sum(&m->c, &c);
	counts_sum(&a->day_c, &c);
	counts_sum(&a->md_c, &c);
	return 0;
}

/* The six rows of db_stats_sizes: hi - lo + pending per size bucket. */
static void add_sizes(struct acc *a, PGresult *res)
{
	static const int sign[3] = {1, -1, 1};

	for (int i = 0; i < PQntuples(res) && i < NSIZE; i++)
		for (int g = 0; g < 3; g++) {
			int col = 1 + g * 7;

			counts_read(&a->size[i], res, i, col, sign[g]);
			add_hist(a->size_h[i].wait, PQgetvalue(res, i, col + 5), sign[g]);
			add_hist(a->size_h[i].run, PQgetvalue(res, i, col + 6), sign[g]);
		}
}

/* ---- percentiles ---- */

static double bucket_upper_ms(int i)
{
	return 10.0 * pow(2.0, i / 4.0);
}

/* {"samples", "p50", "p90", "p95", "p99"} in ms (null without samples). */
static json_object *percentiles(const int64_t *h)
{
	static const int ps[] = {50, 90, 95, 99};
	static const char *const names[] = {"p50", "p90", "p95", "p99"};
	json_object *o = json_object_new_object();
	int64_t total = 0;

	for (int i = 0; i < DB_STATS_HIST; i++)
		total += h[i];
	json_object_object_add(o, "samples", json_object_new_int64(total));
	for (int k = 0; k < 4; k++) {
		int64_t rank = (total * ps[k] + 99) / 100, seen = 0;
		int i = 0;

		if (total == 0) {
			json_object_object_add(o, names[k], NULL);
			continue;
		}
		for (; i < DB_STATS_HIST - 1; i++) {
			seen += h[i];
			if (seen >= rank)
				break;
		}
		json_object_object_add(o, names[k],
				       json_object_new_int64((int64_t)ceil(bucket_upper_ms(i))));
	}
	return o;
}

/* ---- answers ---- */

static json_object *size_json(const struct acc *a)
{
	json_object *arr = json_object_new_array();

	for (int i = 0; i < NSIZE; i++) {
		json_object *o = counts_json(&a->size[i]);

		json_object_object_add(o, "bucket", json_object_new_string(sizes[i].label));
		json_object_object_add(o, "min_inputs", json_object_new_int(sizes[i].min));
		json_object_object_add(o, "max_inputs",
				       sizes[i].max ? json_object_new_int(sizes[i].max) : NULL);
		json_object_object_add(o, "queue_wait_ms", percentiles(a->size_h[i].wait));
		json_object_object_add(o, "run_ms", percentiles(a->size_h[i].run));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *models_json(const struct acc *a)
{
	json_object *arr = json_object_new_array();

	for (int i = 0; i < a->nmodel; i++) {
		json_object *o = counts_json(&a->model[i].c);

		json_object_object_add(o, "model_id", json_object_new_string(a->model[i].id));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *reasons_json(PGresult *res)
{
	json_object *arr = json_object_new_array();

	for (int i = 0; i < PQntuples(res); i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "reason", json_object_new_string(PQgetvalue(res, i, 0)));
		json_object_object_add(o, "requests",
				       json_object_new_int64(atoll(PQgetvalue(res, i, 1))));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *open_json(PGresult *open)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "queued", json_object_new_int64(atoll(PQgetvalue(open, 0, 0))));
	json_object_object_add(o, "running", json_object_new_int64(atoll(PQgetvalue(open, 0, 1))));
	return o;
}

static json_object *answer_json(struct acc *a, const char *from, const char *to,
				const char *model, PGresult *reasons, PGresult *open)
{
	json_object *o = json_object_new_object();

	for (int i = 0; i < NSIZE; i++)
		for (int k = 0; k < DB_STATS_HIST; k++) {
			a->h.wait[k] += a->size_h[i].wait[k];
			a->h.run[k] += a->size_h[i].run[k];
		}
	json_object_object_add(o, "from", json_object_new_string(from));
	json_object_object_add(o, "to", json_object_new_string(to));
	json_object_object_add(o, "model_id", *model ? json_object_new_string(model) : NULL);
	json_object_object_add(o, "totals", counts_json(&a->total));
	json_object_object_add(o, "open", open_json(open));
	json_object_object_add(o, "queue_wait_ms", percentiles(a->h.wait));
	json_object_object_add(o, "run_ms", percentiles(a->h.run));
	json_object_object_add(o, "failure_reasons", reasons_json(reasons));
	json_object_object_add(o, "by_size", size_json(a));
	json_object_object_add(o, "by_model", models_json(a));
	json_object_object_add(o, "by_day", json_object_get(a->by_day));
	json_object_object_add(o, "by_model_day", json_object_get(a->by_model_day));
	return o;
}

static enum api_err send_csv(struct api_req *r, const struct acc *a, const char *from,
			     const char *to)
{
	struct buf b = {0};
	size_t n = json_object_array_length(a->by_model_day);
	enum api_err e;

	buf_adds(&b, "day,model_id,completed,failed,cancelled,inputs,cached_inputs\n");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(a->by_model_day, i);

		buf_printf(&b, "%s,", jx_str(o, "day"));
		buf_add_csv(&b, jx_str(o, "model_id"));
		buf_printf(&b, ",%.0f,%.0f,%.0f,%.0f,%.0f\n", jx_num(o, "completed", 0),
			   jx_num(o, "failed", 0), jx_num(o, "cancelled", 0), jx_num(o, "inputs", 0),
			   jx_num(o, "cached_inputs", 0));
	}
	api_header(r, "Content-Disposition", "attachment; filename=\"modelhub-stats-%s-%s.csv\"",
		   from, to);
	e = api_text(r, 200, "text/csv; charset=utf-8", buf_cstr(&b), b.len);
	buf_free(&b);
	return e;
}

/* The by_model_day rows into a (and from them by_day, by_model, totals). */
static int read_days(struct acc *a, PGresult *days)
{
	a->by_day = json_object_new_array();
	a->by_model_day = json_object_new_array();
	for (int i = 0; i < PQntuples(days); i++)
		if (add_day_row(a, days, i) < 0)
			return -1;
	flush_groups(a, NULL, NULL);
	return 0;
}

static enum api_err stats_get(struct api_req *r)
{
	char from[16], to[16];
	const char *model, *fmt = api_query(r, "format");
	int csv = fmt && strcmp(fmt, "csv") == 0;
	struct acc a = {0};
	PGresult *days = NULL, *reasons = NULL, *sz = NULL, *open = NULL;
	enum api_err e = read_params(r, from, to, &model);

	if (e != API_OK)
		return e;
	/* the CSV is the by_model_day table alone */
	days = db_stats_model_days(r->db, from, to, model);
	if (days && !csv) {
		reasons = db_stats_reasons(r->db, from, to, model);
		sz = reasons ? db_stats_sizes(r->db, from, to, model) : NULL;
		open = sz ? db_stats_open(r->db, model) : NULL;
	}
	if (!days || (!csv && (!open || PQntuples(open) != 1))) {
		e = api_db_fail(r);
		goto out;
	}
	if (read_days(&a, days) < 0) {
		e = api_fail(r, API_INTERNAL, "internal", "out of memory");
		goto out;
	}
	if (csv) {
		e = send_csv(r, &a, from, to);
		goto out;
	}
	add_sizes(&a, sz);
	e = api_json(r, 200, answer_json(&a, from, to, model, reasons, open));
out:
	PQclear(days);
	PQclear(reasons);
	PQclear(sz);
	PQclear(open);
	json_object_put(a.by_day);
	json_object_put(a.by_model_day);
	free(a.model);
	return e;
}

const struct api_route api_stats_routes[] = {
	{"GET", "/api/stats", ACCESS_ADMIN, stats_get},
	{0},
};
