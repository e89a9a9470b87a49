/*
 * kube_scrape.c — the kubernetes backend's node metrics cycle
 * (cluster_scrape): every node's kubelet resource metrics through the API
 * server, or the metrics API when that is forbidden (DESIGN.md §2, §6).
 *
 * Runs in: the scraper child (hub.backend = kubernetes, the replica that
 * scrapes the kubelets); bench/kube-scrape. Called by: kube.c.
 * Owns: the node list (refreshed every KS_NODES_EVERY_MS), one kube_fetch
 * per node (paths and answer buffers, reused across cycles), a
 * kube_fetcher (one curl multi handle). Writes nothing shared: answers go
 * to the caller's callbacks (hubd/kubescrape.c ingests them into the
 * metrics segment).
 *
 * DESIGN
 * - Only nodes that run model pods are scraped: the node list (paged,
 *   limit/continue, every KS_NODES_EVERY_MS) is cut to the nodes named by
 *   modelhub's pods — from the pod table the watch publishes when it is
 *   current, else from a pod list with modelhub's label selector (paged).
 *   A cluster of 1,000 nodes with model pods on 50 costs 50 fetches.
 *   kube.scrape_nodes = all scrapes every node instead.
 * - One cycle = one concurrent fetch of
 *   GET /api/v1/nodes/{node}/proxy/metrics/resource for every node (one
 *   curl multi handle, kube_nodes.c); each 200 answer is handed to
 *   on_report unparsed (Prometheus parsing lives in src/metrics).
 * - When the proxy is forbidden (403 from every node that answered) the
 *   cycle uses metrics.k8s.io/v1beta1 nodes and pods instead (rates, not
 *   counters: on_node_usage / on_instance_usage), and keeps doing so for
 *   KS_FALLBACK_RETRY_MS before trying the proxy again.
 * - kube.scrape chooses the source, and so the RBAC the hub needs
 *   (deploy/k8s/components/scrape-*): "kubelet" only the node proxy (a 403
 *   is an error, no fallback), "metrics-server" only metrics.k8s.io (no
 *   proxy call ever), "auto" (default) the proxy with the fallback above.
 */
#include "cluster/kube/kube_nodes.h"
#include "cluster/kube/kube_pod.h"
#include "cluster/kube/kube_watch.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_NODES_EVERY_MS 10000      /* node list refresh */
#define KS_FALLBACK_RETRY_MS 60000
#define KS_LIST_TIMEOUT_MS 15000

struct kube_scrape {
	struct kube_http *h;         /* borrowed from kube.c */
	struct kube_fetcher *f;
	struct cluster_node *nodes;
	int nnodes;
	struct kube_fetch *fx;
	int nfx;
	int64_t nodes_ms;
	int64_t fallback_until;
	int skipped;                 /* nodes without model pods, last refresh */
	char group_label[128];
};

struct kube_scrape *kube_scrape_new(struct kube_http *h)
{
	struct kube_scrape *ks = calloc(1, sizeof *ks);

	if (!ks)
		return NULL;
	ks->h = h;
	if (!(ks->f = kube_fetcher_new(h))) {
		free(ks);
		return NULL;
	}
	snprintf(ks->group_label, sizeof ks->group_label, "%s",
		 cfg_str("kube.node_group_label", "modelhub.io/node-group"));
	return ks;
}

void kube_scrape_free(struct kube_scrape *ks)
{
	if (!ks)
		return;
	for (int i = 0; i < ks->nfx; i++)
		buf_free(&ks->fx[i].body);
	free(ks->fx);
	free(ks->nodes);
	kube_fetcher_free(ks->f);
	free(ks);
}

/* Names of the nodes that run model pods, sorted and unique. */
struct names {
	char (*v)[64];
	int n, cap;
};

static int names_add(struct names *nm, const char *name)
{
	if (!name || !name[0])
		return 0;
	if (nm->n == nm->cap) {
		int nc = nm->cap ? nm->cap * 2 : 256;
		char (*x)[64] = realloc(nm->v, (size_t)nc * sizeof *x);
		if (!x)
			return -1;
		nm->v = x;
		nm->cap = nc;
	}
	snprintf(nm->v[nm->n++], 64, "%s", name);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* From the pod table (the watch's view of every model pod). 0, -1. */
static int model_nodes_tab(struct kube_tab *tab, struct names *nm)
{
	struct cluster_pod_row row;

	for (int i = 0; i < kube_tab_count(tab); i++)
		if (kube_tab_get(tab, i, &row) == 1 && !row.gone && names_add(nm, row.pod.node) < 0)
			return -1;
	return 0;
}

/* From a pod list with modelhub's label selector, paged. 0, -1. */
static int model_nodes_list(struct kube_scrape *ks, struct names *nm)
{
	char path[1200], cont[512] = "";

	for (;;) {
		long st;
		const char *next;
		struct json_object *o, *items;

		snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods?labelSelector=%s&limit=%d%s%s",
			 kube_http_conf(ks->h)->ns, KUBE_SELECTOR, kube_list_page(), cont[0] ? "&continue=" : "",
			 cont);
		o = kube_http_get_json(ks->h, path, &st, KS_LIST_TIMEOUT_MS);
		if (!o) {
			log_warn_x("kubescrape status=%ld msg=\"model pod list failed\"", st);
			return -1;
		}
		items = jx_get(o, "items", NULL);
		for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
				   i < json_object_array_length(items); i++)
			if (names_add(nm, jx_get_str(json_object_array_get_idx(items, i), "spec", "nodeName",
						     NULL)) < 0) {
				json_object_put(o);
				return -1;
			}
		next = jx_get_str(o, "metadata", "continue", NULL);
		cont[0] = '\0';
		if (next && next[0] && strlen(next) < sizeof cont / 3)
			kube_http_escape(next, cont, sizeof cont);
		json_object_put(o);
		if (!cont[0])
			return 0;
	}
}

/* Keep the nodes that run model pods (in place); the rest are skipped. */
static int keep_model_nodes(struct kube_scrape *ks, struct kube_tab *tab, struct cluster_node *nodes, int n)
{
	struct names nm = {0};
	int k = 0;

	ks->skipped = 0;
	if (strcmp(cfg_str("kube.scrape_nodes", "model"), "all") == 0)
		return n; /* every node (the nodes page shows the whole cluster) */
	if ((tab ? model_nodes_tab(tab, &nm) : model_nodes_list(ks, &nm)) < 0) {
		free(nm.v);
		return -1;
	}
	if (nm.n > 1)
		qsort(nm.v, (size_t)nm.n, sizeof *nm.v, name_cmp);
	for (int i = 0; i < n; i++)
		if (nm.n && bsearch(nodes[i].name, nm.v, (size_t)nm.n, sizeof *nm.v, name_cmp))
			nodes[k++] = nodes[i];
	free(nm.v);
	ks->skipped = n - k;
	return k;
}

/* The nodes to scrape, at most every KS_NODES_EVERY_MS: the node list
 * (paged) cut to the nodes that run model pods. The last one is kept when
 * a refresh fails. */
static int nodes_refresh(struct kube_scrape *ks, struct kube_tab *tab)
{
	struct cluster_node *nodes = NULL;
	int n = 0;

	if (ks->nodes && mh_mono_ms() - ks->nodes_ms < KS_NODES_EVERY_MS)
		return 0;
	if (kube_nodes_list(ks->h, ks->group_label, &nodes, &n) < 0)
		return ks->nodes ? 0 : -1;
	if ((n = keep_model_nodes(ks, tab, nodes, n)) < 0) {
		free(nodes);
		return ks->nodes ? 0 : -1;
	}
	if (n > ks->nfx) {
		struct kube_fetch *fx = realloc(ks->fx, (size_t)n * sizeof *fx);
		if (!fx) {
			free(nodes);
			return -1;
		}
		memset(fx + ks->nfx, 0, (size_t)(n - ks->nfx) * sizeof *fx);
		ks->fx = fx;
		ks->nfx = n;
	}
	free(ks->nodes);
	ks->nodes = nodes;
	ks->nnodes = n;
	ks->nodes_ms = mh_mono_ms();
	for (int i = 0; i < n; i++)
		snprintf(ks->fx[i].path, sizeof ks->fx[i].path, "/api/v1/nodes/%s/proxy/metrics/resource",
			 nodes[i].name);
	return 0;
}

/* usage.cpu / usage.memory of a metrics.k8s.io container, added to *cpu_m
 * and *mem (each only when it parses). */
static void usage_add(struct json_object *o, double *cpu_m, int64_t *mem)
{
	int64_t v;

	if (kube_qty_milli(jx_get_str(o, "usage", "cpu", NULL), &v) == 0)
		*cpu_m += (double)v;
	if (kube_qty_bytes(jx_get_str(o, "usage", "memory", NULL), &v) == 0)
		*mem += v;
}

static const struct cluster_node *node_find(const struct kube_scrape *ks, const char *name)
{
	for (int k = 0; k < ks->nnodes; k++)
		if (strcmp(ks->nodes[k].name, name) == 0)
			return &ks->nodes[k];
	return NULL;
}

/* metrics.k8s.io nodes: known nodes only. 0, -1 (fetch failed or a
 * callback stopped the cycle). */
static int fallback_nodes(struct kube_scrape *ks, struct cluster_scrape *s)
{
	struct json_object *o, *items;
	long status;
	int rc = 0;

	o = kube_http_get_json(ks->h, "/apis/metrics.k8s.io/v1beta1/nodes", &status, s->timeout_ms);
	if (!o)
		return -1;
	items = jx_get(o, "items", NULL);
	for (size_t i = 0; rc == 0 && items && json_object_is_type(items, json_type_array) &&
			   i < json_object_array_length(items); i++) {
		struct json_object *n = json_object_array_get_idx(items, i);
		const char *name = jx_get_str(n, "metadata", "name", NULL);
		const struct cluster_node *nd = name ? node_find(ks, name) : NULL;
		double cpu = -1;
		int64_t mem = -1, v;

		if (!nd)
			continue;
		if (kube_qty_milli(jx_get_str(n, "usage", "cpu", NULL), &v) == 0)
			cpu = (double)v;
		if (kube_qty_bytes(jx_get_str(n, "usage", "memory", NULL), &v) == 0)
			mem = v;
		if (s->on_node_usage && s->on_node_usage(nd, cpu, mem, s->arg))
			rc = -1;
		else
			s->nodes_ok++;
	}
	json_object_put(o);
	return rc;
}

/* metrics.k8s.io pods of the namespace: each pod's containers summed. */
static int fallback_pods(struct kube_scrape *ks, struct cluster_scrape *s)
{
	struct json_object *o, *items;
	char path[300];
	long status;
	int rc = 0;

	snprintf(path, sizeof path, "/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods",
		 kube_http_conf(ks->h)->ns);
	o = kube_http_get_json(ks->h, path, &status, s->timeout_ms);
	if (!o)
		return 0;
	items = jx_get(o, "items", NULL);
	for (size_t i = 0; rc == 0 && items && json_object_is_type(items, json_type_array) &&
			   i < json_object_array_length(items); i++) {
		struct json_object *p = json_object_array_get_idx(items, i), *cs;
		const char *name = jx_get_str(p, "metadata", "name", NULL);
		double cpu = 0;
		int64_t mem = 0;

		if (!name)
			continue;
		cs = jx_get(p, "containers", NULL);
		for (size_t k = 0; cs && json_object_is_type(cs, json_type_array) &&
				   k < json_object_array_length(cs); k++)
			usage_add(json_object_array_get_idx(cs, k), &cpu, &mem);
		if (s->on_instance_usage && s->on_instance_usage(name, cpu, mem, s->arg))
			rc = -1;
	}
	json_object_put(o);
	return rc;
}

static int cycle_fallback(struct kube_scrape *ks, struct cluster_scrape *s)
{
	s->fallback = 1;
	if (fallback_nodes(ks, s) < 0)
		return -1;
	return fallback_pods(ks, s);
}

enum ks_source { KS_AUTO, KS_KUBELET, KS_METRICS_SERVER };

/* kube.scrape, read at every cycle (a SIGHUP reload takes effect). */
static enum ks_source scrape_source(void)
{
	const char *v = cfg_str("kube.scrape", "auto");

	if (strcmp(v, "kubelet") == 0)
		return KS_KUBELET;
	if (strcmp(v, "metrics-server") == 0)
		return KS_METRICS_SERVER;
	return KS_AUTO;
}

int kube_scrape_run(struct kube_scrape *ks, struct cluster_scrape *s, struct kube_tab *tab)
{
	int forbidden = 0;
	enum ks_source src = scrape_source();

	if (nodes_refresh(ks, tab) < 0)
		return -1;
	s->nodes = ks->nnodes;
	s->nodes_skipped = ks->skipped;
	if (ks->nnodes == 0)
		return 0; /* no model pod anywhere: nothing to scrape */
	if (src == KS_METRICS_SERVER || (src == KS_AUTO && mh_mono_ms() < ks->fallback_until))
		return cycle_fallback(ks, s);
	s->nodes_ok = kube_fetch_all(ks->f, ks->fx, ks->nnodes, s->timeout_ms);
	for (int i = 0; i < ks->nnodes; i++) {
		struct kube_fetch *fx = &ks->fx[i];

		if (fx->status == 403)
			forbidden++;
		if (fx->status != 200 || fx->body.oom)
			continue;
		if (s->on_report && s->on_report(&ks->nodes[i], fx->body.data ? fx->body.data : "",
						 fx->body.len, s->arg))
			return -1;
		s->bytes += (int64_t)fx->body.len;
	}
	if (forbidden > 0 && s->nodes_ok == 0 && src == KS_KUBELET) {
		log_warn_x("kubescrape nodes=%d msg=\"nodes/proxy forbidden (kube.scrape = kubelet)\"",
			   forbidden);
		return -1;
	}
	if (forbidden > 0 && s->nodes_ok == 0) {
		log_warn_x("kubescrape nodes=%d msg=\"nodes/proxy forbidden, using metrics.k8s.io\"",
			   forbidden);
		ks->fallback_until = mh_mono_ms() + KS_FALLBACK_RETRY_MS;
		return cycle_fallback(ks, s);
	}
	return s->nodes_ok > 0 ? 0 : -1;
}
