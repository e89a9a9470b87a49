# src/hubd/local.mk — modelhubd: the supervisor and its children.
bin_PROGRAMS += modelhubd
modelhubd_SOURCES = src/hubd/main.c
modelhubd_LDADD = libmhcluster.a libmhmetrics.a libmhrecommend.a libmhdb.a libmhlib.a \
	$(PQ_LIBS) $(JSONC_LIBS) $(CURL_LIBS) $(SODIUM_LIBS) -lm
