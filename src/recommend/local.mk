# src/recommend/local.mk — libmhrecommend.a: the usage bands and the pure
# recommendation engine, its settings and its JSON rendering (no I/O;
# depends on src/lib and json-c only).
noinst_LIBRARIES += libmhrecommend.a
libmhrecommend_a_SOURCES = src/recommend/bands.h src/recommend/bands.c \
	src/recommend/recommend.h src/recommend/recommend.c \
	src/recommend/rec_config.c src/recommend/rec_json.h src/recommend/rec_json.c
check_PROGRAMS += t/043-bands.t
TESTS += t/043-bands.t
t_043_bands_t_SOURCES = t/043-bands.c
t_043_bands_t_LDADD = libmhrecommend.a libmhlib.a -lm
check_PROGRAMS += t/060-recommend.t
TESTS += t/060-recommend.t
t_060_recommend_t_SOURCES = t/060-recommend.c
t_060_recommend_t_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/t/lib
t_060_recommend_t_LDADD = libmhrecommend.a libmhlib.a -lm
MH_REC_API_TESTS = t/160-recommend-api.t t/161-recommend-nightly.t t/162-recommend-e2e.t \
	t/163-recommend-converge.t t/164-recommend-node-cap.t t/165-recommend-oom-recovery.t \
	t/166-recommend-size-from-request.t t/167-recommend-metrics-retention.t
TESTS += $(MH_REC_API_TESTS)
EXTRA_DIST += $(MH_REC_API_TESTS)
