/*
 * kube_nodes.c — node list, quantities, and the concurrent kubelet metrics
 * fetch (one curl multi handle).
 *
 * Runs in: the scraper (through cluster_scrape). Called by: kube_scrape.c.
 * Owns: struct kube_fetcher's multi handle; the easy handles of one cycle.
 */
#include "cluster/kube/kube_nodes.h"
#include "cluster/kube/kube_pod.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KUBE_NODES_MS 15000

static int suffix_mult(const char *s, double *mult)
{
	static const struct {
		const char *s;
		double m;
	} tab[] = {
		{"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
		{"Pi", 1125899906842624.0}, {"Ei", 1152921504606846976.0},
		{"n", 1e-9}, {"u", 1e-6}, {"m", 1e-3}, {"", 1.0}, {"k", 1e3}, {"M", 1e6},
		{"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
	};

	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(s, tab[i].s) == 0) {
			*mult = tab[i].m;
			return 0;
		}
	return -1;
}

/* Quantity to a double in base units. 0 / -1. */
static int qty(const char *q, double *out)
{
	char *end;
	double v, mult;

	if (!q || !*q)
		return -1;
	v = strtod(q, &end);
	if (end == q || !isfinite(v) || v < 0)
		return -1;
	if (suffix_mult(end, &mult) < 0)
		return -1;
	*out = v * mult;
	return 0;
}

int kube_list_page(void)
{
	long n = cfg_int("kube.list_page", KUBE_LIST_PAGE);

	return n < 1 ? 1 : n > 5000 ? 5000 : (int)n;
}

int kube_qty_milli(const char *q, int64_t *out)
{
	double v;

	if (qty(q, &v) < 0)
		return -1;
	*out = (int64_t)llround(v * 1000.0);
	return 0;
}

int kube_qty_bytes(const char *q, int64_t *out)
{
	double v;

	if (qty(q, &v) < 0)
		return -1;
	*out = (int64_t)llround(v);
	return 0;
}

/* One Node object into c. 0, -1 when it has no name. */
static int node_parse(struct json_object *nd, const char *group_label, struct cluster_node *c)
{
	struct json_object *conds, *un;
	const char *name = jx_get_str(nd, "metadata", "name", NULL), *g;
	int64_t v;

	if (!name)
		return -1;
	snprintf(c->name, sizeof c->name, "%s", name);
	if (kube_qty_milli(jx_get_str(nd, "status", "allocatable", "cpu", NULL), &v) == 0)
		c->cpu_m = (int)v;
	if (kube_qty_bytes(jx_get_str(nd, "status", "allocatable", "memory", NULL), &v) == 0)
		c->memory_bytes = v;
	g = group_label ? jx_get_str(nd, "metadata", "labels", group_label, NULL) : NULL;
	snprintf(c->group, sizeof c->group, "%s", g ? g : "");
	conds = jx_get(nd, "status", "conditions", NULL);
	for (size_t k = 0; conds && json_object_is_type(conds, json_type_array) &&
			   k < json_object_array_length(conds); k++) {
		struct json_object *cd = json_object_array_get_idx(conds, k);
		const char *t = jx_get_str(cd, "type", NULL), *s = jx_get_str(cd, "status", NULL);
		if (t && s && strcmp(t, "Ready") == 0)
			c->ready = strcmp(s, "True") == 0;
	}
	un = jx_get(nd, "spec", "unschedulable", NULL);
	c->schedulable = !(un && json_object_get_boolean(un));
	return 0;
}

/* Append the items of one node list page to *out. 0, -1. */
static int nodes_page(struct json_object *o, const char *group_label, struct cluster_node **out, int *n,
		      int *cap)
{
	struct json_object *items = jx_get(o, "items", NULL);
	size_t cnt = items && json_object_is_type(items, json_type_array) ? json_object_array_length(items) : 0;

	if ((size_t)(*cap - *n) < cnt) {
		int nc = *n + (int)cnt + 64;
		struct cluster_node *x = realloc(*out, (size_t)nc * sizeof *x);
		if (!x)
			return -1;
		*out = x;
		*cap = nc;
	}
	for (size_t i = 0; i < cnt; i++) {
		memset(&(*out)[*n], 0, sizeof **out);
		if (node_parse(json_object_array_get_idx(items, i), group_label, &(*out)[*n]) == 0)
			(*n)++;
	}
	return 0;
}

int kube_nodes_list(struct kube_http *h, const char *group_label, struct cluster_node **out, int *n)
{
	char path[700], cont[512] = "";
	int cap = 0;

	*out = NULL;
	*n = 0;
	for (;;) {
		long st;
		const char *next;
		struct json_object *o;

		/* paged: one answer never holds a thousand nodes at once */
		snprintf(path, sizeof path, "/api/v1/nodes?limit=%d%s%s", kube_list_page(),
			 cont[0] ? "&continue=" : "", cont);
		o = kube_http_get_json(h, path, &st, KUBE_NODES_MS);
		if (!o || nodes_page(o, group_label, out, n, &cap) < 0) {
			log_warn_x("kube status=%ld msg=\"node list failed\"", st);
			json_object_put(o);
			free(*out);
			*out = NULL;
			*n = 0;
			return -1;
		}
		next = jx_get_str(o, "metadata", "continue", NULL);
		cont[0] = '\0';
		if (next && next[0] && strlen(next) < sizeof cont / 3)
			kube_http_escape(next, cont, sizeof cont);
		json_object_put(o);
		if (!cont[0])
			return 0;
	}
}

/* ---- concurrent fetch ---- */

struct kube_fetcher {
	struct kube_http *h;
	CURLM *multi;
};

struct kube_fetcher *kube_fetcher_new(struct kube_http *h)
{
	struct kube_fetcher *f = calloc(1, sizeof *f);

	if (!f)
		return NULL;
	f->h = h;
	f->multi = curl_multi_init();
	if (!f->multi) {
		free(f);
		return NULL;
	}
	curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)KUBE_FETCH_CONNS);
	curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)KUBE_FETCH_CONNS);
	curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return f;
}

void kube_fetcher_free(struct kube_fetcher *f)
{
	if (!f)
		return;
	curl_multi_cleanup(f->multi);
	free(f);
}

/* Record the transfers that finished: status and time to the answer. */
static void fetch_collect(struct kube_fetcher *f, int64_t t0)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
		struct kube_fetch *fx = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&fx);
		if (!fx)
			continue;
		fx->us = mh_mono_us() - t0;
		if (m->data.result == CURLE_OK)
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &fx->status);
	}
}

/* Start every transfer of the cycle; easy[i] NULL when x[i] could not be
 * set up (it stays status -1). */
static void fetch_start(struct kube_fetcher *f, struct kube_fetch *x, int n, int timeout_ms,
			CURL **easy, void **hdrs)
{
	for (int i = 0; i < n; i++) {
		buf_reset(&x[i].body);
		x[i].status = -1;
		x[i].us = 0;
		easy[i] = kube_http_easy(f->h, x[i].path, &x[i].body, &hdrs[i], timeout_ms);
		if (!easy[i])
			continue;
		curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (void *)&x[i]);
		curl_easy_setopt(easy[i], CURLOPT_PIPEWAIT, 1L);
		curl_multi_add_handle(f->multi, easy[i]);
	}
}

int kube_fetch_all(struct kube_fetcher *f, struct kube_fetch *x, int n, int timeout_ms)
{
	CURL **easy = calloc((size_t)(n ? n : 1), sizeof *easy);
	void **hdrs = calloc((size_t)(n ? n : 1), sizeof *hdrs);
	int64_t t0 = mh_mono_us(), deadline = t0 + (int64_t)timeout_ms * 1000;
	int running = 0, ok = 0;

	if (!easy || !hdrs) {
		free(easy);
		free(hdrs);
		return -1;
	}
	fetch_start(f, x, n, timeout_ms, easy, hdrs);
	curl_multi_perform(f->multi, &running);
	while (running > 0 && mh_mono_us() < deadline) {
		int wait_ms = (int)((deadline - mh_mono_us()) / 1000);

		curl_multi_poll(f->multi, NULL, 0, wait_ms > 200 ? 200 : (wait_ms > 0 ? wait_ms : 1), NULL);
		curl_multi_perform(f->multi, &running);
		fetch_collect(f, t0);
	}
	fetch_collect(f, t0);
	for (int i = 0; i < n; i++) {
		if (easy[i]) {
			curl_multi_remove_handle(f->multi, easy[i]);
			curl_easy_cleanup(easy[i]);
		}
		curl_slist_free_all(hdrs[i]);
		if (x[i].status >= 200 && x[i].status < 300)
			ok++;
	}
	free(easy);
	free(hdrs);
	return ok;
}
