/*
 * router.c — maps method + path to a handler and enforces access rules.
 *
 * Runs in: modelhub-fcgi workers (and t/011-router with its own tables).
 * Called by: worker.c (api_dispatch) once per request, after the auth step
 * has filled r->auth.
 * Owns: nothing; captured path segments are decoded copies owned by the
 * request (api_own).
 *
 * DESIGN: every api_<resource>.c exports one table; the router scans them
 * in order (a few dozen routes, linear is cheaper than any index here).
 * A pattern is literal segments and "{}" (exactly one non-empty segment).
 * When the path matches a pattern but no route has the method, the answer
 * is 405 with an Allow header listing the methods that do exist; a path no
 * pattern matches is 404. Access is checked before the handler so handlers
 * never see a caller they must not serve:
 *   ACCESS_SESSION  any valid session or token (user or anonymous)
 *   ACCESS_USER     a registered user (admins included); anonymous → 403
 *   ACCESS_ADMIN    role ADMIN; other callers → 403
 * No credentials → 401 "unauthorized", or "session_expired" when a token was
 * presented but is unknown/expired/revoked (r->auth_error), so a browser
 * can log out cleanly. Cookie-authenticated state-changing requests must
 * pass the CSRF rule (api_auth_csrf_ok) → else 403 "csrf".
 */
#include "fcgi/api.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

static const struct api_route *const default_tables[] = {
	api_health_routes,
	api_auth_routes,
	api_models_routes,
	api_requests_routes,
	api_instances_routes,
	api_recommend_routes,
	api_metrics_routes,
	api_autoscaler_routes,
	api_account_routes,
	api_users_routes,
	api_stats_routes,
	api_compat_routes,
	api_openapi_routes,
	NULL,
};

/* Compare one pattern with a path; on a match fill r->params (decoded
 * copies) when capture is set. 1 match, 0 no match. */
static int match(const char *pat, const char *path, struct api_req *r, int capture)
{
	int n = 0;

	while (*pat && *path) {
		if (*pat != '/' || *path != '/')
			return 0;
		pat++;
		path++;
		const char *pe = strchr(pat, '/'), *se = strchr(path, '/');
		size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
		size_t sl = se ? (size_t)(se - path) : strlen(path);

		if (pl == 2 && pat[0] == '{' && pat[1] == '}') {
			if (sl == 0 || n >= API_MAX_PARAMS)
				return 0;
			if (capture) {
				char *v = api_own(r, api_url_decode(path, sl, 0));
				if (!v)
					return 0;
				r->params[n] = v;
			}
			n++;
		} else if (pl != sl || memcmp(pat, path, pl) != 0) {
			return 0;
		}
		pat += pl;
		path += sl;
	}
	if (*pat || *path)
		return 0;
	if (capture)
		r->nparams = n;
	return 1;
}

static int state_changing(const char *m)
{
	return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

static enum api_err check_access(struct api_req *r, enum api_access need)
{
	if (need == ACCESS_PUBLIC)
		return API_OK;
	if (!r->auth.present) {
		if (r->auth_error == 2)
			return api_fail(r, API_UNAVAILABLE, "unavailable",
					"sessions cannot be checked right now; retry shortly");
		if (r->auth_error)
			return api_fail(r, API_UNAUTHORIZED, "session_expired",
					"the session has expired or was revoked; log in again");
		return api_fail(r, API_UNAUTHORIZED, "unauthorized", "authentication required");
	}
	if (need == ACCESS_USER && r->auth.is_anon)
		return api_fail(r, API_FORBIDDEN, "forbidden", "this needs a user account");
	if (need == ACCESS_ADMIN && !r->auth.is_admin)
		return api_fail(r, API_FORBIDDEN, "forbidden", "this needs the ADMIN role");
	return API_OK;
}

/* Append m to the Allow list unless already there. */
static void allow_add(char *allow, size_t size, const char *m)
{
	size_t ml = strlen(m);

	for (const char *p = allow; (p = strstr(p, m)) != NULL; p += ml)
		if ((p == allow || (p - allow >= 2 && p[-2] == ',')) && (p[ml] == '\0' || p[ml] == ','))
			return;
	if (strlen(allow) + ml + 3 > size)
		return;
	if (*allow)
		strcat(allow, ", ");
	strcat(allow, m);
}

enum api_err api_route(struct api_req *r, const struct api_route *const *tables)
{
	const struct api_route *hit = NULL;
	char allow[128] = "";
	enum api_err rc;

	/* HEAD is GET without the body (api_render drops it) */
	const char *want = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;

	for (int t = 0; tables[t] && !hit; t++)
		for (const struct api_route *rt = tables[t]; rt->method; rt++) {
			if (!match(rt->pattern, r->path, r, 0))
				continue;
			if (strcmp(rt->method, want) == 0) {
				hit = rt;
				break;
			}
			allow_add(allow, sizeof allow, rt->method);
		}
	if (!hit && *allow) {
		api_header(r, "Allow", "%s", allow);
		return api_fail(r, API_METHOD_NOT_ALLOWED, "method_not_allowed",
				"method %s is not allowed here (allowed: %s)", r->method, allow);
	}
	if (!hit)
		return api_fail(r, API_NOT_FOUND, "not_found", "no such resource");
	if (!match(hit->pattern, r->path, r, 1))
		return api_fail(r, API_INTERNAL, "internal", "out of memory capturing the path");
	rc = check_access(r, hit->access);
	if (rc != API_OK)
		return rc;
	if (r->auth.present && r->auth.via_cookie && state_changing(r->method) &&
	    api_auth_csrf_ok(r) != 0)
		return api_fail(r, API_FORBIDDEN, "csrf",
				"cookie-authenticated requests that change state need the "
				"X-Requested-With header or a same-origin Origin");

	rc = hit->handler(r);

	if (r->streamed)
		return rc;
	if (rc == API_OK && r->status == 0)
		return api_fail(r, API_INTERNAL, "internal", "handler %s %s set no response",
				hit->method, hit->pattern);
	if (rc != API_OK && !r->has_error)
		return api_fail(r, rc, api_err_code(rc), "%s", api_err_code(rc));
	return rc;
}

enum api_err api_dispatch(struct api_req *r)
{
	return api_route(r, default_tables);
}
