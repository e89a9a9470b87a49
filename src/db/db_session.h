/*
 * db_session.h — sessions, login attempts and rate-limit counters
 * (tables session, login_attempt, rate_limit, and app_user reads for login).
 *
 * Runs in: modelhub-fcgi workers (api_auth.c), modelhubctl (through
 * db_user.c). Called by: api_auth.c, db_user.c. Owns: nothing beyond the
 * PGresults it clears before returning.
 *
 * Tokens: 32 bytes from randombytes_buf(), given to the client as 64
 * lowercase hex characters; the table keeps only crypto_hash_sha256 of the
 * raw bytes (bytea token_hash). Expiry decisions are made by the database
 * clock (now()), never by the worker's clock. Callers must have called
 * sodium_init().
 */
#ifndef MH_DB_SESSION_H
#define MH_DB_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_SESSION_HASH_LEN 32
#define DB_SESSION_TOKEN_HEX 64

/* One session as the auth layer needs it. */
struct db_session_info {
	int64_t id;
	int64_t user_id;            /* 0 for ANON */
	char kind[8];               /* "USER", "ANON", "API" */
	char username[64];          /* "" for ANON */
	int is_admin;
	char expires_at[40];        /* idle expiry, ISO 8601 UTC */
	char absolute_expires_at[40];
	int64_t remaining_ms;       /* until the earlier expiry, by the DB clock */
};

/* New random token: hex for the client and its SHA-256 for the table. */
void db_token_new(char hex[DB_SESSION_TOKEN_HEX + 1], unsigned char hash[DB_SESSION_HASH_LEN]);
/* Hash a client token. -1 if it is not 64 hex characters (nothing hashed). */
int db_token_hash(const char *hex, unsigned char hash[DB_SESSION_HASH_LEN]);

/* Create a session of kind "USER", "ANON" or "API" (user_id 0 for ANON).
 * idle_s is the sliding lifetime, abs_s the absolute one (idle_s is capped
 * at abs_s; API and ANON sessions pass idle_s = abs_s). ua/ip may be NULL.
 * Writes the client token to token_out and fills *out. 0 / -1. */
int db_session_create(struct db *db, const char *kind, int64_t user_id, long idle_s, long abs_s,
		      const char *ua, const char *ip, char token_out[DB_SESSION_TOKEN_HEX + 1],
		      struct db_session_info *out);
/* Anonymous sessions bound to a client-made id (the old Ersilia hub's
 * POST /api/auth/anonymous-login/{session_id}, api_compat.c): the caller
 * derives the session's token, and so its hash, from the id, so the id is
 * never stored and the same id finds the same session. started_out (>= 40
 * bytes) receives created_at (ISO 8601).
 * find: the live session with this hash; 0 found, 1 none, -1 error.
 * bind: create it with an absolute lifetime of abs_s, or revive the row
 * when it has expired (same session id, so its requests come back); a
 * revoked row or a live one is left alone. 0 (*out filled), 1 nothing
 * done (revoked, or made live meanwhile: find again), -1 error. */
int db_session_anon_find(struct db *db, const unsigned char hash[DB_SESSION_HASH_LEN],
			 char *started_out, struct db_session_info *out);
int db_session_anon_bind(struct db *db, const unsigned char hash[DB_SESSION_HASH_LEN], long abs_s,
			 const char *ua, const char *ip, char *started_out,
			 struct db_session_info *out);
/* A live session (not revoked, not expired, user not disabled).
 * 0 found (*out filled), 1 unknown/expired/revoked, -1 db error. */
int db_session_lookup(struct db *db, const unsigned char hash[DB_SESSION_HASH_LEN],
		      struct db_session_info *out);
/* Slide the idle expiry of a live USER session to min(now + idle_s,
 * absolute). ANON/API sessions are returned unchanged.
 * 0 (*out filled), 1 no longer live, -1 error. */
int db_session_refresh(struct db *db, int64_t id, long idle_s, struct db_session_info *out);
/* Revoke one session / every live session of a user, and NOTIFY
 * session_revoked. 0 / -1. */
int db_session_revoke(struct db *db, int64_t id);
int db_session_revoke_user(struct db *db, int64_t user_id);
/* The account's roles or flags changed: NOTIFY session_revoked so every
 * worker of every replica drops its cached sessions (which carry roles)
 * at once; the sessions stay valid. 0 / -1. */
int db_session_user_changed(struct db *db, int64_t user_id);

/* Account row needed by login. `login` is a username, or an email when it
 * contains '@' (compared lower-cased). 0 found, 1 none, -1 error. The hash
 * is copied into hash_out (crypto_pwhash_STRBYTES = 128 bytes). */
struct db_login_user {
	int64_t id;
	char username[64];
	int disabled;
	char hash[128];
};
int db_session_login_user(struct db *db, const char *login, struct db_login_user *out);
/* Replace a user's password hash (after a rehash on login). 0 / -1. */
int db_session_store_hash(struct db *db, int64_t user_id, const char *hash);

/* What the login throttle needs about `username` (the account key) and
 * `ip`, over the last window_s seconds (see db_session.c LOGIN_STATE_SQL).
 * A success of the account resets its failures (and the pair's); a
 * success from the address resets the address's. 0 / -1. */
struct db_login_state {
	long pair_fail;              /* failures of this account from this address */
	long pair_retry_s;           /* until the pair_max-th newest leaves the window */
	long acct_fail;              /* failures of this account from anywhere */
	double acct_last_fail_age_s; /* since its newest failure (1e9 if none) */
	long ip_fail;                /* failures from this address, any account */
	long ip_retry_s;             /* until the ip_max-th newest leaves the window */
};
int db_login_state(struct db *db, const char *username, const char *ip, long window_s,
		   long pair_max, long ip_max, struct db_login_state *st);
int db_login_record(struct db *db, const char *username, const char *ip, int success);

/* Fixed-window counter: add one hit to `bucket` in the current window of
 * window_s seconds; *hits = hits in this window including this one,
 * *retry_after_s = seconds until the window ends. 0 / -1. */
int db_rate_hit(struct db *db, const char *bucket, long window_s, long *hits,
		long *retry_after_s);

/* Retention (janitor): delete sessions that ended (expired or revoked)
 * more than keep_s seconds ago, login attempts and rate-limit windows older
 * than keep_s, at most `batch` rows of each per call. *deleted = rows gone.
 * 0 / -1. */
int db_session_purge(struct db *db, long keep_s, int batch, long *deleted);

/* The row of a session as it is now (even expired or revoked): kind,
 * expires_at, absolute_expires_at (ISO 8601); 0 or 1 rows, NULL on error. */
PGresult *db_session_row(struct db *db, int64_t id);

#endif
