# src/lib/local.mk — libmhlib.a: config, logging, buffers, clocks, UTF-8, JSON and
# password helpers (depends on nothing of ours).
noinst_LIBRARIES += libmhlib.a
libmhlib_a_SOURCES = src/lib/log.c src/lib/log.h src/lib/config.c src/lib/config.h \
	src/lib/buf.c src/lib/buf.h src/lib/sup.c src/lib/sup.h
libmhlib_a_SOURCES += src/lib/validate.c src/lib/validate.h
check_PROGRAMS += t/014-validate-auth.t
TESTS += t/014-validate-auth.t
t_014_validate_auth_t_SOURCES = t/014-validate-auth.c
t_014_validate_auth_t_LDADD = libmhlib.a
libmhlib_a_SOURCES += src/lib/cachekey.c src/lib/cachekey.h
libmhlib_a_SOURCES += src/lib/smiles.c src/lib/smiles.h
check_PROGRAMS += t/023-smiles.t t/smiles-screen
TESTS += t/023-smiles.t t/024-smiles-corpus.t
EXTRA_DIST += t/024-smiles-corpus.t
t_023_smiles_t_SOURCES = t/023-smiles.c
t_023_smiles_t_LDADD = libmhlib.a
t_smiles_screen_SOURCES = t/smiles-screen.c
t_smiles_screen_LDADD = libmhlib.a
libmhlib_a_SOURCES += src/lib/utf8.c src/lib/utf8.h src/lib/clock.c src/lib/clock.h
check_PROGRAMS += t/050-utf8.t t/051-clock.t
TESTS += t/050-utf8.t t/051-clock.t
t_050_utf8_t_SOURCES = t/050-utf8.c
t_050_utf8_t_LDADD = libmhlib.a
t_051_clock_t_SOURCES = t/051-clock.c
t_051_clock_t_LDADD = libmhlib.a
libmhlib_a_SOURCES += src/lib/password.c src/lib/password.h
check_PROGRAMS += t/052-password.t
TESTS += t/052-password.t
t_052_password_t_SOURCES = t/052-password.c
t_052_password_t_LDADD = libmhlib.a $(SODIUM_LIBS)
# json.c needs json-c only; json_pg.c (result columns) also libpq.
libmhlib_a_SOURCES += src/lib/json.c src/lib/json_pg.c src/lib/json.h
check_PROGRAMS += t/053-json.t
TESTS += t/053-json.t
t_053_json_t_SOURCES = t/053-json.c
t_053_json_t_LDADD = libmhlib.a $(JSONC_LIBS) $(PQ_LIBS)
# supervisor core (sup.c) with real children: exit kinds, policies, gating.
check_PROGRAMS += t/211-sup-roles.t
TESTS += t/211-sup-roles.t
t_211_sup_roles_t_SOURCES = t/211-sup-roles.c
t_211_sup_roles_t_LDADD = libmhlib.a
libmhlib_a_SOURCES += src/lib/backoff.c src/lib/backoff.h
check_PROGRAMS += t/212-backoff.t
TESTS += t/212-backoff.t
t_212_backoff_t_SOURCES = t/212-backoff.c
t_212_backoff_t_LDADD = libmhlib.a
# Per-caller quotas of work requests (issue 17): pure decision, unit-tested.
libmhlib_a_SOURCES += src/lib/quota.c src/lib/quota.h
# hub.local_command_dirs (issue 17): may a model's command run this program?
libmhlib_a_SOURCES += src/lib/cmdpath.c src/lib/cmdpath.h
check_PROGRAMS += t/138-cmdpath.t
TESTS += t/138-cmdpath.t
t_138_cmdpath_t_SOURCES = t/138-cmdpath.c
t_138_cmdpath_t_LDADD = libmhlib.a
check_PROGRAMS += t/134-quota.t
TESTS += t/134-quota.t
t_134_quota_t_SOURCES = t/134-quota.c
t_134_quota_t_LDADD = libmhlib.a
