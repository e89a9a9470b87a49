# src/fcgi/local.mk — modelhub-fcgi: the pre-forked FastCGI API server.
bin_PROGRAMS += modelhub-fcgi
noinst_LIBRARIES += libmhapi.a
# Handlers and router, linked into modelhub-fcgi and the router unit tests.
libmhapi_a_SOURCES = src/fcgi/api.h \
	src/fcgi/api_core.c \
	src/fcgi/router.c \
	src/fcgi/api_health.c \
	src/fcgi/api_models.c \
	src/fcgi/api_requests.c \
	src/fcgi/api_instances.c \
	src/fcgi/api_recommend.c \
	src/fcgi/api_autoscaler.c \
	src/fcgi/api_account.c src/fcgi/api_users.c src/fcgi/api_stats.c src/fcgi/mail.c src/fcgi/mail.h \
	src/fcgi/api_compat.c src/fcgi/api_requests.h
modelhub_fcgi_SOURCES = src/fcgi/main.c src/fcgi/worker.c src/fcgi/worker.h
modelhub_fcgi_LDADD = libmhapi.a libmhmetrics.a libmhdb.a libmhrecommend.a libmhautoscale.a libmhlib.a \
	$(FCGI_LIBS) $(PQ_LIBS) $(JSONC_LIBS) $(SODIUM_LIBS) $(CURL_LIBS) -lm
# Work requests (api_requests.c): input parsing, pure and unit-tested.
libmhapi_a_SOURCES += src/fcgi/csvin.c src/fcgi/csvin.h
check_PROGRAMS += t/016-csvin.t
TESTS += t/016-csvin.t
t_016_csvin_t_SOURCES = t/016-csvin.c src/fcgi/csvin.c
t_016_csvin_t_LDADD = libmhlib.a
# Accounts and sessions (api_auth.c), the per-worker session cache.
libmhapi_a_SOURCES += src/fcgi/api_auth.c src/fcgi/auth_cache.c src/fcgi/auth_cache.h
check_PROGRAMS += t/015-auth-cache.t
TESTS += t/015-auth-cache.t
t_015_auth_cache_t_SOURCES = t/015-auth-cache.c
t_015_auth_cache_t_LDADD = libmhapi.a libmhdb.a libmhlib.a $(FCGI_LIBS) $(PQ_LIBS) \
	$(JSONC_LIBS) $(SODIUM_LIBS) $(CURL_LIBS)
# API tests of accounts and sessions (t/lib/stack.py).
AUTH_API_TESTS = t/101-signup.t t/102-login.t t/103-session-expiry.t t/104-anon.t \
	t/105-roles-csrf.t t/106-session-cache.t
TESTS += $(AUTH_API_TESTS)
EXTRA_DIST += $(AUTH_API_TESTS)
# Work request API tests (real stack).
TESTS += t/120-requests.t
EXTRA_DIST += t/120-requests.t
# Foundation unit tests: config parsing, router, api_core JSON/error helpers.
check_PROGRAMS += t/010-config.t t/011-router.t t/012-json.t
TESTS += t/010-config.t t/011-router.t t/012-json.t
t_010_config_t_SOURCES = t/010-config.c
t_010_config_t_LDADD = libmhlib.a
t_011_router_t_SOURCES = t/011-router.c
t_011_router_t_LDADD = libmhapi.a libmhmetrics.a libmhdb.a libmhrecommend.a libmhautoscale.a libmhlib.a \
	$(FCGI_LIBS) $(PQ_LIBS) $(JSONC_LIBS) $(SODIUM_LIBS) $(CURL_LIBS) -lm
t_012_json_t_SOURCES = t/012-json.c
t_012_json_t_LDADD = $(t_011_router_t_LDADD)
t_012_json_t_DEPENDENCIES = libmhapi.a libmhdb.a libmhlib.a
TESTS += t/121-requests-validation.t t/122-results.t
EXTRA_DIST += t/121-requests-validation.t t/122-results.t
TESTS += t/123-admin-requests.t t/124-cache-submit.t t/126-admin-list-keyset.t
EXTRA_DIST += t/123-admin-requests.t t/124-cache-submit.t t/126-admin-list-keyset.t
# Instances, nodes, bands (api_instances.c) and GET /metrics (api_metrics.c).
libmhapi_a_SOURCES += src/fcgi/api_metrics.c
TESTS += t/125-anon-doc.t
EXTRA_DIST += t/125-anon-doc.t
TESTS += t/150-input-columns.t
EXTRA_DIST += t/150-input-columns.t
# The old Ersilia hub's client API (api_compat.c).
TESTS += t/140-compat-api.t t/141-ersilia-replay.t t/142-ersilia-client.t
EXTRA_DIST += t/140-compat-api.t t/141-ersilia-replay.t t/142-ersilia-client.t
# The other columns of a CSV kept with each input and returned (sql/010).
TESTS += t/151-input-riders.t t/152-dry-run.t
EXTRA_DIST += t/151-input-riders.t t/152-dry-run.t
# ... and on the web pages (headless Chromium; skips without it).
TESTS += t/153-web-columns.t t/154-web-column-choice.t
EXTRA_DIST += t/153-web-columns.t t/154-web-column-choice.t
# Foundation API tests (real stack): catalogue, errors, Postgres restart, schema.
TESTS += t/110-models.t t/111-errors.t t/112-pgrestart.t t/113-schema.t t/114-fcgi-master.t
EXTRA_DIST += t/110-models.t t/111-errors.t t/112-pgrestart.t t/113-schema.t \
	t/114-fcgi-master.t
# Sessions cannot be checked while Postgres is down: 503, not 401.
TESTS += t/115-auth-db-down.t
EXTRA_DIST += t/115-auth-db-down.t
# Fuzzing the request parsing: t/017 replays the target under make check;
# `make fuzz-api-input` builds the libFuzzer binary (needs clang).
check_PROGRAMS += t/017-fuzz-replay.t
TESTS += t/017-fuzz-replay.t
t_017_fuzz_replay_t_SOURCES = t/017-fuzz-replay.c t/fuzz/fuzz-api-input.c
t_017_fuzz_replay_t_LDADD = $(t_011_router_t_LDADD)
t_017_fuzz_replay_t_DEPENDENCIES = libmhapi.a libmhdb.a libmhlib.a
MH_FUZZ_API_SRC = t/fuzz/fuzz-api-input.c src/fcgi/api_core.c src/db/db_model.c src/db/db.c \
	src/lib/log.c src/lib/buf.c src/lib/utf8.c
EXTRA_DIST += $(MH_FUZZ_API_SRC)
fuzz-api-input: $(MH_FUZZ_API_SRC:%=$(srcdir)/%)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -I$(srcdir)/src \
		-DMH_VERSION=\"$(PACKAGE_VERSION)\" $(PQ_CFLAGS) $(JSONC_CFLAGS) \
		$(MH_FUZZ_API_SRC:%=$(srcdir)/%) $(FCGI_LIBS) $(PQ_LIBS) $(JSONC_LIBS) -o $@
CLEANFILES += fuzz-api-input
# Parsers of external text (issue 17): plain/CSV bodies, multipart,
# Prometheus text, configuration files, Kubernetes pod and event JSON.
# t/902 replays the target under make check; `make fuzz-parsers` builds the
# libFuzzer binary (clang; the parsers instrumented, the rest from the
# libraries); scripts/fuzz SECONDS runs every target.
check_PROGRAMS += t/902-fuzz-replay.t
TESTS += t/902-fuzz-replay.t
t_902_fuzz_replay_t_SOURCES = t/902-fuzz-replay.c t/fuzz/fuzz-parsers.c
t_902_fuzz_replay_t_LDADD = libmhapi.a libmhcluster.a libmhmetrics.a libmhlib.a $(JSONC_LIBS) \
	$(CURL_LIBS) -lm $(LIBS)
MH_FUZZ_PARSERS_SRC = t/fuzz/fuzz-parsers.c src/fcgi/csvin.c src/metrics/prom.c src/lib/config.c \
	src/cluster/kube/kube_pod.c
EXTRA_DIST += $(MH_FUZZ_PARSERS_SRC) t/fuzz/regress
fuzz-parsers: $(MH_FUZZ_PARSERS_SRC:%=$(srcdir)/%) libmhcluster.a libmhmetrics.a libmhlib.a
	clang -g -O1 -fsanitize=fuzzer,address,undefined -I$(srcdir)/src \
		-D_GNU_SOURCE -DMH_VERSION=\"$(PACKAGE_VERSION)\" -DMH_DATADIR=\"$(pkgdatadir)\" \
		$(JSONC_CFLAGS) $(MH_FUZZ_PARSERS_SRC:%=$(srcdir)/%) -Wl,--allow-multiple-definition \
		libmhcluster.a libmhmetrics.a libmhlib.a $(JSONC_LIBS) $(CURL_LIBS) -lm -o $@
CLEANFILES += fuzz-parsers
# Client address through trusted proxies (http.trusted_proxies): pure, unit-tested.
libmhapi_a_SOURCES += src/fcgi/clientaddr.c src/fcgi/clientaddr.h
check_PROGRAMS += t/130-clientaddr.t
TESTS += t/130-clientaddr.t
t_130_clientaddr_t_SOURCES = t/130-clientaddr.c src/fcgi/clientaddr.c
# Abuse resistance (issue 17): login throttle, trusted proxies, signup order.
ABUSE_API_TESTS = t/131-login-throttle.t t/132-role-propagation.t t/133-strict-input.t \
	t/135-quotas.t t/136-input-limit.t t/137-fair-claim.t t/139-model-user.t \
	t/900-nginx-json-errors.t t/901-authz-matrix.t t/903-model-response-cap.t \
	t/905-quota-defaults.t
TESTS += $(ABUSE_API_TESTS)
EXTRA_DIST += $(ABUSE_API_TESTS) t/authz-matrix.txt
# Own account, password reset, guests, user admin (api_account.c, api_users.c).
PEOPLE_API_TESTS = t/170-account.t t/171-password-reset.t t/172-guest.t t/173-admin-users.t t/174-admin-cancel-version.t t/176-anon-doc-errors.t t/178-anon-guide-served.t t/179-stats.t t/180-model-identification.t \
	t/181-stats-rollup.t
TESTS += $(PEOPLE_API_TESTS)
EXTRA_DIST += $(PEOPLE_API_TESTS)
# GET /api/openapi.json: src/fcgi/openapi.json compiled in as a byte array
# (od + sed: no tool beyond coreutils), served by api_openapi.c; t/177
# checks it against every route of the router tables and real answers.
libmhapi_a_SOURCES += src/fcgi/api_openapi.c
nodist_libmhapi_a_SOURCES = src/fcgi/openapi_data.c
BUILT_SOURCES = src/fcgi/openapi_data.c
CLEANFILES += src/fcgi/openapi_data.c
EXTRA_DIST += src/fcgi/openapi.json
src/fcgi/openapi_data.c: $(srcdir)/src/fcgi/openapi.json
	$(MKDIR_P) src/fcgi
	{ echo '/* generated from src/fcgi/openapi.json by src/fcgi/local.mk: do not edit */'; \
	  echo 'extern const char api_openapi_json[];'; \
	  echo 'const char api_openapi_json[] = {'; \
	  od -An -v -tx1 $(srcdir)/src/fcgi/openapi.json | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0 };'; } > $@.tmp && mv $@.tmp $@
TESTS += t/177-openapi.t
EXTRA_DIST += t/177-openapi.t
