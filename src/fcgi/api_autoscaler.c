/*
 * api_autoscaler.c — what the node autoscaler sees and decided, and the
 * model save check against the node groups.
 *
 * Runs in: modelhub-fcgi workers. Called by: the router
 * (api_autoscaler_routes), api_models.c (api_autoscale_fits).
 * Owns: nothing beyond the request.
 * Shared state: reads autoscaler_status and autoscaler_decision (written by
 * the autoscaler child of the leader replica) and the model requests; the
 * node groups come from this worker's configuration (autoscale.*), never
 * from the cluster: an API worker does not talk to Kubernetes.
 *
 *   GET /api/autoscaler   admin; {"enabled", "groups" (configured),
 *                         "updated_at", "replica", "snapshot" (the last
 *                         pass: groups with sizes and provisioning, pending
 *                         pods with verdicts, nodes with the action and its
 *                         reason), "decisions" (last 100, newest first),
 *                         "models_without_group" (models whose requests fit
 *                         no node group: they can never start)}
 */
#include "autoscale/as_config.h"
#include "db/db_autoscale.h"
#include "fcgi/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_AS_DECISIONS 100

static json_object *config_groups(const struct as_config *c)
{
	json_object *arr = json_object_new_array();

	for (int g = 0; g < c->ngroups; g++) {
		const struct as_group_cfg *gc = &c->groups[g];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(gc->name));
		json_object_object_add(o, "mode", json_object_new_string(as_mode_name(gc->mode)));
		json_object_object_add(o, "min", json_object_new_int(gc->g.min));
		json_object_object_add(o, "max", json_object_new_int(gc->g.max));
		json_object_object_add(o, "cpu_m", json_object_new_int64(gc->g.cpu_m));
		json_object_object_add(o, "memory_mib", json_object_new_int64(gc->g.mem_mib));
		json_object_array_add(arr, o);
	}
	return arr;
}

/* 1 when a pod of these requests fits some group of c, else 0 with why. */
static int fits(const struct as_config *c, int cpu_m, int mem_mib, char *why, size_t n)
{
	struct as_group groups[AS_MAX_GROUPS];
	struct as_pod p = as_config_pod(c, cpu_m, mem_mib);

	for (int g = 0; g < c->ngroups; g++)
		groups[g] = c->groups[g].g;
	if (c->ngroups == 0 || as_fits_any(groups, c->ngroups, &p) >= 0)
		return 1;
	if (why)
		snprintf(why, n, "requests cpu %dm, memory %d MiB fit no node group (%d configured, e.g. %s: "
			 "%lldm, %lld MiB allocatable, with its labels and taints)", cpu_m, mem_mib, c->ngroups,
			 c->groups[0].name, (long long)c->groups[0].g.cpu_m, (long long)c->groups[0].g.mem_mib);
	return 0;
}

static json_object *models_without_group(struct api_req *r, const struct as_config *c)
{
	json_object *arr = json_object_new_array();
	struct buf b = {0};
	char *line, *save = NULL;

	if (c->ngroups == 0 || db_as_model_requests(r->db, &b) < 0) {
		buf_free(&b);
		return arr;
	}
	for (line = b.data ? strtok_r(b.data, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char id[72];
		int cpu, mem;

		if (sscanf(line, "%71s %d %d", id, &cpu, &mem) == 3 && !fits(c, cpu, mem, NULL, 0))
			json_object_array_add(arr, json_object_new_string(id));
	}
	buf_free(&b);
	return arr;
}

int api_autoscale_fits(int cpu_m, int mem_mib, char *why, size_t n)
{
	struct as_config *c = malloc(sizeof *c);
	char err[256];
	int rc = 1;

	/* no groups, or a config the autoscaler itself reports: nothing to check against */
	if (c && as_config_load(c, err, sizeof err) == 0)
		rc = fits(c, cpu_m, mem_mib, why, n);
	free(c);
	return rc;
}

static enum api_err h_autoscaler(struct api_req *r)
{
	struct as_config *c = malloc(sizeof *c);
	struct buf b = {0};
	json_object *o;
	char err[256];
	int ok;

	if (!c)
		return api_fail(r, API_INTERNAL, "internal", "out of memory");
	ok = as_config_load(c, err, sizeof err) == 0;
	if (db_as_report(r->db, API_AS_DECISIONS, &b) < 0 || !(o = json_tokener_parse(b.data ? b.data : ""))) {
		buf_free(&b);
		free(c);
		return api_db_fail(r);
	}
	buf_free(&b);
	json_object_object_add(o, "enabled", json_object_new_boolean(ok && c->ngroups > 0));
	json_object_object_add(o, "config_error", ok ? NULL : json_object_new_string(err));
	json_object_object_add(o, "groups", ok ? config_groups(c) : json_object_new_array());
	json_object_object_add(o, "models_without_group", ok ? models_without_group(r, c) : json_object_new_array());
	free(c);
	return api_json(r, 200, o);
}

const struct api_route api_autoscaler_routes[] = {
	{"GET", "/api/autoscaler", ACCESS_ADMIN, h_autoscaler},
	{0},
};
