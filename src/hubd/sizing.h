/*
 * sizing.h — "size instances from the request" (issue 16): the resources
 * and largest call of a new instance, from the recommendation's
 * input-size buckets for the request it is started for.
 *
 * Runs in: modelhubd runners. Called by: runner_pool.c when it starts an
 * instance. Uses db/db_recommend.h (load, record) and the pure engine
 * (recommend/recommend.h, rec_size_for_request).
 */
#ifndef MH_HUBD_SIZING_H
#define MH_HUBD_SIZING_H

#include <stdint.h>

struct db;
struct metrics_seg;
struct cluster_spec;

/* When model spec->model_id opted in (model.size_from_request): spec's
 * resources become the recommendation of the bucket of a request of
 * `inputs` inputs, and *chunk_out the largest call (at most chunk, smaller
 * when that call size's memory would not fit the largest node); both are
 * recorded on instance spec->instance_id. no_mem_limit keeps the memory
 * limit off. Returns 1 sized, 0 the model's values stand (not opted in,
 * not enough data), -1 on a database error (the model's values stand).
 * *chunk_out is 0 unless sized. */
int sizing_apply(struct db *db, struct metrics_seg *seg, int inputs, int chunk, int no_mem_limit,
		 struct cluster_spec *spec, int *chunk_out);

#endif
