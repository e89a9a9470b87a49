/*
 * db_account.h — a person's own account, password reset links, guest
 * sessions and the admin's view of users (tables app_user, session,
 * password_reset, work_request, input_cache).
 *
 * Runs in: modelhub-fcgi workers. Called by: api_account.c, api_users.c,
 * api_auth.c (user search). Owns: nothing beyond the PGresults it clears
 * before returning; returned PGresults are the caller's to PQclear().
 * Shared state: every change that must end sessions elsewhere (password,
 * deletion, revocation) sends NOTIFY session_revoked in the same statement,
 * so the session caches of every worker of every replica drop at once.
 * Callers must have called sodium_init() (tokens).
 */
#ifndef MH_DB_ACCOUNT_H
#define MH_DB_ACCOUNT_H

#include <stdint.h>

#include "db/db.h"
#include "db/db_session.h"

/* The password hash of a live (not disabled) user: 0 found (copied into
 * hash, 128 bytes), 1 none, -1 error. */
int db_account_hash(struct db *db, int64_t user_id, char hash[128]);
/* Store a new password hash, mark the user's open reset links used and
 * revoke every session of the user except keep_session (0: all). 0 / -1. */
int db_account_set_password(struct db *db, int64_t user_id, const char *hash,
			    int64_t keep_session);
/* Change the email (stored lower-cased). 1 changed, 0 no such user, -1
 * error (db_is_unique_violation: taken). */
int db_account_set_email(struct db *db, int64_t user_id, const char *email);
/* Live sessions of a user, newest first: id, kind, iso(created_at),
 * iso(last_seen), iso(expires_at), iso(absolute_expires_at), user_agent,
 * ip. NULL on error. */
PGresult *db_account_sessions(struct db *db, int64_t user_id);
/* Revoke one live session of this user: 1 revoked, 0 none such, -1 error. */
int db_account_revoke_session(struct db *db, int64_t user_id, int64_t session_id);
/* Delete the user's requests (with inputs and results) and the cache
 * entries the user contributed; counts in *requests, *cache. 0 / -1. */
int db_account_delete_data(struct db *db, int64_t user_id, long *requests, long *cache);
/* Delete the user with all of the above and their sessions (NOTIFY).
 * 1 deleted, 0 no such user, -1 error. */
int db_account_delete(struct db *db, int64_t user_id);

/* ---- password reset links ---- */
/* The account a forgot-password form names (username, or email when it
 * holds '@'), enabled ones only: 0 found, 1 none, -1 error. */
int db_reset_target(struct db *db, const char *login, int64_t *user_id, char email[320],
		    char username[64]);
/* New link for user_id valid ttl_s seconds; created_by = admin id or 0.
 * Writes the client token and its expiry (ISO 8601). 0 / -1. */
int db_reset_create(struct db *db, int64_t user_id, int64_t created_by, long ttl_s,
		    char token[DB_SESSION_TOKEN_HEX + 1], char expires_at[40]);
/* A usable link's account (username, email) without using it: 0 found,
 * 1 unknown/expired/used/account disabled, -1 error. */
int db_reset_peek(struct db *db, const char *token, char username[64], char email[320]);
/* Use a link: in one transaction mark it used, store hash as the password,
 * mark the user's other links used and revoke every session.
 * 0 done (*user_id set), 1 unknown/expired/used/account disabled, -1 error. */
int db_reset_use(struct db *db, const char *token, const char *hash, int64_t *user_id);

/* ---- guests ---- */
/* Mark a new ANON session as a guest (browser) session. 0 / -1. */
int db_guest_mark(struct db *db, int64_t session_id);
/* 1 when the session is a live guest session, 0 not, -1 error; when 1 and
 * requests is not NULL, the number of its requests. */
int db_guest_is(struct db *db, int64_t session_id, long *requests);
/* Slide a guest session's expiry to now + ttl_s. 0 (*out filled), 1 not a
 * live guest session, -1 error. */
int db_guest_refresh(struct db *db, int64_t session_id, long ttl_s,
		     struct db_session_info *out);
/* Give a live guest session a new token (the guest id): the old one stops
 * working everywhere (NOTIFY). 0 done (token written), 1 not a live
 * guest session, -1 error. */
int db_guest_rotate(struct db *db, int64_t session_id, char token[DB_SESSION_TOKEN_HEX + 1]);
/* Move the guest session's requests to user_id and revoke the session, in
 * one transaction. *moved = requests moved. 0 / -1. */
int db_guest_claim(struct db *db, int64_t session_id, int64_t user_id, long *moved);

/* ---- admin ---- */
/* Columns of db_user_get plus requests by status: id, username, email,
 * first_name, last_name, roles, disabled, created_at, then total, queued,
 * running, completed, failed, cancelled, live sessions, last request
 * time (or NULL). 0 or 1 rows, NULL on error. */
PGresult *db_account_admin_view(struct db *db, int64_t user_id);

#endif
