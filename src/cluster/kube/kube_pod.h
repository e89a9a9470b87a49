/*
 * kube_pod.h — pod manifests for model instances and the mapping of a pod
 * object to a backend instance state (DESIGN.md §2, UPSTREAM.md §7.1/7.8/7.9).
 *
 * Runs in: runners (kube.c builds manifests), the kubewatch child (maps
 * watched pods). Pure: no I/O; json-c objects in and out.
 * Called by: kube.c, kube_watch.c, t/070-kube-pod.c.
 *
 * Placement options come from the config (docs/internals.md):
 *   kube.node_selector      k=v,k2=v2
 *   kube.tolerations        JSON array of tolerations
 *   kube.affinity           JSON affinity object; a preferred pod affinity
 *                           packing model pods is always added
 *   kube.image_pull_policy  Always | IfNotPresent | Never (default: not set)
 *   kube.grace_seconds      terminationGracePeriodSeconds (default 10)
 *   kube.service_account    serviceAccountName of model pods (default: none)
 */
#ifndef MH_KUBE_POD_H
#define MH_KUBE_POD_H

#include <stdint.h>

#include "cluster/cluster.h"

struct json_object;

#define KUBE_LABEL_MANAGED "app.kubernetes.io/managed-by"
#define KUBE_LABEL_MODEL "modelhub/model"
#define KUBE_LABEL_INSTANCE "modelhub/instance"
#define KUBE_ANN_REQUEST "modelhub/request"
#define KUBE_ANN_SERVER "modelhub/server"
#define KUBE_SELECTOR "app.kubernetes.io%2Fmanaged-by%3Dmodelhub"

/* Placement and defaults of model pods (strings borrowed). */
struct kube_pod_opts {
	const char *ns;
	const char *node_selector;   /* "k=v,k2=v2" or NULL */
	const char *tolerations;     /* JSON array or NULL */
	const char *affinity;        /* JSON object or NULL */
	const char *pull_policy;     /* or NULL */
	const char *service_account; /* or NULL */
	int grace_seconds;           /* < 0: not set */
};

/* Options from lib/config (strings valid until the next cfg_load). */
void kube_pod_opts_from_config(struct kube_pod_opts *o, const char *ns);

/* The Pod manifest for spec. NULL (with *err set to a static message)
 * when the spec or an option is unusable. json_object_put the result. */
struct json_object *kube_pod_manifest(const struct cluster_spec *spec,
				      const struct kube_pod_opts *o, const char **err);

/* What a pod object (may hold nulls anywhere) says about the instance. port_offset is added to the
 * container port (simulator without root). 0, -1 when pod is not an object
 * with a name. */
int kube_pod_parse(struct json_object *pod, int port_offset, struct cluster_pod *out);

/* RFC 3339 time ("2026-11-24T18:00:00Z", fractions allowed) to wall ms;
 * 0 when absent or malformed. */
int64_t kube_time_ms(const char *s);

/* DNS-1123 label from any id (lower case, [a-z0-9-], trimmed), max n-1
 * chars, into out. */
void kube_dns_name(const char *id, char *out, size_t n);


#endif
