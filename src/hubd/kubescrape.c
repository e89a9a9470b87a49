/*
 * kubescrape.c — node and pod metrics of the kubernetes backend into the
 * metrics segment (DESIGN.md §2, §6).
 *
 * Runs in: the scraper child when hub.backend = kubernetes; bench/kube-scrape.
 * Called by: scraper.c (kubescrape_cycle every metrics.interval_ms).
 * Owns: see kubescrape.h.
 * Shared state: segment node slots (register + ingest) and instance slots
 * (ingest only; the monitor registers them with the pod name).
 *
 * DESIGN
 * - The backend runs the cycle (cluster_scrape: node list, one concurrent
 *   fetch of every kubelet's /metrics/resource, the metrics.k8s.io
 *   fallback); this file only ingests what it is handed: a node's report
 *   goes to kubelet_ingest() (metrics/kubelet.h: the Prometheus parser +
 *   shm_slot_ingest, the same path as the local /proc source), fallback
 *   usage rates straight to shm_slot_ingest().
 * - The segment's instance slots are indexed once per cycle (sorted by
 *   node for the kubelet reports, hashed by pod name for the fallback), not
 *   once per node: 1,000 nodes cost one pass over the slots in use.
 * - Node slots are freed once a node has had no sample for
 *   kube.node_slot_keep_seconds (gone, or no model pod on it any more).
 */
#include "hubd/kubescrape.h"
#include "cluster/cluster.h"
#include "hubd/hubd.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/kubelet.h"
#include "metrics/shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_RETRY_MS 10000            /* no backend yet: try again after this */
#define KS_FETCH_TIMEOUT_MS 2500     /* below the 3 s default interval */
#define KS_NODE_GONE_S 60            /* kube.node_slot_keep_seconds: no sample this long, freed */

struct ks_inst {
	char name[SHM_NAME_LEN];
	char node[SHM_NAME_LEN];
	int64_t id;
	int slot;
};

struct kubescrape {
	struct cluster *cl;
	struct metrics_seg *seg;     /* this cycle's */
	struct kubescrape_stats *st; /* this cycle's */
	int64_t now;                 /* this cycle's wall ms */
	int inst_loaded;             /* this cycle */
	struct ks_inst *inst;        /* this cycle's instance slots, by node */
	int ninst, cap;
	int *hash;                   /* index+1 into inst, 0 empty */
	unsigned hsize;              /* power of 2, >= 2 * cap */
	struct kubelet_pod *pods;    /* one node's slots (cap of them) */
};

struct kubescrape *kubescrape_new(void)
{
	struct kubescrape *ks = calloc(1, sizeof *ks);

	if (!ks)
		return NULL;
	if (!(ks->cl = cluster_new("kubernetes"))) {
		free(ks);
		return NULL;
	}
	return ks;
}

void kubescrape_free(struct kubescrape *ks)
{
	if (!ks)
		return;
	free(ks->inst);
	free(ks->hash);
	free(ks->pods);
	cluster_free(ks->cl);
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
	unsigned h;

	if (!ks->hsize)
		return NULL;
	for (h = hash_name(p, n) & (ks->hsize - 1); ks->hash[h]; h = (h + 1) & (ks->hsize - 1)) {
		int i = ks->hash[h];
		if (strlen(ks->inst[i - 1].name) == n && memcmp(ks->inst[i - 1].name, p, n) == 0)
			return &ks->inst[i - 1];
	}
	return NULL;
}

static int inst_node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ks_inst *)a)->node, ((const struct ks_inst *)b)->node);
}

/* Room for n instances (arrays keep their size across cycles). */
static int inst_room(struct kubescrape *ks, int n)
{
	unsigned hs = 64;

	if (n <= ks->cap)
		return 0;
	while (hs < (unsigned)n * 2)
		hs <<= 1;
	free(ks->inst);
	free(ks->hash);
	free(ks->pods);
	ks->inst = calloc((size_t)n, sizeof *ks->inst);
	ks->hash = calloc(hs, sizeof *ks->hash);
	ks->pods = calloc((size_t)n, sizeof *ks->pods);
	ks->cap = ks->inst && ks->hash && ks->pods ? n : 0;
	ks->hsize = ks->cap ? hs : 0;
	return ks->cap ? 0 : -1;
}

/* Instance slots of the segment, once per cycle: sorted by node (for the
 * kubelet reports), hashed by pod name (for the metrics API fallback). */
static int inst_load(struct kubescrape *ks, struct metrics_seg *seg)
{
	int n = shm_nslots(seg, SHM_INSTANCE);
	struct shm_snap sn;

	ks->ninst = 0;
	if (inst_room(ks, n > 0 ? n : 1) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct ks_inst *x;
		if (shm_slot_snapshot(seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1 || !sn.d.name[0])
			continue;
		x = &ks->inst[ks->ninst++];
		snprintf(x->name, sizeof x->name, "%s", sn.d.name);
		snprintf(x->node, sizeof x->node, "%s", sn.d.node);
		x->id = sn.d.instance_id;
		x->slot = i;
	}
	qsort(ks->inst, (size_t)ks->ninst, sizeof *ks->inst, inst_node_cmp);
	memset(ks->hash, 0, ks->hsize * sizeof *ks->hash);
	for (int i = 0; i < ks->ninst; i++) {
		unsigned h = hash_name(ks->inst[i].name, strlen(ks->inst[i].name)) & (ks->hsize - 1);
		if (inst_find(ks, ks->inst[i].name, strlen(ks->inst[i].name)))
			continue;
		while (ks->hash[h])
			h = (h + 1) & (ks->hsize - 1);
		ks->hash[h] = i + 1;
	}
	return 0;
}

/* Append the instances on node (sorted run) to ks->pods from *n. */
static void node_pods(struct kubescrape *ks, const char *node, int *n)
{
	int lo = 0, hi = ks->ninst;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (strcmp(ks->inst[mid].node, node) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ks->ninst && strcmp(ks->inst[lo].node, node) == 0 && *n < ks->cap; lo++) {
		struct kubelet_pod *p = &ks->pods[(*n)++];
		memcpy(p->name, ks->inst[lo].name, sizeof p->name);
		p->slot = ks->inst[lo].slot;
		p->instance_id = ks->inst[lo].id;
	}
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

/* Load the instance table once per cycle, on the first usage callback. */
static int inst_ready(struct kubescrape *ks)
{
	if (!ks->inst_loaded) {
		if (inst_load(ks, ks->seg) < 0)
			return -1;
		ks->inst_loaded = 1;
	}
	return 0;
}

static int on_report(const struct cluster_node *nd, const char *text, size_t len, void *arg)
{
	struct kubescrape *ks = arg;
	struct kubelet_node_info info;
	struct kubelet_stats kst;
	int np = 0;

	memset(&info, 0, sizeof info);
	info.cpu_capacity_m = info.cpu_allocatable_m = nd->cpu_m;
	info.mem_capacity_mib = info.mem_allocatable_mib = (double)nd->memory_bytes / 1048576.0;
	memset(&kst, 0, sizeof kst);
	if (inst_ready(ks) < 0)
		return -1;
	/* its pods, and those whose node is not known yet */
	node_pods(ks, nd->name, &np);
	node_pods(ks, "", &np);
	kubelet_ingest_pods(ks->seg, nd->name, &info, ks->pods, np, text, len, ks->now, &kst);
	ks->st->instances += (int)kst.ingested;
	return 0;
}

static int on_node_usage(const struct cluster_node *nd, double cpu_m, int64_t mem_bytes, void *arg)
{
	struct kubescrape *ks = arg;
	struct shm_obs ob;
	int slot;

	if (inst_ready(ks) < 0)
		return -1;
	slot = node_slot(ks, ks->seg, nd);
	if (slot < 0)
		return 0;
	memset(&ob, 0, sizeof ob);
	ob.t_ms = ks->now;
	ob.has_cpu_m = cpu_m >= 0;
	ob.cpu_m = cpu_m >= 0 ? cpu_m : 0;
	ob.has_mem = mem_bytes >= 0;
	ob.mem_mib = mem_bytes >= 0 ? (double)mem_bytes / 1048576.0 : 0;
	shm_slot_ingest(ks->seg, SHM_NODE, slot, 0, &ob);
	return 0;
}

static int on_instance_usage(const char *name, double cpu_m, int64_t mem_bytes, void *arg)
{
	struct kubescrape *ks = arg;
	struct ks_inst *x;
	struct shm_obs ob;

	if (inst_ready(ks) < 0)
		return -1;
	x = inst_find(ks, name, strlen(name));
	if (!x)
		return 0;
	memset(&ob, 0, sizeof ob);
	ob.t_ms = ks->now;
	ob.has_cpu_m = 1;
	ob.cpu_m = cpu_m;
	ob.has_mem = 1;
	ob.mem_mib = (double)mem_bytes / 1048576.0;
	if (shm_slot_ingest(ks->seg, SHM_INSTANCE, x->slot, x->id, &ob) >= 0)
		ks->st->instances++;
	return 0;
}

/* Free node slots that got no sample for kube.node_slot_keep_seconds: the node left
 * the cluster or runs no model pod any more (it is no longer scraped). */
static int release_quiet_nodes(struct metrics_seg *seg, int64_t now)
{
	int64_t keep_ms = cfg_int("kube.node_slot_keep_seconds", KS_NODE_GONE_S) * 1000;
	struct shm_snap sn;
	int freed = 0;

	for (int i = 0; i < shm_nslots(seg, SHM_NODE); i++) {
		int64_t last;
		if (shm_slot_snapshot(seg, SHM_NODE, i, &sn, NULL, 0, 0) != 1)
			continue;
		last = sn.d.last_sample_ms > sn.d.registered_ms ? sn.d.last_sample_ms : sn.d.registered_ms;
		if (now - last > keep_ms && shm_slot_release(seg, SHM_NODE, i, 0) == 0) {
			log_info("kubescrape node=%s msg=\"node slot freed (no longer scraped)\"", sn.d.name);
			freed++;
		}
	}
	return freed;
}

int kubescrape_run(struct kubescrape *ks, struct metrics_seg *seg, struct kubescrape_stats *st)
{
	struct cluster_scrape s;
	int rc;

	memset(st, 0, sizeof *st);
	memset(&s, 0, sizeof s);
	ks->seg = seg;
	ks->st = st;
	ks->now = mh_wall_ms();
	ks->inst_loaded = 0;
	s.timeout_ms = KS_FETCH_TIMEOUT_MS;
	s.on_report = on_report;
	s.on_node_usage = on_node_usage;
	s.on_instance_usage = on_instance_usage;
	s.arg = ks;
	rc = cluster_scrape(ks->cl, &s);
	if (rc == 0)
		st->nodes_freed = release_quiet_nodes(seg, ks->now);
	st->nodes = s.nodes;
	st->nodes_skipped = s.nodes_skipped;
	st->nodes_ok = s.nodes_ok;
	st->fallback = s.fallback;
	st->bytes = s.bytes;
	return rc;
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
			retry_ms = mh_mono_ms() + KS_RETRY_MS;
			return -1;
		}
	}
	if (kubescrape_run(ks, seg, &st) < 0)
		return -1;
	return st.instances;
}
