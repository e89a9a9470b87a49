# src/cluster/local.mk — libmhcluster.a: instance backends (local, kubernetes).
noinst_LIBRARIES += libmhcluster.a
libmhcluster_a_SOURCES = src/cluster/cluster.h src/cluster/local.c
