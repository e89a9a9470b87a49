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
 * - The fallback matches pods to instance slots by name through a small
 *   hash table rebuilt from the segment on the cycle's first usage callback.
 */
#include "hubd/kubescrape.h"
#include "cluster/cluster.h"
#include "hubd/hubd.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "metrics/kubelet.h"
#include "metrics/shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_RETRY_MS 10000            /* no backend yet: try again after this */
#define KS_FETCH_TIMEOUT_MS 2500     /* below the 3 s default interval */
#define KS_HASH 1024                 /* > max instance slots, power of 2 */

struct ks_inst {
	char name[SHM_NAME_LEN];
	int64_t id;
	int slot;
};

struct kubescrape {
	struct cluster *cl;
	struct metrics_seg *seg;     /* this cycle's */
	struct kubescrape_stats *st; /* this cycle's */
	int64_t now;                 /* this cycle's wall ms */
	int inst_loaded;             /* this cycle */
	struct ks_inst *inst;
	int ninst;
	int hash[KS_HASH];           /* index+1 into inst, 0 empty */
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

	memset(&info, 0, sizeof info);
	info.cpu_capacity_m = info.cpu_allocatable_m = nd->cpu_m;
	info.mem_capacity_mib = info.mem_allocatable_mib = (double)nd->memory_bytes / 1048576.0;
	memset(&kst, 0, sizeof kst);
	kubelet_ingest(ks->seg, nd->name, &info, text, len, ks->now, &kst);
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
	st->nodes = s.nodes;
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
