/*
 * cluster.h — the backend interface for model instances (DESIGN.md §2).
 *
 * Runs in: modelhubd children (runners create/stop instances; the monitor
 * reads events; on the kubernetes backend the kubewatch child runs the pod
 * watch and the scraper the node metrics cycle; the autoscaler child
 * scales node groups). Called by: runner.c, monitor.c, kubewatch.c,
 * kubescrape.c, autoscaler.c. Implementations: local.c (child
 * processes on loopback ports), kube/ (pods through the Kubernetes API;
 * its kube_*.h headers are that backend's private parts: nothing outside
 * src/cluster/kube includes them, except its unit tests t/070 and t/071).
 *
 * Owns: one struct cluster per process, holding the backend's private state
 * (the local backend: the table of processes this process started; the
 * kubernetes backend: its curl handles, the pod table mapping and, in the
 * processes that use them, the watch and scrape state).
 *
 * The interface is backend-neutral: an instance is known by its name (the
 * pod name; for the local backend "mh-<instance id>"), has an address
 * host:port that speaks the ersilia-pack HTTP API, a state and, once it has
 * ended, a termination reason with exit information. BUSY/IDLE are hub
 * bookkeeping (model_instance.state) and never appear here.
 *
 * Optional operations (events, watch, pods, reap, scrape) are NULL for a
 * backend that has no such thing; their wrappers then answer "nothing"
 * (events) or -1 with a log line.
 *
 * Callbacks (watch, scrape) keep protocol work in the backend and
 * persistence in the caller: the backend fetches, parses and publishes its
 * own state; the caller stores what it is handed (Postgres, the metrics
 * segment). Everything handed to a callback is borrowed for the call.
 *
 * Errors: functions return 0 / -1 and log the cause; get() returns 1 when the
 * instance is unknown to the backend (deleted, or started by another process
 * of the local backend). create() tells a refusal that may go away from a
 * final one: CLUSTER_ERR_RETRY (the API server was unreachable, slow,
 * overloaded or failing: 429, 5xx, timeout, reset) and CLUSTER_ERR_QUOTA (a
 * resource quota refused the pod) are worth retrying with back-off — the
 * caller does, up to its start deadline, with out->retry_after_ms as the
 * server's hint; -1 is final (a bad manifest, no permission).
 */
#ifndef MH_CLUSTER_H
#define MH_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

enum cluster_state {
	CLUSTER_PENDING = 0, /* created, not running yet (pod Pending) */
	CLUSTER_STARTING,    /* process/container running, not ready */
	CLUSTER_READY,       /* GET /healthz answered 200 */
	CLUSTER_EXITED,      /* ended; see term */
};

enum cluster_term {
	CLUSTER_TERM_NONE = 0,
	CLUSTER_TERM_COMPLETED, /* exited 0 on its own */
	CLUSTER_TERM_FAILED,    /* exited non-zero or by a signal we did not send */
	CLUSTER_TERM_OOMKILLED, /* killed at its memory limit */
	CLUSTER_TERM_STOPPED,   /* stopped by cluster_delete() */
};

#define CLUSTER_MAX_LABELS 8

/* What to run. Strings are borrowed for the duration of cluster_create(). */
struct cluster_spec {
	int64_t instance_id;     /* model_instance.id, names the instance */
	const char *model_id;
	const char *image;       /* kubernetes: image (may be NULL locally) */
	const char *image_tag;
	const char *const *local_command; /* argv template: {host} {port} {models_dir} {model} */
	int ncommand;
	int port;                /* container port (kubernetes); local picks a free one */
	int cpu_request_m, cpu_limit_m;
	int memory_request_mib, memory_limit_mib; /* limit 0 = no limit */
	const char *labels[CLUSTER_MAX_LABELS][2];  /* extra key/value labels */
	int nlabels;
	const char *request_id;  /* annotation: first request served (may be NULL) */
	const char *replica_id;  /* annotation: owning hub replica */
};

struct cluster_instance {
	char name[64];           /* pod / instance name */
	char address[128];       /* host:port, empty until known */
	char node[64];
	int64_t instance_id;
	enum cluster_state state;
	enum cluster_term term;
	int pid;                 /* local: process group leader; kube: 0 */
	int exit_code;           /* -1 unless exited normally */
	int exit_signal;         /* 0 unless killed by a signal */
	int64_t started_ms;      /* wall clock */
	int64_t ready_ms;        /* wall clock, 0 until ready */
	int64_t mem_bytes;       /* last known usage, 0 if unknown */
	char detail[256];        /* human-readable cause of the last change */
	int no_capacity;         /* kube: Unschedulable (no node can take it now) */
	int api_error;           /* kube: the API server could not answer; state is a guess */
	int64_t retry_after_ms;  /* create failed: the server's Retry-After, 0 if none */
};

#define CLUSTER_ERR_RETRY (-2) /* create: transient API error, try again */
#define CLUSTER_ERR_QUOTA (-3) /* create: refused by a resource quota, try again */

struct cluster_node {
	char name[64];
	int cpu_m;               /* allocatable millicores */
	int64_t memory_bytes;    /* allocatable memory */
	int ready;               /* condition Ready=True */
	int schedulable;         /* not cordoned */
	char group[64];          /* node group, empty when unmanaged */
};

struct cluster_event {
	int64_t at_ms;           /* last seen; 0 when the backend gave no time */
	char kind[48];           /* reason, e.g. Scheduled, Pulled, Killing */
	char message[1024];
	char uid[48];            /* the backend's id of the event ("" if none) */
	int count;               /* times seen (uid + count: one occurrence) */
	char type[16];           /* Normal, Warning */
	char component[64];      /* who reported it (scheduler, kubelet) */
};

/* ---- the pod watch (kubernetes) ---- */

/* An instance's pod as the watch last saw it. */
struct cluster_pod {
	char name[64];
	char uid[48];
	char ns[64];
	char rv[32];
	char server[128];           /* owning hub replica (annotation modelhub/server) */
	char request[32];           /* annotation modelhub/request */
	int64_t instance_id;        /* label modelhub/instance, 0 if none */
	char model[72];
	char pod_ip[64];
	char address[128];          /* podIP:port, "" until the pod has an IP */
	char node[64];
	char phase[16];
	char reason[48];            /* short cause: Unschedulable, ImagePullBackOff, OOMKilled ... */
	char detail[256];
	enum cluster_state state;
	enum cluster_term term;
	int exit_code;              /* -1 unless terminated with a code */
	int restarts;
	int ready;
	int deleting;               /* being deleted */
	int unschedulable;
	int image_error;
	int no_evict;               /* annotated safe-to-evict "false" */
	int64_t created_ms, started_ms, ready_ms;
};

/* One entry of the published pod table. */
struct cluster_pod_row {
	struct cluster_pod pod;
	int gone;               /* deleted, or absent from the last list */
	int64_t updated_ms;     /* wall ms of the last change */
	int64_t gone_ms;
};

enum cluster_pod_ev {
	CLUSTER_POD_LISTED, CLUSTER_POD_ADDED, CLUSTER_POD_MODIFIED, CLUSTER_POD_DELETED
};

struct json_object;

/* The caller's side of a watch; the counters are the backend's, kept
 * across rounds for logs. */
struct cluster_watch {
	/* Each pod listed or changed, after the pod table has it. raw is the
	 * backend's object (the Pod as JSON). */
	void (*on_pod)(enum cluster_pod_ev ev, const struct cluster_pod *p, struct json_object *raw,
		       void *arg);
	/* About once a second; non-zero ends the round (cluster_watch returns 1). */
	int (*on_tick)(void *arg);
	void *arg;
	int backoff_ms;         /* after a -1: wait this long before the next round */
	uint64_t relists, reconnects, events;
};

/* The caller's side of the events watch: the Kubernetes events of pods in
 * the models namespace, one stream per replica (the kubeevents child). */
struct cluster_events_watch {
	/* Each event listed or changed; pod: its involvedObject.name. */
	void (*on_event)(const struct cluster_event *ev, const char *pod, void *arg);
	/* About once a second; non-zero ends the round (returns 1). */
	int (*on_tick)(void *arg);
	void *arg;
	char rv[64];            /* the backend's resume point, "" = list first */
	int backoff_ms;         /* after a -1: wait this long before the next round */
	uint64_t relists, reconnects, events;
};

/* ---- node metrics (kubernetes) ---- */

/* The caller's side of one scrape cycle. */
struct cluster_scrape {
	int timeout_ms;          /* the whole cycle */
	/* A node's own report on it and its instances (kubernetes: the
	 * kubelet's /metrics/resource, Prometheus text, len bytes, not
	 * NUL-terminated). */
	int (*on_report)(const struct cluster_node *nd, const char *text, size_t len, void *arg);
	/* When reports cannot be had: usage rates from the cluster's metrics
	 * API (kubernetes: metrics.k8s.io), per node (-1: not reported), then
	 * per instance by name (the sum of its containers). */
	int (*on_node_usage)(const struct cluster_node *nd, double cpu_m, int64_t mem_bytes,
			     void *arg);
	int (*on_instance_usage)(const char *name, double cpu_m, int64_t mem_bytes, void *arg);
	void *arg;               /* a callback's non-zero ends the cycle with -1 */
	/* filled by the backend, this cycle */
	int nodes;               /* nodes scraped (they run model pods) */
	int nodes_skipped;       /* nodes without model pods, not scraped */
	int nodes_ok;            /* answered */
	int fallback;            /* the metrics API was used */
	int64_t bytes;           /* report bytes handed to on_report */
};

/* ---- node autoscaling (kubernetes) ---- */

#define CLUSTER_NODE_MAX_KV 16

/* A node as the autoscaler needs it. */
struct cluster_node_info {
	char name[64];
	int cpu_m;                  /* allocatable */
	int64_t memory_bytes;
	int pods;
	int ready;
	int cordoned;               /* spec.unschedulable */
	char machine[128];          /* Cluster API Machine (annotation), "" if none */
	char machine_ns[64];
	int nlabels, ntaints;
	char labels[CLUSTER_NODE_MAX_KV][2][128];
	char taints[CLUSTER_NODE_MAX_KV][3][128]; /* key, value, effect; the cordon taint left out */
};

/* A Cluster API MachineDeployment's size. */
struct cluster_group_size {
	int replicas;               /* spec.replicas (wanted) */
	int machines;               /* status.replicas (Machines existing) */
	int ready;                  /* status.readyReplicas */
};

#define CLUSTER_SCALE_CONFLICT 1 /* cluster_group_scale: the size was no longer `from` */

struct cluster;

struct cluster_ops {
	const char *name;
	int (*create)(struct cluster *c, const struct cluster_spec *spec, struct cluster_instance *out);
	int (*get)(struct cluster *c, const char *name, struct cluster_instance *out);
	int (*remove)(struct cluster *c, const char *name, int grace_ms);
	int (*logs)(struct cluster *c, const char *name, struct buf *out, size_t max_bytes,
		    int tail_lines);
	int (*events)(struct cluster *c, const char *name, struct cluster_event **out, int *n);
	int (*watch)(struct cluster *c, struct cluster_watch *w);
	int (*events_watch)(struct cluster *c, struct cluster_events_watch *w);
	int (*pods)(struct cluster *c, struct cluster_pod_row **out, int *n, int64_t *synced_ms);
	int (*reap)(struct cluster *c, const char *name, int grace_ms);
	int (*scrape)(struct cluster *c, struct cluster_scrape *s);
	int (*node_list)(struct cluster *c, struct cluster_node_info **out, int *n);
	int (*group_size)(struct cluster *c, const char *ns, const char *name, struct cluster_group_size *out);
	int (*group_scale)(struct cluster *c, const char *ns, const char *name, int from, int to);
	int (*node_cordon)(struct cluster *c, const char *node, int on);
	int (*machine_mark)(struct cluster *c, const char *ns, const char *machine);
	int (*pod_no_evict)(struct cluster *c, const char *pod, int on);
	int (*pod_owner)(struct cluster *c, const char *pod, const char *replica);
	int (*engine_status)(struct cluster *c, struct buf *out);
	void (*free)(struct cluster *c);
};

/* A readiness probe (GET /healthz of address within timeout_ms): 1 ready. */
typedef int (*cluster_probe_fn)(void *ctx, const char *address, int timeout_ms);

/* The caller's event loop, for backends that wait (cluster_set_io):
 * perform runs a configured libcurl easy handle to its end and returns its
 * CURLcode (the handle stays the backend's: it cleans it up); sleep waits
 * ms. Either may let other work of the caller run meanwhile, so a backend
 * that uses them re-reads any state it shares after the call. */
struct cluster_io {
	int (*perform)(void *ctx, void *easy);
	void (*sleep)(void *ctx, int ms);
	void *ctx;
};

struct cluster {
	const struct cluster_ops *ops;
	void *priv;
	cluster_probe_fn probe; /* cluster_set_probe; NULL: the backend's own */
	void *probe_ctx;
	struct cluster_io io;   /* cluster_set_io; NULL members: block */
};

/* Backend by name ("local", "kubernetes"), configured from lib/config.
 * NULL (logged) when unknown or not built. Free with cluster_free(). */
struct cluster *cluster_new(const char *backend);
void cluster_free(struct cluster *c);

/* Start an instance; out is filled (state PENDING or STARTING). */
int cluster_create(struct cluster *c, const struct cluster_spec *spec, struct cluster_instance *out);
/* Current state; for a starting instance this probes readiness (GET /healthz). */
int cluster_get(struct cluster *c, const char *name, struct cluster_instance *out);
/* Backends that probe readiness themselves (local) call fn instead of their
 * own blocking HTTP client: the runner's probe runs on its event loop
 * (hubd/runner_loop.c), so a slow instance does not stall other requests. */
void cluster_set_probe(struct cluster *c, cluster_probe_fn fn, void *ctx);
/* Waits of the backend go through io (copied) instead of blocking the
 * process: the runner's event loop (hubd/runner_loop.c) runs the
 * kubernetes backend's pod API calls on its curl multi handle and the
 * back-off and stop waits of both backends as timers, so a slow API server
 * or an instance slow to stop holds up only the task that asked. */
void cluster_set_io(struct cluster *c, const struct cluster_io *io);
/* For backends: wait ms through the caller's io.sleep, else nanosleep. */
void cluster_sleep(struct cluster *c, int ms);
/* Stop: SIGTERM / delete, then SIGKILL / force after grace_ms. */
int cluster_delete(struct cluster *c, const char *name, int grace_ms);
/* Up to max_bytes of the instance's log (the tail when longer), appended.
 * cluster_logs_tail: only the last tail_lines lines (0: all). */
int cluster_logs(struct cluster *c, const char *name, struct buf *out, size_t max_bytes);
int cluster_logs_tail(struct cluster *c, const char *name, struct buf *out, size_t max_bytes,
		      int tail_lines);
/* Backend events of the instance; *out malloc()ed (may be NULL with n 0). */
int cluster_events(struct cluster *c, const char *name, struct cluster_event **out, int *n);

/* One round of the pod watch, run by one process per replica (the
 * kubewatch child): list when needed, then follow changes, publishing
 * every pod into the pod table that cluster_get() of other processes reads
 * (this process becomes the table's writer; cluster_free() retires it).
 * 0: the round ended normally (call again), -1: an error (wait
 * w->backoff_ms), 1: on_tick asked to stop. */
int cluster_watch(struct cluster *c, struct cluster_watch *w);
/* One round of the events watch (list the namespace's Pod events when
 * needed, paged, then follow them); same returns as cluster_watch. Replaces
 * a list of events per pod change: the watch path does no per-pod work. */
int cluster_events_watch(struct cluster *c, struct cluster_events_watch *w);
/* The published pod table: every pod, gone ones included for a while;
 * *out malloc()ed (may be NULL with n 0). *synced_ms: wall ms of the
 * watch's last complete list, 0 if none yet. */
int cluster_pods(struct cluster *c, struct cluster_pod_row **out, int *n, int64_t *synced_ms);
/* Delete an instance whatever replica owns it, without keeping its log or
 * waiting for it to go: the watch's cleanup of instances whose row ended.
 * 0 deleted (or already gone), -1. */
int cluster_reap(struct cluster *c, const char *name, int grace_ms);
/* One node metrics cycle: every node's report (or the fallback usage
 * rates) handed to s's callbacks; the backend keeps its node list and
 * connections across cycles. 0, -1 when nothing could be fetched. */
int cluster_scrape(struct cluster *c, struct cluster_scrape *s);

/* Node autoscaling (DESIGN.md §7; the kubernetes backend only, NULL ops
 * elsewhere: -1 with a log line). Transient API errors are retried with
 * back-off inside each call. */
/* Every node with labels and taints; *out malloc()ed. */
int cluster_node_list(struct cluster *c, struct cluster_node_info **out, int *n);
/* A Cluster API MachineDeployment's size. */
int cluster_group_size(struct cluster *c, const char *ns, const char *name, struct cluster_group_size *out);
/* Set its size to `to` only if it is still `from` (compare-and-set, so a
 * retry or a second replica never scales twice): 0, CLUSTER_SCALE_CONFLICT, -1. */
int cluster_group_scale(struct cluster *c, const char *ns, const char *name, int from, int to);
/* Cordon (on) or uncordon a node. */
int cluster_node_cordon(struct cluster *c, const char *node, int on);
/* Mark a Machine cluster.x-k8s.io/delete-machine (removed first on scale-down). */
int cluster_machine_mark(struct cluster *c, const char *ns, const char *machine);
/* Set (on: the pod serves a request) or lift the annotations that keep
 * cluster-autoscaler and Karpenter from evicting a model pod
 * (safe-to-evict "false" / do-not-disrupt "true"; lifted: safe-to-evict
 * "true", as a bare pod is otherwise never evicted by cluster-autoscaler,
 * and do-not-disrupt removed). 0 / -1. */
int cluster_pod_no_evict(struct cluster *c, const char *pod, int on);
/* Annotate the pod modelhub/server=<replica>: its instance was adopted by
 * that replica (kubewatch). 0 / -1. */
int cluster_pod_owner(struct cluster *c, const char *pod, const char *replica);
/* cluster-autoscaler's status text (ConfigMap kube-system/cluster-autoscaler-status). */
int cluster_engine_status(struct cluster *c, struct buf *out);

const char *cluster_term_name(enum cluster_term t); /* model_instance.termination_reason */
const char *cluster_state_name(enum cluster_state s);

/* Implementations. */
struct cluster *cluster_local_new(void);
struct cluster *cluster_kube_new(void); /* kube/kube.c */

#endif
