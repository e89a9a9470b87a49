# src/ctl/local.mk — modelhubctl: migrations, accounts, models from the shell.
bin_PROGRAMS += modelhubctl
modelhubctl_SOURCES = src/ctl/main.c
modelhubctl_LDADD = libmhdb.a libmhlib.a $(PQ_LIBS) $(JSONC_LIBS) $(SODIUM_LIBS)
