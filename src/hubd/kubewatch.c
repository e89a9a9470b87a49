/*
 * kubewatch.c — the kubewatch child (kubernetes backend only): the one
 * process per replica that watches model pods, publishes their state and
 * records it in Postgres.
 *
 * Runs in: modelhubd child "kubewatch", started by the supervisor when
 * hub.backend = kubernetes. Called by: supervisor.c (kubewatch_main).
 * Owns: a kubernetes backend (cluster.h) through which it runs the pod
 * watch — which makes it the writer of the backend's pod table — and a
 * small cache of what it last recorded per pod.
 * Shared state: writes model_instance.node/address/snapshot.pod of rows
 * whose pod it sees (never state: that is the runner's), TERMINATED
 * instance_event rows of rows it ends, the 'k8s' instance_event rows of
 * the pods' Kubernetes events that the kubeevents child streams to it, instance_log of the running pods an admin is viewing (tail of at most
 * KW_LIVE_LOG_BYTES, every KW_LIVE_LOG_MS, KW_LIVE_LOG_PER_PASS pods per
 * pass; a pod nobody views is read only when it ends), marks
 * active rows of this replica LOST when their pod has been gone for
 * KW_LOST_GRACE_MS without a runner recording the end, ends IDLE rows
 * whose runner died and active rows of replicas that stopped beating
 * (hub_server), adopts the warm pods other replicas left (handed over at
 * their shutdown, or of a replica that stopped beating: the row becomes
 * this replica's, the pod's modelhub/server annotation follows) and ends
 * them when idle or stopped (no runner owns them), and deletes pods whose
 * instance row has ended (its own, or another replica's whose request
 * lease expired or whose replica is gone).
 * On crash: the supervisor restarts it; the table file survives, the first
 * list rebuilds it; meanwhile runners see a stale heartbeat and take
 * their pods' state as unknown (never dead, never a GET per pod: kube.c),
 * so a frozen kubewatch holds new instances until the supervisor kills it
 * as hung (hub.hung_seconds). Event lines wait in the events stream.
 *
 * DESIGN
 * - Protocol here, persistence there: the backend lists and watches the
 *   pods, publishes them and hands each change to on_pod (cluster_watch);
 *   events, logs and deletes are backend operations too. This file only
 *   decides what to record and which pods to reap; the SQL is db_pod.c's.
 * - Events are not this child's to follow: the kubeevents child watches
 *   them (kubeevents.c), so nothing here does per-pod API work from the
 *   watch callback; on_pod only records the pod's state. kubeevents has no
 *   database connection: its lines come over the supervisor's events
 *   stream and are inserted here, from the tick, at most KW_EVENTS_READ
 *   bytes a tick, KW_EVENTS_BATCH events a statement: the tick runs
 *   inside the pod watch, and a burst of 500 pods makes thousands of
 *   events, which one statement each would make the watch wait for.
 * - Pod cleanup: pods end in phase Failed/Succeeded or stay after the
 *   runner stopped using them; the reconcile pass (every KW_RECONCILE_MS)
 *   deletes by name those whose row is TERMINATED (or missing), only if the
 *   pod's modelhub/server is this replica or its request's lease expired
 *   (UPSTREAM.md 7.3).
 */
#include "cluster/cluster.h"
#include "db/db_pod.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define KW_RECONCILE_MS 3000     /* orphan pods, lost rows, addresses */
#define KW_LOST_GRACE_MS 30000   /* pod gone this long, row still active: LOST */
#define KW_ORPHAN_AGE_MS 30000   /* never delete a pod younger than this for a missing row */
#define KW_CACHE 1024
#define KW_IDLE_GRACE_S 60       /* beyond idle_seconds before an IDLE row counts as orphaned */
#define KW_LOG_MAX (4 << 20)
#define KW_DEAD_REPLICA_S 30     /* hub_server heartbeat older: the replica is gone (as the janitor's hub.replica_stale_seconds) */
#define KW_LIVE_LOG_MS 5000      /* logs of viewed running pods into instance_log */
#define KW_LOG_VIEW_S 60         /* an admin asked for the log this recently: viewing */
#define KW_LIVE_LOG_LINES 2000   /* the tail kept of a running pod's log */
#define KW_LIVE_LOG_BYTES (256 << 10) /* and at most this much of it */
#define KW_LIVE_LOG_PER_PASS 8   /* live log fetches per reconcile pass */
#define KW_EVENTS_READ (1 << 20) /* event lines read from the stream per tick */
#define KW_EVENTS_BATCH 500      /* events inserted by one statement */

struct seen {
	char name[64];
	char sig[400];
};

struct kw {
	struct hubd_child *c;
	struct cluster *cl;
	const char *replica;
	struct cluster_watch w;
	struct seen seen[KW_CACHE];
	int nseen;
	int64_t last_reconcile;
	int64_t last_live_log;
	int live_pending;       /* a live log round is under way */
	int live_pos;           /* its next active row */
	struct buf events_in;   /* the stream's bytes after the last whole line */
	uint64_t events_recorded, events_bad;
};

/* A replica whose hub_server heartbeat is older than this is gone: its
 * warm pods are adopted, its other rows ended. Defaults to the janitor's
 * hub.replica_stale_seconds, which ended them LOST before adoption. */
static int dead_seconds(void)
{
	return (int)cfg_int("kube.replica_dead_seconds", cfg_int("hub.replica_stale_seconds", KW_DEAD_REPLICA_S));
}

/* The pod table as one reconcile pass sees it, sorted by pod name. */
struct snap {
	struct cluster_pod_row *rows;
	int n;
	int64_t synced_ms;
};

static struct seen *seen_get(struct kw *k, const char *name)
{
	for (int i = 0; i < k->nseen; i++)
		if (strcmp(k->seen[i].name, name) == 0)
			return &k->seen[i];
	if (k->nseen == KW_CACHE)
		k->nseen = 0; /* start over: at worst one extra events list per pod */
	memset(&k->seen[k->nseen], 0, sizeof k->seen[0]);
	snprintf(k->seen[k->nseen].name, sizeof k->seen[0].name, "%s", name);
	return &k->seen[k->nseen++];
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static struct json_object *pod_state_json(const struct cluster_pod *p)
{
	struct json_object *s = json_object_new_object();

	add_str(s, "phase", p->phase);
	add_str(s, "state", cluster_state_name(p->state));
	add_str(s, "reason", p->reason);
	add_str(s, "detail", p->detail);
	json_object_object_add(s, "ready", json_object_new_boolean(p->ready));
	json_object_object_add(s, "restarts", json_object_new_int(p->restarts));
	json_object_object_add(s, "exit_code", p->exit_code >= 0 ? json_object_new_int(p->exit_code) : NULL);
	json_object_object_add(s, "termination", cluster_term_name(p->term) ?
				      json_object_new_string(cluster_term_name(p->term)) : NULL);
	json_object_object_add(s, "unschedulable", json_object_new_boolean(p->unschedulable));
	json_object_object_add(s, "image_error", json_object_new_boolean(p->image_error));
	json_object_object_add(s, "deleting", json_object_new_boolean(p->deleting));
	return s;
}

static void on_pod(enum cluster_pod_ev ev, const struct cluster_pod *p, struct json_object *pod,
		   void *arg)
{
	struct kw *k = arg;
	struct seen *s = seen_get(k, p->name);
	char sig[400];
	struct json_object *ps;

	snprintf(sig, sizeof sig, "%s|%s|%d|%s|%s|%d|%d|%d", p->phase, p->reason, p->ready, p->node,
		 p->address, p->restarts, p->deleting, ev == CLUSTER_POD_DELETED);
	if (strcmp(sig, s->sig) == 0 || !p->instance_id)
		return;
	snprintf(s->sig, sizeof s->sig, "%s", sig);
	ps = pod_state_json(p);
	db_pod_record(k->c->db, p->instance_id, p->name, p->node, p->address,
		      json_object_to_json_string_ext(pod, JSON_C_TO_STRING_PLAIN),
		      json_object_to_json_string_ext(ps, JSON_C_TO_STRING_PLAIN));
	json_object_put(ps);
	log_info("kubewatch pod=%s instance=%lld event=%d phase=%s state=%s reason=%s msg=\"pod changed\"",
		 p->name, (long long)p->instance_id, (int)ev, p->phase[0] ? p->phase : "-",
		 cluster_state_name(p->state), p->reason[0] ? p->reason : "-");
}

/* The pod's log into instance_log: once (unless the runner stored it
 * already), or live (replacing the last copy, the tail only). */
static void store_log(struct kw *k, int64_t id, const char *name, int live)
{
	struct buf b = BUF_INIT;

	if (cluster_logs_tail(k->cl, name, &b, live ? KW_LIVE_LOG_BYTES : KW_LOG_MAX,
			      live ? KW_LIVE_LOG_LINES : 0) == 0 &&
	    !b.oom) {
		for (size_t i = 0; i < b.len; i++)
			if (b.data[i] == '\0')
				b.data[i] = '?';
		db_pod_log_store(k->c->db, id, buf_cstr(&b), live);
	}
	buf_free(&b);
}

static void reap_pod(struct kw *k, int64_t id, const char *name, const char *why)
{
	store_log(k, id, name, 0);
	if (cluster_reap(k->cl, name, (int)cfg_int("kube.grace_seconds", 10) * 1000) == 0)
		log_info("kubewatch pod=%s why=\"%s\" msg=\"orphan pod deleted\"", name, why);
}

static void mark_lost(struct kw *k, int64_t id, const char *why, const char *reason)
{
	if (db_pod_end_lost(k->c->db, id, why, reason) == 1)
		log_warn_x("kubewatch instance=%lld reason=%s msg=\"%s\"", (long long)id, reason, why);
}

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cluster_pod_row *)a)->pod.name,
		      ((const struct cluster_pod_row *)b)->pod.name);
}

static const struct cluster_pod_row *snap_find(const struct snap *sn, const char *name)
{
	struct cluster_pod_row key;

	snprintf(key.pod.name, sizeof key.pod.name, "%s", name);
	return sn->n ? bsearch(&key, sn->rows, (size_t)sn->n, sizeof *sn->rows, row_cmp) : NULL;
}

/* The instance rows of the live pods in the table (ids, then the rows). */
static int pod_rows(struct kw *k, const struct snap *sn, struct db_pod_row **rows, int *nrows)
{
	int64_t *ids = calloc((size_t)(sn->n ? sn->n : 1), sizeof *ids);
	int n = 0, rc;

	*rows = NULL;
	*nrows = 0;
	if (!ids)
		return -1;
	for (int i = 0; i < sn->n; i++)
		if (!sn->rows[i].gone && sn->rows[i].pod.instance_id > 0)
			ids[n++] = sn->rows[i].pod.instance_id;
	rc = n ? db_pod_rows(k->c->db, ids, n,
			     dead_seconds(), rows, nrows) : -1;
	free(ids);
	return rc;
}

/* Pods whose row ended (or vanished): delete the ones we may. */
static void reconcile_pods(struct kw *k, const struct snap *sn)
{
	struct db_pod_row *rows;
	int64_t now = mh_wall_ms();
	int nrows;

	if (pod_rows(k, sn, &rows, &nrows) < 0)
		return;
	for (int i = 0; i < sn->n; i++) {
		const struct cluster_pod *p = &sn->rows[i].pod;
		const struct db_pod_row *r = NULL;
		int mine;

		if (sn->rows[i].gone || p->instance_id <= 0 || p->deleting)
			continue;
		for (int j = 0; j < nrows && !r; j++)
			if (rows[j].id == p->instance_id)
				r = &rows[j];
		mine = strcmp(p->server, k->replica) == 0;
		if (!r) {
			/* row gone (retention, another database): ours and old enough */
			if (mine && p->created_ms && now - p->created_ms > KW_ORPHAN_AGE_MS &&
			    cluster_reap(k->cl, p->name, (int)cfg_int("kube.grace_seconds", 10) * 1000) == 0)
				log_info("kubewatch pod=%s why=\"no instance row\" msg=\"orphan pod deleted\"",
					 p->name);
		} else if (r->terminated && mine) {
			reap_pod(k, p->instance_id, p->name, "instance ended");
		} else if (r->terminated && r->reapable) {
			reap_pod(k, p->instance_id, p->name, "instance ended, owner's lease expired");
		}
	}
	free(rows);
}

/* Warm pods other replicas left (handed over at their shutdown, or of a
 * replica that stopped beating) become this replica's: only pods the watch
 * sees ready; check_active then moves their modelhub/server annotation. */
static void adopt(struct kw *k, const struct snap *sn)
{
	struct db_pod_adopted *ad;
	int64_t *ready;
	int n = 0, nad;

	if (sn->synced_ms <= 0 || !(ready = calloc((size_t)(sn->n ? sn->n : 1), sizeof *ready)))
		return;
	for (int i = 0; i < sn->n; i++) {
		const struct cluster_pod *p = &sn->rows[i].pod;
		if (!sn->rows[i].gone && !p->deleting && p->state == CLUSTER_READY && p->instance_id > 0 &&
		    strcmp(p->server, k->replica) != 0)
			ready[n++] = p->instance_id;
	}
	if (db_pod_adopt(k->c->db, k->replica, dead_seconds(),
			 ready, n, &ad, &nad) == 0) {
		for (int i = 0; i < nad; i++)
			log_info("kubewatch instance=%lld pod=%s from=%s msg=\"warm pod adopted\"",
				 (long long)ad[i].id, ad[i].name, ad[i].from[0] ? ad[i].from : "-");
		free(ad);
	}
	free(ready);
}

/* Rows ended here for want of an owner: IDLE ones whose runner died,
 * adopted ones an admin stopped, and active ones of replicas that stopped
 * beating (after adopt() took their warm pods). */
static void end_orphan_rows(struct kw *k)
{
	int64_t *ids;
	int n;

	if (db_pod_end_adopted_stops(k->c->db, k->replica, &ids, &n) == 0) {
		for (int i = 0; i < n; i++)
			log_info("kubewatch instance=%lld msg=\"adopted instance stopped on request\"",
				 (long long)ids[i]);
		free(ids);
	}

	if (db_pod_end_idle_orphans(k->c->db, k->replica,
				    (int)cfg_int("kube.orphan_grace_seconds", KW_IDLE_GRACE_S), &ids, &n) == 0) {
		for (int i = 0; i < n; i++)
			log_warn_x("kubewatch instance=%lld msg=\"IDLE with no runner to stop it: ended\"",
				   (long long)ids[i]);
		free(ids);
	}
	if (db_pod_end_dead_replicas(k->c->db, k->replica,
				     dead_seconds(), &ids,
				     &n) == 0) {
		for (int i = 0; i < n; i++)
			log_warn_x("kubewatch instance=%lld msg=\"its replica stopped beating: ended LOST\"",
				   (long long)ids[i]);
		free(ids);
	}
}

/* One active row of this replica against its pod. 1 when its live log
 * was fetched (live_logs asked for it and the pod is ready), else 0. */
static int check_active(struct kw *k, const struct snap *sn, const struct db_pod_active *a,
			int live_logs)
{
	const struct cluster_pod_row *row;
	int fetched = 0;

	if (!a->name[0]) {
		/* its runner died between claiming the row and creating the pod */
		if (a->age_ms > cfg_int("hub.instance_start_timeout", 300) * 1000 + KW_LOST_GRACE_MS)
			mark_lost(k, a->id, "never got a pod within the start timeout", "LOST");
		return 0;
	}
	row = snap_find(sn, a->name);
	if (row && !row->gone) {
		if (live_logs && row->pod.state == CLUSTER_READY) {
			store_log(k, a->id, a->name, 1);
			fetched = 1;
		}
		if (row->pod.address[0] && strcmp(row->pod.address, a->address) != 0)
			db_pod_set_address(k->c->db, a->id, row->pod.address);
		/* adopted: the pod names its new owner (retried each pass) */
		if (!row->pod.deleting && strcmp(row->pod.server, k->replica) != 0 &&
		    cluster_pod_owner(k->cl, a->name, k->replica) == 0)
			log_info("kubewatch pod=%s from=%s msg=\"owner annotation moved here\"", a->name,
				 row->pod.server[0] ? row->pod.server : "-");
	} else if (row && mh_wall_ms() - row->gone_ms > KW_LOST_GRACE_MS) {
		mark_lost(k, a->id, "pod gone and no runner recorded its end",
			  row->pod.term == CLUSTER_TERM_OOMKILLED ? "OOMKILLED" : "LOST");
	} else if (!row && sn->synced_ms > 0 && a->age_ms > KW_LOST_GRACE_MS + KW_ORPHAN_AGE_MS) {
		mark_lost(k, a->id, "pod not found in the cluster", "LOST");
	}
	return fetched;
}

/* Active rows of this replica: addresses the runner overwrote, and pods
 * that went away without anyone recording the end. */
static void reconcile_rows(struct kw *k, const struct snap *sn)
{
	struct db_pod_active *act;
	long every = cfg_int("kube.live_log_seconds", KW_LIVE_LOG_MS / 1000);
	int n, budget = KW_LIVE_LOG_PER_PASS;

	if (every > 0 && !k->live_pending && mh_mono_ms() - k->last_live_log >= every * 1000) {
		k->last_live_log = mh_mono_ms(); /* a new round over the ready pods */
		k->live_pending = 1;
		k->live_pos = 0;
	}
	adopt(k, sn);
	end_orphan_rows(k);
	if (db_pod_active(k->c->db, k->replica, KW_LOG_VIEW_S, &act, &n) < 0)
		return;
	/* live logs of the pods admins view (db_inst_log_wanted): at most
	 * KW_LIVE_LOG_PER_PASS fetches per pass, the round going on at the next
	 * pass, so the watch is never held for long */
	for (int i = 0; i < n; i++)
		if (check_active(k, sn, &act[i], act[i].log_wanted && k->live_pending && i >= k->live_pos && budget > 0) &&
		    --budget == 0)
			k->live_pos = i + 1;
	if (budget > 0)
		k->live_pending = 0;
	free(act);
}

static void reconcile(struct kw *k)
{
	struct snap sn;

	if (cluster_pods(k->cl, &sn.rows, &sn.n, &sn.synced_ms) < 0)
		return;
	if (sn.n > 1)
		qsort(sn.rows, (size_t)sn.n, sizeof *sn.rows, row_cmp);
	reconcile_pods(k, &sn);
	reconcile_rows(k, &sn);
	free(sn.rows);
}

/* ---- pod events from the kubeevents child ---- */

/* Is line one of kubeevents.c's on_event lines? One cut short by a crash
 * of either child is not (not JSON), and is counted and dropped. */
static int event_line_ok(const char *line)
{
	struct json_object *o = json_tokener_parse(line);
	int ok = o && jx_str(o, "pod") && jx_str(o, "kind") && jx_str(o, "uid") && jx_num(o, "id", 0) > 0 &&
		 json_object_is_type(jx_get(o, "detail", NULL), json_type_object);

	json_object_put(o);
	return ok;
}

/* Insert the batch (a JSON array being built in b) and start a new one. */
static void events_flush(struct kw *k, struct buf *b, int *n)
{
	int rows;

	if (*n == 0)
		return;
	buf_addc(b, ']');
	rows = b->oom ? -1 : db_pod_events_add(k->c->db, buf_cstr(b));
	if (rows > 0)
		k->events_recorded += (uint64_t)rows;
	buf_reset(b);
	*n = 0;
}

/* Read what the stream holds (up to KW_EVENTS_READ bytes) and insert its
 * whole lines, KW_EVENTS_BATCH to a statement; a partial last line waits
 * for the next tick. */
static void take_events(struct kw *k)
{
	struct buf batch = BUF_INIT;
	size_t got = 0, start = 0;
	int n = 0;

	while (k->c->events_fd >= 0 && got < KW_EVENTS_READ) {
		ssize_t r;

		if (buf_reserve(&k->events_in, 65536) < 0)
			break;
		r = recv(k->c->events_fd, k->events_in.data + k->events_in.len, 65536, MSG_DONTWAIT);
		if (r <= 0)
			break;
		k->events_in.len += (size_t)r;
		got += (size_t)r;
	}
	for (size_t i = 0; i < k->events_in.len; i++) {
		const char *line = k->events_in.data + start;

		if (k->events_in.data[i] != '\n')
			continue;
		k->events_in.data[i] = '\0';
		start = i + 1;
		if (!event_line_ok(line)) {
			k->events_bad += line[0] != '\0';
			continue;
		}
		buf_addc(&batch, n++ ? ',' : '[');
		buf_adds(&batch, line);
		if (n == KW_EVENTS_BATCH)
			events_flush(k, &batch, &n);
	}
	events_flush(k, &batch, &n);
	buf_free(&batch);
	if (start) {
		memmove(k->events_in.data, k->events_in.data + start, k->events_in.len - start);
		k->events_in.len -= start;
	}
}

static int on_tick(void *arg)
{
	struct kw *k = arg;

	hubd_heartbeat(k->c);
	hubd_take_reload();
	if (hubd_should_stop())
		return 1;
	take_events(k);
	if (mh_mono_ms() - k->last_reconcile >= KW_RECONCILE_MS) {
		k->last_reconcile = mh_mono_ms();
		reconcile(k);
	}
	return 0;
}

/* Stopping: the adopted warm pods no runner owns go to the replicas that
 * remain (runners hand over their own, and adopted ones they were using). */
static void hand_over_adopted(struct kw *k)
{
	int64_t *ids;
	int n;

	if (db_pod_hand_over_adopted(k->c->db, k->replica, &ids, &n) == 0) {
		for (int i = 0; i < n; i++)
			log_info("kubewatch instance=%lld msg=\"adopted instance handed over to the remaining replicas\"",
				 (long long)ids[i]);
		free(ids);
	}
}

int kubewatch_main(struct hubd_child *c)
{
	struct kw *k = calloc(1, sizeof *k);

	if (!k)
		return 1;
	k->c = c;
	k->replica = c->replica_id ? c->replica_id : "";
	k->cl = cluster_new("kubernetes");
	if (!k->cl) {
		free(k);
		return 1;
	}
	k->w.on_pod = on_pod;
	k->w.on_tick = on_tick;
	k->w.arg = k;
	log_info("kubewatch replica=%s msg=\"started\"", k->replica);
	while (!hubd_should_stop()) {
		int r = cluster_watch(k->cl, &k->w);
		if (r == 1)
			break;
		if (on_tick(k))
			break;
		if (r < 0) {
			log_info("kubewatch backoff_ms=%d reconnects=%llu msg=\"watch reconnecting\"",
				 k->w.backoff_ms, (unsigned long long)k->w.reconnects);
			if (hubd_wait(c, -1, k->w.backoff_ms) < 0)
				break;
		}
	}
	take_events(k);
	hand_over_adopted(k);
	log_info("kubewatch relists=%llu reconnects=%llu events=%llu pod_events=%llu bad_lines=%llu "
		 "msg=\"stopping\"",
		 (unsigned long long)k->w.relists, (unsigned long long)k->w.reconnects,
		 (unsigned long long)k->w.events, (unsigned long long)k->events_recorded,
		 (unsigned long long)k->events_bad);
	buf_free(&k->events_in);
	cluster_free(k->cl); /* retires the pod table: runners see the watcher down at once */
	free(k);
	return 0;
}
