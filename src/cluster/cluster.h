/*
 * cluster.h — the backend interface for model instances (DESIGN.md §2).
 *
 * Runs in: modelhubd children (runners create/stop instances; monitor and
 * scraper read state, logs, events, nodes). Called by: runner.c, monitor.c,
 * scraper.c (src/hubd). Implementations: local.c (child processes on
 * loopback ports), kube*.c (pods through the Kubernetes API).
 *
 * Owns: one struct cluster per process, holding the backend's private state
 * (the local backend: the table of processes this process started; the
 * kubernetes backend: its curl handles and watch cache).
 *
 * The interface is backend-neutral: an instance is known by its name (the
 * pod name; for the local backend "mh-<instance id>"), has an address
 * host:port that speaks the ersilia-pack HTTP API, a state and, once it has
 * ended, a termination reason with exit information. BUSY/IDLE are hub
 * bookkeeping (model_instance.state) and never appear here.
 *
 * Errors: functions return 0 / -1 and log the cause; get() returns 1 when the
 * instance is unknown to the backend (deleted, or started by another process
 * of the local backend).
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
};

struct cluster_node {
	char name[64];
	int cpu_m;               /* allocatable millicores */
	int64_t memory_bytes;    /* allocatable memory */
	int ready;
	char group[64];          /* node group, empty when unmanaged */
};

struct cluster_node_metrics {
	char name[64];
	double cpu_seconds;      /* cumulative CPU time (counter) */
	int64_t memory_bytes;    /* working set */
	int64_t at_ms;
};

struct cluster_event {
	int64_t at_ms;
	char kind[48];           /* reason, e.g. Scheduled, Pulled, Killing */
	char message[256];
};

struct cluster;

struct cluster_ops {
	const char *name;
	int (*create)(struct cluster *c, const struct cluster_spec *spec, struct cluster_instance *out);
	int (*get)(struct cluster *c, const char *name, struct cluster_instance *out);
	int (*list)(struct cluster *c, struct cluster_instance **out, int *n);
	int (*remove)(struct cluster *c, const char *name, int grace_ms);
	int (*logs)(struct cluster *c, const char *name, struct buf *out, size_t max_bytes);
	int (*events)(struct cluster *c, const char *name, struct cluster_event **out, int *n);
	int (*nodes)(struct cluster *c, struct cluster_node **out, int *n);
	int (*node_metrics)(struct cluster *c, const char *node, struct cluster_node_metrics *out);
	int (*scale_group)(struct cluster *c, const char *group, int replicas);
	void (*free)(struct cluster *c);
};

struct cluster {
	const struct cluster_ops *ops;
	void *priv;
};

/* Backend by name ("local", "kubernetes"), configured from lib/config.
 * NULL (logged) when unknown or not built. Free with cluster_free(). */
struct cluster *cluster_new(const char *backend);
void cluster_free(struct cluster *c);

/* Start an instance; out is filled (state PENDING or STARTING). */
int cluster_create(struct cluster *c, const struct cluster_spec *spec, struct cluster_instance *out);
/* Current state; for a starting instance this probes readiness (GET /healthz). */
int cluster_get(struct cluster *c, const char *name, struct cluster_instance *out);
/* Instances this backend knows (local: started by this process); *out is
 * malloc()ed, caller frees. */
int cluster_list(struct cluster *c, struct cluster_instance **out, int *n);
/* Stop: SIGTERM / delete, then SIGKILL / force after grace_ms. */
int cluster_delete(struct cluster *c, const char *name, int grace_ms);
/* Up to max_bytes of the instance's log (the tail when longer), appended. */
int cluster_logs(struct cluster *c, const char *name, struct buf *out, size_t max_bytes);
/* Backend events of the instance; *out malloc()ed (may be NULL with n 0). */
int cluster_events(struct cluster *c, const char *name, struct cluster_event **out, int *n);
int cluster_nodes(struct cluster *c, struct cluster_node **out, int *n);
int cluster_node_metrics(struct cluster *c, const char *node, struct cluster_node_metrics *out);
/* -1 when the backend cannot scale (local). */
int cluster_scale_group(struct cluster *c, const char *group, int replicas);

const char *cluster_term_name(enum cluster_term t); /* model_instance.termination_reason */
const char *cluster_state_name(enum cluster_state s);

/* Implementations. */
struct cluster *cluster_local_new(void);
struct cluster *cluster_kube_new(void); /* kube.c */

#endif
