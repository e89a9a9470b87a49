# src/autoscale/local.mk — libmhautoscale.a: the node autoscaler's pure
# placement planner (plan.c: no I/O, libc only) and its node groups from the
# configuration (as_config.c: lib/config, json-c), shared by the autoscaler
# child, the model save check in the API, the runner and bench/autoscale.
noinst_LIBRARIES += libmhautoscale.a
libmhautoscale_a_SOURCES = src/autoscale/plan.h src/autoscale/plan.c \
	src/autoscale/as_config.h src/autoscale/as_config.c
check_PROGRAMS += t/080-autoscale-plan.t
TESTS += t/080-autoscale-plan.t
t_080_autoscale_plan_t_SOURCES = t/080-autoscale-plan.c
t_080_autoscale_plan_t_LDADD = libmhautoscale.a
# bench/autoscale (script) builds and runs this; built by `make check`, not run.
check_PROGRAMS += bench/autoscale-bench
bench_autoscale_bench_SOURCES = bench/autoscale-bench.c
bench_autoscale_bench_LDADD = libmhautoscale.a
# The autoscaler child against kubesim (issue 13, the rest are in t/local.mk).
MH_AS_TESTS = t/374-autoscale-takeover.t t/375-autoscale-no-evict.t t/376-web-models-no-group.t \
	t/377-autoscale-karpenter.t
TESTS += $(MH_AS_TESTS)
EXTRA_DIST += $(MH_AS_TESTS)
