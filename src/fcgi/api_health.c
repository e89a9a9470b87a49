/*
 * api_health.c — GET /api/health (liveness + database) and GET /api/ping.
 *
 * Runs in: modelhub-fcgi workers. Called by: the router.
 * Owns: nothing.
 * Shared state: reads schema_migration (latest applied migration).
 *
 * /api/health answers 200 {"status":"ok","version","db":"ok","schema",
 * "migration","worker_pid","db_reconnects","limits":{"max_inputs",
 * "max_input_bytes"}} (limits: what a request may hold, so the submit form
 * can say it before a round trip) or 503 with the error JSON
 * (code "db_unavailable") when Postgres cannot be reached, so load
 * balancers and scripts/run-local can wait on it. /api/ping touches no
 * database: it is the "trivial FastCGI responder" of bench/api-throughput.
 */
#include "db/db_stats.h"
#include "fcgi/api.h"
#include "lib/config.h"

#include <stdlib.h>
#include <unistd.h>

static enum api_err health_get(struct api_req *r)
{
	long max_inputs = cfg_int("hub.max_inputs", 1000); /* as api_requests.c */
	PGresult *res;
	json_object *o, *lim;

	res = db_stats_health(r->db);
	if (!res) {
		if (db_is_unavailable(r->db))
			return api_fail(r, API_UNAVAILABLE, "db_unavailable",
					"the database is unavailable");
		return api_fail(r, API_UNAVAILABLE, "db_error",
				"the database answered with an error (schema not migrated?)");
	}
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	json_object_object_add(o, "version", json_object_new_string(MH_VERSION));
	json_object_object_add(o, "db", json_object_new_string("ok"));
	json_object_object_add(o, "schema", json_object_new_string(db_schema(r->db)));
	jx_add_pg_int(o, "migration", res, 0, 0);
	json_object_object_add(o, "worker_pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "db_reconnects",
			       json_object_new_int64((int64_t)db_reconnects(r->db)));
	lim = json_object_new_object();
	json_object_object_add(lim, "max_inputs",
			       json_object_new_int64(max_inputs > 0 ? max_inputs : 1000));
	json_object_object_add(lim, "max_input_bytes", json_object_new_int(4096));
	json_object_object_add(o, "limits", lim);
	PQclear(res);
	return api_json(r, 200, o);
}

static enum api_err ping_get(struct api_req *r)
{
	static const char pong[] = "{\"status\":\"ok\"}";

	return api_text(r, 200, "application/json", pong, sizeof pong - 1);
}

const struct api_route api_health_routes[] = {
	{"GET", "/api/health", ACCESS_PUBLIC, health_get},
	{"GET", "/api/ping", ACCESS_PUBLIC, ping_get},
	{0},
};
