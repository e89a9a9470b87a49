/*
 * db_work_model.c — the model row as the runner needs it (struct work_model).
 *
 * Runs in: modelhubd children and supervisor. Called by: runner.c, db_work_claim.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: reads model.
 */
#include "db/db_work.h"
#include "db/db_work_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void db_work_model_clear(struct work_model *m)
{
	if (m->cmd) {
		for (int i = 0; i < m->ncmd; i++)
			free(m->cmd[i]);
		free(m->cmd);
	}
	m->cmd = NULL;
	m->ncmd = 0;
}

int db_work_model_copy(struct work_model *dst, const struct work_model *src)
{
	*dst = *src;
	dst->cmd = NULL;
	dst->ncmd = 0;
	if (!src->cmd)
		return 0;
	dst->cmd = calloc((size_t)src->ncmd, sizeof *dst->cmd);
	if (!dst->cmd)
		return -1;
	dst->ncmd = src->ncmd;
	for (int i = 0; i < src->ncmd; i++)
		if (!(dst->cmd[i] = strdup(src->cmd[i]))) {
			db_work_model_clear(dst);
			return -1;
		}
	return 0;
}

static int parse_cmd(struct work_model *m, const char *json)
{
	struct json_object *a = json_tokener_parse(json);
	int n, rc = -1;

	if (!a || !json_object_is_type(a, json_type_array))
		goto out;
	n = (int)json_object_array_length(a);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	m->cmd = calloc((size_t)n, sizeof *m->cmd);
	if (!m->cmd)
		goto out;
	for (int i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, (size_t)i));
		if (!(m->cmd[i] = strdup(s ? s : "")))
			goto out;
		m->ncmd = i + 1;
	}
	rc = 0;
out:
	json_object_put(a);
	return rc;
}

/* One row of MODEL_COLS into *m: 1, 0 no row, -1 error; r is cleared. */
int db_work_model_fill(PGresult *r, struct work_model *m)
{
	int rc = 0;

	memset(m, 0, sizeof *m);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		snprintf(m->id, sizeof m->id, "%s", PQgetvalue(r, 0, 15));
		m->enabled = PQgetvalue(r, 0, 0)[0] == 't';
		m->async = strcmp(PQgetvalue(r, 0, 1), "ASYNC") == 0;
		snprintf(m->image, sizeof m->image, "%s", PQgetvalue(r, 0, 2));
		snprintf(m->image_tag, sizeof m->image_tag, "%s", PQgetvalue(r, 0, 3));
		if (!PQgetisnull(r, 0, 4) && parse_cmd(m, PQgetvalue(r, 0, 4)) < 0) {
			db_work_model_clear(m);
			PQclear(r);
			return -1;
		}
		m->port = atoi(PQgetvalue(r, 0, 5));
		m->cpu_request_m = atoi(PQgetvalue(r, 0, 6));
		m->cpu_limit_m = atoi(PQgetvalue(r, 0, 7));
		m->memory_request_mib = atoi(PQgetvalue(r, 0, 8));
		m->memory_limit_mib = atoi(PQgetvalue(r, 0, 9));
		m->disable_memory_limit = PQgetvalue(r, 0, 10)[0] == 't';
		m->max_instances = atoi(PQgetvalue(r, 0, 11));
		m->idle_seconds = atoi(PQgetvalue(r, 0, 12));
		m->cache_enabled = PQgetvalue(r, 0, 13)[0] == 't';
		snprintf(m->version, sizeof m->version, "%s", PQgetvalue(r, 0, 14));
		m->compound = PQgetvalue(r, 0, 16)[0] == 't';
		m->time_budget_s = atoi(PQgetvalue(r, 0, 17));
		rc = 1;
	}
	PQclear(r);
	return rc;
}

int db_work_model(struct db *db, const char *model_id, struct work_model *m)
{
	const char *p[1] = {model_id};

	return db_work_model_fill(db_prep(db, "work_model", MODEL_COLS " WHERE id = $1", 1, p), m);
}
