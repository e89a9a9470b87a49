/*
 * kube.c — the kubernetes backend: a model instance is a pod.
 *
 * Runs in: runners (create, get, delete, logs), the monitor/API helpers
 * (events), the autoscaler (nodes, group size and scale, cordon, the
 * delete-machine mark: kube_autoscale.c). Called by: cluster.c dispatch.
 * Owns: a kube_http client, a read-only mapping of the pod table published
 * by the kubewatch child (kube_watch.h), the names of the pods this process
 * created and deleted, and the logs fetched just before a delete.
 * Shared state: the pod table (read only); the pods themselves in the API
 * server (only those this replica owns are deleted).
 *
 * DESIGN
 * - State comes from the table, never from a GET per pod: cluster_get() is
 *   a memory read, so the runner's readiness loop costs the API server
 *   nothing. A pod this process created but the watch has not shown yet is
 *   PENDING for KUBE_UNSEEN_MS; after that, absent from a synced table
 *   means gone — an answer, never an error path (UPSTREAM.md 7.8). While
 *   the watcher is down or relisting the answer is "unknown" (api_error,
 *   the last state kept by the caller), never a GET: at 10,000 pods a GET
 *   per pod every few seconds is what the watch exists to avoid.
 * - Delete is by name only, and only for pods whose modelhub/server
 *   annotation is this replica (7.3). Logs are read first, because a
 *   deleted pod's log is gone with it; cluster_logs() then serves them.
 * - A pod that this process deleted ends STOPPED; any other disappearance
 *   or deletion is FAILED ("pod deleted"), so the runner retries the request
 *   on a fresh instance or fails it — never waits.
 */
#include "cluster/cluster.h"
#include "cluster/kube/kube_autoscale.h"
#include "cluster/kube/kube_http.h"
#include "cluster/kube/kube_nodes.h"
#include "cluster/kube/kube_pod.h"
#include "cluster/kube/kube_watch.h"
#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KUBE_MAX_MINE 1024         /* pods one process created and tracks */
#define KUBE_UNSEEN_MS 20000        /* created, not yet in the table: PENDING */
#define KUBE_WATCHER_STALE_MS 10000 /* table heartbeat older: watcher down */
#define KUBE_CALL_MS 15000          /* default kube.call_timeout_ms */
#define KUBE_DELETE_RETRY_MS 5000   /* transient delete failures retried this long */
#define KUBE_RETRY_BASE_MS 200
#define KUBE_RETRY_CAP_MS 2000
#define KUBE_LOG_MAX (4 << 20)
#define KUBE_DELETE_WAIT_EXTRA_MS 5000
#define KUBE_WRITER_RETRY_MS 1000   /* the pod table could not be mapped for writing */

struct mine {
	char name[64];
	int64_t created_mono;
	int deleted;               /* we sent DELETE */
	struct buf logs;           /* fetched before the delete */
	int has_logs;
};

struct kube {
	struct kube_conf kc;
	struct kube_http *h;
	struct kube_tab *tab;
	int writer;                /* tab is mapped for writing: this process watches */
	struct kube_watcher w;     /* the watch state (writer only) */
	struct kube_scrape *scrape; /* made by the first cluster_scrape() */
	char tab_path[512];
	struct mine mine[KUBE_MAX_MINE];
	int call_ms;              /* kube.call_timeout_ms: one API call's limit */
	unsigned seed;            /* back-off jitter */
};

/* The backend of c, its API client running calls through the caller's
 * loop when it set one (cluster_set_io). */
static struct kube *kube_of(struct cluster *c)
{
	struct kube *k = c->priv;

	kube_http_set_perform(k->h, c->io.perform, c->io.ctx);
	return k;
}

static struct mine *mine_find(struct kube *k, const char *name, int create)
{
	struct mine *slot = NULL;

	for (int i = 0; i < KUBE_MAX_MINE; i++) {
		if (k->mine[i].name[0] && strcmp(k->mine[i].name, name) == 0)
			return &k->mine[i];
		if (!slot && !k->mine[i].name[0])
			slot = &k->mine[i];
	}
	if (!create)
		return NULL;
	if (!slot) {
		/* forget the oldest */
		slot = &k->mine[0];
		for (int i = 1; i < KUBE_MAX_MINE; i++)
			if (k->mine[i].created_mono < slot->created_mono)
				slot = &k->mine[i];
		buf_free(&slot->logs);
	}
	memset(slot, 0, sizeof *slot);
	snprintf(slot->name, sizeof slot->name, "%s", name);
	slot->created_mono = mh_mono_ms();
	return slot;
}

static struct kube_tab *tab(struct kube *k)
{
	if (k->tab && !k->writer && kube_tab_replaced(k->tab)) {
		kube_tab_close(k->tab); /* the watcher made a new file (kube.max_pods changed) */
		k->tab = NULL;
	}
	if (!k->tab)
		k->tab = kube_tab_open(k->tab_path, 0);
	return k->tab;
}

static int watcher_alive(struct kube *k)
{
	return tab(k) && mh_wall_ms() - kube_tab_heartbeat_ms(k->tab) < KUBE_WATCHER_STALE_MS;
}

static void fill(const struct cluster_pod *p, struct cluster_instance *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", p->name);
	snprintf(out->address, sizeof out->address, "%s", p->address);
	snprintf(out->node, sizeof out->node, "%s", p->node);
	out->instance_id = p->instance_id;
	out->state = p->state;
	out->term = p->term;
	out->exit_code = p->exit_code;
	out->started_ms = p->started_ms ? p->started_ms : p->created_ms;
	out->ready_ms = p->state == CLUSTER_READY ? (p->ready_ms ? p->ready_ms : mh_wall_ms()) : 0;
	snprintf(out->detail, sizeof out->detail, "%s", p->detail);
	out->no_capacity = p->unschedulable;
}

/* A pod we know has ended: how. */
static void ended(struct cluster_instance *out, const struct mine *m, const char *why)
{
	out->state = CLUSTER_EXITED;
	if (m && m->deleted) {
		if (out->term == CLUSTER_TERM_NONE || out->term == CLUSTER_TERM_FAILED)
			out->term = CLUSTER_TERM_STOPPED;
		snprintf(out->detail, sizeof out->detail, "pod deleted by modelhub");
	} else if (out->term == CLUSTER_TERM_NONE) {
		out->term = CLUSTER_TERM_FAILED;
		snprintf(out->detail, sizeof out->detail, "%s", why);
	}
}

/* The POST said 409: the pod's name is taken. When it is this instance's
 * pod of this replica (an earlier create was applied though its answer was
 * lost), it is adopted into *p: 1; 0 someone else's; -1 no answer. */
static int own_existing(struct kube *k, const struct cluster_spec *spec, const char *name, struct cluster_pod *p)
{
	char path[320];
	struct json_object *o;
	long st;
	int rc;

	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", k->kc.ns, name);
	o = kube_http_get_json(k->h, path, &st, k->call_ms);
	if (!o)
		return st == 404 ? 0 : -1;
	rc = kube_pod_parse(o, k->kc.port_offset, p) == 0 && p->instance_id == spec->instance_id &&
	     strcmp(p->server, k->kc.replica) == 0 && !jx_get(o, "metadata", "deletionTimestamp", NULL);
	json_object_put(o);
	return rc;
}

/* A refused create: out->detail and retry_after_ms; the cluster.h code. */
static int create_failed(struct kube *k, const struct cluster_spec *spec, long st, const char *body,
			 struct cluster_instance *out)
{
	enum kube_fail f = kube_http_classify(st, body);
	struct json_object *o = body && *body ? json_tokener_parse(body) : NULL;
	const char *msg = o ? jx_str(o, "message") : NULL;

	if (st == KUBE_HTTP_TLS)
		snprintf(out->detail, sizeof out->detail, "pod create: the API server's TLS certificate did not verify");
	else if (st < 0)
		snprintf(out->detail, sizeof out->detail, "pod create: API server unreachable (timeout or connection error)");
	else
		snprintf(out->detail, sizeof out->detail, "pod create: HTTP %ld: %.200s", st,
			 msg ? msg : body ? body : "");
	json_object_put(o);
	out->api_error = f != KUBE_FAIL_FATAL || st < 0 || st == 401 || st == 403; /* not the manifest's fault */
	out->retry_after_ms = kube_http_retry_after_ms(k->h);
	log_warn_x("kube model=%s instance=%lld status=%ld kind=%s retry_after_ms=%lld detail=\"%s\" "
		   "msg=\"pod create failed\"", spec->model_id, (long long)spec->instance_id, st,
		   f == KUBE_FAIL_RETRY ? "transient" : f == KUBE_FAIL_QUOTA ? "quota" : "final",
		   (long long)out->retry_after_ms, out->detail);
	return f == KUBE_FAIL_RETRY ? CLUSTER_ERR_RETRY : f == KUBE_FAIL_QUOTA ? CLUSTER_ERR_QUOTA : -1;
}

static void created(struct kube *k, const struct cluster_spec *spec, const struct cluster_pod *p,
		    struct cluster_instance *out, const char *how)
{
	mine_find(k, p->name, 1);
	fill(p, out);
	out->state = CLUSTER_PENDING;
	out->started_ms = mh_wall_ms();
	log_info("kube instance=%lld model=%s pod=%s ns=%s msg=\"pod %s\"", (long long)spec->instance_id,
		 spec->model_id, p->name, k->kc.ns, how);
}

static int kube_create(struct cluster *c, const struct cluster_spec *spec, struct cluster_instance *out)
{
	struct kube *k = kube_of(c);
	struct kube_pod_opts o;
	struct json_object *pod, *ans = NULL;
	struct cluster_pod p;
	struct buf body = BUF_INIT;
	const char *err = NULL;
	char path[256];
	long st;
	int rc;

	kube_pod_opts_from_config(&o, k->kc.ns);
	pod = kube_pod_manifest(spec, &o, &err);
	if (!pod) {
		log_error_x("kube model=%s instance=%lld error=\"%s\" msg=\"no pod manifest\"",
			    spec->model_id, (long long)spec->instance_id, err ? err : "?");
		snprintf(out->detail, sizeof out->detail, "no pod manifest: %s", err ? err : "?");
		return -1;
	}
	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods", k->kc.ns);
	st = kube_http_call(k->h, "POST", path, NULL,
			    json_object_to_json_string_ext(pod, JSON_C_TO_STRING_PLAIN), &body, k->call_ms);
	if (st == 409 && (rc = own_existing(k, spec, jx_str(jx_get(pod, "metadata", NULL), "name"), &p)) != 0) {
		if (rc > 0)
			created(k, spec, &p, out, "adopted (an earlier create was applied)");
		else
			snprintf(out->detail, sizeof out->detail, "pod create: API server unreachable");
		rc = rc > 0 ? 0 : CLUSTER_ERR_RETRY;
	} else if (st != 201 && st != 200) {
		rc = create_failed(k, spec, st, body.oom ? NULL : buf_cstr(&body), out);
	} else if (ans = json_tokener_parse(buf_cstr(&body)), kube_pod_parse(ans, k->kc.port_offset, &p) < 0) {
		log_error_x("kube model=%s msg=\"pod create answer without a pod\"", spec->model_id);
		snprintf(out->detail, sizeof out->detail, "pod create: answer without a pod");
		rc = CLUSTER_ERR_RETRY;
	} else {
		created(k, spec, &p, out, "created");
		rc = 0;
	}
	json_object_put(pod);
	json_object_put(ans);
	buf_free(&body);
	return rc;
}

static int kube_get(struct cluster *c, const char *name_in, struct cluster_instance *out)
{
	struct kube *k = c->priv;
	char name[64];
	struct mine *m;
	struct cluster_pod_row row;
	int rc;

	/* name may point into out (runners pass ci.name): copy it first */
	snprintf(name, sizeof name, "%s", name_in);
	m = mine_find(k, name, 0);
	rc = tab(k) ? kube_tab_find(k->tab, name, &row) : 0;

	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", name);
	out->exit_code = -1;
	if (rc == 1) {
		fill(&row.pod, out);
		if (row.gone)
			ended(out, m, "pod deleted");
		else if (m && m->deleted && out->state == CLUSTER_EXITED)
			ended(out, m, "");
		return 0;
	}
	if (rc < 0 || !watcher_alive(k) || kube_tab_synced_ms(k->tab) == 0) {
		/* the watch cannot answer now (down, relisting, busy): say nothing
		 * new rather than "dead", and never ask the API server per pod */
		out->state = m && m->deleted ? CLUSTER_EXITED : CLUSTER_PENDING;
		out->api_error = 1;
		snprintf(out->detail, sizeof out->detail, "pod watch not answering");
		return 0; /* unknown is not dead: the caller keeps the instance */
	}
	if (m && mh_mono_ms() - m->created_mono < KUBE_UNSEEN_MS) {
		out->state = CLUSTER_PENDING;
		snprintf(out->detail, sizeof out->detail, "created, not yet seen by the watch");
		return 0;
	}
	/* the watch has listed every model pod since: this one is not there */
	ended(out, m, "pod not found");
	return m ? 0 : 1;
}

/* Log text of a pod (its last tail_lines lines when > 0), the tail when
 * over max. 0, 1 no such pod, -1. */
static int fetch_logs(struct kube *k, const char *name, struct buf *out, size_t max, int tail_lines)
{
	char path[360], tail[32] = "";
	struct buf b = BUF_INIT;
	long st;

	if (tail_lines > 0)
		snprintf(tail, sizeof tail, "tailLines=%d&", tail_lines);
	/* the server bounds the answer: a live tail never moves megabytes */
	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/log?%slimitBytes=%zu", k->kc.ns, name,
		 tail, max < KUBE_LOG_MAX ? max : (size_t)KUBE_LOG_MAX);
	st = kube_http_call(k->h, "GET", path, NULL, NULL, &b, k->call_ms);
	if (st == 404 || st == 400) {
		buf_free(&b);
		return 1;
	}
	if (st != 200 || b.oom) {
		buf_free(&b);
		return -1;
	}
	if (b.len > max)
		buf_add(out, b.data + (b.len - max), max);
	else if (b.len)
		buf_add(out, b.data, b.len);
	buf_free(&b);
	return out->oom ? -1 : 0;
}

/* DELETE path, retrying transient failures (429, 5xx, resets) with
 * jittered back-off for up to KUBE_DELETE_RETRY_MS; a pod left behind by a
 * longer outage is the kubewatch reconcile's orphan. The last status. */
static long delete_call(struct cluster *c, struct kube *k, const char *path)
{
	int64_t until = mh_mono_ms() + KUBE_DELETE_RETRY_MS;
	long st;

	for (int n = 1;; n++) {
		int64_t wait;
		st = kube_http_call(k->h, "DELETE", path, NULL, NULL, NULL, k->call_ms);
		if (kube_http_classify(st, NULL) != KUBE_FAIL_RETRY)
			return st;
		wait = mh_backoff_ms(n, KUBE_RETRY_BASE_MS, KUBE_RETRY_CAP_MS, kube_http_retry_after_ms(k->h),
				     &k->seed);
		if (mh_mono_ms() + wait > until)
			return st;
		log_warn_x("kube path=\"%s\" status=%ld attempt=%d wait_ms=%lld msg=\"pod delete retried\"", path,
			   st, n, (long long)wait);
		cluster_sleep(c, (int)wait);
	}
}

static int kube_remove(struct cluster *c, const char *name_in, int grace_ms)
{
	struct kube *k = kube_of(c);
	struct mine *m;
	struct cluster_pod_row row;
	char path[320], name[64];
	int64_t until;
	long st;

	/* the calls below may let the caller's other work run (cluster_set_io):
	 * keep the name, find our record again after each */
	snprintf(name, sizeof name, "%s", name_in);
	if (tab(k) && kube_tab_find(k->tab, name, &row) == 1 && row.pod.server[0] &&
	    strcmp(row.pod.server, k->kc.replica) != 0) {
		log_warn_x("kube pod=%s owner=%s msg=\"not deleting another replica's pod\"", name,
			   row.pod.server);
		return -1;
	}
	m = mine_find(k, name, 1);
	if (!m->has_logs) {
		struct buf logs = BUF_INIT;
		int got = fetch_logs(k, name, &logs, KUBE_LOG_MAX, 0) == 0;
		m = mine_find(k, name, 1);
		buf_free(&m->logs);
		m->logs = logs;
		m->has_logs = got;
	}
	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=%d", k->kc.ns,
		 name, grace_ms / 1000);
	st = delete_call(c, k, path);
	m = mine_find(k, name, 1);
	if (st == 404) {
		m->deleted = 1;
		return 0;
	}
	if (st != 200 && st != 202) {
		log_error_x("kube pod=%s status=%ld msg=\"pod delete failed\"", name, st);
		return -1;
	}
	m->deleted = 1;
	log_info("kube pod=%s grace_ms=%d msg=\"pod deleted\"", name, grace_ms);
	/* wait for the watch to see it go, so a following get() is final */
	until = mh_mono_ms() + grace_ms + KUBE_DELETE_WAIT_EXTRA_MS;
	while (watcher_alive(k) && mh_mono_ms() < until) {
		if (kube_tab_find(k->tab, name, &row) == 1 && row.gone)
			break;
		cluster_sleep(c, 100);
	}
	return 0;
}

static int kube_logs(struct cluster *c, const char *name, struct buf *out, size_t max_bytes,
		     int tail_lines)
{
	struct kube *k = kube_of(c);
	struct mine *m = mine_find(k, name, 0);
	size_t from = out->len;

	if (m && m->has_logs) {
		size_t len = m->logs.len;
		if (len > max_bytes)
			buf_add(out, m->logs.data + (len - max_bytes), max_bytes);
		else if (len)
			buf_add(out, m->logs.data, len);
		if (tail_lines > 0 && !out->oom)
			buf_keep_tail_lines(out, from, tail_lines);
		return out->oom ? -1 : 0;
	}
	return fetch_logs(k, name, out, max_bytes, tail_lines);
}

static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

/* One Event object (core/v1) into ce. */
void kube_event_parse(struct json_object *e, struct cluster_event *ce)
{
	const char *t = jx_get_str(e, "lastTimestamp", NULL);
	struct json_object *cnt = jx_get(e, "count", NULL);

	if (!t)
		t = jx_get_str(e, "eventTime", NULL);
	if (!t)
		t = jx_get_str(e, "metadata", "creationTimestamp", NULL);
	ce->at_ms = kube_time_ms(t);
	copy_str(ce->kind, sizeof ce->kind, jx_get_str(e, "reason", NULL));
	copy_str(ce->message, sizeof ce->message, jx_get_str(e, "message", NULL));
	copy_str(ce->uid, sizeof ce->uid, jx_get_str(e, "metadata", "uid", NULL));
	ce->count = cnt ? json_object_get_int(cnt) : 1;
	copy_str(ce->type, sizeof ce->type, jx_get_str(e, "type", NULL));
	copy_str(ce->component, sizeof ce->component, jx_get_str(e, "source", "component", NULL));
}

static int kube_events(struct cluster *c, const char *name, struct cluster_event **out, int *n)
{
	struct kube *k = c->priv;
	struct json_object *o, *items;
	char path[700], sel[200], esc[300];
	long st;

	snprintf(sel, sizeof sel, "involvedObject.name=%s", name);
	kube_http_escape(sel, esc, sizeof esc);
	snprintf(path, sizeof path, "/api/v1/namespaces/%s/events?fieldSelector=%s", k->kc.ns, esc);
	o = kube_http_get_json(k->h, path, &st, k->call_ms);
	if (!o)
		return -1;
	items = jx_get(o, "items", NULL);
	if (items && json_object_is_type(items, json_type_array) && json_object_array_length(items)) {
		size_t cnt = json_object_array_length(items);
		*out = calloc(cnt, sizeof **out);
		if (!*out) {
			json_object_put(o);
			return -1;
		}
		for (size_t i = 0; i < cnt; i++)
			kube_event_parse(json_object_array_get_idx(items, i), &(*out)[(*n)++]);
	}
	json_object_put(o);
	return 0;
}

static int kube_events_watch_op(struct cluster *c, struct cluster_events_watch *w)
{
	struct kube *k = c->priv;

	return kube_events_round(k->h, k->kc.ns, w);
}

/* The first call makes this process the pod table's writer (a reader
 * mapping opened before is replaced). */
static int kube_watch_op(struct cluster *c, struct cluster_watch *cw)
{
	struct kube *k = c->priv;
	int rc;

	if (!k->writer) {
		kube_tab_close(k->tab);
		k->tab = kube_tab_open(k->tab_path, 1);
		if (!k->tab) {
			cw->backoff_ms = KUBE_WRITER_RETRY_MS;
			return -1;
		}
		k->writer = 1;
		k->w.h = k->h;
		k->w.tab = k->tab;
		k->w.port_offset = k->kc.port_offset;
		log_info("kube server=%s ns=%s table=%s msg=\"watching pods\"", k->kc.server, k->kc.ns,
			 k->tab_path);
	}
	k->w.on_pod = cw->on_pod;
	k->w.on_tick = cw->on_tick;
	k->w.arg = cw->arg;
	rc = kube_watch_round(&k->w);
	cw->backoff_ms = k->w.backoff_ms;
	cw->relists = k->w.relists;
	cw->reconnects = k->w.reconnects;
	cw->events = k->w.events;
	return rc;
}

static int kube_pods(struct cluster *c, struct cluster_pod_row **out, int *n, int64_t *synced_ms)
{
	struct kube *k = c->priv;
	struct cluster_pod_row row;
	int cap = 0;

	if (!tab(k))
		return 0;
	*synced_ms = kube_tab_synced_ms(k->tab);
	for (int i = 0; i < kube_tab_count(k->tab); i++) {
		if (kube_tab_get(k->tab, i, &row) != 1)
			continue;
		if (*n == cap) {
			int nc = cap ? cap * 2 : 64;
			struct cluster_pod_row *x = realloc(*out, (size_t)nc * sizeof **out);
			if (!x) {
				free(*out);
				*out = NULL;
				*n = 0;
				return -1;
			}
			*out = x;
			cap = nc;
		}
		(*out)[(*n)++] = row;
	}
	return 0;
}

static int kube_reap(struct cluster *c, const char *name, int grace_ms)
{
	struct kube *k = c->priv;
	char path[320];
	long st;

	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=%d", k->kc.ns,
		 name, grace_ms / 1000);
	st = kube_http_call(k->h, "DELETE", path, NULL, NULL, NULL, k->call_ms);
	if (st == 200 || st == 202 || st == 404)
		return 0;
	log_warn_x("kube pod=%s status=%ld msg=\"pod delete failed\"", name, st);
	return -1;
}

static int kube_scrape_op(struct cluster *c, struct cluster_scrape *s)
{
	struct kube *k = c->priv;

	if (!k->scrape && !(k->scrape = kube_scrape_new(k->h)))
		return -1;
	return kube_scrape_run(k->scrape, s,
			       watcher_alive(k) && kube_tab_synced_ms(k->tab) ? k->tab : NULL);
}

static int kube_node_list(struct cluster *c, struct cluster_node_info **out, int *n)
{
	return kube_as_nodes(((struct kube *)c->priv)->h, out, n);
}

static int kube_group_size(struct cluster *c, const char *ns, const char *name, struct cluster_group_size *out)
{
	return kube_as_group_size(((struct kube *)c->priv)->h, ns, name, out);
}

static int kube_group_scale(struct cluster *c, const char *ns, const char *name, int from, int to)
{
	int rc = kube_as_group_scale(((struct kube *)c->priv)->h, ns, name, from, to);

	return rc == KUBE_AS_CONFLICT ? CLUSTER_SCALE_CONFLICT : rc;
}

static int kube_node_cordon(struct cluster *c, const char *node, int on)
{
	return kube_as_cordon(((struct kube *)c->priv)->h, node, on);
}

static int kube_machine_mark(struct cluster *c, const char *ns, const char *machine)
{
	return kube_as_mark_machine(((struct kube *)c->priv)->h, ns, machine);
}

static int kube_pod_no_evict(struct cluster *c, const char *pod, int on)
{
	struct kube *k = c->priv;

	return kube_as_pod_no_evict(k->h, k->kc.ns, pod, on);
}

/* Merge patch of the pod's modelhub/server annotation (json-c quotes the
 * replica id). */
static int kube_pod_owner(struct cluster *c, const char *pod, const char *replica)
{
	struct kube *k = c->priv;
	struct json_object *o = json_object_new_object(), *md = json_object_new_object(),
			   *an = json_object_new_object();
	char path[320];
	long st;

	json_object_object_add(an, "modelhub/server", json_object_new_string(replica));
	json_object_object_add(md, "annotations", an);
	json_object_object_add(o, "metadata", md);
	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", k->kc.ns, pod);
	st = kube_http_call(k->h, "PATCH", path, "application/merge-patch+json",
			    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), NULL, k->call_ms);
	json_object_put(o);
	if (st != 200) {
		log_warn_x("kube pod=%s status=%ld msg=\"owner annotation not patched\"", pod, st);
		return -1;
	}
	return 0;
}

static int kube_engine_status(struct cluster *c, struct buf *out)
{
	return kube_as_engine_status(((struct kube *)c->priv)->h, out);
}

static void kube_free(struct cluster *c)
{
	struct kube *k = c->priv;

	for (int i = 0; i < KUBE_MAX_MINE; i++)
		buf_free(&k->mine[i].logs);
	kube_scrape_free(k->scrape);
	if (k->writer)
		kube_tab_retire(k->tab);
	kube_http_free(k->h);
	kube_tab_close(k->tab);
	explicit_bzero(k->kc.token, sizeof k->kc.token);
	free(k);
	free(c);
}

static const struct cluster_ops kube_ops = {
	.name = "kubernetes",
	.create = kube_create,
	.get = kube_get,
	.remove = kube_remove,
	.logs = kube_logs,
	.events = kube_events,
	.watch = kube_watch_op,
	.events_watch = kube_events_watch_op,
	.pods = kube_pods,
	.reap = kube_reap,
	.scrape = kube_scrape_op,
	.node_list = kube_node_list,
	.group_size = kube_group_size,
	.group_scale = kube_group_scale,
	.node_cordon = kube_node_cordon,
	.machine_mark = kube_machine_mark,
	.pod_no_evict = kube_pod_no_evict,
	.pod_owner = kube_pod_owner,
	.engine_status = kube_engine_status,
	.free = kube_free,
};

struct cluster *cluster_kube_new(void)
{
	struct cluster *c = calloc(1, sizeof *c);
	struct kube *k = calloc(1, sizeof *k);

	if (!c || !k || kube_conf_load(&k->kc) < 0 || !(k->h = kube_http_new(&k->kc))) {
		if (k)
			explicit_bzero(k->kc.token, sizeof k->kc.token);
		free(c);
		free(k);
		return NULL;
	}
	kube_tab_path(k->tab_path, sizeof k->tab_path);
	k->call_ms = (int)cfg_int("kube.call_timeout_ms", KUBE_CALL_MS);
	k->seed = (unsigned)getpid() ^ (unsigned)mh_mono_ms();
	c->ops = &kube_ops;
	c->priv = k;
	return c;
}
