/*
 * plan.c — the node autoscaler's placement planner (see plan.h for the
 * rules): first-fit decreasing onto existing and provisioning nodes, then
 * least-waste expansion of node groups, then the scale-down verdict per node.
 *
 * Runs in: the autoscaler child, FastCGI workers (as_fits_any), bench/autoscale.
 * Called by: src/hubd/autoscaler.c, src/fcgi/api_models.c, bench/autoscale.c.
 * Owns: a scratch block per as_plan_compute() call (freed before it returns).
 * Shared state: none. Pure; unit test t/080-autoscale-plan.c.
 */
#include "autoscale/plan.h"

#include <stdlib.h>
#include <string.h>

#define AS_DEFAULT_PODS 110 /* a node's pod capacity when the group does not say */

/* Free room of one bin: an existing node, a provisioning node or a new one. */
struct bin {
	int64_t cpu, mem;
	int pods;
	int node;  /* index in nodes, or -1 */
	int group; /* group of a provisioning or new node, or -1 */
	int fate;  /* AS_POD_FITS_NODE / FITS_PROVISIONING / SCALE_UP */
};

struct scratch {
	int *order;       /* pods, largest first */
	int *placed;      /* per pod: 1 once placed */
	struct bin *bins; /* existing + provisioning + committed new bins */
	int nbins, cap;
	struct bin *trial; /* one group's trial packing */
	int *trial_of;     /* per pod: trial bin or -1 */
	unsigned char *fits; /* [group * npods + pod]: as_group_fits */
};

static int str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static int selector_ok(const struct as_pod *p, const struct as_kv *labels, int nlabels)
{
	for (int i = 0; i < p->nselector; i++) {
		int found = 0;

		for (int j = 0; j < nlabels && !found; j++)
			found = str_eq(labels[j].key, p->selector[i].key) &&
				str_eq(labels[j].value, p->selector[i].value);
		if (!found)
			return 0;
	}
	return 1;
}

static int tolerates(const struct as_pod *p, const struct as_taint *t)
{
	for (int i = 0; i < p->ntol; i++) {
		const struct as_toleration *o = &p->tol[i];

		if (o->effect && *o->effect && !str_eq(o->effect, t->effect))
			continue;
		if (o->op && strcmp(o->op, "Exists") == 0) {
			if (!o->key || !*o->key || str_eq(o->key, t->key))
				return 1;
		} else if (str_eq(o->key, t->key) && str_eq(o->value, t->value)) {
			return 1;
		}
	}
	return 0;
}

static int taints_ok(const struct as_pod *p, const struct as_taint *t, int n)
{
	for (int i = 0; i < n; i++)
		if (!str_eq(t[i].effect, "PreferNoSchedule") && !tolerates(p, &t[i]))
			return 0;
	return 1;
}

int as_group_fits(const struct as_group *g, const struct as_pod *p)
{
	return p->cpu_m <= g->cpu_m && p->mem_mib <= g->mem_mib &&
	       selector_ok(p, g->labels, g->nlabels) && taints_ok(p, g->taints, g->ntaints);
}

int as_fits_any(const struct as_group *groups, int ngroups, const struct as_pod *p)
{
	for (int i = 0; i < ngroups; i++)
		if (as_group_fits(&groups[i], p))
			return i;
	return -1;
}

static int node_admits(const struct as_node *n, const struct as_pod *p)
{
	return !n->cordoned && selector_ok(p, n->labels, n->nlabels) && taints_ok(p, n->taints, n->ntaints);
}

static int bin_room(const struct bin *b, const struct as_pod *p)
{
	return b->cpu >= p->cpu_m && b->mem >= p->mem_mib && b->pods >= 1;
}

static void bin_take(struct bin *b, const struct as_pod *p)
{
	b->cpu -= p->cpu_m;
	b->mem -= p->mem_mib;
	b->pods--;
}

static struct bin group_bin(const struct as_group *g, int gi, int fate)
{
	struct bin b = {g->cpu_m, g->mem_mib, g->pods > 0 ? g->pods : AS_DEFAULT_PODS, -1, gi, fate};

	return b;
}

/* ---- ordering: largest first ---------------------------------------------- */

struct sized {
	double size;
	int idx;
};

static int by_size_desc(const void *a, const void *b)
{
	const struct sized *x = a, *y = b;

	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->idx - y->idx;
}

/* order[] = pod indexes, largest first; size = the larger of the cpu and
 * memory fractions of the largest group shape. Returns 0 or -1 (memory). */
static int sort_pods(const struct as_pod *pods, int npods, const struct as_group *groups, int ngroups,
		     int *order)
{
	int64_t cmax = 1, mmax = 1;
	struct sized *s = malloc(sizeof *s * (size_t)(npods ? npods : 1));

	if (!s)
		return -1;
	for (int i = 0; i < ngroups; i++) {
		cmax = groups[i].cpu_m > cmax ? groups[i].cpu_m : cmax;
		mmax = groups[i].mem_mib > mmax ? groups[i].mem_mib : mmax;
	}
	for (int i = 0; i < npods; i++) {
		double c = (double)pods[i].cpu_m / (double)cmax, m = (double)pods[i].mem_mib / (double)mmax;

		s[i] = (struct sized){c > m ? c : m, i};
	}
	qsort(s, (size_t)npods, sizeof *s, by_size_desc);
	for (int i = 0; i < npods; i++)
		order[i] = s[i].idx;
	free(s);
	return 0;
}

/* ---- steps 2 and 3: existing, registering and provisioning nodes -------------- */

/* Bins for the existing schedulable nodes and the provisioning machines. */
static void make_bins(const struct as_node *nodes, int nnodes, const struct as_group *groups, int ngroups,
		      struct scratch *s)
{
	s->nbins = 0;
	for (int i = 0; i < nnodes; i++) {
		const struct as_node *n = &nodes[i];

		if (n->cordoned)
			continue;
		s->bins[s->nbins++] = (struct bin){n->alloc_cpu_m - n->used_cpu_m, n->alloc_mem_mib - n->used_mem_mib,
						   n->alloc_pods - n->used_pods, i, n->group,
						   n->ready ? AS_POD_FITS_NODE : AS_POD_FITS_PROVISIONING};
	}
	for (int g = 0; g < ngroups; g++)
		for (int k = 0; k < groups[g].provisioning; k++)
			s->bins[s->nbins++] = group_bin(&groups[g], g, AS_POD_FITS_PROVISIONING);
}

static int bin_admits(const struct bin *b, const struct as_node *nodes, const struct as_group *groups,
		      const struct as_pod *p)
{
	if (!bin_room(b, p))
		return 0;
	if (b->node >= 0)
		return node_admits(&nodes[b->node], p);
	return selector_ok(p, groups[b->group].labels, groups[b->group].nlabels) &&
	       taints_ok(p, groups[b->group].taints, groups[b->group].ntaints);
}

/* Best fit: the admitting bin left with the least room (cpu and memory
 * fractions summed), so pods pack onto the fullest nodes. */
static int best_bin(const struct scratch *s, const struct as_node *nodes, const struct as_group *groups,
		    const struct as_pod *p)
{
	int best = -1;
	double best_left = 0;

	for (int b = 0; b < s->nbins; b++) {
		const struct bin *x = &s->bins[b];
		double left;

		if (!bin_admits(x, nodes, groups, p))
			continue;
		left = (double)(x->cpu - p->cpu_m) / (double)(x->cpu > 0 ? x->cpu : 1) +
		       (double)(x->mem - p->mem_mib) / (double)(x->mem > 0 ? x->mem : 1);
		if (best < 0 || left < best_left) {
			best = b;
			best_left = left;
		}
	}
	return best;
}

static void place_known(const struct as_pod *pods, int npods, const struct as_node *nodes,
			const struct as_group *groups, struct scratch *s, struct as_plan *out)
{
	for (int k = 0; k < npods; k++) {
		int i = s->order[k], b = best_bin(s, nodes, groups, &pods[i]);

		if (b < 0)
			continue;
		bin_take(&s->bins[b], &pods[i]);
		s->placed[i] = 1;
		out->pods[i] = (struct as_pod_result){s->bins[b].fate, s->bins[b].group, s->bins[b].node};
	}
}

/* ---- step 4: least-waste expansion ---------------------------------------- */

/* The unplaced pod of group g that fits bin b and best matches its free
 * room (largest dot product of the normalised request and room, the
 * bin-centric "DotProduct" vector packing heuristic: a cpu-heavy pod goes
 * where cpu is left, a memory-heavy one beside it), or -1. */
static int best_pod(const struct as_pod *pods, int npods, const struct as_group *g, int gi,
		    const struct bin *b, const struct scratch *s)
{
	int best = -1;
	double best_dot = -1, rc = (double)b->cpu / (double)g->cpu_m, rm = (double)b->mem / (double)g->mem_mib;

	for (int k = 0; k < npods; k++) {
		int i = s->order[k];
		double dot;

		if (s->placed[i] || s->trial_of[i] != -1 || !bin_room(b, &pods[i]) || !s->fits[gi * npods + i])
			continue;
		dot = rc * (double)pods[i].cpu_m / (double)g->cpu_m + rm * (double)pods[i].mem_mib / (double)g->mem_mib;
		if (dot > best_dot) {
			best = i;
			best_dot = dot;
		}
	}
	return best;
}

static double bin_waste(const struct bin *b, const struct as_group *g)
{
	return ((double)b->cpu / (double)g->cpu_m + (double)b->mem / (double)g->mem_mib) / 2.0;
}

/* Strategy 1, bin-centric: fill one new node at a time with best_pod(). */
static int pack_dot(const struct as_pod *pods, int npods, const struct as_group *g, int gi, int room,
		    struct scratch *s, int *placed_n)
{
	int used = 0, i;

	while (used < room) {
		struct bin *b = &s->trial[used];

		*b = group_bin(g, gi, AS_POD_SCALE_UP);
		if ((i = best_pod(pods, npods, g, gi, b, s)) < 0)
			break;
		do {
			bin_take(b, &pods[i]);
			s->trial_of[i] = used;
			(*placed_n)++;
		} while ((i = best_pod(pods, npods, g, gi, b, s)) >= 0);
		used++;
	}
	return used;
}

/* The trial bin where pod p leaves the least room, or -1. */
static int best_fit(const struct bin *bins, int n, const struct as_group *g, const struct as_pod *p)
{
	int best = -1;
	double best_left = 0;

	for (int b = 0; b < n; b++) {
		double left;

		if (!bin_room(&bins[b], p))
			continue;
		left = (double)(bins[b].cpu - p->cpu_m) / (double)g->cpu_m +
		       (double)(bins[b].mem - p->mem_mib) / (double)g->mem_mib;
		if (best < 0 || left < best_left) {
			best = b;
			best_left = left;
		}
	}
	return best;
}

/* Strategy 2, item-centric: largest pod first onto the best-fitting node. */
static int pack_bfd(const struct as_pod *pods, int npods, const struct as_group *g, int gi, int room,
		    struct scratch *s, int *placed_n)
{
	int used = 0;

	for (int k = 0; k < npods; k++) {
		int i = s->order[k], b;

		if (s->placed[i] || !s->fits[gi * npods + i])
			continue;
		if ((b = best_fit(s->trial, used, g, &pods[i])) < 0) {
			if (used == room)
				continue;
			b = used;
			s->trial[used++] = group_bin(g, gi, AS_POD_SCALE_UP);
		}
		bin_take(&s->trial[b], &pods[i]);
		s->trial_of[i] = b;
		(*placed_n)++;
	}
	return used;
}

/* Strategy 3: pods in arrival (creation) order, each onto the first new
 * node with room. Often worse, but on some mixes of cpu-heavy and
 * memory-heavy pods it pairs them where the sorted strategies do not. */
static int pack_ff(const struct as_pod *pods, int npods, const struct as_group *g, int gi, int room,
		   struct scratch *s, int *placed_n)
{
	int used = 0;

	for (int i = 0; i < npods; i++) {
		int b;

		if (s->placed[i] || !s->fits[gi * npods + i])
			continue;
		for (b = 0; b < used && !bin_room(&s->trial[b], &pods[i]); b++)
			;
		if (b == used) {
			if (used == room)
				continue;
			s->trial[used++] = group_bin(g, gi, AS_POD_SCALE_UP);
		}
		bin_take(&s->trial[b], &pods[i]);
		s->trial_of[i] = b;
		(*placed_n)++;
	}
	return used;
}

typedef int (*pack_fn)(const struct as_pod *, int, const struct as_group *, int, int, struct scratch *, int *);
static const pack_fn strategies[] = {pack_dot, pack_bfd, pack_ff};
#define NSTRATEGIES ((int)(sizeof strategies / sizeof *strategies))

static int run_strategy(int k, const struct as_pod *pods, int npods, const struct as_group *groups, int g,
			int room, struct scratch *s, int *placed_n)
{
	for (int i = 0; i < npods; i++)
		s->trial_of[i] = -1;
	*placed_n = 0;
	return strategies[k](pods, npods, &groups[g], g, room, s, placed_n);
}

/* Pack the unplaced pods that fit group g onto at most room new nodes with
 * each strategy; the one placing the most pods on the fewest nodes wins and
 * is left in trial[]/trial_of[]. Returns the nodes used; *placed_n and
 * *waste (mean unrequested fraction of cpu and memory on them) describe it. */
static int trial_pack(const struct as_pod *pods, int npods, const struct as_group *groups, int g, int room,
		      struct scratch *s, int *placed_n, double *waste)
{
	int best = 0, best_used = -1, best_placed = 0, used = 0;
	double free_frac = 0;

	for (int k = 0; k < NSTRATEGIES; k++) {
		int placed, n = run_strategy(k, pods, npods, groups, g, room, s, &placed);

		if (best_used < 0 || placed > best_placed || (placed == best_placed && n < best_used)) {
			best = k;
			best_used = n;
			best_placed = placed;
		}
	}
	if (best != NSTRATEGIES - 1)
		used = run_strategy(best, pods, npods, groups, g, room, s, placed_n);
	else
		used = best_used, *placed_n = best_placed;
	for (int b = 0; b < used; b++)
		free_frac += bin_waste(&s->trial[b], &groups[g]);
	*waste = used ? free_frac / used : 0;
	return used;
}

static int group_room(const struct as_group *g, int added)
{
	int room = g->max - (g->current > g->min ? g->current : g->min) - added;

	return room > 0 ? room : 0;
}

/* One round: the group with the least waste. Returns it, or -1 when no group
 * can take any pod. */
static int pick_group(const struct as_pod *pods, int npods, const struct as_group *groups, int ngroups,
		      const int *add, struct scratch *s)
{
	int best = -1, best_placed = 0;
	double best_waste = 0;

	for (int g = 0; g < ngroups; g++) {
		int placed, room = group_room(&groups[g], add[g]);
		double waste;

		if (room == 0 || trial_pack(pods, npods, groups, g, room, s, &placed, &waste) == 0)
			continue;
		if (best < 0 || waste < best_waste - 1e-9 ||
		    (waste < best_waste + 1e-9 && placed > best_placed)) {
			best = g;
			best_waste = waste;
			best_placed = placed;
		}
	}
	return best;
}

static void expand(const struct as_pod *pods, int npods, const struct as_group *groups, int ngroups,
		   struct scratch *s, struct as_plan *out)
{
	int g;

	while ((g = pick_group(pods, npods, groups, ngroups, out->add, s)) >= 0) {
		int placed, used;
		double waste;

		used = trial_pack(pods, npods, groups, g, group_room(&groups[g], out->add[g]), s, &placed, &waste);
		for (int i = 0; i < npods; i++) {
			if (s->trial_of[i] < 0)
				continue;
			s->placed[i] = 1;
			out->pods[i] = (struct as_pod_result){AS_POD_SCALE_UP, g, -1};
		}
		out->add[g] += used;
	}
}

static void leftovers(const struct as_pod *pods, int npods, const struct as_group *groups, int ngroups,
		      const struct scratch *s, struct as_plan *out)
{
	for (int i = 0; i < npods; i++) {
		int g;

		if (s->placed[i])
			continue;
		g = as_fits_any(groups, ngroups, &pods[i]);
		out->pods[i] = (struct as_pod_result){g >= 0 ? AS_POD_AT_MAX : AS_POD_NO_GROUP, g, -1};
	}
}

/* ---- scale-down ----------------------------------------------------------- */

/* Whether the pods on node x would fit into the free room of the other
 * schedulable nodes (as one lump per node: requests summed; a conservative
 * test that needs no per-pod sizes). */
static int fits_elsewhere(const struct as_node *nodes, int nnodes, int x, const struct as_plan *out)
{
	const struct as_node *n = &nodes[x];

	for (int i = 0; i < nnodes; i++) {
		const struct as_node *o = &nodes[i];

		if (i == x || !o->ready || o->cordoned || out->nodes[i].action != AS_NODE_KEEP)
			continue;
		if (o->alloc_cpu_m - o->used_cpu_m >= n->used_cpu_m &&
		    o->alloc_mem_mib - o->used_mem_mib >= n->used_mem_mib && o->alloc_pods - o->used_pods >= n->used_pods)
			return 1;
	}
	return 0;
}

static int almost_empty(const struct as_node *n, const struct as_group *g, const struct as_settings *set)
{
	return set && set->almost_empty > 0 && n->busy_pods == 0 && n->other_pods == 0 &&
	       n->idle_s >= g->scale_down_idle_s &&
	       (double)n->used_cpu_m < set->almost_empty * (double)n->alloc_cpu_m &&
	       (double)n->used_mem_mib < set->almost_empty * (double)n->alloc_mem_mib;
}

/* Verdict for one node, ignoring the group minimum (applied afterwards). */
static struct as_node_result verdict(const struct as_node *nodes, int nnodes, int x, const struct as_group *groups,
				     const struct as_settings *set, const int *needed, const struct as_plan *out)
{
	const struct as_node *n = &nodes[x];
	const struct as_group *g = n->group >= 0 ? &groups[n->group] : NULL;

#define KEEP(w) ((struct as_node_result){AS_NODE_KEEP, (w)})
	if (!g)
		return KEEP(AS_KEEP_UNMANAGED);
	if (!n->ready)
		return KEEP(AS_KEEP_NOT_READY);
	if (needed[x] || out->add[n->group] > 0)
		return KEEP(AS_KEEP_NEEDED);
	if (n->busy_pods > 0)
		return KEEP(AS_KEEP_BUSY);
	if (n->other_pods > 0)
		return KEEP(AS_KEEP_OTHER_PODS);
	if (n->model_pods > 0) {
		if (n->draining || (g->cooldown_left_s <= 0 && almost_empty(n, g, set) &&
				    fits_elsewhere(nodes, nnodes, x, out)))
			return (struct as_node_result){AS_NODE_DRAIN, AS_KEEP_NONE};
		return KEEP(AS_KEEP_MODEL_POD);
	}
	if (!n->draining && n->idle_s < g->scale_down_idle_s)
		return KEEP(AS_KEEP_IDLE_SHORT);
	if (g->cooldown_left_s > 0)
		return KEEP(AS_KEEP_COOLDOWN);
	return (struct as_node_result){AS_NODE_REMOVE, AS_KEEP_NONE};
#undef KEEP
}

/* Rank for staying when the group would go below min: drains stay first,
 * then removals of nodes still schedulable, then of draining nodes (already
 * cordoned: finish those). */
static int stay_rank(const struct as_node *n, const struct as_node_result *r)
{
	return r->action == AS_NODE_DRAIN ? 0 : n->draining ? 2 : 1;
}

/* Never below min: while the group's drains and removals exceed
 * current - min, keep the lowest stay_rank, idle the shortest. */
static void apply_min(const struct as_node *nodes, int nnodes, const struct as_group *groups, int g,
		      struct as_plan *out)
{
	int left = groups[g].current - groups[g].min, count = 0;

	for (int i = 0; i < nnodes; i++)
		count += nodes[i].group == g && out->nodes[i].action != AS_NODE_KEEP;
	while (count > (left > 0 ? left : 0)) {
		int pick = -1;

		for (int i = 0; i < nnodes; i++) {
			const struct as_node_result *r = &out->nodes[i];

			if (nodes[i].group != g || r->action == AS_NODE_KEEP)
				continue;
			if (pick < 0 || stay_rank(&nodes[i], r) < stay_rank(&nodes[pick], &out->nodes[pick]) ||
			    (stay_rank(&nodes[i], r) == stay_rank(&nodes[pick], &out->nodes[pick]) &&
			     nodes[i].idle_s < nodes[pick].idle_s))
				pick = i;
		}
		out->nodes[pick] = (struct as_node_result){AS_NODE_KEEP, AS_KEEP_AT_MIN};
		count--;
	}
}

static void scale_down(const struct as_node *nodes, int nnodes, const struct as_group *groups, int ngroups,
		       const struct as_settings *set, const int *needed, struct as_plan *out)
{
	for (int i = 0; i < nnodes; i++)
		out->nodes[i] = (struct as_node_result){AS_NODE_KEEP, AS_KEEP_NONE};
	for (int i = 0; i < nnodes; i++)
		out->nodes[i] = verdict(nodes, nnodes, i, groups, set, needed, out);
	for (int g = 0; g < ngroups; g++)
		apply_min(nodes, nnodes, groups, g, out);
}

/* ---- entry ---------------------------------------------------------------- */

static void scratch_free(struct scratch *s)
{
	free(s->order);
	free(s->placed);
	free(s->bins);
	free(s->trial);
	free(s->trial_of);
	free(s->fits);
}

static int scratch_new(struct scratch *s, int npods, int nnodes, const struct as_group *groups, int ngroups)
{
	size_t np = (size_t)(npods > 0 ? npods : 1);

	memset(s, 0, sizeof *s);
	s->cap = nnodes;
	for (int g = 0; g < ngroups; g++)
		s->cap += groups[g].provisioning > 0 ? groups[g].provisioning : 0;
	s->order = malloc(sizeof *s->order * np);
	s->placed = calloc(np, sizeof *s->placed);
	s->bins = malloc(sizeof *s->bins * (size_t)(s->cap > 0 ? s->cap : 1));
	s->trial = malloc(sizeof *s->trial * (np + 1)); /* + the bin tried after the last pod */
	s->trial_of = malloc(sizeof *s->trial_of * np);
	s->fits = malloc(np * (size_t)(ngroups > 0 ? ngroups : 1));
	if (!s->order || !s->placed || !s->bins || !s->trial || !s->trial_of || !s->fits) {
		scratch_free(s);
		return -1;
	}
	return 0;
}

int as_plan_compute(const struct as_pod *pods, int npods, const struct as_node *nodes, int nnodes,
		    const struct as_group *groups, int ngroups, const struct as_settings *set,
		    struct as_plan *out)
{
	struct scratch s;
	int *needed;

	if (scratch_new(&s, npods, nnodes, groups, ngroups) < 0)
		return -1;
	needed = calloc((size_t)(nnodes > 0 ? nnodes : 1), sizeof *needed);
	if (!needed || sort_pods(pods, npods, groups, ngroups, s.order) < 0) {
		free(needed);
		scratch_free(&s);
		return -1;
	}
	for (int g = 0; g < ngroups; g++) {
		out->add[g] = 0;
		for (int i = 0; i < npods; i++)
			s.fits[g * npods + i] = (unsigned char)as_group_fits(&groups[g], &pods[i]);
	}
	make_bins(nodes, nnodes, groups, ngroups, &s);
	place_known(pods, npods, nodes, groups, &s, out);
	expand(pods, npods, groups, ngroups, &s, out);
	leftovers(pods, npods, groups, ngroups, &s, out);
	for (int i = 0; i < npods; i++)
		if (out->pods[i].node >= 0)
			needed[out->pods[i].node] = 1;
	scale_down(nodes, nnodes, groups, ngroups, set, needed, out);
	free(needed);
	scratch_free(&s);
	return 0;
}

const char *as_pod_fate_name(enum as_pod_fate f)
{
	static const char *const names[] = {"fits_node", "fits_provisioning", "scale_up", "at_max", "no_group"};

	return (unsigned)f < sizeof names / sizeof *names ? names[f] : "unknown";
}

const char *as_node_action_name(enum as_node_action a)
{
	static const char *const names[] = {"keep", "drain", "remove"};

	return (unsigned)a < sizeof names / sizeof *names ? names[a] : "unknown";
}

const char *as_keep_why_name(enum as_keep_why w)
{
	static const char *const names[] = {"none", "unmanaged", "not_ready", "needed", "busy", "model_pod",
					    "other_pods", "idle_short", "cooldown", "at_min"};

	return (unsigned)w < sizeof names / sizeof *names ? names[w] : "unknown";
}
