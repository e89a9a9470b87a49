/*
 * db_autoscale.h — the node autoscaler's tables (sql/004_autoscaler.sql):
 * decisions with their reasons, the last pass's snapshot, the verdict per
 * pending pod, and the nodes the autoscaler cordoned.
 *
 * Runs in: the autoscaler child (writes everything), runners (read a pod's
 * verdict), modelhub-fcgi workers (GET /api/autoscaler).
 * Called by: hubd/autoscaler.c, hubd/runner.c, fcgi/api_autoscaler.c.
 * Shared state: tables autoscaler_decision, autoscaler_status,
 * autoscaler_pod, autoscaler_node; no locking beyond single statements.
 * Only the leader writes: every write takes the hub lease's fencing token
 * (db_lead.h) and does nothing once that lease expired or moved on.
 */
#ifndef MH_DB_AUTOSCALE_H
#define MH_DB_AUTOSCALE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "lib/buf.h"

struct db_as_decision {
	const char *replica, *mode, *action, *group, *node, *pod, *model;
	int count;                 /* nodes added/removed; < 0: none */
	const char *reason;
	const char *detail_json;   /* NULL or a JSON text */
};

/* Writers: token = the hub lease's fencing token (hubd_leader_token()). */
int db_as_decision_add(struct db *db, int64_t token, const struct db_as_decision *d);
/* Replace this replica's snapshot (a JSON text). */
int db_as_status_put(struct db *db, int64_t token, const char *replica, const char *snapshot_json);
/* The verdict for a pending pod (verdict: fits, provisioning, at_max, no_capacity). */
int db_as_pod_set(struct db *db, int64_t token, const char *pod, const char *model, const char *verdict,
		  const char *message, const char *group);
/* Forget verdicts not refreshed for older_s seconds (their pods are gone or scheduled). */
int db_as_pod_prune(struct db *db, int64_t token, double older_s);
/* 1 while the hub lease is still held with token (checked right before a
 * write to the cluster, which no SQL fence can cover), 0 otherwise. */
int db_as_fence_ok(struct db *db, int64_t token);
/* A pod's verdict: 1 found (verdict, message filled), 0 none, -1 error. */
int db_as_pod_get(struct db *db, const char *pod, char *verdict, size_t vlen, char *message, size_t mlen);
/* Nodes cordoned by the autoscaler: mark (purpose remove or drain), unmark,
 * and the purpose of one (1 found, 0 not ours, -1 error). */
int db_as_node_mark(struct db *db, int64_t token, const char *node, const char *group, const char *purpose);
int db_as_node_unmark(struct db *db, int64_t token, const char *node);
int db_as_node_purpose(struct db *db, const char *node, char *purpose, size_t n);
/* Model pods serving a request now (model_instance BUSY): names, one per
 * line, appended to out. */
int db_as_busy_pods(struct db *db, struct buf *out);
/* Warm instances waiting for work (model_instance IDLE): pod names, one
 * per line, appended to out. */
int db_as_idle_pods(struct db *db, struct buf *out);
/* Requests of every model: "id cpu_request_m memory_request_mib" lines. */
int db_as_model_requests(struct db *db, struct buf *out);
/* GET /api/autoscaler's body: {"updated_at", "replica", "snapshot",
 * "decisions": [last limit]} appended to out as JSON text; 0 or -1. */
int db_as_report(struct db *db, int limit, struct buf *out);

#endif
