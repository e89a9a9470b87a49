/*
 * modelclient.h — HTTP client for ersilia-pack model servers (libcurl).
 *
 * Runs in: runners (the /run and /job/... calls) and the local backend
 * (readiness probes). Owns: one CURL easy handle per struct mc, reused so
 * calls to the same instance keep their connection.
 *
 * A call reports transport outcome and HTTP status separately: the runner
 * tells "this batch was rejected" (an HTTP answer, 4xx/5xx) from "the
 * instance is gone" (refused, reset, empty reply) — only the former is a
 * reason to bisect a chunk (DESIGN.md §5 step 5).
 */
#ifndef MH_MODELCLIENT_H
#define MH_MODELCLIENT_H

#include "lib/buf.h"

#include <stdint.h>

/* a CURLM * without making every includer include curl */
typedef void *CURLM_PTR;

enum mc_rc {
	MC_OK = 0,      /* an HTTP answer arrived; see status */
	MC_CONN,        /* refused, reset, empty reply: instance unreachable */
	MC_TIMEOUT,     /* no complete answer before the deadline */
	MC_ABORTED,     /* the tick callback asked to stop */
	MC_ERROR,       /* anything else (out of memory, bad URL) */
	MC_TOO_LARGE,   /* the answer passed hub.max_response_mib: cut, out partial */
};

#define MC_DEFAULT_MAX_RESPONSE_MIB 256 /* hub.max_response_mib; 0: no cap */

/* Called about once per second during a call; return non-zero to abort. */
typedef int (*mc_tick_fn)(void *ctx);

struct mc;

/* In an event loop (hubd/runner_loop.c): called by mc_finish while the
 * transfer runs, to let other tasks run for up to ms; returns 1 when the
 * task was woken early (the transfer ended, or someone wants the tick to
 * run now: a cancellation), 0 when ms passed. */
typedef int (*mc_wait_fn)(void *ctx, int ms);

struct mc *mc_new(void);
void mc_free(struct mc *m);
void mc_set_tick(struct mc *m, mc_tick_fn fn, void *ctx);

/* method "GET" or "POST" (body JSON, may be NULL). The answer body goes to
 * out (reset first); *status is the HTTP status (0 without an answer). */
enum mc_rc mc_call(struct mc *m, const char *method, const char *address, const char *path,
		   const char *body, int timeout_ms, struct buf *out, long *status);

/* The same call in two halves, so the caller can work while the model
 * computes: mc_start sends the request and returns (0, or -1 when a call is
 * already under way or libcurl refuses); mc_finish waits for the answer
 * (ticking as mc_call does) with mc_call's outcome. body and out must live
 * until mc_finish. One call at a time per struct mc. */
int mc_start(struct mc *m, const char *method, const char *address, const char *path,
	     const char *body, int timeout_ms, struct buf *out);
enum mc_rc mc_finish(struct mc *m, struct buf *out, long *status);
/* 1 between mc_start and mc_finish. */
int mc_busy(const struct mc *m);
/* The last finished call's duration as libcurl measured it (start to
 * answer), in ms: right even when its mc_finish came late. */
int64_t mc_total_ms(const struct mc *m);

/* Run this client's transfers on the loop's shared multi handle: mc_start
 * adds the easy handle to multi (the loop drives the sockets), mc_finish
 * waits through wait(ctx) and runs the tick at least once a second and
 * whenever woken early; the loop reports the end of a transfer with
 * mc_transfer_done. */
void mc_attach(struct mc *m, CURLM_PTR multi, mc_wait_fn wait, void *ctx);
/* The loop read CURLMSG_DONE for easy: record it; returns the struct mc
 * (its wait ctx through mc_wait_ctx) or NULL for a handle not ours. */
struct mc *mc_transfer_done(void *easy, int curl_code);
void *mc_wait_ctx(const struct mc *m);

/* 1 when GET /healthz answers 2xx within timeout_ms, else 0. */
int mc_healthz(struct mc *m, const char *address, int timeout_ms);

const char *mc_rc_name(enum mc_rc rc);

#endif
