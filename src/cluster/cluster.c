/*
 * cluster.c — backend selection and the dispatch wrappers of cluster.h.
 *
 * Runs in: modelhubd children. Called by: runner.c, monitor.c, kubewatch.c,
 * kubescrape.c.
 * Owns: nothing beyond the struct cluster handed out by cluster_new().
 */
#include "cluster/cluster.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cluster *cluster_new(const char *backend)
{
	if (!backend || strcmp(backend, "local") == 0)
		return cluster_local_new();
	if (strcmp(backend, "kubernetes") == 0)
		return cluster_kube_new(); /* kube.c */
	log_error_x("cluster backend=\"%s\" msg=\"unknown backend\"", backend);
	return NULL;
}

void cluster_free(struct cluster *c)
{
	if (c && c->ops->free)
		c->ops->free(c);
}

int cluster_create(struct cluster *c, const struct cluster_spec *spec, struct cluster_instance *out)
{
	memset(out, 0, sizeof *out);
	out->exit_code = -1;
	return c->ops->create(c, spec, out);
}

int cluster_get(struct cluster *c, const char *name, struct cluster_instance *out)
{
	return c->ops->get(c, name, out);
}

void cluster_set_probe(struct cluster *c, cluster_probe_fn fn, void *ctx)
{
	c->probe = fn;
	c->probe_ctx = ctx;
}

void cluster_set_io(struct cluster *c, const struct cluster_io *io)
{
	c->io = io ? *io : (struct cluster_io){0};
}

/* The backend's wait: the caller's loop when it set one, else a sleep. */
void cluster_sleep(struct cluster *c, int ms)
{
	if (c->io.sleep) {
		c->io.sleep(c->io.ctx, ms);
		return;
	}
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

int cluster_delete(struct cluster *c, const char *name, int grace_ms)
{
	return c->ops->remove(c, name, grace_ms);
}

int cluster_logs(struct cluster *c, const char *name, struct buf *out, size_t max_bytes)
{
	return c->ops->logs(c, name, out, max_bytes, 0);
}

int cluster_logs_tail(struct cluster *c, const char *name, struct buf *out, size_t max_bytes,
		      int tail_lines)
{
	return c->ops->logs(c, name, out, max_bytes, tail_lines > 0 ? tail_lines : 0);
}

int cluster_events(struct cluster *c, const char *name, struct cluster_event **out, int *n)
{
	*out = NULL;
	*n = 0;
	return c->ops->events ? c->ops->events(c, name, out, n) : 0;
}

/* An optional operation the backend lacks: say so once per call site. */
static int unsupported(const struct cluster *c, const char *what)
{
	log_warn_x("cluster backend=%s op=%s msg=\"not supported by this backend\"", c->ops->name,
		   what);
	return -1;
}

int cluster_watch(struct cluster *c, struct cluster_watch *w)
{
	return c->ops->watch ? c->ops->watch(c, w) : unsupported(c, "watch");
}

int cluster_pods(struct cluster *c, struct cluster_pod_row **out, int *n, int64_t *synced_ms)
{
	*out = NULL;
	*n = 0;
	*synced_ms = 0;
	return c->ops->pods ? c->ops->pods(c, out, n, synced_ms) : unsupported(c, "pods");
}

int cluster_reap(struct cluster *c, const char *name, int grace_ms)
{
	return c->ops->reap ? c->ops->reap(c, name, grace_ms) : unsupported(c, "reap");
}

int cluster_scrape(struct cluster *c, struct cluster_scrape *s)
{
	s->nodes = s->nodes_ok = s->fallback = 0;
	s->bytes = 0;
	return c->ops->scrape ? c->ops->scrape(c, s) : unsupported(c, "scrape");
}

int cluster_node_list(struct cluster *c, struct cluster_node_info **out, int *n)
{
	*out = NULL;
	*n = 0;
	return c->ops->node_list ? c->ops->node_list(c, out, n) : unsupported(c, "node_list");
}

int cluster_group_size(struct cluster *c, const char *ns, const char *name, struct cluster_group_size *out)
{
	return c->ops->group_size ? c->ops->group_size(c, ns, name, out) : unsupported(c, "group_size");
}

int cluster_group_scale(struct cluster *c, const char *ns, const char *name, int from, int to)
{
	return c->ops->group_scale ? c->ops->group_scale(c, ns, name, from, to) : unsupported(c, "group_scale");
}

int cluster_node_cordon(struct cluster *c, const char *node, int on)
{
	return c->ops->node_cordon ? c->ops->node_cordon(c, node, on) : unsupported(c, "node_cordon");
}

int cluster_pod_no_evict(struct cluster *c, const char *pod, int on)
{
	return c->ops->pod_no_evict ? c->ops->pod_no_evict(c, pod, on) : unsupported(c, "pod_no_evict");
}

int cluster_events_watch(struct cluster *c, struct cluster_events_watch *w)
{
	return c->ops->events_watch ? c->ops->events_watch(c, w) : unsupported(c, "events_watch");
}

int cluster_pod_owner(struct cluster *c, const char *pod, const char *replica)
{
	return c->ops->pod_owner ? c->ops->pod_owner(c, pod, replica) : unsupported(c, "pod_owner");
}

int cluster_machine_mark(struct cluster *c, const char *ns, const char *machine)
{
	return c->ops->machine_mark ? c->ops->machine_mark(c, ns, machine) : unsupported(c, "machine_mark");
}

int cluster_engine_status(struct cluster *c, struct buf *out)
{
	return c->ops->engine_status ? c->ops->engine_status(c, out) : unsupported(c, "engine_status");
}

const char *cluster_term_name(enum cluster_term t)
{
	switch (t) {
	case CLUSTER_TERM_COMPLETED: return "COMPLETED";
	case CLUSTER_TERM_FAILED: return "FAILED";
	case CLUSTER_TERM_OOMKILLED: return "OOMKILLED";
	case CLUSTER_TERM_STOPPED: return "STOPPED";
	case CLUSTER_TERM_NONE: break;
	}
	return NULL;
}

const char *cluster_state_name(enum cluster_state s)
{
	switch (s) {
	case CLUSTER_PENDING: return "PENDING";
	case CLUSTER_STARTING: return "STARTING";
	case CLUSTER_READY: return "READY";
	case CLUSTER_EXITED: return "EXITED";
	}
	return "?";
}
