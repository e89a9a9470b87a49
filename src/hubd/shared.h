/*
 * shared.h — the supervisor's own shared mapping (not the metrics segment):
 * child heartbeats, runner busy flags and the model assignment.
 *
 * Runs in: modelhubd and all its children. An anonymous MAP_SHARED mapping
 * made by the supervisor before the first fork, so it needs no name and
 * vanishes with the last process.
 * Writers: heartbeat_ms[i] and runner_busy[r] by child i / runner r only;
 * the assignment by the supervisor only, under a seqlock (assign_seq odd
 * while writing); readers copy and retry when the sequence moved.
 */
#ifndef MH_HUBD_SHARED_H
#define MH_HUBD_SHARED_H

#include <stdatomic.h>
#include <stdint.h>

#define HUBD_MAX_CHILDREN 48
#define HUBD_MAX_RUNNERS 32
#define HUBD_MAX_ASSIGN 64      /* models per runner */
#define HUBD_MODEL_ID_LEN 72    /* model ids are at most 64 chars */
#define HUBD_SHARED_MAGIC 0x6d686231u

struct hubd_runner_models {
	int n;
	char id[HUBD_MAX_ASSIGN][HUBD_MODEL_ID_LEN];
};

struct hubd_shared {
	uint32_t magic;
	_Atomic int64_t heartbeat_ms[HUBD_MAX_CHILDREN]; /* mh_mono_ms() */
	_Atomic int runner_busy[HUBD_MAX_RUNNERS];
	_Atomic uint32_t assign_seq;
	struct hubd_runner_models assigned[HUBD_MAX_RUNNERS];
};

/* Set in each process (supervisor before fork; inherited by children). */
extern struct hubd_shared *hubd_shm;

/* Runner r's models, copied consistently. Returns the generation (even). */
uint32_t hubd_assigned_models(int r, struct hubd_runner_models *out);
/* Runner r starts/ends a request; turning idle pokes the supervisor. */
void hubd_set_busy(int r, int busy);

#endif
