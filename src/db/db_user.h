/*
 * db_user.h — accounts and API tokens (tables app_user, session).
 *
 * Runs in: modelhub-fcgi workers (signup, login), modelhubctl (create-admin,
 * reset-password, create-token). Passwords are hashed with libsodium
 * argon2id by lib/password.c; tokens are 32 random bytes, hex-encoded for
 * the client, stored as SHA-256 only. Callers must have called sodium_init().
 */
#ifndef MH_DB_USER_H
#define MH_DB_USER_H

#include <stdint.h>

#include "db/db.h"

#define DB_TOKEN_HEX_LEN 64

/* Create a user; roles_csv like "ADMIN,USER". 0, -1 (db error; see
 * db_is_unique_violation), *id_out set on success. */
int db_user_create(struct db *db, const char *username, const char *email,
		   const char *password, const char *first_name, const char *last_name,
		   const char *roles_csv, int64_t *id_out);
/* 0, 1 = no such user, -1 = error. */
int db_user_set_password(struct db *db, const char *username, const char *password);
/* Look up a user id by name: 0 found, 1 not found, -1 error. */
int db_user_find(struct db *db, const char *username, int64_t *id_out);
/* Create a long-lived API token (session kind API) for a user; writes the
 * hex token (65 bytes incl. NUL) to token_out. ttl_days 0 = 3650. */
int db_token_create_api(struct db *db, int64_t user_id, int ttl_days,
			char token_out[DB_TOKEN_HEX_LEN + 1]);

/* Columns of db_user_get and db_user_page: id, username, email,
 * first_name, last_name, roles (JSON array), disabled, created_at. */
/* One user (0 or 1 rows; never the hash). NULL on error. */
PGresult *db_user_get(struct db *db, int64_t id);
/* Users with id > after_id, by id, at most limit; prefix (NULL: all)
 * matches the start of username, email, first or last name, ignoring
 * case. NULL on error. */
PGresult *db_user_page(struct db *db, int64_t after_id, long limit, const char *prefix);
/* Whether username, or email (compared lower-cased), is in use: 0 with
 * *user_taken / *email_taken set, -1 error. */
int db_user_taken(struct db *db, const char *username, const char *email, int *user_taken,
		  int *email_taken);
/* Admin change: disabled ("true"/"false") and roles (array literal such as
 * "{ADMIN,USER}"), each NULL to keep. 1 updated, 0 no such user, -1 error. */
int db_user_admin_update(struct db *db, int64_t id, const char *disabled, const char *roles);

#endif
