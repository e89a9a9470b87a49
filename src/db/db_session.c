/*
 * db_session.c — sessions, login attempts and rate-limit counters
 * (see db_session.h).
 *
 * Runs in: modelhub-fcgi workers and modelhubctl. Called by: api_auth.c and
 * db_user.c. Owns: nothing; every PGresult is cleared before returning.
 * Shared state: tables session (insert, update expires_at/revoked_at),
 * login_attempt (insert, count), rate_limit (upsert), app_user (read, and
 * password_hash on rehash). Row-level atomicity is all we need: a session is
 * one row, a counter is one upserted row.
 *
 * NOTES: every statement is prepared once per connection with a literal
 * name; inputs are always bound parameters. Intervals are built as
 * `$n::int * interval '1 second'` so parameter types are unambiguous.
 */
#include "db/db_session.h"
#include "lib/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Columns 0..7 of every statement that returns a session (see fill()). */
#define SESSION_COLS \
	"s.id, coalesce(s.user_id, 0), s.kind, coalesce(u.username, ''), " \
	"coalesce('ADMIN' = ANY(u.roles), false), iso(s.expires_at), " \
	"iso(s.absolute_expires_at), " \
	"(extract(epoch from least(s.expires_at, s.absolute_expires_at) - now()) * 1000)::bigint"

static void fill(struct db_session_info *out, PGresult *res)
{
	memset(out, 0, sizeof *out);
	out->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	out->user_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	snprintf(out->kind, sizeof out->kind, "%s", PQgetvalue(res, 0, 2));
	snprintf(out->username, sizeof out->username, "%s", PQgetvalue(res, 0, 3));
	out->is_admin = PQgetvalue(res, 0, 4)[0] == 't';
	snprintf(out->expires_at, sizeof out->expires_at, "%s", PQgetvalue(res, 0, 5));
	snprintf(out->absolute_expires_at, sizeof out->absolute_expires_at, "%s",
		 PQgetvalue(res, 0, 6));
	out->remaining_ms = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
}

static void hash_hex(const unsigned char hash[DB_SESSION_HASH_LEN],
		     char hex[DB_SESSION_HASH_LEN * 2 + 1])
{
	sodium_bin2hex(hex, DB_SESSION_HASH_LEN * 2 + 1, hash, DB_SESSION_HASH_LEN);
}

void db_token_new(char hex[DB_SESSION_TOKEN_HEX + 1], unsigned char hash[DB_SESSION_HASH_LEN])
{
	unsigned char raw[DB_SESSION_TOKEN_HEX / 2];

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(hex, DB_SESSION_TOKEN_HEX + 1, raw, sizeof raw);
	crypto_hash_sha256(hash, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
}

int db_token_hash(const char *hex, unsigned char hash[DB_SESSION_HASH_LEN])
{
	unsigned char raw[DB_SESSION_TOKEN_HEX / 2];
	size_t n = 0;

	if (!hex || strlen(hex) != DB_SESSION_TOKEN_HEX)
		return -1;
	if (sodium_hex2bin(raw, sizeof raw, hex, DB_SESSION_TOKEN_HEX, NULL, &n, NULL) != 0 ||
	    n != sizeof raw) {
		sodium_memzero(raw, sizeof raw);
		return -1;
	}
	crypto_hash_sha256(hash, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
	return 0;
}

int db_session_create(struct db *db, const char *kind, int64_t user_id, long idle_s, long abs_s,
		      const char *ua, const char *ip, char token_out[DB_SESSION_TOKEN_HEX + 1],
		      struct db_session_info *out)
{
	unsigned char hash[DB_SESSION_HASH_LEN];
	char hhex[DB_SESSION_HASH_LEN * 2 + 1], idle[DB_INT_LEN];
	const char *uid = DB_INT(user_id);
	const char *abs = DB_INT(abs_s);
	const char *p[7];
	PGresult *res;

	if (idle_s > abs_s)
		idle_s = abs_s;
	db_token_new(token_out, hash);
	hash_hex(hash, hhex);
	db_int_text(idle, idle_s);
	p[0] = hhex;
	p[1] = kind;
	p[2] = user_id > 0 ? uid : NULL;
	p[3] = idle;
	p[4] = abs;
	p[5] = ua;
	p[6] = ip;
	res = db_prep(db, "session_create",
		      "WITH s AS (INSERT INTO session (token_hash, kind, user_id, expires_at,"
		      " absolute_expires_at, user_agent, ip)"
		      " VALUES (decode($1, 'hex'), $2, $3::bigint,"
		      " now() + $4::bigint * interval '1 second',"
		      " now() + $5::bigint * interval '1 second', left($6, 256), left($7, 64))"
		      " RETURNING *)"
		      " SELECT " SESSION_COLS " FROM s LEFT JOIN app_user u ON u.id = s.user_id",
		      7, p);
	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		sodium_memzero(token_out, DB_SESSION_TOKEN_HEX + 1);
		return -1;
	}
	fill(out, res);
	PQclear(res);
	return 0;
}

/* res of a statement returning SESSION_COLS: 0 with *out filled from its one
 * row, 1 no row, -1 res NULL (error logged by db_prep). Clears res. */
static int one_session(PGresult *res, struct db_session_info *out)
{
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0)
		fill(out, res);
	PQclear(res);
	return rc;
}

int db_session_lookup(struct db *db, const unsigned char hash[DB_SESSION_HASH_LEN],
		      struct db_session_info *out)
{
	char hhex[DB_SESSION_HASH_LEN * 2 + 1];
	const char *p[1] = {hhex};
	PGresult *res;

	hash_hex(hash, hhex);
	res = db_prep(db, "session_lookup",
		      "SELECT " SESSION_COLS " FROM session s LEFT JOIN app_user u"
		      " ON u.id = s.user_id"
		      " WHERE s.token_hash = decode($1, 'hex') AND s.revoked_at IS NULL"
		      " AND s.expires_at > now() AND s.absolute_expires_at > now()"
		      " AND (s.user_id IS NULL OR NOT u.disabled)",
		      1, p);
	return one_session(res, out);
}

/* res of SESSION_COLS + iso(created_at): as one_session, and the start
 * time into started (40 bytes). */
static int one_anon(PGresult *res, char *started, struct db_session_info *out)
{
	if (res && PQntuples(res) == 1)
		snprintf(started, 40, "%s", PQgetvalue(res, 0, 8));
	return one_session(res, out);
}

int db_session_anon_find(struct db *db, const unsigned char hash[DB_SESSION_HASH_LEN],
			 char *started_out, struct db_session_info *out)
{
	char hhex[DB_SESSION_HASH_LEN * 2 + 1];
	const char *p[1] = {hhex};

	hash_hex(hash, hhex);
	return one_anon(db_prep(db, "session_anon_find",
				"SELECT " SESSION_COLS ", iso(s.created_at) FROM session s"
				" LEFT JOIN app_user u ON u.id = s.user_id"
				" WHERE s.token_hash = decode($1, 'hex') AND s.kind = 'ANON'"
				" AND s.revoked_at IS NULL AND s.expires_at > now()"
				" AND s.absolute_expires_at > now()", 1, p),
			started_out, out);
}

int db_session_anon_bind(struct db *db, const unsigned char hash[DB_SESSION_HASH_LEN], long abs_s,
			 const char *ua, const char *ip, char *started_out,
			 struct db_session_info *out)
{
	char hhex[DB_SESSION_HASH_LEN * 2 + 1];
	const char *p[4] = {hhex, DB_INT(abs_s), ua, ip};

	hash_hex(hash, hhex);
	return one_anon(db_prep(db, "session_anon_bind",
				"WITH s AS (INSERT INTO session (token_hash, kind, expires_at,"
				" absolute_expires_at, user_agent, ip)"
				" VALUES (decode($1, 'hex'), 'ANON', now() + $2::bigint * interval '1 second',"
				" now() + $2::bigint * interval '1 second', left($3, 256), left($4, 64))"
				" ON CONFLICT (token_hash) DO UPDATE SET created_at = now(),"
				" last_seen = now(), expires_at = EXCLUDED.expires_at,"
				" absolute_expires_at = EXCLUDED.absolute_expires_at,"
				" user_agent = EXCLUDED.user_agent, ip = EXCLUDED.ip"
				" WHERE session.kind = 'ANON' AND session.revoked_at IS NULL"
				" AND (session.expires_at <= now() OR session.absolute_expires_at <= now())"
				" RETURNING *)"
				" SELECT " SESSION_COLS ", iso(s.created_at) FROM s"
				" LEFT JOIN app_user u ON u.id = s.user_id", 4, p),
			started_out, out);
}

int db_session_refresh(struct db *db, int64_t id, long idle_s, struct db_session_info *out)
{
	const char *p[2] = {DB_INT(id), DB_INT(idle_s)};
	PGresult *res;

	res = db_prep(db, "session_refresh",
		      "WITH s AS (UPDATE session SET last_seen = now(),"
		      " expires_at = CASE WHEN kind = 'USER'"
		      " THEN least(now() + $2::int * interval '1 second', absolute_expires_at)"
		      " ELSE expires_at END"
		      " WHERE id = $1::bigint AND revoked_at IS NULL AND expires_at > now()"
		      " AND absolute_expires_at > now() RETURNING *)"
		      " SELECT " SESSION_COLS " FROM s LEFT JOIN app_user u ON u.id = s.user_id"
		      " WHERE s.user_id IS NULL OR NOT u.disabled",
		      2, p);
	return one_session(res, out);
}

/* Run the prepared statement name (sql, one bigint parameter $1 = id) and
 * drop its rows: 0, or -1 on a database error (logged by db_prep). */
static int exec_id(struct db *db, const char *name, const char *sql, int64_t id)
{
	const char *p[1] = {DB_INT(id)};
	PGresult *res;

	res = db_prep(db, name, sql, 1, p);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int db_session_revoke(struct db *db, int64_t id)
{
	return exec_id(db, "session_revoke",
		       "WITH r AS (UPDATE session SET revoked_at = now()"
		       " WHERE id = $1::bigint AND revoked_at IS NULL RETURNING id)"
		       " SELECT pg_notify('session_revoked', id::text) FROM r",
		       id);
}

int db_session_revoke_user(struct db *db, int64_t user_id)
{
	return exec_id(db, "session_revoke_user",
		       "WITH r AS (UPDATE session SET revoked_at = now()"
		       " WHERE user_id = $1::bigint AND revoked_at IS NULL RETURNING id)"
		       " SELECT pg_notify('session_revoked', 'user:' || $1)"
		       " WHERE EXISTS (SELECT 1 FROM r)",
		       user_id);
}

int db_session_user_changed(struct db *db, int64_t user_id)
{
	return exec_id(db, "session_user_changed",
		       "SELECT pg_notify('session_revoked', 'changed:' || $1::bigint)", user_id);
}

int db_session_login_user(struct db *db, const char *login, struct db_login_user *out)
{
	const char *p[1] = {login};
	PGresult *res;
	int rc;

	/* usernames cannot contain '@' and emails must, so one OR is exact */
	res = db_prep(db, "session_login_user",
		      "SELECT id, username, disabled, password_hash FROM app_user"
		      " WHERE username = lower($1) OR email = lower($1)",
		      1, p);
	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0) {
		memset(out, 0, sizeof *out);
		out->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(out->username, sizeof out->username, "%s", PQgetvalue(res, 0, 1));
		out->disabled = PQgetvalue(res, 0, 2)[0] == 't';
		if (PQgetlength(res, 0, 3) >= (int)sizeof out->hash) {
			log_error_x("auth msg=\"password hash too long\" user_id=%lld",
				    (long long)out->id);
			rc = -1;
		} else {
			memcpy(out->hash, PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
		}
	}
	PQclear(res);
	return rc;
}

int db_session_store_hash(struct db *db, int64_t user_id, const char *hash)
{
	const char *p[2] = {DB_INT(user_id), hash};

	return db_cmd(db, "UPDATE app_user SET password_hash = $2, updated_at = now()"
		      " WHERE id = $1::bigint", 2, p);
}

/* One pass over login_attempt for the throttle (api_auth.c). Failures of
 * the account count since its last success (from anywhere); those of the
 * address since the last success from that address; all within $3 s.
 * Columns: pair failures, seconds until the pair's $4-th newest failure
 * leaves the window, account failures, seconds since the account's newest
 * failure, address failures, seconds until the address's $5-th newest
 * failure leaves the window. */
#define LOGIN_STATE_SQL \
	"WITH w AS (SELECT now() - $3::int * interval '1 second' AS s)," \
	" ok_a AS (SELECT coalesce(max(at), '-infinity') AS t FROM login_attempt" \
	"  WHERE username = $1 AND success)," \
	" ok_i AS (SELECT coalesce(max(at), '-infinity') AS t FROM login_attempt" \
	"  WHERE ip = $2 AND success)," \
	" fa AS (SELECT at, ip FROM login_attempt, w, ok_a WHERE username = $1" \
	"  AND NOT success AND at > greatest(w.s, ok_a.t))," \
	" fi AS (SELECT at FROM login_attempt, w, ok_i WHERE ip = $2" \
	"  AND NOT success AND at > greatest(w.s, ok_i.t))" \
	" SELECT (SELECT count(*) FROM fa WHERE ip = $2)," \
	" (SELECT ceil(extract(epoch from at + $3::int * interval '1 second' - now()))" \
	"  FROM fa WHERE ip = $2 ORDER BY at DESC OFFSET greatest($4::int - 1, 0) LIMIT 1)," \
	" (SELECT count(*) FROM fa)," \
	" (SELECT extract(epoch from now() - max(at)) FROM fa)," \
	" (SELECT count(*) FROM fi)," \
	" (SELECT ceil(extract(epoch from at + $3::int * interval '1 second' - now()))" \
	"  FROM fi ORDER BY at DESC OFFSET greatest($5::int - 1, 0) LIMIT 1)"

static double col_num(PGresult *res, int col, double def)
{
	return PQgetisnull(res, 0, col) ? def : strtod(PQgetvalue(res, 0, col), NULL);
}

int db_login_state(struct db *db, const char *username, const char *ip, long window_s,
		   long pair_max, long ip_max, struct db_login_state *st)
{
	char w[24], pm[24], im[24];
	const char *p[5] = {username, ip, w, pm, im};
	PGresult *res;

	memset(st, 0, sizeof *st);
	snprintf(w, sizeof w, "%ld", window_s);
	snprintf(pm, sizeof pm, "%ld", pair_max);
	snprintf(im, sizeof im, "%ld", ip_max);
	res = db_prep(db, "login_state", LOGIN_STATE_SQL, 5, p);
	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		return -1;
	}
	st->pair_fail = (long)col_num(res, 0, 0);
	st->pair_retry_s = (long)col_num(res, 1, 1);
	st->acct_fail = (long)col_num(res, 2, 0);
	st->acct_last_fail_age_s = col_num(res, 3, 1e9);
	st->ip_fail = (long)col_num(res, 4, 0);
	st->ip_retry_s = (long)col_num(res, 5, 1);
	PQclear(res);
	return 0;
}

int db_login_record(struct db *db, const char *username, const char *ip, int success)
{
	const char *p[3] = {username, ip, success ? "true" : "false"};

	return db_prep(db, "login_record",
		       "INSERT INTO login_attempt (username, ip, success)"
		       " VALUES (left($1, 320), left($2, 64), $3::boolean)",
		       3, p) ? 0 : -1;
}

int db_rate_hit(struct db *db, const char *bucket, long window_s, long *hits,
		long *retry_after_s)
{
	const char *p[2] = {bucket, DB_INT(window_s)};
	PGresult *res;

	if (window_s < 1)
		window_s = 1;
	res = db_prep(db, "rate_hit",
		      "INSERT INTO rate_limit AS r (bucket, window_start, hits)"
		      " VALUES ($1, to_timestamp(floor(extract(epoch from now()) / $2::int)"
		      " * $2::int), 1)"
		      " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1"
		      " RETURNING hits, ceil(extract(epoch from r.window_start"
		      " + $2::int * interval '1 second' - now()))::bigint",
		      2, p);
	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		return -1;
	}
	*hits = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	*retry_after_s = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	if (*retry_after_s < 1)
		*retry_after_s = 1;
	PQclear(res);
	return 0;
}

int db_session_purge(struct db *db, long keep_s, int batch, long *deleted)
{
	static const struct {
		const char *name, *sql;
	} stmts[] = {
		{"session_purge",
		 "DELETE FROM session WHERE id IN (SELECT id FROM session"
		 " WHERE least(absolute_expires_at, expires_at, coalesce(revoked_at, 'infinity'))"
		 " < now() - $1::int * interval '1 second' LIMIT $2::int)"},
		{"login_attempt_purge",
		 "DELETE FROM login_attempt WHERE id IN (SELECT id FROM login_attempt"
		 " WHERE at < now() - $1::int * interval '1 second' LIMIT $2::int)"},
		{"rate_limit_purge",
		 "DELETE FROM rate_limit WHERE (bucket, window_start) IN (SELECT bucket, window_start"
		 " FROM rate_limit WHERE window_start < now() - $1::int * interval '1 second'"
		 " LIMIT $2::int)"},
	};
	const char *p[2] = {DB_INT(keep_s), DB_INT(batch > 0 ? batch : 1000)};

	*deleted = 0;
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		PGresult *res = db_prep(db, stmts[i].name, stmts[i].sql, 2, p);
		if (!res)
			return -1;
		*deleted += strtol(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	}
	return 0;
}

PGresult *db_session_row(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	return db_prep(db, "auth_session_get",
		       "SELECT kind, iso(expires_at), iso(absolute_expires_at) FROM session"
		       " WHERE id = $1::bigint",
		       1, p);
}
