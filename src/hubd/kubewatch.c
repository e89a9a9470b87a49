/*
 * kubewatch.c — the kubewatch child (kubernetes backend only): the one
 * process per replica that watches model pods, publishes their state and
 * records it in Postgres.
 *
 * Runs in: modelhubd child "kubewatch", started by the supervisor when
 * hub.backend = kubernetes. Called by: supervisor.c (kubewatch_main).
 * Owns: the pod table file (the only writer, cluster/kube_watch.h), one
 * kube_http client, a small cache of what it last recorded per pod.
 * Shared state: writes model_instance.node/address/snapshot.pod of rows
 * whose pod it sees (never state: that is the runner's), instance_event
 * rows with source 'k8s' (the pod's Kubernetes events, each once),
 * instance_log of its running pods (tail, every KW_LIVE_LOG_MS), marks
 * active rows of this replica LOST when their pod has been gone for
 * KW_LOST_GRACE_MS without a runner recording the end, ends IDLE rows
 * whose runner died and active rows of replicas that stopped beating
 * (hub_server), and deletes pods whose instance row has ended (its own, or
 * another replica's whose request lease expired or whose replica is gone).
 * On crash: the supervisor restarts it; the table file survives, the first
 * list rebuilds it, runners see a stale heartbeat meanwhile and fall back
 * to one GET per question.
 *
 * DESIGN
 * - Events: on every change of a pod's summary (phase, reason, readiness,
 *   node, deletion) and when it goes, the pod's events are listed with
 *   fieldSelector=involvedObject.name=<pod> and new ones (uid + count) are
 *   inserted. That is a few lists per pod lifetime, driven by the watch —
 *   no periodic polling.
 * - Pod cleanup: pods end in phase Failed/Succeeded or stay after the
 *   runner stopped using them; the reconcile pass (every KW_RECONCILE_MS)
 *   deletes by name those whose row is TERMINATED (or missing), only if the
 *   pod's modelhub/server is this replica or its request's lease expired
 *   (UPSTREAM.md 7.3).
 */
#include "cluster/kube_http.h"
#include "cluster/kube_pod.h"
#include "cluster/kube_watch.h"
#include "db/db.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KW_RECONCILE_MS 3000     /* orphan pods, lost rows, addresses */
#define KW_LOST_GRACE_MS 30000   /* pod gone this long, row still active: LOST */
#define KW_ORPHAN_AGE_MS 30000   /* never delete a pod younger than this for a missing row */
#define KW_CACHE 1024
#define KW_EVENTS_MS 10000
#define KW_IDLE_GRACE_S 60       /* beyond idle_seconds before an IDLE row counts as orphaned */
#define KW_LOG_MAX (4 << 20)
#define KW_DEAD_REPLICA_S 120
#define KW_LIVE_LOG_MS 15000     /* logs of running pods into instance_log (admin view) */
#define KW_LIVE_LOG_LINES 5000    /* hub_server heartbeat older: the replica is gone */

struct seen {
	char name[64];
	char sig[400];
};

struct kw {
	struct hubd_child *c;
	struct kube_conf kc;
	struct kube_http *h;
	struct kube_tab *tab;
	struct kube_watcher w;
	struct seen seen[KW_CACHE];
	int nseen;
	int64_t last_reconcile;
	int64_t last_live_log;
};

static const char SQL_POD[] =
	"UPDATE model_instance SET node = CASE WHEN $3 <> '' THEN $3 ELSE node END, "
	"       address = CASE WHEN $4 <> '' THEN $4 ELSE address END, "
	"       snapshot = coalesce(snapshot, '{}'::jsonb) || jsonb_build_object('pod', $5::jsonb, "
	"                  'pod_state', $6::jsonb) "
	"WHERE id = $1 AND backend = 'kubernetes' AND (name = $2 OR name IS NULL)";

static const char SQL_EVENT[] =
	"INSERT INTO instance_event (instance_id, at, kind, source, detail) "
	"SELECT mi.id, coalesce($3::timestamptz, now()), $4, 'k8s', $5::jsonb "
	"FROM model_instance mi WHERE mi.id = $1 AND mi.name = $2 "
	"  AND NOT EXISTS (SELECT 1 FROM instance_event e WHERE e.instance_id = mi.id "
	"                  AND e.source = 'k8s' AND e.detail->>'uid' = $6 "
	"                  AND e.detail->>'count' = $7)";

/* Column 5: may another replica's ended pod go? Its request is no longer
 * leased (not RUNNING, or the lease expired), or its replica stopped
 * beating (hub_server) for kube.replica_dead_seconds. */
static const char SQL_ROWS[] =
	"SELECT mi.id, mi.state, coalesce(mi.name, ''), coalesce(mi.address, ''), "
	"       coalesce(mi.replica_id, ''), "
	"       coalesce((SELECT w.status <> 'RUNNING' OR w.lease_expires_at < now() "
	"                 FROM work_request w WHERE w.id = mi.current_request_id), true) "
	"       OR NOT EXISTS (SELECT 1 FROM hub_server h WHERE h.replica_id = mi.replica_id "
	"                      AND h.heartbeat_at > now() - make_interval(secs => $2::int)) "
	"FROM model_instance mi WHERE mi.id = ANY ($1::bigint[])";

/* Active rows of replicas that stopped beating: their runners are gone but
 * pods outlive them; end the rows so their pods can be deleted. */
static const char SQL_DEAD_REPLICAS[] =
	"WITH x AS (UPDATE model_instance mi SET state = 'TERMINATED', "
	"    termination_reason = coalesce(termination_reason, 'LOST'), "
	"    termination_detail = coalesce(termination_detail, 'its hub replica stopped'), "
	"    terminated_at = now(), updated_at = now() "
	"  WHERE mi.backend = 'kubernetes' AND mi.state <> 'TERMINATED' "
	"    AND mi.replica_id IS NOT NULL AND mi.replica_id <> $1 "
	"    AND NOT EXISTS (SELECT 1 FROM hub_server h WHERE h.replica_id = mi.replica_id "
	"                    AND h.heartbeat_at > now() - make_interval(secs => $2::int)) "
	"  RETURNING mi.id, mi.replica_id) "
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"SELECT id, 'TERMINATED', jsonb_build_object('reason', 'LOST', 'by', 'kubewatch', "
	"       'replica', replica_id) FROM x RETURNING instance_id";

static const char SQL_ACTIVE[] =
	"SELECT id, coalesce(name, ''), coalesce(address, ''), "
	"       (extract(epoch FROM now() - started_at) * 1000)::bigint "
	"FROM model_instance WHERE backend = 'kubernetes' AND state <> 'TERMINATED' "
	"  AND replica_id = $1";

static const char SQL_ADDRESS[] =
	"UPDATE model_instance SET address = $2 WHERE id = $1 AND state <> 'TERMINATED'";

static const char SQL_LOST[] =
	"UPDATE model_instance SET state = 'TERMINATED', "
	"       termination_reason = coalesce(termination_reason, $3), "
	"       termination_detail = coalesce(termination_detail, $2), "
	"       terminated_at = now(), updated_at = now() "
	"WHERE id = $1 AND state <> 'TERMINATED' RETURNING termination_reason";

static const char SQL_LOST_EVENT[] =
	"INSERT INTO instance_event (instance_id, kind, detail) VALUES ($1, 'TERMINATED', $2::jsonb)";

/* IDLE past the model's idle_seconds + KW_IDLE_GRACE_S: the runner that
 * would have stopped it is gone (pods outlive runners), so end it here; the
 * pod is then deleted by reconcile_pods. Conditional on IDLE, so a runner
 * taking the instance at the same moment wins or loses cleanly. */
static const char SQL_IDLE_ORPHANS[] =
	"WITH x AS (UPDATE model_instance mi SET state = 'TERMINATED', termination_reason = 'IDLE', "
	"    termination_detail = 'idle past the model''s idle_seconds with no runner to stop it', "
	"    terminated_at = now(), updated_at = now() "
	"  FROM model m WHERE m.id = mi.model_id AND mi.backend = 'kubernetes' "
	"    AND mi.replica_id = $1 AND mi.state = 'IDLE' "
	"    AND coalesce(mi.last_used_at, mi.started_at) < "
	"        now() - make_interval(secs => m.idle_seconds + $2::int) RETURNING mi.id) "
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"SELECT id, 'TERMINATED', '{\"reason\":\"IDLE\",\"by\":\"kubewatch\"}'::jsonb FROM x "
	"RETURNING instance_id";

/* Never over the runner's final copy: only while the row is active. */
static const char SQL_LOG_LIVE[] =
	"INSERT INTO instance_log (instance_id, text, updated_at) "
	"SELECT $1::bigint, $2::text, now() WHERE EXISTS (SELECT 1 FROM model_instance "
	"  WHERE id = $1::bigint AND state <> 'TERMINATED') "
	"ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now()";

/* An ended pod's log: kept unless a longer copy (the runner's) is there. */
static const char SQL_LOG_ONCE[] =
	"INSERT INTO instance_log (instance_id, text, updated_at) VALUES ($1, $2, now()) "
	"ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now() "
	"WHERE length(instance_log.text) < length(EXCLUDED.text)";

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

/* Insert the pod's not yet recorded Kubernetes events. */
static void sync_events(struct kw *k, const struct kube_podinfo *p)
{
	struct json_object *o, *items;
	char path[700], sel[200], esc[300], ids[24];
	long st;

	if (!p->instance_id)
		return;
	snprintf(sel, sizeof sel, "involvedObject.name=%s", p->name);
	kube_http_escape(sel, esc, sizeof esc);
	snprintf(path, sizeof path, "/api/v1/namespaces/%s/events?fieldSelector=%s", k->kc.ns, esc);
	o = kube_http_get_json(k->h, path, &st, KW_EVENTS_MS);
	if (!o)
		return;
	snprintf(ids, sizeof ids, "%lld", (long long)p->instance_id);
	items = kube_jget(o, "items", NULL);
	for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
			   i < json_object_array_length(items); i++) {
		struct json_object *e = json_object_array_get_idx(items, i), *d, *cnt;
		const char *uid = kube_jstr(e, "metadata", "uid", NULL);
		const char *at = kube_jstr(e, "lastTimestamp", NULL);
		const char *reason = kube_jstr(e, "reason", NULL);
		char count[16];
		const char *prm[7];
		PGresult *r;

		if (!uid || !reason)
			continue;
		if (!at)
			at = kube_jstr(e, "eventTime", NULL);
		cnt = kube_jget(e, "count", NULL);
		snprintf(count, sizeof count, "%d", cnt ? json_object_get_int(cnt) : 1);
		d = json_object_new_object();
		json_object_object_add(d, "uid", json_object_new_string(uid));
		json_object_object_add(d, "count", json_object_new_string(count));
		json_object_object_add(d, "type", json_object_new_string(
			kube_jstr(e, "type", NULL) ? kube_jstr(e, "type", NULL) : ""));
		json_object_object_add(d, "reason", json_object_new_string(reason));
		json_object_object_add(d, "message", json_object_new_string(
			kube_jstr(e, "message", NULL) ? kube_jstr(e, "message", NULL) : ""));
		json_object_object_add(d, "pod", json_object_new_string(p->name));
		json_object_object_add(d, "component", json_object_new_string(
			kube_jstr(e, "source", "component", NULL) ? kube_jstr(e, "source", "component", NULL) : ""));
		prm[0] = ids;
		prm[1] = p->name;
		prm[2] = at;
		prm[3] = reason;
		prm[4] = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);
		prm[5] = uid;
		prm[6] = count;
		r = db_prep(k->c->db, "kw_event", SQL_EVENT, 7, prm);
		PQclear(r);
		json_object_put(d);
	}
	json_object_put(o);
}

static struct json_object *pod_state_json(const struct kube_podinfo *p)
{
	struct json_object *s = json_object_new_object();

	json_object_object_add(s, "phase", json_object_new_string(p->phase));
	json_object_object_add(s, "state", json_object_new_string(cluster_state_name(p->state)));
	json_object_object_add(s, "reason", json_object_new_string(p->reason));
	json_object_object_add(s, "detail", json_object_new_string(p->detail));
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

static void on_pod(enum kube_ev ev, const struct kube_podinfo *p, struct json_object *pod, void *arg)
{
	struct kw *k = arg;
	struct seen *s = seen_get(k, p->name);
	char sig[400], ids[24];
	struct json_object *ps;
	const char *prm[6];
	PGresult *r;

	snprintf(sig, sizeof sig, "%s|%s|%d|%s|%s|%d|%d|%d", p->phase, p->reason, p->ready, p->node,
		 p->address, p->restarts, p->deleting, ev == KUBE_EV_DELETED);
	if (strcmp(sig, s->sig) == 0 || !p->instance_id)
		return;
	snprintf(s->sig, sizeof s->sig, "%s", sig);
	snprintf(ids, sizeof ids, "%lld", (long long)p->instance_id);
	ps = pod_state_json(p);
	prm[0] = ids;
	prm[1] = p->name;
	prm[2] = p->node;
	prm[3] = p->address;
	prm[4] = json_object_to_json_string_ext(pod, JSON_C_TO_STRING_PLAIN);
	prm[5] = json_object_to_json_string_ext(ps, JSON_C_TO_STRING_PLAIN);
	r = db_prep(k->c->db, "kw_pod", SQL_POD, 6, prm);
	PQclear(r);
	json_object_put(ps);
	sync_events(k, p);
	log_info("kubewatch pod=%s instance=%lld event=%d phase=%s state=%s reason=%s msg=\"pod changed\"",
		 p->name, (long long)p->instance_id, (int)ev, p->phase[0] ? p->phase : "-",
		 cluster_state_name(p->state), p->reason[0] ? p->reason : "-");
}

/* The pod's log into instance_log: once (unless the runner stored it
 * already), or live (replacing the last copy, the tail only). */
static void store_log(struct kw *k, int64_t id, const char *name, int live)
{
	char path[360], ids[24];
	struct buf b = BUF_INIT;
	const char *p[2];
	long st;

	if (live)
		snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/log?tailLines=%d&limitBytes=%d",
			 k->kc.ns, name, KW_LIVE_LOG_LINES, KW_LOG_MAX);
	else
		snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/log?limitBytes=%d", k->kc.ns,
			 name, KW_LOG_MAX);
	st = kube_http_call(k->h, "GET", path, NULL, NULL, &b, 15000);
	if (st == 200 && !b.oom) {
		for (size_t i = 0; i < b.len; i++)
			if (b.data[i] == '\0')
				b.data[i] = '?';
		snprintf(ids, sizeof ids, "%lld", (long long)id);
		p[0] = ids;
		p[1] = buf_cstr(&b);
		PQclear(live ? db_prep(k->c->db, "kw_log_live", SQL_LOG_LIVE, 2, p) :
			       db_prep(k->c->db, "kw_log_once", SQL_LOG_ONCE, 2, p));
	}
	buf_free(&b);
}

static void keep_log(struct kw *k, int64_t id, const char *name)
{
	store_log(k, id, name, 0);
}

static void delete_pod(struct kw *k, const char *name, const char *why)
{
	char path[320];
	long st;

	snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=%ld", k->kc.ns,
		 name, cfg_int("kube.grace_seconds", 10));
	st = kube_http_call(k->h, "DELETE", path, NULL, NULL, NULL, 15000);
	if (st == 200 || st == 202 || st == 404)
		log_info("kubewatch pod=%s status=%ld why=\"%s\" msg=\"orphan pod deleted\"", name, st, why);
}

static void mark_lost(struct kw *k, const char *ids, const char *why, const char *reason)
{
	const char *p[3] = {ids, why, reason};
	PGresult *r = db_prep(k->c->db, "kw_lost", SQL_LOST, 3, p);

	if (r && PQntuples(r) == 1) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "reason", json_object_new_string(PQgetvalue(r, 0, 0)));
		json_object_object_add(o, "by", json_object_new_string("kubewatch"));
		json_object_object_add(o, "detail", json_object_new_string(why));
		p[1] = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		PQclear(db_prep(k->c->db, "kw_lost_event", SQL_LOST_EVENT, 2, p));
		json_object_put(o);
		log_warn_x("kubewatch instance=%s reason=%s msg=\"%s\"", ids, reason, why);
	}
	PQclear(r);
}

/* Pods whose row ended (or vanished): delete the ones we may. */
static void reconcile_pods(struct kw *k)
{
	struct kube_tab_row row;
	struct buf ids = BUF_INIT;
	PGresult *r;
	int64_t now = mh_wall_ms();
	int n = 0;

	buf_addc(&ids, '{');
	for (int i = 0; i < KUBE_TAB_MAX; i++)
		if (kube_tab_get(k->tab, i, &row) == 1 && !row.gone && row.pod.instance_id > 0)
			buf_printf(&ids, "%s%lld", n++ ? "," : "", (long long)row.pod.instance_id);
	buf_addc(&ids, '}');
	if (n == 0 || ids.oom) {
		buf_free(&ids);
		return;
	}
	{
		char dead[16];
		const char *p[2] = {buf_cstr(&ids), dead};
		snprintf(dead, sizeof dead, "%ld", cfg_int("kube.replica_dead_seconds", KW_DEAD_REPLICA_S));
		r = db_prep(k->c->db, "kw_rows", SQL_ROWS, 2, p);
	}
	buf_free(&ids);
	if (!r)
		return;
	for (int i = 0; i < KUBE_TAB_MAX; i++) {
		int found = -1, mine;
		if (kube_tab_get(k->tab, i, &row) != 1 || row.gone || row.pod.instance_id <= 0 ||
		    row.pod.deleting)
			continue;
		for (int j = 0; j < PQntuples(r) && found < 0; j++)
			if (strtoll(PQgetvalue(r, j, 0), NULL, 10) == row.pod.instance_id)
				found = j;
		mine = strcmp(row.pod.server, k->kc.replica) == 0;
		if (found < 0) {
			/* row gone (retention, another database): ours and old enough */
			if (mine && row.pod.created_ms && now - row.pod.created_ms > KW_ORPHAN_AGE_MS)
				delete_pod(k, row.pod.name, "no instance row");
			continue;
		}
		if (strcmp(PQgetvalue(r, found, 1), "TERMINATED") != 0)
			continue;
		if (mine) {
			keep_log(k, row.pod.instance_id, row.pod.name);
			delete_pod(k, row.pod.name, "instance ended");
		} else if (PQgetisnull(r, found, 5) || PQgetvalue(r, found, 5)[0] == 't') {
			keep_log(k, row.pod.instance_id, row.pod.name);
			delete_pod(k, row.pod.name, "instance ended, owner's lease expired");
		}
	}
	PQclear(r);
}

/* Active rows of this replica: addresses the runner overwrote, and pods
 * that went away without anyone recording the end. */
static void reconcile_rows(struct kw *k)
{
	const char *p[1] = {k->c->replica_id ? k->c->replica_id : ""};
	char grace[16];
	const char *pi[2] = {p[0], grace};
	PGresult *r;
	int synced = kube_tab_synced_ms(k->tab) > 0;
	int live_logs = mh_mono_ms() - k->last_live_log >=
			cfg_int("kube.live_log_seconds", KW_LIVE_LOG_MS / 1000) * 1000;

	if (live_logs)
		k->last_live_log = mh_mono_ms();
	snprintf(grace, sizeof grace, "%ld", cfg_int("kube.orphan_grace_seconds", KW_IDLE_GRACE_S));
	r = db_prep(k->c->db, "kw_idle_orphans", SQL_IDLE_ORPHANS, 2, pi);
	for (int i = 0; r && i < PQntuples(r); i++)
		log_warn_x("kubewatch instance=%s msg=\"IDLE with no runner to stop it: ended\"",
			   PQgetvalue(r, i, 0));
	PQclear(r);
	snprintf(grace, sizeof grace, "%ld", cfg_int("kube.replica_dead_seconds", KW_DEAD_REPLICA_S));
	r = db_prep(k->c->db, "kw_dead_replicas", SQL_DEAD_REPLICAS, 2, pi);
	for (int i = 0; r && i < PQntuples(r); i++)
		log_warn_x("kubewatch instance=%s msg=\"its replica stopped beating: ended LOST\"",
			   PQgetvalue(r, i, 0));
	PQclear(r);
	r = db_prep(k->c->db, "kw_active", SQL_ACTIVE, 1, p);
	if (!r)
		return;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *id = PQgetvalue(r, i, 0), *name = PQgetvalue(r, i, 1), *addr = PQgetvalue(r, i, 2);
		int64_t age = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		struct kube_tab_row row;
		int f;

		if (!name[0]) {
			/* its runner died between claiming the row and creating the pod */
			if (age > cfg_int("hub.instance_start_timeout", 300) * 1000 + KW_LOST_GRACE_MS)
				mark_lost(k, id, "never got a pod within the start timeout", "LOST");
			continue;
		}
		f = kube_tab_find(k->tab, name, &row);
		if (f == 1 && !row.gone) {
			if (live_logs && row.pod.state == CLUSTER_READY)
				store_log(k, strtoll(id, NULL, 10), name, 1);
			if (row.pod.address[0] && strcmp(row.pod.address, addr) != 0) {
				const char *pa[2] = {id, row.pod.address};
				PQclear(db_prep(k->c->db, "kw_address", SQL_ADDRESS, 2, pa));
			}
			continue;
		}
		if (f == 1 && row.gone && mh_wall_ms() - row.gone_ms > KW_LOST_GRACE_MS)
			mark_lost(k, id, "pod gone and no runner recorded its end",
				  row.pod.term == CLUSTER_TERM_OOMKILLED ? "OOMKILLED" : "LOST");
		else if (f == 0 && synced && age > KW_LOST_GRACE_MS + KW_ORPHAN_AGE_MS)
			mark_lost(k, id, "pod not found in the cluster", "LOST");
	}
	PQclear(r);
}

static int on_tick(void *arg)
{
	struct kw *k = arg;

	hubd_heartbeat(k->c);
	hubd_take_reload();
	if (hubd_should_stop())
		return 1;
	if (mh_mono_ms() - k->last_reconcile >= KW_RECONCILE_MS) {
		k->last_reconcile = mh_mono_ms();
		reconcile_pods(k);
		reconcile_rows(k);
	}
	return 0;
}

int kubewatch_main(struct hubd_child *c)
{
	struct kw *k = calloc(1, sizeof *k);
	char path[512];
	int rc = 1;

	if (!k)
		return 1;
	k->c = c;
	if (kube_conf_load(&k->kc) < 0)
		goto out;
	snprintf(k->kc.replica, sizeof k->kc.replica, "%s", c->replica_id ? c->replica_id : "");
	kube_tab_path(path, sizeof path);
	k->h = kube_http_new(&k->kc);
	k->tab = kube_tab_open(path, 1);
	if (!k->h || !k->tab)
		goto out;
	k->w.h = k->h;
	k->w.tab = k->tab;
	k->w.port_offset = k->kc.port_offset;
	k->w.on_pod = on_pod;
	k->w.on_tick = on_tick;
	k->w.arg = k;
	log_info("kubewatch server=%s ns=%s table=%s msg=\"started\"", k->kc.server, k->kc.ns, path);
	while (!hubd_should_stop()) {
		int r = kube_watch_round(&k->w);
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
	log_info("kubewatch relists=%llu reconnects=%llu events=%llu msg=\"stopping\"",
		 (unsigned long long)k->w.relists, (unsigned long long)k->w.reconnects,
		 (unsigned long long)k->w.events);
	kube_tab_retire(k->tab);
	rc = 0;
out:
	kube_http_free(k->h);
	kube_tab_close(k->tab);
	explicit_bzero(k->kc.token, sizeof k->kc.token);
	free(k);
	return rc;
}
