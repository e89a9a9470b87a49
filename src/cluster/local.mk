# src/cluster/local.mk — libmhcluster.a: instance backends (local, kubernetes).
noinst_LIBRARIES += libmhcluster.a
libmhcluster_a_SOURCES = src/cluster/cluster.h src/cluster/cluster.c src/cluster/local.c \
	src/cluster/modelclient.c src/cluster/modelclient.h
