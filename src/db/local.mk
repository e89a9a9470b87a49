# src/db/local.mk — libmhdb.a: the libpq connection wrapper and table queries.
noinst_LIBRARIES += libmhdb.a
libmhdb_a_SOURCES = src/db/db.c src/db/db.h
libmhdb_a_SOURCES += src/db/db_user.c src/db/db_user.h src/db/db_session.c src/db/db_session.h
libmhdb_a_SOURCES += src/db/db_account.c src/db/db_account.h
libmhdb_a_SOURCES += src/db/db_request.c src/db/db_request.h
libmhdb_a_SOURCES += src/db/db_recommend.c src/db/db_recommend.h
libmhdb_a_SOURCES += src/db/db_work.h src/db/db_work_int.h src/db/db_work_claim.c
libmhdb_a_SOURCES += src/db/db_work_lease.c src/db/db_work_store.c src/db/db_work_model.c
libmhdb_a_SOURCES += src/db/db_instance.c src/db/db_instance.h
libmhdb_a_SOURCES += src/db/db_janitor.c src/db/db_hub.c
libmhdb_a_SOURCES += src/db/db_stats.c src/db/db_stats.h
libmhdb_a_SOURCES += src/db/db_migrate.c src/db/db_migrate.h
libmhdb_a_SOURCES += src/db/db_inst_metrics.c src/db/db_lead.c src/db/db_lead.h
libmhdb_a_SOURCES += src/db/db_model.c src/db/db_model.h src/db/db_catalog.c
libmhdb_a_SOURCES += src/db/db_pod.c src/db/db_pod.h
libmhdb_a_SOURCES += src/db/db_autoscale.c src/db/db_autoscale.h
# Model validation shared by the API and modelhubctl.
check_PROGRAMS += t/013-validate.t
TESTS += t/013-validate.t
t_013_validate_t_SOURCES = t/013-validate.c
t_013_validate_t_LDADD = libmhdb.a libmhlib.a $(PQ_LIBS) $(JSONC_LIBS)
# db_send/db_collect against a real Postgres: the helper prints TAP, the
# .t starts the cluster and relays it.
check_PROGRAMS += t/db-async-helper
t_db_async_helper_SOURCES = t/db-async-helper.c
t_db_async_helper_LDADD = libmhdb.a libmhlib.a $(PQ_LIBS) $(JSONC_LIBS)
TESTS += t/117-db-async.t
EXTRA_DIST += t/117-db-async.t
