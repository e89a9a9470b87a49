/*
 * kube_autoscale.h — the kubernetes backend's calls for node autoscaling
 * (private to the backend; the autoscaler reaches them through cluster.h):
 * the node list with labels and taints, Cluster API MachineDeployment
 * sizes and a compare-and-set scale, cordon, the delete-machine mark, and
 * cluster-autoscaler's status ConfigMap.
 *
 * Runs in: the autoscaler child. Called by: kube.c (cluster_ops).
 * Owns: nothing; every call uses the caller's kube_http.
 *
 * Transient API errors (transport, 429, 5xx) are retried with back-off
 * (0.5, 1, 2 s) inside each call. The scale is a JSON patch with a "test" of
 * the size it was read at, so a retry after a lost answer, or a second
 * replica acting on the same reading, cannot add twice: it fails the test
 * instead (KUBE_AS_CONFLICT) and the caller reads the size again.
 */
#ifndef MH_KUBE_AUTOSCALE_H
#define MH_KUBE_AUTOSCALE_H

#include "cluster/cluster.h"
#include "cluster/kube/kube_http.h"

#define KUBE_AS_CONFLICT 1

int kube_as_nodes(struct kube_http *h, struct cluster_node_info **out, int *n);
int kube_as_group_size(struct kube_http *h, const char *ns, const char *name, struct cluster_group_size *out);
/* 0 scaled, KUBE_AS_CONFLICT the size was no longer from, -1 error. */
int kube_as_group_scale(struct kube_http *h, const char *ns, const char *name, int from, int to);
int kube_as_cordon(struct kube_http *h, const char *node, int on);
int kube_as_mark_machine(struct kube_http *h, const char *ns, const char *machine);
int kube_as_engine_status(struct kube_http *h, struct buf *out);
/* Model pod pod in namespace ns: no-evict annotations on (serving) or
 * lifted (cluster.h cluster_pod_no_evict). */
int kube_as_pod_no_evict(struct kube_http *h, const char *ns, const char *pod, int on);

#endif
