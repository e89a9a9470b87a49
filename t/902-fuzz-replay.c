/* 902-fuzz-replay — runs the fuzz target t/fuzz/fuzz-parsers.c (plain/CSV bodies, multipart, Prometheus text, configuration files, Kubernetes pod and event JSON) over a seed corpus per parser, 100000 deterministic mutations of it, and every regression input under t/fuzz/regress (crashes scripts/fuzz found); crashes and leaks show under ASan (make check-asan). */
#include "lib/tap.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* first byte: parser (mod 5) and its options (div 5) */
static const char *const seeds[] = {
	"\x00" "CCO\nc1ccccc1\n\n  C(=O)O  \n",
	"\x28" "smiles,name\nCCO,\"eth, anol\"\n\"C\"\"C\",x\n\"open\n",
	"\x41" "id,smiles,extra\r\n1,CCO,a\r\n2,CCN,b\r\n",
	"\x01" "multipart/form-data; boundary=XyZ\n--XyZ\r\nContent-Disposition: form-data;"
	" name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nCCO\r\n--XyZ--\r\n",
	"\x01" "multipart/form-data; boundary=\"q q\"\n--q q\r\n\r\n--q q--",
	"\x02" "# HELP container_cpu_usage_seconds_total x\n# TYPE c counter\n"
	"container_cpu_usage_seconds_total{container=\"m\",pod=\"p\",namespace=\"n\"} 1.5e3 1700000000000\n"
	"container_memory_working_set_bytes{pod=\"p\"} NaN\nbad line {\n",
	"\x07" "node_memory_working_set_bytes 12345\nx{a=\"\\\"\\n\\\\\"} -Inf\n",
	"\x03" "# comment\nhub.runners = 2\nhub.var_dir = /tmp/x  \nquota.anon.stored_bytes=1e9\n"
	"bad line\n = v\nk =\n",
	"\x04" "{\"metadata\":{\"name\":\"mh-1\",\"labels\":{\"modelhub/instance\":\"1\"},"
	"\"creationTimestamp\":\"2026-12-05T07:00:00Z\"},\"spec\":{\"nodeName\":\"n1\"},"
	"\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\",\"containerStatuses\":[{\"ready\":true,"
	"\"restartCount\":2,\"lastState\":{\"terminated\":{\"reason\":\"OOMKilled\",\"exitCode\":137}}}]}}",
	"\x09" "{\"type\":\"Warning\",\"reason\":\"FailedScheduling\",\"message\":\"0/3 nodes\","
	"\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"mh-2\"},\"lastTimestamp\":\"2026-12-05T07:00:00Z\"}",
	"\x04" "[1,{\"status\":null,\"metadata\":[]}]",
};

static int replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned char buf[1 << 16];
	char path[1024];
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		FILE *f;
		size_t len;

		/* this target's regressions only (fuzz-api-input ones are t/017's) */
		if (strncmp(e->d_name, "fuzz-parsers-", 13) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (!(f = fopen(path, "rb")))
			continue;
		len = fread(buf, 1, sizeof buf, f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	closedir(d);
	return n;
}

static unsigned long next(unsigned long *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

int main(void)
{
	static const char punct[] = "{}[]\":,\\\n\r\t -+.eE#={}\"\xc3\xff\x00";
	const size_t nseeds = sizeof seeds / sizeof seeds[0];
	unsigned char buf[1024];
	unsigned long x = 0x9e3779b97f4a7c15UL;
	const char *top = getenv("top_srcdir");
	char dir[1024];
	int n = 0, r;

	for (size_t i = 0; i < nseeds; i++, n++)
		LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], 1 + strlen(seeds[i] + 1));
	for (int round = 0; round < 100000; round++, n++) {
		const char *s = seeds[round % nseeds];
		size_t len = 1 + strlen(s + 1);
		int edits = 1 + (int)(next(&x) % 4);

		if (len > sizeof buf)
			len = sizeof buf;
		memcpy(buf, s, len);
		if (round % 7 == 0)
			buf[0] = (unsigned char)(buf[0] + 5 * (next(&x) % 8)); /* other options */
		for (int e = 0; e < edits && len > 1; e++) {
			size_t pos = 1 + (size_t)(next(&x) % (len - 1));

			switch ((x >> 20) % 3) {
			case 0:
				buf[pos] ^= (unsigned char)(1u << ((x >> 8) % 8));
				break;
			case 1:
				buf[pos] = (unsigned char)punct[(x >> 12) % (sizeof punct - 1)];
				break;
			default:
				len = pos;
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	ok(n == 100000 + (int)nseeds, "%d seeds and mutations through the fuzz target without a crash", n);
	snprintf(dir, sizeof dir, "%s/t/fuzz/regress", top ? top : ".");
	r = replay_dir(dir);
	ok(r >= 0, "%d regression inputs from %s replayed without a crash (directory readable)", r, dir);
	return done_testing();
}
