/*
 * autoscaler.c — the autoscaler child of modelhubd: grows and shrinks the
 * node groups of the kubernetes backend for the model pods (DESIGN.md §7).
 *
 * Runs in: modelhubd, one child on the leader replica only (role flag
 * SUP_LEADER_ONLY: the janitor's leadership), kubernetes backend with
 * autoscale.groups configured.
 * Called by: the supervisor's role table (autoscaler_main).
 * Owns: a cluster handle, the loaded node groups, per-node idle clocks and
 * the last decision per subject (memory only: a new leader starts its clocks
 * afresh, which only delays a scale-down).
 * Shared state: reads the pod table published by the kubewatch child
 * (cluster_pods), model and model_instance rows; writes autoscaler_decision,
 * autoscaler_status, autoscaler_pod, autoscaler_node (db_autoscale.h).
 * Fencing: a pass runs under the hub lease token of that moment
 * (hubd_leader_token()); every table write carries it (DB_LEASE_FENCE) and
 * every cluster write is preceded by a check that the lease is still held
 * with it (db_as_fence_ok), so a leader frozen past its lease changes
 * nothing when it wakes; its successor reads the group sizes it left.
 * On crash: restarted by the supervisor; a cordon it left is continued
 * from autoscaler_node; a scale it sent twice is refused by the API server
 * (compare-and-set on the size), so it is never applied twice.
 *
 * DESIGN
 * One pass every autoscale.period_seconds: read (nodes, the pod table, group
 * sizes, model requests, busy instances), plan (autoscale/plan.c, pure),
 * act, store the snapshot. Mode per group:
 * - clusterapi: modelhub owns the MachineDeployment. Scale-up sets
 *   spec.replicas from the size just read to size + add (never past max);
 *   scale-down of a node is three passes apart at least: cordon (and
 *   remember it), then, still empty, mark its Machine delete-machine and set
 *   the size to size - 1 (one node per group per pass). A node we cordoned
 *   for removal that gets a model pod again is uncordoned.
 * - external: cluster-autoscaler or Karpenter owns the nodes; nothing is
 *   written to nodes or machines. The engine's word on each pending pod
 *   (its events) becomes the pod's verdict.
 * Verdicts per pending pod go to autoscaler_pod, where the runner reads them:
 * provisioning extends its start deadline (to hub.provision_timeout),
 * no_capacity fails the request NO_CAPACITY at once.
 */
#include "autoscale/as_config.h"
#include "autoscale/plan.h"
#include "cluster/cluster.h"
#include "db/db_autoscale.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AS_MAX_CLOCKS 512
#define AS_MAX_LAST 1024
#define AS_POD_KEEP_S 60.0 /* a verdict not refreshed this long: its pod is gone or placed */

struct clock {
	char node[64];
	int64_t last_model_ms;    /* last pass it had a model pod */
	int64_t last_busy_ms;     /* last pass it had a busy one */
};

struct last {
	char subject[160];
	char what[256];
};

struct model_req {
	char id[72];
	int cpu_m, mem_mib;
};

struct as_child {
	struct hubd_child *hc;
	struct cluster *cl;
	struct as_config cfg;
	const char *replica;
	struct clock clocks[AS_MAX_CLOCKS];
	int nclocks;
	struct last last[AS_MAX_LAST];
	int nlast;
	int64_t last_up_ms[AS_MAX_GROUPS];
	int engine_status_off;           /* the status ConfigMap could not be read: stop asking */
	int64_t token;                   /* hub lease token this pass runs under (0: not leading) */
};

/* One pass's inputs and plan. */
struct pass {
	struct cluster_node_info *ni;
	int nni;
	struct cluster_pod_row *rows;
	int nrows;
	struct model_req *models;
	int nmodels;
	struct buf busy;                 /* names of busy pods, one per line */
	struct buf idle;                 /* names of idle (warm, waiting) pods */
	struct cluster_group_size size[AS_MAX_GROUPS];
	int registered[AS_MAX_GROUPS];   /* nodes of the group that exist */
	struct as_group groups[AS_MAX_GROUPS];
	struct as_node *nodes;           /* [nni] */
	char (*node_kv)[CLUSTER_NODE_MAX_KV];
	struct as_kv *labels;            /* [nni * CLUSTER_NODE_MAX_KV] */
	struct as_taint *taints;
	int *pending;                    /* row index of each pending pod */
	struct as_pod *pods;
	int npods;
	int add[AS_MAX_GROUPS];
	struct as_pod_result *pres;
	struct as_node_result *nres;
	struct json_object *snap_pods;   /* pending pods in the snapshot */
};

/* ---- decisions ------------------------------------------------------------ */

/* Store a decision unless the same subject's last one said the same. */
static void decide(struct as_child *a, const char *mode, const char *action, const char *group, const char *node,
		   const char *pod, const char *model, int count, const char *reason)
{
	char subject[160], what[256];
	struct db_as_decision d = {a->replica, mode, action, group, node, pod, model, count, reason, NULL};
	int i;

	snprintf(subject, sizeof subject, "%s|%s|%s", group ? group : "", node ? node : "", pod ? pod : "");
	snprintf(what, sizeof what, "%s|%d|%s", action, count, reason);
	for (i = 0; i < a->nlast && strcmp(a->last[i].subject, subject) != 0; i++)
		;
	if (i < a->nlast && strcmp(a->last[i].what, what) == 0)
		return;
	if (i == a->nlast) {
		if (a->nlast == AS_MAX_LAST)
			a->nlast = 0; /* forget all: at worst a decision is stored again */
		i = a->nlast++;
		snprintf(a->last[i].subject, sizeof a->last[i].subject, "%s", subject);
	}
	snprintf(a->last[i].what, sizeof a->last[i].what, "%s", what);
	log_info("autoscaler action=%s group=%s node=%s pod=%s count=%d reason=\"%s\"", action, group ? group : "-",
		 node ? node : "-", pod ? pod : "-", count, reason);
	if (db_as_decision_add(a->hc->db, a->token, &d) < 0)
		a->last[i].what[0] = '\0'; /* not stored: try again next pass */
}

/* ---- reading -------------------------------------------------------------- */

static int load_models(struct as_child *a, struct pass *p)
{
	struct buf b = {0};
	char *line, *save = NULL;
	int cap = 0;

	if (db_as_model_requests(a->hc->db, &b) < 0 || db_as_busy_pods(a->hc->db, &p->busy) < 0 ||
	    db_as_idle_pods(a->hc->db, &p->idle) < 0) {
		buf_free(&b);
		return -1;
	}
	for (line = b.data ? strtok_r(b.data, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		struct model_req m;

		if (sscanf(line, "%71s %d %d", m.id, &m.cpu_m, &m.mem_mib) != 3)
			continue;
		if (p->nmodels == cap) {
			struct model_req *x = realloc(p->models, sizeof *x * (size_t)(cap = cap ? cap * 2 : 32));
			if (!x)
				break;
			p->models = x;
		}
		p->models[p->nmodels++] = m;
	}
	buf_free(&b);
	return 0;
}

static const struct model_req *model_of(const struct pass *p, const char *id)
{
	for (int i = 0; i < p->nmodels; i++)
		if (strcmp(p->models[i].id, id) == 0)
			return &p->models[i];
	return NULL;
}

/* Is pod one of the lines of names? */
static int listed(const struct buf *names, const char *pod)
{
	size_t n = strlen(pod);

	for (const char *s = names->data; s && (s = strstr(s, pod)); s += n)
		if ((s == names->data || s[-1] == '\n') && s[n] == '\n')
			return 1;
	return 0;
}

static int is_busy(const struct pass *p, const char *pod)
{
	return listed(&p->busy, pod);
}

static int group_of_node(const struct as_child *a, const struct cluster_node_info *ni)
{
	for (int g = 0; g < a->cfg.ngroups; g++)
		for (int i = 0; i < ni->nlabels; i++)
			if (strcmp(ni->labels[i][0], a->cfg.groups[g].match_key) == 0 &&
			    strcmp(ni->labels[i][1], a->cfg.groups[g].match_value) == 0)
				return g;
	return -1;
}

static int read_groups(struct as_child *a, struct pass *p)
{
	for (int g = 0; g < a->cfg.ngroups; g++) {
		const struct as_group_cfg *gc = &a->cfg.groups[g];

		p->groups[g] = gc->g;
		if (gc->mode == AS_MODE_CLUSTERAPI &&
		    cluster_group_size(a->cl, gc->md_ns, gc->md_name, &p->size[g]) < 0)
			return -1;
	}
	for (int i = 0; i < p->nni; i++) {
		int g = group_of_node(a, &p->ni[i]);

		if (g >= 0)
			p->registered[g]++;
	}
	for (int g = 0; g < a->cfg.ngroups; g++) {
		struct as_group *x = &p->groups[g];

		if (a->cfg.groups[g].mode == AS_MODE_CLUSTERAPI) {
			x->current = p->size[g].replicas;
			x->provisioning = p->size[g].replicas > p->registered[g] ? p->size[g].replicas - p->registered[g] : 0;
		} else {
			/* the engine's group: never scaled by us (room 0), shape still checked */
			x->current = x->max = x->min = p->registered[g];
			x->provisioning = 0;
		}
		x->cooldown_left_s = a->cfg.groups[g].cooldown_s - (double)(mh_mono_ms() - a->last_up_ms[g]) / 1000.0;
		if (!a->last_up_ms[g])
			x->cooldown_left_s = 0;
	}
	return 0;
}

static struct clock *clock_of(struct as_child *a, const char *node, int64_t now)
{
	for (int i = 0; i < a->nclocks; i++)
		if (strcmp(a->clocks[i].node, node) == 0)
			return &a->clocks[i];
	if (a->nclocks == AS_MAX_CLOCKS)
		a->nclocks = 0; /* forget all: idle clocks restart, removals only wait longer */
	snprintf(a->clocks[a->nclocks].node, sizeof a->clocks[0].node, "%s", node);
	a->clocks[a->nclocks].last_model_ms = a->clocks[a->nclocks].last_busy_ms = now;
	return &a->clocks[a->nclocks++];
}

static int node_index(const struct pass *p, const char *name)
{
	for (int i = 0; i < p->nni; i++)
		if (strcmp(p->ni[i].name, name) == 0)
			return i;
	return -1;
}

static void node_view(struct as_child *a, struct pass *p, int i)
{
	const struct cluster_node_info *ni = &p->ni[i];
	struct as_node *n = &p->nodes[i];
	struct as_kv *kv = p->labels + i * CLUSTER_NODE_MAX_KV;
	struct as_taint *t = p->taints + i * CLUSTER_NODE_MAX_KV;
	int g = group_of_node(a, ni);
	char purpose[16];

	memset(n, 0, sizeof *n);
	n->group = g >= 0 && a->cfg.groups[g].mode == AS_MODE_CLUSTERAPI ? g : -1;
	n->alloc_cpu_m = ni->cpu_m;
	n->alloc_mem_mib = ni->memory_bytes / 1048576;
	n->alloc_pods = ni->pods;
	for (int k = 0; k < ni->nlabels; k++)
		kv[k] = (struct as_kv){ni->labels[k][0], ni->labels[k][1]};
	for (int k = 0; k < ni->ntaints; k++)
		t[k] = (struct as_taint){ni->taints[k][0], ni->taints[k][1], ni->taints[k][2]};
	n->labels = kv;
	n->nlabels = ni->nlabels;
	n->taints = t;
	n->ntaints = ni->ntaints;
	n->ready = ni->ready;
	n->cordoned = ni->cordoned;
	n->draining = ni->cordoned && db_as_node_purpose(a->hc->db, ni->name, purpose, sizeof purpose) == 1;
}

/* Requests, model pods and busy pods per node from the pod table. */
static void node_usage(struct as_child *a, struct pass *p, int64_t now)
{
	for (int r = 0; r < p->nrows; r++) {
		const struct cluster_pod *pod = &p->rows[r].pod;
		const struct model_req *m;
		int i;

		if (p->rows[r].gone || !pod->node[0] || strcmp(pod->phase, "Succeeded") == 0 ||
		    strcmp(pod->phase, "Failed") == 0 || (i = node_index(p, pod->node)) < 0)
			continue;
		m = model_of(p, pod->model);
		p->nodes[i].used_cpu_m += m ? m->cpu_m : 0;
		p->nodes[i].used_mem_mib += m ? m->mem_mib : 0;
		p->nodes[i].used_pods++;
		p->nodes[i].model_pods++;
		p->nodes[i].busy_pods += is_busy(p, pod->name);
	}
	for (int i = 0; i < p->nni; i++) {
		struct clock *c = clock_of(a, p->ni[i].name, now);
		struct as_node *n = &p->nodes[i];

		if (n->model_pods)
			c->last_model_ms = now;
		if (n->busy_pods)
			c->last_busy_ms = now;
		n->idle_s = (double)(now - (n->model_pods ? c->last_busy_ms : c->last_model_ms)) / 1000.0;
	}
}

static int build_nodes(struct as_child *a, struct pass *p, int64_t now)
{
	size_t nn = (size_t)(p->nni ? p->nni : 1);

	p->nodes = calloc(nn, sizeof *p->nodes);
	p->labels = calloc(nn * CLUSTER_NODE_MAX_KV, sizeof *p->labels);
	p->taints = calloc(nn * CLUSTER_NODE_MAX_KV, sizeof *p->taints);
	p->nres = calloc(nn, sizeof *p->nres);
	if (!p->nodes || !p->labels || !p->taints || !p->nres)
		return -1;
	for (int i = 0; i < p->nni; i++)
		node_view(a, p, i);
	node_usage(a, p, now);
	return 0;
}

/* Model pods waiting because the scheduler found no node. */
static int build_pending(struct as_child *a, struct pass *p)
{
	size_t nr = (size_t)(p->nrows ? p->nrows : 1);

	p->pending = calloc(nr, sizeof *p->pending);
	p->pods = calloc(nr, sizeof *p->pods);
	p->pres = calloc(nr, sizeof *p->pres);
	if (!p->pending || !p->pods || !p->pres)
		return -1;
	for (int r = 0; r < p->nrows; r++) {
		const struct cluster_pod *pod = &p->rows[r].pod;
		const struct model_req *m = model_of(p, pod->model);

		if (p->rows[r].gone || pod->node[0] || pod->deleting || !pod->unschedulable || !m)
			continue;
		p->pending[p->npods] = r;
		p->pods[p->npods++] = as_config_pod(&a->cfg, m->cpu_m, m->mem_mib);
	}
	return 0;
}

static int read_pass(struct as_child *a, struct pass *p, int64_t now)
{
	int64_t synced = 0;

	if (cluster_node_list(a->cl, &p->ni, &p->nni) < 0 || load_models(a, p) < 0 ||
	    cluster_pods(a->cl, &p->rows, &p->nrows, &synced) < 0 || read_groups(a, p) < 0)
		return -1;
	if (!synced) {
		log_info("autoscaler msg=\"pod table not listed yet, waiting\"");
		return -1;
	}
	return build_nodes(a, p, now) < 0 || build_pending(a, p) < 0 ? -1 : 0;
}

static void pass_free(struct pass *p)
{
	free(p->ni);
	free(p->rows);
	free(p->models);
	buf_free(&p->busy);
	buf_free(&p->idle);
	free(p->nodes);
	free(p->labels);
	free(p->taints);
	free(p->pending);
	free(p->pods);
	free(p->pres);
	free(p->nres);
	json_object_put(p->snap_pods);
}

/* ---- acting: pending pods -------------------------------------------------- */

/* What cluster-autoscaler or Karpenter last said about a pod (its events):
 * 1 with verdict and message filled, 0 nothing said. */
static int engine_word(struct as_child *a, const char *pod, const char **verdict, char *msg, size_t n)
{
	struct cluster_event *ev = NULL;
	int nev = 0, found = 0;
	int64_t at = -1;

	if (cluster_events(a->cl, pod, &ev, &nev) < 0)
		return 0;
	for (int i = 0; i < nev; i++) {
		const char *k = ev[i].kind, *v = NULL;

		if (strcmp(k, "TriggeredScaleUp") == 0 || strcmp(k, "Nominated") == 0)
			v = "provisioning";
		else if (strcmp(k, "NotTriggerScaleUp") == 0 || strcmp(k, "FailedScaling") == 0 ||
			 (strcmp(k, "FailedScheduling") == 0 && strcmp(ev[i].component, "karpenter") == 0))
			v = strstr(ev[i].message, "max node group size reached") ? "at_max" : "no_capacity";
		if (v && ev[i].at_ms >= at) {
			at = ev[i].at_ms;
			*verdict = v;
			snprintf(msg, n, "%s: %.400s", k, ev[i].message);
			found = 1;
		}
	}
	free(ev);
	return found;
}

static const char *group_name(const struct as_child *a, int g)
{
	return g >= 0 ? a->cfg.groups[g].name : NULL;
}

static void own_word(const struct as_child *a, const struct pass *p, int k, const struct model_req *m,
		     const char **verdict, char *msg, size_t n)
{
	const struct as_pod_result *r = &p->pres[k];

	switch (r->fate) {
	case AS_POD_FITS_NODE:
		*verdict = "fits";
		snprintf(msg, n, "room on node %s by requests; waiting for the scheduler", p->ni[r->node].name);
		break;
	case AS_POD_FITS_PROVISIONING:
		*verdict = "provisioning";
		snprintf(msg, n, "counted on a node of group %s being provisioned", r->group >= 0 ?
			 group_name(a, r->group) : p->ni[r->node].name);
		break;
	case AS_POD_SCALE_UP:
		*verdict = "provisioning";
		snprintf(msg, n, "group %s grows for it", group_name(a, r->group));
		break;
	case AS_POD_AT_MAX:
		*verdict = "at_max";
		snprintf(msg, n, "fits group %s, which is at its max (%d); waits for room", group_name(a, r->group),
			 a->cfg.groups[r->group].g.max);
		break;
	default:
		*verdict = "no_capacity";
		snprintf(msg, n, "model %s requests cpu %dm, memory %d MiB: no node group can hold it", m->id, m->cpu_m,
			 m->mem_mib);
	}
}

static void pod_verdicts(struct as_child *a, struct pass *p)
{
	int external = as_config_has_mode(&a->cfg, AS_MODE_EXTERNAL);

	p->snap_pods = json_object_new_array();
	for (int k = 0; k < p->npods; k++) {
		const struct cluster_pod *pod = &p->rows[p->pending[k]].pod;
		const struct model_req *m = model_of(p, pod->model);
		const struct as_pod_result *r = &p->pres[k];
		const char *verdict = "fits", *mode = "clusterapi";
		char msg[512];
		struct json_object *o = json_object_new_object();

		own_word(a, p, k, m, &verdict, msg, sizeof msg);
		if (external && r->fate != AS_POD_SCALE_UP && r->fate != AS_POD_FITS_PROVISIONING &&
		    r->fate != AS_POD_NO_GROUP) {
			mode = "external";
			if (!engine_word(a, pod->name, &verdict, msg, sizeof msg)) {
				verdict = "fits";
				snprintf(msg, sizeof msg, "waiting for the node autoscaler's decision");
			}
		}
		db_as_pod_set(a->hc->db, a->token, pod->name, m->id, verdict, msg, group_name(a, r->group));
		decide(a, mode, strcmp(verdict, "no_capacity") == 0 || strcmp(verdict, "at_max") == 0 ? "no_scale" : "wait",
		       group_name(a, r->group), NULL, pod->name, m->id, -1, msg);
		json_object_object_add(o, "pod", json_object_new_string(pod->name));
		json_object_object_add(o, "model_id", json_object_new_string(m->id));
		json_object_object_add(o, "cpu_request_m", json_object_new_int(m->cpu_m));
		json_object_object_add(o, "memory_request_mib", json_object_new_int(m->mem_mib));
		json_object_object_add(o, "verdict", json_object_new_string(verdict));
		json_object_object_add(o, "message", json_object_new_string(msg));
		json_object_object_add(o, "scheduler_message", json_object_new_string(pod->detail));
		json_object_array_add(p->snap_pods, o);
	}
	db_as_pod_prune(a->hc->db, a->token, AS_POD_KEEP_S);
}

/* ---- acting: node groups --------------------------------------------------- */

/* Right before a write to the cluster (which no SQL fence covers): is the
 * hub lease still ours with the pass's token? A replica that lost it
 * (frozen past the lease, partitioned) stops acting at once; the new
 * leader plans from what the cluster then holds. */
static int still_leader(struct as_child *a)
{
	if (db_as_fence_ok(a->hc->db, a->token))
		return 1;
	log_warn_x("autoscaler token=%lld msg=\"hub lease lost: no cluster write this pass\"",
		   (long long)a->token);
	a->token = 0;
	return 0;
}

static void scale_up(struct as_child *a, struct pass *p)
{
	for (int g = 0; g < a->cfg.ngroups; g++) {
		const struct as_group_cfg *gc = &a->cfg.groups[g];
		int from = p->size[g].replicas, to, rc, pods = 0;
		char why[256];

		if (gc->mode != AS_MODE_CLUSTERAPI || p->add[g] <= 0)
			continue;
		to = from + p->add[g] > gc->g.max ? gc->g.max : from + p->add[g];
		for (int k = 0; k < p->npods; k++)
			pods += p->pres[k].fate == AS_POD_SCALE_UP && p->pres[k].group == g;
		if (!a->token || !still_leader(a))
			return;
		rc = cluster_group_scale(a->cl, gc->md_ns, gc->md_name, from, to);
		if (rc == 0) {
			a->last_up_ms[g] = mh_mono_ms();
			snprintf(why, sizeof why, "%d pending model pod(s) fit no existing or provisioning node; "
				 "least waste on group %s: %d -> %d (max %d)", pods, gc->name, from, to, gc->g.max);
			decide(a, "clusterapi", "scale_up", gc->name, NULL, NULL, NULL, to - from, why);
		} else {
			decide(a, "clusterapi", "skipped", gc->name, NULL, NULL, NULL, to - from,
			       rc == CLUSTER_SCALE_CONFLICT ? "the group's size changed since it was read (another replica "
			       "or an operator): planned again next pass" : "scale-up failed (API error, see the log)");
		}
	}
}

/* The second look at a node cordoned for removal: still empty, so mark its
 * Machine and take the group down by one (compare-and-set). */
static int remove_node(struct as_child *a, struct pass *p, int i)
{
	const struct cluster_node_info *ni = &p->ni[i];
	int g = p->nodes[i].group, from = p->size[g].replicas, rc;
	const struct as_group_cfg *gc = &a->cfg.groups[g];
	char why[256];

	if (!a->token || !still_leader(a))
		return -1;
	if (ni->machine[0] && cluster_machine_mark(a->cl, ni->machine_ns, ni->machine) < 0)
		return -1;
	rc = cluster_group_scale(a->cl, gc->md_ns, gc->md_name, from, from - 1);
	if (rc != 0) {
		decide(a, "clusterapi", "skipped", gc->name, ni->name, NULL, NULL, 1, rc == CLUSTER_SCALE_CONFLICT ?
		       "the group's size changed since it was read: removal planned again next pass" :
		       "scale-down failed (API error, see the log)");
		return -1;
	}
	snprintf(why, sizeof why, "still empty after the cordon: machine %s marked delete-machine, group %d -> %d "
		 "(min %d)", ni->machine[0] ? ni->machine : "-", from, from - 1, gc->g.min);
	decide(a, "clusterapi", "remove", gc->name, ni->name, NULL, NULL, 1, why);
	db_as_node_unmark(a->hc->db, a->token, ni->name);
	return 0;
}

static void cordon(struct as_child *a, struct pass *p, int i, const char *purpose, const char *why)
{
	const struct cluster_node_info *ni = &p->ni[i];
	const char *group = a->cfg.groups[p->nodes[i].group].name;

	if (!a->token || !still_leader(a))
		return;
	if (!ni->cordoned && cluster_node_cordon(a->cl, ni->name, 1) < 0)
		return;
	db_as_node_mark(a->hc->db, a->token, ni->name, group, purpose);
	decide(a, "clusterapi", strcmp(purpose, "drain") == 0 ? "drain" : "cordon", group, ni->name, NULL, NULL, -1, why);
}

static void keep(struct as_child *a, struct pass *p, int i)
{
	const struct as_node *n = &p->nodes[i];
	const char *group = a->cfg.groups[n->group].name;
	char purpose[16] = "", why[200];

	if (n->draining && n->model_pods > 0 &&
	    db_as_node_purpose(a->hc->db, p->ni[i].name, purpose, sizeof purpose) == 1 && strcmp(purpose, "remove") == 0) {
		if (a->token && still_leader(a) && cluster_node_cordon(a->cl, p->ni[i].name, 0) == 0) {
			db_as_node_unmark(a->hc->db, a->token, p->ni[i].name);
			decide(a, "clusterapi", "uncordon", group, p->ni[i].name, NULL, NULL, -1,
			       "a model pod is on the node again: removal cancelled");
		}
		return;
	}
	snprintf(why, sizeof why, "kept: %s (%d model pod(s), %d busy)", as_keep_why_name(p->nres[i].why),
		 n->model_pods, n->busy_pods);
	decide(a, "clusterapi", "skipped", group, p->ni[i].name, NULL, NULL, -1, why);
}

static void scale_down(struct as_child *a, struct pass *p)
{
	int removed[AS_MAX_GROUPS] = {0};

	for (int i = 0; i < p->nni; i++) {
		const struct as_node *n = &p->nodes[i];
		const struct as_group_cfg *gc;
		char why[256];

		if (n->group < 0)
			continue;
		gc = &a->cfg.groups[n->group];
		if (p->nres[i].action == AS_NODE_REMOVE) {
			if (n->draining && !removed[n->group])
				removed[n->group] = remove_node(a, p, i) == 0;
			else if (!n->draining) {
				snprintf(why, sizeof why, "no model pod for %.0f s (scale_down_idle %.0f s): cordoned, "
					 "checked again next pass", n->idle_s, gc->g.scale_down_idle_s);
				cordon(a, p, i, "remove", why);
			}
		} else if (p->nres[i].action == AS_NODE_DRAIN && !p->ni[i].cordoned) {
			snprintf(why, sizeof why, "almost empty: %d idle model pod(s), %lld of %lld cpu_m requested; "
				 "cordoned so no new pod lands here, nothing evicted", n->model_pods,
				 (long long)n->used_cpu_m, (long long)n->alloc_cpu_m);
			cordon(a, p, i, "drain", why);
		} else if (p->nres[i].action == AS_NODE_KEEP) {
			keep(a, p, i);
		}
	}
}

/* ---- no-evict annotations ------------------------------------------------- */

/* Model pods are created with the annotations that stop cluster-autoscaler
 * and Karpenter from evicting them (they start to serve a request). A warm
 * instance waiting for work (IDLE) has them lifted, so an engine may move
 * it off a node it wants to remove; they are set again once it serves a
 * request. Everything but IDLE keeps them (starting, serving, stopping).
 * One merge patch per pod whose state changed since the pod table saw it. */
static void no_evict(struct as_child *a, const struct pass *p)
{
	for (int r = 0; r < p->nrows; r++) {
		const struct cluster_pod *pod = &p->rows[r].pod;
		int want;

		if (p->rows[r].gone || pod->deleting || !pod->instance_id || strcmp(pod->phase, "Succeeded") == 0 ||
		    strcmp(pod->phase, "Failed") == 0)
			continue;
		want = !listed(&p->idle, pod->name);
		if (want == pod->no_evict || !a->token || !still_leader(a))
			continue;
		if (cluster_pod_no_evict(a->cl, pod->name, want) == 0)
			log_info("autoscaler pod=%s no_evict=%d msg=\"%s\"", pod->name, want,
				 want ? "serving a request: not to be evicted" : "idle: the node autoscaler may evict it");
	}
}

/* ---- the snapshot for GET /api/autoscaler ---------------------------------- */

static struct json_object *snap_groups(const struct as_child *a, const struct pass *p)
{
	struct json_object *arr = json_object_new_array();

	for (int g = 0; g < a->cfg.ngroups; g++) {
		const struct as_group_cfg *gc = &a->cfg.groups[g];
		struct json_object *o = json_object_new_object();
		char md[200];

		snprintf(md, sizeof md, "%s/%s", gc->md_ns, gc->md_name);
		json_object_object_add(o, "name", json_object_new_string(gc->name));
		json_object_object_add(o, "mode", json_object_new_string(as_mode_name(gc->mode)));
		json_object_object_add(o, "machinedeployment", gc->mode == AS_MODE_CLUSTERAPI ? json_object_new_string(md) : NULL);
		json_object_object_add(o, "min", json_object_new_int(gc->g.min));
		json_object_object_add(o, "max", json_object_new_int(gc->g.max));
		json_object_object_add(o, "cpu_m", json_object_new_int64(gc->g.cpu_m));
		json_object_object_add(o, "memory_mib", json_object_new_int64(gc->g.mem_mib));
		json_object_object_add(o, "size", json_object_new_int(p->groups[g].current));
		json_object_object_add(o, "nodes", json_object_new_int(p->registered[g]));
		json_object_object_add(o, "ready", json_object_new_int(gc->mode == AS_MODE_CLUSTERAPI ? p->size[g].ready : -1));
		json_object_object_add(o, "provisioning", json_object_new_int(p->groups[g].provisioning));
		json_object_object_add(o, "planned_add", json_object_new_int(p->add[g]));
		json_object_array_add(arr, o);
	}
	return arr;
}

static struct json_object *snap_nodes(const struct as_child *a, const struct pass *p)
{
	struct json_object *arr = json_object_new_array();

	for (int i = 0; i < p->nni; i++) {
		const struct as_node *n = &p->nodes[i];
		struct json_object *o = json_object_new_object();
		int g = group_of_node(a, &p->ni[i]);

		json_object_object_add(o, "name", json_object_new_string(p->ni[i].name));
		json_object_object_add(o, "group", g >= 0 ? json_object_new_string(a->cfg.groups[g].name) : NULL);
		json_object_object_add(o, "ready", json_object_new_boolean(n->ready));
		json_object_object_add(o, "cordoned", json_object_new_boolean(n->cordoned));
		json_object_object_add(o, "allocatable_cpu_m", json_object_new_int64(n->alloc_cpu_m));
		json_object_object_add(o, "allocatable_memory_mib", json_object_new_int64(n->alloc_mem_mib));
		json_object_object_add(o, "requested_cpu_m", json_object_new_int64(n->used_cpu_m));
		json_object_object_add(o, "requested_memory_mib", json_object_new_int64(n->used_mem_mib));
		json_object_object_add(o, "model_pods", json_object_new_int(n->model_pods));
		json_object_object_add(o, "busy_pods", json_object_new_int(n->busy_pods));
		json_object_object_add(o, "idle_seconds", json_object_new_double((double)(int64_t)n->idle_s));
		json_object_object_add(o, "action", json_object_new_string(as_node_action_name(p->nres[i].action)));
		json_object_object_add(o, "reason", json_object_new_string(as_keep_why_name(p->nres[i].why)));
		json_object_array_add(arr, o);
	}
	return arr;
}

/* External mode: cluster-autoscaler's own status text (ConfigMap
 * kube-system/cluster-autoscaler-status) when it can be read; after a
 * failure (no such ConfigMap, Karpenter, or not granted) not asked again. */
static struct json_object *engine_status(struct as_child *a)
{
	struct buf b = {0};
	struct json_object *o = NULL;

	if (a->engine_status_off || !as_config_has_mode(&a->cfg, AS_MODE_EXTERNAL))
		return NULL;
	if (cluster_engine_status(a->cl, &b) < 0) {
		a->engine_status_off = 1;
		log_info("autoscaler msg=\"cluster-autoscaler status ConfigMap not readable; not asked again\"");
	} else {
		o = json_object_new_string(b.data ? b.data : "");
	}
	buf_free(&b);
	return o;
}

static void store_snapshot(struct as_child *a, struct pass *p)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "period_seconds", json_object_new_double(a->cfg.period_s));
	json_object_object_add(o, "groups", snap_groups(a, p));
	json_object_object_add(o, "pending_pods", json_object_get(p->snap_pods));
	json_object_object_add(o, "nodes", snap_nodes(a, p));
	json_object_object_add(o, "engine_status", engine_status(a));
	db_as_status_put(a->hc->db, a->token, a->replica, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* ---- the loop --------------------------------------------------------------- */

static void one_pass(struct as_child *a)
{
	struct pass p;
	struct as_settings set = {a->cfg.almost_empty};
	struct as_plan plan;
	int64_t now = mh_wall_ms();

	memset(&p, 0, sizeof p);
	a->token = hubd_leader_token();
	if (!a->token) {
		log_info("autoscaler msg=\"not leading (no hub lease): pass skipped\"");
		return;
	}
	if (read_pass(a, &p, now) < 0) {
		pass_free(&p);
		return;
	}
	plan = (struct as_plan){p.add, p.pres, p.nres};
	if (as_plan_compute(p.pods, p.npods, p.nodes, p.nni, p.groups, a->cfg.ngroups, &set, &plan) < 0) {
		log_error_x("autoscaler msg=\"planner out of memory\"");
		pass_free(&p);
		return;
	}
	pod_verdicts(a, &p);
	scale_up(a, &p);
	scale_down(a, &p);
	no_evict(a, &p);
	store_snapshot(a, &p);
	pass_free(&p);
}

static int load(struct as_child *a)
{
	char err[256];

	if (as_config_load(&a->cfg, err, sizeof err) < 0) {
		log_error_x("autoscaler msg=\"bad configuration: %s\"", err);
		return -1;
	}
	return 0;
}

int autoscaler_main(struct hubd_child *c)
{
	struct as_child *a = calloc(1, sizeof *a);
	int rc = 0;

	if (!a || load(a) < 0 || !(a->cl = cluster_new("kubernetes"))) {
		free(a);
		return 1;
	}
	a->hc = c;
	a->replica = c->replica_id;
	log_info("autoscaler groups=%d period_s=%.1f msg=\"started\"", a->cfg.ngroups, a->cfg.period_s);
	while (!hubd_should_stop()) {
		hubd_heartbeat(c);
		if (hubd_take_reload() && load(a) < 0) {
			rc = 1;
			break;
		}
		one_pass(a);
		hubd_heartbeat(c);
		if (hubd_wait(c, -1, (int)(a->cfg.period_s * 1000)) < 0)
			break;
	}
	cluster_free(a->cl);
	free(a);
	return rc;
}
