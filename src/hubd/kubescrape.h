/*
 * kubescrape.h — the scraper's kubernetes source: kubelet resource metrics
 * of every node, parsed and ingested into the metrics segment.
 *
 * Runs in: the scraper child (hub.backend = kubernetes); bench/kube-scrape.
 * Called by: scraper.c once per scrape interval.
 * Owns: a kubernetes backend (cluster.h) that keeps the node list and the
 * connections across cycles; a table of the segment's instance slots by
 * pod name (rebuilt in cycles that use the metrics.k8s.io fallback).
 * Shared state: node slots of the segment (registers and ingests; the
 * scraper is their only writer) and samples of the instance slots the
 * monitor registered (matched by pod name = slot name).
 */
#ifndef MH_KUBESCRAPE_H
#define MH_KUBESCRAPE_H

#include <stdint.h>

struct metrics_seg;
struct kubescrape;

struct kubescrape_stats {
	int nodes;              /* nodes scraped this cycle (they run model pods) */
	int nodes_skipped;      /* nodes without model pods, not scraped */
	int nodes_freed;        /* node slots freed this cycle */
	int nodes_ok;           /* answered 2xx */
	int instances;          /* instance samples ingested */
	int fallback;           /* metrics.k8s.io used (proxy forbidden) */
	int64_t bytes;          /* Prometheus text parsed */
};

/* NULL (logged) when the API server is not configured. kubescrape_free
 * is NULL-safe. */
struct kubescrape *kubescrape_new(void);
void kubescrape_free(struct kubescrape *ks);
/* One cycle. 0, -1 when nothing could be fetched. */
int kubescrape_run(struct kubescrape *ks, struct metrics_seg *seg, struct kubescrape_stats *st);

/* The scraper's entry (scraper.c, weak there): one cycle with a client made
 * on first use. Instance samples ingested, or -1. */
struct hubd_child;
int kubescrape_cycle(struct hubd_child *c, struct metrics_seg *seg);

#endif
