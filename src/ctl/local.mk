# src/ctl/local.mk — modelhubctl: migrations, accounts, models from the shell.
bin_PROGRAMS += modelhubctl
modelhubctl_SOURCES = src/ctl/main.c src/ctl/ctl.h src/ctl/ctl_migrate.c src/ctl/ctl_user.c \
	src/ctl/ctl_model.c
modelhubctl_LDADD = libmhdb.a libmhlib.a $(PQ_LIBS) $(JSONC_LIBS) $(SODIUM_LIBS) $(CURL_LIBS)
# kubernetes backend (kube engineer): kube.* lines from a kubeconfig.
modelhubctl_SOURCES += src/ctl/ctl_kube.c
# modelhubd liveness probe (deploy): the age of the supervisor's heartbeat file.
modelhubctl_SOURCES += src/ctl/ctl_alive.c
# The HTTP API from scripts: submit, status, result, cancel (issue 18).
modelhubctl_SOURCES += src/ctl/ctl_client.c
TESTS += t/175-ctl-client.t
EXTRA_DIST += t/175-ctl-client.t
