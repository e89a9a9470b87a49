/*
 * kubelet.h — the kubernetes source of the scraper: one node's kubelet
 * /metrics/resource answer (Prometheus text) into the metrics segment.
 *
 * Runs in: the scraper (kubernetes backend; the leader replica only).
 * Called by: hubd/scraper.c after fetching
 * GET /api/v1/nodes/{node}/proxy/metrics/resource; t/045-kubelet.c.
 * Owns: nothing (a per-call table on the heap, freed before return).
 * Shared state: writes samples of the node's slot (registered here by node
 * name) and of instance slots whose name equals a pod name (registered by
 * the monitor). Same ingest path as local instances: shm_slot_ingest().
 *
 * Per pod it uses pod_cpu_usage_seconds_total / pod_memory_working_set_bytes,
 * or the sum of the pod's container_* series when the pod series are absent
 * (older kubelets); container_start_time_seconds gives the first counter
 * value a baseline; container_cpu_cfs_periods_total and
 * container_cpu_cfs_throttled_periods_total (cAdvisor's series, present
 * when the answer carries them) give the throttling. Sample times are the series' timestamps when present.
 */
#ifndef MH_KUBELET_H
#define MH_KUBELET_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/shm.h"

struct kubelet_stats {
	long samples;           /* series lines read */
	long pods_matched;      /* pods with an instance slot */
	long ingested;          /* instance samples added (shm_slot_ingest == 1) */
	long bad_lines;
	int node_ingested;      /* node sample added */
};

/* Node capacity as the API server reports it (0 = unknown, kept). */
struct kubelet_node_info {
	double cpu_capacity_m, cpu_allocatable_m;
	double mem_capacity_mib, mem_allocatable_mib;
};

/* Parse buf (one node's answer) and ingest it. now_ms is used for series
 * without a timestamp. 0, or -1 when the node slot cannot be registered. */
int kubelet_ingest(struct metrics_seg *seg, const char *node, const struct kubelet_node_info *info,
		   const char *buf, size_t len, int64_t now_ms, struct kubelet_stats *st);

/* An instance slot the caller already knows runs on the node. */
struct kubelet_pod {
	char name[SHM_NAME_LEN];
	int slot;
	int64_t instance_id;
};
/* The same with the node's instance slots given (the scraper indexes the
 * segment once per cycle instead of once per node). */
int kubelet_ingest_pods(struct metrics_seg *seg, const char *node, const struct kubelet_node_info *info,
			const struct kubelet_pod *pods, int npods, const char *buf, size_t len,
			int64_t now_ms, struct kubelet_stats *st);

#endif
