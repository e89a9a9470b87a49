/*
 * kube_nodes.h — nodes of the cluster and the concurrent fetch of their
 * kubelet resource metrics.
 *
 * Runs in: the scraper (kubernetes backend: every scrape interval, through
 * cluster_scrape). Called by: kube.c, kube_scrape.c; t/071 (quantities).
 * Owns: one CURL multi handle per struct kube_fetcher, kept across cycles
 * so connections to the API server are reused; an easy handle per
 * transfer, freed at the end of each cycle.
 *
 * DESIGN — one multi handle drives every node's
 * GET /api/v1/nodes/{node}/proxy/metrics/resource at once (no thread per
 * node, UPSTREAM.md 2.4), at most KUBE_FETCH_CONNS connections. Parsing is
 * the caller's (metrics/prom.h lives outside cluster/).
 */
#ifndef MH_KUBE_NODES_H
#define MH_KUBE_NODES_H

#include <stdint.h>

#include "cluster/cluster.h"
#include "cluster/kube/kube_http.h"

#define KUBE_FETCH_CONNS 16
#define KUBE_LIST_PAGE 500      /* limit= of every node, pod and event list */

/* limit= of every list request: kube.list_page (default KUBE_LIST_PAGE,
 * 1..5000; small values let tests page through a few objects). */
int kube_list_page(void);

/* CPU quantity ("2", "500m", "1.5", "250000n") to millicores; memory
 * quantity ("4Gi", "512Mi", "1e9", "1G", "123Ki") to bytes. 0 / -1. */
int kube_qty_milli(const char *q, int64_t *out);
int kube_qty_bytes(const char *q, int64_t *out);

/* GET /api/v1/nodes (paged: limit/continue): name, allocatable cpu/memory, ready, schedulable,
 * group (value of group_label). *out malloc()ed. */
int kube_nodes_list(struct kube_http *h, const char *group_label, struct cluster_node **out, int *n);

struct kube_fetch {
	char path[320];
	struct buf body;        /* reset by each cycle */
	long status;            /* HTTP status, -1 transport error */
	int64_t us;             /* time to the answer */
};

struct kube_fetcher;

struct kube_fetcher *kube_fetcher_new(struct kube_http *h);
void kube_fetcher_free(struct kube_fetcher *f);
/* Run every fetch concurrently; returns when all finished or timeout_ms
 * passed (the rest get status -1). Returns how many answered 2xx. */
int kube_fetch_all(struct kube_fetcher *f, struct kube_fetch *x, int n, int timeout_ms);

/* The scrape cycle of cluster_scrape() (kube_scrape.c): node list cache,
 * fetcher, fallback state. new: NULL on allocation failure. */
struct kube_scrape;
struct kube_scrape *kube_scrape_new(struct kube_http *h);
void kube_scrape_free(struct kube_scrape *ks);
/* One cycle. tab: the pod table when the watch is current (the nodes that
 * run model pods come from it), NULL (they come from a pod list). */
struct kube_tab;
int kube_scrape_run(struct kube_scrape *ks, struct cluster_scrape *s, struct kube_tab *tab);

#endif
