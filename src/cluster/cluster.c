/*
 * cluster.c — backend selection and the dispatch wrappers of cluster.h.
 *
 * Runs in: modelhubd children. Called by: runner.c, monitor.c, scraper.c.
 * Owns: nothing beyond the struct cluster handed out by cluster_new().
 */
#include "cluster/cluster.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

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

int cluster_list(struct cluster *c, struct cluster_instance **out, int *n)
{
	*out = NULL;
	*n = 0;
	return c->ops->list(c, out, n);
}

int cluster_delete(struct cluster *c, const char *name, int grace_ms)
{
	return c->ops->remove(c, name, grace_ms);
}

int cluster_logs(struct cluster *c, const char *name, struct buf *out, size_t max_bytes)
{
	return c->ops->logs(c, name, out, max_bytes);
}

int cluster_events(struct cluster *c, const char *name, struct cluster_event **out, int *n)
{
	*out = NULL;
	*n = 0;
	return c->ops->events ? c->ops->events(c, name, out, n) : 0;
}

int cluster_nodes(struct cluster *c, struct cluster_node **out, int *n)
{
	*out = NULL;
	*n = 0;
	return c->ops->nodes(c, out, n);
}

int cluster_node_metrics(struct cluster *c, const char *node, struct cluster_node_metrics *out)
{
	memset(out, 0, sizeof *out);
	return c->ops->node_metrics(c, node, out);
}

int cluster_scale_group(struct cluster *c, const char *group, int replicas)
{
	if (!c->ops->scale_group) {
		log_warn_x("cluster backend=%s group=\"%s\" msg=\"scaling not supported\"",
			   c->ops->name, group);
		return -1;
	}
	return c->ops->scale_group(c, group, replicas);
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
