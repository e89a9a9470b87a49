/*
 * kubeevents.c — the kubeevents child (kubernetes backend only): one
 * events watch per replica, recording the Kubernetes events of modelhub's
 * pods as instance_event rows.
 *
 * Runs in: modelhubd child "kubeevents", started by the supervisor when
 * hub.backend = kubernetes. Called by: supervisor.c (kubeevents_main).
 * Owns: a kubernetes backend (cluster.h) through which it runs the events
 * list + watch (cluster_events_watch), and its database connection.
 * Shared state: inserts instance_event rows with source 'k8s', each
 * (uid, count) once (db_pod_event_add; several replicas may insert the
 * same event: the statement skips one already there).
 * On crash: the supervisor restarts it; the first list of the next one
 * hands every event the server still keeps again, the dedup keeps one.
 *
 * DESIGN
 * - One watch instead of a list per pod change (issue 15): the kubewatch
 *   child used to list a pod's events (fieldSelector=involvedObject.name)
 *   from its watch callback on every change, so a burst of pod changes held
 *   the pod watch. Here events are followed with one stream over the models
 *   namespace (fieldSelector=involvedObject.kind=Pod) in a process of its
 *   own; neither watch waits on the other.
 * - Events carry no labels: an event belongs to modelhub when its pod's
 *   name ends in "-<instance id>" (pods are named <model>-<instance id>)
 *   and that instance row has this pod's name (checked by the INSERT).
 */
#include "cluster/cluster.h"
#include "db/db_pod.h"
#include "hubd/hubd.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ke {
	struct hubd_child *c;
	struct cluster *cl;
	struct cluster_events_watch w;
	uint64_t recorded;
};

/* The instance id a model pod's name ends with ("<model>-<id>"), 0 if none. */
static int64_t pod_instance(const char *pod)
{
	const char *dash = strrchr(pod, '-');
	char *end;
	long long id;

	if (!dash || dash == pod || !dash[1])
		return 0;
	id = strtoll(dash + 1, &end, 10);
	return *end == '\0' && id > 0 ? id : 0;
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static void on_event(const struct cluster_event *ev, const char *pod, void *arg)
{
	struct ke *k = arg;
	int64_t id = pod_instance(pod);
	struct json_object *d;
	char count[16];

	if (!id || !ev->uid[0] || !ev->kind[0])
		return;
	snprintf(count, sizeof count, "%d", ev->count);
	d = json_object_new_object();
	add_str(d, "uid", ev->uid);
	add_str(d, "count", count);
	add_str(d, "type", ev->type);
	add_str(d, "reason", ev->kind);
	add_str(d, "message", ev->message);
	add_str(d, "pod", pod);
	add_str(d, "component", ev->component);
	if (db_pod_event_add(k->c->db, id, pod, ev->at_ms, ev->kind,
			     json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN), ev->uid, ev->count) == 0)
		k->recorded++;
	json_object_put(d);
}

static int on_tick(void *arg)
{
	struct ke *k = arg;

	hubd_heartbeat(k->c);
	hubd_take_reload();
	return hubd_should_stop();
}

int kubeevents_main(struct hubd_child *c)
{
	struct ke *k = calloc(1, sizeof *k);

	if (!k)
		return 1;
	k->c = c;
	k->cl = cluster_new("kubernetes");
	if (!k->cl) {
		free(k);
		return 1;
	}
	k->w.on_event = on_event;
	k->w.on_tick = on_tick;
	k->w.arg = k;
	log_info("kubeevents msg=\"started\"");
	while (!hubd_should_stop()) {
		int r = cluster_events_watch(k->cl, &k->w);
		if (r == 1 || on_tick(k))
			break;
		if (r < 0) {
			log_info("kubeevents backoff_ms=%d reconnects=%llu msg=\"events watch reconnecting\"",
				 k->w.backoff_ms, (unsigned long long)k->w.reconnects);
			if (hubd_wait(c, -1, k->w.backoff_ms) < 0)
				break;
		}
	}
	log_info("kubeevents relists=%llu reconnects=%llu events=%llu recorded=%llu msg=\"stopping\"",
		 (unsigned long long)k->w.relists, (unsigned long long)k->w.reconnects,
		 (unsigned long long)k->w.events, (unsigned long long)k->recorded);
	cluster_free(k->cl);
	free(k);
	return 0;
}
