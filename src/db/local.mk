# src/db/local.mk — libmhdb.a: the libpq connection wrapper and table queries.
noinst_LIBRARIES += libmhdb.a
libmhdb_a_SOURCES = src/db/db.c src/db/db.h
