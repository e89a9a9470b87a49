# src/db/local.mk — libmhdb.a: the libpq connection wrapper and table queries.
noinst_LIBRARIES += libmhdb.a
libmhdb_a_SOURCES = src/db/db.c src/db/db.h
libmhdb_a_SOURCES += src/db/db_user.c src/db/db_user.h src/db/db_session.c src/db/db_session.h
libmhdb_a_SOURCES += src/db/db_request.c src/db/db_request.h
libmhdb_a_SOURCES += src/db/db_recommend.c src/db/db_recommend.h
libmhdb_a_SOURCES += src/db/db_work.c src/db/db_work.h
libmhdb_a_SOURCES += src/db/db_model.c src/db/db_model.h
# Model validation shared by the API and modelhubctl.
check_PROGRAMS += t/013-validate.t
TESTS += t/013-validate.t
t_013_validate_t_SOURCES = t/013-validate.c
t_013_validate_t_LDADD = libmhdb.a libmhlib.a $(PQ_LIBS) $(JSONC_LIBS)
