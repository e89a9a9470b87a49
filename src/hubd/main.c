/*
 * main.c — modelhubd entry point: options, configuration, then the
 * supervisor.
 *
 * Runs in: modelhubd before the first fork. Called by: the shell, systemd,
 * scripts/run-local, t/lib/stack.py (`modelhubd -c FILE`).
 * Owns: nothing that outlives supervisor_run().
 */
#include "lib/config.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int supervisor_run(void);
void hubd_title_init(int argc, char **argv);

static void usage(FILE *f)
{
	fprintf(f, "usage: modelhubd [-c FILE] [--version]\n"
		   "  -c FILE     configuration file (default $MODELHUB_CONFIG)\n"
		   "  --version   print the version and exit\n");
}

int main(int argc, char **argv)
{
	const char *path = NULL, *err = NULL;
	int line = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("modelhubd %s\n", MH_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	log_init("supervisor");
	if (cfg_load(path, &err, &line) < 0)
		die("config path=%s line=%d error=\"%s\"", path ? path : "-", line, err ? err : "?");
	hubd_title_init(argc, argv);
	return supervisor_run() == 0 ? 0 : 1;
}
