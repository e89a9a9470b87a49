/*
 * shared.h — modelhubd's own shared mapping (not the metrics segment):
 * runner busy flags, the model assignment and the runner pokes. Child
 * heartbeats live in the supervisor core's table (lib/sup.h), the only one.
 *
 * Runs in: modelhubd and all its children. An anonymous MAP_SHARED mapping
 * made by the supervisor before the first fork, so it needs no name and
 * vanishes with the last process.
 * Writers: nrunners by the supervisor before the first fork; runner_busy[r]
 * by runner r (cleared by the supervisor when runner r exits); the
 * assignment, poke_runners and beat_started by the dealer only. The
 * assignment is under a seqlock (assign_seq odd while writing); readers
 * copy and retry when the sequence moved. A dealer killed while writing
 * leaves assign_seq odd: the supervisor makes it even when it reaps the
 * dealer, and the next dealer rewrites every list.
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
	int nrunners;
	_Atomic int runner_busy[HUBD_MAX_RUNNERS];
	_Atomic uint32_t poke_runners;  /* bit r: runner r's list changed */
	_Atomic int beat_started;       /* the first hub_server beat was sent */
	_Atomic uint32_t assign_seq;
	struct hubd_runner_models assigned[HUBD_MAX_RUNNERS];
};

/* Set in each process (supervisor before fork; inherited by children). */
extern struct hubd_shared *hubd_shm;

/* Runner r's models, copied consistently. Returns the generation (even). */
uint32_t hubd_assigned_models(int r, struct hubd_runner_models *out);
/* Runner r starts/ends a request; turning idle pokes the supervisor, which
 * passes it on to the dealer. */
void hubd_set_busy(int r, int busy);
/* The dealer: the runners in mask (bit r = runner r) have a new list; the
 * supervisor sends each SIGUSR1. */
void hubd_poke_runners(uint32_t mask);

#endif
