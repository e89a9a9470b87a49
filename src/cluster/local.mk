# src/cluster/local.mk — libmhcluster.a: instance backends (local, kubernetes).
noinst_LIBRARIES += libmhcluster.a
libmhcluster_a_SOURCES = src/cluster/cluster.h src/cluster/cluster.c src/cluster/local.c \
	src/cluster/local_jail.c src/cluster/local_jail.h \
	src/cluster/modelclient.c src/cluster/modelclient.h
# kubernetes backend (kube engineer): API client, pod manifests/status, the
# published pod table + watch, node metrics scraping.
libmhcluster_a_SOURCES += src/cluster/kube/kube_autoscale.c src/cluster/kube/kube_autoscale.h
libmhcluster_a_SOURCES += src/cluster/kube/kube.c src/cluster/kube/kube_http.c src/cluster/kube/kube_http.h \
	src/cluster/kube/kube_watch.c src/cluster/kube/kube_watch.h src/cluster/kube/kube_tab.c src/cluster/kube/kube_nodes.c src/cluster/kube/kube_nodes.h \
	src/cluster/kube/kube_pod.c src/cluster/kube/kube_pod.h src/cluster/kube/kube_scrape.c
check_PROGRAMS += t/070-kube-pod.t t/071-kube-tab.t
TESTS += t/070-kube-pod.t t/071-kube-tab.t
t_071_kube_tab_t_SOURCES = t/071-kube-tab.c
t_071_kube_tab_t_LDADD = libmhcluster.a libmhlib.a $(JSONC_LIBS) $(CURL_LIBS) -lm $(LIBS)
t_070_kube_pod_t_SOURCES = t/070-kube-pod.c
t_070_kube_pod_t_LDADD = libmhcluster.a libmhlib.a $(JSONC_LIBS) $(CURL_LIBS) $(LIBS)
# Instance logs and directories past retention (issue 17, local_jail.c).
check_PROGRAMS += t/904-instance-retention.t
TESTS += t/904-instance-retention.t
t_904_instance_retention_t_SOURCES = t/904-instance-retention.c
t_904_instance_retention_t_LDADD = libmhcluster.a libmhlib.a $(JSONC_LIBS) $(CURL_LIBS) $(LIBS)
# local backend test (hubd engineer): real demo model server processes.
check_PROGRAMS += t/300-local-backend.t
TESTS += t/300-local-backend.t
t_300_local_backend_t_SOURCES = t/300-local-backend.c
t_300_local_backend_t_LDADD = libmhcluster.a libmhlib.a $(JSONC_LIBS) $(CURL_LIBS) $(LIBS)
# The backend against the simulator (t/kube/kubestack.py + t/lib/stack.py).
MH_KUBE_TESTS = t/360-kube-flow.t t/361-kube-failures.t t/362-kube-watch.t t/363-kube-nodes.t \
	t/364-kube-kubeconfig.t t/365-kube-replicas.t t/367-kube-errors.t t/368-kube-outage.t t/385-kube-scrape-skip.t \
	t/386-kube-adopt.t t/388-kube-paging.t t/389-kube-slow-api.t
TESTS += $(MH_KUBE_TESTS)
EXTRA_DIST += $(MH_KUBE_TESTS) t/kube/kubestack.py
# bench/scrape (script) builds and runs this: one kubelet scrape cycle at
# cluster scale against a fake API server.
check_PROGRAMS += bench/kube-scrape-bench
bench_kube_scrape_bench_SOURCES = bench/kube-scrape.c src/hubd/kubescrape.c
bench_kube_scrape_bench_LDADD = libmhcluster.a libmhmetrics.a libmhlib.a $(JSONC_LIBS) $(CURL_LIBS) -lm $(LIBS)
# kubectl observes the hub on the kubernetes backend; dropped watches.
TESTS += t/366-kube-kubectl.t
EXTRA_DIST += t/366-kube-kubectl.t
