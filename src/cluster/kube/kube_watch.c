/*
 * kube_watch.c — the pod list+watch loop that feeds the published pod
 * table (kube_tab.c), and the events list+watch of the kubeevents child.
 *
 * Runs in: the kubewatch child (the table's writer); the kubeevents child.
 * Called by: kube.c (cluster_watch, cluster_events_watch).
 * Owns: nothing beyond one round's list buffers.
 * Shared state: the table file, through kube_tab_put/gone/sweep.
 *
 * DESIGN — the watch protocol as the API server defines it: list with the
 * label selector (paged, limit 500), remember the list's resourceVersion,
 * watch from it. Each event carries the pod's new resourceVersion, which
 * becomes the resume point; BOOKMARK events only move it. An ERROR event
 * with a 410 Status (or an HTTP 410 answer) means the version left the
 * server's history (or the server restarted into a new epoch): relist. A
 * broken connection resumes from the last version after a back-off that
 * doubles from KUBE_BACKOFF_MIN_MS to KUBE_BACKOFF_MAX_MS.
 */
#include "cluster/kube/kube_nodes.h"
#include "cluster/kube/kube_watch.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KUBE_BACKOFF_MIN_MS 500
#define KUBE_BACKOFF_MAX_MS 10000
#define KUBE_WATCH_TIMEOUT_S 240     /* server ends each watch; we resume */
#define KUBE_WATCH_IDLE_MS 300000    /* no byte at all this long: dead connection */
#define KUBE_LIST_TIMEOUT_MS 30000

/* ---- list + watch ---- */

struct round {
	struct kube_watcher *w;
	int relist;
	int stop;
	int got;
};

static void handle_pod(struct kube_watcher *w, enum cluster_pod_ev ev, struct json_object *pod)
{
	struct cluster_pod p;

	if (kube_pod_parse(pod, w->port_offset, &p) < 0)
		return;
	if (ev == CLUSTER_POD_DELETED) {
		/* keep the final state: the runner learns how it ended */
		kube_tab_put(w->tab, &p);
		kube_tab_gone(w->tab, p.name);
	} else {
		kube_tab_put(w->tab, &p);
	}
	w->events++;
	if (w->on_pod)
		w->on_pod(ev, &p, pod, w->arg);
}

static int on_event(struct json_object *ev, void *arg)
{
	struct round *r = arg;
	struct kube_watcher *w = r->w;
	const char *type = jx_get_str(ev, "type", NULL);
	struct json_object *obj = jx_get(ev, "object", NULL);
	const char *rv = jx_get_str(obj, "metadata", "resourceVersion", NULL);

	r->got = 1;
	if (!type)
		return 0;
	if (strcmp(type, "ERROR") == 0) {
		struct json_object *code = jx_get(obj, "code", NULL);
		log_info("kube code=%d reason=%s msg=\"watch error event, relisting\"",
			 code ? json_object_get_int(code) : 0,
			 jx_get_str(obj, "reason", NULL) ? jx_get_str(obj, "reason", NULL) : "-");
		r->relist = 1;
		return 1;
	}
	if (rv && strlen(rv) < sizeof w->rv)
		snprintf(w->rv, sizeof w->rv, "%s", rv);
	if (strcmp(type, "BOOKMARK") == 0)
		return 0;
	if (strcmp(type, "ADDED") == 0)
		handle_pod(w, CLUSTER_POD_ADDED, obj);
	else if (strcmp(type, "MODIFIED") == 0)
		handle_pod(w, CLUSTER_POD_MODIFIED, obj);
	else if (strcmp(type, "DELETED") == 0)
		handle_pod(w, CLUSTER_POD_DELETED, obj);
	return 0;
}

static int on_tick(void *arg)
{
	struct round *r = arg;

	kube_tab_heartbeat(r->w->tab, 1);
	if (r->w->on_tick && r->w->on_tick(r->w->arg)) {
		r->stop = 1;
		return 1;
	}
	return 0;
}

/* Full list: table entries replaced, absent pods marked gone, rv set.
 * 0, -1. */
static int list_pods(struct kube_watcher *w)
{
	const struct kube_conf *kc = kube_http_conf(w->h);
	char path[1024], cont[512] = "", (*names)[64] = NULL;
	int n = 0, cap = 0, rc = -1;

	for (;;) {
		struct json_object *o, *items;
		long st;
		const char *next, *rv;

		snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods?labelSelector=%s&limit=%d%s%s",
			 kc->ns, KUBE_SELECTOR, kube_list_page(), cont[0] ? "&continue=" : "", cont);
		o = kube_http_get_json(w->h, path, &st, KUBE_LIST_TIMEOUT_MS);
		if (!o) {
			log_warn_x("kube ns=%s status=%ld msg=\"pod list failed\"", kc->ns, st);
			goto out;
		}
		items = jx_get(o, "items", NULL);
		for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
				   i < json_object_array_length(items); i++) {
			struct json_object *pod = json_object_array_get_idx(items, i);
			const char *nm = jx_get_str(pod, "metadata", "name", NULL);
			if (!nm)
				continue;
			if (n == cap) {
				int nc = cap ? cap * 2 : 64;
				char (*nn)[64] = realloc(names, (size_t)nc * sizeof *names);
				if (!nn) {
					json_object_put(o);
					goto out;
				}
				names = nn;
				cap = nc;
			}
			snprintf(names[n++], 64, "%s", nm);
			handle_pod(w, CLUSTER_POD_LISTED, pod);
		}
		rv = jx_get_str(o, "metadata", "resourceVersion", NULL);
		if (rv)
			snprintf(w->rv, sizeof w->rv, "%s", rv);
		next = jx_get_str(o, "metadata", "continue", NULL);
		if (next && next[0] && strlen(next) < sizeof cont) {
			kube_http_escape(next, cont, sizeof cont);
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		break;
	}
	kube_tab_sweep(w->tab, names, n);
	kube_tab_heartbeat(w->tab, 1);
	w->relists++;
	log_info("kube ns=%s pods=%d rv=%s msg=\"pods listed\"", kc->ns, n, w->rv);
	rc = 0;
out:
	free(names);
	return rc;
}

int kube_watch_round(struct kube_watcher *w)
{
	const struct kube_conf *kc = kube_http_conf(w->h);
	struct round r;
	char path[1024];
	long st;

	memset(&r, 0, sizeof r);
	r.w = w;
	if (!w->rv[0]) {
		if (list_pods(w) < 0)
			goto error;
		if (w->on_tick && w->on_tick(w->arg))
			return 1;
	}
	snprintf(path, sizeof path,
		 "/api/v1/namespaces/%s/pods?labelSelector=%s&watch=1&allowWatchBookmarks=true"
		 "&timeoutSeconds=%d&resourceVersion=%s",
		 kc->ns, KUBE_SELECTOR, KUBE_WATCH_TIMEOUT_S, w->rv);
	st = kube_http_watch(w->h, path, on_event, on_tick, &r, KUBE_WATCH_IDLE_MS);
	if (r.stop)
		return 1;
	if (r.relist || st == 410) {
		w->rv[0] = '\0';
		w->backoff_ms = 0;
		return 0;
	}
	if (st >= 200 && st < 300) {
		w->backoff_ms = 0;
		return 0;
	}
	if (st > 0)
		log_warn_x("kube status=%ld msg=\"watch refused\"", st);
	if (r.got)
		w->backoff_ms = 0;
error:
	w->reconnects++;
	w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : KUBE_BACKOFF_MIN_MS;
	if (w->backoff_ms > KUBE_BACKOFF_MAX_MS)
		w->backoff_ms = KUBE_BACKOFF_MAX_MS;
	/* a server that lost our version answers 410 on resume; one that lost
	 * its state entirely may answer anything: relist after a few failures */
	if (w->backoff_ms >= 4 * KUBE_BACKOFF_MIN_MS)
		w->rv[0] = '\0';
	kube_tab_heartbeat(w->tab, 0);
	return -1;
}

/* ---- the events watch ----
 * Pod events of the models namespace as one list + watch (field selector
 * involvedObject.kind=Pod; events carry no labels, so the caller keeps
 * those of modelhub's pods). Same protocol as the pod watch: resume from
 * the last resourceVersion, relist on 410 or an ERROR event, back off on
 * errors. */

#define KUBE_EVENTS_SELECTOR "involvedObject.kind%3DPod"

struct ev_round {
	struct cluster_events_watch *w;
	int relist;
	int stop;
	int got;
};

static void handle_event(struct cluster_events_watch *w, struct json_object *e)
{
	struct cluster_event ce;
	const char *pod = jx_get_str(e, "involvedObject", "name", NULL);

	if (!pod)
		return;
	memset(&ce, 0, sizeof ce);
	kube_event_parse(e, &ce);
	w->events++;
	if (w->on_event)
		w->on_event(&ce, pod, w->arg);
}

static int on_ev_event(struct json_object *ev, void *arg)
{
	struct ev_round *r = arg;
	const char *type = jx_get_str(ev, "type", NULL);
	struct json_object *obj = jx_get(ev, "object", NULL);
	const char *rv = jx_get_str(obj, "metadata", "resourceVersion", NULL);

	r->got = 1;
	if (!type)
		return 0;
	if (strcmp(type, "ERROR") == 0) {
		log_info("kube msg=\"events watch error event, relisting\"");
		r->relist = 1;
		return 1;
	}
	if (rv && strlen(rv) < sizeof r->w->rv)
		snprintf(r->w->rv, sizeof r->w->rv, "%s", rv);
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0)
		handle_event(r->w, obj);
	return 0;
}

static int on_ev_tick(void *arg)
{
	struct ev_round *r = arg;

	if (r->w->on_tick && r->w->on_tick(r->w->arg)) {
		r->stop = 1;
		return 1;
	}
	return 0;
}

/* Every Pod event of the namespace, paged; w->rv from the list. 0, -1. */
static int list_events(struct kube_http *h, const char *ns, struct cluster_events_watch *w)
{
	char path[1024], cont[512] = "";
	int n = 0;

	for (;;) {
		struct json_object *o, *items;
		const char *next, *rv;
		long st;

		snprintf(path, sizeof path, "/api/v1/namespaces/%s/events?fieldSelector=%s&limit=%d%s%s", ns,
			 KUBE_EVENTS_SELECTOR, kube_list_page(), cont[0] ? "&continue=" : "", cont);
		o = kube_http_get_json(h, path, &st, KUBE_LIST_TIMEOUT_MS);
		if (!o) {
			log_warn_x("kube ns=%s status=%ld msg=\"events list failed\"", ns, st);
			return -1;
		}
		items = jx_get(o, "items", NULL);
		for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
				   i < json_object_array_length(items); i++, n++)
			handle_event(w, json_object_array_get_idx(items, i));
		rv = jx_get_str(o, "metadata", "resourceVersion", NULL);
		if (rv && strlen(rv) < sizeof w->rv)
			snprintf(w->rv, sizeof w->rv, "%s", rv);
		next = jx_get_str(o, "metadata", "continue", NULL);
		cont[0] = '\0';
		if (next && next[0] && strlen(next) < sizeof cont / 3)
			kube_http_escape(next, cont, sizeof cont);
		json_object_put(o);
		if (!cont[0])
			break;
	}
	w->relists++;
	log_info("kube ns=%s events=%d rv=%s msg=\"events listed\"", ns, n, w->rv);
	return 0;
}

int kube_events_round(struct kube_http *h, const char *ns, struct cluster_events_watch *w)
{
	struct ev_round r;
	char path[1024];
	long st;

	memset(&r, 0, sizeof r);
	r.w = w;
	if (!w->rv[0]) {
		if (list_events(h, ns, w) < 0)
			goto error;
		if (w->on_tick && w->on_tick(w->arg))
			return 1;
	}
	snprintf(path, sizeof path,
		 "/api/v1/namespaces/%s/events?fieldSelector=%s&watch=1&allowWatchBookmarks=true"
		 "&timeoutSeconds=%d&resourceVersion=%s", ns, KUBE_EVENTS_SELECTOR, KUBE_WATCH_TIMEOUT_S, w->rv);
	st = kube_http_watch(h, path, on_ev_event, on_ev_tick, &r, KUBE_WATCH_IDLE_MS);
	if (r.stop)
		return 1;
	if (r.relist || st == 410 || (st >= 200 && st < 300)) {
		if (r.relist || st == 410)
			w->rv[0] = '\0';
		w->backoff_ms = 0;
		return 0;
	}
	if (st > 0)
		log_warn_x("kube status=%ld msg=\"events watch refused\"", st);
	if (r.got)
		w->backoff_ms = 0;
error:
	w->reconnects++;
	w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : KUBE_BACKOFF_MIN_MS;
	if (w->backoff_ms > KUBE_BACKOFF_MAX_MS)
		w->backoff_ms = KUBE_BACKOFF_MAX_MS;
	if (w->backoff_ms >= 4 * KUBE_BACKOFF_MIN_MS)
		w->rv[0] = '\0'; /* as the pod watch: a server that lost its state */
	return -1;
}
