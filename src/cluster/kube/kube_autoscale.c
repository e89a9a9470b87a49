/*
 * kube_autoscale.c — implementation of kube_autoscale.h.
 *
 * Runs in: the autoscaler child. Called by: kube.c.
 * Owns: nothing beyond each call's JSON documents.
 */
#include "cluster/kube/kube_autoscale.h"
#include "cluster/kube/kube_nodes.h"
#include "lib/json.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KAS_CALL_MS 15000
#define KAS_TRIES 4          /* first call + 3 retries: 0.5, 1, 2 s */
#define KAS_FIRST_BACKOFF_MS 500
#define CAPI "/apis/cluster.x-k8s.io/v1beta1/namespaces/"

static int transient(long st)
{
	return st < 0 || st == 429 || st >= 500;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* One call, retried while the answer is transient. Returns the last status. */
static long call(struct kube_http *h, const char *method, const char *path, const char *ctype,
		 const char *body, struct buf *out)
{
	long st = -1;
	int wait = KAS_FIRST_BACKOFF_MS;

	for (int t = 0; t < KAS_TRIES; t++) {
		if (out)
			buf_reset(out);
		st = kube_http_call(h, method, path, ctype, body, out, KAS_CALL_MS);
		if (!transient(st))
			return st;
		log_warn_x("kube %s %s status=%ld try=%d msg=\"transient API error, retrying\"", method, path, st,
			   t + 1);
		if (t + 1 < KAS_TRIES)
			sleep_ms(wait);
		wait *= 2;
	}
	return st;
}

static struct json_object *get_json(struct kube_http *h, const char *path)
{
	struct buf b = {0};
	struct json_object *o = NULL;
	long st = call(h, "GET", path, NULL, NULL, &b);

	if (st == 200 && b.data)
		o = json_tokener_parse(b.data);
	else
		log_error_x("kube GET %s status=%ld msg=\"autoscaler read failed\"", path, st);
	buf_free(&b);
	return o;
}

static void copy_kv(struct json_object *obj, char (*kv)[2][128], int *n)
{
	*n = 0;
	if (!obj || !json_object_is_type(obj, json_type_object))
		return;
	json_object_object_foreach(obj, key, val) {
		if (*n == CLUSTER_NODE_MAX_KV)
			break;
		snprintf(kv[*n][0], 128, "%s", key);
		snprintf(kv[*n][1], 128, "%s", json_object_get_string(val));
		(*n)++;
	}
}

static void copy_taints(struct json_object *arr, struct cluster_node_info *ni)
{
	ni->ntaints = 0;
	for (size_t i = 0; arr && i < json_object_array_length(arr) && ni->ntaints < CLUSTER_NODE_MAX_KV; i++) {
		struct json_object *t = json_object_array_get_idx(arr, i);
		const char *k = jx_get_str(t, "key", NULL), *v = jx_get_str(t, "value", NULL);
		const char *e = jx_get_str(t, "effect", NULL);

		/* the cordon is reported as cordoned; not-ready/unreachable are the
		 * node's condition (a registering node loses them once Ready), not
		 * its shape: a registering node is capacity on its way */
		if (!k || strcmp(k, "node.kubernetes.io/unschedulable") == 0 ||
		    strcmp(k, "node.kubernetes.io/not-ready") == 0 || strcmp(k, "node.kubernetes.io/unreachable") == 0)
			continue;
		snprintf(ni->taints[ni->ntaints][0], 128, "%s", k);
		snprintf(ni->taints[ni->ntaints][1], 128, "%s", v ? v : "");
		snprintf(ni->taints[ni->ntaints][2], 128, "%s", e ? e : "");
		ni->ntaints++;
	}
}

static void node_from_json(struct json_object *nd, struct cluster_node_info *ni)
{
	const char *s;
	int64_t v;

	memset(ni, 0, sizeof *ni);
	snprintf(ni->name, sizeof ni->name, "%s", (s = jx_get_str(nd, "metadata", "name", NULL)) ? s : "");
	if (kube_qty_milli(jx_get_str(nd, "status", "allocatable", "cpu", NULL), &v) == 0)
		ni->cpu_m = (int)v;
	if (kube_qty_bytes(jx_get_str(nd, "status", "allocatable", "memory", NULL), &v) == 0)
		ni->memory_bytes = v;
	ni->pods = (s = jx_get_str(nd, "status", "allocatable", "pods", NULL)) ? atoi(s) : 110;
	ni->cordoned = json_object_get_boolean(jx_get(nd, "spec", "unschedulable", NULL));
	s = jx_get_str(nd, "metadata", "annotations", "cluster.x-k8s.io/machine", NULL);
	snprintf(ni->machine, sizeof ni->machine, "%s", s ? s : "");
	s = jx_get_str(nd, "metadata", "annotations", "cluster.x-k8s.io/cluster-namespace", NULL);
	snprintf(ni->machine_ns, sizeof ni->machine_ns, "%s", s ? s : "default");
	copy_kv(jx_get(nd, "metadata", "labels", NULL), ni->labels, &ni->nlabels);
	copy_taints(jx_get(nd, "spec", "taints", NULL), ni);
	for (size_t i = 0; i < json_object_array_length(jx_get(nd, "status", "conditions", NULL)); i++) {
		struct json_object *c = json_object_array_get_idx(jx_get(nd, "status", "conditions", NULL), i);

		if ((s = jx_get_str(c, "type", NULL)) && strcmp(s, "Ready") == 0)
			ni->ready = (s = jx_get_str(c, "status", NULL)) && strcmp(s, "True") == 0;
	}
}

/* One page of the node list appended to *out (grown as needed); the
 * continue token into cont ("" after the last page). 0, -1. */
static int nodes_page(struct kube_http *h, char *cont, size_t clen, struct cluster_node_info **out, int *n)
{
	char path[1024];
	struct json_object *o, *items;
	struct cluster_node_info *grown;
	const char *next;
	size_t len;

	snprintf(path, sizeof path, "/api/v1/nodes?limit=%d%s%s", kube_list_page(), cont[0] ? "&continue=" : "",
		 cont);
	cont[0] = '\0';
	if (!(o = get_json(h, path)))
		return -1;
	items = jx_get(o, "items", NULL);
	len = items ? json_object_array_length(items) : 0;
	grown = realloc(*out, ((size_t)*n + len + 1) * sizeof **out);
	if (!grown) {
		json_object_put(o);
		return -1;
	}
	*out = grown;
	for (size_t i = 0; i < len; i++)
		node_from_json(json_object_array_get_idx(items, i), &(*out)[(*n)++]);
	next = jx_get_str(o, "metadata", "continue", NULL);
	if (next && next[0] && strlen(next) < clen / 3)
		kube_http_escape(next, cont, clen);
	json_object_put(o);
	return 0;
}

/* Every node, paged (limit/continue) like the scraper's node list. */
int kube_as_nodes(struct kube_http *h, struct cluster_node_info **out, int *n)
{
	char cont[768] = "";

	*out = NULL;
	*n = 0;
	do {
		if (nodes_page(h, cont, sizeof cont, out, n) < 0) {
			free(*out);
			*out = NULL;
			*n = 0;
			return -1;
		}
	} while (cont[0]);
	return 0;
}

int kube_as_group_size(struct kube_http *h, const char *ns, const char *name, struct cluster_group_size *out)
{
	char path[512];
	struct json_object *o;

	snprintf(path, sizeof path, CAPI "%s/machinedeployments/%s", ns, name);
	if (!(o = get_json(h, path)))
		return -1;
	memset(out, 0, sizeof *out);
	out->replicas = json_object_get_int(jx_get(o, "spec", "replicas", NULL));
	out->machines = json_object_get_int(jx_get(o, "status", "replicas", NULL));
	out->ready = json_object_get_int(jx_get(o, "status", "readyReplicas", NULL));
	json_object_put(o);
	return 0;
}

int kube_as_group_scale(struct kube_http *h, const char *ns, const char *name, int from, int to)
{
	char path[512], body[256];
	long st;

	snprintf(path, sizeof path, CAPI "%s/machinedeployments/%s/scale", ns, name);
	snprintf(body, sizeof body,
		 "[{\"op\":\"test\",\"path\":\"/spec/replicas\",\"value\":%d},"
		 "{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":%d}]", from, to);
	st = call(h, "PATCH", path, "application/json-patch+json", body, NULL);
	if (st == 200) {
		log_info("kube group=%s/%s from=%d to=%d msg=\"node group scaled\"", ns, name, from, to);
		return 0;
	}
	if (st == 409 || st == 422) {
		log_warn_x("kube group=%s/%s from=%d to=%d status=%ld msg=\"size changed since read, not scaled\"", ns,
			   name, from, to, st);
		return KUBE_AS_CONFLICT;
	}
	log_error_x("kube group=%s/%s to=%d status=%ld msg=\"scale failed\"", ns, name, to, st);
	return -1;
}

static int patch(struct kube_http *h, const char *path, const char *body, const char *what)
{
	long st = call(h, "PATCH", path, "application/merge-patch+json", body, NULL);

	if (st != 200) {
		log_error_x("kube PATCH %s status=%ld msg=\"%s failed\"", path, st, what);
		return -1;
	}
	return 0;
}

int kube_as_cordon(struct kube_http *h, const char *node, int on)
{
	char path[256];

	snprintf(path, sizeof path, "/api/v1/nodes/%s", node);
	return patch(h, path, on ? "{\"spec\":{\"unschedulable\":true}}" : "{\"spec\":{\"unschedulable\":null}}",
		     on ? "cordon" : "uncordon");
}

int kube_as_mark_machine(struct kube_http *h, const char *ns, const char *machine)
{
	char path[512];

	snprintf(path, sizeof path, CAPI "%s/machines/%s", ns, machine);
	return patch(h, path, "{\"metadata\":{\"annotations\":{\"cluster.x-k8s.io/delete-machine\":\"modelhub\"}}}",
		     "delete-machine mark");
}

int kube_as_pod_no_evict(struct kube_http *h, const char *ns, const char *pod, int on)
{
	char path[320];

	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", ns, pod);
	return patch(h, path, on ? "{\"metadata\":{\"annotations\":{\"cluster-autoscaler.kubernetes.io/safe-to-evict\":"
				   "\"false\",\"karpenter.sh/do-not-disrupt\":\"true\"}}}"
				 : "{\"metadata\":{\"annotations\":{\"cluster-autoscaler.kubernetes.io/safe-to-evict\":"
				   "\"true\",\"karpenter.sh/do-not-disrupt\":null}}}",
		     on ? "no-evict on" : "no-evict off");
}

int kube_as_engine_status(struct kube_http *h, struct buf *out)
{
	struct json_object *o = get_json(h, "/api/v1/namespaces/kube-system/configmaps/cluster-autoscaler-status");
	const char *s;

	if (!o)
		return -1;
	s = jx_get_str(o, "data", "status", NULL);
	buf_adds(out, s ? s : "");
	json_object_put(o);
	return 0;
}
