# src/db/local.mk — libmhdb.a: the libpq connection wrapper and table queries.
noinst_LIBRARIES += libmhdb.a
libmhdb_a_SOURCES = src/db/db.c src/db/db.h
libmhdb_a_SOURCES += src/db/db_user.c src/db/db_user.h src/db/db_session.c src/db/db_session.h
libmhdb_a_SOURCES += src/db/db_request.c src/db/db_request.h
libmhdb_a_SOURCES += src/db/db_recommend.c src/db/db_recommend.h
libmhdb_a_SOURCES += src/db/db_model.c src/db/db_model.h
