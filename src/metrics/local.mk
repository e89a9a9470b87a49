# src/metrics/local.mk — libmhmetrics.a: shm segment, Prometheus parser,
# /proc + cgroup sampling; their unit tests and the parser benchmark.
# view.c colours gauges with the band table of libmhrecommend.a.
noinst_LIBRARIES += libmhmetrics.a
libmhmetrics_a_SOURCES = src/metrics/shm.h src/metrics/shm.c \
	src/metrics/prom.h src/metrics/prom.c \
	src/metrics/proc.h src/metrics/proc.c \
	src/metrics/view.h src/metrics/view.c \
	src/metrics/kubelet.h src/metrics/kubelet.c

MH_METRICS_TEST_LIBS = libmhmetrics.a libmhrecommend.a libmhlib.a $(JSONC_LIBS) -lm $(LIBS)
check_PROGRAMS += t/040-shm.t t/041-seqlock-stress.t t/042-prom.t t/044-proc.t t/045-kubelet.t t/046-view.t
TESTS += t/040-shm.t t/041-seqlock-stress.t t/042-prom.t t/044-proc.t t/045-kubelet.t t/046-view.t
t_040_shm_t_SOURCES = t/040-shm.c
t_040_shm_t_LDADD = $(MH_METRICS_TEST_LIBS)
t_041_seqlock_stress_t_SOURCES = t/041-seqlock-stress.c
t_041_seqlock_stress_t_LDADD = $(MH_METRICS_TEST_LIBS)
t_044_proc_t_SOURCES = t/044-proc.c
t_044_proc_t_LDADD = $(MH_METRICS_TEST_LIBS)
t_045_kubelet_t_SOURCES = t/045-kubelet.c
t_045_kubelet_t_LDADD = $(MH_METRICS_TEST_LIBS)
t_046_view_t_SOURCES = t/046-view.c
t_046_view_t_LDADD = $(MH_METRICS_TEST_LIBS)
# busy phase and throttling (issue 16)
check_PROGRAMS += t/405-busy-samples.t
TESTS += t/405-busy-samples.t
t_405_busy_samples_t_SOURCES = t/405-busy-samples.c
t_405_busy_samples_t_LDADD = $(MH_METRICS_TEST_LIBS)
t_042_prom_t_SOURCES = t/042-prom.c
t_042_prom_t_LDADD = $(MH_METRICS_TEST_LIBS)

# bench/prom-parse (script) builds and runs this; built by `make check`, not run.
check_PROGRAMS += bench/prom-parse-bench
bench_prom_parse_bench_SOURCES = bench/prom-parse-bench.c
bench_prom_parse_bench_LDADD = $(MH_METRICS_TEST_LIBS)

# Metrics and instances API over the real stack (t/lib/stack.py).
MH_METRICS_API_TESTS = t/401-instance-metrics.t t/402-instances-api.t t/403-metrics-crash.t \
	t/404-scraper-oom.t t/406-startup-cpu.t
TESTS += $(MH_METRICS_API_TESTS)
EXTRA_DIST += $(MH_METRICS_API_TESTS)
