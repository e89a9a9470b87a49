/*
 * kube_pod.c — pod manifest building and pod status -> instance state.
 *
 * Runs in: runners (manifests) and the kubewatch child (status mapping).
 * Called by: kube.c, kube_watch.c, t/070-kube-pod.c.
 * Owns: nothing beyond the json-c objects it returns.
 *
 * DESIGN — state mapping (first match wins). Every state either ends the
 * instance (EXITED, the runner fails or retries at once) or is a start
 * state the runner bounds with hub.instance_start_timeout, so no request
 * waits on a pod forever (UPSTREAM.md 7.1):
 *   deletionTimestamp set            EXITED, term from the container or FAILED
 *   phase Failed                     EXITED, OOMKILLED if a container's state
 *                                    or lastState says OOMKilled, else FAILED
 *   phase Succeeded                  EXITED COMPLETED
 *   waiting CrashLoopBackOff, or a
 *   container that restarted         EXITED (OOMKILLED / FAILED from lastState):
 *                                    a restarted server lost its ASYNC jobs
 *   terminated (any phase)           EXITED
 *   PodScheduled=False Unschedulable PENDING, reason Unschedulable
 *   waiting ErrImagePull, ImagePull-
 *   BackOff, InvalidImageName        PENDING/STARTING, reason = the waiting reason
 *   Running + Ready condition True   READY
 *   Running                          STARTING
 *   anything else                    PENDING
 */
#include "cluster/kube/kube_pod.h"
#include "lib/config.h"
#include "lib/json.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int jint(struct json_object *o, const char *k, int def)
{
	struct json_object *v = jx_get(o, k, NULL);

	return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ?
		       json_object_get_int(v) : def;
}

static int jbool(struct json_object *o, const char *k)
{
	struct json_object *v = jx_get(o, k, NULL);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

int64_t kube_time_ms(const char *s)
{
	struct tm tm;
	const char *p;
	int64_t ms = 0;
	time_t t;

	if (!s || !*s)
		return 0;
	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return 0;
	if (*p == '.') {
		int scale = 100;
		for (p++; isdigit((unsigned char)*p); p++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	return (int64_t)t * 1000 + ms;
}

void kube_dns_name(const char *id, char *out, size_t n)
{
	size_t k = 0;

	for (; id && *id && k + 1 < n; id++) {
		char c = (char)tolower((unsigned char)*id);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (k == 0 && c == '-')
			continue;
		out[k++] = c;
	}
	while (k > 0 && out[k - 1] == '-')
		k--;
	if (k == 0 && n > 5)
		k = (size_t)snprintf(out, n, "model");
	out[k] = '\0';
}

/* A valid label value from s: [A-Za-z0-9._-], alnum at both ends, <= 63. */
static void label_value(const char *s, char *out, size_t n)
{
	size_t k = 0, max = n - 1 < 63 ? n - 1 : 63;

	for (; s && *s && k < max; s++) {
		char c = *s;
		if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'))
			c = '_';
		if (k == 0 && !isalnum((unsigned char)c))
			continue;
		out[k++] = c;
	}
	while (k > 0 && !isalnum((unsigned char)out[k - 1]))
		k--;
	out[k] = '\0';
}

void kube_pod_opts_from_config(struct kube_pod_opts *o, const char *ns)
{
	const char *v;

	memset(o, 0, sizeof *o);
	o->ns = ns;
	v = cfg_str("kube.node_selector", "");
	o->node_selector = v[0] ? v : NULL;
	v = cfg_str("kube.tolerations", "");
	o->tolerations = v[0] ? v : NULL;
	v = cfg_str("kube.affinity", "");
	o->affinity = v[0] ? v : NULL;
	v = cfg_str("kube.image_pull_policy", "");
	o->pull_policy = v[0] ? v : NULL;
	v = cfg_str("kube.service_account", "");
	o->service_account = v[0] ? v : NULL;
	o->grace_seconds = (int)cfg_int("kube.grace_seconds", 10);
}

static struct json_object *qty(int v, const char *unit)
{
	char b[32];

	snprintf(b, sizeof b, "%d%s", v, unit);
	return json_object_new_string(b);
}

/* image[:tag]: the tag is appended unless the image already names one (or
 * a digest). */
static void image_ref(const char *image, const char *tag, char *out, size_t n)
{
	const char *slash = strrchr(image, '/');
	const char *last = slash ? slash + 1 : image;

	if (strchr(image, '@') || strchr(last, ':') || !tag || !tag[0])
		snprintf(out, n, "%s", image);
	else
		snprintf(out, n, "%s:%s", image, tag);
}

static int add_node_selector(struct json_object *spec, const char *sel, const char **err)
{
	struct json_object *ns = json_object_new_object();
	char buf[1024], *save = NULL, *tok;

	snprintf(buf, sizeof buf, "%s", sel);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq;
		while (*tok == ' ')
			tok++;
		eq = strchr(tok, '=');
		if (!eq || eq == tok) {
			json_object_put(ns);
			*err = "kube.node_selector must be k=v,k2=v2";
			return -1;
		}
		*eq = '\0';
		json_object_object_add(ns, tok, json_object_new_string(eq + 1));
	}
	json_object_object_add(spec, "nodeSelector", ns);
	return 0;
}

/* The preferred pod affinity that packs model pods onto few nodes (the
 * autoscaler can then empty and remove the rest). */
static struct json_object *packing_term(void)
{
	struct json_object *t = json_object_new_object(), *pat = json_object_new_object();
	struct json_object *sel = json_object_new_object(), *ml = json_object_new_object();

	json_object_object_add(ml, KUBE_LABEL_MANAGED, json_object_new_string("modelhub"));
	json_object_object_add(sel, "matchLabels", ml);
	json_object_object_add(pat, "labelSelector", sel);
	json_object_object_add(pat, "topologyKey", json_object_new_string("kubernetes.io/hostname"));
	json_object_object_add(t, "weight", json_object_new_int(50));
	json_object_object_add(t, "podAffinityTerm", pat);
	return t;
}

static int add_affinity(struct json_object *spec, const char *cfg, const char **err)
{
	struct json_object *aff = NULL, *pa, *pref;

	if (cfg) {
		aff = json_tokener_parse(cfg);
		if (!aff || !json_object_is_type(aff, json_type_object)) {
			json_object_put(aff);
			*err = "kube.affinity is not a JSON object";
			return -1;
		}
	} else {
		aff = json_object_new_object();
	}
	pa = jx_get(aff, "podAffinity", NULL);
	if (!pa || !json_object_is_type(pa, json_type_object)) {
		pa = json_object_new_object();
		json_object_object_add(aff, "podAffinity", pa);
	}
	pref = jx_get(pa, "preferredDuringSchedulingIgnoredDuringExecution", NULL);
	if (!pref || !json_object_is_type(pref, json_type_array)) {
		pref = json_object_new_array();
		json_object_object_add(pa, "preferredDuringSchedulingIgnoredDuringExecution", pref);
	}
	json_object_array_add(pref, packing_term());
	json_object_object_add(spec, "affinity", aff);
	return 0;
}

/* Why spec cannot become a pod, or NULL. */
static const char *spec_problem(const struct cluster_spec *s)
{
	if (!s->model_id || !s->model_id[0])
		return "model id missing";
	if (!s->image || !s->image[0])
		return "the model has no image (required by the kubernetes backend)";
	if (s->port <= 0 || s->port > 65535)
		return "the model has no valid port";
	if (s->cpu_limit_m > 0 && s->cpu_request_m > s->cpu_limit_m)
		return "cpu request above the cpu limit";
	if (s->memory_limit_mib > 0 && s->memory_request_mib > s->memory_limit_mib)
		return "memory request above the memory limit";
	return NULL;
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

/* metadata: name, namespace, labels, annotations. */
static struct json_object *pod_metadata(const struct cluster_spec *s, const struct kube_pod_opts *o)
{
	struct json_object *md = json_object_new_object(), *labels, *ann;
	char gen[64], lv[64], iid[24];

	/* named after the instance, not generated: a create retried after a
	 * lost answer meets its own pod (409) instead of starting a second one */
	kube_dns_name(s->model_id, gen, 50);
	snprintf(gen + strlen(gen), sizeof gen - strlen(gen), "-%lld", (long long)s->instance_id);
	add_str(md, "name", gen);
	if (o->ns && o->ns[0])
		add_str(md, "namespace", o->ns);
	labels = json_object_new_object();
	json_object_object_add(md, "labels", labels);
	for (int i = 0; i < s->nlabels && i < CLUSTER_MAX_LABELS; i++)
		if (s->labels[i][0] && s->labels[i][1])
			add_str(labels, s->labels[i][0], s->labels[i][1]);
	add_str(labels, KUBE_LABEL_MANAGED, "modelhub");
	label_value(s->model_id, lv, sizeof lv);
	add_str(labels, KUBE_LABEL_MODEL, lv);
	snprintf(iid, sizeof iid, "%lld", (long long)s->instance_id);
	add_str(labels, KUBE_LABEL_INSTANCE, iid);
	ann = json_object_new_object();
	json_object_object_add(md, "annotations", ann);
	if (s->request_id)
		add_str(ann, KUBE_ANN_REQUEST, s->request_id);
	if (s->replica_id)
		add_str(ann, KUBE_ANN_SERVER, s->replica_id);
	add_str(ann, "modelhub/model-id", s->model_id);
	/* neither node autoscaler evicts a model pod to empty a node (DESIGN.md
	 * §7): a busy one would lose its request; an idle one ends by its
	 * model's idle_seconds, and the autoscaler's own drain waits for it */
	add_str(ann, "cluster-autoscaler.kubernetes.io/safe-to-evict", "false");
	add_str(ann, "karpenter.sh/do-not-disrupt", "true");
	return md;
}

/* resources: requests and limits that are set (0 = none). */
static struct json_object *resources(const struct cluster_spec *s)
{
	struct json_object *res = json_object_new_object(), *req = json_object_new_object(),
			   *lim = json_object_new_object();

	if (s->cpu_request_m > 0)
		json_object_object_add(req, "cpu", qty(s->cpu_request_m, "m"));
	if (s->memory_request_mib > 0)
		json_object_object_add(req, "memory", qty(s->memory_request_mib, "Mi"));
	if (s->cpu_limit_m > 0)
		json_object_object_add(lim, "cpu", qty(s->cpu_limit_m, "m"));
	if (s->memory_limit_mib > 0)
		json_object_object_add(lim, "memory", qty(s->memory_limit_mib, "Mi"));
	json_object_object_add(res, "requests", req);
	json_object_object_add(res, "limits", lim);
	return res;
}

/* The model container: image, port, resources, readiness on /healthz. */
static struct json_object *container(const struct cluster_spec *s, const struct kube_pod_opts *o)
{
	struct json_object *c = json_object_new_object(), *ports, *port, *probe, *hg;
	char img[600];

	add_str(c, "name", "model");
	image_ref(s->image, s->image_tag, img, sizeof img);
	add_str(c, "image", img);
	if (o->pull_policy)
		add_str(c, "imagePullPolicy", o->pull_policy);
	ports = json_object_new_array();
	port = json_object_new_object();
	add_str(port, "name", "http");
	json_object_object_add(port, "containerPort", json_object_new_int(s->port));
	add_str(port, "protocol", "TCP");
	json_object_array_add(ports, port);
	json_object_object_add(c, "ports", ports);
	json_object_object_add(c, "resources", resources(s));
	probe = json_object_new_object();
	hg = json_object_new_object();
	add_str(hg, "path", "/healthz");
	json_object_object_add(hg, "port", json_object_new_int(s->port));
	json_object_object_add(probe, "httpGet", hg);
	json_object_object_add(probe, "periodSeconds", json_object_new_int(2));
	json_object_object_add(probe, "failureThreshold", json_object_new_int(3));
	json_object_object_add(c, "readinessProbe", probe);
	return c;
}

/* Node selector, tolerations and affinity from the options. 0, -1 with *e. */
static int placement(struct json_object *spec, const struct kube_pod_opts *o, const char **e)
{
	if (o->node_selector && add_node_selector(spec, o->node_selector, e) < 0)
		return -1;
	if (o->tolerations) {
		struct json_object *t = json_tokener_parse(o->tolerations);
		if (!t || !json_object_is_type(t, json_type_array)) {
			json_object_put(t);
			*e = "kube.tolerations is not a JSON array";
			return -1;
		}
		json_object_object_add(spec, "tolerations", t);
	}
	return add_affinity(spec, o->affinity, e);
}

struct json_object *kube_pod_manifest(const struct cluster_spec *s, const struct kube_pod_opts *o,
				      const char **err)
{
	struct json_object *pod = NULL, *spec, *ctrs;
	const char *e = spec_problem(s);

	if (e)
		goto fail;
	pod = json_object_new_object();
	add_str(pod, "apiVersion", "v1");
	add_str(pod, "kind", "Pod");
	json_object_object_add(pod, "metadata", pod_metadata(s, o));
	spec = json_object_new_object();
	json_object_object_add(pod, "spec", spec);
	/* one instance = one server process; a restart would lose its jobs */
	add_str(spec, "restartPolicy", "Never");
	if (o->grace_seconds >= 0)
		json_object_object_add(spec, "terminationGracePeriodSeconds",
				       json_object_new_int(o->grace_seconds));
	if (o->service_account)
		add_str(spec, "serviceAccountName", o->service_account);
	json_object_object_add(spec, "automountServiceAccountToken", json_object_new_boolean(0));
	ctrs = json_object_new_array();
	json_object_object_add(spec, "containers", ctrs);
	json_object_array_add(ctrs, container(s, o));
	if (placement(spec, o, &e) < 0)
		goto fail;
	return pod;
fail:
	json_object_put(pod);
	if (err)
		*err = e;
	return NULL;
}

/* ---- status ---- */

static void set(struct cluster_pod *p, enum cluster_state st, enum cluster_term term,
		const char *reason, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set(struct cluster_pod *p, enum cluster_state st, enum cluster_term term,
		const char *reason, const char *fmt, ...)
{
	va_list ap;

	p->state = st;
	p->term = term;
	snprintf(p->reason, sizeof p->reason, "%s", reason ? reason : "");
	va_start(ap, fmt);
	vsnprintf(p->detail, sizeof p->detail, fmt, ap);
	va_end(ap);
}

/* The first container status (model pods have one container). */
static struct json_object *first_status(struct json_object *pod)
{
	struct json_object *a = jx_get(pod, "status", "containerStatuses", NULL);

	if (!a || !json_object_is_type(a, json_type_array) || json_object_array_length(a) == 0)
		return NULL;
	return json_object_array_get_idx(a, 0);
}

static struct json_object *condition(struct json_object *pod, const char *type)
{
	struct json_object *a = jx_get(pod, "status", "conditions", NULL);

	if (!a || !json_object_is_type(a, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *c = json_object_array_get_idx(a, i);
		const char *t = jx_get_str(c, "type", NULL);
		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

static int is_oom(struct json_object *term)
{
	const char *r = jx_get_str(term, "reason", NULL);

	return r && strcasecmp(r, "OOMKilled") == 0;
}

static void copy_jstr(char *dst, size_t n, struct json_object *o, const char *k1, const char *k2,
		      const char *k3)
{
	const char *s = jx_get_str(o, k1, k2, k3, NULL);

	snprintf(dst, n, "%s", s ? s : "");
}

/* Identity, placement and times of the pod. */
static void parse_meta(struct json_object *pod, struct cluster_pod *p)
{
	const char *s;

	copy_jstr(p->uid, sizeof p->uid, pod, "metadata", "uid", NULL);
	copy_jstr(p->ns, sizeof p->ns, pod, "metadata", "namespace", NULL);
	copy_jstr(p->rv, sizeof p->rv, pod, "metadata", "resourceVersion", NULL);
	copy_jstr(p->server, sizeof p->server, pod, "metadata", "annotations", KUBE_ANN_SERVER);
	copy_jstr(p->request, sizeof p->request, pod, "metadata", "annotations", KUBE_ANN_REQUEST);
	s = jx_get_str(pod, "metadata", "labels", KUBE_LABEL_INSTANCE, NULL);
	p->instance_id = s ? strtoll(s, NULL, 10) : 0;
	s = jx_get_str(pod, "metadata", "annotations", "modelhub/model-id", NULL);
	if (!s)
		s = jx_get_str(pod, "metadata", "labels", KUBE_LABEL_MODEL, NULL);
	snprintf(p->model, sizeof p->model, "%s", s ? s : "");
	p->created_ms = kube_time_ms(jx_get_str(pod, "metadata", "creationTimestamp", NULL));
	p->deleting = jx_get(pod, "metadata", "deletionTimestamp", NULL) != NULL;
	s = jx_get_str(pod, "metadata", "annotations", "cluster-autoscaler.kubernetes.io/safe-to-evict", NULL);
	p->no_evict = s && strcmp(s, "false") == 0;
	copy_jstr(p->node, sizeof p->node, pod, "spec", "nodeName", NULL);
	copy_jstr(p->phase, sizeof p->phase, pod, "status", "phase", NULL);
	copy_jstr(p->pod_ip, sizeof p->pod_ip, pod, "status", "podIP", NULL);
	p->started_ms = kube_time_ms(jx_get_str(pod, "status", "startTime", NULL));
}

/* containerPort of the first port of the first container, 0 if none. */
static int container_port(struct json_object *pod)
{
	struct json_object *ctrs = jx_get(pod, "spec", "containers", NULL), *ports;

	if (!ctrs || !json_object_is_type(ctrs, json_type_array) || json_object_array_length(ctrs) == 0)
		return 0;
	ports = jx_get(json_object_array_get_idx(ctrs, 0), "ports", NULL);
	if (!ports || !json_object_is_type(ports, json_type_array) || json_object_array_length(ports) == 0)
		return 0;
	return jint(json_object_array_get_idx(ports, 0), "containerPort", 0);
}

/* The parts of a pod's status the state is decided from. */
struct pod_status {
	struct json_object *cs, *term_now, *term_last, *waiting, *running, *sched;
	const char *wreason;
};

/* Container status, readiness and the flags (unschedulable, image error). */
static void parse_status(struct json_object *pod, struct cluster_pod *p, struct pod_status *ps)
{
	struct json_object *ready;
	const char *s, *w;

	ps->cs = first_status(pod);
	ps->term_now = jx_get(ps->cs, "state", "terminated", NULL);
	ps->term_last = jx_get(ps->cs, "lastState", "terminated", NULL);
	ps->waiting = jx_get(ps->cs, "state", "waiting", NULL);
	ps->running = jx_get(ps->cs, "state", "running", NULL);
	ps->wreason = w = jx_get_str(ps->waiting, "reason", NULL);
	p->restarts = jint(ps->cs, "restartCount", 0);
	if (ps->term_now)
		p->exit_code = jint(ps->term_now, "exitCode", -1);
	else if (ps->term_last)
		p->exit_code = jint(ps->term_last, "exitCode", -1);
	ready = condition(pod, "Ready");
	p->ready = (s = jx_get_str(ready, "status", NULL)) && strcmp(s, "True") == 0;
	if (!ready && ps->cs)
		p->ready = jbool(ps->cs, "ready");
	if (p->ready)
		p->ready_ms = kube_time_ms(jx_get_str(ready, "lastTransitionTime", NULL));
	ps->sched = condition(pod, "PodScheduled");
	/* flags first: they survive into the deletion snapshot */
	p->unschedulable = (s = jx_get_str(ps->sched, "status", NULL)) && strcmp(s, "False") == 0 &&
			   (s = jx_get_str(ps->sched, "reason", NULL)) && strcmp(s, "Unschedulable") == 0;
	p->image_error = w && (strcmp(w, "ErrImagePull") == 0 || strcmp(w, "ImagePullBackOff") == 0 ||
			       strcmp(w, "InvalidImageName") == 0 || strcmp(w, "ErrImageNeverPull") == 0);
}

static void set_failed(struct json_object *pod, struct cluster_pod *p, const struct pod_status *ps)
{
	const char *why, *s;

	if (is_oom(ps->term_now) || is_oom(ps->term_last)) {
		set(p, CLUSTER_EXITED, CLUSTER_TERM_OOMKILLED, "OOMKilled",
		    "container OOMKilled at its memory limit (exit code %d)", p->exit_code);
		return;
	}
	why = jx_get_str(pod, "status", "message", NULL);
	if (!why)
		why = jx_get_str(ps->term_now, "reason", NULL);
	s = jx_get_str(pod, "status", "reason", NULL);
	set(p, CLUSTER_EXITED, CLUSTER_TERM_FAILED, s ? s : "Failed", "pod failed: %s (exit code %d)",
	    why ? why : "no reason given", p->exit_code);
}

/* An ended pod (deleted, failed, succeeded, restarted, terminated): its
 * EXITED state set, 1; 0 when it has not ended. */
static int decide_ended(struct json_object *pod, struct cluster_pod *p, const struct pod_status *ps)
{
	int oom = is_oom(ps->term_now) || is_oom(ps->term_last);
	enum cluster_term t = oom ? CLUSTER_TERM_OOMKILLED : CLUSTER_TERM_FAILED;
	const char *s;

	if (p->deleting) {
		set(p, CLUSTER_EXITED, t, oom ? "OOMKilled" : "Deleted", "pod deleted (deletionTimestamp set)");
	} else if (strcmp(p->phase, "Failed") == 0) {
		set_failed(pod, p, ps);
	} else if (strcmp(p->phase, "Succeeded") == 0) {
		set(p, CLUSTER_EXITED, CLUSTER_TERM_COMPLETED, "Succeeded", "pod succeeded (exit code %d)",
		    p->exit_code);
	} else if ((ps->wreason && strcmp(ps->wreason, "CrashLoopBackOff") == 0) || p->restarts > 0) {
		set(p, CLUSTER_EXITED, t, oom ? "OOMKilled" : ps->wreason ? ps->wreason : "Restarted",
		    "container restarted %d time(s), last exit code %d%s", p->restarts, p->exit_code,
		    oom ? " (OOMKilled)" : "");
	} else if (ps->term_now) {
		t = is_oom(ps->term_now) ? CLUSTER_TERM_OOMKILLED :
		    p->exit_code == 0 ? CLUSTER_TERM_COMPLETED : CLUSTER_TERM_FAILED;
		set(p, CLUSTER_EXITED, t, (s = jx_get_str(ps->term_now, "reason", NULL)) ? s : "Terminated",
		    "container terminated (exit code %d)", p->exit_code);
	} else {
		return 0;
	}
	return 1;
}

/* A pod that has not ended: PENDING (with why), STARTING or READY. */
static void decide_live(struct cluster_pod *p, const struct pod_status *ps)
{
	const char *s, *w = ps->wreason;

	if (p->unschedulable)
		set(p, CLUSTER_PENDING, CLUSTER_TERM_NONE, "Unschedulable", "unschedulable: %s",
		    (s = jx_get_str(ps->sched, "message", NULL)) ? s : "no node fits");
	else if (p->image_error)
		set(p, CLUSTER_PENDING, CLUSTER_TERM_NONE, w, "image pull failed: %s",
		    (s = jx_get_str(ps->waiting, "message", NULL)) ? s : w);
	else if (strcmp(p->phase, "Running") == 0 && ps->running && p->ready && p->address[0])
		set(p, CLUSTER_READY, CLUSTER_TERM_NONE, "Ready", "running and ready");
	else if (strcmp(p->phase, "Running") == 0 && ps->running)
		set(p, CLUSTER_STARTING, CLUSTER_TERM_NONE, "Running", "running, not ready yet");
	else
		set(p, CLUSTER_PENDING, CLUSTER_TERM_NONE, w ? w : p->phase[0] ? p->phase : "Pending",
		    "%s%s%s", p->phase[0] ? p->phase : "Pending", w ? ": " : "", w ? w : "");
}

int kube_pod_parse(struct json_object *pod, int port_offset, struct cluster_pod *p)
{
	struct pod_status ps;
	const char *s;
	int cport;

	memset(p, 0, sizeof *p);
	p->exit_code = -1;
	if (!pod || !json_object_is_type(pod, json_type_object))
		return -1;
	s = jx_get_str(pod, "metadata", "name", NULL);
	if (!s || !s[0])
		return -1;
	snprintf(p->name, sizeof p->name, "%s", s);
	parse_meta(pod, p);
	cport = container_port(pod);
	if (p->pod_ip[0] && cport > 0)
		snprintf(p->address, sizeof p->address, strchr(p->pod_ip, ':') ? "[%s]:%d" : "%s:%d",
			 p->pod_ip, cport + port_offset);
	memset(&ps, 0, sizeof ps);
	parse_status(pod, p, &ps);
	if (!decide_ended(pod, p, &ps))
		decide_live(p, &ps);
	return 0;
}
