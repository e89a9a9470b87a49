# src/lib/local.mk — libmhlib.a: config, logging, buffers (depends on nothing of ours).
noinst_LIBRARIES += libmhlib.a
libmhlib_a_SOURCES = src/lib/log.c src/lib/log.h src/lib/config.c src/lib/config.h \
	src/lib/buf.c src/lib/buf.h
libmhlib_a_SOURCES += src/lib/validate.c src/lib/validate.h
check_PROGRAMS += t/014-validate-auth.t
TESTS += t/014-validate-auth.t
t_014_validate_auth_t_SOURCES = t/014-validate-auth.c
t_014_validate_auth_t_LDADD = libmhlib.a
libmhlib_a_SOURCES += src/lib/cachekey.c src/lib/cachekey.h
