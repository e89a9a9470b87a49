/*
 * api_users.c — the admin's view of one user: counts, reset links,
 * deletion (/api/admin/users/{id}...). The list with search and the
 * disable/role PATCH live in api_auth.c.
 *
 * Runs in: modelhub-fcgi workers. Called by: router.c (route table; every
 * route is ACCESS_ADMIN). Owns: nothing beyond the request; a reset token
 * is wiped once answered.
 * Shared state: app_user, session, password_reset, work_request,
 * input_cache through db_account.c; the revocation counter of
 * auth_cache.c. Changes that end sessions send NOTIFY session_revoked
 * (db_account.c), so they take effect on every replica at once.
 *
 * DESIGN: deleting a user needs ?confirm=<their username> (the page asks
 * the admin to type it) and is refused for the admin's own account. A
 * reset link made here is shown once to the admin, who hands it over; it
 * is valid auth.reset_seconds and single use like an emailed one.
 */
#include "fcgi/api.h"
#include "fcgi/auth_cache.h"
#include "db/db_account.h"
#include "db/db_user.h"
#include "lib/config.h"
#include "lib/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t user_id_of(struct api_req *r)
{
	char *end;
	long long id = strtoll(r->params[0], &end, 10);

	return *end || id <= 0 ? 0 : id;
}

static enum api_err no_user(struct api_req *r)
{
	return api_fail(r, API_NOT_FOUND, "not_found", "no such user");
}

static json_object *counts_json(PGresult *res)
{
	static const char *const names[] = {"total", "queued", "running", "completed", "failed",
					    "cancelled"};
	json_object *c = json_object_new_object();

	for (int i = 0; i < 6; i++)
		jx_add_pg_int(c, names[i], res, 0, 8 + i);
	return c;
}

static enum api_err user_get(struct api_req *r)
{
	int64_t id = user_id_of(r);
	PGresult *res;
	json_object *u;

	if (!id)
		return no_user(r);
	if (!(res = db_account_admin_view(r->db, id)))
		return api_db_fail(r);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return no_user(r);
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
	json_object_object_add(u, "requests", counts_json(res));
	jx_add_pg_int(u, "live_sessions", res, 0, 14);
	jx_add_pg_str(u, "last_request_at", res, 0, 15);
	PQclear(res);
	return api_json(r, 200, u);
}

/* The user's name: 0 found, 1 none, -1 error. */
static int username_of(struct api_req *r, int64_t id, char name[64])
{
	PGresult *res = db_user_get(r->db, id);
	int rc;

	if (!res)
		return -1;
	rc = PQntuples(res) == 1 ? 0 : 1;
	if (rc == 0)
		snprintf(name, 64, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return rc;
}

static enum api_err user_delete(struct api_req *r)
{
	int64_t id = user_id_of(r);
	const char *confirm = api_query(r, "confirm");
	char name[64];
	json_object *o, *f;
	int rc;

	if (!id)
		return no_user(r);
	if (id == r->auth.user_id)
		return api_fail(r, API_CONFLICT, "own_account",
				"admins delete their own account from the account page");
	if ((rc = username_of(r, id, name)) != 0)
		return rc < 0 ? api_db_fail(r) : no_user(r);
	if (!confirm || strcmp(confirm, name) != 0) {
		f = json_object_new_object();
		json_object_object_add(f, "confirm", json_object_new_string(
			"must be the user's username"));
		return api_fail_fields(r, API_UNPROCESSABLE, "confirmation_required", f,
				       "give confirm=<username> to delete this user and their data");
	}
	rc = db_account_delete(r->db, id);
	if (rc < 0)
		return api_db_fail(r);
	if (rc == 0)
		return no_user(r);
	auth_cache_bump();
	log_info("auth msg=\"user deleted by admin\" user_id=%lld admin_id=%lld", (long long)id,
		 (long long)r->auth.user_id);
	o = json_object_new_object();
	json_object_object_add(o, "deleted", json_object_new_boolean(1));
	return api_json(r, 200, o);
}

static enum api_err user_reset_link(struct api_req *r)
{
	int64_t id = user_id_of(r);
	char token[DB_SESSION_TOKEN_HEX + 1], exp[40], name[64], path[128];
	const char *base = cfg_str("site.url", "");
	json_object *o;
	enum api_err e;
	int rc;

	if (!id)
		return no_user(r);
	if ((rc = username_of(r, id, name)) != 0)
		return rc < 0 ? api_db_fail(r) : no_user(r);
	if (db_reset_create(r->db, id, r->auth.user_id, cfg_int("auth.reset_seconds", 1800), token,
			    exp) < 0)
		return api_db_fail(r);
	snprintf(path, sizeof path, "/#/reset-password?token=%s", token);
	o = json_object_new_object();
	json_object_object_add(o, "username", json_object_new_string(name));
	json_object_object_add(o, "token", json_object_new_string(token));
	json_object_object_add(o, "path", json_object_new_string(path));
	if (base && *base) {
		size_t bl = strlen(base);
		char url[600];
		snprintf(url, sizeof url, "%.*s%s", (int)(base[bl - 1] == '/' ? bl - 1 : bl), base,
			 path);
		json_object_object_add(o, "url", json_object_new_string(url));
	} else {
		json_object_object_add(o, "url", NULL);
	}
	json_object_object_add(o, "expires_at", json_object_new_string(exp));
	sodium_memzero(token, sizeof token);
	sodium_memzero(path, sizeof path);
	log_info("auth msg=\"reset link made by admin\" user_id=%lld admin_id=%lld",
		 (long long)id, (long long)r->auth.user_id);
	e = api_json(r, 201, o);
	return e;
}

const struct api_route api_users_routes[] = {
	{"GET", "/api/admin/users/{}", ACCESS_ADMIN, user_get},
	{"DELETE", "/api/admin/users/{}", ACCESS_ADMIN, user_delete},
	{"POST", "/api/admin/users/{}/reset-link", ACCESS_ADMIN, user_reset_link},
	{0},
};
