/*
 * db_pod.h — what the pod watch records about model instances on the
 * kubernetes backend: pod snapshots on model_instance rows, the pods'
 * Kubernetes events, their logs, and the rows it ends when a pod, a runner
 * or a replica is gone.
 *
 * Runs in: the kubewatch child (hubd/kubewatch.c). Called by: kubewatch.c.
 * Owns: nothing; every PGresult is cleared before returning; arrays handed
 * out are malloc()ed and freed by the caller.
 * Shared state: model_instance (node, address, snapshot.pod/pod_state of
 * rows whose pod is seen; state/termination_* when a row is ended here),
 * instance_event (source 'k8s' events, TERMINATED events), instance_log
 * (upsert), read: work_request (lease), hub_server (heartbeats), model
 * (idle_seconds).
 *
 * Errors: 0 / -1 (logged by db.c); a statement that fails leaves the
 * output empty.
 */
#ifndef MH_DB_POD_H
#define MH_DB_POD_H

#include <stdint.h>

#include "db/db.h"

/* The pod of instance id as last seen: node and address when known (""
 * keeps the stored one), the pod object and its summary as JSON text into
 * snapshot.pod / snapshot.pod_state, plus a POD_STATE instance event
 * (source k8s: the summary, node and the pod's status object) so each
 * change stays in the history. Only a kubernetes row whose name is the
 * pod's (or not yet set). */
int db_pod_record(struct db *db, int64_t id, const char *pod, const char *node,
		  const char *address, const char *pod_json, const char *state_json);

/* Kubernetes events of model pods as source 'k8s' instance_event rows:
 * events_json is a JSON array of {id, pod, at (ms, 0: now), kind, uid,
 * count, detail}; an event goes to the instance row id when that row has
 * this pod name, once per (uid, count) (detail must carry uid and count:
 * the dedup key). Rows inserted, or -1. */
int db_pod_events_add(struct db *db, const char *events_json);

/* Instance rows of pods seen in the cluster. reapable: the pod may be
 * deleted by any replica once the row ended — its request is no longer
 * leased (not RUNNING, or the lease expired) or its replica has not beaten
 * (hub_server) for dead_s. */
struct db_pod_row {
	int64_t id;
	int terminated;         /* state = TERMINATED */
	int reapable;
};
int db_pod_rows(struct db *db, const int64_t *ids, int n, int dead_s, struct db_pod_row **out,
		int *nout);

/* Active kubernetes rows of replica, by id. age_ms: since started_at. */
struct db_pod_active {
	int64_t id;
	char name[64];          /* pod name, "" before the runner created it */
	char address[128];
	int64_t age_ms;
	int log_wanted;         /* an admin asked for its log within view_s */
};
int db_pod_active(struct db *db, const char *replica, int view_s, struct db_pod_active **out, int *n);

/* The watch saw a newer address than the row's (active rows only). */
int db_pod_set_address(struct db *db, int64_t id, const char *address);

/* End an active row: termination reason and detail (kept when already
 * set), plus a TERMINATED event by kubewatch. 1 ended, 0 already ended,
 * -1 error. */
int db_pod_end_lost(struct db *db, int64_t id, const char *why, const char *reason);

/* End the active kubernetes rows of other replicas that stopped beating
 * for dead_s (reason LOST), and this replica's rows IDLE longer than their
 * model's idle_seconds + grace_s (reason IDLE: the runner that would stop
 * them is gone). Each with a TERMINATED event; the ended ids into *ids
 * (malloc()ed, may be NULL with *n 0). */
int db_pod_end_dead_replicas(struct db *db, const char *replica, int dead_s, int64_t **ids,
			     int *n);
int db_pod_end_idle_orphans(struct db *db, const char *replica, int grace_s, int64_t **ids,
			    int *n);

/* Adopt the warm pods other replicas left (SQL_ADOPT in db_pod.c): rows
 * handed over at shutdown, and IDLE (or no longer leased BUSY) rows of
 * replicas that stopped beating for dead_s, among the instance ids whose
 * pods the caller sees ready. They become replica's, IDLE, with an ADOPTED
 * event. The adopted rows into *out (malloc()ed, may be NULL with *nout 0). */
struct db_pod_adopted {
	int64_t id;
	char name[64];          /* the pod */
	char from[128];         /* the replica that left it */
};
int db_pod_adopt(struct db *db, const char *replica, int dead_s, const int64_t *ready, int n,
		 struct db_pod_adopted **out, int *nout);
/* End replica's adopted rows with stop_requested that no request uses
 * (reason STOPPED): no runner owns them. Ids as db_pod_end_dead_replicas. */
int db_pod_end_adopted_stops(struct db *db, const char *replica, int64_t **ids, int *n);

/* At replica's shutdown: its adopted IDLE rows handed over in turn
 * (replica_id NULL, HANDED_OVER), as runners do with the instances they
 * own. Ids as db_pod_end_dead_replicas. */
int db_pod_hand_over_adopted(struct db *db, const char *replica, int64_t **ids, int *n);

/* A pod's log into instance_log. live: replace the stored copy while the
 * row is active (the admin view of a running pod); otherwise (the pod is
 * about to go) keep the longer of the stored copy and text. */
int db_pod_log_store(struct db *db, int64_t id, const char *text, int live);

#endif
