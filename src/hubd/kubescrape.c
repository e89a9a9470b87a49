/*
 * kubescrape.c — node and pod metrics from the kubelets, through the API
 * server, into the metrics segment (DESIGN.md §2, §6).
 *
 * Runs in: the scraper child when hub.backend = kubernetes; bench/kube-scrape.
 * Called by: scraper.c (kubescrape_cycle every metrics.interval_ms).
 * Owns: see kubescrape.h.
 * Shared state: segment node slots (register + ingest) and instance slots
 * (ingest only; the monitor registers them with the pod name).
 *
 * DESIGN
 * - One cycle = one concurrent fetch of
 *   GET /api/v1/nodes/{node}/proxy/metrics/resource for every node (one
 *   curl multi handle, kube_nodes.c); each answer goes to kubelet_ingest()
 *   (metrics/kubelet.h: the Prometheus parser + shm_slot_ingest, the same
 *   path as the local /proc source).
 * - The fallback matches pods to instance slots by name through a small
 *   hash table rebuilt each cycle from the segment.
 * - When the proxy is forbidden (403) the cycle uses metrics.k8s.io/v1beta1
 *   nodes and pods instead (rates already in nanocores), and keeps doing so
 *   for KS_FALLBACK_RETRY_MS before trying the proxy again.
 */
#include "hubd/kubescrape.h"
#include "cluster/kube_http.h"
#include "cluster/kube_nodes.h"
#include "cluster/kube_pod.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "hubd/hubd.h"
#include "metrics/kubelet.h"
#include "metrics/shm.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_NODES_EVERY_MS 10000      /* node list refresh */
#define KS_FETCH_TIMEOUT_MS 2500     /* below the 3 s default interval */
#define KS_FALLBACK_RETRY_MS 60000
#define KS_HASH 1024                 /* > max instance slots, power of 2 */

struct ks_inst {
	char name[SHM_NAME_LEN];
	int64_t id;
	int slot;
};

struct kubescrape {
	struct kube_conf kc;
	struct kube_http *h;
	struct kube_fetcher *f;
	struct cluster_node *nodes;
	int nnodes;
	struct kube_fetch *fx;
	int nfx;
	int64_t nodes_ms;
	int64_t fallback_until;
	struct ks_inst *inst;
	int ninst;
	int hash[KS_HASH];           /* index+1 into inst, 0 empty */
	char group_label[128];
};

struct kubescrape *kubescrape_new(void)
{
	struct kubescrape *ks = calloc(1, sizeof *ks);

	if (!ks)
		return NULL;
	if (kube_conf_load(&ks->kc) < 0 || !(ks->h = kube_http_new(&ks->kc)) ||
	    !(ks->f = kube_fetcher_new(ks->h))) {
		kubescrape_free(ks);
		return NULL;
	}
	snprintf(ks->group_label, sizeof ks->group_label, "%s",
		 cfg_str("kube.node_group_label", "modelhub.io/node-group"));
	return ks;
}

void kubescrape_free(struct kubescrape *ks)
{
	if (!ks)
		return;
	for (int i = 0; i < ks->nfx; i++)
		buf_free(&ks->fx[i].body);
	free(ks->fx);
	free(ks->nodes);
	free(ks->inst);
	kube_fetcher_free(ks->f);
	kube_http_free(ks->h);
	explicit_bzero(ks->kc.token, sizeof ks->kc.token);
	free(ks);
}

static unsigned hash_name(const char *p, size_t n)
{
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static struct ks_inst *inst_find(struct kubescrape *ks, const char *p, size_t n)
{
	unsigned h = hash_name(p, n) & (KS_HASH - 1);

	for (int k = 0; k < KS_HASH; k++, h = (h + 1) & (KS_HASH - 1)) {
		int i = ks->hash[h];
		if (!i)
			return NULL;
		if (strlen(ks->inst[i - 1].name) == n && memcmp(ks->inst[i - 1].name, p, n) == 0)
			return &ks->inst[i - 1];
	}
	return NULL;
}

/* Instance slots of the segment, by pod name. */
static int inst_load(struct kubescrape *ks, struct metrics_seg *seg)
{
	int n = shm_nslots(seg, SHM_INSTANCE);
	struct shm_snap sn;

	if (!ks->inst) {
		ks->inst = calloc((size_t)(n > 0 ? n : 1), sizeof *ks->inst);
		if (!ks->inst)
			return -1;
	}
	memset(ks->hash, 0, sizeof ks->hash);
	ks->ninst = 0;
	for (int i = 0; i < n && ks->ninst < KS_HASH / 2; i++) {
		struct ks_inst *x;
		unsigned h;
		if (shm_slot_snapshot(seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1 || !sn.d.name[0] ||
		    inst_find(ks, sn.d.name, strlen(sn.d.name)))
			continue;
		x = &ks->inst[ks->ninst++];
		memset(x, 0, sizeof *x);
		snprintf(x->name, sizeof x->name, "%s", sn.d.name);
		x->id = sn.d.instance_id;
		x->slot = i;
		h = hash_name(x->name, strlen(x->name)) & (KS_HASH - 1);
		while (ks->hash[h])
			h = (h + 1) & (KS_HASH - 1);
		ks->hash[h] = ks->ninst;
	}
	return 0;
}

static int nodes_refresh(struct kubescrape *ks)
{
	struct cluster_node *nodes = NULL;
	int n = 0;

	if (ks->nodes && mh_mono_ms() - ks->nodes_ms < KS_NODES_EVERY_MS)
		return 0;
	if (kube_nodes_list(ks->h, ks->group_label, &nodes, &n, NULL) < 0)
		return ks->nodes ? 0 : -1;
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

static int node_slot(struct kubescrape *ks, struct metrics_seg *seg, const struct cluster_node *nd)
{
	struct shm_slot_data d;
	int count = 0;

	memset(&d, 0, sizeof d);
	snprintf(d.name, sizeof d.name, "%s", nd->name);
	snprintf(d.node, sizeof d.node, "%s", nd->name);
	d.cpu_capacity_m = d.cpu_allocatable_m = nd->cpu_m;
	d.mem_capacity_mib = d.mem_allocatable_mib = (double)nd->memory_bytes / 1048576.0;
	for (int i = 0; i < ks->ninst; i++) {
		struct shm_snap sn;
		if (shm_slot_snapshot(seg, SHM_INSTANCE, ks->inst[i].slot, &sn, NULL, 0, 0) == 1 &&
		    strcmp(sn.d.node, nd->name) == 0)
			count++;
	}
	d.instance_count = count;
	return shm_node_register(seg, &d);
}

/* metrics.k8s.io: usage rates instead of counters. 0, -1. */
static int cycle_fallback(struct kubescrape *ks, struct metrics_seg *seg, struct kubescrape_stats *st)
{
	struct json_object *o, *items;
	char path[300];
	int64_t now = mh_wall_ms(), v;
	long status;

	st->fallback = 1;
	if (inst_load(ks, seg) < 0)
		return -1;
	o = kube_http_get_json(ks->h, "/apis/metrics.k8s.io/v1beta1/nodes", &status, KS_FETCH_TIMEOUT_MS);
	if (!o)
		return -1;
	items = kube_jget(o, "items", NULL);
	for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
			   i < json_object_array_length(items); i++) {
		struct json_object *n = json_object_array_get_idx(items, i);
		const char *name = kube_jstr(n, "metadata", "name", NULL);
		struct shm_obs ob;
		int slot = -1;
		if (!name)
			continue;
		for (int k = 0; k < ks->nnodes && slot < 0; k++)
			if (strcmp(ks->nodes[k].name, name) == 0)
				slot = node_slot(ks, seg, &ks->nodes[k]);
		if (slot < 0)
			continue;
		memset(&ob, 0, sizeof ob);
		ob.t_ms = now;
		if (kube_qty_milli(kube_jstr(n, "usage", "cpu", NULL), &v) == 0) {
			ob.has_cpu_m = 1;
			ob.cpu_m = (double)v;
		}
		if (kube_qty_bytes(kube_jstr(n, "usage", "memory", NULL), &v) == 0) {
			ob.has_mem = 1;
			ob.mem_mib = (double)v / 1048576.0;
		}
		shm_slot_ingest(seg, SHM_NODE, slot, 0, &ob);
		st->nodes_ok++;
	}
	json_object_put(o);
	snprintf(path, sizeof path, "/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods", ks->kc.ns);
	o = kube_http_get_json(ks->h, path, &status, KS_FETCH_TIMEOUT_MS);
	if (!o)
		return 0;
	items = kube_jget(o, "items", NULL);
	for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
			   i < json_object_array_length(items); i++) {
		struct json_object *p = json_object_array_get_idx(items, i), *cs;
		const char *name = kube_jstr(p, "metadata", "name", NULL);
		struct ks_inst *x = name ? inst_find(ks, name, strlen(name)) : NULL;
		struct shm_obs ob;
		double cpu = 0, mem = 0;
		if (!x)
			continue;
		cs = kube_jget(p, "containers", NULL);
		for (size_t k = 0; cs && json_object_is_type(cs, json_type_array) &&
				   k < json_object_array_length(cs); k++) {
			struct json_object *c = json_object_array_get_idx(cs, k);
			if (kube_qty_milli(kube_jstr(c, "usage", "cpu", NULL), &v) == 0)
				cpu += (double)v;
			if (kube_qty_bytes(kube_jstr(c, "usage", "memory", NULL), &v) == 0)
				mem += (double)v;
		}
		memset(&ob, 0, sizeof ob);
		ob.t_ms = now;
		ob.has_cpu_m = 1;
		ob.cpu_m = cpu;
		ob.has_mem = 1;
		ob.mem_mib = mem / 1048576.0;
		if (shm_slot_ingest(seg, SHM_INSTANCE, x->slot, x->id, &ob) >= 0)
			st->instances++;
	}
	json_object_put(o);
	return 0;
}

int kubescrape_run(struct kubescrape *ks, struct metrics_seg *seg, struct kubescrape_stats *st)
{
	int64_t now = mh_wall_ms();
	int forbidden = 0;

	memset(st, 0, sizeof *st);
	if (nodes_refresh(ks) < 0)
		return -1;
	st->nodes = ks->nnodes;
	if (mh_mono_ms() < ks->fallback_until)
		return cycle_fallback(ks, seg, st);
	st->nodes_ok = kube_fetch_all(ks->f, ks->fx, ks->nnodes, KS_FETCH_TIMEOUT_MS);
	for (int i = 0; i < ks->nnodes; i++) {
		struct kube_fetch *fx = &ks->fx[i];
		struct kubelet_node_info info;
		struct kubelet_stats ks_st;

		if (fx->status == 403)
			forbidden++;
		if (fx->status != 200 || fx->body.oom)
			continue;
		memset(&info, 0, sizeof info);
		info.cpu_capacity_m = info.cpu_allocatable_m = ks->nodes[i].cpu_m;
		info.mem_capacity_mib = info.mem_allocatable_mib =
			(double)ks->nodes[i].memory_bytes / 1048576.0;
		memset(&ks_st, 0, sizeof ks_st);
		kubelet_ingest(seg, ks->nodes[i].name, &info, fx->body.data ? fx->body.data : "",
			       fx->body.len, now, &ks_st);
		st->bytes += (int64_t)fx->body.len;
		st->instances += (int)ks_st.ingested;
	}
	if (forbidden > 0 && st->nodes_ok == 0) {
		log_warn_x("kubescrape nodes=%d msg=\"nodes/proxy forbidden, using metrics.k8s.io\"",
			   forbidden);
		ks->fallback_until = mh_mono_ms() + KS_FALLBACK_RETRY_MS;
		return cycle_fallback(ks, seg, st);
	}
	return st->nodes_ok > 0 ? 0 : -1;
}

int kubescrape_cycle(struct hubd_child *c, struct metrics_seg *seg)
{
	static struct kubescrape *ks;
	static int64_t retry_ms;
	struct kubescrape_stats st;

	(void)c;
	if (!ks) {
		if (mh_mono_ms() < retry_ms)
			return -1;
		ks = kubescrape_new();
		if (!ks) {
			retry_ms = mh_mono_ms() + KS_NODES_EVERY_MS;
			return -1;
		}
	}
	if (kubescrape_run(ks, seg, &st) < 0)
		return -1;
	return st.instances;
}
