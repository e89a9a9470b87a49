/*
 * kube_watch.h — the pod watch of the kubernetes backend and the table it
 * publishes.
 *
 * Runs in: the kubewatch child (the only writer: it runs the list+watch
 * loop through cluster_watch) and runners (readers, through kube.c's
 * cluster_get).
 * Called by: kube.c (cluster_watch, cluster_pods, cluster_get).
 * Owns: the mapping of the pod table file (kube.state_file, default
 * <hub.var_dir>/kube-pods.tab): a header, a hash index and kube.max_pods
 * entries (default KUBE_TAB_DEFAULT), each one pod as last seen by the
 * watch. The table is kube_tab.c, the list+watch loop kube_watch.c.
 *
 * DESIGN
 * - One watch per replica replaces the upstream GET-per-pod loops
 *   (UPSTREAM.md 7.14): runners poll the table in memory, not the API.
 * - Single writer, many readers: each entry has a sequence word (odd while
 *   written, like the metrics segment's seqlock); readers copy and retry.
 *   The header carries the writer's heartbeat and the time of the last
 *   complete list ("synced"), so a reader can tell "not seen yet" from "the
 *   watcher is down".
 * - A pod that disappears (DELETED event, or absent from a relist) stays in
 *   the table marked gone for KUBE_TAB_GONE_KEEP_MS, so the runner that
 *   waits on it learns how it ended.
 */
#ifndef MH_KUBE_WATCH_H
#define MH_KUBE_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/kube/kube_http.h"
#include "cluster/kube/kube_pod.h"

#define KUBE_TAB_DEFAULT 110000 /* 1,000 nodes x 110 pods (the kubelet's default max) */
#define KUBE_TAB_GONE_KEEP_MS 600000

struct kube_tab;

/* Path from kube.state_file or <hub.var_dir>/kube-pods.tab into out. */
void kube_tab_path(char *out, size_t n);
/* Map the table; the writer sizes it from kube.max_pods and makes a new
 * sparse file (0600) when there is none or its size differs. NULL (logged)
 * on failure; a reader gets NULL until the writer made it. */
struct kube_tab *kube_tab_open(const char *path, int writer);
void kube_tab_close(struct kube_tab *t);
/* Reader: 1 when a writer replaced the file (close and open again). */
int kube_tab_replaced(struct kube_tab *t);
/* Entries the table holds at most; entries worth scanning ([0, count):
 * every entry ever used lies below it). */
int kube_tab_capacity(struct kube_tab *t);
int kube_tab_count(struct kube_tab *t);

/* Writer. put: insert or update by name (clears gone). gone: mark by name.
 * 0, -1 when full. */
int kube_tab_put(struct kube_tab *t, const struct cluster_pod *p);
int kube_tab_gone(struct kube_tab *t, const char *name);
/* After a full list: mark every live entry whose name is not in names as
 * gone; forget gone entries older than KUBE_TAB_GONE_KEEP_MS. */
void kube_tab_sweep(struct kube_tab *t, char (*names)[64], int n);
void kube_tab_heartbeat(struct kube_tab *t, int synced);
/* The writer stops: readers see the watcher down at once. */
void kube_tab_retire(struct kube_tab *t);

/* Readers. find: 1 found (copied), 0 not present, -1 busy. */
int kube_tab_find(struct kube_tab *t, const char *name, struct cluster_pod_row *out);
/* Entry idx (0..kube_tab_count-1): 1 copied, 0 free, -1 busy. */
int kube_tab_get(struct kube_tab *t, int idx, struct cluster_pod_row *out);
/* Wall ms of the writer's last heartbeat / last complete list (0: never). */
int64_t kube_tab_heartbeat_ms(struct kube_tab *t);
int64_t kube_tab_synced_ms(struct kube_tab *t);

/* ---- the watch loop (writer side) ---- */

struct kube_watcher {
	struct kube_http *h;
	struct kube_tab *tab;
	int port_offset;
	char rv[64];            /* resume point, "" = list first */
	int backoff_ms;
	uint64_t relists, reconnects, events;
	/* Called for each pod (after the table was updated); pod borrowed. */
	void (*on_pod)(enum cluster_pod_ev ev, const struct cluster_pod *p, struct json_object *pod,
		       void *arg);
	/* About once a second; non-zero stops the loop. */
	int (*on_tick)(void *arg);
	void *arg;
};

/* The events watch: one round of list (when w->rv is "") + watch of the
 * Pod events in namespace ns, each handed to w->on_event; same returns as
 * kube_watch_round. */
struct cluster_events_watch;
int kube_events_round(struct kube_http *h, const char *ns, struct cluster_events_watch *w);
/* An Event object into *ce (kube.c). */
struct cluster_event;
void kube_event_parse(struct json_object *e, struct cluster_event *ce);

/* One round: list if needed, then watch until the stream ends. Returns 0
 * when the stream ended normally or must be relisted (410), -1 after an
 * error (the caller sleeps w->backoff_ms), 1 when on_tick asked to stop. */
int kube_watch_round(struct kube_watcher *w);

#endif
