/*
 * sizing.c — implementation of sizing.h: size a new instance from the
 * request it is started for (opt-in per model, sql/014).
 *
 * Runs in: modelhubd runners, once per instance start of an opted-in model.
 * Called by: runner_pool.c (runner_inst_get). Owns: nothing beyond a call.
 * Shared state: reads model.size_from_request and instance_metrics (the
 * same newest REC_DEFAULT_LIMIT instances GET /api/recommendations uses);
 * writes the instance row's resources, sized_inputs and chunk_size while
 * it is still REQUESTED.
 *
 * DESIGN
 * The model only sees calls, so its memory follows the call size: the
 * instance records the largest call it was sized for (chunk_size) and the
 * runner keeps every call to it at most that size, also for a larger
 * request that later finds it warm (slower, never over its memory). The
 * node caps are the recommendations' (as_config_rec_caps: node groups,
 * else the nodes in the metrics segment, else this machine).
 */
#include "hubd/sizing.h"
#include "autoscale/as_config.h"
#include "cluster/cluster.h"
#include "db/db_recommend.h"
#include "lib/log.h"
#include "metrics/view.h"
#include "recommend/recommend.h"

#include <stdlib.h>

/* The bucket values into spec; the request clamped to its limit. */
static void set_spec(struct cluster_spec *spec, int res[REC_RES_MAX], int no_mem_limit)
{
	if (no_mem_limit)
		res[REC_MEM_LIMIT] = 0;
	if (res[REC_CPU_LIMIT] > 0 && res[REC_CPU_REQUEST] > res[REC_CPU_LIMIT])
		res[REC_CPU_REQUEST] = res[REC_CPU_LIMIT];
	if (res[REC_MEM_LIMIT] > 0 && res[REC_MEM_REQUEST] > res[REC_MEM_LIMIT])
		res[REC_MEM_REQUEST] = res[REC_MEM_LIMIT];
	spec->cpu_request_m = res[REC_CPU_REQUEST];
	spec->cpu_limit_m = res[REC_CPU_LIMIT];
	spec->memory_request_mib = res[REC_MEM_REQUEST];
	spec->memory_limit_mib = res[REC_MEM_LIMIT];
}

int sizing_apply(struct db *db, struct metrics_seg *seg, int inputs, int chunk, int no_mem_limit,
		 struct cluster_spec *spec, int *chunk_out)
{
	struct rec_node seen[64];
	struct rec_config cfg;
	struct rec_report rep = {0};
	struct rec_instance *in = NULL;
	int n = 0, res[REC_RES_MAX], on, rc = 0;

	*chunk_out = 0;
	if ((on = db_recommend_sizing_on(db, spec->model_id)) <= 0)
		return on;
	if (db_recommend_load(db, spec->model_id, NULL, NULL, REC_DEFAULT_LIMIT, &rep, &in, &n) !=
	    DB_REC_OK) {
		free(in);
		return -1;
	}
	rec_config_read(&cfg);
	as_config_rec_caps(&cfg, seen, seg ? view_node_caps(seg, seen, 64) : 0);
	rec_report_compute(&cfg, in, n, &rep);
	free(in);
	if (!rec_size_for_request(&cfg, &rep, inputs, chunk, res, chunk_out)) {
		*chunk_out = 0;
		return 0;
	}
	set_spec(spec, res, no_mem_limit);
	if (db_recommend_sized(db, spec->instance_id, res, inputs, *chunk_out) < 0)
		rc = -1;
	log_info("sizing model=%s instance=%lld inputs=%d cpu=%d/%dm memory=%d/%dMi chunk=%d",
		 spec->model_id, (long long)spec->instance_id, inputs, res[0], res[1], res[2], res[3],
		 *chunk_out);
	return rc < 0 ? -1 : 1;
}
