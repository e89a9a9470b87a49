/*
 * fuzz-parsers.c — fuzz target for the parsers of untrusted or external
 * text other than JSON request bodies (those are fuzz-api-input.c's):
 * request bodies as plain text and CSV (csvin_parse, every option), the
 * multipart/form-data splitter and boundary parameter (csvin_boundary,
 * csvin_multipart), the Prometheus text parser (prom_parse, strict and
 * lenient), the configuration file parser (cfg_parse) and the Kubernetes
 * JSON decoders (kube_pod_parse, kube_event_parse).
 *
 * Runs in: a libFuzzer binary (`make fuzz-parsers`, clang; scripts/fuzz) or
 * the replay driver t/902-fuzz-replay.c under `make check` (gcc; ASan in
 * check-asan). Owns: what each parser allocates, freed before returning.
 * The input's first byte selects the parser and its options; the rest is
 * the text.
 */
#include "cluster/cluster.h"
#include "cluster/kube/kube_pod.h"
#include "cluster/kube/kube_watch.h"
#include "fcgi/csvin.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/prom.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_csv(unsigned sel, const char *s, size_t n)
{
	static const char *const cols[] = {NULL, "smiles", "2", "0", "x,y"};
	struct csvin_opts o = {(int)(sel % 3) - 1, 1 + sel % 7 * 100, 1 + sel % 5 * 64,
			       cols[(sel >> 2) % 5]};
	struct csvin c = CSVIN_INIT;

	if (csvin_parse(&c, (sel & 8) ? CSVIN_CSV : CSVIN_PLAIN, s, n, &o) == 0)
		csvin_finish(&c);
	csvin_strerror(c.err);
	csvin_free(&c);
}

static void fuzz_multipart(const char *s, size_t n)
{
	struct csvin_part parts[8];
	char b[80];
	const char *nl = memchr(s, '\n', n);
	char *ct;

	if (!nl)
		return;
	/* first line: the Content-Type header; the rest: the body */
	ct = strndup(s, (size_t)(nl - s));
	if (ct && csvin_boundary(ct, b, sizeof b) == 0)
		csvin_multipart(nl + 1, n - (size_t)(nl + 1 - s), b, parts, 8);
	free(ct);
}

static int prom_count(const struct prom_sample *x, void *arg)
{
	(*(long *)arg) += x->line;
	return 0;
}

static void fuzz_prom(unsigned sel, const char *s, size_t n)
{
	struct prom_opts o = {(int)(sel & 1), (int)((sel >> 1) & 1)};
	struct prom_result res;
	long sum = 0;

	prom_parse(s, n, &o, prom_count, &sum, &res);
}

static void fuzz_config(const char *s)
{
	const char *err = NULL;
	int line = 0;

	if (cfg_parse(s, &err, &line) == 0) {
		cfg_str("hub.var_dir", "");
		cfg_int("hub.runners", 0);
		cfg_double("quota.anon.stored_bytes", 0);
		cfg_bool("auth.debug_headers", 0);
	}
	cfg_free();
}

static void fuzz_kube(unsigned sel, const char *s, size_t n)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;
	struct cluster_pod pod;
	struct cluster_event ev;

	if (!tok)
		return;
	o = json_tokener_parse_ex(tok, s, (int)n);
	if (o) {
		memset(&pod, 0, sizeof pod);
		memset(&ev, 0, sizeof ev);
		if (sel & 1)
			kube_event_parse(o, &ev);
		else
			kube_pod_parse(o, (int)(sel % 3), &pod);
		json_object_put(o);
	}
	json_tokener_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	unsigned sel;
	char *s;
	size_t n;

	if (!quiet) {
		log_set_level(LOG_ERROR + 1);
		quiet = 1;
	}
	if (size == 0)
		return 0;
	sel = data[0];
	n = size - 1;
	s = malloc(n + 1);
	if (!s)
		return 0;
	memcpy(s, data + 1, n);
	s[n] = '\0';
	switch (sel % 5) {
	case 0:
		fuzz_csv(sel / 5, s, n);
		break;
	case 1:
		fuzz_multipart(s, n);
		break;
	case 2:
		fuzz_prom(sel / 5, s, n);
		break;
	case 3:
		fuzz_config(s);
		break;
	default:
		fuzz_kube(sel / 5, s, n);
		break;
	}
	free(s);
	return 0;
}
