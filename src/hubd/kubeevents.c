/*
 * kubeevents.c — the kubeevents child (kubernetes backend only): one
 * events watch per replica, recording the Kubernetes events of modelhub's
 * pods as instance_event rows.
 *
 * Runs in: modelhubd child "kubeevents", started by the supervisor when
 * hub.backend = kubernetes. Called by: supervisor.c (kubeevents_main).
 * Owns: a kubernetes backend (cluster.h) through which it runs the events
 * list + watch (cluster_events_watch), and the events not yet written to
 * the stream (at most KE_PENDING_MAX bytes).
 * Shared state: none in Postgres: each event goes as one JSON line over
 * the supervisor's events stream (hubd_child.events_fd) to the kubewatch
 * child, which inserts the instance_event rows (source 'k8s', each (uid,
 * count) once: several replicas may insert the same event, the statement
 * skips one already there).
 * On crash: the supervisor restarts it; the first list of the next one
 * hands every event the server still keeps again, the dedup keeps one. A
 * line cut short by the crash is ended by the newline the next one writes
 * first, and kubewatch drops it (not JSON).
 *
 * DESIGN
 * - One watch instead of a list per pod change (issue 15): the kubewatch
 *   child used to list a pod's events (fieldSelector=involvedObject.name)
 *   from its watch callback on every change, so a burst of pod changes held
 *   the pod watch. Here events are followed with one stream over the models
 *   namespace (fieldSelector=involvedObject.kind=Pod) in a process of its
 *   own; neither watch waits on the other.
 * - No database connection (issue 15, connections per replica): writing
 *   events is a few inserts a second, which kubewatch does once a second
 *   on its own connection; the stream is non-blocking at both ends, and
 *   while kubewatch is down the socket (kept open by the supervisor) and
 *   this child's pending buffer hold what comes; past KE_PENDING_MAX
 *   events are dropped and counted (they are informational, and the next
 *   list of a restarted child hands them again).
 * - Events carry no labels: an event belongs to modelhub when its pod's
 *   name ends in "-<instance id>" (pods are named <model>-<instance id>)
 *   and that instance row has this pod's name (checked by the INSERT).
 */
#include "cluster/cluster.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define KE_PENDING_MAX (8 << 20) /* bytes of events waiting for kubewatch */

struct ke {
	struct hubd_child *c;
	struct cluster *cl;
	struct cluster_events_watch w;
	struct buf pending; /* JSON lines not yet in the stream */
	uint64_t sent, dropped;
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

/* Write what the stream takes now; the rest waits for the next call. */
static void flush(struct ke *k)
{
	size_t off = 0;

	while (off < k->pending.len && k->c->events_fd >= 0) {
		ssize_t w = send(k->c->events_fd, k->pending.data + off, k->pending.len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("kubeevents msg=\"events stream write failed\"");
			break;
		}
		off += (size_t)w;
	}
	if (off) {
		memmove(k->pending.data, k->pending.data + off, k->pending.len - off);
		k->pending.len -= off;
	}
}

/* One line: {"id","pod","at","kind","uid","count","detail":{...}} — what
 * db_pod_events_add takes, read back by kubewatch (take_events). */
static void on_event(const struct cluster_event *ev, const char *pod, void *arg)
{
	struct ke *k = arg;
	int64_t id = pod_instance(pod);
	struct json_object *d, *line;
	char count[16];
	const char *s;

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
	line = json_object_new_object();
	json_object_object_add(line, "id", json_object_new_int64(id));
	add_str(line, "pod", pod);
	json_object_object_add(line, "at", json_object_new_int64(ev->at_ms));
	add_str(line, "kind", ev->kind);
	add_str(line, "uid", ev->uid);
	json_object_object_add(line, "count", json_object_new_int(ev->count));
	json_object_object_add(line, "detail", d);
	s = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN);
	if (k->pending.len + strlen(s) + 1 > KE_PENDING_MAX) {
		if (k->dropped++ % 1000 == 0)
			log_warn_x("kubeevents dropped=%llu msg=\"kubewatch is not reading events; dropping\"",
				   (unsigned long long)k->dropped);
	} else {
		buf_adds(&k->pending, s);
		buf_addc(&k->pending, '\n');
		k->sent++;
	}
	json_object_put(line);
	flush(k);
}

static int on_tick(void *arg)
{
	struct ke *k = arg;

	hubd_heartbeat(k->c);
	hubd_take_reload();
	flush(k);
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
	buf_addc(&k->pending, '\n'); /* ends a line a crashed predecessor left cut */
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
	flush(k);
	log_info("kubeevents relists=%llu reconnects=%llu events=%llu sent=%llu dropped=%llu "
		 "unsent_bytes=%zu msg=\"stopping\"",
		 (unsigned long long)k->w.relists, (unsigned long long)k->w.reconnects,
		 (unsigned long long)k->w.events, (unsigned long long)k->sent,
		 (unsigned long long)k->dropped, k->pending.len);
	buf_free(&k->pending);
	cluster_free(k->cl);
	free(k);
	return 0;
}
