/*
 * db_user.c — accounts and API tokens (db_user.h); passwords are hashed by
 * lib/password.c before they reach the table.
 *
 * Runs in: modelhub-fcgi workers (signup, login), modelhubctl (create-admin,
 * reset-password, create-token). Called by: api_auth.c, src/ctl. Owns:
 * nothing beyond PGresults cleared before returning; password copies are
 * wiped with sodium_memzero.
 * Shared state: table app_user (insert, update password_hash), session
 * (API tokens; revocation on password reset, with NOTIFY session_revoked),
 * login_attempt (a password reset is recorded as a success).
 *
 * NOTES: emails are stored lower-cased so that the unique constraint and
 * login by email ignore case.
 */
#include "db/db_user.h"
#include "db/db_session.h"
#include "lib/log.h"
#include "lib/password.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lower_copy(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	for (; src[i] && i + 1 < cap; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

int db_user_create(struct db *db, const char *username, const char *email,
		   const char *password, const char *first_name, const char *last_name,
		   const char *roles_csv, int64_t *id_out)
{
	char hash[PASSWORD_HASH_LEN], mail[320];
	const char *p[6];
	PGresult *res;

	if (strlen(email) >= sizeof mail) {
		log_warn_x("auth msg=\"email too long\"");
		return -1;
	}
	if (password_hash(password, strlen(password), hash) < 0)
		return -1;
	lower_copy(mail, sizeof mail, email);
	p[0] = username;
	p[1] = mail;
	p[2] = hash;
	p[3] = first_name;
	p[4] = last_name;
	p[5] = roles_csv && *roles_csv ? roles_csv : "USER";
	res = db_prep(db, "user_create",
		      "INSERT INTO app_user (username, email, password_hash, first_name,"
		      " last_name, roles)"
		      " VALUES ($1, $2, $3, $4, $5, string_to_array(upper($6), ','))"
		      " RETURNING id",
		      6, p);
	sodium_memzero(hash, sizeof hash);
	if (!res || PQntuples(res) != 1) {
		PQclear(res);
		return -1;
	}
	if (id_out)
		*id_out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	log_info("auth msg=\"user created\" user_id=%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int db_user_set_password(struct db *db, const char *username, const char *password)
{
	char hash[PASSWORD_HASH_LEN];
	const char *p[2];
	PGresult *res;
	int64_t id;
	int rc = -1;

	if (password_hash(password, strlen(password), hash) < 0)
		return -1;
	p[0] = username;
	p[1] = hash;
	res = db_prep(db, "user_set_password",
		      /* the reset counts as a success for the login throttle:
		       * the owner is not delayed by failures before it */
		      "WITH u AS (UPDATE app_user SET password_hash = $2, updated_at = now()"
		      " WHERE username = $1 RETURNING id, username),"
		      " l AS (INSERT INTO login_attempt (username, ip, success)"
		      " SELECT username, NULL, true FROM u)"
		      " SELECT id FROM u",
		      2, p);
	sodium_memzero(hash, sizeof hash);
	if (!res)
		return -1;
	if (PQntuples(res) != 1) {
		rc = 1;
		goto out;
	}
	id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	/* a reset password must end every session opened with the old one */
	if (db_session_revoke_user(db, id) < 0)
		goto out;
	log_info("auth msg=\"password reset, sessions revoked\" user_id=%lld", (long long)id);
	rc = 0;
out:
	PQclear(res);
	return rc;
}

int db_user_find(struct db *db, const char *username, int64_t *id_out)
{
	const char *p[1] = {username};
	PGresult *res = db_prep(db, "user_find", "SELECT id FROM app_user WHERE username = $1",
				1, p);
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0 && id_out)
		*id_out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int db_token_create_api(struct db *db, int64_t user_id, int ttl_days,
			char token_out[DB_TOKEN_HEX_LEN + 1])
{
	struct db_session_info info;
	long secs;

	if (ttl_days <= 0)
		ttl_days = 3650;
	if (ttl_days > 36500)
		ttl_days = 36500;
	secs = (long)ttl_days * 86400L;
	/* API tokens do not idle-expire: idle expiry = absolute expiry */
	if (db_session_create(db, "API", user_id, secs, secs, "modelhubctl", NULL, token_out,
			      &info) < 0)
		return -1;
	log_info("auth msg=\"api token created\" user_id=%lld session_id=%lld ttl_days=%d",
		 (long long)user_id, (long long)info.id, ttl_days);
	return 0;
}

PGresult *db_user_get(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	return db_prep(db, "auth_user_json",
		       "SELECT id, username, email, first_name, last_name, array_to_json(roles),"
		       " disabled, iso(created_at) FROM app_user WHERE id = $1::bigint",
		       1, p);
}

/* LIKE pattern "prefix%" with LIKE's own characters escaped, lower-cased;
 * NULL when it does not fit. */
static char *like_prefix(const char *prefix, char *out, size_t cap)
{
	size_t j = 0;

	for (const char *c = prefix; *c; c++) {
		if (j + 3 >= cap)
			return NULL;
		if (*c == '\\' || *c == '%' || *c == '_')
			out[j++] = '\\';
		out[j++] = (char)tolower((unsigned char)*c);
	}
	out[j++] = '%';
	out[j] = '\0';
	return out;
}

PGresult *db_user_page(struct db *db, int64_t after_id, long limit, const char *prefix)
{
	char pat[400];
	const char *p[3] = {DB_INT(limit), DB_INT(after_id), NULL};

	if (prefix && *prefix && !(p[2] = like_prefix(prefix, pat, sizeof pat)))
		p[2] = "\x01%"; /* too long to be anyone's name: matches nothing */
	/* a constant pattern lets each arm use its lower(...) text_pattern_ops
	 * index (sql/008) */
	return db_prep(db, "auth_admin_users",
		       "SELECT id, username, email, first_name, last_name, array_to_json(roles),"
		       " disabled, iso(created_at) FROM app_user WHERE id > $2::bigint"
		       " AND ($3::text IS NULL OR lower(username) LIKE $3"
		       " OR lower(email) LIKE $3 OR lower(first_name) LIKE $3"
		       " OR lower(last_name) LIKE $3)"
		       " ORDER BY id LIMIT $1::int",
		       3, p);
}

int db_user_taken(struct db *db, const char *username, const char *email, int *user_taken,
		  int *email_taken)
{
	const char *p[2] = {username, email};
	PGresult *res = db_prep(db, "auth_signup_taken",
				"SELECT bool_or(username = $1), bool_or(email = lower($2))"
				" FROM app_user WHERE username = $1 OR email = lower($2)",
				2, p);

	if (!res)
		return -1;
	*user_taken = PQgetvalue(res, 0, 0)[0] == 't';
	*email_taken = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return 0;
}

int db_user_admin_update(struct db *db, int64_t id, const char *disabled, const char *roles)
{
	const char *p[3] = {DB_INT(id), disabled, roles};

	return db_affected(db_prep(db, "auth_admin_user_patch",
				   "UPDATE app_user SET disabled = coalesce($2::boolean, disabled),"
				   " roles = coalesce($3::text[], roles), updated_at = now()"
				   " WHERE id = $1::bigint",
				   3, p));
}
