# t/local.mk — the test suite (TAP). Areas add their own tests in their
# local.mk; this file holds the shared harness (t/lib: tap.h, tap.py,
# stack.py — distributed through EXTRA_DIST in Makefile.am) and the
# cross-cutting tests.
EXTRA_DIST += t/local.mk

# Harness smoke test: the whole stack starts, nginx headers, gzip, caching,
# JSON errors from nginx and from the API.
TESTS += t/100-stack.t
EXTRA_DIST += t/100-stack.t

# models/ demo servers (owned by models/)
TESTS += t/030-models.t
EXTRA_DIST += t/030-models.t

# Kubernetes API simulator t/kube/ (owned by the kubesim area)
TESTS += t/350-kubesim-kubectl.t t/351-kubesim-python.t t/352-kubesim-scheduler.t t/353-kubesim-watch.t t/354-rbac.t \
	t/370-kubesim-autoscale.t t/371-autoscale-clusterapi.t t/372-autoscale-faults.t t/373-autoscale-external.t
EXTRA_DIST += t/350-kubesim-kubectl.t t/351-kubesim-python.t t/352-kubesim-scheduler.t t/353-kubesim-watch.t t/354-rbac.t \
	t/370-kubesim-autoscale.t t/371-autoscale-clusterapi.t t/372-autoscale-faults.t t/373-autoscale-external.t

# scripts/run-local in a copy of the tree (uses the built programs).
TESTS += t/190-run-local.t
EXTRA_DIST += t/190-run-local.t

# bench/api-throughput still runs (one short round).
TESTS += t/191-bench-smoke.t
EXTRA_DIST += t/191-bench-smoke.t

# scripts/install-deps: list parsing, nothing to do, missing without root.
TESTS += t/192-install-deps.t
EXTRA_DIST += t/192-install-deps.t

# Leadership under a frozen leader (issue 15): the 25 s variant runs in
# `make check`; the 60 s one (t/lib/leaderfreeze.py, about 2 min) only in
# `make check-long`, which CI runs once through scripts/test. Tests of the
# long target each stay under 3 minutes.
TESTS += t/369-leader-freeze.t
MH_LONG_TESTS = t/912-leader-freeze-long.t
EXTRA_DIST += t/369-leader-freeze.t $(MH_LONG_TESTS)
# Fault injection under load (issue 17, about 1 min): every hubd child role,
# an fcgi worker, a model instance and the supervisor SIGKILLed, Postgres
# restarted fast and immediate, nginx reloaded, 200 requests from 20 clients.
MH_LONG_TESTS += t/913-fault-suite.t
EXTRA_DIST += t/913-fault-suite.t
check-long:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(MH_LONG_TESTS)'
.PHONY: check-long

# The container images (scripts/build-image, and --postgres for the
# local-postgres overlay) and their file systems run as their pods would. Not
# in `make check`: the first run downloads Debian packages for the base root
# file systems (1-4 min for modelhub, up to 12 min for modelhub-postgres on a
# slow mirror); later runs reuse build/image/cache. CI runs them once through
# scripts/test (`make check-image`).
EXTRA_DIST += t/380-image.t t/387-image-postgres.t
check-image:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='t/380-image.t t/387-image-postgres.t'
.PHONY: check-image

# modelhubctl alive: the modelhubd liveness probe of deploy/k8s.
TESTS += t/381-hubd-alive.t
EXTRA_DIST += t/381-hubd-alive.t

# kube.scrape: the metrics source (and RBAC) per deploy/k8s component.
TESTS += t/383-kube-scrape-mode.t
EXTRA_DIST += t/383-kube-scrape-mode.t

# deploy/k8s: kustomize renders both overlays, client dry-run against the
# simulator, images, probes, least privilege, NetworkPolicy.
TESTS += t/382-k8s-manifests.t
EXTRA_DIST += t/382-k8s-manifests.t

# A rolling update of three hub replicas while 20 requests run (about 1-3
# min under load): in `make check-long`.
MH_LONG_TESTS += t/384-kube-rollout.t
EXTRA_DIST += t/384-kube-rollout.t
