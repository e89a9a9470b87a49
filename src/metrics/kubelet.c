/*
 * kubelet.c — kubelet /metrics/resource into the segment (see kubelet.h).
 *
 * Runs in: the scraper. Called by: hubd/scraper.c (kubernetes backend).
 * Owns: the per-call pod table (freed before return).
 *
 * DESIGN: one pass of prom_parse() with only_known; samples of pods that
 * have an instance slot are accumulated per pod (pod series preferred,
 * container series summed as the fallback), then each pod becomes one
 * struct shm_obs. Pods without a slot cost one failed lookup per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "metrics/kubelet.h"
#include "metrics/prom.h"

struct pod_acc {
	char name[SHM_NAME_LEN];
	size_t len;
	int slot;
	int64_t instance_id;
	int has_pod_cpu, has_pod_mem, has_ctr_cpu, has_ctr_mem;
	double pod_cpu_s, pod_mem_b, ctr_cpu_s, ctr_mem_b;
	int has_cfs_periods, has_cfs_throttled;
	double cfs_periods, cfs_throttled; /* summed over the pod's containers */
	int64_t t_ms;
	double start_s;         /* earliest container start, epoch seconds */
};

struct ctx {
	struct pod_acc *pods;
	int npods;
	int64_t now_ms;
	int has_node_cpu, has_node_mem;
	double node_cpu_s, node_mem_b;
	int64_t node_t_ms;
	struct kubelet_stats *st;
	int *hash;              /* index + 1 into pods, 0 empty */
	unsigned hmask;
};

static unsigned hash_str(const char *p, size_t n)
{
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

/* The node's pods by name: open addressing over c->pods (the node may
 * carry 110 pods of which every series line is looked up). */
static int index_pods(struct ctx *c)
{
	unsigned size = 16;

	while (size < (unsigned)c->npods * 2)
		size <<= 1;
	c->hash = calloc(size, sizeof *c->hash);
	if (!c->hash)
		return -1;
	c->hmask = size - 1;
	for (int i = 0; i < c->npods; i++) {
		unsigned h = hash_str(c->pods[i].name, c->pods[i].len) & c->hmask;
		while (c->hash[h])
			h = (h + 1) & c->hmask;
		c->hash[h] = i + 1;
	}
	return 0;
}

static struct pod_acc *find_pod(struct ctx *c, const struct prom_str *pod)
{
	if (!pod->p || !c->npods)
		return NULL;
	for (unsigned h = hash_str(pod->p, pod->n) & c->hmask; c->hash[h]; h = (h + 1) & c->hmask) {
		struct pod_acc *a = &c->pods[c->hash[h] - 1];
		if (a->len == pod->n && memcmp(a->name, pod->p, pod->n) == 0)
			return a;
	}
	return NULL;
}

static int on_sample(const struct prom_sample *s, void *arg)
{
	struct ctx *c = arg;
	int64_t t = s->has_ts ? s->ts_ms : c->now_ms;
	struct pod_acc *p;

	c->st->samples++;
	switch (s->metric) {
	case PROM_NODE_CPU:
		c->has_node_cpu = 1;
		c->node_cpu_s = s->value;
		c->node_t_ms = t;
		return 0;
	case PROM_NODE_MEM:
		c->has_node_mem = 1;
		c->node_mem_b = s->value;
		if (!c->node_t_ms)
			c->node_t_ms = t;
		return 0;
	default:
		break;
	}
	p = find_pod(c, &s->pod);
	if (!p)
		return 0;
	if (t > p->t_ms)
		p->t_ms = t;
	switch (s->metric) {
	case PROM_POD_CPU:
		p->has_pod_cpu = 1;
		p->pod_cpu_s = s->value;
		break;
	case PROM_POD_MEM:
		p->has_pod_mem = 1;
		p->pod_mem_b = s->value;
		break;
	case PROM_CONTAINER_CPU:
		p->has_ctr_cpu = 1;
		p->ctr_cpu_s += s->value;
		break;
	case PROM_CONTAINER_MEM:
		p->has_ctr_mem = 1;
		p->ctr_mem_b += s->value;
		break;
	case PROM_CONTAINER_CFS_PERIODS:
		p->has_cfs_periods = 1;
		p->cfs_periods += s->value;
		break;
	case PROM_CONTAINER_CFS_THROTTLED:
		p->has_cfs_throttled = 1;
		p->cfs_throttled += s->value;
		break;
	case PROM_CONTAINER_START:
		if (s->value > 0 && (p->start_s == 0 || s->value < p->start_s))
			p->start_s = s->value;
		break;
	default:
		break;
	}
	return 0;
}

/* Instance slots on this node (or without a node yet) become pod entries. */
static int collect_pods(struct metrics_seg *seg, const char *node, struct ctx *c)
{
	int n = shm_nslots(seg, SHM_INSTANCE);
	struct shm_snap sn;

	c->pods = calloc((size_t)(n > 0 ? n : 1), sizeof(*c->pods));
	if (!c->pods)
		return -1;
	for (int i = 0; i < n; i++) {
		struct pod_acc *p;

		if (shm_slot_snapshot(seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1 || !sn.d.name[0])
			continue;
		if (sn.d.node[0] && strcmp(sn.d.node, node) != 0)
			continue;
		p = &c->pods[c->npods++];
		memcpy(p->name, sn.d.name, sizeof(p->name));
		p->len = strlen(p->name);
		p->slot = i;
		p->instance_id = sn.d.instance_id;
	}
	return 0;
}

/* Register the node's slot (capacity from info, instance count from the
 * pods seen) and add its sample. The slot, or -1. */
static int ingest_node(struct metrics_seg *seg, const char *node,
		       const struct kubelet_node_info *info, const struct ctx *c, int64_t now_ms)
{
	struct shm_slot_data id;
	struct shm_obs o;
	int slot;

	memset(&id, 0, sizeof(id));
	snprintf(id.name, sizeof(id.name), "%s", node);
	snprintf(id.node, sizeof(id.node), "%s", node);
	if (info) {
		id.cpu_capacity_m = info->cpu_capacity_m;
		id.cpu_allocatable_m = info->cpu_allocatable_m;
		id.mem_capacity_mib = info->mem_capacity_mib;
		id.mem_allocatable_mib = info->mem_allocatable_mib;
	}
	id.instance_count = 0;
	for (int i = 0; i < c->npods; i++)
		id.instance_count += c->pods[i].t_ms > 0;
	slot = shm_node_register(seg, &id);
	if (slot < 0 || !(c->has_node_cpu || c->has_node_mem))
		return slot;
	memset(&o, 0, sizeof(o));
	o.t_ms = c->node_t_ms ? c->node_t_ms : now_ms;
	o.has_cpu_counter = c->has_node_cpu;
	o.cpu_counter_s = c->node_cpu_s;
	o.has_mem = c->has_node_mem;
	o.mem_mib = c->node_mem_b / 1048576.0;
	c->st->node_ingested = shm_slot_ingest(seg, SHM_NODE, slot, 0, &o) == 1;
	return slot;
}

/* A sample for each pod seen: pod series, else its containers' sums. */
static void ingest_pods(struct metrics_seg *seg, const struct ctx *c)
{
	for (int i = 0; i < c->npods; i++) {
		const struct pod_acc *p = &c->pods[i];
		struct shm_obs o;

		if (!p->t_ms)
			continue;
		c->st->pods_matched++;
		memset(&o, 0, sizeof(o));
		o.t_ms = p->t_ms;
		o.has_cpu_counter = p->has_pod_cpu || p->has_ctr_cpu;
		o.cpu_counter_s = p->has_pod_cpu ? p->pod_cpu_s : p->ctr_cpu_s;
		o.start_ms = (int64_t)(p->start_s * 1000.0);
		o.has_mem = p->has_pod_mem || p->has_ctr_mem;
		o.mem_mib = (p->has_pod_mem ? p->pod_mem_b : p->ctr_mem_b) / 1048576.0;
		o.has_cfs = p->has_cfs_periods && p->has_cfs_throttled;
		o.cfs_periods = p->cfs_periods;
		o.cfs_throttled = p->cfs_throttled;
		if (shm_slot_ingest(seg, SHM_INSTANCE, p->slot, p->instance_id, &o) == 1)
			c->st->ingested++;
	}
}

/* Parse and ingest with c->pods set (freed here). */
static int ingest(struct metrics_seg *seg, const char *node, const struct kubelet_node_info *info,
		  const char *buf, size_t len, struct ctx *c)
{
	struct prom_opts opts = {1, 0};
	struct prom_result res;
	int node_slot;

	if (index_pods(c) < 0) {
		free(c->pods);
		return -1;
	}
	prom_parse(buf, len, &opts, on_sample, c, &res);
	c->st->bad_lines = res.bad_lines;
	if (res.bad_lines)
		log_warn_x("kubelet node=%s bad_lines=%ld first_error_line=%d error=\"%s\"", node,
			   res.bad_lines, res.first_error_line, res.first_error ? res.first_error : "");
	node_slot = ingest_node(seg, node, info, c, c->now_ms);
	ingest_pods(seg, c);
	free(c->pods);
	free(c->hash);
	return node_slot < 0 ? -1 : 0;
}

int kubelet_ingest(struct metrics_seg *seg, const char *node, const struct kubelet_node_info *info,
		   const char *buf, size_t len, int64_t now_ms, struct kubelet_stats *st)
{
	struct kubelet_stats local;
	struct ctx c;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	memset(&c, 0, sizeof(c));
	c.now_ms = now_ms;
	c.st = st;
	if (collect_pods(seg, node, &c) < 0)
		return -1;
	return ingest(seg, node, info, buf, len, &c);
}

int kubelet_ingest_pods(struct metrics_seg *seg, const char *node, const struct kubelet_node_info *info,
			const struct kubelet_pod *pods, int npods, const char *buf, size_t len,
			int64_t now_ms, struct kubelet_stats *st)
{
	struct kubelet_stats local;
	struct ctx c;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	memset(&c, 0, sizeof(c));
	c.now_ms = now_ms;
	c.st = st;
	c.pods = calloc((size_t)(npods > 0 ? npods : 1), sizeof(*c.pods));
	if (!c.pods)
		return -1;
	for (int i = 0; i < npods; i++) {
		snprintf(c.pods[i].name, sizeof(c.pods[i].name), "%s", pods[i].name);
		c.pods[i].len = strlen(c.pods[i].name);
		c.pods[i].slot = pods[i].slot;
		c.pods[i].instance_id = pods[i].instance_id;
	}
	c.npods = npods;
	return ingest(seg, node, info, buf, len, &c);
}
