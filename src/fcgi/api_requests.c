/*
 * api_requests.c — the work request API: submit (JSON, CSV, plain text,
 * multipart upload), the owner's list and detail, result download (CSV or
 * JSON), cancel, and the admin list of all requests.
 *
 * Runs in: modelhub-fcgi workers. Called by: the router (api_requests_routes).
 * Owns: nothing beyond one HTTP request; parsed inputs (struct csvin) and
 * PGresults are freed before each handler returns.
 * Shared state: work_request* rows through db_request.c; NOTIFY work_queued
 * wakes the runners (modelhubd) that do the work.
 *
 * DESIGN: every submit path funnels into submit_common(): the body is
 * turned into a list of trimmed inputs by csvin.c (one rule set for all
 * formats; has_header defaults to false everywhere, the header line is
 * stored apart and never becomes an input), the model is checked (exists,
 * enabled), and db_request_submit() inserts everything in one transaction.
 * Results are read page by page (RESULT_PAGE inputs and their result rows, two
 * ordered range scans merged here; db_request.h says why). A body that
 * stays under RESULT_STREAM_AT goes out in one piece with a Content-Length
 * (the usual case: several small writes through nginx would meet Nagle and
 * delayed ACKs, measured at +40 ms per download); a larger one is streamed
 * to FastCGI page by page, so it never sits in memory whole. Errors found
 * before streaming starts still get a proper status.
 * Column order of CSV results: the request's metadata.columns (if a runner
 * recorded the order the model answered with), else the model's
 * details.columns, else the keys of the first non-null record; keys of the
 * first record missing from that list are appended. Numbers are printed in
 * the shortest form that reads back as the same double; JSON results carry
 * the records exactly as stored (full precision). A multi-column CSV's
 * other cells (work_request_input.key/.extra, names in metadata
 * input_columns) come first: key,input,<extra>,<outputs> (Ersilia CLI shape).
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db_request.h"
#include "fcgi/api.h"
#include "fcgi/api_requests.h"
#include "fcgi/csvin.h"
#include "lib/cachekey.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/utf8.h"

#define REQUESTS_MAX_INPUT_LEN 4096   /* bytes per input (DESIGN.md §5) */
#define REQUESTS_LIST_DEFAULT 50
#define REQUESTS_LIST_MAX 500
#define RESULT_PAGE 1000              /* rows per results query */
#define RESULT_STREAM_AT (256 * 1024) /* bytes buffered before streaming */
#define IDEMPOTENCY_KEY_MAX 255
#define MULTIPART_MAX_PARTS 16

/* ---- small helpers ---- */

/* Request id from the path: 1..18 digits, else 0 (reads as not found). */
static int64_t path_id(struct api_req *r)
{
	const char *s = r->nparams > 0 ? r->params[0] : NULL;
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 18)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return strtoll(s, NULL, 10);
}

static void owner_of(const struct api_req *r, struct db_owner *o)
{
	o->user_id = r->auth.is_anon ? 0 : r->auth.user_id;
	o->anon_session_id = r->auth.is_anon ? r->auth.session_id : 0;
}

/* Media type of a Content-Type, compared without parameters. */
static int media_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, type, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* "true"/"false"/"1"/"0" → 1/0; -1 when malformed. */
static int parse_bool(const char *s, size_t n)
{
	if ((n == 4 && strncasecmp(s, "true", 4) == 0) || (n == 1 && s[0] == '1'))
		return 1;
	if ((n == 5 && strncasecmp(s, "false", 5) == 0) || (n == 1 && s[0] == '0'))
		return 0;
	return -1;
}

/* 422 with code and fields {field: msg}. */
static enum api_err fail_field(struct api_req *r, const char *code, const char *field,
			       const char *msg)
{
	json_object *f = json_object_new_object();

	json_object_object_add(f, field, json_object_new_string(msg));
	return api_fail_fields(r, API_UNPROCESSABLE, code, f, "%s: %s", field, msg);
}

/* YYYY-MM-DD with a real calendar date. */
static int valid_date(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return 0;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return 0;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 0;
	return 1;
}

static int valid_status(const char *s)
{
	static const char *const st[] = {"QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"};

	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (strcmp(s, st[i]) == 0)
			return 1;
	return 0;
}

/* A possible model id (the model table's CHECK): [a-z0-9][a-z0-9_.-]{0,63}.
 * Anything else cannot name a model, and may not even be UTF-8. */
static int valid_model_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '_' || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

/* Positive decimal integer without sign, at most 18 digits; -1 if not. */
static int64_t parse_pos(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	return strtoll(s, NULL, 10);
}

/* ---- request representation ---- */

/* input_column, key_column, extra_columns from the stored
 * metadata->'input_columns' (all null for a one-column request). */
static void add_input_columns(json_object *o, const PGresult *res, int row, int col)
{
	json_object *ic = PQgetisnull(res, row, col) ? NULL
			  : json_tokener_parse(PQgetvalue(res, row, col));
	json_object *v;

	json_object_object_add(o, "input_column",
			       ic && json_object_object_get_ex(ic, "input", &v) ? json_object_get(v)
									  : NULL);
	json_object_object_add(o, "key_column",
			       ic && json_object_object_get_ex(ic, "key", &v) ? json_object_get(v)
									: NULL);
	json_object_object_add(o, "extra_columns",
			       ic && json_object_object_get_ex(ic, "extra", &v) ? json_object_get(v)
									  : NULL);
	json_object_put(ic);
}

static json_object *request_json(const PGresult *res, int row)
{
	json_object *o = json_object_new_object(), *pr, *tm;

	jx_add_pg_int(o, "id", res, row, DBR_ID);
	jx_add_pg_str(o, "model_id", res, row, DBR_MODEL_ID);
	jx_add_pg_str(o, "status", res, row, DBR_STATUS);
	jx_add_pg_str(o, "failure_reason", res, row, DBR_FAILURE_REASON);
	jx_add_pg_str(o, "failure_detail", res, row, DBR_FAILURE_DETAIL);
	pr = json_object_new_object();
	jx_add_pg_int(pr, "done", res, row, DBR_DONE_COUNT);
	jx_add_pg_int(pr, "total", res, row, DBR_INPUT_COUNT);
	jx_add_pg_int(pr, "cached", res, row, DBR_CACHED_COUNT);
	json_object_object_add(o, "progress", pr);
	jx_add_pg_int(o, "error_count", res, row, DBR_ERROR_COUNT);
	jx_add_pg_int(o, "attempts", res, row, DBR_ATTEMPTS);
	jx_add_pg_int(o, "model_calls", res, row, DBR_MODEL_CALLS);
	jx_add_pg_int(o, "extra_calls", res, row, DBR_EXTRA_CALLS);
	jx_add_pg_int(o, "isolation_ms", res, row, DBR_ISOLATION_MS);
	jx_add_pg_int(o, "screened_count", res, row, DBR_SCREENED_COUNT);
	jx_add_pg_int(o, "known_bad_count", res, row, DBR_KNOWN_BAD_COUNT);
	jx_add_pg_bool(o, "has_header", res, row, DBR_HAS_HEADER);
	jx_add_pg_str(o, "header", res, row, DBR_HEADER);
	add_input_columns(o, res, row, DBR_INPUT_COLUMNS);
	jx_add_pg_str(o, "model_version", res, row, DBR_MODEL_VERSION);
	jx_add_pg_bool(o, "cache_opt_in", res, row, DBR_CACHE_OPT_IN);
	jx_add_pg_str(o, "created_at", res, row, DBR_CREATED_AT);
	jx_add_pg_str(o, "started_at", res, row, DBR_STARTED_AT);
	jx_add_pg_str(o, "finished_at", res, row, DBR_FINISHED_AT);
	tm = json_object_new_object();
	jx_add_pg_str(tm, "queued", res, row, DBR_CREATED_AT);
	jx_add_pg_str(tm, "started", res, row, DBR_STARTED_AT);
	jx_add_pg_str(tm, "finished", res, row, DBR_FINISHED_AT);
	json_object_object_add(o, "timings", tm);
	return o;
}

/* Answer with the owner's view of request id (res: its row if the caller
 * has it, consumed, else read here); with a Location header when it answers
 * a submit. */
static enum api_err reply_request_row(struct api_req *r, int64_t id, PGresult *res, int status,
				      int location)
{
	struct db_owner o;
	json_object *obj;

	owner_of(r, &o);
	if (!res)
		res = db_request_get(r->db, id, &o);
	if (!res)
		return api_db_fail(r);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	}
	obj = request_json(res, 0);
	PQclear(res);
	if (location)
		api_header(r, "Location", "/api/requests/%" PRId64, id);
	return api_json(r, status, obj);
}

static enum api_err reply_request(struct api_req *r, int64_t id, int status, int location)
{
	return reply_request_row(r, id, NULL, status, location);
}

/* ---- submit ---- */

struct submit {
	const char *model_id;   /* from the path or the JSON body */
	int has_header;
	int cache_opt_in;
	const char *source;     /* json, csv, text, multipart */
	const char *filename;   /* multipart file name (owned by r) */
	int dry_run;            /* answer what would be stored, store nothing */
	struct csvin in;
	int max_chars;          /* the model's max_input_chars */
};

/* 422 for a CSV whose input column is unknown or cannot be told: the
 * message names the columns and asks for column=. */
static enum api_err column_fail(struct api_req *r, const struct csvin *c)
{
	json_object *f = json_object_new_object(), *cols = json_object_new_array();
	struct buf names = BUF_INIT;
	const char *what = c->err == CSVIN_BAD_COLUMN ? "no column matches column="
			 : "several columns and none is clearly the input";

	for (size_t k = 0; k < c->ncols; k++) {
		json_object_array_add(cols, json_object_new_string(c->cols[k]));
		buf_printf(&names, "%s%s", k ? ", " : "", c->cols[k]);
	}
	json_object_object_add(f, "column", json_object_new_string(
		"give column= as a column name or a 1-based index"));
	json_object_object_add(f, "columns", cols);
	enum api_err e = api_fail_fields(
		r, API_UNPROCESSABLE,
		c->err == CSVIN_BAD_COLUMN ? "unknown_column" : "ambiguous_column", f,
		"%s; the columns are: %s; choose one with column= (name or 1-based index)",
		what, names.data ? names.data : "");

	buf_free(&names);
	return e;
}

static enum api_err csvin_fail(struct api_req *r, const struct csvin *c, size_t max_inputs)
{
	json_object *f;
	char msg[200];
	const char *code;

	switch (c->err) {
	case CSVIN_NO_INPUTS:
		return fail_field(r, "no_inputs", "inputs",
				  "no inputs: give at least one non-empty line");
	case CSVIN_TOO_MANY:
		snprintf(msg, sizeof(msg), "more than %zu inputs (the limit per request)",
			 max_inputs);
		code = "too_many_inputs";
		break;
	case CSVIN_TOO_LONG:
		snprintf(msg, sizeof(msg), "line %zu is longer than %d bytes", c->err_line,
			 REQUESTS_MAX_INPUT_LEN);
		code = "input_too_long";
		break;
	case CSVIN_BAD_ENCODING:
		snprintf(msg, sizeof(msg), "line %zu is not valid UTF-8 text", c->err_line);
		code = "invalid_encoding";
		break;
	case CSVIN_BAD_QUOTE:
		snprintf(msg, sizeof(msg), "line %zu opens a quoted CSV field that never closes",
			 c->err_line);
		code = "invalid_csv";
		break;
	case CSVIN_BAD_COLUMN:
	case CSVIN_AMBIGUOUS_COLUMN:
		return column_fail(r, c);
	default:
		return api_fail(r, API_INTERNAL, "internal", "csvin: %s", csvin_strerror(c->err));
	}
	f = json_object_new_object();
	json_object_object_add(f, "inputs", json_object_new_string(msg));
	if (c->err_line)
		json_object_object_add(f, "line", json_object_new_int64((int64_t)c->err_line));
	return api_fail_fields(r, API_UNPROCESSABLE, code, f, "%s", msg);
}

/* Boolean option from the query string (non-JSON bodies). */
static enum api_err query_bool(struct api_req *r, const char *name, int *out)
{
	const char *v = api_query(r, name);
	int b;

	if (!v)
		return API_OK;
	b = parse_bool(v, strlen(v));
	if (b < 0)
		return fail_field(r, "invalid_parameter", name, "must be true or false");
	*out = b;
	return API_OK;
}

static enum api_err body_bool(struct api_req *r, json_object *body, const char *name, int *out)
{
	json_object *v;

	if (!json_object_object_get_ex(body, name, &v) || json_object_is_type(v, json_type_null))
		return API_OK;
	if (!json_object_is_type(v, json_type_boolean))
		return fail_field(r, "invalid_parameter", name, "must be true or false");
	*out = json_object_get_boolean(v);
	return API_OK;
}

/* The JSON body's "column" (a name, or a 1-based index as a number). */
static enum api_err json_column(struct api_req *r, json_object *body, struct csvin_opts *op)
{
	json_object *v;

	if (!json_object_object_get_ex(body, "column", &v) || json_object_is_type(v, json_type_null))
		return API_OK;
	if (json_object_is_type(v, json_type_int)) {
		char t[24];

		snprintf(t, sizeof(t), "%" PRId64, json_object_get_int64(v));
		op->column = api_own(r, strdup(t));
		return API_OK;
	}
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
		return fail_field(r, "validation_failed", "column",
				  "must be a column name or a 1-based index");
	op->column = json_object_get_string(v);
	return API_OK;
}

/* With "column", the JSON inputs are the lines of a CSV file. */
static enum api_err json_csv_lines(struct api_req *r, struct submit *s, json_object *inputs,
				   const struct csvin_opts *op)
{
	struct buf b = BUF_INIT;
	size_t n = json_object_array_length(inputs);

	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(inputs, i);
		char field[40];

		if (!json_object_is_type(v, json_type_string)) {
			buf_free(&b);
			snprintf(field, sizeof(field), "inputs[%zu]", i);
			return fail_field(r, "invalid_input", field, "must be a string");
		}
		buf_adds(&b, json_object_get_string(v));
		buf_addc(&b, '\n');
	}
	if (b.oom) {
		buf_free(&b);
		return api_fail(r, API_INTERNAL, "internal", "out of memory");
	}
	csvin_parse(&s->in, CSVIN_CSV, b.data ? b.data : "", b.len, op);
	buf_free(&b);
	return API_OK;
}

/* JSON body: {model_id, inputs, has_header, cache_opt_in, column}. */
static enum api_err parse_json_body(struct api_req *r, struct submit *s,
				    const struct csvin_opts *op_in, json_object **bodyp)
{
	json_object *body, *inputs;
	struct csvin_opts op = *op_in;
	enum api_err e;
	size_t n;

	e = api_body_json(r, &body);
	if (e != API_OK)
		return e;
	*bodyp = body;
	if (jx_has(body, "model_id")) {
		const char *m = jx_str(body, "model_id");

		if (!m)
			return fail_field(r, "validation_failed", "model_id", "must be a string");
		if (s->model_id && strcmp(s->model_id, m) != 0)
			return fail_field(r, "validation_failed", "model_id",
					  "does not match the model in the path");
		s->model_id = m;
	}
	if (!s->model_id)
		return fail_field(r, "validation_failed", "model_id", "is required");
	if ((e = body_bool(r, body, "has_header", &s->has_header)) != API_OK ||
	    (e = body_bool(r, body, "cache_opt_in", &s->cache_opt_in)) != API_OK ||
	    (e = body_bool(r, body, "dry_run", &s->dry_run)) != API_OK)
		return e;
	if (!json_object_object_get_ex(body, "inputs", &inputs) ||
	    !json_object_is_type(inputs, json_type_array))
		return fail_field(r, "validation_failed", "inputs",
				  "must be an array of strings");
	op.has_header = s->has_header;
	if ((e = json_column(r, body, &op)) != API_OK)
		return e;
	if (op.column)
		return json_csv_lines(r, s, inputs, &op);
	n = json_object_array_length(inputs);
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(inputs, i);
		char field[40];

		if (!json_object_is_type(v, json_type_string)) {
			snprintf(field, sizeof(field), "inputs[%zu]", i);
			return fail_field(r, "invalid_input", field, "must be a string");
		}
		if (csvin_add(&s->in, json_object_get_string(v),
			      (size_t)json_object_get_string_len(v), i + 1, &op) < 0)
			break;
	}
	return API_OK;
}

/* One part of a multipart body, as a NUL-terminated copy owned by r. */
static const char *part_str(struct api_req *r, const char *p, size_t n)
{
	return api_own(r, strndup(p, n));
}

static enum api_err parse_multipart(struct api_req *r, struct submit *s,
				    const struct csvin_opts *op_in)
{
	struct csvin_part parts[MULTIPART_MAX_PARTS];
	const struct csvin_part *file = NULL;
	struct csvin_opts op = *op_in;
	char boundary[80];
	int n;

	if (csvin_boundary(r->content_type, boundary, sizeof(boundary)) < 0)
		return api_fail(r, API_BAD_REQUEST, "bad_multipart",
				"multipart/form-data needs a boundary parameter");
	n = csvin_multipart(r->body ? r->body : "", r->body_len, boundary, parts,
			    MULTIPART_MAX_PARTS);
	if (n < 0)
		return api_fail(r, API_BAD_REQUEST, "bad_multipart",
				"the multipart/form-data body is malformed");
	/* Form fields are a fallback for the query string (browser forms). */
	for (int i = 0; i < n; i++) {
		const struct csvin_part *p = &parts[i];
		const char *name = p->name ? part_str(r, p->name, p->name_len) : "";

		if (!name)
			return api_fail(r, API_INTERNAL, "internal", "out of memory");
		if (p->filename) {
			if (!file)
				file = p;
			continue;
		}
		if (strcmp(name, "column") == 0 && !api_query(r, "column") && p->len > 0) {
			op.column = part_str(r, p->data, p->len);
			continue;
		}
		if ((strcmp(name, "has_header") == 0 && !api_query(r, "has_header")) ||
		    (strcmp(name, "cache_opt_in") == 0 && !api_query(r, "cache_opt_in")) ||
		    (strcmp(name, "dry_run") == 0 && !api_query(r, "dry_run"))) {
			int b = parse_bool(p->data, p->len);

			if (b < 0)
				return fail_field(r, "invalid_parameter", name,
						  "must be true or false");
			if (name[0] == 'h')
				s->has_header = b;
			else if (name[0] == 'c')
				s->cache_opt_in = b;
			else
				s->dry_run = b;
		}
	}
	if (!file)
		return api_fail(r, API_UNPROCESSABLE, "no_file",
				"the multipart body has no file part (use -F file=@molecules.csv)");
	s->filename = part_str(r, file->filename, file->filename_len);
	op.has_header = s->has_header;
	/* Errors land in s->in and are reported after the model checks. */
	csvin_parse(&s->in, file->type && media_is(part_str(r, file->type, file->type_len),
						   "text/plain") ? CSVIN_PLAIN : CSVIN_CSV,
		    file->data, file->len, &op);
	return API_OK;
}

/* Add a client-supplied text (user agent, file name) to the metadata:
 * at most 256 bytes cut on a character boundary, and only if it is valid
 * UTF-8 (jsonb would refuse the whole submit otherwise). */
static void meta_add_text(json_object *m, const char *key, const char *v)
{
	size_t n;

	if (!v)
		return;
	n = strnlen(v, 256);
	while (n > 0 && v[n] && ((unsigned char)v[n] & 0xC0) == 0x80)
		n--;
	if (utf8_valid_text(v, n))
		json_object_object_add(m, key, json_object_new_string_len(v, (int)n));
}

/* Is column k of a multi-column CSV one of the "other" columns (neither
 * the input nor the key)? */
static int is_extra_col(const struct csvin *c, size_t k)
{
	return (int)k != c->col && (int)k != c->key;
}

/* {"input": name, "key": name|null, "extra": [names]} of a multi-column
 * CSV (sql/010), or NULL for one column. */
static json_object *input_columns_json(const struct csvin *c)
{
	json_object *o, *extra;

	if (c->ncols == 0 || !c->rows)
		return NULL;
	o = json_object_new_object();
	extra = json_object_new_array();
	json_object_object_add(o, "input", json_object_new_string(c->cols[c->col]));
	json_object_object_add(o, "key", c->key >= 0 ? json_object_new_string(c->cols[c->key])
						      : NULL);
	for (size_t k = 0; k < c->ncols; k++)
		if (is_extra_col(c, k))
			json_object_array_add(extra, json_object_new_string(c->cols[k]));
	json_object_object_add(o, "extra", extra);
	return o;
}

static json_object *submit_metadata(struct api_req *r, const struct submit *s)
{
	json_object *m = json_object_new_object(), *ic = input_columns_json(&s->in);

	json_object_object_add(m, "source", json_object_new_string(s->source));
	meta_add_text(m, "user_agent", api_env(r, "HTTP_USER_AGENT"));
	meta_add_text(m, "filename", s->filename);
	if (ic)
		json_object_object_add(m, "input_columns", ic);
	return m;
}

/* Per-input rider columns of a multi-column CSV (sql/010): keys[i] points
 * into c->rows (not owned; NULL without a key column), extras[i] is a
 * malloc'd JSON array text (NULL when no other column). 0, or -1 on out
 * of memory (free_riders frees what was built). */
struct riders {
	char **keys, **extras;
	size_t n;
};

static void free_riders(struct riders *rd)
{
	for (size_t i = 0; rd->extras && i < rd->n; i++)
		free(rd->extras[i]);
	free(rd->extras);
	free(rd->keys);
	rd->keys = rd->extras = NULL;
}

static int make_riders(const struct csvin *c, struct riders *rd)
{
	size_t nextra = 0;

	rd->keys = rd->extras = NULL;
	rd->n = c->n;
	if (c->ncols == 0 || !c->rows)
		return 0;
	for (size_t k = 0; k < c->ncols; k++)
		nextra += is_extra_col(c, k);
	if (c->key >= 0 && !(rd->keys = calloc(c->n ? c->n : 1, sizeof(*rd->keys))))
		return -1;
	if (nextra && !(rd->extras = calloc(c->n ? c->n : 1, sizeof(*rd->extras))))
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		char *v = c->rows[i];
		json_object *arr = nextra ? json_object_new_array() : NULL;

		for (size_t k = 0; k < c->ncols; k++, v += strlen(v) + 1) {
			if ((int)k == c->key)
				rd->keys[i] = v;
			else if (arr && (int)k != c->col)
				json_object_array_add(arr, json_object_new_string(v));
		}
		if (arr) {
			rd->extras[i] = strdup(json_object_to_json_string_ext(
				arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(arr);
			if (!rd->extras[i])
				return -1;
		}
	}
	return 0;
}

/* Cache keys (cachekey.h: SHA-256 hex of the trimmed input) for every
 * input; NULL on failure. Freed with free_keys(). */
static char **make_keys(const struct csvin *in)
{
	char **k = calloc(in->n ? in->n : 1, sizeof(*k));

	if (!k)
		return NULL;
	for (size_t i = 0; i < in->n; i++) {
		k[i] = malloc(CACHEKEY_HEX_LEN + 1);
		if (!k[i] || cachekey_hex(in->inputs[i], k[i]) < 0) {
			for (size_t j = 0; j <= i; j++)
				free(k[j]);
			free(k);
			return NULL;
		}
	}
	return k;
}

static void free_keys(char **k, size_t n)
{
	if (!k)
		return;
	for (size_t i = 0; i < n; i++)
		free(k[i]);
	free(k);
}

/* The input format from the Content-Type: API_OK or the 415. */
static enum api_err submit_source(struct api_req *r, struct submit *s)
{
	const char *ct = r->content_type;

	if (media_is(ct, "application/json"))
		s->source = "json";
	else if (media_is(ct, "text/csv") || media_is(ct, "application/csv"))
		s->source = "csv";
	else if (media_is(ct, "text/plain"))
		s->source = "text";
	else if (media_is(ct, "multipart/form-data"))
		s->source = "multipart";
	else
		return api_fail(r, API_UNSUPPORTED_MEDIA, "unsupported_media_type",
				"send application/json, text/csv, text/plain or "
				"multipart/form-data");
	return API_OK;
}

/* Options and inputs from the query and the body (nothing touches the
 * database yet, so 415/400 come first). */
static enum api_err submit_parse(struct api_req *r, struct submit *s, struct csvin_opts *op,
				 json_object **body)
{
	enum api_err e = submit_source(r, s);

	if (e != API_OK)
		return e;
	/* Query options apply to every format; JSON body fields override. */
	if ((e = query_bool(r, "has_header", &s->has_header)) != API_OK ||
	    (e = query_bool(r, "cache_opt_in", &s->cache_opt_in)) != API_OK ||
	    (e = query_bool(r, "dry_run", &s->dry_run)) != API_OK)
		return e;
	op->column = api_query(r, "column");
	if (op->column && !*op->column)
		op->column = NULL;
	if (strcmp(s->source, "json") == 0)
		return parse_json_body(r, s, op, body);
	if (!s->model_id)
		s->model_id = api_query(r, "model_id");
	if (!s->model_id)
		return fail_field(r, "validation_failed", "model_id",
				  "is required (POST /api/models/{id}/requests)");
	if (strcmp(s->source, "multipart") == 0)
		return parse_multipart(r, s, op);
	op->has_header = s->has_header;
	csvin_parse(&s->in, s->source[0] == 'c' ? CSVIN_CSV : CSVIN_PLAIN, r->body ? r->body : "",
		    r->body_len, op);
	return API_OK;
}

/* Characters (code points) of a valid UTF-8 string. */
static size_t utf8_chars(const char *p)
{
	size_t n = 0;

	for (; *p; p++)
		n += ((unsigned char)*p & 0xc0) != 0x80;
	return n;
}

/* 422 input_too_long naming the model's limit for the first input over
 * max_input_chars (parsing cost grows faster than the length: issue 17). */
static enum api_err input_chars_check(struct api_req *r, const struct submit *s)
{
	json_object *f;
	size_t n;

	if (s->max_chars <= 0)
		return API_OK;
	for (size_t i = 0; i < s->in.n; i++) {
		if (strlen(s->in.inputs[i]) <= (size_t)s->max_chars ||
		    (n = utf8_chars(s->in.inputs[i])) <= (size_t)s->max_chars)
			continue;
		f = json_object_new_object();
		json_object_object_add(f, "inputs", json_object_new_string(
			"an input is longer than the model's max_input_chars"));
		json_object_object_add(f, "input", json_object_new_int64((int64_t)i + 1));
		json_object_object_add(f, "length", json_object_new_int64((int64_t)n));
		json_object_object_add(f, "max_input_chars", json_object_new_int(s->max_chars));
		return api_fail_fields(r, API_UNPROCESSABLE, "input_too_long", f,
				       "input %zu is %zu characters long; model %s accepts at most %d"
				       " (max_input_chars)", i + 1, n, s->model_id, s->max_chars);
	}
	return API_OK;
}

/* The model must exist and be enabled, and the inputs be complete;
 * *cache_lookup and version (the model's) for the cache. */
static enum api_err submit_model(struct api_req *r, struct submit *s,
				 const struct csvin_opts *op, int *cache_lookup, char *version,
				 size_t version_size)
{
	int enabled = 0, mrc;

	if (!valid_model_id(s->model_id))
		return api_fail(r, API_NOT_FOUND, "model_not_found", "no model with this id");
	mrc = db_request_model(r->db, s->model_id, &enabled, cache_lookup, version, version_size,
			       &s->max_chars);
	if (mrc < 0)
		return api_db_fail(r);
	if (mrc == 1)
		return api_fail(r, API_NOT_FOUND, "model_not_found", "no model with this id");
	if (!enabled)
		return api_fail(r, API_UNPROCESSABLE, "model_disabled",
				"the model is disabled and takes no requests");
	if (csvin_finish(&s->in) < 0)
		return csvin_fail(r, &s->in, op->max_inputs);
	return input_chars_check(r, s);
}

/* The Idempotency-Key header (NULL when absent): API_OK or the 400. */
static enum api_err idempotency_key(struct api_req *r, const char **idem)
{
	size_t n;
	int ok;

	*idem = api_env(r, "HTTP_IDEMPOTENCY_KEY");
	if (!*idem)
		return API_OK;
	n = strlen(*idem);
	ok = n > 0 && n <= IDEMPOTENCY_KEY_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = (*idem)[i] > 0x20 && (*idem)[i] < 0x7f;
	if (!ok)
		return fail_field(r, "invalid_idempotency_key", "Idempotency-Key",
				  "must be 1 to 255 visible ASCII characters");
	return API_OK;
}

/* The caller's quota (quota.<role>.*; 0 = unlimited): anon, user, admin. */
static void quota_limits_of(const struct api_req *r, struct quota_limits *q)
{
	static const struct {
		const char *role;
		long in_flight, per_day;
		long long bytes;
	} def[] = {
		{"anon", 20, 20000, 20LL << 20},
		{"user", 50, 200000, 1LL << 30},
		{"admin", 0, 0, 0},
	};
	int k = r->auth.is_anon ? 0 : r->auth.is_admin ? 2 : 1;
	char key[64];

	snprintf(key, sizeof key, "quota.%s.requests_in_flight", def[k].role);
	q->in_flight = cfg_int(key, def[k].in_flight);
	snprintf(key, sizeof key, "quota.%s.inputs_per_day", def[k].role);
	q->inputs_per_day = cfg_int(key, def[k].per_day);
	snprintf(key, sizeof key, "quota.%s.stored_bytes", def[k].role);
	q->stored_bytes = (long long)cfg_double(key, (double)def[k].bytes);
}

/* Bytes the request keeps: inputs, key and extra columns, header. */
static long long stored_bytes_of(const struct submit *s, const struct riders *rd)
{
	long long b = s->in.header ? (long long)strlen(s->in.header) : 0;

	for (size_t i = 0; i < s->in.n; i++) {
		b += (long long)strlen(s->in.inputs[i]);
		if (rd->keys && rd->keys[i])
			b += (long long)strlen(rd->keys[i]);
		if (rd->extras && rd->extras[i])
			b += (long long)strlen(rd->extras[i]);
	}
	return b;
}

/* 429 quota_exceeded naming the quota, its limit and the usage. */
static enum api_err quota_fail(struct api_req *r, const struct quota_limits *q,
			       const struct db_quota_refusal *qr)
{
	const char *name = quota_name(qr->kind);
	long long limit = qr->kind == QUOTA_IN_FLIGHT	   ? q->in_flight
			  : qr->kind == QUOTA_INPUTS_PER_DAY ? q->inputs_per_day
							     : q->stored_bytes;
	long long used = qr->kind == QUOTA_IN_FLIGHT	  ? qr->use.in_flight
			 : qr->kind == QUOTA_INPUTS_PER_DAY ? qr->use.inputs_day
							    : qr->use.stored_bytes;
	json_object *f = json_object_new_object();

	json_object_object_add(f, "quota", json_object_new_string(name));
	json_object_object_add(f, "limit", json_object_new_int64(limit));
	json_object_object_add(f, "used", json_object_new_int64(used));
	api_header(r, "Retry-After", "%ld", qr->retry_s);
	log_warn_x("request msg=\"quota exceeded\" quota=%s limit=%lld used=%lld anon=%d user_id=%lld",
		   name, limit, used, r->auth.is_anon, (long long)r->auth.user_id);
	return api_fail_fields(r, API_RATE_LIMITED, "quota_exceeded", f,
			       "quota %s exceeded (limit %lld, used %lld); retry in %ld seconds",
			       name, limit, used, qr->retry_s);
}

/* What a stored submit left: the request id, its row when the insert
 * returned it (DBR_* columns, the caller's to PQclear) and whether it is
 * new (0: an idempotent retry answered with the first request). */
struct submit_out {
	int64_t id;
	PGresult *row;
	int created;
};

/* Store the request (no response yet). */
static enum api_err submit_store(struct api_req *r, const struct submit *s, const char *idem,
				 int cache_lookup, const char *version, char **keys,
				 struct submit_out *so)
{
	json_object *meta = submit_metadata(r, s);
	struct riders rd;
	struct db_request_new rq = {
		.model_id = s->model_id, .has_header = s->in.header != NULL || s->has_header > 0,
		.header = s->in.header,
		.cache_opt_in = s->cache_opt_in, .idempotency_key = idem,
		.metadata = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN),
		.inputs = s->in.inputs, .n_inputs = s->in.n, .cache_enabled = cache_lookup,
		.model_version = version, .cache_keys = keys,
	};
	struct quota_limits ql;
	struct db_quota_refusal qr;
	enum api_err e = API_OK;

	owner_of(r, &rq.owner);
	quota_limits_of(r, &ql);
	if (ql.in_flight > 0 || ql.inputs_per_day > 0 || ql.stored_bytes > 0)
		rq.quota = &ql;
	rq.retention_days = (int)cfg_int("hub.retention_days", 7);
	if (make_riders(&s->in, &rd) < 0) {
		free_riders(&rd);
		json_object_put(meta);
		return api_fail(r, API_INTERNAL, "internal", "out of memory keeping the columns");
	}
	rq.row_keys = rd.keys;
	rq.row_extras = rd.extras;
	rq.stored_bytes = stored_bytes_of(s, &rd);
	switch (db_request_submit(r->db, &rq, &so->id, &so->row, &qr)) {
	case DB_SUBMIT_CREATED:
		log_info("request id=%" PRId64 " model=%s inputs=%zu source=%s anon=%d "
			 "msg=\"submitted\"", so->id, s->model_id, s->in.n, s->source, r->auth.is_anon);
		so->created = 1;
		break;
	case DB_SUBMIT_EXISTING:
		log_info("request id=%" PRId64 " msg=\"idempotent retry, returning the first\"",
			 so->id);
		so->created = 0;
		break;
	case DB_SUBMIT_QUOTA:
		e = quota_fail(r, &ql, &qr);
		break;
	case DB_SUBMIT_ERROR:
	default:
		e = api_db_fail(r);
		break;
	}
	free_riders(&rd);
	json_object_put(meta);
	return e;
}

/* Everything after parsing, for every submit path (native and the
 * Ersilia compatibility routes): model checks, Idempotency-Key, cache
 * keys, insert. No response is set on success. */
static enum api_err submit_run(struct api_req *r, struct submit *s, const struct csvin_opts *op,
			       struct submit_out *so)
{
	char version[64], **keys = NULL;
	const char *idem = NULL;
	int cache_lookup = 0;
	enum api_err e = submit_model(r, s, op, &cache_lookup, version, sizeof(version));

	if (e == API_OK)
		e = idempotency_key(r, &idem);
	if (e != API_OK)
		return e;
	if (r->auth.is_anon)
		s->cache_opt_in = 0; /* only registered users feed the shared cache */
	if (cache_lookup && !(keys = make_keys(&s->in)))
		return api_fail(r, API_INTERNAL, "internal", "cache keys could not be computed");
	e = submit_store(r, s, idem, cache_lookup, version, keys, so);
	free_keys(keys, s->in.n);
	return e;
}

#define DRY_RUN_SAMPLE 5 /* rows shown by a dry run */

/* A dry run's answer: how the body was read (columns, header, count, the
 * first rows), nothing stored. */
static enum api_err reply_dry_run(struct api_req *r, const struct submit *s)
{
	const struct csvin *c = &s->in;
	json_object *o = json_object_new_object(), *ic = input_columns_json(c), *v;
	json_object *cols = NULL, *sample = json_object_new_array();

	json_object_object_add(o, "dry_run", json_object_new_boolean(1));
	json_object_object_add(o, "model_id", json_object_new_string(s->model_id));
	json_object_object_add(o, "input_count", json_object_new_int64((int64_t)c->n));
	json_object_object_add(o, "has_header",
			       json_object_new_boolean(c->header != NULL || s->has_header > 0));
	json_object_object_add(o, "header", c->header ? json_object_new_string(c->header) : NULL);
	if (ic) {
		cols = json_object_new_array();
		for (size_t k = 0; k < c->ncols; k++)
			json_object_array_add(cols, json_object_new_string(c->cols[k]));
	}
	json_object_object_add(o, "columns", cols);
	json_object_object_add(o, "input_column", ic && json_object_object_get_ex(ic, "input", &v)
					       ? json_object_get(v) : NULL);
	json_object_object_add(o, "key_column", ic && json_object_object_get_ex(ic, "key", &v)
					     ? json_object_get(v) : NULL);
	json_object_object_add(o, "extra_columns", ic && json_object_object_get_ex(ic, "extra", &v)
						? json_object_get(v) : NULL);
	for (size_t i = 0; i < c->n && i < DRY_RUN_SAMPLE; i++) {
		json_object *row = json_object_new_object();
		const char *cell = c->rows ? c->rows[i] : NULL;

		for (size_t k = 0; cell && (int)k < c->key; k++)
			cell += strlen(cell) + 1;
		if (cell && c->key >= 0)
			json_object_object_add(row, "key", json_object_new_string(cell));
		json_object_object_add(row, "input", json_object_new_string(c->inputs[i]));
		json_object_array_add(sample, row);
	}
	json_object_object_add(o, "sample", sample);
	json_object_put(ic);
	return api_json(r, 200, o);
}

static long max_inputs_cfg(void)
{
	long max_inputs = cfg_int("hub.max_inputs", 1000);

	return max_inputs > 0 ? max_inputs : 1000;
}

static enum api_err submit_common(struct api_req *r, const char *path_model)
{
	struct submit s = {.model_id = path_model, .has_header = -1, .in = CSVIN_INIT};
	struct csvin_opts op = {.has_header = 0, .max_inputs = (size_t)max_inputs_cfg(),
				.max_len = REQUESTS_MAX_INPUT_LEN};
	struct submit_out so = {0, NULL, 0};
	json_object *body = NULL;
	enum api_err e = submit_parse(r, &s, &op, &body);

	if (e == API_OK && s.dry_run) {
		int cache_lookup;
		char version[64];

		if ((e = submit_model(r, &s, &op, &cache_lookup, version, sizeof(version))) == API_OK)
			e = reply_dry_run(r, &s);
		goto out;
	}
	if (e == API_OK)
		e = submit_run(r, &s, &op, &so);
	if (e == API_OK)
		e = so.created ? reply_request_row(r, so.id, so.row, 201, 1)
			       : reply_request(r, so.id, 200, 1);
	else
		PQclear(so.row);
out:
	json_object_put(body);
	csvin_free(&s.in);
	return e;
}

enum api_err api_requests_submit(struct api_req *r, struct api_submit *in)
{
	struct submit s = {.model_id = in->model_id, .has_header = in->has_header,
			   .cache_opt_in = in->cache_opt_in, .source = in->source,
			   .in = CSVIN_INIT};
	struct csvin_opts op = {.has_header = in->has_header,
				.max_inputs = (size_t)max_inputs_cfg(),
				.max_len = REQUESTS_MAX_INPUT_LEN};
	struct submit_out so = {0, NULL, 0};
	enum api_err e;

	if ((e = json_csv_lines(r, &s, in->entries, &op)) == API_OK)
		e = submit_run(r, &s, &op, &so);
	PQclear(so.row);
	in->id = so.id;
	in->created = so.created;
	in->header = s.in.header != NULL || s.has_header > 0;
	csvin_free(&s.in);
	return e;
}

static enum api_err h_submit(struct api_req *r)
{
	return submit_common(r, NULL);
}

static enum api_err h_submit_model(struct api_req *r)
{
	return submit_common(r, r->params[0]);
}

/* ---- lists ---- */

/* Shared query parameters of both lists. */
static enum api_err parse_filter(struct api_req *r, struct db_request_filter *f)
{
	const char *v;

	memset(f, 0, sizeof(*f));
	f->limit = REQUESTS_LIST_DEFAULT;
	if ((v = api_query(r, "limit"))) {
		int64_t n = parse_pos(v);

		if (n < 1 || n > REQUESTS_LIST_MAX)
			return fail_field(r, "invalid_parameter", "limit",
					  "must be an integer from 1 to 500");
		f->limit = (long)n;
	}
	if ((v = api_query(r, "cursor")) && *v) {
		int64_t n = parse_pos(v);

		if (n < 1)
			return fail_field(r, "invalid_parameter", "cursor",
					  "must be a next_cursor value from a previous page");
		f->before_id = n;
	}
	if ((v = api_query(r, "offset"))) {
		int64_t n = parse_pos(v);

		if (n < 0 || n > 10000000)
			return fail_field(r, "invalid_parameter", "offset",
					  "must be a non-negative integer");
		f->offset = (long)n;
	}
	if ((v = api_query(r, "status")) && *v) {
		if (!valid_status(v))
			return fail_field(r, "invalid_parameter", "status",
					  "must be QUEUED, RUNNING, COMPLETED, FAILED or CANCELLED");
		f->status = v;
	}
	if ((v = api_query(r, "model_id")) && *v) {
		if (!valid_model_id(v))
			return fail_field(r, "invalid_parameter", "model_id",
					  "is not a valid model id");
		f->model_id = v;
	}
	if ((v = api_query(r, "date_from")) && *v) {
		if (!valid_date(v))
			return fail_field(r, "invalid_date", "date_from",
					  "must be a date YYYY-MM-DD");
		f->date_from = v;
	}
	if ((v = api_query(r, "date_to")) && *v) {
		if (!valid_date(v))
			return fail_field(r, "invalid_date", "date_to",
					  "must be a date YYYY-MM-DD");
		f->date_to = v;
	}
	if (f->date_from && f->date_to && strcmp(f->date_from, f->date_to) > 0)
		return fail_field(r, "invalid_date", "date_to",
				  "must not be before date_from");
	return API_OK;
}

/* {"items":[...], "next_cursor": "<id>"|null}; res holds up to limit + 1 rows. */
static enum api_err reply_page(struct api_req *r, PGresult *res, long limit, int admin)
{
	json_object *root = json_object_new_object(), *items = json_object_new_array();
	int n = PQntuples(res), shown = n > limit ? (int)limit : n;

	for (int i = 0; i < shown; i++) {
		json_object *it;

		if (!admin) {
			it = request_json(res, i);
		} else {
			it = json_object_new_object();
			jx_add_pg_int(it, "id", res, i, DBA_ID);
			jx_add_pg_str(it, "model_id", res, i, DBA_MODEL_ID);
			jx_add_pg_int(it, "user_id", res, i, DBA_USER_ID);
			jx_add_pg_int(it, "anon_session_id", res, i, DBA_ANON_SESSION_ID);
			jx_add_pg_str(it, "status", res, i, DBA_STATUS);
			jx_add_pg_str(it, "failure_reason", res, i, DBA_FAILURE_REASON);
			jx_add_pg_str(it, "created_at", res, i, DBA_CREATED_AT);
			jx_add_pg_str(it, "finished_at", res, i, DBA_FINISHED_AT);
			jx_add_pg_str(it, "result_status", res, i, DBA_RESULT_STATUS);
			jx_add_pg_int(it, "input_count", res, i, DBA_INPUT_COUNT);
			jx_add_pg_int(it, "error_count", res, i, DBA_ERROR_COUNT);
			jx_add_pg_int(it, "model_calls", res, i, DBA_MODEL_CALLS);
			jx_add_pg_int(it, "extra_calls", res, i, DBA_EXTRA_CALLS);
			jx_add_pg_int(it, "isolation_ms", res, i, DBA_ISOLATION_MS);
			jx_add_pg_int(it, "screened_count", res, i, DBA_SCREENED_COUNT);
			jx_add_pg_int(it, "known_bad_count", res, i, DBA_KNOWN_BAD_COUNT);
		}
		json_object_array_add(items, it);
	}
	json_object_object_add(root, "items", items);
	if (n > limit)
		json_object_object_add(root, "next_cursor", json_object_new_string(
			PQgetvalue(res, shown - 1, 0)));
	else
		json_object_object_add(root, "next_cursor", NULL);
	PQclear(res);
	return api_json(r, 200, root);
}

static enum api_err h_list(struct api_req *r)
{
	struct db_request_filter f;
	struct db_owner o;
	PGresult *res;
	enum api_err e;

	if ((e = parse_filter(r, &f)) != API_OK)
		return e;
	owner_of(r, &o);
	res = db_request_list(r->db, &o, &f);
	if (!res)
		return api_db_fail(r);
	return reply_page(r, res, f.limit, 0);
}

static enum api_err h_admin_list(struct api_req *r)
{
	struct db_request_filter f;
	PGresult *res;
	const char *v;
	enum api_err e;

	if ((e = parse_filter(r, &f)) != API_OK)
		return e;
	if ((v = api_query(r, "user_id")) && *v) {
		if ((f.user_id = parse_pos(v)) < 1)
			return fail_field(r, "invalid_parameter", "user_id",
					  "must be a positive integer");
	}
	if ((v = api_query(r, "anon_session_id")) && *v) {
		if ((f.anon_session_id = parse_pos(v)) < 1)
			return fail_field(r, "invalid_parameter", "anon_session_id",
					  "must be a positive integer");
	}
	res = db_request_admin_list(r->db, &f);
	if (!res)
		return api_db_fail(r);
	return reply_page(r, res, f.limit, 1);
}

/* ---- one request ---- */

static enum api_err h_get(struct api_req *r)
{
	int64_t id = path_id(r);

	if (id <= 0)
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	return reply_request(r, id, 200, 0);
}

static enum api_err h_cancel(struct api_req *r)
{
	struct db_owner o;
	char status[16];
	int64_t id = path_id(r);
	enum db_cancel_rc rc;

	if (id <= 0)
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	owner_of(r, &o);
	rc = db_request_cancel(r->db, id, &o, status);
	if (rc == DB_CANCEL_ERROR)
		return api_db_fail(r);
	if (rc == DB_CANCEL_NOT_FOUND)
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	if (rc == DB_CANCEL_FINISHED)
		return api_fail(r, API_CONFLICT, "already_finished",
				"the request is already %s and cannot be cancelled", status);
	log_info("request id=%" PRId64 " msg=\"cancelled by its owner\"", id);
	return reply_request(r, id, 200, 0);
}

/* POST /api/admin/requests/{id}/cancel: an admin stops anyone's request
 * (the runner sees CANCELLED exactly as after an owner's cancel). */
static enum api_err h_admin_cancel(struct api_req *r)
{
	char status[16];
	int64_t id = path_id(r);
	enum db_cancel_rc rc;
	json_object *o;

	if (id <= 0)
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	rc = db_request_admin_cancel(r->db, id, status);
	if (rc == DB_CANCEL_ERROR)
		return api_db_fail(r);
	if (rc == DB_CANCEL_NOT_FOUND)
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	if (rc == DB_CANCEL_FINISHED)
		return api_fail(r, API_CONFLICT, "already_finished",
				"the request is already %s and cannot be cancelled", status);
	log_info("request id=%" PRId64 " msg=\"cancelled by an admin\" admin_id=%lld", id,
		 (long long)r->auth.user_id);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "status", json_object_new_string("CANCELLED"));
	json_object_object_add(o, "failure_reason", json_object_new_string("CANCELLED"));
	return api_json(r, 200, o);
}

/* ---- results ---- */

/* Shortest "%.Ng" that reads back as the same double. Starting at 15 is
 * enough: when a k < 15 digit decimal reads back as v, v lies within
 * 2^-53 (relative) of it, far inside the 15-digit rounding interval, so
 * %.15g prints those k digits and %g drops the trailing zeros. */
static void fmt_double(char *out, size_t n, double v)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* 1 when fmt_double would print text unchanged, so the conversion can be
 * skipped or cut short (it was most of the CSV download's CPU): a plain
 * decimal -?(0|[1-9][0-9]*)\.[0-9]*[1-9] with a decimal exponent in
 * [-4, 14] (%g's fixed notation) and d <= 17 significant digits. With
 * d <= 15 it always is (any such decimal reads back from a double by
 * %.15g). With 16 or 17 (how Python prints most floats) it is when no
 * (d-1)-digit form reads back as the same double (then no shorter one
 * does) and %.{d}g prints the text: two conversions instead of the three
 * rounds of fmt_double. */
static int plain_shortest(const char *s)
{
	const char *p = s + (*s == '-'), *dot;
	char num[40];
	int sig = 0, lead = 0, seen = 0;
	double v;

	if (!isdigit((unsigned char)*p) || (p[0] == '0' && p[1] != '.'))
		return 0;
	dot = p + strspn(p, "0123456789");
	if (*dot != '.' || !isdigit((unsigned char)dot[1]))
		return 0;
	for (const char *q = p; *q; q++) {
		if (q == dot)
			continue;
		if (!isdigit((unsigned char)*q))
			return 0;
		if (*q != '0')
			seen = 1;
		if (seen)
			sig++;
		else if (q > dot)
			lead++; /* zeros after "0." before the first digit */
	}
	if (sig == 0 || sig > 17 || s[strlen(s) - 1] == '0' || lead > 3 || dot - p > 15)
		return 0;
	if (sig <= 15)
		return 1;
	v = strtod(s, NULL);
	snprintf(num, sizeof num, "%.*g", sig - 1, v);
	if (strtod(num, NULL) == v)
		return 0;
	snprintf(num, sizeof num, "%.*g", sig, v);
	return strcmp(num, s) == 0;
}

/* A JSON number as stored (exact digits from Postgres): integers as they
 * are (any size), other numbers in the shortest round-trip form. */
static void csv_number(struct buf *b, const char *text)
{
	char num[40];
	double v;

	if (strspn(text, "-0123456789") == strlen(text) || plain_shortest(text)) {
		buf_adds(b, text);
		return;
	}
	v = strtod(text, NULL);
	if (!isfinite(v)) {
		buf_adds(b, text);
		return;
	}
	fmt_double(num, sizeof(num), v);
	buf_adds(b, num);
}

/* CSV cells are taken straight from the record's jsonb text, which
 * Postgres prints canonically (`{"k": v, "k2": v2}`, strings escaped only
 * for '"', '\\' and control characters, nested values exactly as ->> prints
 * them), so one linear scan per row replaces a per-cell SQL subquery and a
 * json-c re-parse (docs/performance.md, "Work requests"). */
struct rec_member {
	const char *key, *val; /* key without its quotes (raw, escaped) */
	size_t klen, vlen;
};

struct rec_scan {
	struct rec_member *m;
	int n, cap;
	struct buf tmp;
};

/* Past the JSON string whose opening quote is at s, or NULL. */
static const char *json_skip_string(const char *s)
{
	for (s++; *s && *s != '"'; s++)
		if (*s == '\\' && s[1])
			s++;
	return *s ? s + 1 : NULL;
}

/* Past the JSON value at s, or NULL. */
static const char *json_skip(const char *s)
{
	int depth = 0;

	if (*s == '"')
		return json_skip_string(s);
	if (*s != '{' && *s != '[') {
		while (*s && *s != ',' && *s != '}' && *s != ']')
			s++;
		return s;
	}
	for (; *s; s++) {
		if (*s == '"') {
			if (!(s = json_skip_string(s)))
				return NULL;
			s--;
		} else if (*s == '{' || *s == '[') {
			depth++;
		} else if ((*s == '}' || *s == ']') && --depth == 0) {
			return s + 1;
		}
	}
	return NULL;
}

/* Members of the top-level object in text (none for other values). 0 ok,
 * -1 on text this scanner does not understand or out of memory. */
static int rec_scan(struct rec_scan *rs, const char *s)
{
	rs->n = 0;
	if (*s != '{')
		return 0;
	for (s++; *s == ' '; s++)
		;
	if (*s == '}')
		return 0;
	for (;;) {
		const char *k = s, *e;

		if (*k != '"' || !(e = json_skip_string(k)) || *e != ':')
			return -1;
		for (s = e + 1; *s == ' '; s++)
			;
		if (rs->n == rs->cap) {
			int ncap = rs->cap ? rs->cap * 2 : 16;
			struct rec_member *nm = realloc(rs->m, (size_t)ncap * sizeof(*nm));

			if (!nm)
				return -1;
			rs->m = nm;
			rs->cap = ncap;
		}
		rs->m[rs->n].key = k + 1;
		rs->m[rs->n].klen = (size_t)(e - k - 2);
		rs->m[rs->n].val = s;
		if (!(e = json_skip(s)) || e == s)
			return -1;
		rs->m[rs->n].vlen = (size_t)(e - s);
		rs->n++;
		s = e;
		if (*s == '}')
			return 0;
		if (*s != ',')
			return -1;
		for (s++; *s == ' '; s++)
			;
	}
}

static unsigned hex4(const char *s)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0'
					: c >= 'a' && c <= 'f' ? c - 'a' + 10
					: c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0);
	}
	return v;
}

/* The decoded text of a JSON string body (without quotes) into o. */
static void json_unescape(struct buf *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned cp;

		if (s[i] != '\\' || i + 1 >= n) {
			buf_addc(o, s[i]);
			continue;
		}
		switch (s[++i]) {
		case 'b': buf_addc(o, '\b'); break;
		case 'f': buf_addc(o, '\f'); break;
		case 'n': buf_addc(o, '\n'); break;
		case 'r': buf_addc(o, '\r'); break;
		case 't': buf_addc(o, '\t'); break;
		case 'u':
			if (i + 4 >= n)
				return;
			cp = hex4(s + i + 1);
			i += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < n && s[i + 1] == '\\' &&
			    s[i + 2] == 'u' && hex4(s + i + 3) >= 0xDC00 && hex4(s + i + 3) < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(s + i + 3) - 0xDC00);
				i += 6;
			}
			if (cp < 0x80) {
				buf_addc(o, (char)cp);
			} else if (cp < 0x800) {
				buf_addc(o, (char)(0xC0 | cp >> 6));
				buf_addc(o, (char)(0x80 | (cp & 0x3F)));
			} else if (cp < 0x10000) {
				buf_addc(o, (char)(0xE0 | cp >> 12));
				buf_addc(o, (char)(0x80 | ((cp >> 6) & 0x3F)));
				buf_addc(o, (char)(0x80 | (cp & 0x3F)));
			} else {
				buf_addc(o, (char)(0xF0 | cp >> 18));
				buf_addc(o, (char)(0x80 | ((cp >> 12) & 0x3F)));
				buf_addc(o, (char)(0x80 | ((cp >> 6) & 0x3F)));
				buf_addc(o, (char)(0x80 | (cp & 0x3F)));
			}
			break;
		default: buf_addc(o, s[i]); break; /* \" \\ \/ */
		}
	}
}

/* The member named name, or NULL. */
static const struct rec_member *rec_find(struct rec_scan *rs, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < rs->n; i++) {
		const struct rec_member *m = &rs->m[i];

		if (memchr(m->key, '\\', m->klen)) {
			buf_reset(&rs->tmp);
			json_unescape(&rs->tmp, m->key, m->klen);
			if (strcmp(buf_cstr(&rs->tmp), name) == 0)
				return m;
		} else if (m->klen == len && memcmp(m->key, name, len) == 0) {
			return m;
		}
	}
	return NULL;
}

/* One CSV cell from a member's value (as ->> gives it: strings decoded,
 * nested values as JSON text, numbers in the shortest round-trip form). */
static void csv_cell(struct buf *b, struct rec_scan *rs, const struct rec_member *m)
{
	char c = m->val[0];

	if (c == 'n')
		return;
	buf_reset(&rs->tmp);
	if (c == '"')
		json_unescape(&rs->tmp, m->val + 1, m->vlen - 2);
	else
		buf_add(&rs->tmp, m->val, m->vlen);
	if (c == '"' || c == '{' || c == '[')
		buf_add_csv(b, buf_cstr(&rs->tmp));
	else if (c == 't' || c == 'f')
		buf_adds(b, buf_cstr(&rs->tmp));
	else
		csv_number(b, buf_cstr(&rs->tmp));
}

static int has_name(json_object *arr, const char *name)
{
	size_t n = json_object_array_length(arr);

	for (size_t i = 0; i < n; i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), name) == 0)
			return 1;
	return 0;
}

/* Append the strings of a jsonb array text to cols, skipping names
 * already there. */
static void add_names(json_object *cols, const char *text)
{
	json_object *src = json_tokener_parse(text);
	size_t n;

	if (src && json_object_is_type(src, json_type_array)) {
		n = json_object_array_length(src);
		for (size_t i = 0; i < n; i++) {
			json_object *v = json_object_array_get_idx(src, i);

			if (json_object_is_type(v, json_type_string) &&
			    !has_name(cols, json_object_get_string(v)))
				json_object_array_add(cols, json_object_get(v));
		}
	}
	json_object_put(src);
}

/* Column list (array of strings, owned by the caller); see DESIGN above. */
static json_object *result_columns(const PGresult *meta)
{
	json_object *cols = json_object_new_array();

	if (!PQgetisnull(meta, 0, DBM_REQUEST_COLUMNS))
		add_names(cols, PQgetvalue(meta, 0, DBM_REQUEST_COLUMNS));
	if (json_object_array_length(cols) == 0 && !PQgetisnull(meta, 0, DBM_MODEL_COLUMNS))
		add_names(cols, PQgetvalue(meta, 0, DBM_MODEL_COLUMNS));
	if (!PQgetisnull(meta, 0, DBM_RECORD_KEYS))
		add_names(cols, PQgetvalue(meta, 0, DBM_RECORD_KEYS));
	return cols;
}

static void json_str(struct buf *b, const char *s)
{
	json_object *o = json_object_new_string(s);

	buf_adds(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Add to cols the keys of the page's object records in order of first
 * appearance (ordinal, then position), as the meta query's aggregate does
 * for requests larger than a page. 0, or -1 when a record's text could not
 * be scanned. */
static int page_keys(const struct db_results_page *pg, struct rec_scan *rs, json_object *cols)
{
	struct rec_member seen[64];
	struct buf names = BUF_INIT;
	int nseen = 0, rc = 0;

	buf_addc(&names, '[');
	for (int k = 0; k < PQntuples(pg->res) && rc == 0; k++) {
		if (PQgetisnull(pg->res, k, DBX_RECORD) ||
		    rec_scan(rs, PQgetvalue(pg->res, k, DBX_RECORD)) < 0) {
			rc = PQgetisnull(pg->res, k, DBX_RECORD) ? 0 : -1;
			continue;
		}
		for (int i = 0; i < rs->n; i++) {
			const struct rec_member *m = &rs->m[i];
			int dup = 0;

			for (int s = 0; s < nseen && !dup; s++)
				dup = seen[s].klen == m->klen && memcmp(seen[s].key, m->key, m->klen) == 0;
			if (dup)
				continue;
			/* past 64 distinct keys add_names still drops repeats */
			if (nseen < 64)
				seen[nseen++] = *m;
			/* the key is JSON string text already (Postgres prints it) */
			if (names.len > 1)
				buf_addc(&names, ',');
			buf_addc(&names, '"');
			buf_add(&names, m->key, m->klen);
			buf_addc(&names, '"');
		}
	}
	buf_addc(&names, ']');
	if (rc == 0 && names.len > 2)
		add_names(cols, buf_cstr(&names));
	if (names.oom)
		rc = -1;
	buf_free(&names);
	return rc;
}

/* State of one result download. */
struct result_out {
	int64_t id;
	int csv, first_row;
	int no_stream;    /* build the whole body in b (api_requests_result) */
	const char *type;
	json_object *cols;
	/* a multi-column CSV's other columns (metadata->'input_columns'):
	 * ic the parsed object (NULL for one column), has_key, extra (its
	 * "extra" names, borrowed) */
	json_object *ic, *extra;
	int has_key;
	int err_col;      /* CSV: a last "error" column (error_column=true) */
	struct rec_scan rs;
	struct buf b;
	FCGX_Stream *out; /* set once streaming began (headers sent) */
};

/* The key and other-column cells of one input (sql/010), before the
 * input (key) and after it (extras) in CSV; "key" and "extra" members in
 * JSON. */
static void rider_key(struct buf *b, const struct result_out *ro, const PGresult *in, int i)
{
	if (!ro->has_key)
		return;
	if (ro->csv) {
		buf_add_csv(b, PQgetvalue(in, i, DBX_KEY));
		buf_addc(b, ',');
		return;
	}
	buf_adds(b, "\"key\":");
	if (PQgetisnull(in, i, DBX_KEY))
		buf_adds(b, "null");
	else
		json_str(b, PQgetvalue(in, i, DBX_KEY));
	buf_addc(b, ',');
}

static void rider_extra(struct buf *b, const struct result_out *ro, const PGresult *in, int i)
{
	size_t n = ro->extra ? json_object_array_length(ro->extra) : 0;
	json_object *vals;

	if (n == 0)
		return;
	vals = PQgetisnull(in, i, DBX_EXTRA) ? NULL : json_tokener_parse(PQgetvalue(in, i, DBX_EXTRA));
	if (!ro->csv)
		buf_adds(b, ",\"extra\":{");
	for (size_t k = 0; k < n; k++) {
		json_object *v = vals && json_object_is_type(vals, json_type_array)
					 ? json_object_array_get_idx(vals, k) : NULL;
		const char *txt = v && json_object_is_type(v, json_type_string)
					  ? json_object_get_string(v) : NULL;

		if (ro->csv) {
			buf_addc(b, ',');
			buf_add_csv(b, txt ? txt : "");
			continue;
		}
		if (k)
			buf_addc(b, ',');
		json_str(b, json_object_get_string(json_object_array_get_idx(ro->extra, k)));
		buf_addc(b, ':');
		if (txt)
			json_str(b, txt);
		else
			buf_adds(b, "null");
	}
	if (!ro->csv)
		buf_addc(b, '}');
	json_object_put(vals);
}

/* 0 ok, -1 when a record's text could not be scanned (logged). Walks the
 * page's inputs and its result rows together (both in ordinal order). */
/* The CSV "error" cell of an input: its per-input error, empty without
 * one (res NULL: nothing was stored for it). */
static void csv_error(struct buf *b, const PGresult *res, int k)
{
	buf_addc(b, ',');
	if (!res)
		buf_adds(b, "no result was stored for this input");
	else if (!PQgetisnull(res, k, DBX_ERROR))
		buf_add_csv(b, PQgetvalue(res, k, DBX_ERROR));
}

static int format_rows(struct result_out *ro, const struct db_results_page *pg)
{
	struct buf *b = &ro->b;
	struct rec_scan *rs = &ro->rs;
	json_object *cols = ro->cols;
	int csv = ro->csv, *first_row = &ro->first_row;
	size_t ncols = json_object_array_length(cols);
	int nres = PQntuples(pg->res), k = 0;

	for (int i = 0; i < PQntuples(pg->in); i++) {
		const char *ord = PQgetvalue(pg->in, i, DBX_IN_ORDINAL);
		int o = atoi(ord), has_result, has_rec;

		while (k < nres && atoi(PQgetvalue(pg->res, k, DBX_RES_ORDINAL)) < o)
			k++;
		has_result = k < nres && atoi(PQgetvalue(pg->res, k, DBX_RES_ORDINAL)) == o;
		has_rec = has_result && !PQgetisnull(pg->res, k, DBX_RECORD);
		if (csv) {
			if (rec_scan(rs, has_rec ? PQgetvalue(pg->res, k, DBX_RECORD) : "null") < 0) {
				log_error_x("request ordinal=%s msg=\"record text not understood\"", ord);
				return -1;
			}
			rider_key(b, ro, pg->in, i);
			buf_add_csv(b, PQgetvalue(pg->in, i, DBX_INPUT));
			rider_extra(b, ro, pg->in, i);
			for (size_t c = 0; c < ncols; c++) {
				const struct rec_member *m = rs->n ? rec_find(rs,
					json_object_get_string(json_object_array_get_idx(cols, c))) : NULL;

				buf_addc(b, ',');
				if (m)
					csv_cell(b, rs, m);
			}
			if (ro->err_col)
				csv_error(b, has_result ? pg->res : NULL, k);
			buf_adds(b, "\r\n");
			continue;
		}
		if (!*first_row)
			buf_addc(b, ',');
		*first_row = 0;
		buf_addc(b, '{');
		rider_key(b, ro, pg->in, i);
		buf_adds(b, "\"input\":");
		json_str(b, PQgetvalue(pg->in, i, DBX_INPUT));
		rider_extra(b, ro, pg->in, i);
		buf_adds(b, ",\"record\":");
		buf_adds(b, has_rec ? PQgetvalue(pg->res, k, DBX_RECORD) : "null");
		if (has_result && !PQgetisnull(pg->res, k, DBX_ERROR)) {
			buf_adds(b, ",\"error\":");
			json_str(b, PQgetvalue(pg->res, k, DBX_ERROR));
		} else if (!has_result) {
			buf_adds(b, ",\"error\":\"no result was stored for this input\"");
		}
		buf_adds(b, ",\"cached\":");
		buf_adds(b, has_result && PQgetvalue(pg->res, k, DBX_CACHED)[0] == 't' ? "true" : "false");
		buf_addc(b, '}');
	}
	return 0;
}

static enum api_err result_not_ready(struct api_req *r, const PGresult *meta)
{
	const char *st = PQgetvalue(meta, 0, DBM_STATUS);
	json_object *f;

	if (strcmp(st, "FAILED") == 0 || strcmp(st, "CANCELLED") == 0) {
		f = json_object_new_object();
		json_object_object_add(f, "status", json_object_new_string(st));
		jx_add_pg_str(f, "failure_reason", meta, 0, DBM_FAILURE_REASON);
		jx_add_pg_str(f, "failure_detail", meta, 0, DBM_FAILURE_DETAIL);
		return api_fail_fields(r, API_CONFLICT,
				       st[0] == 'F' ? "request_failed" : "request_cancelled", f,
				       "the request is %s (%s); it has no result", st,
				       PQgetisnull(meta, 0, DBM_FAILURE_REASON) ? "no reason"
				       : PQgetvalue(meta, 0, DBM_FAILURE_REASON));
	}
	f = json_object_new_object();
	json_object_object_add(f, "status", json_object_new_string(st));
	return api_fail_fields(r, API_CONFLICT, "not_ready", f,
			       "the request is %s; the result is available once it is COMPLETED",
			       st);
}

/* ro->ic, ->extra, ->has_key from the meta row. */
static void result_riders(struct result_out *ro, const PGresult *meta)
{
	json_object *v;

	if (PQgetisnull(meta, 0, DBM_INPUT_COLUMNS))
		return;
	ro->ic = json_tokener_parse(PQgetvalue(meta, 0, DBM_INPUT_COLUMNS));
	if (!ro->ic || !json_object_is_type(ro->ic, json_type_object))
		return;
	ro->has_key = json_object_object_get_ex(ro->ic, "key", &v) &&
		      json_object_is_type(v, json_type_string);
	if (json_object_object_get_ex(ro->ic, "extra", &v) && json_object_is_type(v, json_type_array))
		ro->extra = v;
}

/* The JSON members naming a multi-column CSV's columns. */
static void result_begin_riders(struct buf *b, const struct result_out *ro)
{
	static const char *const names[] = {"input", "key", "extra"};
	static const char *const members[] = {"input_column", "key_column", "extra_columns"};

	if (!ro->ic)
		return;
	for (int k = 0; k < 3; k++) {
		json_object *v = NULL;

		json_object_object_get_ex(ro->ic, names[k], &v);
		buf_printf(b, ",\"%s\":%s", members[k], v ? json_object_to_json_string_ext(
			v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "null");
	}
}

/* The body's start: the CSV header line, or the JSON object up to the
 * results array. */
static void result_begin(struct api_req *r, struct buf *b, const PGresult *meta,
			 const struct result_out *ro)
{
	json_object *cols = ro->cols;
	int64_t id = ro->id;
	size_t nextra = ro->extra ? json_object_array_length(ro->extra) : 0;

	/* the CSV keeps its columns: the version rides in a header */
	if (!PQgetisnull(meta, 0, DBM_MODEL_VERSION))
		api_header(r, "X-Model-Version", "%s", PQgetvalue(meta, 0, DBM_MODEL_VERSION));
	if (ro->csv) {
		buf_adds(b, ro->has_key ? "key,input" : "input");
		for (size_t k = 0; k < nextra; k++) {
			buf_addc(b, ',');
			buf_add_csv(b, json_object_get_string(json_object_array_get_idx(ro->extra, k)));
		}
		for (size_t c = 0; c < json_object_array_length(cols); c++) {
			buf_addc(b, ',');
			buf_add_csv(b, json_object_get_string(json_object_array_get_idx(cols, c)));
		}
		if (ro->err_col)
			buf_adds(b, ",error");
		buf_adds(b, "\r\n");
		api_header(r, "Content-Disposition", "attachment; filename=\"request-%" PRId64 ".csv\"",
			   id);
		return;
	}
	buf_printf(b, "{\"id\":%" PRId64 ",\"model_id\":", id);
	json_str(b, PQgetvalue(meta, 0, DBM_MODEL_ID));
	buf_adds(b, ",\"model_version\":");
	if (PQgetisnull(meta, 0, DBM_MODEL_VERSION))
		buf_adds(b, "null");
	else
		json_str(b, PQgetvalue(meta, 0, DBM_MODEL_VERSION));
	buf_adds(b, ",\"status\":\"COMPLETED\"");
	result_begin_riders(b, ro);
	buf_adds(b, ",\"columns\":");
	buf_adds(b, json_object_to_json_string_ext(cols, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_adds(b, ",\"results\":[");
}

/* Format page and every page after it into ro->b, streaming once the
 * body is large. 1 when every page was formatted; 0 when it stopped, with
 * *e the response (API_OK once streaming began: the headers are gone, the
 * body ends short and the log says why). */
static int result_pages(struct api_req *r, struct result_out *ro, struct db_results_page *page,
			enum api_err *e)
{
	int last = 0;

	for (;;) {
		int n = PQntuples(page->in);

		if (format_rows(ro, page) < 0) {
			*e = ro->out ? API_OK : api_fail(r, API_INTERNAL, "internal",
							 "a stored record could not be read");
			return 0;
		}
		if (n > 0)
			last = atoi(PQgetvalue(page->in, n - 1, DBX_IN_ORDINAL));
		db_results_page_clear(page);
		if (ro->b.oom) {
			*e = api_fail(r, API_INTERNAL, "internal", "out of memory formatting results");
			return 0;
		}
		if (n < RESULT_PAGE)
			return 1;
		/* More pages follow: stream once the body is large. */
		if (!ro->out && ro->b.len >= RESULT_STREAM_AT && r->fcgi && !ro->no_stream)
			ro->out = api_stream_begin(r, 200, ro->type);
		if (ro->out && ro->b.len) {
			FCGX_PutStr(ro->b.data, (int)ro->b.len, ro->out);
			buf_reset(&ro->b);
		}
		if (db_request_results_page(r->db, ro->id, last, RESULT_PAGE, page) < 0) {
			log_error_x("request id=%" PRId64 " msg=\"result page failed mid-stream\"",
				    ro->id);
			*e = ro->out ? API_OK : api_db_fail(r);
			return 0;
		}
	}
}

/* The request's result meta row, COMPLETED: API_OK with *meta, else the
 * error response (nothing to free). */
static enum api_err result_meta(struct api_req *r, int64_t id, PGresult **meta)
{
	struct db_owner o;
	enum api_err e;

	owner_of(r, &o);
	*meta = db_request_result_meta(r->db, id, &o, RESULT_PAGE);
	if (!*meta)
		return api_db_fail(r);
	if (PQntuples(*meta) != 1)
		e = api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	else if (strcmp(PQgetvalue(*meta, 0, DBM_STATUS), "COMPLETED") != 0)
		e = result_not_ready(r, *meta);
	else
		return API_OK;
	PQclear(*meta);
	*meta = NULL;
	return e;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(json_object_get_string(*(json_object *const *)a),
		      json_object_get_string(*(json_object *const *)b));
}

/* The whole result body of a COMPLETED request (meta: its result_meta
 * row) into ro->b, streamed to FastCGI when large unless ro->no_stream.
 * Frees what it allocated in ro except ro->b. */
static enum api_err result_build(struct api_req *r, struct result_out *ro, const PGresult *meta,
				 int flags)
{
	struct db_results_page page = {NULL, NULL};
	enum api_err e = API_OK;

	ro->cols = result_columns(meta);
	if (!(flags & API_RESULT_PLAIN))
		result_riders(ro, meta);
	/* Read the first page before any byte goes out, so a failure here
	 * is still a clean error response. */
	if (db_request_results_page(r->db, ro->id, 0, RESULT_PAGE, &page) < 0) {
		e = api_db_fail(r);
		goto out;
	}
	if (atoi(PQgetvalue(meta, 0, DBM_INPUT_COUNT)) <= RESULT_PAGE &&
	    page_keys(&page, &ro->rs, ro->cols) < 0) {
		e = api_fail(r, API_INTERNAL, "internal", "a stored record could not be read");
		goto out;
	}
	if (flags & API_RESULT_SORTED)
		json_object_array_sort(ro->cols, cmp_names);
	result_begin(r, &ro->b, meta, ro);
	if (!result_pages(r, ro, &page, &e))
		goto out;
	if (!ro->csv)
		buf_adds(&ro->b, "]}");
out:
	free(ro->rs.m);
	buf_free(&ro->rs.tmp);
	json_object_put(ro->cols);
	json_object_put(ro->ic);
	ro->cols = ro->ic = NULL;
	db_results_page_clear(&page);
	return e;
}

static enum api_err h_result(struct api_req *r)
{
	PGresult *meta = NULL;
	const char *fmt = api_query(r, "format"), *errc;
	struct result_out ro = {.id = path_id(r), .first_row = 1, .rs = {NULL, 0, 0, BUF_INIT},
				.b = BUF_INIT};
	enum api_err e;

	if (!fmt || !*fmt)
		fmt = "json";
	if (strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0)
		return fail_field(r, "invalid_parameter", "format", "must be csv or json");
	ro.csv = fmt[0] == 'c';
	/* error_column=true: the CSV names each input's error in a last
	 * column (the default CSV keeps the columns scripts expect) */
	errc = api_query(r, "error_column");
	if (errc && *errc && strcmp(errc, "true") != 0 && strcmp(errc, "false") != 0)
		return fail_field(r, "invalid_parameter", "error_column", "must be true or false");
	ro.err_col = ro.csv && errc && strcmp(errc, "true") == 0;
	ro.type = ro.csv ? "text/csv; charset=utf-8" : "application/json";
	if (ro.id <= 0)
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	if ((e = result_meta(r, ro.id, &meta)) != API_OK)
		return e;
	e = result_build(r, &ro, meta, 0);
	if (e == API_OK && !ro.out)
		e = api_text(r, 200, ro.type, ro.b.data ? ro.b.data : "", ro.b.len);
	else if (e == API_OK && ro.b.len)
		FCGX_PutStr(ro.b.data, (int)ro.b.len, ro.out);
	buf_free(&ro.b);
	PQclear(meta);
	return e;
}

enum api_err api_requests_result(struct api_req *r, int64_t id, int flags, struct buf *out)
{
	PGresult *meta = NULL;
	struct result_out ro = {.id = id, .first_row = 1, .rs = {NULL, 0, 0, BUF_INIT},
				.b = BUF_INIT, .no_stream = 1};
	enum api_err e;

	ro.csv = (flags & API_RESULT_CSV) != 0;
	if ((e = result_meta(r, id, &meta)) != API_OK)
		return e;
	e = result_build(r, &ro, meta, flags);
	PQclear(meta);
	if (e == API_OK && ro.b.oom)
		e = api_fail(r, API_INTERNAL, "internal", "out of memory formatting results");
	if (e == API_OK) {
		buf_free(out);
		*out = ro.b;
	} else {
		buf_free(&ro.b);
	}
	return e;
}

const struct api_route api_requests_routes[] = {
	{"POST", "/api/requests", ACCESS_SESSION, h_submit},
	{"GET", "/api/requests", ACCESS_SESSION, h_list},
	{"GET", "/api/requests/{}", ACCESS_SESSION, h_get},
	{"DELETE", "/api/requests/{}", ACCESS_SESSION, h_cancel},
	{"POST", "/api/admin/requests/{}/cancel", ACCESS_ADMIN, h_admin_cancel},
	{"GET", "/api/requests/{}/result", ACCESS_SESSION, h_result},
	{"POST", "/api/models/{}/requests", ACCESS_SESSION, h_submit_model},
	{"GET", "/api/admin/requests", ACCESS_ADMIN, h_admin_list},
	{0},
};
