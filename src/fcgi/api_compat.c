/*
 * api_compat.c — the old Ersilia hub's client API, mapped onto modelhub's
 * own sessions and work requests: POST /api/auth/anonymous-login/{session_id},
 * the `Authorization: ErsiliaAnonymous <base64 of the session JSON>` scheme,
 * POST/GET /api/work-requests and GET /api/work-requests/{id} with
 * include_result / csv_result (docs/api.md "Compatibility with the Ersilia
 * hub API", UPSTREAM.md §1).
 *
 * Runs in: modelhub-fcgi workers. Called by: the router (api_compat_routes)
 * and api_auth.c (api_compat_route, api_compat_token while resolving who is
 * calling). Owns: nothing beyond one HTTP request.
 * Shared state: session rows (db_session_anon_*), work_request rows through
 * api_requests.c: there is no second submit path or result formatter here,
 * only the old request and answer shapes.
 *
 * DESIGN
 * - Anonymous login: the client makes the session id (a lowercase UUID, as
 *   the old hub required). The session's token is derived from it,
 *   SHA-256("modelhub-ersilia-anonymous:" id), so the table holds only the
 *   token's hash like any other session, the same id always finds the same
 *   session (resume), and the id is the credential, exactly as it was on
 *   the old hub. The answer is the old shape {"session": {...}, "user",
 *   "permissions"}; session.session_token is that token, also usable as
 *   `Authorization: Bearer` anywhere in modelhub. Creating a session counts
 *   against the anonymous-session rate limit (api_auth_anon_admit); resuming
 *   a live one does not. An expired session is revived (same row, so its
 *   requests come back); a revoked one stays revoked (403).
 * - ErsiliaAnonymous is accepted on the compatibility routes only (and the
 *   model catalogue the old client lists); elsewhere it reads as an invalid
 *   token. The session JSON must carry session_id and the matching
 *   session_token.
 * - Submit: entries are the lines of the file (the old client sends
 *   readlines()), read as CSV by the same csvin rules (so multi-column
 *   files choose their input column). has_header defaults to true as on
 *   the old hub, except that a first line with a cell that reads as a
 *   SMILES is taken as data: the old hub silently dropped the first
 *   molecule of header-less files (UPSTREAM.md 7.23). Answers 200 (the old
 *   client checks for exactly 200).
 * - Status vocabulary: QUEUED -> QUEUED, RUNNING -> PROCESSING, COMPLETED,
 *   FAILED, CANCELLED -> FAILED (reason "CANCELLED: ..."). result: CSV
 *   lines `input,<sorted output columns>` then one line per input, RFC 4180
 *   quoting (the old hub wrapped strings in single quotes and did not
 *   escape); admins asking csv_result=false get the list of records, as on
 *   the old hub.
 */
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "db/db_request.h"
#include "db/db_session.h"
#include "fcgi/api.h"
#include "fcgi/api_requests.h"
#include "fcgi/csvin.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/smiles.h"

#define COMPAT_SID_LEN 36          /* 8-4-4-4-12 lowercase hex, the old hub's check */
#define COMPAT_CRED_MAX 4096       /* base64 session JSON; the old one is ~300 bytes */
#define COMPAT_LIST_DEFAULT 100    /* the old hub's list limit default ... */
#define COMPAT_LIST_MAX 500        /* ... and maximum */
#define COMPAT_FILTER_VALUES 32    /* model_ids / request_statuses values */
static const char TOKEN_DOMAIN[] = "modelhub-ersilia-anonymous:";

/* ---- sessions ---- */

int api_compat_route(const char *path)
{
	static const char *const prefixes[] = {"/api/work-requests", "/api/auth/anonymous-login/",
					       "/api/models"};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
		size_t n = strlen(prefixes[i]);

		if (strncmp(path, prefixes[i], n) == 0 &&
		    (path[n] == '\0' || path[n] == '/' || prefixes[i][n - 1] == '/'))
			return 1;
	}
	return 0;
}

/* A session id as the old hub accepted it. */
static int valid_sid(const char *s)
{
	if (strlen(s) != COMPAT_SID_LEN)
		return 0;
	for (int i = 0; i < COMPAT_SID_LEN; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* The session token of a session id (64 hex + NUL). */
static void derive_token(const char *sid, char tok[DB_SESSION_TOKEN_HEX + 1])
{
	unsigned char raw[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)TOKEN_DOMAIN, sizeof(TOKEN_DOMAIN) - 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)sid, strlen(sid));
	crypto_hash_sha256_final(&st, raw);
	sodium_bin2hex(tok, DB_SESSION_TOKEN_HEX + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}

int api_compat_token(const char *cred, char tok[DB_SESSION_TOKEN_HEX + 1])
{
	unsigned char json[COMPAT_CRED_MAX];
	size_t n = 0, clen;
	json_object *o = NULL, *v;
	const char *sid, *given;
	int rc = -1;

	while (*cred == ' ')
		cred++;
	clen = strcspn(cred, " ");
	if (clen == 0 || clen >= COMPAT_CRED_MAX || cred[clen + strspn(cred + clen, " ")] != '\0' ||
	    sodium_base642bin(json, sizeof(json) - 1, cred, clen, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	json[n] = '\0';
	o = json_tokener_parse((const char *)json);
	if (!o || !json_object_object_get_ex(o, "session_id", &v) ||
	    !(sid = json_object_get_string(v)) || !json_object_is_type(v, json_type_string) ||
	    !valid_sid(sid))
		goto out;
	derive_token(sid, tok);
	if (!json_object_object_get_ex(o, "session_token", &v) ||
	    !json_object_is_type(v, json_type_string) || !(given = json_object_get_string(v)) ||
	    strlen(given) != DB_SESSION_TOKEN_HEX ||
	    sodium_memcmp(given, tok, DB_SESSION_TOKEN_HEX) != 0) {
		sodium_memzero(tok, DB_SESSION_TOKEN_HEX + 1);
		goto out;
	}
	rc = 1;
out:
	json_object_put(o);
	sodium_memzero(json, sizeof(json));
	return rc;
}

/* The old hub's user ids were UUID-shaped; ours are derived from the
 * session or user row. */
static void old_user_id(const struct api_auth *a, char out[40])
{
	if (a->is_anon)
		snprintf(out, 40, "00000000-0000-4000-8000-%012" PRIx64, (uint64_t)a->session_id);
	else
		snprintf(out, 40, "00000000-0000-4000-9000-%012" PRIx64, (uint64_t)a->user_id);
}

static void add_s(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static enum api_err login_reply(struct api_req *r, const char *sid, const char *tok,
				const struct db_session_info *s, const char *started, int created)
{
	json_object *root = json_object_new_object(), *ses = json_object_new_object(),
		    *user = json_object_new_object();
	struct api_auth a = {.is_anon = 1, .session_id = s->id};
	char uid[40], uname[48];

	old_user_id(&a, uid);
	add_s(ses, "userid", uid);
	add_s(ses, "session_id", sid);
	add_s(ses, "session_token", tok);
	add_s(ses, "auth_type", "ErsiliaAnonymous");
	json_object_object_add(ses, "session_max_age_seconds",
			       json_object_new_int64(cfg_int("anon.max_age_seconds", 86400)));
	add_s(ses, "session_start_time", started);
	json_object_object_add(root, "session", ses);
	snprintf(uname, sizeof(uname), "anonymous-%" PRId64, s->id);
	add_s(user, "id", uid);
	add_s(user, "username", uname);
	json_object_object_add(root, "user", user);
	json_object_object_add(root, "permissions", json_object_new_array());
	add_s(root, "token", tok);
	add_s(root, "expires_at", s->absolute_expires_at);
	json_object_object_add(root, "resumed", json_object_new_boolean(!created));
	return api_json(r, 200, root);
}

static enum api_err h_anon_login(struct api_req *r)
{
	const char *sid = r->params[0], *ip = api_client_ip(r);
	char tok[DB_SESSION_TOKEN_HEX + 1], started[40] = "";
	unsigned char hash[DB_SESSION_HASH_LEN];
	struct db_session_info s;
	int rc, created = 0;
	enum api_err e;

	if (!valid_sid(sid))
		return api_fail_fields(r, API_BAD_REQUEST, "invalid_session_id",
				       json_object_new_object(),
				       "the session id must be a lowercase UUID "
				       "(8-4-4-4-12 hexadecimal digits, 36 characters)");
	derive_token(sid, tok);
	db_token_hash(tok, hash);
	rc = db_session_anon_find(r->db, hash, started, &s);
	if (rc == 1) {
		if ((e = api_auth_anon_admit(r)) != API_OK) {
			sodium_memzero(tok, sizeof(tok));
			return e;
		}
		rc = db_session_anon_bind(r->db, hash, cfg_int("anon.max_age_seconds", 86400),
					  api_env(r, "HTTP_USER_AGENT"), ip, started, &s);
		created = rc == 0;
		if (rc == 1) /* revoked, or bound by a racing login: look again */
			rc = db_session_anon_find(r->db, hash, started, &s);
		if (rc == 1) {
			sodium_memzero(tok, sizeof(tok));
			return api_fail(r, API_FORBIDDEN, "session_revoked",
					"this session id was revoked; start with a new one");
		}
	}
	if (rc < 0) {
		sodium_memzero(tok, sizeof(tok));
		return api_db_fail(r);
	}
	log_info("auth msg=\"ersilia anonymous login\" session_id=%" PRId64 " created=%d", s.id,
		 created);
	e = login_reply(r, sid, tok, &s, started, created);
	sodium_memzero(tok, sizeof(tok));
	return e;
}

/* ---- work requests: the old record ---- */

static const char *old_status(const char *st)
{
	if (strcmp(st, "RUNNING") == 0)
		return "PROCESSING";
	if (strcmp(st, "CANCELLED") == 0)
		return "FAILED";
	return st; /* QUEUED, COMPLETED, FAILED */
}

static void add_pg(json_object *o, const char *k, const PGresult *res, int row, int col)
{
	add_s(o, k, PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col));
}

/* request_status_reason: failure reason and detail of a FAILED or
 * CANCELLED request, else null. */
static void add_reason(json_object *o, const PGresult *res, int row)
{
	char reason[600];

	if (PQgetisnull(res, row, DBR_FAILURE_REASON)) {
		add_s(o, "request_status_reason", NULL);
		return;
	}
	snprintf(reason, sizeof(reason), "%s%s%s", PQgetvalue(res, row, DBR_FAILURE_REASON),
		 PQgetisnull(res, row, DBR_FAILURE_DETAIL) ? "" : ": ",
		 PQgetisnull(res, row, DBR_FAILURE_DETAIL) ? "" : PQgetvalue(res, row,
									      DBR_FAILURE_DETAIL));
	add_s(o, "request_status_reason", reason);
}

/* The old hub's WorkRequestModel from a DBR_* row (entries added later). */
static json_object *old_record(struct api_req *r, const PGresult *res, int row)
{
	json_object *o = json_object_new_object(), *pl = json_object_new_object();
	int hdr = PQgetvalue(res, row, DBR_HAS_HEADER)[0] == 't';
	char uid[40];

	old_user_id(&r->auth, uid);
	json_object_object_add(o, "id", json_object_new_int64(strtoll(PQgetvalue(res, row, DBR_ID),
								      NULL, 10)));
	add_pg(o, "model_id", res, row, DBR_MODEL_ID);
	add_s(o, "user_id", uid);
	json_object_object_add(pl, "cache_opt_in", json_object_new_boolean(
		PQgetvalue(res, row, DBR_CACHE_OPT_IN)[0] == 't'));
	json_object_object_add(pl, "has_header", json_object_new_boolean(hdr));
	json_object_object_add(o, "request_payload", pl);
	add_pg(o, "request_date", res, row, DBR_CREATED_AT);
	json_object_object_add(o, "metadata", NULL);
	add_s(o, "request_status", old_status(PQgetvalue(res, row, DBR_STATUS)));
	add_reason(o, res, row);
	json_object_object_add(o, "model_job_id", NULL);
	add_pg(o, "last_updated", res, row, !PQgetisnull(res, row, DBR_FINISHED_AT) ? DBR_FINISHED_AT
					     : !PQgetisnull(res, row, DBR_STARTED_AT) ? DBR_STARTED_AT
					     : DBR_CREATED_AT);
	json_object_object_add(o, "result", NULL);
	json_object_object_add(o, "pod_ready_timestamp", NULL);
	add_pg(o, "job_submission_timestamp", res, row, DBR_STARTED_AT);
	add_pg(o, "processed_timestamp", res, row, DBR_FINISHED_AT);
	json_object_object_add(o, "input_size", json_object_new_int64(
		strtoll(PQgetvalue(res, row, DBR_INPUT_COUNT), NULL, 10) + hdr));
	json_object_object_add(o, "server_id", NULL);
	/* modelhub's own view, for scripts moving to the native API */
	add_pg(o, "status", res, row, DBR_STATUS);
	return o;
}

/* request_payload.entries: the header line (when there was one) and the
 * inputs as stored (the chosen column of a multi-column file). */
static enum api_err add_entries(struct api_req *r, json_object *rec, const PGresult *res, int64_t id)
{
	struct db_results_page pg = {NULL, NULL};
	json_object *arr = json_object_new_array(), *pl;
	int n = atoi(PQgetvalue(res, 0, DBR_INPUT_COUNT));

	if (!PQgetisnull(res, 0, DBR_HEADER))
		json_object_array_add(arr, json_object_new_string(PQgetvalue(res, 0, DBR_HEADER)));
	if (db_request_results_page(r->db, id, 0, n > 0 ? n : 1, &pg) < 0) {
		json_object_put(arr);
		return api_db_fail(r);
	}
	for (int i = 0; i < PQntuples(pg.in); i++)
		json_object_array_add(arr, json_object_new_string(PQgetvalue(pg.in, i, DBX_INPUT)));
	db_results_page_clear(&pg);
	json_object_object_get_ex(rec, "request_payload", &pl);
	json_object_object_add(pl, "entries", arr);
	return API_OK;
}

/* Request id from the path: 1..18 digits, else 0. */
static int64_t path_id(struct api_req *r)
{
	const char *s = r->params[0];
	size_t n = strlen(s);

	if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
		return 0;
	return strtoll(s, NULL, 10);
}

static void owner_of(const struct api_req *r, struct db_owner *o)
{
	o->user_id = r->auth.is_anon ? 0 : r->auth.user_id;
	o->anon_session_id = r->auth.is_anon ? r->auth.session_id : 0;
}

/* The caller's request as an old record with its entries: API_OK with
 * *out, or the error response. */
static enum api_err load_record(struct api_req *r, int64_t id, json_object **out,
				char *status, size_t status_size)
{
	struct db_owner o;
	PGresult *res;
	enum api_err e;

	owner_of(r, &o);
	res = id > 0 ? db_request_get(r->db, id, &o) : NULL;
	if (id > 0 && !res)
		return api_db_fail(r);
	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		return api_fail(r, API_NOT_FOUND, "request_not_found", "no such request");
	}
	*out = old_record(r, res, 0);
	snprintf(status, status_size, "%s", PQgetvalue(res, 0, DBR_STATUS));
	e = add_entries(r, *out, res, id);
	PQclear(res);
	if (e != API_OK) {
		json_object_put(*out);
		*out = NULL;
	}
	return e;
}

/* ---- POST /api/work-requests ---- */

static enum api_err field_fail(struct api_req *r, enum api_err e, const char *code,
			       const char *field, const char *msg)
{
	json_object *f = json_object_new_object();

	json_object_object_add(f, field, json_object_new_string(msg));
	return api_fail_fields(r, e, code, f, "%s: %s", field, msg);
}

/* The old hub's has_header default (true), except when a cell of the
 * first non-blank entry reads as a SMILES: then the file has no header
 * (see DESIGN). */
static int default_header(json_object *entries)
{
	size_t n = json_object_array_length(entries);

	for (size_t i = 0; i < n; i++) {
		const char *e = json_object_get_string(json_object_array_get_idx(entries, i));
		char cell[REQUESTS_SCREEN_MAX + 1], why[SMILES_WHY_MAX];

		if (!e || strspn(e, " \t\r\n") == strlen(e))
			continue;
		while (*e) {
			size_t len = strcspn(e, ","), a = 0, b = len;

			while (a < b && strchr(" \t\r\n\"", e[a]))
				a++;
			while (b > a && strchr(" \t\r\n\"", e[b - 1]))
				b--;
			if (b > a && b - a < sizeof(cell)) {
				memcpy(cell, e + a, b - a);
				cell[b - a] = '\0';
				if (smiles_screen(cell, why, sizeof(why)) == 0)
					return 0;
			}
			e += len + (e[len] == ',');
		}
		return 1;
	}
	return 1;
}

/* {model_id, request_payload: {entries, cache_opt_in, has_header}} */
static enum api_err submit_fields(struct api_req *r, json_object *body, struct api_submit *in)
{
	json_object *pl, *v;
	size_t n;

	if (!(in->model_id = jx_str(body, "model_id")))
		return field_fail(r, API_UNPROCESSABLE, "validation_failed", "model_id",
				  "is required (a string)");
	if (!json_object_object_get_ex(body, "request_payload", &pl) ||
	    !json_object_is_type(pl, json_type_object))
		return field_fail(r, API_UNPROCESSABLE, "validation_failed", "request_payload",
				  "is required: {\"entries\": [...]}");
	if (!json_object_object_get_ex(pl, "entries", &in->entries) ||
	    !json_object_is_type(in->entries, json_type_array) ||
	    json_object_array_length(in->entries) == 0)
		return field_fail(r, API_UNPROCESSABLE, "validation_failed", "request_payload.entries",
				  "must be a non-empty array of strings");
	n = json_object_array_length(in->entries);
	for (size_t i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(in->entries, i), json_type_string))
			return field_fail(r, API_UNPROCESSABLE, "invalid_input",
					  "request_payload.entries", "every entry must be a string");
	in->has_header = default_header(in->entries);
	if (json_object_object_get_ex(pl, "has_header", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_boolean))
			return field_fail(r, API_UNPROCESSABLE, "invalid_parameter",
					  "request_payload.has_header", "must be true or false");
		in->has_header = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(pl, "cache_opt_in", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_boolean))
			return field_fail(r, API_UNPROCESSABLE, "invalid_parameter",
					  "request_payload.cache_opt_in", "must be true or false");
		in->cache_opt_in = json_object_get_boolean(v);
	}
	return API_OK;
}

static enum api_err h_wr_submit(struct api_req *r)
{
	struct api_submit in = {.source = "ersilia", .has_header = 1};
	json_object *body = NULL, *rec = NULL;
	char status[16];
	enum api_err e = api_body_json(r, &body);

	if (e == API_OK)
		e = submit_fields(r, body, &in);
	if (e == API_OK)
		e = api_requests_submit(r, &in);
	if (e == API_OK)
		e = load_record(r, in.id, &rec, status, sizeof(status));
	json_object_put(body);
	if (e != API_OK)
		return e;
	api_header(r, "Location", "/api/work-requests/%" PRId64, in.id);
	return api_json(r, 200, rec);
}

/* ---- GET /api/work-requests ---- */

/* Every value of query parameter name (repeated, or comma-separated),
 * decoded copies owned by r. Returns the count, or -1 past max. */
static int query_all(struct api_req *r, const char *name, const char **vals, int max)
{
	size_t nl = strlen(name);
	int n = 0;

	for (const char *p = r->query; p && *p;) {
		size_t len = strcspn(p, "&");

		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			char *v = api_own(r, api_url_decode(p + nl + 1, len - nl - 1, 1));

			for (char *tok = v, *save = NULL; v && (tok = strtok_r(tok, ",", &save));
			     tok = NULL) {
				if (n == max)
					return -1;
				vals[n++] = tok;
			}
		}
		p += len + (p[len] == '&');
	}
	return n;
}

/* Old status names (and modelhub's) to modelhub's; 0, or -1 when one is
 * unknown. out receives up to 2 names per value. */
static int map_statuses(const char **in, int n, char **out, int *nout)
{
	static const struct {
		const char *old, *ours, *also;
	} map[] = {{"QUEUED", "QUEUED", NULL},      {"SCHEDULING", "RUNNING", NULL},
		   {"PROCESSING", "RUNNING", NULL}, {"RUNNING", "RUNNING", NULL},
		   {"COMPLETED", "COMPLETED", NULL}, {"FAILED", "FAILED", "CANCELLED"},
		   {"CANCELLED", "CANCELLED", NULL}};

	*nout = 0;
	for (int i = 0; i < n; i++) {
		size_t k = 0;

		while (k < sizeof(map) / sizeof(*map) && strcasecmp(in[i], map[k].old) != 0)
			k++;
		if (k == sizeof(map) / sizeof(*map))
			return -1;
		out[(*nout)++] = (char *)map[k].ours;
		if (map[k].also)
			out[(*nout)++] = (char *)map[k].also;
	}
	return 0;
}

/* A date (YYYY-MM-DD) or an ISO 8601 time (YYYY-MM-DD[T ]HH:MM[:SS[.f]]
 * [Z|+HH:MM|-HH:MM]) as a timestamptz text owned by r; a date is its
 * start (UTC), or with end_of_day the start of the next day. NULL if not
 * one of those. */
static const char *parse_when(struct api_req *r, const char *s, int end_of_day)
{
	int y, mo, d, pos = 0;
	char out[64];

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &pos) != 3 || pos != 10 || mo < 1 || mo > 12 ||
	    d < 1 || d > 31 || y < 1)
		return NULL;
	if (s[10] == '\0') {
		struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d + end_of_day};
		time_t t = timegm(&tm);

		gmtime_r(&t, &tm);
		strftime(out, sizeof(out), "%Y-%m-%dT00:00:00Z", &tm);
		return api_own(r, strdup(out));
	}
	if ((s[10] != 'T' && s[10] != ' ') || strlen(s) > 40 ||
	    strspn(s + 11, "0123456789:.") < 5 || s[13] != ':')
		return NULL;
	const char *z = s + 11 + strspn(s + 11, "0123456789:.");

	if (!(*z == '\0' || strcmp(z, "Z") == 0 ||
	      ((*z == '+' || *z == '-') && strlen(z) == 6 && z[3] == ':' &&
	       strspn(z + 1, "0123456789:") == 5)))
		return NULL;
	snprintf(out, sizeof(out), "%s%s", s, *z ? "" : "Z");
	return api_own(r, strdup(out));
}

/* One optional date filter into *out; API_OK or the 422. */
static enum api_err when_filter(struct api_req *r, const char *name, int end, const char **out)
{
	const char *v = api_query(r, name);

	*out = NULL;
	if (!v || !*v)
		return API_OK;
	if (!(*out = parse_when(r, v, end)))
		return field_fail(r, API_UNPROCESSABLE, "invalid_date", name,
				  "must be a date YYYY-MM-DD or an ISO 8601 time");
	return API_OK;
}

/* id, model_ids, request_statuses, request_date_from/to, limit. */
static enum api_err list_filter(struct api_req *r, struct db_compat_filter *f)
{
	const char *vals[COMPAT_FILTER_VALUES], *v;
	char *st[2 * COMPAT_FILTER_VALUES];
	int n, nst;
	enum api_err e;

	memset(f, 0, sizeof(*f));
	f->limit = COMPAT_LIST_DEFAULT;
	if ((v = api_query(r, "limit")) && *v) {
		f->limit = strspn(v, "0123456789") == strlen(v) && strlen(v) <= 4 ? atol(v) : 0;
		if (f->limit < 1 || f->limit > COMPAT_LIST_MAX)
			return field_fail(r, API_UNPROCESSABLE, "invalid_parameter", "limit",
					  "must be an integer from 1 to 500");
	}
	if ((v = api_query(r, "id")) && *v) {
		f->id = strspn(v, "0123456789") == strlen(v) && strlen(v) <= 18 ? atoll(v) : 0;
		if (f->id < 1)
			return field_fail(r, API_UNPROCESSABLE, "invalid_parameter", "id",
					  "must be a request id");
	}
	if ((n = query_all(r, "model_ids", vals, COMPAT_FILTER_VALUES)) < 0)
		return field_fail(r, API_UNPROCESSABLE, "invalid_parameter", "model_ids",
				  "at most 32 values");
	if (n > 0 && !(f->model_ids = api_own(r, db_text_array((char *const *)vals, (size_t)n))))
		return api_fail(r, API_INTERNAL, "internal", "out of memory");
	if ((n = query_all(r, "request_statuses", vals, COMPAT_FILTER_VALUES)) < 0 ||
	    map_statuses(vals, n, st, &nst) < 0)
		return field_fail(r, API_UNPROCESSABLE, "invalid_parameter", "request_statuses",
				  "values are QUEUED, SCHEDULING, PROCESSING, COMPLETED, FAILED");
	if (nst > 0 && !(f->statuses = api_own(r, db_text_array(st, (size_t)nst))))
		return api_fail(r, API_INTERNAL, "internal", "out of memory");
	if ((e = when_filter(r, "request_date_from", 0, &f->from)) != API_OK ||
	    (e = when_filter(r, "request_date_to", 1, &f->to)) != API_OK)
		return e;
	return API_OK;
}

static enum api_err h_wr_list(struct api_req *r)
{
	struct db_compat_filter f;
	struct db_owner o;
	json_object *root, *items;
	PGresult *res;
	enum api_err e;

	if ((e = list_filter(r, &f)) != API_OK)
		return e;
	owner_of(r, &o);
	if (!(res = db_request_list_compat(r->db, &o, &f)))
		return api_db_fail(r);
	root = json_object_new_object();
	items = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_object_array_add(items, old_record(r, res, i));
	PQclear(res);
	json_object_object_add(root, "items", items);
	return api_json(r, 200, root);
}

/* ---- GET /api/work-requests/{id} ---- */

/* Query boolean as Python's requests sends it (True/False) or true/1/...;
 * API_OK or the 422. */
static enum api_err query_flag(struct api_req *r, const char *name, int *out)
{
	const char *v = api_query(r, name);

	*out = 0;
	if (!v || !*v)
		return API_OK;
	if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcasecmp(v, "false") != 0 && strcmp(v, "0") != 0)
		return field_fail(r, API_UNPROCESSABLE, "invalid_parameter", name,
				  "must be true or false");
	return API_OK;
}

/* CSV text to an array of its records (lines; a quoted field may hold a
 * line break, which stays inside its line). */
static json_object *csv_lines(const char *s, size_t n)
{
	json_object *arr = json_object_new_array();
	size_t start = 0;
	int quoted = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			json_object_array_add(arr, json_object_new_string_len(s + start, (int)(i - start)));
			start = ++i + 1;
		}
	}
	if (start < n)
		json_object_array_add(arr, json_object_new_string_len(s + start, (int)(n - start)));
	return arr;
}

/* The list of records of the JSON result document (null per failed input). */
static json_object *json_records(const char *s)
{
	json_object *doc = json_tokener_parse(s), *res, *arr = json_object_new_array();
	size_t n;

	if (doc && json_object_object_get_ex(doc, "results", &res)) {
		n = json_object_array_length(res);
		for (size_t i = 0; i < n; i++) {
			json_object *rec = NULL;

			json_object_object_get_ex(json_object_array_get_idx(res, i), "record", &rec);
			json_object_array_add(arr, json_object_get(rec));
		}
	}
	json_object_put(doc);
	return arr;
}

static enum api_err add_result(struct api_req *r, json_object *rec, int64_t id, int csv)
{
	struct buf b = BUF_INIT;
	enum api_err e = api_requests_result(r, id, API_RESULT_SORTED | API_RESULT_PLAIN |
						     (csv ? API_RESULT_CSV : 0), &b);

	if (e == API_OK)
		json_object_object_add(rec, "result", csv ? csv_lines(b.data ? b.data : "", b.len)
							  : json_records(buf_cstr(&b)));
	buf_free(&b);
	return e;
}

static enum api_err h_wr_get(struct api_req *r)
{
	int include, csv;
	json_object *rec = NULL;
	char status[16];
	enum api_err e;

	if ((e = query_flag(r, "include_result", &include)) != API_OK ||
	    (e = query_flag(r, "csv_result", &csv)) != API_OK)
		return e;
	if ((e = load_record(r, path_id(r), &rec, status, sizeof(status))) != API_OK)
		return e;
	/* as on the old hub, only admins may have the records instead of CSV */
	if (include && strcmp(status, "COMPLETED") == 0 &&
	    (e = add_result(r, rec, path_id(r), csv || !r->auth.is_admin)) != API_OK) {
		json_object_put(rec);
		return e;
	}
	return api_json(r, 200, rec);
}

const struct api_route api_compat_routes[] = {
	{"POST", "/api/auth/anonymous-login/{}", ACCESS_PUBLIC, h_anon_login},
	{"POST", "/api/work-requests", ACCESS_SESSION, h_wr_submit},
	{"GET", "/api/work-requests", ACCESS_SESSION, h_wr_list},
	{"GET", "/api/work-requests/{}", ACCESS_SESSION, h_wr_get},
	{0},
};
