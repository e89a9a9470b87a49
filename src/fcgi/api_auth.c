/*
 * api_auth.c — accounts and sessions: who is calling (api_auth_resolve),
 * the CSRF rule, and the handlers under /api/auth and /api/admin/users.
 *
 * Runs in: modelhub-fcgi master (api_auth_global_init, before forking) and
 * workers (everything else). Called by: worker.c (resolve, per request),
 * router.c (csrf, route table). Owns: the dummy password hash (static,
 * made once), the token hash of the request being served (static, one
 * request at a time per worker).
 * Shared state: tables app_user, session, login_attempt, rate_limit (via
 * db_user.c/db_session.c); the revocation counter of auth_cache.c (bumped on
 * logout, user disable and role change so every worker drops its cached
 * sessions at once).
 *
 * DESIGN
 * - Tokens come from `Authorization: Bearer <64 hex>` or the cookie
 *   modelhub_session; Bearer wins when both are present. Only a cookie makes
 *   via_cookie = 1, and only then does the router apply the CSRF rule.
 * - A token that is malformed, unknown, expired or revoked sets
 *   r->auth_error, so routes needing a session answer 401 session_expired
 *   and the client can log out cleanly. If the database cannot be reached
 *   the request simply carries no session (the route then answers 401
 *   unauthorized); the cached sessions keep working meanwhile.
 * - Login: unknown user and wrong password give the same 401 and cost the
 *   same argon2id verification (against a dummy hash). The throttle
 *   (login_rate) cannot be turned against others: a hard limit only per
 *   (account, address), an exponential delay per account, a loose
 *   failures-only limit per address; a success resets the counts. The
 *   address is the client's through http.trusted_proxies (clientaddr.c).
 * - Activity does not slide the idle expiry; POST /api/auth/refresh does
 *   (never past the absolute expiry; user sessions only, anonymous ones get
 *   403). ANON and API sessions do not idle.
 * - The session cache (auth_cache.c) holds an entry until the session's
 *   earlier expiry, at most session.cache_seconds (30). Revocations reach
 *   it two ways: the shared counter (workers of this master, at once) and
 *   `NOTIFY session_revoked` (sent by every revocation, from any replica or
 *   modelhubctl): each worker LISTENs on its own connection and, before
 *   using its cache, drains the notifications with one non-blocking read;
 *   any session_revoked empties its cache. A revocation made without NOTIFY
 *   (plain SQL) is seen within session.cache_seconds.
 *   NOTE: this drains every notification of the worker connection; no other
 *   fcgi code LISTENs today, and one that does must share this drain.
 * - Passwords are wiped from the request body and the parsed JSON as soon
 *   as they have been hashed or verified.
 */
#include "fcgi/api.h"
#include "fcgi/auth_cache.h"
#include "fcgi/clientaddr.h"
#include "db/db_session.h"
#include "db/db_user.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/password.h"
#include "lib/validate.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define AUTH_COOKIE "modelhub_session"
#define AUTH_LOGIN_WINDOW_S 900      /* failed-login counting window: 15 min */
#define AUTH_ANON_WINDOW_S 3600      /* anon.per_ip_per_hour window */
#define AUTH_SIGNUP_WINDOW_S 3600    /* signup.per_ip_per_hour window */
#define AUTH_CACHE_MAX_S 30          /* default session.cache_seconds: bounds how long
				      * a revocation made elsewhere (another replica,
				      * modelhubctl) can go unseen by this worker */
#define AUTH_USERS_PAGE_MAX 500

enum cache_outcome { CACHE_NONE = 0, CACHE_HIT, CACHE_MISS };

static char dummy_hash[PASSWORD_HASH_LEN];
static unsigned char cur_hash[DB_SESSION_HASH_LEN];
static int cur_hash_set;
static enum cache_outcome cur_outcome;
static int listening;

/* ---- set-up ---- */

static int make_dummy_hash(void)
{
	unsigned char pw[16];
	char hex[33];
	int rc;

	randombytes_buf(pw, sizeof pw);
	sodium_bin2hex(hex, sizeof hex, pw, sizeof pw);
	rc = password_hash(hex, strlen(hex), dummy_hash);
	sodium_memzero(pw, sizeof pw);
	sodium_memzero(hex, sizeof hex);
	return rc;
}

int api_auth_global_init(void)
{
	if (sodium_init() < 0) {
		log_error_x("auth msg=\"sodium_init failed\"");
		return -1;
	}
	if (auth_cache_shared_init() < 0)
		return -1;
	if (make_dummy_hash() < 0)
		return -1;
	{
		char bad[80];
		if (clientaddr_list_check(cfg_str("http.trusted_proxies", ""), bad, sizeof bad) < 0)
			log_warn_x("auth msg=\"http.trusted_proxies: entry ignored (not an address"
				   " or CIDR)\" entry=\"%s\"", bad);
	}
	if (cfg_bool("auth.pwhash_fast", 0))
		log_warn_x("auth msg=\"auth.pwhash_fast is on: weak password hashing, tests only\"");
	return 0;
}

/* ---- who is calling ---- */

/* Copy the token of the request into tok. 1 found, 0 none, -1 present but
 * malformed. *via_cookie says where it came from. */
static int token_of(struct api_req *r, char tok[DB_SESSION_TOKEN_HEX + 1], int *via_cookie)
{
	const char *h = api_env(r, "HTTP_AUTHORIZATION");
	const char *c = api_env(r, "HTTP_COOKIE");
	size_t n;

	*via_cookie = 0;
	if (h && *h) {
		/* the old Ersilia hub's scheme, on its routes only (api_compat.c) */
		if (strncasecmp(h, "ErsiliaAnonymous ", 17) == 0)
			return api_compat_route(r->path) ? api_compat_token(h + 17, tok) : -1;
		if (strncasecmp(h, "Bearer ", 7) != 0)
			return -1;
		h += 7;
		while (*h == ' ')
			h++;
		n = strcspn(h, " ");
		if (n != DB_SESSION_TOKEN_HEX || h[n + strspn(h + n, " ")] != '\0')
			return -1;
		memcpy(tok, h, n);
		tok[n] = '\0';
		return 1;
	}
	for (const char *p = c; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		n = strcspn(p, ";");
		if (n > sizeof AUTH_COOKIE && strncmp(p, AUTH_COOKIE "=", sizeof AUTH_COOKIE) == 0) {
			const char *v = p + sizeof AUTH_COOKIE;
			size_t vl = n - sizeof AUTH_COOKIE;
			while (vl && v[vl - 1] == ' ')
				vl--;
			*via_cookie = 1;
			if (vl != DB_SESSION_TOKEN_HEX)
				return -1;
			memcpy(tok, v, vl);
			tok[vl] = '\0';
			return 1;
		}
		p += n;
	}
	return 0;
}

static void auth_from_info(struct api_auth *a, const struct db_session_info *s)
{
	memset(a, 0, sizeof *a);
	a->present = 1;
	a->is_anon = strcmp(s->kind, "ANON") == 0;
	a->is_admin = s->is_admin;
	a->user_id = s->user_id;
	a->session_id = s->id;
	snprintf(a->username, sizeof a->username, "%s", s->username);
	snprintf(a->expires_at, sizeof a->expires_at, "%s", s->expires_at);
	snprintf(a->absolute_expires_at, sizeof a->absolute_expires_at, "%s",
		 s->absolute_expires_at);
}

/* Test builds of the stack (auth.debug_headers = 1) see which worker
 * answered and whether the session came from its cache, on every request
 * that carried a token. */
static void debug_headers(struct api_req *r, const char *outcome)
{
	if (!cfg_bool("auth.debug_headers", 0))
		return;
	api_header(r, "X-Worker-Pid", "%ld", (long)getpid());
	api_header(r, "X-Session-Cache", "%s", outcome);
}

/* Empty the cache if another process revoked sessions (NOTIFY). */
static void drain_revocations(struct db *db)
{
	PGnotify *n;
	int any = 0;

	if (!db)
		return;
	if (!listening) {
		if (db_listen(db, "session_revoked") < 0)
			return;
		listening = 1;
	}
	while ((n = db_next_notify(db)) != NULL) {
		if (strcmp(n->relname, "session_revoked") == 0)
			any = 1;
		PQfreemem(n);
	}
	if (any)
		auth_cache_clear();
}

void api_auth_resolve(struct api_req *r)
{
	char tok[DB_SESSION_TOKEN_HEX + 1];
	struct db_session_info info;
	struct api_auth a;
	int via_cookie, rc;
	int64_t now, ttl, cap;
	uint64_t gen;

	memset(&r->auth, 0, sizeof r->auth);
	r->auth_error = 0;
	cur_hash_set = 0;
	cur_outcome = CACHE_NONE;
	rc = token_of(r, tok, &via_cookie);
	if (rc == 0)
		return;
	if (rc < 0 || db_token_hash(tok, cur_hash) < 0) {
		sodium_memzero(tok, sizeof tok);
		r->auth_error = 1;
		debug_headers(r, "invalid");
		return;
	}
	sodium_memzero(tok, sizeof tok);
	cur_hash_set = 1;
	drain_revocations(r->db);
	now = mh_mono_ms();
	if (auth_cache_get(cur_hash, now, &a)) {
		cur_outcome = CACHE_HIT;
		r->auth = a;
		r->auth.via_cookie = via_cookie;
		debug_headers(r, "hit");
		return;
	}
	cur_outcome = CACHE_MISS;
	debug_headers(r, "miss");
	/* read before the lookup: a revocation racing with it invalidates the entry */
	gen = auth_cache_generation();
	if (!r->db) {
		r->auth_error = 1;
		return;
	}
	rc = db_session_lookup(r->db, cur_hash, &info);
	if (rc < 0) {
		/* Not the caller's fault: routes that need a session answer 503,
		 * not a 401 that would log a browser out. */
		log_warn_x("auth msg=\"session lookup failed (database unavailable?)\"");
		r->auth_error = 2;
		return;
	}
	if (rc == 1) {
		r->auth_error = 1;
		return;
	}
	auth_from_info(&a, &info);
	cap = cfg_int("session.cache_seconds", AUTH_CACHE_MAX_S) * 1000;
	ttl = info.remaining_ms < cap ? info.remaining_ms : cap;
	if (ttl > 0)
		auth_cache_put(cur_hash, &a, now + ttl, gen);
	r->auth = a;
	r->auth.via_cookie = via_cookie;
}

/* Host part of an Origin ("https://h:p" -> "h:p"), or NULL. */
static const char *origin_host(const char *o)
{
	if (strncasecmp(o, "https://", 8) == 0)
		return o + 8;
	if (strncasecmp(o, "http://", 7) == 0)
		return o + 7;
	return NULL;
}

int api_auth_csrf_ok(struct api_req *r)
{
	const char *xrw, *origin, *host, *oh;

	if (!r->auth.via_cookie)
		return 0;
	xrw = api_env(r, "HTTP_X_REQUESTED_WITH");
	if (xrw && *xrw)
		return 0;
	origin = api_env(r, "HTTP_ORIGIN");
	host = api_env(r, "HTTP_HOST");
	if (origin && host && *host && (oh = origin_host(origin)) != NULL &&
	    strcasecmp(oh, host) == 0)
		return 0;
	log_warn_x("auth msg=\"csrf rule rejected a cookie request\" method=%s session_id=%lld",
		   r->method, (long long)r->auth.session_id);
	return -1;
}

/* ---- helpers ---- */

static int is_https(struct api_req *r)
{
	const char *h = api_env(r, "HTTPS");
	const char *p = api_env(r, "HTTP_X_FORWARDED_PROTO");

	return (h && strcasecmp(h, "on") == 0) || (p && strcasecmp(p, "https") == 0);
}

static void set_cookie(struct api_req *r, const char *token, long max_age)
{
	api_header(r, "Set-Cookie", AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%ld%s",
		   token, max_age, is_https(r) ? "; Secure" : "");
}

void api_auth_set_cookie(struct api_req *r, const char *token, long max_age)
{
	set_cookie(r, token, max_age);
}

/* The client's address: REMOTE_ADDR, or through http.trusted_proxies the
 * forwarding headers (clientaddr.c). The buffer is static: one request at
 * a time per worker; valid until the next call. */
const char *api_client_ip(struct api_req *r)
{
	static char ip[CLIENTADDR_MAX];

	clientaddr_pick(cfg_str("http.trusted_proxies", ""), api_env(r, "REMOTE_ADDR"),
			api_env(r, "HTTP_FORWARDED"), api_env(r, "HTTP_X_FORWARDED_FOR"), ip);
	return ip;
}


/* Wipe the raw body: it may hold a password. */
static void wipe_body(struct api_req *r)
{
	if (r->body && r->body_len)
		sodium_memzero(r->body, r->body_len);
}

/* Wipe a string member of a parsed object in place. */
static void wipe_member(json_object *o, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)) {
		int n = json_object_get_string_len(v);
		if (n > 0)
			sodium_memzero((void *)json_object_get_string(v), (size_t)n);
	}
}

/* Reject members not in `allowed` (NULL-terminated): each named in fields. */
static void unknown_members(json_object *body, const char *const *allowed, json_object *fields)
{
	json_object_object_foreach(body, key, val) {
		int known = 0;
		(void)val;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				known = 1;
		if (!known)
			json_object_object_add(fields, key, json_object_new_string("unknown field"));
	}
}

/* A string member: NULL when absent or null (then *len = 0); records
 * "must be a string" in fields for another type. */
static const char *str_member(json_object *body, const char *key, size_t *len,
			      json_object *fields)
{
	json_object *v;

	*len = 0;
	if (!json_object_object_get_ex(body, key, &v) || !v)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		json_object_object_add(fields, key, json_object_new_string("must be a string"));
		return NULL;
	}
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

static void field_err(json_object *fields, const char *key, const char *msg)
{
	if (msg && !json_object_object_get_ex(fields, key, NULL))
		json_object_object_add(fields, key, json_object_new_string(msg));
}

/* The public view of a user (never the hash). NULL if gone or on error
 * (*db_error set when the database failed). */
static json_object *user_json(struct api_req *r, int64_t id, int *db_error)
{
	PGresult *res;
	json_object *u;

	*db_error = 0;
	res = db_user_get(r->db, id);
	if (!res) {
		*db_error = 1;
		return NULL;
	}
	if (PQntuples(res) != 1) {
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

static void add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

/* ---- POST /api/auth/signup ---- */

/* 409 naming the taken field(s), or API_OK when neither is taken. */
static enum api_err signup_taken(struct api_req *r, const char *username, const char *email)
{
	json_object *fields;
	int u, e;

	if (db_user_taken(r->db, username, email, &u, &e) < 0)
		return api_db_fail(r);
	if (!u && !e)
		return API_OK;
	fields = json_object_new_object();
	if (u)
		add_str(fields, "username", "is already taken");
	if (e)
		add_str(fields, "email", "is already registered");
	return api_fail_fields(r, API_CONFLICT, "conflict", fields, "%s already in use",
			       u && e ? "username and email are" : u ? "username is" : "email is");
}

/* Signups per client address per hour: each costs an argon2id hash
 * (64 MiB, tens of ms), so a flood must not pin every worker. Only
 * signups that passed validation count, taken names included: the check
 * runs before any lookup so it cannot be used as an account oracle. */
static enum api_err signup_rate(struct api_req *r)
{
	char bucket[96];
	const char *ip = api_client_ip(r);
	long per_hour = cfg_int("signup.per_ip_per_hour", 30), hits, retry;

	if (per_hour <= 0)
		return API_OK;
	snprintf(bucket, sizeof bucket, "signup:%s", ip);
	if (db_rate_hit(r->db, bucket, AUTH_SIGNUP_WINDOW_S, &hits, &retry) < 0)
		return api_db_fail(r);
	if (hits <= per_hour)
		return API_OK;
	api_header(r, "Retry-After", "%ld", retry);
	log_warn_x("auth msg=\"signups rate limited\" ip=%s hits=%ld", ip, hits);
	return api_fail(r, API_RATE_LIMITED, "rate_limited",
			"too many signups from this address; retry in %ld seconds", retry);
}

static enum api_err auth_signup(struct api_req *r)
{
	static const char *const allowed[] = {"username", "email", "password", "first_name",
					      "last_name", NULL};
	json_object *body = NULL, *fields = NULL, *user;
	const char *username, *email, *password, *first, *last;
	size_t ul, el, pl, fl, ll;
	enum api_err rc;
	int64_t id;
	int dberr;

	rc = api_body_json(r, &body);
	wipe_body(r);
	if (rc != API_OK)
		return rc;
	fields = json_object_new_object();
	unknown_members(body, allowed, fields);
	username = str_member(body, "username", &ul, fields);
	email = str_member(body, "email", &el, fields);
	password = str_member(body, "password", &pl, fields);
	first = str_member(body, "first_name", &fl, fields);
	last = str_member(body, "last_name", &ll, fields);
	field_err(fields, "username", validate_username(username, ul));
	field_err(fields, "email", validate_email(email, el));
	field_err(fields, "password", validate_password(password, pl, username, email));
	field_err(fields, "first_name", validate_name(first, fl));
	field_err(fields, "last_name", validate_name(last, ll));
	if (json_object_object_length(fields) > 0) {
		rc = api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", fields,
				     "some fields are invalid");
		fields = NULL;
		goto out;
	}
	/* the rate first: past the limit taken and free names answer alike */
	rc = signup_rate(r);
	if (rc == API_OK)
		rc = signup_taken(r, username, email);
	if (rc != API_OK)
		goto out;
	if (db_user_create(r->db, username, email, password, first, last, "USER", &id) < 0) {
		/* lost a race with another signup of the same name: say which */
		rc = db_is_unique_violation(r->db) ? signup_taken(r, username, email)
						   : api_db_fail(r);
		if (rc == API_OK)
			rc = api_fail(r, API_CONFLICT, "conflict", "username or email already in use");
		goto out;
	}
	user = user_json(r, id, &dberr);
	if (!user) {
		rc = api_db_fail(r);
		goto out;
	}
	rc = api_json(r, 201, user);
out:
	if (body)
		wipe_member(body, "password");
	json_object_put(fields);
	json_object_put(body);
	return rc;
}

/* ---- POST /api/auth/login ---- */

static enum api_err login_session(struct api_req *r, const struct db_login_user *u)
{
	char token[DB_SESSION_TOKEN_HEX + 1];
	struct db_session_info s;
	long idle = cfg_int("session.idle_seconds", 1800);
	long abs = cfg_int("session.absolute_seconds", 86400);
	const char *ua = api_env(r, "HTTP_USER_AGENT");
	json_object *o, *user;
	int dberr;

	if (db_session_create(r->db, "USER", u->id, idle, abs, ua, api_client_ip(r), token, &s) < 0)
		return api_db_fail(r);
	user = user_json(r, u->id, &dberr);
	if (!user) {
		sodium_memzero(token, sizeof token);
		return api_db_fail(r);
	}
	o = json_object_new_object();
	add_str(o, "token", token);
	json_object_object_add(o, "user", user);
	add_str(o, "kind", s.kind);
	add_str(o, "expires_at", s.expires_at);
	add_str(o, "absolute_expires_at", s.absolute_expires_at);
	set_cookie(r, token, abs);
	sodium_memzero(token, sizeof token);
	log_info("auth msg=\"login\" user_id=%lld session_id=%lld", (long long)u->id,
		 (long long)s.id);
	return api_json(r, 200, o);
}

/* The body's login (username, else email) and password; API_OK or the
 * 422 naming the fields. keymax bounds the login's length. */
static enum api_err login_fields(struct api_req *r, json_object *body, size_t keymax,
				 const char **login, size_t *ll, const char **password, size_t *pl)
{
	static const char *const allowed[] = {"username", "email", "password", NULL};
	json_object *fields = json_object_new_object();
	size_t el;

	unknown_members(body, allowed, fields);
	*login = str_member(body, "username", ll, fields);
	if (!*login) {
		*login = str_member(body, "email", &el, fields);
		*ll = el;
	}
	*password = str_member(body, "password", pl, fields);
	if (!*login || *ll == 0)
		field_err(fields, "username", "required");
	else if (*ll >= keymax || memchr(*login, '\0', *ll))
		field_err(fields, "username", "is not a valid username or email");
	if (!*password || *pl == 0)
		field_err(fields, "password", "required");
	else if (*pl > VALIDATE_PASSWORD_MAX)
		field_err(fields, "password", "must be at most 1024 bytes long");
	if (json_object_object_length(fields) > 0)
		return api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", fields,
				       "some fields are invalid");
	json_object_put(fields);
	return API_OK;
}

/* Failures count against the account itself, however it was named: its
 * username when found, else the login lower-cased. */
static void login_key(char *key, size_t n, int found, const struct db_login_user *u,
		      const char *login, size_t ll)
{
	size_t i;

	if (found == 0) {
		snprintf(key, n, "%s", u->username);
		return;
	}
	for (i = 0; i < ll && i + 1 < n; i++)
		key[i] = (char)tolower((unsigned char)login[i]);
	key[i] = '\0';
}

/* Seconds the account must still wait: after max failures (from any
 * address, since its last success) each further attempt waits base * 2^k
 * seconds after the newest failure, k = failures beyond max, at most cap.
 * A delay, not a lock: the owner (from a new address) gets in after it. */
static long account_delay(const struct db_login_state *st, long max, long base, long cap)
{
	double d = (double)base, left;

	if (st->acct_fail < max || base <= 0)
		return 0;
	for (long k = st->acct_fail - max; k > 0 && d < (double)cap; k--)
		d *= 2;
	if (d > (double)cap)
		d = (double)cap;
	left = d - st->acct_last_fail_age_s;
	return left > 0 ? (long)left + 1 : 0;
}

static enum api_err login_limited(struct api_req *r, long retry, const char *what,
				  const char *ip)
{
	if (retry < 1)
		retry = 1;
	api_header(r, "Retry-After", "%ld", retry);
	log_warn_x("auth msg=\"login rate limited\" limit=%s ip=%s retry_s=%ld", what, ip, retry);
	return api_fail(r, API_RATE_LIMITED, "rate_limited",
			"too many %s; retry in %ld seconds", what, retry);
}

/* The login throttle (policy: docs/auth.md, after OWASP's Authentication
 * Cheat Sheet). In order: attempts per (account, address) per minute,
 * successes included (each costs an argon2id verification); failures per
 * (account, address): a hard limit, it only ever stops that pair; the
 * account's exponential delay; failures per address (much looser, any
 * account; a success from the address resets it). 429 + Retry-After
 * without checking the password. */
static enum api_err login_rate(struct api_req *r, const char *key, const char *ip)
{
	long max = cfg_int("login.max_failures", 5);
	long ip_max = cfg_int("login.max_failures_per_address", 100);
	long per_min = cfg_int("login.per_account_address_per_minute", 10);
	long base = cfg_int("login.delay_base_seconds", 1), cap = cfg_int("login.delay_max_seconds", 60);
	struct db_login_state st;
	char bucket[400];
	long hits, retry;

	if (per_min > 0) {
		snprintf(bucket, sizeof bucket, "login:%s|%s", ip, key);
		if (db_rate_hit(r->db, bucket, 60, &hits, &retry) < 0)
			return api_db_fail(r);
		if (hits > per_min)
			return login_limited(r, retry, "login attempts for this account from this address", ip);
	}
	if (db_login_state(r->db, key, ip, AUTH_LOGIN_WINDOW_S, max, ip_max, &st) < 0)
		return api_db_fail(r);
	if (max > 0 && st.pair_fail >= max)
		return login_limited(r, st.pair_retry_s,
				     "failed logins for this account from this address", ip);
	if ((retry = account_delay(&st, max, base, cap)) > 0)
		return login_limited(r, retry, "failed logins for this account", ip);
	if (ip_max > 0 && st.ip_fail >= ip_max)
		return login_limited(r, st.ip_retry_s, "failed logins from this address", ip);
	return API_OK;
}

/* The password (the same work whether or not the account exists) and the
 * account's state; records the attempt. API_OK: the login may proceed. */
static enum api_err login_verify(struct api_req *r, int found, const struct db_login_user *u,
				 const char *key, const char *password, size_t pl)
{
	const char *ip = api_client_ip(r);

	if (!dummy_hash[0] && make_dummy_hash() < 0)
		return api_fail(r, API_INTERNAL, "internal", "cannot make the dummy hash");
	if (!(password_verify(found == 0 ? u->hash : dummy_hash, password, pl) && found == 0)) {
		if (db_login_record(r->db, key, ip, 0) < 0)
			return api_db_fail(r);
		log_info("auth msg=\"login failed\" ip=%s", ip);
		return api_fail(r, API_UNAUTHORIZED, "invalid_credentials",
				"wrong username or password");
	}
	if (u->disabled) {
		log_info("auth msg=\"login refused: account disabled\" user_id=%lld",
			 (long long)u->id);
		return api_fail(r, API_FORBIDDEN, "account_disabled", "this account is disabled");
	}
	if (password_needs_rehash(u->hash)) {
		char h[PASSWORD_HASH_LEN];
		if (password_hash(password, pl, h) == 0)
			db_session_store_hash(r->db, u->id, h);
		sodium_memzero(h, sizeof h);
	}
	if (db_login_record(r->db, key, ip, 1) < 0)
		return api_db_fail(r);
	return API_OK;
}

static enum api_err auth_login(struct api_req *r)
{
	json_object *body = NULL;
	const char *login, *password;
	size_t ll, pl;
	struct db_login_user u;
	char key[320];
	enum api_err rc;
	int found;

	memset(&u, 0, sizeof u);
	rc = api_body_json(r, &body);
	wipe_body(r);
	if (rc != API_OK)
		return rc;
	rc = login_fields(r, body, sizeof key, &login, &ll, &password, &pl);
	if (rc != API_OK)
		goto out;
	found = db_session_login_user(r->db, login, &u);
	if (found < 0) {
		rc = api_db_fail(r);
		goto out;
	}
	login_key(key, sizeof key, found, &u, login, ll);
	rc = login_rate(r, key, api_client_ip(r));
	if (rc == API_OK)
		rc = login_verify(r, found, &u, key, password, pl);
	if (rc == API_OK)
		rc = login_session(r, &u);
out:
	sodium_memzero(&u, sizeof u);
	if (body)
		wipe_member(body, "password");
	json_object_put(body);
	return rc;
}

/* ---- POST /api/auth/logout, /refresh; GET /api/auth/session ---- */

static enum api_err auth_logout(struct api_req *r)
{
	json_object *o;

	if (db_session_revoke(r->db, r->auth.session_id) < 0)
		return api_db_fail(r);
	auth_cache_bump();
	if (cur_hash_set)
		auth_cache_drop(cur_hash);
	log_info("auth msg=\"logout\" session_id=%lld user_id=%lld", (long long)r->auth.session_id,
		 (long long)r->auth.user_id);
	api_header(r, "Set-Cookie", AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
		   is_https(r) ? "; Secure" : "");
	o = json_object_new_object();
	json_object_object_add(o, "logged_out", json_object_new_boolean(1));
	return api_json(r, 200, o);
}

static enum api_err auth_refresh(struct api_req *r)
{
	struct db_session_info s;
	json_object *o;
	int rc = db_session_refresh(r->db, r->auth.session_id,
				    cfg_int("session.idle_seconds", 1800), &s);

	if (rc < 0)
		return api_db_fail(r);
	if (cur_hash_set)
		auth_cache_drop(cur_hash); /* its expires_at is now out of date */
	if (rc == 1)
		return api_fail(r, API_UNAUTHORIZED, "session_expired",
				"the session has expired or was revoked; log in again");
	o = json_object_new_object();
	add_str(o, "kind", s.kind);
	add_str(o, "expires_at", s.expires_at);
	add_str(o, "absolute_expires_at", s.absolute_expires_at);
	return api_json(r, 200, o);
}

static enum api_err auth_session(struct api_req *r)
{
	PGresult *res;
	json_object *o, *user = NULL, *roles;
	int dberr = 0;

	/* the row, not the cache: another worker may have refreshed it */
	res = db_session_row(r->db, r->auth.session_id);
	if (!res)
		return api_db_fail(r);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return api_fail(r, API_UNAUTHORIZED, "session_expired", "the session is gone");
	}
	if (r->auth.user_id > 0 && !(user = user_json(r, r->auth.user_id, &dberr))) {
		PQclear(res);
		return dberr ? api_db_fail(r)
			     : api_fail(r, API_UNAUTHORIZED, "session_expired", "the user is gone");
	}
	o = json_object_new_object();
	if (user) {
		json_object *ur;
		json_object_object_get_ex(user, "roles", &ur);
		roles = ur ? json_object_get(ur) : json_object_new_array();
	} else {
		roles = json_object_new_array();
	}
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "roles", roles);
	jx_add_pg_str(o, "kind", res, 0, 0);
	jx_add_pg_str(o, "expires_at", res, 0, 1);
	jx_add_pg_str(o, "absolute_expires_at", res, 0, 2);
	PQclear(res);
	if (!cfg_bool("auth.debug_headers", 0)) /* else already set by resolve */
		api_header(r, "X-Session-Cache", "%s", cur_outcome == CACHE_HIT ? "hit" : "miss");
	return api_json(r, 200, o);
}

/* ---- POST /api/auth/anon ---- */

enum api_err api_auth_anon_admit(struct api_req *r)
{
	char bucket[96];
	const char *ip = api_client_ip(r);
	long per_hour = cfg_int("anon.per_ip_per_hour", 60);
	long hits, retry;

	snprintf(bucket, sizeof bucket, "anon:%s", ip);
	if (db_rate_hit(r->db, bucket, AUTH_ANON_WINDOW_S, &hits, &retry) < 0)
		return api_db_fail(r);
	if (hits > per_hour) {
		api_header(r, "Retry-After", "%ld", retry);
		log_warn_x("auth msg=\"anonymous sessions rate limited\" ip=%s hits=%ld", ip, hits);
		return api_fail(r, API_RATE_LIMITED, "rate_limited",
				"too many anonymous sessions from this address; retry in %ld seconds",
				retry);
	}
	return API_OK;
}

static enum api_err auth_anon(struct api_req *r)
{
	char token[DB_SESSION_TOKEN_HEX + 1];
	const char *ip = api_client_ip(r);
	long age = cfg_int("anon.max_age_seconds", 86400);
	struct db_session_info s;
	json_object *o;
	enum api_err e = api_auth_anon_admit(r);

	if (e != API_OK)
		return e;
	if (db_session_create(r->db, "ANON", 0, age, age, api_env(r, "HTTP_USER_AGENT"), ip, token,
			      &s) < 0)
		return api_db_fail(r);
	o = json_object_new_object();
	add_str(o, "token", token);
	add_str(o, "kind", s.kind);
	add_str(o, "expires_at", s.expires_at);
	add_str(o, "absolute_expires_at", s.absolute_expires_at);
	sodium_memzero(token, sizeof token);
	log_info("auth msg=\"anonymous session\" session_id=%lld", (long long)s.id);
	return api_json(r, 201, o);
}

/* ---- GET /api/admin/users, PATCH /api/admin/users/{id} ---- */

static enum api_err admin_users(struct api_req *r)
{
	const char *ls = api_query(r, "limit"), *after = api_query(r, "after");
	const char *q = api_query(r, "q");
	long limit = 100;
	long long after_id = 0;
	char *end;
	PGresult *res;
	json_object *o, *items;
	int n;

	if (ls) {
		limit = strtol(ls, &end, 10);
		if (*ls == '\0' || *end || limit < 1 || limit > AUTH_USERS_PAGE_MAX)
			return api_fail(r, API_BAD_REQUEST, "bad_request",
					"limit must be an integer from 1 to %d", AUTH_USERS_PAGE_MAX);
	}
	if (after) {
		errno = 0;
		after_id = strtoll(after, &end, 10);
		if (*after == '\0' || *end || after_id < 0)
			return api_fail(r, API_BAD_REQUEST, "bad_request",
					"after must be a user id");
		if (errno == ERANGE) { /* strtoll clamped it: say so, do not page from the clamp */
			json_object *f = json_object_new_object();
			field_err(f, "after", "is out of range (at most 9223372036854775807)");
			return api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", f,
					       "after is out of range");
		}
	}
	if (q && strlen(q) > 128)
		return api_fail(r, API_BAD_REQUEST, "bad_request", "q must be at most 128 bytes");
	res = db_user_page(r->db, after_id, limit + 1, q);
	if (!res)
		return api_db_fail(r);
	o = json_object_new_object();
	items = json_object_new_array();
	n = PQntuples(res);
	for (int i = 0; i < n && i < limit; i++) {
		json_object *u = json_object_new_object();
		jx_add_pg_int(u, "id", res, i, 0);
		jx_add_pg_str(u, "username", res, i, 1);
		jx_add_pg_str(u, "email", res, i, 2);
		jx_add_pg_str(u, "first_name", res, i, 3);
		jx_add_pg_str(u, "last_name", res, i, 4);
		jx_add_pg_json(u, "roles", res, i, 5);
		jx_add_pg_bool(u, "disabled", res, i, 6);
		jx_add_pg_str(u, "created_at", res, i, 7);
		json_object_array_add(items, u);
	}
	json_object_object_add(o, "items", items);
	if (n > limit)
		json_object_object_add(o, "next_cursor",
				       json_object_new_string(PQgetvalue(res, (int)limit - 1, 0)));
	else
		json_object_object_add(o, "next_cursor", NULL);
	PQclear(res);
	return api_json(r, 200, o);
}

/* roles must be a non-empty array of "ADMIN"/"USER"; writes "{A,B}". */
static const char *roles_literal(json_object *v, char *out, size_t size)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0 ||
	    n > 2)
		return "must be a non-empty array of \"ADMIN\" and/or \"USER\"";
	snprintf(out, size, "{");
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e)
									 : NULL;
		if (!s || (strcmp(s, "ADMIN") != 0 && strcmp(s, "USER") != 0))
			return "must be a non-empty array of \"ADMIN\" and/or \"USER\"";
		strncat(out, s, size - strlen(out) - 1);
		strncat(out, i + 1 < n ? "," : "}", size - strlen(out) - 1);
	}
	return NULL;
}

static enum api_err admin_user_patch(struct api_req *r)
{
	static const char *const allowed[] = {"disabled", "roles", NULL};
	json_object *body = NULL, *fields, *v, *user;
	char roles[32] = "", *end;
	const char *err;
	const char *dis = NULL;
	long long id = strtoll(r->params[0], &end, 10);
	enum api_err rc;
	int dberr, up;

	if (*end || id <= 0)
		return api_fail(r, API_NOT_FOUND, "not_found", "no such user");
	rc = api_body_json(r, &body);
	if (rc != API_OK)
		return rc;
	fields = json_object_new_object();
	unknown_members(body, allowed, fields);
	if (json_object_object_get_ex(body, "disabled", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			field_err(fields, "disabled", "must be true or false");
		else
			dis = json_object_get_boolean(v) ? "true" : "false";
	}
	if (json_object_object_get_ex(body, "roles", &v) &&
	    (err = roles_literal(v, roles, sizeof roles)) != NULL)
		field_err(fields, "roles", err);
	json_object_put(body);
	if (json_object_object_length(fields) > 0)
		return api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", fields,
				       "some fields are invalid");
	json_object_put(fields);
	up = db_user_admin_update(r->db, id, dis, roles[0] ? roles : NULL);
	if (up < 0)
		return api_db_fail(r);
	if (up == 0)
		return api_fail(r, API_NOT_FOUND, "not_found", "no such user");
	/* a disabled account loses its sessions, API tokens included */
	if (dis && strcmp(dis, "true") == 0 && db_session_revoke_user(r->db, id) < 0)
		return api_db_fail(r);
	/* disabled flag and roles are part of every cached session: this
	 * master's workers through the counter, other replicas through NOTIFY
	 * (a demotion must not wait for session.cache_seconds anywhere) */
	if (db_session_user_changed(r->db, id) < 0)
		return api_db_fail(r);
	auth_cache_bump();
	log_info("auth msg=\"user updated by admin\" user_id=%lld admin_id=%lld", id,
		 (long long)r->auth.user_id);
	user = user_json(r, id, &dberr);
	if (!user)
		return api_db_fail(r);
	return api_json(r, 200, user);
}

const struct api_route api_auth_routes[] = {
	{"POST", "/api/auth/signup", ACCESS_PUBLIC, auth_signup},
	{"POST", "/api/auth/login", ACCESS_PUBLIC, auth_login},
	{"POST", "/api/auth/logout", ACCESS_SESSION, auth_logout},
	{"POST", "/api/auth/refresh", ACCESS_USER, auth_refresh},
	{"GET", "/api/auth/session", ACCESS_SESSION, auth_session},
	{"POST", "/api/auth/anon", ACCESS_PUBLIC, auth_anon},
	{"GET", "/api/admin/users", ACCESS_ADMIN, admin_users},
	{"PATCH", "/api/admin/users/{}", ACCESS_ADMIN, admin_user_patch},
	{0},
};
