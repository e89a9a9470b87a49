/* 080-autoscale-plan.c — unit test of the node autoscaler's placement planner (autoscale/plan.c). */
#include "autoscale/plan.h"
#include "t/lib/tap.h"

#include <string.h>

#define NP 64
#define NN 16
#define NG 4

static struct as_pod pods[NP];
static struct as_node nodes[NN];
static struct as_group groups[NG];
static int add[NG];
static struct as_pod_result pres[NP];
static struct as_node_result nres[NN];
static struct as_plan out = {add, pres, nres};
static const struct as_settings set = {0.25};

static struct as_pod pod(int64_t cpu, int64_t mem)
{
	struct as_pod p = {cpu, mem, NULL, 0, NULL, 0};

	return p;
}

static struct as_group group(int64_t cpu, int64_t mem, int min, int max)
{
	struct as_group g = {cpu, mem, 110, NULL, 0, NULL, 0, min, max, 0, 0, 600, 0};

	return g;
}

/* A Ready managed node of group g with the given used requests. */
static struct as_node node(int g, int64_t cpu, int64_t mem, int64_t ucpu, int64_t umem)
{
	struct as_node n = {g, cpu, mem, 110, ucpu, umem, ucpu ? 1 : 0, NULL, 0, NULL, 0, 1, 0, 0, 0, 0, 0, 0};

	return n;
}

static int count_fate(int np, enum as_pod_fate f, int g)
{
	int n = 0;

	for (int i = 0; i < np; i++)
		n += pres[i].fate == f && (g < 0 || pres[i].group == g);
	return n;
}

static void scale_up(void)
{
	for (int i = 0; i < 10; i++)
		pods[i] = pod(2000, 2048);
	groups[0] = group(4000, 8192, 0, 10);
	is_int(as_plan_compute(pods, 10, NULL, 0, groups, 1, &set, &out), 0, "plan computed");
	is_int(add[0], 5, "10 pods of 2 CPU on 4-CPU nodes: 5 nodes");
	is_int(count_fate(10, AS_POD_SCALE_UP, 0), 10, "every pod placed on a new node of group 0");

	groups[0].max = 3;
	as_plan_compute(pods, 10, NULL, 0, groups, 1, &set, &out);
	is_int(add[0], 3, "max 3: 3 nodes, never past max");
	is_int(count_fate(10, AS_POD_SCALE_UP, 0), 6, "6 pods on them");
	is_int(count_fate(10, AS_POD_AT_MAX, 0), 4, "4 pods AT_MAX naming group 0");

	groups[0].max = 10;
	groups[0].current = 5;
	groups[0].provisioning = 5;
	as_plan_compute(pods, 10, NULL, 0, groups, 1, &set, &out);
	is_int(add[0], 0, "second pass with 5 nodes provisioning: nothing added");
	is_int(count_fate(10, AS_POD_FITS_PROVISIONING, 0), 10, "all pods counted on provisioning nodes");

	groups[0].provisioning = 3;
	as_plan_compute(pods, 10, NULL, 0, groups, 1, &set, &out);
	is_int(add[0], 2, "3 of 5 provisioning (2 registered elsewhere full): 2 more");
	groups[0].current = 9;
	groups[0].provisioning = 0;
	as_plan_compute(pods, 10, NULL, 0, groups, 1, &set, &out);
	is_int(add[0], 1, "current 9 of max 10: 1 node only");
}

static void shapes(void)
{
	static const struct as_kv gpu_label[] = {{"accel", "gpu"}};
	static const struct as_kv gpu_sel[] = {{"accel", "gpu"}};
	static const struct as_taint gpu_taint[] = {{"modelhub.io/gpu", "true", "NoSchedule"}};
	static const struct as_toleration gpu_tol[] = {{"modelhub.io/gpu", "Equal", "true", "NoSchedule"}};
	static const struct as_toleration any_tol[] = {{NULL, "Exists", NULL, NULL}};

	groups[0] = group(2000, 4096, 0, 10);   /* small */
	groups[1] = group(8000, 32768, 0, 10);  /* big */
	pods[0] = pod(500, 512);
	pods[1] = pod(6000, 8192);
	as_plan_compute(pods, 1, NULL, 0, groups, 2, &set, &out);
	ok(pres[0].group == 0 && add[0] == 1 && add[1] == 0, "a small pod alone: the small group (least waste)");
	as_plan_compute(pods + 1, 1, NULL, 0, groups, 2, &set, &out);
	ok(pres[0].group == 1 && add[0] == 0 && add[1] == 1, "a 6-CPU pod: the big group (the only one it fits)");
	as_plan_compute(pods, 2, NULL, 0, groups, 2, &set, &out);
	ok(add[0] == 0 && add[1] == 1 && pres[0].group == 1, "both: one big node holds both (less waste than big + small)");

	for (int i = 0; i < 8; i++)
		pods[i] = pod(1900, 3500);
	as_plan_compute(pods, 8, NULL, 0, groups, 2, &set, &out);
	is_int(add[0], 8, "8 pods of 1.9 CPU / 3.5 GiB: 8 small nodes (5%% waste) rather than 2 big (24%%)");
	is_int(add[1], 0, "  and no big node");

	groups[2] = group(16000, 65536, 0, 2);
	groups[2].labels = gpu_label;
	groups[2].nlabels = 1;
	groups[2].taints = gpu_taint;
	groups[2].ntaints = 1;
	pods[0] = pod(1000, 1024);
	pods[0].selector = gpu_sel;
	pods[0].nselector = 1;
	as_plan_compute(pods, 1, NULL, 0, groups, 3, &set, &out);
	is_int(pres[0].fate, AS_POD_NO_GROUP, "selector accel=gpu without toleration: no group");
	pods[0].tol = gpu_tol;
	pods[0].ntol = 1;
	as_plan_compute(pods, 1, NULL, 0, groups, 3, &set, &out);
	ok(pres[0].fate == AS_POD_SCALE_UP && pres[0].group == 2, "with the toleration: the gpu group");
	pods[0].tol = any_tol;
	is_int(as_fits_any(groups, 3, &pods[0]), 2, "an Exists toleration with no key tolerates every taint");
	pods[0].selector = NULL;
	pods[0].nselector = 0;
	pods[0].tol = NULL;
	pods[0].ntol = 0;
	pods[0].cpu_m = 20000;
	as_plan_compute(pods, 1, NULL, 0, groups, 3, &set, &out);
	ok(pres[0].fate == AS_POD_NO_GROUP && pres[0].group == -1, "20 CPUs: NO_GROUP");
	is_int(as_fits_any(groups, 3, &pods[0]), -1, "as_fits_any agrees");
	pods[0].cpu_m = 12000;
	is_int(as_fits_any(groups, 3, &pods[0]), -1, "12 CPUs fit only the tainted group: not for an untolerating pod");
}

static void existing(void)
{
	groups[0] = group(4000, 8192, 0, 10);
	nodes[0] = node(0, 4000, 8192, 1000, 1024);  /* 3 CPU free */
	nodes[1] = node(0, 4000, 8192, 2500, 1024);  /* 1.5 CPU free */
	nodes[2] = node(0, 4000, 8192, 0, 0);
	nodes[2].cordoned = 1;
	pods[0] = pod(1000, 1024);
	as_plan_compute(pods, 1, nodes, 3, groups, 1, &set, &out);
	ok(pres[0].fate == AS_POD_FITS_NODE && pres[0].node == 1, "a pod that fits: on the fullest node (best fit)");
	is_int(add[0], 0, "nothing added");
	pods[0] = pod(3500, 1024);
	as_plan_compute(pods, 1, nodes, 3, groups, 1, &set, &out);
	ok(pres[0].fate == AS_POD_SCALE_UP, "3.5 CPUs: only the cordoned node has room, so a new node");
	nodes[2].cordoned = 0;
	nodes[2].ready = 0;
	as_plan_compute(pods, 1, nodes, 3, groups, 1, &set, &out);
	ok(pres[0].fate == AS_POD_FITS_PROVISIONING && pres[0].node == 2, "a registering (NotReady) node counts as coming capacity");
	is_int(nres[2].why, AS_KEEP_NOT_READY, "  and is never removed");
}

static void down_setup(void)
{
	groups[0] = group(4000, 8192, 1, 10);
	groups[0].current = 4;
	for (int i = 0; i < 4; i++) {
		nodes[i] = node(0, 4000, 8192, 0, 0);
		nodes[i].idle_s = 700 + i;
	}
}

static void scale_down(void)
{
	down_setup();
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	is_int(nres[0].action + nres[1].action + nres[2].action + nres[3].action, 3 * AS_NODE_REMOVE,
	       "4 empty idle nodes, min 1: 3 removed");
	ok(nres[0].action == AS_NODE_KEEP && nres[0].why == AS_KEEP_AT_MIN, "the one idle the shortest stays (at_min)");

	down_setup();
	nodes[1].model_pods = 1;
	nodes[1].busy_pods = 1;
	nodes[1].used_cpu_m = 500;
	nodes[2].idle_s = 30;
	nodes[3].other_pods = 1;
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	is_int(nres[1].why, AS_KEEP_BUSY, "a node with a busy model pod: kept (busy)");
	is_int(nres[2].why, AS_KEEP_IDLE_SHORT, "idle 30 s of 600: kept");
	is_int(nres[3].why, AS_KEEP_OTHER_PODS, "pods not ours: kept");
	is_int(nres[0].action, AS_NODE_REMOVE, "the empty idle one: removed");

	down_setup();
	nodes[0].group = -1;
	groups[0].cooldown_left_s = 100;
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	is_int(nres[0].why, AS_KEEP_UNMANAGED, "a node of no managed group: kept");
	is_int(nres[1].why, AS_KEEP_COOLDOWN, "cool-down after a scale-up: kept");

	down_setup();
	pods[0] = pod(1000, 1024);
	as_plan_compute(pods, 1, nodes, 4, groups, 1, &set, &out);
	is_int(pres[0].fate, AS_POD_FITS_NODE, "a pending pod fits an empty node");
	is_int(nres[pres[0].node].why, AS_KEEP_NEEDED, "  which is kept (needed)");
	pods[0] = pod(6000, 1024);
	groups[0] = group(8000, 16384, 1, 10);
	groups[0].current = 4;
	as_plan_compute(pods, 1, nodes, 4, groups, 1, &set, &out);
	is_int(add[0], 1, "a pod fitting only a new node: the group grows");
	is_int(nres[3].why, AS_KEEP_NEEDED, "  and none of its nodes is removed in the same pass");

	down_setup();
	nodes[0].draining = 1;
	nodes[0].cordoned = 1;
	nodes[0].idle_s = 5;
	groups[0].current = 1;
	as_plan_compute(pods, 0, nodes, 1, groups, 1, &set, &out);
	ok(nres[0].action == AS_NODE_KEEP && nres[0].why == AS_KEEP_AT_MIN, "group at min: a draining node is not removed");
	down_setup();
	nodes[0].draining = 1;
	nodes[0].cordoned = 1;
	nodes[0].idle_s = 5;
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	is_int(nres[0].action, AS_NODE_REMOVE, "a draining node that became empty: removed at once, first");
	is_int(nres[1].why, AS_KEEP_AT_MIN, "  the group's min kept among the others");
}

static void almost_empty(void)
{
	down_setup();
	groups[0].min = 0;
	nodes[0].model_pods = 1;
	nodes[0].used_cpu_m = 500;
	nodes[0].used_mem_mib = 512;
	nodes[0].used_pods = 1;
	for (int i = 1; i < 4; i++) {
		nodes[i].model_pods = 2;
		nodes[i].busy_pods = 1;
		nodes[i].used_cpu_m = 3000;
		nodes[i].used_mem_mib = 4096;
	}
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	is_int(nres[0].action, AS_NODE_DRAIN, "one idle small model pod, 12%% used, room elsewhere: drained");
	nodes[0].used_cpu_m = 1500;
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	ok(nres[0].action == AS_NODE_KEEP && nres[0].why == AS_KEEP_MODEL_POD, "37%% used: not almost empty, kept");
	nodes[0].used_cpu_m = 500;
	nodes[1].used_cpu_m = nodes[2].used_cpu_m = nodes[3].used_cpu_m = 3800;
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	is_int(nres[0].why, AS_KEEP_MODEL_POD, "no room elsewhere for its pod: kept");
	nodes[1].used_cpu_m = 3000;
	nodes[0].busy_pods = 1;
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &set, &out);
	is_int(nres[0].why, AS_KEEP_BUSY, "its pod turns busy: kept, never evicted");
	nodes[0].busy_pods = 0;
	as_plan_compute(pods, 0, nodes, 4, groups, 1, &(struct as_settings){0}, &out);
	is_int(nres[0].why, AS_KEEP_MODEL_POD, "almost_empty 0 disables draining");
}

static void names(void)
{
	is_str(as_pod_fate_name(AS_POD_NO_GROUP), "no_group", "fate names");
	is_str(as_node_action_name(AS_NODE_DRAIN), "drain", "action names");
	is_str(as_keep_why_name(AS_KEEP_AT_MIN), "at_min", "reason names");
	is_str(as_keep_why_name((enum as_keep_why)99), "unknown", "out of range: unknown");
}

int main(void)
{
	scale_up();
	shapes();
	existing();
	scale_down();
	almost_empty();
	names();
	return done_testing();
}
