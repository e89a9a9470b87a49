/*
 * as_config.c — node groups and the model pod shape from the configuration.
 *
 * Runs in: the autoscaler child, FastCGI workers, runners.
 * Called by: autoscaler.c, api_models.c, runner.c (through as_config_load);
 * api_recommend.c and janitor.c (as_config_rec_caps).
 * Owns: nothing (fills the caller's struct). Shared state: lib/config.
 */
#include "autoscale/as_config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "recommend/recommend.h"

#define AS_PERIOD_S 5.0          /* one pass every 5 s */
#define AS_IDLE_S 600.0          /* scale-down idle time (10 min) */
#define AS_COOLDOWN_S 120.0      /* no scale-down within 2 min of a scale-up */
#define AS_PROVISION_S 900.0     /* start deadline while provisioning (15 min) */

static const char *gkey(const char *group, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "autoscale.group.%s.%s", group, key);
	return buf;
}

/* "k=v,k2=v2" into store/kv; with effects (taints): "k=v:Effect". */
static int parse_kv(const char *text, char (*store)[2][128], int max, char (*effects)[32])
{
	char buf[1024], *save = NULL, *tok;
	int n = 0;

	snprintf(buf, sizeof buf, "%s", text);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq, *colon = effects ? strrchr(tok, ':') : NULL;

		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		if (n == max)
			return -1;
		if (colon)
			*colon++ = '\0';
		if (effects)
			snprintf(effects[n], 32, "%s", colon ? colon : "NoSchedule");
		eq = strchr(tok, '=');
		if (eq)
			*eq++ = '\0';
		snprintf(store[n][0], 128, "%s", tok);
		snprintf(store[n][1], 128, "%s", eq ? eq : "");
		n++;
	}
	return n;
}

static int load_shape(struct as_group_cfg *gc, char *err, size_t errlen)
{
	char k[192];
	int nl, nt;

	nl = parse_kv(cfg_str(gkey(gc->name, "labels", k, sizeof k), ""), gc->kv_store, AS_MAX_KV, NULL);
	nt = parse_kv(cfg_str(gkey(gc->name, "taints", k, sizeof k), ""), gc->kv_store + AS_MAX_KV, AS_MAX_KV,
		      gc->effect_store);
	if (nl < 0 || nt < 0) {
		snprintf(err, errlen, "autoscale group %s: more than %d labels or taints", gc->name, AS_MAX_KV);
		return -1;
	}
	for (int i = 0; i < nl; i++)
		gc->labels[i] = (struct as_kv){gc->kv_store[i][0], gc->kv_store[i][1]};
	for (int i = 0; i < nt; i++)
		gc->taints[i] = (struct as_taint){gc->kv_store[AS_MAX_KV + i][0], gc->kv_store[AS_MAX_KV + i][1],
						  gc->effect_store[i]};
	gc->g.labels = gc->labels;
	gc->g.nlabels = nl;
	gc->g.taints = gc->taints;
	gc->g.ntaints = nt;
	gc->g.cpu_m = cfg_int(gkey(gc->name, "cpu_m", k, sizeof k), 0);
	gc->g.mem_mib = cfg_int(gkey(gc->name, "memory_mib", k, sizeof k), 0);
	gc->g.pods = (int)cfg_int(gkey(gc->name, "pods", k, sizeof k), 110);
	if (gc->g.cpu_m <= 0 || gc->g.mem_mib <= 0) {
		snprintf(err, errlen, "autoscale group %s: cpu_m and memory_mib (a node's allocatable) are required",
			 gc->name);
		return -1;
	}
	return 0;
}

static int load_mode(struct as_group_cfg *gc, char *err, size_t errlen)
{
	char k[192];
	const char *mode = cfg_str(gkey(gc->name, "mode", k, sizeof k), "clusterapi");
	const char *md = cfg_str(gkey(gc->name, "machinedeployment", k, sizeof k), "");
	const char *match = cfg_str(gkey(gc->name, "node_label", k, sizeof k), "");
	const char *slash = strchr(md, '/');

	if (strcmp(mode, "clusterapi") != 0 && strcmp(mode, "external") != 0) {
		snprintf(err, errlen, "autoscale group %s: mode must be clusterapi or external", gc->name);
		return -1;
	}
	gc->mode = strcmp(mode, "external") == 0 ? AS_MODE_EXTERNAL : AS_MODE_CLUSTERAPI;
	if (gc->mode == AS_MODE_CLUSTERAPI) {
		if (!md[0]) {
			snprintf(err, errlen, "autoscale group %s: machinedeployment (namespace/name) is required",
				 gc->name);
			return -1;
		}
		snprintf(gc->md_ns, sizeof gc->md_ns, "%.*s", slash ? (int)(slash - md) : 7, slash ? md : "default");
		snprintf(gc->md_name, sizeof gc->md_name, "%s", slash ? slash + 1 : md);
		snprintf(gc->match_key, sizeof gc->match_key, "cluster.x-k8s.io/deployment-name");
		memcpy(gc->match_value, gc->md_name, sizeof gc->md_name < sizeof gc->match_value ?
		       sizeof gc->md_name : sizeof gc->match_value);
	}
	if (match[0]) {
		const char *eq = strchr(match, '=');

		snprintf(gc->match_key, sizeof gc->match_key, "%.*s", eq ? (int)(eq - match) : (int)strlen(match),
			 match);
		snprintf(gc->match_value, sizeof gc->match_value, "%s", eq ? eq + 1 : "");
	} else if (gc->mode == AS_MODE_EXTERNAL) {
		snprintf(err, errlen, "autoscale group %s: node_label (key=value of its nodes) is required", gc->name);
		return -1;
	}
	return 0;
}

static int load_group(struct as_group_cfg *gc, const char *name, char *err, size_t errlen)
{
	char k[192];

	memset(gc, 0, sizeof *gc);
	snprintf(gc->name, sizeof gc->name, "%s", name);
	if (load_mode(gc, err, errlen) < 0 || load_shape(gc, err, errlen) < 0)
		return -1;
	gc->g.min = (int)cfg_int(gkey(name, "min", k, sizeof k), 0);
	gc->g.max = (int)cfg_int(gkey(name, "max", k, sizeof k), 10);
	gc->g.scale_down_idle_s = cfg_double(gkey(name, "scale_down_idle_seconds", k, sizeof k), AS_IDLE_S);
	gc->cooldown_s = cfg_double(gkey(name, "cooldown_seconds", k, sizeof k), AS_COOLDOWN_S);
	if (gc->g.min < 0 || gc->g.max < gc->g.min) {
		snprintf(err, errlen, "autoscale group %s: need 0 <= min <= max", name);
		return -1;
	}
	return 0;
}

/* kube.tolerations (JSON array of tolerations) into the pod's view. */
static int load_tolerations(struct as_config *c, char *err, size_t errlen)
{
	const char *text = cfg_str("kube.tolerations", "");
	struct json_object *a = text[0] ? json_tokener_parse(text) : NULL;
	static const char *const keys[4] = {"key", "operator", "value", "effect"};

	if (text[0] && (!a || !json_object_is_type(a, json_type_array))) {
		json_object_put(a);
		snprintf(err, errlen, "kube.tolerations is not a JSON array");
		return -1;
	}
	for (size_t i = 0; a && i < json_object_array_length(a) && c->ntol < AS_MAX_KV; i++) {
		struct json_object *t = json_object_array_get_idx(a, i), *v;
		const char *f[4] = {NULL, NULL, NULL, NULL};

		for (int k = 0; k < 4; k++)
			if (json_object_object_get_ex(t, keys[k], &v) && json_object_is_type(v, json_type_string)) {
				snprintf(c->tol_store[c->ntol][k], 128, "%s", json_object_get_string(v));
				f[k] = c->tol_store[c->ntol][k];
			}
		c->pod_tol[c->ntol++] = (struct as_toleration){f[0], f[1], f[2], f[3]};
	}
	json_object_put(a);
	return 0;
}

int as_config_load(struct as_config *c, char *err, size_t errlen)
{
	char names[1024], *save = NULL, *tok;
	int n;

	memset(c, 0, sizeof *c);
	c->period_s = cfg_double("autoscale.period_seconds", AS_PERIOD_S);
	c->almost_empty = cfg_double("autoscale.almost_empty", 0.25);
	c->provision_timeout_s = cfg_double("hub.provision_timeout", AS_PROVISION_S);
	n = parse_kv(cfg_str("kube.node_selector", ""), c->sel_store, AS_MAX_KV, NULL);
	if (n < 0 || load_tolerations(c, err, errlen) < 0) {
		if (n < 0)
			snprintf(err, errlen, "kube.node_selector: more than %d labels", AS_MAX_KV);
		return -1;
	}
	c->nselector = n;
	for (int i = 0; i < n; i++)
		c->pod_selector[i] = (struct as_kv){c->sel_store[i][0], c->sel_store[i][1]};
	snprintf(names, sizeof names, "%s", cfg_str("autoscale.groups", ""));
	for (tok = strtok_r(names, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (c->ngroups == AS_MAX_GROUPS) {
			snprintf(err, errlen, "autoscale.groups: more than %d groups", AS_MAX_GROUPS);
			return -1;
		}
		if (load_group(&c->groups[c->ngroups], tok, err, errlen) < 0)
			return -1;
		c->ngroups++;
	}
	return 0;
}

struct as_pod as_config_pod(const struct as_config *c, int cpu_m, int mem_mib)
{
	struct as_pod p = {cpu_m, mem_mib, c->pod_selector, c->nselector, c->pod_tol, c->ntol};

	return p;
}

int as_config_has_mode(const struct as_config *c, enum as_mode m)
{
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i].mode == m)
			return 1;
	return 0;
}

const char *as_mode_name(enum as_mode m)
{
	return m == AS_MODE_EXTERNAL ? "external" : "clusterapi";
}

/* Groups whose nodes admit a model pod (selector, tolerations) as nodes. */
static int group_caps(struct rec_config *cfg)
{
	struct as_config *c = calloc(1, sizeof(*c));
	struct rec_node nodes[AS_MAX_GROUPS];
	struct as_pod pod;
	char err[200];
	int n = 0;

	if (!c)
		return 0;
	if (as_config_load(c, err, sizeof err) == 0) {
		pod = as_config_pod(c, 0, 0);
		for (int g = 0; g < c->ngroups; g++) {
			nodes[g].cpu_m = (int)c->groups[g].g.cpu_m;
			nodes[g].mem_mib = (int)c->groups[g].g.mem_mib;
			nodes[g].eligible = as_group_fits(&c->groups[g].g, &pod);
		}
		n = rec_cap_from_nodes(cfg, nodes, c->ngroups);
	}
	free(c);
	return n;
}

const char *as_config_rec_caps(struct rec_config *cfg, const struct rec_node *seen, int nseen)
{
	int cpu = cfg->max_cpu_m, mem = cfg->max_mem_mib;
	const char *src = "machine";

	if (strcmp(cfg_str("hub.backend", "local"), "kubernetes") == 0 && group_caps(cfg) > 0)
		src = "node_groups";
	else if (rec_cap_from_nodes(cfg, seen, nseen) > 0)
		src = "nodes";
	if (cfg_str("recommend.max_cpu_m", NULL))
		cfg->max_cpu_m = cpu;
	if (cfg_str("recommend.max_mem_mib", NULL))
		cfg->max_mem_mib = mem;
	return src;
}
