/*
 * api_account.c — what a person does with their own account (/api/account),
 * forgot password (/api/auth/password-reset) and guest sessions
 * (/api/auth/guest).
 *
 * Runs in: modelhub-fcgi workers. Called by: router.c (route table).
 * Owns: nothing beyond the request; passwords and tokens are wiped from the
 * body and parsed JSON once used (sodium_memzero).
 * Shared state: app_user, session, password_reset, work_request,
 * input_cache through db_account.c / db_user.c / db_session.c; the
 * revocation counter of auth_cache.c (bumped after any change that ends
 * sessions; db_account.c also sends NOTIFY session_revoked for the other
 * replicas).
 *
 * DESIGN
 * - Every change to the account itself (password, email, deleting data or
 *   the account) needs the current password, checked against at most
 *   account.password_checks (10) per 15 minutes per account, so a stolen
 *   session cannot brute-force it or lock the owner out by changing it.
 * - Changing the password revokes every other session of the user (the
 *   current one stays); a reset link revokes all of them.
 * - Forgot password answers 202 with the same body whether or not the
 *   account exists; the link goes out by email only when mail.smtp_url,
 *   mail.from and site.url are configured (a link built from the request's
 *   Host header could point anywhere). Otherwise an admin makes a link on
 *   the users page (api_users.c). Links: 32 random bytes, stored hashed,
 *   auth.reset_seconds (1800) long, single use; asking is limited per
 *   address (reset.per_ip_per_hour, 10) and per account (3 per hour,
 *   silently).
 * - A guest is an ANON session with a cookie (session.guest): it lives
 *   hub.retention_days, as long as its results, and slides on every
 *   POST /api/auth/guest/refresh (the app calls it when it starts). The
 *   guest id shown to the person is the session token itself, a server-made
 *   secret shown when the session is made; POST /api/auth/guest/new-id
 *   replaces it (the cookie follows) so the page can show one again later
 *   without ever storing it readable; POST /api/auth/guest/resume with it
 *   sets the cookie in another browser. Guests count against anon.per_ip_per_hour like curl tokens and
 *   their requests fall under the same per-caller quotas (keyed by the
 *   session). Claiming creates the account, moves the guest's requests to
 *   it and ends the guest session in one transaction.
 */
#include "fcgi/api.h"
#include "fcgi/auth_cache.h"
#include "fcgi/mail.h"
#include "db/db_account.h"
#include "db/db_session.h"
#include "db/db_user.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/password.h"
#include "lib/validate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCT_CHECK_WINDOW_S 900    /* current-password checks counted over 15 min */
#define ACCT_RESET_WINDOW_S 3600   /* forgot-password limits are per hour */
#define ACCT_RESET_PER_USER 3      /* links mailed per account per hour */
#define ACCT_GUEST_WINDOW_S 3600   /* same window as POST /api/auth/anon */

/* ---- small helpers ---- */

static void wipe_body(struct api_req *r)
{
	if (r->body && r->body_len)
		sodium_memzero(r->body, r->body_len);
}

/* Wipe every string member of a parsed body (passwords, tokens). */
static void wipe_json(json_object *o)
{
	if (!o)
		return;
	json_object_object_foreach(o, k, v) {
		(void)k;
		if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
			sodium_memzero((void *)json_object_get_string(v),
				       (size_t)json_object_get_string_len(v));
	}
}

static void field(json_object *fields, const char *key, const char *msg)
{
	if (msg && !json_object_object_get_ex(fields, key, NULL))
		json_object_object_add(fields, key, json_object_new_string(msg));
}

/* Parse the body and check its members against allowed (NULL-terminated)
 * and that each present one is a string. API_OK with *body and an empty
 * *fields to fill further, or the error answered. */
static enum api_err parse_body(struct api_req *r, const char *const *allowed, json_object **body,
			       json_object **fields)
{
	enum api_err rc = api_body_json(r, body);

	wipe_body(r);
	if (rc != API_OK)
		return rc;
	*fields = json_object_new_object();
	json_object_object_foreach(*body, key, val) {
		int known = 0;
		for (const char *const *a = allowed; *a; a++)
			known |= strcmp(*a, key) == 0;
		if (!known)
			field(*fields, key, "unknown field");
		else if (val && !json_object_is_type(val, json_type_string))
			field(*fields, key, "must be a string");
	}
	return API_OK;
}

/* A string member, NULL when absent or not a string (*len 0). */
static const char *str_of(json_object *body, const char *key, size_t *len)
{
	json_object *v;

	*len = 0;
	if (!json_object_object_get_ex(body, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* 422 with the collected fields when there are any (fields consumed);
 * API_OK otherwise (fields freed). */
static enum api_err fields_done(struct api_req *r, json_object *fields)
{
	if (json_object_object_length(fields) > 0)
		return api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", fields,
				       "some fields are invalid");
	json_object_put(fields);
	return API_OK;
}

/* Fixed-window limit on bucket: API_OK, or 429 with Retry-After. */
static enum api_err limit(struct api_req *r, const char *bucket, long window_s, long max,
			  const char *what)
{
	long hits, retry;

	if (max <= 0)
		return API_OK;
	if (db_rate_hit(r->db, bucket, window_s, &hits, &retry) < 0)
		return api_db_fail(r);
	if (hits <= max)
		return API_OK;
	api_header(r, "Retry-After", "%ld", retry);
	log_warn_x("account msg=\"rate limited\" what=\"%s\" ip=%s", what, api_client_ip(r));
	return api_fail(r, API_RATE_LIMITED, "rate_limited", "too many %s; retry in %ld seconds",
			what, retry);
}

/* The user as the account page shows it. NULL when gone or on error. */
static json_object *user_view(struct api_req *r, int64_t id)
{
	PGresult *res = db_user_get(r->db, id);
	json_object *u;

	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		return NULL;
	}
	u = json_object_new_object();
	jx_add_pg_int(u, "id", res, 0, 0);
	jx_add_pg_str(u, "username", res, 0, 1);
	jx_add_pg_str(u, "email", res, 0, 2);
	jx_add_pg_str(u, "first_name", res, 0, 3);
	jx_add_pg_str(u, "last_name", res, 0, 4);
	jx_add_pg_json(u, "roles", res, 0, 5);
	jx_add_pg_bool(u, "disabled", res, 0, 6);
	jx_add_pg_str(u, "created_at", res, 0, 7);
	PQclear(res);
	return u;
}

static json_object *obj_bool(const char *key, int v)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, key, json_object_new_boolean(v));
	return o;
}

/* ---- the current password ---- */

/* API_OK when pw is the caller's password; 422/429/401 otherwise. */
static enum api_err check_current(struct api_req *r, const char *pw, size_t pl)
{
	char bucket[48], hash[128];
	enum api_err rc;
	int found;

	if (!pw || pl == 0 || pl > VALIDATE_PASSWORD_MAX) {
		json_object *f = json_object_new_object();
		field(f, "current_password", pw && pl ? "is too long" : "required");
		return api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", f,
				       "the current password is needed for this change");
	}
	snprintf(bucket, sizeof bucket, "pwcheck:%lld", (long long)r->auth.user_id);
	rc = limit(r, bucket, ACCT_CHECK_WINDOW_S, cfg_int("account.password_checks", 10),
		   "password checks");
	if (rc != API_OK)
		return rc;
	found = db_account_hash(r->db, r->auth.user_id, hash);
	if (found < 0)
		return api_db_fail(r);
	if (found == 1)
		return api_fail(r, API_UNAUTHORIZED, "session_expired", "the account is gone");
	if (!password_verify(hash, pw, pl)) {
		json_object *f = json_object_new_object();
		sodium_memzero(hash, sizeof hash);
		field(f, "current_password", "is wrong");
		log_info("account msg=\"wrong current password\" user_id=%lld",
			 (long long)r->auth.user_id);
		return api_fail_fields(r, API_FORBIDDEN, "wrong_password", f,
				       "the current password is wrong");
	}
	sodium_memzero(hash, sizeof hash);
	return API_OK;
}

/* ---- POST /api/account/password ---- */

/* 422 unless pw is acceptable as the new password of user u (view). */
static enum api_err check_new_password(struct api_req *r, const char *pw, size_t pl,
				       const char *username, const char *email, const char *key)
{
	json_object *f = json_object_new_object();

	field(f, key, pw ? validate_password(pw, pl, username, email) : "required");
	return fields_done(r, f);
}

static enum api_err acct_password(struct api_req *r)
{
	static const char *const allowed[] = {"current_password", "new_password", NULL};
	json_object *body = NULL, *fields = NULL, *u = NULL;
	const char *cur, *nw;
	size_t cl, nl;
	char hash[PASSWORD_HASH_LEN];
	enum api_err rc;

	if ((rc = parse_body(r, allowed, &body, &fields)) != API_OK)
		return rc;
	if ((rc = fields_done(r, fields)) != API_OK)
		goto out;
	cur = str_of(body, "current_password", &cl);
	nw = str_of(body, "new_password", &nl);
	if (!(u = user_view(r, r->auth.user_id))) {
		rc = api_db_fail(r);
		goto out;
	}
	rc = check_new_password(r, nw, nl, jx_str(u, "username"), jx_str(u, "email"),
				"new_password");
	if (rc == API_OK)
		rc = check_current(r, cur, cl);
	if (rc != API_OK)
		goto out;
	if (password_hash(nw, nl, hash) < 0 ||
	    db_account_set_password(r->db, r->auth.user_id, hash, r->auth.session_id) < 0) {
		rc = api_db_fail(r);
		goto wipe;
	}
	auth_cache_bump();
	log_info("account msg=\"password changed, other sessions revoked\" user_id=%lld",
		 (long long)r->auth.user_id);
	rc = api_json(r, 200, obj_bool("changed", 1));
wipe:
	sodium_memzero(hash, sizeof hash);
out:
	wipe_json(body);
	json_object_put(body);
	json_object_put(u);
	return rc;
}

/* ---- PATCH /api/account (email) ---- */

static enum api_err acct_patch(struct api_req *r)
{
	static const char *const allowed[] = {"current_password", "email", NULL};
	json_object *body = NULL, *fields = NULL, *u;
	const char *cur, *email;
	size_t cl, el;
	enum api_err rc;
	int up;

	if ((rc = parse_body(r, allowed, &body, &fields)) != API_OK)
		return rc;
	email = str_of(body, "email", &el);
	field(fields, "email", email ? validate_email(email, el) : "required");
	if ((rc = fields_done(r, fields)) != API_OK)
		goto out;
	cur = str_of(body, "current_password", &cl);
	if ((rc = check_current(r, cur, cl)) != API_OK)
		goto out;
	up = db_account_set_email(r->db, r->auth.user_id, email);
	if (up < 0 && db_is_unique_violation(r->db)) {
		fields = json_object_new_object();
		field(fields, "email", "is already registered");
		rc = api_fail_fields(r, API_CONFLICT, "conflict", fields, "email already in use");
		goto out;
	}
	if (up <= 0) {
		rc = up < 0 ? api_db_fail(r) : api_fail(r, API_NOT_FOUND, "not_found", "no account");
		goto out;
	}
	log_info("account msg=\"email changed\" user_id=%lld", (long long)r->auth.user_id);
	u = user_view(r, r->auth.user_id);
	rc = u ? api_json(r, 200, u) : api_db_fail(r);
out:
	wipe_json(body);
	json_object_put(body);
	return rc;
}

/* ---- sessions ---- */

static enum api_err acct_sessions(struct api_req *r)
{
	PGresult *res = db_account_sessions(r->db, r->auth.user_id);
	json_object *o, *items;

	if (!res)
		return api_db_fail(r);
	items = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *s = json_object_new_object();
		jx_add_pg_int(s, "id", res, i, 0);
		jx_add_pg_str(s, "kind", res, i, 1);
		jx_add_pg_str(s, "created_at", res, i, 2);
		jx_add_pg_str(s, "last_seen", res, i, 3);
		jx_add_pg_str(s, "expires_at", res, i, 4);
		jx_add_pg_str(s, "absolute_expires_at", res, i, 5);
		jx_add_pg_str(s, "user_agent", res, i, 6);
		jx_add_pg_str(s, "ip", res, i, 7);
		json_object_object_add(s, "current", json_object_new_boolean(
			strtoll(PQgetvalue(res, i, 0), NULL, 10) == r->auth.session_id));
		json_object_array_add(items, s);
	}
	PQclear(res);
	o = json_object_new_object();
	json_object_object_add(o, "items", items);
	return api_json(r, 200, o);
}

static enum api_err acct_session_revoke(struct api_req *r)
{
	char *end;
	long long sid = strtoll(r->params[0], &end, 10);
	int rc;

	if (*end || sid <= 0)
		return api_fail(r, API_NOT_FOUND, "not_found", "no such session");
	rc = db_account_revoke_session(r->db, r->auth.user_id, sid);
	if (rc < 0)
		return api_db_fail(r);
	if (rc == 0)
		return api_fail(r, API_NOT_FOUND, "not_found", "no such live session of yours");
	auth_cache_bump();
	log_info("account msg=\"session revoked by its user\" user_id=%lld session_id=%lld",
		 (long long)r->auth.user_id, sid);
	return api_json(r, 200, obj_bool("revoked", 1));
}

/* ---- deleting data, deleting the account ---- */

/* Body {current_password} checked; API_OK to go on. */
static enum api_err confirm_password(struct api_req *r)
{
	static const char *const allowed[] = {"current_password", NULL};
	json_object *body = NULL, *fields = NULL;
	const char *cur;
	size_t cl;
	enum api_err rc;

	if ((rc = parse_body(r, allowed, &body, &fields)) != API_OK)
		return rc;
	if ((rc = fields_done(r, fields)) == API_OK) {
		cur = str_of(body, "current_password", &cl);
		rc = check_current(r, cur, cl);
	}
	wipe_json(body);
	json_object_put(body);
	return rc;
}

static enum api_err acct_delete_data(struct api_req *r)
{
	long req, cache;
	json_object *o;
	enum api_err rc = confirm_password(r);

	if (rc != API_OK)
		return rc;
	if (db_account_delete_data(r->db, r->auth.user_id, &req, &cache) < 0)
		return api_db_fail(r);
	log_info("account msg=\"data deleted by its user\" user_id=%lld requests=%ld cache=%ld",
		 (long long)r->auth.user_id, req, cache);
	o = json_object_new_object();
	json_object_object_add(o, "deleted_requests", json_object_new_int64(req));
	json_object_object_add(o, "deleted_cache_entries", json_object_new_int64(cache));
	return api_json(r, 200, o);
}

static enum api_err acct_delete(struct api_req *r)
{
	enum api_err rc = confirm_password(r);
	int n;

	if (rc != API_OK)
		return rc;
	n = db_account_delete(r->db, r->auth.user_id);
	if (n < 0)
		return api_db_fail(r);
	auth_cache_bump();
	api_auth_set_cookie(r, "", 0);
	return api_json(r, 200, obj_bool("deleted", n > 0));
}

/* ---- forgot password ---- */

/* Base URL for links in emails, from site.url only; NULL when unset. */
static const char *site_url(void)
{
	const char *u = cfg_str("site.url", "");

	return u && *u ? u : NULL;
}

/* Mail a new link to the account, at most ACCT_RESET_PER_USER an hour. */
static void reset_mail(struct api_req *r, int64_t uid, const char *email, const char *username)
{
	char bucket[48], token[DB_SESSION_TOKEN_HEX + 1], exp[40];
	struct buf body = BUF_INIT;
	long hits, retry;
	const char *base = site_url();
	size_t bl = strlen(base);

	snprintf(bucket, sizeof bucket, "reset-user:%lld", (long long)uid);
	if (db_rate_hit(r->db, bucket, ACCT_RESET_WINDOW_S, &hits, &retry) < 0 ||
	    hits > ACCT_RESET_PER_USER)
		return;
	if (db_reset_create(r->db, uid, 0, cfg_int("auth.reset_seconds", 1800), token, exp) < 0)
		return;
	buf_printf(&body, "Hello %s,\n\nsomeone (hopefully you) asked to reset the password of "
		   "your modelhub account. Open this link to choose a new one:\n\n"
		   "%.*s/#/reset-password?token=%s\n\nThe link works once, until %s (UTC). "
		   "If you did not ask for it, ignore this message.\n", username,
		   (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base, token, exp);
	sodium_memzero(token, sizeof token);
	if (!body.oom && mail_send(email, "modelhub password reset", body.data) == 0)
		log_info("account msg=\"reset link mailed\" user_id=%lld", (long long)uid);
	if (body.data)
		sodium_memzero(body.data, body.len);
	buf_free(&body);
}

static enum api_err reset_request(struct api_req *r)
{
	static const char *const allowed[] = {"login", NULL};
	json_object *body = NULL, *fields = NULL, *o;
	char bucket[96], email[320], username[64];
	const char *login;
	size_t ll;
	int64_t uid;
	int email_on = mail_enabled() && site_url(), found;
	enum api_err rc;

	if ((rc = parse_body(r, allowed, &body, &fields)) != API_OK)
		return rc;
	login = str_of(body, "login", &ll);
	field(fields, "login", !login || ll == 0 ? "required" : ll > 320 ? "is too long" : NULL);
	if ((rc = fields_done(r, fields)) != API_OK)
		goto out;
	snprintf(bucket, sizeof bucket, "reset:%s", api_client_ip(r));
	rc = limit(r, bucket, ACCT_RESET_WINDOW_S, cfg_int("reset.per_ip_per_hour", 10),
		   "password reset requests from this address");
	if (rc != API_OK || !email_on)
		goto reply;
	found = db_reset_target(r->db, login, &uid, email, username);
	if (found < 0) {
		rc = api_db_fail(r);
		goto out;
	}
	if (found == 0)
		reset_mail(r, uid, email, username);
reply:
	if (rc == API_OK) {
		o = json_object_new_object();
		json_object_object_add(o, "accepted", json_object_new_boolean(1));
		json_object_object_add(o, "email_enabled", json_object_new_boolean(email_on));
		rc = api_json(r, 202, o);
	}
out:
	json_object_put(body);
	return rc;
}

static enum api_err reset_invalid(struct api_req *r)
{
	json_object *f = json_object_new_object();

	field(f, "token", "is invalid, expired or was already used");
	return api_fail_fields(r, API_UNPROCESSABLE, "invalid_reset_token", f,
			       "this reset link is invalid, expired or was already used; ask for a new one");
}

/* The link's account, and the new password checked against it. */
static enum api_err reset_check(struct api_req *r, const char *token, const char *pw, size_t pl)
{
	char username[64], email[320];
	int rc;

	if (!token)
		return reset_invalid(r);
	rc = db_reset_peek(r->db, token, username, email);
	if (rc < 0)
		return api_db_fail(r);
	if (rc == 1)
		return reset_invalid(r);
	return check_new_password(r, pw, pl, username, email, "new_password");
}

static enum api_err reset_confirm(struct api_req *r)
{
	static const char *const allowed[] = {"token", "new_password", NULL};
	json_object *body = NULL, *fields = NULL;
	const char *token, *pw;
	char bucket[96], hash[PASSWORD_HASH_LEN];
	size_t tl, pl;
	int64_t uid = 0;
	enum api_err rc;
	int used;

	if ((rc = parse_body(r, allowed, &body, &fields)) != API_OK)
		return rc;
	if ((rc = fields_done(r, fields)) != API_OK)
		goto out;
	snprintf(bucket, sizeof bucket, "reset-confirm:%s", api_client_ip(r));
	rc = limit(r, bucket, ACCT_RESET_WINDOW_S, cfg_int("reset.per_ip_per_hour", 10) * 2,
		   "password reset attempts from this address");
	token = str_of(body, "token", &tl);
	pw = str_of(body, "new_password", &pl);
	if (rc == API_OK)
		rc = reset_check(r, token, pw, pl);
	if (rc != API_OK)
		goto out;
	if (password_hash(pw, pl, hash) < 0)
		used = -1;
	else
		used = db_reset_use(r->db, token, hash, &uid);
	sodium_memzero(hash, sizeof hash);
	if (used != 0) {
		rc = used < 0 ? api_db_fail(r) : reset_invalid(r);
		goto out;
	}
	auth_cache_bump();
	log_info("account msg=\"password reset by link, sessions revoked\" user_id=%lld",
		 (long long)uid);
	rc = api_json(r, 200, obj_bool("reset", 1));
out:
	wipe_json(body);
	json_object_put(body);
	return rc;
}

/* ---- guests ---- */

static long guest_ttl(void)
{
	return cfg_int("hub.retention_days", 7) * 86400L;
}

/* {guest_id?, kind, guest, requests?, expires_at} */
static json_object *guest_json(const char *token, const struct db_session_info *s)
{
	json_object *o = json_object_new_object();

	if (token)
		json_object_object_add(o, "guest_id", json_object_new_string(token));
	json_object_object_add(o, "guest", json_object_new_boolean(1));
	json_object_object_add(o, "kind", json_object_new_string(s->kind));
	json_object_object_add(o, "expires_at", json_object_new_string(s->expires_at));
	return o;
}

static enum api_err guest_create(struct api_req *r)
{
	char bucket[96], token[DB_SESSION_TOKEN_HEX + 1];
	struct db_session_info s;
	long ttl = guest_ttl();
	enum api_err rc;

	snprintf(bucket, sizeof bucket, "anon:%s", api_client_ip(r));
	rc = limit(r, bucket, ACCT_GUEST_WINDOW_S, cfg_int("anon.per_ip_per_hour", 60),
		   "anonymous sessions from this address");
	if (rc != API_OK)
		return rc;
	if (db_session_create(r->db, "ANON", 0, ttl, ttl, api_env(r, "HTTP_USER_AGENT"),
			      api_client_ip(r), token, &s) < 0)
		return api_db_fail(r);
	if (db_guest_mark(r->db, s.id) < 0) {
		sodium_memzero(token, sizeof token);
		return api_db_fail(r);
	}
	api_auth_set_cookie(r, token, ttl);
	log_info("account msg=\"guest session\" session_id=%lld", (long long)s.id);
	rc = api_json(r, 201, guest_json(token, &s));
	sodium_memzero(token, sizeof token);
	return rc;
}

static enum api_err guest_resume(struct api_req *r)
{
	static const char *const allowed[] = {"guest_id", NULL};
	json_object *body = NULL, *fields = NULL;
	unsigned char h[DB_SESSION_HASH_LEN];
	struct db_session_info s;
	const char *gid;
	char bucket[96];
	size_t gl;
	enum api_err rc;
	int found = 1;

	if ((rc = parse_body(r, allowed, &body, &fields)) != API_OK)
		return rc;
	if ((rc = fields_done(r, fields)) != API_OK)
		goto out;
	snprintf(bucket, sizeof bucket, "guest-resume:%s", api_client_ip(r));
	if ((rc = limit(r, bucket, ACCT_GUEST_WINDOW_S, cfg_int("anon.per_ip_per_hour", 60),
			"guest id attempts from this address")) != API_OK)
		goto out;
	gid = str_of(body, "guest_id", &gl);
	if (gid && db_token_hash(gid, h) == 0 && (found = db_session_lookup(r->db, h, &s)) == 0) {
		int g = db_guest_is(r->db, s.id, NULL);
		found = g == 1 ? 0 : g < 0 ? -1 : 1;
	}
	if (found < 0) {
		rc = api_db_fail(r);
		goto out;
	}
	if (found) {
		fields = json_object_new_object();
		field(fields, "guest_id", "is not a live guest id");
		rc = api_fail_fields(r, API_UNPROCESSABLE, "unknown_guest", fields,
				     "no guest session has this id (it may have expired)");
		goto out;
	}
	if (db_guest_refresh(r->db, s.id, guest_ttl(), &s) != 0) {
		rc = api_db_fail(r);
		goto out;
	}
	api_auth_set_cookie(r, gid, guest_ttl());
	rc = api_json(r, 200, guest_json(NULL, &s));
out:
	wipe_json(body);
	json_object_put(body);
	return rc;
}

/* GET /api/auth/guest: whether the caller is a guest, and its requests. */
static enum api_err guest_get(struct api_req *r)
{
	long n = 0;
	int g = r->auth.is_anon ? db_guest_is(r->db, r->auth.session_id, &n) : 0;
	json_object *o;

	if (g < 0)
		return api_db_fail(r);
	o = json_object_new_object();
	json_object_object_add(o, "guest", json_object_new_boolean(g));
	if (g) {
		json_object_object_add(o, "session_id", json_object_new_int64(r->auth.session_id));
		json_object_object_add(o, "requests", json_object_new_int64(n));
		json_object_object_add(o, "expires_at",
				       json_object_new_string(r->auth.absolute_expires_at));
	}
	return api_json(r, 200, o);
}

static enum api_err not_guest(struct api_req *r)
{
	return api_fail(r, API_FORBIDDEN, "not_guest", "this session is not a guest session");
}

static enum api_err guest_refresh(struct api_req *r)
{
	struct db_session_info s;
	int rc;

	if (!r->auth.is_anon)
		return not_guest(r);
	rc = db_guest_refresh(r->db, r->auth.session_id, guest_ttl(), &s);
	if (rc < 0)
		return api_db_fail(r);
	if (rc == 1)
		return not_guest(r);
	return api_json(r, 200, guest_json(NULL, &s));
}

/* POST /api/auth/guest/new-id: a new guest id to copy (the old one, and
 * the cookie of any other browser using it, stop working). */
static enum api_err guest_new_id(struct api_req *r)
{
	char token[DB_SESSION_TOKEN_HEX + 1];
	json_object *o;
	enum api_err e;
	int rc;

	if (!r->auth.is_anon)
		return not_guest(r);
	rc = db_guest_rotate(r->db, r->auth.session_id, token);
	if (rc < 0)
		return api_db_fail(r);
	if (rc == 1)
		return not_guest(r);
	auth_cache_bump();
	api_auth_set_cookie(r, token, guest_ttl());
	o = json_object_new_object();
	json_object_object_add(o, "guest_id", json_object_new_string(token));
	json_object_object_add(o, "guest", json_object_new_boolean(1));
	e = api_json(r, 200, o);
	sodium_memzero(token, sizeof token);
	return e;
}

/* Signup fields of a claim: 422 naming the bad ones, 409 when taken. */
static enum api_err claim_fields(struct api_req *r, json_object *body, json_object *fields)
{
	const char *u, *e, *p, *f, *l;
	size_t ul, el, pl, fl, ll;
	int ut = 0, et = 0;
	enum api_err rc;

	u = str_of(body, "username", &ul);
	e = str_of(body, "email", &el);
	p = str_of(body, "password", &pl);
	f = str_of(body, "first_name", &fl);
	l = str_of(body, "last_name", &ll);
	field(fields, "username", validate_username(u, ul));
	field(fields, "email", validate_email(e, el));
	field(fields, "password", validate_password(p, pl, u, e));
	field(fields, "first_name", validate_name(f, fl));
	field(fields, "last_name", validate_name(l, ll));
	if ((rc = fields_done(r, fields)) != API_OK)
		return rc;
	if (db_user_taken(r->db, u, e, &ut, &et) < 0)
		return api_db_fail(r);
	if (!ut && !et)
		return API_OK;
	fields = json_object_new_object();
	field(fields, "username", ut ? "is already taken" : NULL);
	field(fields, "email", et ? "is already registered" : NULL);
	return api_fail_fields(r, API_CONFLICT, "conflict", fields, "already in use");
}

/* The new account's first session, as login makes it. */
static enum api_err claim_login(struct api_req *r, int64_t uid, long moved)
{
	char token[DB_SESSION_TOKEN_HEX + 1];
	struct db_session_info s;
	long idle = cfg_int("session.idle_seconds", 1800);
	long abs = cfg_int("session.absolute_seconds", 86400);
	json_object *o, *u;

	if (db_session_create(r->db, "USER", uid, idle, abs, api_env(r, "HTTP_USER_AGENT"),
			      api_client_ip(r), token, &s) < 0 || !(u = user_view(r, uid)))
		return api_db_fail(r);
	api_auth_set_cookie(r, token, abs);
	sodium_memzero(token, sizeof token);
	o = json_object_new_object();
	json_object_object_add(o, "user", u);
	json_object_object_add(o, "moved_requests", json_object_new_int64(moved));
	json_object_object_add(o, "kind", json_object_new_string(s.kind));
	json_object_object_add(o, "expires_at", json_object_new_string(s.expires_at));
	json_object_object_add(o, "absolute_expires_at",
			       json_object_new_string(s.absolute_expires_at));
	return api_json(r, 201, o);
}

static enum api_err guest_claim(struct api_req *r)
{
	static const char *const allowed[] = {"username", "email", "password", "first_name",
					      "last_name", NULL};
	json_object *body = NULL, *fields = NULL;
	char bucket[96];
	int64_t uid;
	long moved;
	enum api_err rc;
	int g = r->auth.is_anon ? db_guest_is(r->db, r->auth.session_id, NULL) : 0;

	if (g <= 0)
		return g < 0 ? api_db_fail(r) : not_guest(r);
	if ((rc = parse_body(r, allowed, &body, &fields)) != API_OK)
		return rc;
	if ((rc = claim_fields(r, body, fields)) != API_OK)
		goto out;
	snprintf(bucket, sizeof bucket, "signup:%s", api_client_ip(r));
	if ((rc = limit(r, bucket, 3600, cfg_int("signup.per_ip_per_hour", 30),
			"signups from this address")) != API_OK)
		goto out;
	if (db_user_create(r->db, jx_str(body, "username"), jx_str(body, "email"),
			   jx_str(body, "password"), jx_str(body, "first_name"),
			   jx_str(body, "last_name"), "USER", &uid) < 0 ||
	    db_guest_claim(r->db, r->auth.session_id, uid, &moved) < 0) {
		rc = api_db_fail(r);
		goto out;
	}
	auth_cache_bump();
	log_info("account msg=\"guest became an account\" session_id=%lld user_id=%lld moved=%ld",
		 (long long)r->auth.session_id, (long long)uid, moved);
	rc = claim_login(r, uid, moved);
out:
	wipe_json(body);
	json_object_put(body);
	return rc;
}

const struct api_route api_account_routes[] = {
	{"PATCH", "/api/account", ACCESS_USER, acct_patch},
	{"POST", "/api/account/password", ACCESS_USER, acct_password},
	{"GET", "/api/account/sessions", ACCESS_USER, acct_sessions},
	{"DELETE", "/api/account/sessions/{}", ACCESS_USER, acct_session_revoke},
	{"POST", "/api/account/delete-data", ACCESS_USER, acct_delete_data},
	{"POST", "/api/account/delete", ACCESS_USER, acct_delete},
	{"POST", "/api/auth/password-reset", ACCESS_PUBLIC, reset_request},
	{"POST", "/api/auth/password-reset/confirm", ACCESS_PUBLIC, reset_confirm},
	{"POST", "/api/auth/guest", ACCESS_PUBLIC, guest_create},
	{"GET", "/api/auth/guest", ACCESS_SESSION, guest_get},
	{"POST", "/api/auth/guest/resume", ACCESS_PUBLIC, guest_resume},
	{"POST", "/api/auth/guest/refresh", ACCESS_SESSION, guest_refresh},
	{"POST", "/api/auth/guest/new-id", ACCESS_SESSION, guest_new_id},
	{"POST", "/api/auth/guest/claim", ACCESS_SESSION, guest_claim},
	{0},
};
