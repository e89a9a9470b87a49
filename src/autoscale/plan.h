/*
 * plan.h — the node autoscaler's placement planner: which node groups to
 * grow, by how many nodes, and which nodes to drain or remove (DESIGN.md §7).
 *
 * Runs in: modelhubd's autoscaler child (each pass), modelhub-fcgi workers
 * (does a model's request fit any node group, on save), bench/autoscale.
 * Called by: the autoscaler child with a snapshot of pending model pods,
 * nodes and node groups; api_models.c through as_fits_any().
 * Owns: nothing between calls; as_plan_compute() allocates scratch memory
 * and frees it before returning. Pure: no I/O, no clock, no globals; the
 * same input gives the same plan (t/080-autoscale-plan.c).
 *
 * DESIGN
 * Scale-up is the least-waste expansion of cluster-autoscaler, done on the
 * whole pending set at once:
 *   1. pending pods are taken largest first (first-fit decreasing on the
 *      larger of the cpu and memory fractions);
 *   2. each goes to the existing schedulable node (Ready or still
 *      registering, not cordoned) where it leaves the least room: the
 *      scheduler will place it, nothing to add;
 *   3. then onto the empty nodes a group is already provisioning (machines
 *      without a Ready node): counted so two passes never add twice;
 *   4. the rest is offered to each group with room under max: packing the
 *      pods that fit its shape (requests, node selector vs its labels,
 *      tolerations vs its taints) onto new nodes gives a node count and a
 *      waste (unrequested fraction of cpu and memory on those nodes); the
 *      group with the least waste wins (ties: more pods placed, then lower
 *      index), its nodes are committed, and the loop repeats for the pods
 *      still unplaced until no group can take any;
 *   5. a pod left over fits some group's shape only where the group is at
 *      max (AS_POD_AT_MAX) or fits no group at all (AS_POD_NO_GROUP: the
 *      NO_CAPACITY case).
 * Scale-down, per managed node (group >= 0), in this order of reasons:
 *   never a node that is not Ready, that pending pods are counted on (step 2),
 *   with a busy model pod (one serving a request), or with pods that are not
 *   modelhub's (other_pods: not ours to evict); an empty node (no model pod)
 *   idle for the group's scale_down_idle, outside the group's cool-down after
 *   a scale-up, in a group not growing in this pass, is removed (longest idle
 *   first), never taking the group below min. A node already draining
 *   (cordoned by us) is removed as soon as it is empty.
 *   "Almost empty" rule: a node whose model pods are all idle instances (none
 *   busy), whose requests are below set->almost_empty of its allocatable (cpu
 *   and memory), idle for scale_down_idle, and whose pods would fit on the
 *   other schedulable nodes, is drained: cordoned so no new pod lands on it.
 *   Nothing is evicted; its idle instances end by their model's idle_seconds
 *   and new work starts elsewhere; once empty the node is removed.
 */
#ifndef MH_AUTOSCALE_PLAN_H
#define MH_AUTOSCALE_PLAN_H

#include <stdint.h>

struct as_kv {
	const char *key, *value;
};

/* A node taint; effect "NoSchedule", "NoExecute" or "PreferNoSchedule" (ignored). */
struct as_taint {
	const char *key, *value, *effect;
};

/* A toleration; op "Exists" or "Equal" (NULL = Equal); NULL key with Exists
 * tolerates everything; NULL effect matches every effect. */
struct as_toleration {
	const char *key, *op, *value, *effect;
};

struct as_pod {
	int64_t cpu_m, mem_mib;               /* requests */
	const struct as_kv *selector;          /* nodeSelector */
	int nselector;
	const struct as_toleration *tol;
	int ntol;
};

struct as_node {
	int group;                             /* index in groups, -1 = not managed by us */
	int64_t alloc_cpu_m, alloc_mem_mib;    /* allocatable */
	int alloc_pods;
	int64_t used_cpu_m, used_mem_mib;      /* requests of the pods bound to it */
	int used_pods;
	const struct as_kv *labels;
	int nlabels;
	const struct as_taint *taints;         /* without the cordon taint */
	int ntaints;
	int ready;                             /* 0 = registering (counted as coming capacity) */
	int cordoned;                          /* spec.unschedulable */
	int draining;                          /* cordoned by the autoscaler (almost-empty drain or removal) */
	int model_pods, busy_pods, other_pods; /* model pods on it, of which serving; pods not ours */
	double idle_s;                         /* seconds without a busy model pod (empty: without any) */
};

struct as_group {
	int64_t cpu_m, mem_mib;                /* allocatable of one new node */
	int pods;                              /* pod capacity of one node (<= 0: 110) */
	const struct as_kv *labels;
	int nlabels;
	const struct as_taint *taints;
	int ntaints;
	int min, max;
	int current;                           /* desired size now (MachineDeployment spec.replicas) */
	int provisioning;                      /* of those, machines without a Node yet */
	double scale_down_idle_s;
	double cooldown_left_s;                /* > 0: recently scaled up, no scale-down */
};

struct as_settings {
	double almost_empty;                   /* 0 disables draining; e.g. 0.25 */
};

enum as_pod_fate {
	AS_POD_FITS_NODE,         /* room on an existing schedulable node */
	AS_POD_FITS_PROVISIONING, /* room on a node being provisioned or registering */
	AS_POD_SCALE_UP,          /* on a node this plan adds to .group */
	AS_POD_AT_MAX,            /* fits .group's shape, but every such group is at max */
	AS_POD_NO_GROUP,          /* fits no group's shape */
};

enum as_node_action {
	AS_NODE_KEEP,
	AS_NODE_DRAIN,            /* cordon, evict nothing (almost empty) */
	AS_NODE_REMOVE,           /* cordon, check again, delete-machine, scale down */
};

enum as_keep_why {
	AS_KEEP_NONE,             /* (action is not KEEP) */
	AS_KEEP_UNMANAGED,
	AS_KEEP_NOT_READY,
	AS_KEEP_NEEDED,           /* pending pods are counted on it, or its group grows */
	AS_KEEP_BUSY,             /* a model pod serves a request */
	AS_KEEP_MODEL_POD,        /* idle model pods, not almost empty */
	AS_KEEP_OTHER_PODS,
	AS_KEEP_IDLE_SHORT,
	AS_KEEP_COOLDOWN,
	AS_KEEP_AT_MIN,
};

struct as_pod_result {
	enum as_pod_fate fate;
	int group;                /* group of the new/provisioning node, or the group at max; -1 */
	int node;                 /* existing node index for FITS_NODE/FITS_PROVISIONING, else -1 */
};

struct as_node_result {
	enum as_node_action action;
	enum as_keep_why why;
};

/* Caller-owned outputs: add[ngroups], pods[npods], nodes[nnodes]. */
struct as_plan {
	int *add;
	struct as_pod_result *pods;
	struct as_node_result *nodes;
};

/* Compute the plan. Returns 0, or -1 when scratch memory cannot be had
 * (outputs then undefined). */
int as_plan_compute(const struct as_pod *pods, int npods, const struct as_node *nodes, int nnodes,
		    const struct as_group *groups, int ngroups, const struct as_settings *set,
		    struct as_plan *out);

/* Whether a new node of group g could ever hold pod p (shape, labels, taints). */
int as_group_fits(const struct as_group *g, const struct as_pod *p);

/* Index of the first group that could hold p, or -1 (the model save check). */
int as_fits_any(const struct as_group *groups, int ngroups, const struct as_pod *p);

/* Stable names for logs, decisions and the API. */
const char *as_pod_fate_name(enum as_pod_fate f);
const char *as_node_action_name(enum as_node_action a);
const char *as_keep_why_name(enum as_keep_why w);

#endif
