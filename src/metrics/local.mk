# src/metrics/local.mk — libmhmetrics.a: shm segment, Prometheus parser, bands.
noinst_LIBRARIES += libmhmetrics.a
libmhmetrics_a_SOURCES = src/metrics/shm.h src/metrics/shm.c
