/*
 * db_account.c — implementation of db_account.h: own account changes,
 * password reset links, guest sessions, the admin's user view.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_account.c, api_users.c.
 * Owns: nothing beyond PGresults cleared before returning; token copies
 * are wiped with sodium_memzero.
 * Shared state: app_user (password_hash, email), login_attempt (a reset
 * link counts as a success), session (revoked_at,
 * guest, expiry), password_reset, work_request (owner moves, deletes; the
 * statement trigger of sql/002 deletes inputs and results), input_cache
 * (user_id). Multi-statement changes run in one transaction (db_begin).
 *
 * NOTES: NOTIFY session_revoked is sent by every statement that ends
 * sessions, so session caches everywhere drop them (see api_auth.c).
 */
#include "db/db_account.h"
#include "lib/log.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statement that revokes every live session of user $1 except id $2 and
 * notifies; returns no rows. */
#define REVOKE_USER_EXCEPT(u, k) \
	"WITH r AS (UPDATE session SET revoked_at = now() WHERE user_id = " u \
	" AND revoked_at IS NULL AND id <> " k " RETURNING id)" \
	" SELECT pg_notify('session_revoked', 'user:' || " u ") WHERE EXISTS (SELECT 1 FROM r)"

static void hash_hex_of(const unsigned char h[DB_SESSION_HASH_LEN],
			char hex[DB_SESSION_HASH_LEN * 2 + 1])
{
	sodium_bin2hex(hex, DB_SESSION_HASH_LEN * 2 + 1, h, DB_SESSION_HASH_LEN);
}

/* Run a prepared statement and keep only success: 0 / -1. */
static int run(struct db *db, const char *name, const char *sql, int n, const char *const *p)
{
	PGresult *res = db_prep(db, name, sql, n, p);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int db_account_hash(struct db *db, int64_t user_id, char hash[128])
{
	const char *p[1] = {DB_INT(user_id)};
	PGresult *res = db_prep(db, "acct_hash",
				"SELECT password_hash FROM app_user WHERE id = $1::bigint"
				" AND NOT disabled", 1, p);
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0)
		snprintf(hash, 128, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int db_account_set_password(struct db *db, int64_t user_id, const char *hash,
			    int64_t keep_session)
{
	const char *p[3] = {DB_INT(user_id), hash, DB_INT(keep_session)};

	if (db_begin(db) < 0)
		return -1;
	if (run(db, "acct_set_pw",
		"UPDATE app_user SET password_hash = $2, updated_at = now() WHERE id = $1::bigint",
		2, p) < 0 ||
	    run(db, "acct_resets_used",
		"UPDATE password_reset SET used_at = now() WHERE user_id = $1::bigint"
		" AND used_at IS NULL", 1, p) < 0 ||
	    run(db, "acct_revoke_others", REVOKE_USER_EXCEPT("$1::bigint", "$2::bigint"), 2,
		(const char *[]){p[0], p[2]}) < 0 ||
	    db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

int db_account_set_email(struct db *db, int64_t user_id, const char *email)
{
	const char *p[2] = {DB_INT(user_id), email};

	return db_affected(db_prep(db, "acct_set_email",
				   "UPDATE app_user SET email = lower($2), updated_at = now()"
				   " WHERE id = $1::bigint", 2, p));
}

PGresult *db_account_sessions(struct db *db, int64_t user_id)
{
	const char *p[1] = {DB_INT(user_id)};

	return db_prep(db, "acct_sessions",
		       "SELECT id, kind, iso(created_at), iso(last_seen), iso(expires_at),"
		       " iso(absolute_expires_at), user_agent, ip FROM session"
		       " WHERE user_id = $1::bigint AND revoked_at IS NULL"
		       " AND expires_at > now() AND absolute_expires_at > now()"
		       " ORDER BY id DESC LIMIT 200", 1, p);
}

int db_account_revoke_session(struct db *db, int64_t user_id, int64_t session_id)
{
	const char *p[2] = {DB_INT(user_id), DB_INT(session_id)};
	PGresult *res = db_prep(db, "acct_revoke_one",
				"WITH r AS (UPDATE session SET revoked_at = now()"
				" WHERE id = $2::bigint AND user_id = $1::bigint"
				" AND revoked_at IS NULL RETURNING id)"
				" SELECT pg_notify('session_revoked', id::text) FROM r", 2, p);
	int n;

	if (!res)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	return n > 0 ? 1 : 0;
}

int db_account_delete_data(struct db *db, int64_t user_id, long *requests, long *cache)
{
	const char *p[1] = {DB_INT(user_id)};
	int n;

	*requests = *cache = 0;
	if (db_begin(db) < 0)
		return -1;
	n = db_affected(db_prep(db, "acct_del_requests",
				"DELETE FROM work_request WHERE user_id = $1::bigint", 1, p));
	if (n < 0)
		goto fail;
	*requests = n;
	n = db_affected(db_prep(db, "acct_del_cache",
				"DELETE FROM input_cache WHERE user_id = $1::bigint", 1, p));
	if (n < 0 || db_commit(db) < 0)
		goto fail;
	*cache = n;
	return 0;
fail:
	db_rollback(db);
	return -1;
}

int db_account_delete(struct db *db, int64_t user_id)
{
	const char *p[1] = {DB_INT(user_id)};
	long req, cache;
	int n;

	/* sessions go by ON DELETE CASCADE; revoke first so caches hear of it */
	if (run(db, "acct_del_revoke", REVOKE_USER_EXCEPT("$1::bigint", "0"), 1, p) < 0)
		return -1;
	if (db_account_delete_data(db, user_id, &req, &cache) < 0)
		return -1;
	n = db_affected(db_prep(db, "acct_delete", "DELETE FROM app_user WHERE id = $1::bigint",
				1, p));
	if (n < 0)
		return -1;
	log_info("auth msg=\"account deleted\" user_id=%lld requests=%ld cache_entries=%ld",
		 (long long)user_id, req, cache);
	return n > 0 ? 1 : 0;
}

/* ---- password reset links ---- */

int db_reset_target(struct db *db, const char *login, int64_t *user_id, char email[320],
		    char username[64])
{
	const char *p[1] = {login};
	PGresult *res = db_prep(db, "reset_target",
				"SELECT id, email, username FROM app_user WHERE NOT disabled AND"
				" (CASE WHEN strpos($1, '@') > 0 THEN email = lower($1)"
				" ELSE username = $1 END)", 1, p);
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0) {
		*user_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(email, 320, "%s", PQgetvalue(res, 0, 1));
		snprintf(username, 64, "%s", PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return rc;
}

int db_reset_create(struct db *db, int64_t user_id, int64_t created_by, long ttl_s,
		    char token[DB_SESSION_TOKEN_HEX + 1], char expires_at[40])
{
	unsigned char h[DB_SESSION_HASH_LEN];
	char hex[DB_SESSION_HASH_LEN * 2 + 1];
	const char *p[4] = {hex, DB_INT(user_id), created_by > 0 ? DB_INT(created_by) : NULL,
			    DB_INT(ttl_s)};
	PGresult *res;

	db_token_new(token, h);
	hash_hex_of(h, hex);
	res = db_prep(db, "reset_create",
		      "INSERT INTO password_reset (token_hash, user_id, created_by, expires_at)"
		      " VALUES (decode($1, 'hex'), $2::bigint, $3::bigint,"
		      " now() + $4::bigint * interval '1 second') RETURNING iso(expires_at)",
		      4, p);
	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		sodium_memzero(token, DB_SESSION_TOKEN_HEX + 1);
		return -1;
	}
	snprintf(expires_at, 40, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int db_reset_peek(struct db *db, const char *token, char username[64], char email[320])
{
	unsigned char h[DB_SESSION_HASH_LEN];
	char hex[DB_SESSION_HASH_LEN * 2 + 1];
	const char *p[1] = {hex};
	PGresult *res;
	int rc;

	if (db_token_hash(token, h) < 0)
		return 1;
	hash_hex_of(h, hex);
	res = db_prep(db, "reset_peek",
		      "SELECT u.username, u.email FROM password_reset r JOIN app_user u"
		      " ON u.id = r.user_id WHERE r.token_hash = decode($1, 'hex')"
		      " AND r.used_at IS NULL AND r.expires_at > now() AND NOT u.disabled", 1, p);
	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0) {
		snprintf(username, 64, "%s", PQgetvalue(res, 0, 0));
		snprintf(email, 320, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return rc;
}

/* Inside the transaction of db_reset_use: claim the link. 0 (*user_id),
 * 1 not usable, -1 error. */
static int reset_claim(struct db *db, const char *hex, int64_t *user_id)
{
	const char *p[1] = {hex};
	PGresult *res = db_prep(db, "reset_claim",
				"UPDATE password_reset r SET used_at = now() FROM app_user u"
				" WHERE r.token_hash = decode($1, 'hex') AND r.used_at IS NULL"
				" AND r.expires_at > now() AND u.id = r.user_id AND NOT u.disabled"
				" RETURNING r.user_id", 1, p);
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0)
		*user_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int db_reset_use(struct db *db, const char *token, const char *hash, int64_t *user_id)
{
	unsigned char h[DB_SESSION_HASH_LEN];
	char hex[DB_SESSION_HASH_LEN * 2 + 1];
	int rc;

	if (db_token_hash(token, h) < 0)
		return 1;
	hash_hex_of(h, hex);
	if (db_begin(db) < 0)
		return -1;
	rc = reset_claim(db, hex, user_id);
	if (rc != 0) {
		db_rollback(db);
		return rc;
	}
	const char *p[2] = {DB_INT(*user_id), hash};
	/* like modelhubctl reset-password, the reset counts as a success for
	 * the login throttle: the owner is not delayed by failures before it */
	if (run(db, "reset_set_pw",
		"WITH u AS (UPDATE app_user SET password_hash = $2, updated_at = now()"
		" WHERE id = $1::bigint RETURNING username)"
		" INSERT INTO login_attempt (username, ip, success) SELECT username, NULL, true FROM u",
		2, p) < 0 ||
	    run(db, "acct_resets_used",
		"UPDATE password_reset SET used_at = now() WHERE user_id = $1::bigint"
		" AND used_at IS NULL", 1, p) < 0 ||
	    run(db, "reset_revoke_all", REVOKE_USER_EXCEPT("$1::bigint", "0"), 1, p) < 0 ||
	    db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

/* ---- guests ---- */

int db_guest_mark(struct db *db, int64_t session_id)
{
	const char *p[1] = {DB_INT(session_id)};

	return run(db, "guest_mark",
		   "UPDATE session SET guest = true WHERE id = $1::bigint AND kind = 'ANON'", 1, p);
}

int db_guest_is(struct db *db, int64_t session_id, long *requests)
{
	const char *p[1] = {DB_INT(session_id)};
	PGresult *res = db_prep(db, "guest_is",
				"SELECT (SELECT count(*) FROM work_request"
				" WHERE anon_session_id = s.id) FROM session s"
				" WHERE s.id = $1::bigint AND s.guest AND s.revoked_at IS NULL"
				" AND s.absolute_expires_at > now()", 1, p);
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1;
	if (rc && requests)
		*requests = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int db_guest_refresh(struct db *db, int64_t session_id, long ttl_s,
		     struct db_session_info *out)
{
	const char *p[2] = {DB_INT(session_id), DB_INT(ttl_s)};
	PGresult *res = db_prep(db, "guest_refresh",
				"UPDATE session SET last_seen = now(),"
				" expires_at = now() + $2::bigint * interval '1 second',"
				" absolute_expires_at = now() + $2::bigint * interval '1 second'"
				" WHERE id = $1::bigint AND guest AND revoked_at IS NULL"
				" AND absolute_expires_at > now()"
				" RETURNING id, kind, iso(expires_at), iso(absolute_expires_at)", 2, p);
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0) {
		memset(out, 0, sizeof *out);
		out->id = session_id;
		snprintf(out->kind, sizeof out->kind, "%s", PQgetvalue(res, 0, 1));
		snprintf(out->expires_at, sizeof out->expires_at, "%s", PQgetvalue(res, 0, 2));
		snprintf(out->absolute_expires_at, sizeof out->absolute_expires_at, "%s",
			 PQgetvalue(res, 0, 3));
		out->remaining_ms = ttl_s * 1000;
	}
	PQclear(res);
	return rc;
}

int db_guest_rotate(struct db *db, int64_t session_id, char token[DB_SESSION_TOKEN_HEX + 1])
{
	unsigned char h[DB_SESSION_HASH_LEN];
	char hex[DB_SESSION_HASH_LEN * 2 + 1];
	const char *p[2] = {DB_INT(session_id), hex};
	PGresult *res;
	int n;

	db_token_new(token, h);
	hash_hex_of(h, hex);
	res = db_prep(db, "guest_rotate",
		      "WITH g AS (UPDATE session SET token_hash = decode($2, 'hex'), last_seen = now()"
		      " WHERE id = $1::bigint AND guest AND revoked_at IS NULL"
		      " AND absolute_expires_at > now() RETURNING id)"
		      " SELECT pg_notify('session_revoked', 'guest:' || id) FROM g", 2, p);
	if (!res) {
		sodium_memzero(token, DB_SESSION_TOKEN_HEX + 1);
		return -1;
	}
	n = PQntuples(res);
	PQclear(res);
	if (n == 0)
		sodium_memzero(token, DB_SESSION_TOKEN_HEX + 1);
	return n > 0 ? 0 : 1;
}

int db_guest_claim(struct db *db, int64_t session_id, int64_t user_id, long *moved)
{
	const char *p[2] = {DB_INT(session_id), DB_INT(user_id)};
	int n;

	*moved = 0;
	if (db_begin(db) < 0)
		return -1;
	n = db_affected(db_prep(db, "guest_move",
				"UPDATE work_request SET user_id = $2::bigint, anon_session_id = NULL"
				" WHERE anon_session_id = $1::bigint", 2, p));
	if (n < 0 ||
	    run(db, "guest_end",
		"WITH r AS (UPDATE session SET revoked_at = now() WHERE id = $1::bigint"
		" AND revoked_at IS NULL RETURNING id)"
		" SELECT pg_notify('session_revoked', id::text) FROM r", 1, p) < 0 ||
	    db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	*moved = n;
	return 0;
}

/* ---- admin ---- */

PGresult *db_account_admin_view(struct db *db, int64_t user_id)
{
	const char *p[1] = {DB_INT(user_id)};

	return db_prep(db, "acct_admin_view",
		       "SELECT u.id, u.username, u.email, u.first_name, u.last_name,"
		       " array_to_json(u.roles), u.disabled, iso(u.created_at),"
		       " count(w.id), count(*) FILTER (WHERE w.status = 'QUEUED'),"
		       " count(*) FILTER (WHERE w.status = 'RUNNING'),"
		       " count(*) FILTER (WHERE w.status = 'COMPLETED'),"
		       " count(*) FILTER (WHERE w.status = 'FAILED'),"
		       " count(*) FILTER (WHERE w.status = 'CANCELLED'),"
		       " (SELECT count(*) FROM session s WHERE s.user_id = u.id"
		       "  AND s.revoked_at IS NULL AND s.expires_at > now()"
		       "  AND s.absolute_expires_at > now()),"
		       " iso(max(w.created_at))"
		       " FROM app_user u LEFT JOIN work_request w ON w.user_id = u.id"
		       " WHERE u.id = $1::bigint GROUP BY u.id", 1, p);
}
