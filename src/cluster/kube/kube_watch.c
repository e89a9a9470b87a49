/*
 * kube_watch.c — the pod list+watch loop and the published pod table.
 *
 * Runs in: the kubewatch child (writer: kube_watch_round, kube_tab_put ...)
 * and runners (readers: kube_tab_find/get through kube.c).
 * Called by: kube.c (cluster_watch, cluster_pods, cluster_get).
 * Owns: the table mapping (one per struct kube_tab) and its file
 * descriptor, closed after mmap.
 * Shared state: the table file; one writer (the kubewatch child of this
 * replica), per-entry sequence words for readers (see kube_watch.h).
 *
 * DESIGN — the watch protocol as the API server defines it: list with the
 * label selector (paged, limit 500), remember the list's resourceVersion,
 * watch from it. Each event carries the pod's new resourceVersion, which
 * becomes the resume point; BOOKMARK events only move it. An ERROR event
 * with a 410 Status (or an HTTP 410 answer) means the version left the
 * server's history (or the server restarted into a new epoch): relist. A
 * broken connection resumes from the last version after a back-off that
 * doubles from KUBE_BACKOFF_MIN_MS to KUBE_BACKOFF_MAX_MS.
 */
#include "cluster/kube/kube_watch.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KUBE_TAB_MAGIC 0x4b55424554414231ULL /* "KUBETAB1" */
#define KUBE_TAB_VERSION 1
#define KUBE_BACKOFF_MIN_MS 500
#define KUBE_BACKOFF_MAX_MS 10000
#define KUBE_WATCH_TIMEOUT_S 240     /* server ends each watch; we resume */
#define KUBE_WATCH_IDLE_MS 300000    /* no byte at all this long: dead connection */
#define KUBE_LIST_TIMEOUT_MS 30000
#define KUBE_READ_RETRIES 200

struct tab_hdr {
	uint64_t magic;
	uint32_t version, nentries, entry_size, pad;
	int32_t writer_pid;
	_Atomic int64_t heartbeat_ms;
	_Atomic int64_t synced_ms;
};

struct tab_ent {
	_Atomic uint64_t seq;
	uint32_t used;
	uint32_t pad;
	struct cluster_pod_row row;
};

struct kube_tab {
	struct tab_hdr *hdr;
	struct tab_ent *ent;
	size_t size;
	int writer;
};

static size_t tab_size(void)
{
	return sizeof(struct tab_hdr) + (size_t)KUBE_TAB_MAX * sizeof(struct tab_ent);
}

void kube_tab_path(char *out, size_t n)
{
	const char *p = cfg_str("kube.state_file", "");

	if (p[0])
		snprintf(out, n, "%s", p);
	else
		snprintf(out, n, "%s/kube-pods.tab", cfg_str("hub.var_dir", "var"));
}

struct kube_tab *kube_tab_open(const char *path, int writer)
{
	struct kube_tab *t = calloc(1, sizeof *t);
	struct stat st;
	size_t size = tab_size();
	void *m;
	int fd;

	if (!t)
		return NULL;
	fd = open(path, writer ? O_RDWR | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (writer)
			log_error("kube path=%s msg=\"cannot open the pod table\"", path);
		free(t);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || (writer && (size_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0) ||
	    (!writer && (size_t)st.st_size != size)) {
		if (writer)
			log_error("kube path=%s msg=\"cannot size the pod table\"", path);
		close(fd);
		free(t);
		return NULL;
	}
	m = mmap(NULL, size, writer ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		log_error("kube path=%s msg=\"cannot map the pod table\"", path);
		free(t);
		return NULL;
	}
	t->hdr = m;
	t->ent = (struct tab_ent *)((char *)m + sizeof(struct tab_hdr));
	t->size = size;
	t->writer = writer;
	if (writer && (t->hdr->magic != KUBE_TAB_MAGIC || t->hdr->version != KUBE_TAB_VERSION ||
		       t->hdr->nentries != KUBE_TAB_MAX || t->hdr->entry_size != sizeof(struct tab_ent))) {
		memset(m, 0, size);
		t->hdr->version = KUBE_TAB_VERSION;
		t->hdr->nentries = KUBE_TAB_MAX;
		t->hdr->entry_size = sizeof(struct tab_ent);
		atomic_thread_fence(memory_order_release);
		t->hdr->magic = KUBE_TAB_MAGIC;
	}
	if (writer) {
		t->hdr->writer_pid = (int32_t)getpid();
		/* entries left odd by a writer killed mid-update */
		for (int i = 0; i < KUBE_TAB_MAX; i++)
			if (atomic_load(&t->ent[i].seq) & 1)
				atomic_fetch_add(&t->ent[i].seq, 1);
		atomic_store(&t->hdr->synced_ms, 0);
	} else if (t->hdr->magic != KUBE_TAB_MAGIC || t->hdr->nentries != KUBE_TAB_MAX ||
		   t->hdr->entry_size != sizeof(struct tab_ent)) {
		munmap(m, size);
		free(t);
		return NULL;
	}
	return t;
}

void kube_tab_close(struct kube_tab *t)
{
	if (!t)
		return;
	munmap(t->hdr, t->size);
	free(t);
}

static void w_begin(struct tab_ent *e)
{
	atomic_fetch_add_explicit(&e->seq, 1, memory_order_acq_rel);
	atomic_thread_fence(memory_order_release);
}

static void w_end(struct tab_ent *e)
{
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add_explicit(&e->seq, 1, memory_order_release);
}

static int find_idx(struct kube_tab *t, const char *name)
{
	for (int i = 0; i < KUBE_TAB_MAX; i++)
		if (t->ent[i].used && strcmp(t->ent[i].row.pod.name, name) == 0)
			return i;
	return -1;
}

int kube_tab_put(struct kube_tab *t, const struct cluster_pod *p)
{
	int i = find_idx(t, p->name), oldest = -1;
	struct tab_ent *e;

	if (i < 0) {
		for (int k = 0; k < KUBE_TAB_MAX && i < 0; k++) {
			if (!t->ent[k].used)
				i = k;
			else if (t->ent[k].row.gone &&
				 (oldest < 0 || t->ent[k].row.gone_ms < t->ent[oldest].row.gone_ms))
				oldest = k;
		}
		if (i < 0)
			i = oldest;
		if (i < 0) {
			log_error_x("kube pod=%s msg=\"pod table full\"", p->name);
			return -1;
		}
	}
	e = &t->ent[i];
	w_begin(e);
	e->row.pod = *p;
	e->row.gone = 0;
	e->row.gone_ms = 0;
	e->row.updated_ms = mh_wall_ms();
	e->used = 1;
	w_end(e);
	return 0;
}

int kube_tab_gone(struct kube_tab *t, const char *name)
{
	int i = find_idx(t, name);
	struct tab_ent *e;

	if (i < 0)
		return -1;
	e = &t->ent[i];
	if (e->row.gone)
		return 0;
	w_begin(e);
	e->row.gone = 1;
	e->row.gone_ms = e->row.updated_ms = mh_wall_ms();
	w_end(e);
	return 0;
}

void kube_tab_sweep(struct kube_tab *t, char (*names)[64], int n)
{
	int64_t now = mh_wall_ms();

	for (int i = 0; i < KUBE_TAB_MAX; i++) {
		struct tab_ent *e = &t->ent[i];
		int present = 0;

		if (!e->used)
			continue;
		if (e->row.gone) {
			if (now - e->row.gone_ms > KUBE_TAB_GONE_KEEP_MS) {
				w_begin(e);
				e->used = 0;
				w_end(e);
			}
			continue;
		}
		for (int k = 0; k < n && !present; k++)
			present = strcmp(names[k], e->row.pod.name) == 0;
		if (!present) {
			w_begin(e);
			e->row.gone = 1;
			e->row.gone_ms = e->row.updated_ms = now;
			w_end(e);
		}
	}
}

void kube_tab_heartbeat(struct kube_tab *t, int synced)
{
	int64_t now = mh_wall_ms();

	atomic_store(&t->hdr->heartbeat_ms, now);
	if (synced)
		atomic_store(&t->hdr->synced_ms, now);
}

void kube_tab_retire(struct kube_tab *t)
{
	atomic_store(&t->hdr->heartbeat_ms, 0);
	atomic_store(&t->hdr->synced_ms, 0);
}

int64_t kube_tab_heartbeat_ms(struct kube_tab *t)
{
	return atomic_load(&t->hdr->heartbeat_ms);
}

int64_t kube_tab_synced_ms(struct kube_tab *t)
{
	return atomic_load(&t->hdr->synced_ms);
}

/* Consistent copy of entry i: 1, 0 unused, -1 busy. */
static int read_ent(struct kube_tab *t, int i, struct cluster_pod_row *out, const char *want)
{
	struct tab_ent *e = &t->ent[i];

	for (int r = 0; r < KUBE_READ_RETRIES; r++) {
		uint64_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire), s2;
		uint32_t used;

		if (s1 & 1)
			continue;
		used = e->used;
		if (used)
			memcpy(out, &e->row, sizeof *out);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
		if (s1 != s2)
			continue;
		if (!used)
			return 0;
		out->pod.name[sizeof out->pod.name - 1] = '\0';
		if (want && strcmp(out->pod.name, want) != 0)
			return 0;
		return 1;
	}
	return -1;
}

int kube_tab_find(struct kube_tab *t, const char *name, struct cluster_pod_row *out)
{
	for (int i = 0; i < KUBE_TAB_MAX; i++) {
		/* unlocked pre-check on the name; confirmed by the copy */
		if (!t->ent[i].used || strncmp(t->ent[i].row.pod.name, name, sizeof out->pod.name) != 0)
			continue;
		int rc = read_ent(t, i, out, name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int kube_tab_get(struct kube_tab *t, int idx, struct cluster_pod_row *out)
{
	if (idx < 0 || idx >= KUBE_TAB_MAX)
		return -1;
	return read_ent(t, idx, out, NULL);
}

/* ---- list + watch ---- */

struct round {
	struct kube_watcher *w;
	int relist;
	int stop;
	int got;
};

static void handle_pod(struct kube_watcher *w, enum cluster_pod_ev ev, struct json_object *pod)
{
	struct cluster_pod p;

	if (kube_pod_parse(pod, w->port_offset, &p) < 0)
		return;
	if (ev == CLUSTER_POD_DELETED) {
		/* keep the final state: the runner learns how it ended */
		kube_tab_put(w->tab, &p);
		kube_tab_gone(w->tab, p.name);
	} else {
		kube_tab_put(w->tab, &p);
	}
	w->events++;
	if (w->on_pod)
		w->on_pod(ev, &p, pod, w->arg);
}

static int on_event(struct json_object *ev, void *arg)
{
	struct round *r = arg;
	struct kube_watcher *w = r->w;
	const char *type = jx_get_str(ev, "type", NULL);
	struct json_object *obj = jx_get(ev, "object", NULL);
	const char *rv = jx_get_str(obj, "metadata", "resourceVersion", NULL);

	r->got = 1;
	if (!type)
		return 0;
	if (strcmp(type, "ERROR") == 0) {
		struct json_object *code = jx_get(obj, "code", NULL);
		log_info("kube code=%d reason=%s msg=\"watch error event, relisting\"",
			 code ? json_object_get_int(code) : 0,
			 jx_get_str(obj, "reason", NULL) ? jx_get_str(obj, "reason", NULL) : "-");
		r->relist = 1;
		return 1;
	}
	if (rv && strlen(rv) < sizeof w->rv)
		snprintf(w->rv, sizeof w->rv, "%s", rv);
	if (strcmp(type, "BOOKMARK") == 0)
		return 0;
	if (strcmp(type, "ADDED") == 0)
		handle_pod(w, CLUSTER_POD_ADDED, obj);
	else if (strcmp(type, "MODIFIED") == 0)
		handle_pod(w, CLUSTER_POD_MODIFIED, obj);
	else if (strcmp(type, "DELETED") == 0)
		handle_pod(w, CLUSTER_POD_DELETED, obj);
	return 0;
}

static int on_tick(void *arg)
{
	struct round *r = arg;

	kube_tab_heartbeat(r->w->tab, 1);
	if (r->w->on_tick && r->w->on_tick(r->w->arg)) {
		r->stop = 1;
		return 1;
	}
	return 0;
}

/* Full list: table entries replaced, absent pods marked gone, rv set.
 * 0, -1. */
static int list_pods(struct kube_watcher *w)
{
	const struct kube_conf *kc = kube_http_conf(w->h);
	char path[1024], cont[512] = "", (*names)[64] = NULL;
	int n = 0, cap = 0, rc = -1;

	for (;;) {
		struct json_object *o, *items;
		long st;
		const char *next, *rv;

		snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods?labelSelector=%s&limit=500%s%s",
			 kc->ns, KUBE_SELECTOR, cont[0] ? "&continue=" : "", cont);
		o = kube_http_get_json(w->h, path, &st, KUBE_LIST_TIMEOUT_MS);
		if (!o) {
			log_warn_x("kube ns=%s status=%ld msg=\"pod list failed\"", kc->ns, st);
			goto out;
		}
		items = jx_get(o, "items", NULL);
		for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
				   i < json_object_array_length(items); i++) {
			struct json_object *pod = json_object_array_get_idx(items, i);
			const char *nm = jx_get_str(pod, "metadata", "name", NULL);
			if (!nm)
				continue;
			if (n == cap) {
				int nc = cap ? cap * 2 : 64;
				char (*nn)[64] = realloc(names, (size_t)nc * sizeof *names);
				if (!nn) {
					json_object_put(o);
					goto out;
				}
				names = nn;
				cap = nc;
			}
			snprintf(names[n++], 64, "%s", nm);
			handle_pod(w, CLUSTER_POD_LISTED, pod);
		}
		rv = jx_get_str(o, "metadata", "resourceVersion", NULL);
		if (rv)
			snprintf(w->rv, sizeof w->rv, "%s", rv);
		next = jx_get_str(o, "metadata", "continue", NULL);
		if (next && next[0] && strlen(next) < sizeof cont) {
			kube_http_escape(next, cont, sizeof cont);
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		break;
	}
	kube_tab_sweep(w->tab, names, n);
	kube_tab_heartbeat(w->tab, 1);
	w->relists++;
	log_info("kube ns=%s pods=%d rv=%s msg=\"pods listed\"", kc->ns, n, w->rv);
	rc = 0;
out:
	free(names);
	return rc;
}

int kube_watch_round(struct kube_watcher *w)
{
	const struct kube_conf *kc = kube_http_conf(w->h);
	struct round r;
	char path[1024];
	long st;

	memset(&r, 0, sizeof r);
	r.w = w;
	if (!w->rv[0]) {
		if (list_pods(w) < 0)
			goto error;
		if (w->on_tick && w->on_tick(w->arg))
			return 1;
	}
	snprintf(path, sizeof path,
		 "/api/v1/namespaces/%s/pods?labelSelector=%s&watch=1&allowWatchBookmarks=true"
		 "&timeoutSeconds=%d&resourceVersion=%s",
		 kc->ns, KUBE_SELECTOR, KUBE_WATCH_TIMEOUT_S, w->rv);
	st = kube_http_watch(w->h, path, on_event, on_tick, &r, KUBE_WATCH_IDLE_MS);
	if (r.stop)
		return 1;
	if (r.relist || st == 410) {
		w->rv[0] = '\0';
		w->backoff_ms = 0;
		return 0;
	}
	if (st >= 200 && st < 300) {
		w->backoff_ms = 0;
		return 0;
	}
	if (st > 0)
		log_warn_x("kube status=%ld msg=\"watch refused\"", st);
	if (r.got)
		w->backoff_ms = 0;
error:
	w->reconnects++;
	w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : KUBE_BACKOFF_MIN_MS;
	if (w->backoff_ms > KUBE_BACKOFF_MAX_MS)
		w->backoff_ms = KUBE_BACKOFF_MAX_MS;
	/* a server that lost our version answers 410 on resume; one that lost
	 * its state entirely may answer anything: relist after a few failures */
	if (w->backoff_ms >= 4 * KUBE_BACKOFF_MIN_MS)
		w->rv[0] = '\0';
	kube_tab_heartbeat(w->tab, 0);
	return -1;
}
