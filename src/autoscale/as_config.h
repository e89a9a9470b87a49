/*
 * as_config.h — the node groups of the autoscaler, read from the
 * configuration (keys autoscale.*, docs/kubernetes.md §6), and the shape of
 * a model's pod for the planner.
 *
 * Runs in: the autoscaler child, modelhub-fcgi workers (the model save
 * check), the runner (the provisioning deadline). Called by: autoscaler.c,
 * api_models.c. Owns: nothing beyond the struct the caller passes (whose
 * planner views point into its own string storage: do not copy a loaded
 * struct as_config; load it where it lives).
 */
#ifndef MH_AUTOSCALE_CONFIG_H
#define MH_AUTOSCALE_CONFIG_H

#include <stddef.h>

#include "autoscale/plan.h"

#define AS_MAX_GROUPS 16
#define AS_MAX_KV 8

enum as_mode { AS_MODE_CLUSTERAPI, AS_MODE_EXTERNAL };

struct as_group_cfg {
	char name[64];
	enum as_mode mode;
	char md_ns[64], md_name[128];      /* clusterapi: the MachineDeployment */
	char match_key[128], match_value[128]; /* node label that marks its nodes */
	char kv_store[2 * AS_MAX_KV][2][128];  /* labels then taints (key, value[:effect]) */
	char effect_store[AS_MAX_KV][32];
	struct as_kv labels[AS_MAX_KV];
	struct as_taint taints[AS_MAX_KV];
	struct as_group g;                 /* shape, min, max, idle; current/provisioning at run time */
	double cooldown_s;                 /* no scale-down this long after a scale-up */
};

struct as_config {
	int ngroups;
	struct as_group_cfg groups[AS_MAX_GROUPS];
	double period_s;                   /* autoscale.period_seconds */
	double almost_empty;               /* autoscale.almost_empty */
	double provision_timeout_s;        /* hub.provision_timeout: longest start deadline while provisioning */
	char sel_store[AS_MAX_KV][2][128];
	struct as_kv pod_selector[AS_MAX_KV]; /* kube.node_selector */
	int nselector;
	char tol_store[AS_MAX_KV][4][128];
	struct as_toleration pod_tol[AS_MAX_KV]; /* kube.tolerations */
	int ntol;
};

/* Load from lib/config. 0 (ngroups may be 0: autoscaling off), -1 with a
 * message in err. */
int as_config_load(struct as_config *c, char *err, size_t errlen);

/* The planner's view of a pod of a model with these requests. */
struct as_pod as_config_pod(const struct as_config *c, int cpu_m, int mem_mib);

/* Whether any mode is external (modelhub writes no node or machine). */
int as_config_has_mode(const struct as_config *c, enum as_mode m);

const char *as_mode_name(enum as_mode m);

struct rec_config;
struct rec_node;
/* The node caps of the recommendations (issue 16: never recommend more
 * than the largest node that can run the model can give). With
 * hub.backend=kubernetes: the largest shape among the configured node
 * groups that admit model pods (kube.node_selector, kube.tolerations),
 * else the largest nodes seen (seen[], e.g. the metrics segment's node
 * slots); local backend: seen[] (this machine's slot), else what
 * rec_config_read set (this machine). recommend.max_cpu_m /
 * recommend.max_mem_mib set in the configuration always win. Returns
 * "node_groups", "nodes" or "machine": where the caps came from. */
const char *as_config_rec_caps(struct rec_config *cfg, const struct rec_node *seen, int nseen);

#endif
