# src/lib/local.mk — libmhlib.a: config, logging, buffers (depends on nothing of ours).
noinst_LIBRARIES += libmhlib.a
libmhlib_a_SOURCES = src/lib/log.c src/lib/log.h src/lib/config.c src/lib/config.h \
	src/lib/buf.c src/lib/buf.h
