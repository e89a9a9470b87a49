# src/recommend/local.mk — libmhrecommend.a: the pure recommendation engine.
noinst_LIBRARIES += libmhrecommend.a
libmhrecommend_a_SOURCES = src/recommend/recommend.h src/recommend/recommend.c
