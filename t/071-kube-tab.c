/* 071-kube-tab — the published pod table (writer/reader mappings, gone marks, sweep after a relist, reuse when full, retire) and Kubernetes quantities. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/kube/kube_nodes.h"
#include "cluster/kube/kube_watch.h"
#include "lib/config.h"
#include "lib/tap.h"

#include <sys/stat.h>

static struct cluster_pod pod(const char *name, enum cluster_state st)
{
	struct cluster_pod p;

	memset(&p, 0, sizeof p);
	snprintf(p.name, sizeof p.name, "%s", name);
	snprintf(p.address, sizeof p.address, "127.1.0.2:80");
	p.state = st;
	p.instance_id = 7;
	return p;
}

static void test_table(void)
{
	char path[] = "/tmp/kube-tab-XXXXXX";
	int fd = mkstemp(path);
	struct kube_tab *w, *r, *none;
	struct cluster_pod_row row;
	struct cluster_pod p;
	char names[2][64] = {"a-1", "zz"};

	close(fd);
	unlink(path);
	cfg_set("kube.max_pods", "64");
	none = kube_tab_open(path, 0);
	ok(none == NULL, "reader before the writer made the file: NULL");
	w = kube_tab_open(path, 1);
	ok(w != NULL, "writer creates the table");
	r = kube_tab_open(path, 0);
	ok(r != NULL, "reader maps it");
	is_int(kube_tab_heartbeat_ms(r), 0, "no heartbeat yet");
	kube_tab_heartbeat(w, 1);
	ok(kube_tab_heartbeat_ms(r) > 0 && kube_tab_synced_ms(r) > 0, "heartbeat and synced seen by the reader");

	p = pod("a-1", CLUSTER_STARTING);
	ok(kube_tab_put(w, &p) == 0, "put a-1");
	is_int(kube_tab_find(r, "a-1", &row), 1, "reader finds a-1");
	is_int(row.pod.state, CLUSTER_STARTING, "  state STARTING");
	ok(!row.gone, "  not gone");
	is_int(kube_tab_find(r, "a-", &row), 0, "prefix of a name is not a match");
	is_int(kube_tab_find(r, "b-1", &row), 0, "unknown name: 0");
	p.state = CLUSTER_READY;
	kube_tab_put(w, &p);
	kube_tab_find(r, "a-1", &row);
	is_int(row.pod.state, CLUSTER_READY, "update in place: READY");
	ok(kube_tab_gone(w, "a-1") == 0, "mark gone");
	kube_tab_find(r, "a-1", &row);
	ok(row.gone && row.gone_ms > 0, "  reader sees gone, with the time");
	is_int(row.pod.state, CLUSTER_READY, "  last state kept");
	ok(kube_tab_gone(w, "nope") < 0, "gone of an unknown name: -1");
	p = pod("a-1", CLUSTER_PENDING);
	kube_tab_put(w, &p);
	kube_tab_find(r, "a-1", &row);
	ok(!row.gone, "put again (same name reappears): not gone");

	p = pod("b-2", CLUSTER_PENDING);
	kube_tab_put(w, &p);
	kube_tab_sweep(w, names, 2);
	kube_tab_find(r, "b-2", &row);
	ok(row.gone, "sweep after a list: absent b-2 marked gone");
	kube_tab_find(r, "a-1", &row);
	ok(!row.gone, "  listed a-1 kept");

	/* fill it: gone entries are reused, live ones never */
	{
		int fails = 0;
		for (int i = 0; i < kube_tab_capacity(w) + 5; i++) {
			char n[32];
			snprintf(n, sizeof n, "fill-%d", i);
			p = pod(n, CLUSTER_PENDING);
			if (kube_tab_put(w, &p) < 0)
				fails++;
		}
		ok(fails > 0, "full table refuses new live entries (%d refused)", fails);
		is_int(kube_tab_find(r, "a-1", &row), 1, "  a live entry was never evicted");
		is_int(kube_tab_find(r, "b-2", &row), 0, "  the gone entry was reused");
	}
	/* a new writer (kubewatch restart) keeps the content but not "synced" */
	kube_tab_close(w);
	w = kube_tab_open(path, 1);
	is_int(kube_tab_find(r, "a-1", &row), 1, "writer restart: entries survive");
	is_int(kube_tab_synced_ms(r), 0, "  synced cleared until the next list");
	kube_tab_heartbeat(w, 1);
	kube_tab_retire(w);
	is_int(kube_tab_heartbeat_ms(r), 0, "retire: readers see the watcher down at once");
	kube_tab_close(r);
	kube_tab_close(w);
	kube_tab_close(NULL);
	unlink(path);
}

/* The default size (1,000 nodes x 110 pods): a sparse file, lookups by
 * hash, a relist's sweep, and a resize that readers follow. */
static void test_scale(void)
{
	char path[] = "/tmp/kube-tab-XXXXXX";
	int fd = mkstemp(path), found = 0, gone = 0;
	struct kube_tab *w, *r;
	struct cluster_pod_row row;
	char (*names)[64] = calloc(2500, 64);
	struct stat st;

	close(fd);
	unlink(path);
	cfg_set("kube.max_pods", "");
	w = kube_tab_open(path, 1);
	r = kube_tab_open(path, 0);
	ok(w && r && names, "default table opened");
	if (!w || !r || !names)
		return;
	is_int(kube_tab_capacity(r), KUBE_TAB_DEFAULT, "capacity %d by default", KUBE_TAB_DEFAULT);
	stat(path, &st);
	ok(st.st_size > (off_t)KUBE_TAB_DEFAULT * 1000 && st.st_blocks * 512 < (4 << 20),
	   "sparse: %lld bytes long, %lld on disk", (long long)st.st_size, (long long)st.st_blocks * 512);
	for (int i = 0; i < 5000; i++) {
		char n[64];
		struct cluster_pod p;
		snprintf(n, sizeof n, "mh-model-%d", i);
		p = pod(n, CLUSTER_READY);
		kube_tab_put(w, &p);
		if (i % 2 == 0)
			snprintf(names[i / 2], 64, "%s", n);
	}
	is_int(kube_tab_count(r), 5000, "5000 pods: scans stop at 5000");
	for (int i = 0; i < 5000; i++) {
		char n[64];
		snprintf(n, sizeof n, "mh-model-%d", i);
		found += kube_tab_find(r, n, &row) == 1 && strcmp(row.pod.name, n) == 0;
	}
	is_int(found, 5000, "every pod found by name");
	kube_tab_sweep(w, names, 2500);
	for (int i = 0; i < 5000; i++) {
		char n[64];
		snprintf(n, sizeof n, "mh-model-%d", i);
		if (kube_tab_find(r, n, &row) == 1 && row.gone)
			gone += 1 + (i % 2 == 0) * 1000;
	}
	is_int(gone, 2500, "a relist listing half of them: the other half gone");
	stat(path, &st);
	ok(st.st_blocks * 512 < (20 << 20), "5000 entries touched %lld bytes on disk",
	   (long long)st.st_blocks * 512);
	ok(!kube_tab_replaced(r), "not replaced");
	kube_tab_close(w);
	cfg_set("kube.max_pods", "100");
	w = kube_tab_open(path, 1);
	ok(w && kube_tab_replaced(r), "kube.max_pods changed: a new file, old readers told");
	kube_tab_close(r);
	r = kube_tab_open(path, 0);
	ok(r && kube_tab_capacity(r) == 100 && kube_tab_count(r) == 0, "  a reader opens the new one");
	kube_tab_close(r);
	kube_tab_close(w);
	free(names);
	unlink(path);
}

static void test_qty(void)
{
	int64_t v = 0;

	ok(kube_qty_milli("2", &v) == 0 && v == 2000, "cpu 2 -> 2000m");
	ok(kube_qty_milli("500m", &v) == 0 && v == 500, "cpu 500m");
	ok(kube_qty_milli("1.5", &v) == 0 && v == 1500, "cpu 1.5");
	ok(kube_qty_milli("250000000n", &v) == 0 && v == 250, "cpu in nanocores (metrics.k8s.io)");
	ok(kube_qty_bytes("4Gi", &v) == 0 && v == 4LL << 30, "memory 4Gi");
	ok(kube_qty_bytes("512Mi", &v) == 0 && v == 512LL << 20, "memory 512Mi");
	ok(kube_qty_bytes("123456Ki", &v) == 0 && v == 123456LL * 1024, "memory Ki");
	ok(kube_qty_bytes("1G", &v) == 0 && v == 1000000000LL, "memory 1G (decimal)");
	ok(kube_qty_bytes("1e9", &v) == 0 && v == 1000000000LL, "memory 1e9");
	ok(kube_qty_bytes("", &v) < 0, "empty quantity refused");
	ok(kube_qty_bytes(NULL, &v) < 0, "NULL quantity refused");
	ok(kube_qty_bytes("12Qi", &v) < 0, "unknown suffix refused");
	ok(kube_qty_milli("-1", &v) < 0, "negative refused");
	ok(kube_qty_milli("abc", &v) < 0, "not a number refused");
}

int main(void)
{
	test_table();
	test_scale();
	test_qty();
	return done_testing();
}
