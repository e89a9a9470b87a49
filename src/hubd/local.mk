# src/hubd/local.mk — modelhubd: the supervisor and its children.
# Other roles (scraper.c, monitor.c, kubewatch.c) append their sources to
# modelhubd_SOURCES here and add a row to the role table in supervisor.c.
bin_PROGRAMS += modelhubd
modelhubd_SOURCES = src/hubd/main.c src/hubd/hubd.h src/hubd/shared.h \
	src/hubd/supervisor.c src/hubd/alive.c src/hubd/hubd_child.c src/hubd/dealer.c src/hubd/runner.c src/hubd/runner.h src/hubd/runner_pool.c src/hubd/runner_req.c src/hubd/runner_call.c src/hubd/runner_probe.c src/hubd/runner_loop.c src/hubd/janitor.c \
	src/hubd/assign.c src/hubd/assign.h src/hubd/bisect.c src/hubd/bisect.h
modelhubd_SOURCES += src/hubd/autoscaler.c
# sizing a new instance from the request (autorec, issue 16).
modelhubd_SOURCES += src/hubd/sizing.c src/hubd/sizing.h
modelhubd_LDADD = libmhcluster.a libmhmetrics.a libmhdb.a libmhrecommend.a libmhautoscale.a libmhlib.a \
	$(PQ_LIBS) $(JSONC_LIBS) $(CURL_LIBS) $(SODIUM_LIBS) -lm $(LIBS)

check_PROGRAMS += t/020-bisect.t t/021-assign.t t/022-cachekey.t
TESTS += t/020-bisect.t t/021-assign.t t/022-cachekey.t
t_020_bisect_t_SOURCES = t/020-bisect.c src/hubd/bisect.c
t_020_bisect_t_LDADD = -lm
t_021_assign_t_SOURCES = t/021-assign.c src/hubd/assign.c
t_022_cachekey_t_SOURCES = t/022-cachekey.c
t_022_cachekey_t_LDADD = libmhlib.a $(SODIUM_LIBS)

# Script tests over the real stack (t/lib/stack.py) with the demo models.
MH_HUBD_TESTS = t/200-supervisor.t t/201-runner-basic.t t/202-runner-failures.t t/203-runner-bisect.t t/204-runner-kill.t t/205-runner-load.t t/206-runner-cache.t t/207-janitor.t t/208-two-replicas.t \
	t/209-runner-pg-outage.t t/210-supervisor-pg-stall.t t/220-invalid-inputs.t
# The runner's event loop (issue 15): concurrency, reload, cancel, time budget.
MH_HUBD_TESTS += t/230-runner-concurrency.t t/231-runner-reload.t t/232-runner-cancel.t t/233-runner-time-budget.t \
	t/234-runner-claim-batch.t \
	t/213-runner-slow-stop.t
# Parallel probing on several warm instances (issue 20).
MH_HUBD_TESTS += t/221-parallel-probing.t
MH_HUBD_TESTS += t/222-parallel-probing-async.t
TESTS += $(MH_HUBD_TESTS)
# The model of t/230 and bench/concurrency: /run sleeps, no CPU.
check_PROGRAMS += bench/sleep-model-bench
bench_sleep_model_bench_SOURCES = bench/sleep-model.c
bench_sleep_model_bench_LDADD = -lpthread
EXTRA_DIST += $(MH_HUBD_TESTS)
# Metrics roles (metrics engineer): scraper and monitor children.
modelhubd_SOURCES += src/hubd/scraper.c src/hubd/monitor.c
# kubernetes backend (kube engineer): the kubewatch child.
modelhubd_SOURCES += src/hubd/kubewatch.c src/hubd/kubeevents.c src/hubd/kubescrape.c src/hubd/kubescrape.h
