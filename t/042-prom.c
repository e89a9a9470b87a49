/* 042-prom — Prometheus text parser on kubelet /metrics/resource output, escapes, NaN/Inf, bad lines. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics/prom.h"
#include "lib/tap.h"

/* Shaped like a kubelet 1.28 /metrics/resource answer. */
static const char kubelet[] =
	"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n"
	"# TYPE container_cpu_usage_seconds_total counter\n"
	"container_cpu_usage_seconds_total{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-5d78c9869d-6xw2v\"} 129.839025 1732459812345\n"
	"container_cpu_usage_seconds_total{container=\"model\",namespace=\"modelhub\",pod=\"mh-load-17\"} 3.5 1732459812000\n"
	"# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n"
	"# TYPE container_memory_working_set_bytes gauge\n"
	"container_memory_working_set_bytes{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-5d78c9869d-6xw2v\"} 1.6367616e+07 1732459812345\n"
	"container_memory_working_set_bytes{container=\"model\",namespace=\"modelhub\",pod=\"mh-load-17\"} 2.68435456e+08 1732459812000\n"
	"# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n"
	"# TYPE container_start_time_seconds gauge\n"
	"container_start_time_seconds{container=\"model\",namespace=\"modelhub\",pod=\"mh-load-17\"} 1.7324598e+09 1732459800000\n"
	"# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems\n"
	"# TYPE container_swap_usage_bytes gauge\n"
	"container_swap_usage_bytes{container=\"model\",namespace=\"modelhub\",pod=\"mh-load-17\"} 0 1732459812000\n"
	"# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n"
	"# TYPE node_cpu_usage_seconds_total counter\n"
	"node_cpu_usage_seconds_total 4567.123456789 1732459811000\n"
	"# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n"
	"# TYPE node_memory_working_set_bytes gauge\n"
	"node_memory_working_set_bytes 1.234567168e+09 1732459811000\n"
	"# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n"
	"# TYPE pod_cpu_usage_seconds_total counter\n"
	"pod_cpu_usage_seconds_total{namespace=\"modelhub\",pod=\"mh-load-17\"} 3.75 1732459812000\n"
	"# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n"
	"# TYPE pod_memory_working_set_bytes gauge\n"
	"pod_memory_working_set_bytes{namespace=\"modelhub\",pod=\"mh-load-17\"} 2.70532608e+08 1732459812000\n"
	"# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n"
	"# TYPE resource_scrape_error gauge\n"
	"resource_scrape_error 0\n";

struct seen {
	int n;
	enum prom_metric m[32];
	double v[32];
	int64_t ts[32];
	int has_ts[32];
	char pod[32][64], container[32][64], ns[32][64], l0[32][64];
	int nlabels[32];
	int stop_after;
};

static void cp(char *dst, struct prom_str s)
{
	size_t n = s.p ? (s.n < 63 ? s.n : 63) : 0;

	if (!s.p) {
		strcpy(dst, "(none)");
		return;
	}
	memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static int collect(const struct prom_sample *s, void *arg)
{
	struct seen *z = arg;
	int i = z->n;

	if (i >= 32)
		return 1;
	z->m[i] = s->metric;
	z->v[i] = s->value;
	z->ts[i] = s->ts_ms;
	z->has_ts[i] = s->has_ts;
	z->nlabels[i] = s->nlabels;
	cp(z->pod[i], s->pod);
	cp(z->container[i], s->container);
	cp(z->ns[i], s->namespace_);
	if (s->nlabels)
		cp(z->l0[i], s->label_values[0]);
	else
		strcpy(z->l0[i], "");
	z->n++;
	return z->stop_after && z->n >= z->stop_after;
}

static int parse(const char *text, int only_known, int strict, struct seen *z,
		 struct prom_result *res)
{
	struct prom_opts o = {only_known, strict};

	memset(z, 0, sizeof(*z));
	return prom_parse(text, strlen(text), &o, collect, z, res);
}

static double dbl(const char *s)
{
	double v = -12345;

	if (prom_parse_double(s, strlen(s), &v) < 0)
		return -99999;
	return v;
}

int main(void)
{
	struct seen z;
	struct prom_result res;
	int rc;

	/* metric names */
	for (int m = 1; m < PROM_METRIC_MAX; m++) {
		const char *n = prom_metric_name((enum prom_metric)m);

		is_int(prom_metric_of(n, strlen(n)), m, "name %s recognised", n);
	}
	is_int(prom_metric_of("container_cpu_usage_seconds_totaX", 33), PROM_OTHER, "near miss");
	is_int(prom_metric_of("pod", 3), PROM_OTHER, "short name");

	/* full kubelet payload */
	rc = parse(kubelet, 0, 1, &z, &res);
	is_int(rc, 0, "kubelet payload parses strictly");
	is_int(res.samples, 11, "11 samples");
	is_int(res.bad_lines, 0, "no bad lines");
	is_int(res.lines, 29, "29 lines");
	is_int(z.m[0], PROM_CONTAINER_CPU, "first is container cpu");
	is_str(z.pod[0], "coredns-5d78c9869d-6xw2v", "pod label");
	is_str(z.container[0], "coredns", "container label");
	is_str(z.ns[0], "kube-system", "namespace label");
	is_dbl(z.v[0], 129.839025, 1e-12, "cpu value");
	ok(z.has_ts[0] && z.ts[0] == 1732459812345LL, "timestamp");
	is_dbl(z.v[3], 268435456.0, 0, "memory 2.68435456e+08 exact");
	is_int(z.m[4], PROM_CONTAINER_START, "container start");
	is_int(z.m[5], PROM_OTHER, "swap is another series");
	is_int(z.m[6], PROM_NODE_CPU, "node cpu");
	is_int(z.nlabels[6], 0, "node cpu has no labels");
	is_str(z.pod[6], "(none)", "absent label is NULL");
	is_dbl(z.v[6], 4567.123456789, 1e-9, "node cpu value");
	is_int(z.m[8], PROM_POD_CPU, "pod cpu");
	is_str(z.container[8], "(none)", "pod series without container");
	is_int(z.m[9], PROM_POD_MEM, "pod mem");
	is_int(z.m[10], PROM_OTHER, "resource_scrape_error");
	ok(!z.has_ts[10], "no timestamp");

	rc = parse(kubelet, 1, 1, &z, &res);
	is_int(res.samples, 9, "only_known skips the 2 other series");

	/* callback stop */
	memset(&z, 0, sizeof(z));
	z.stop_after = 2;
	{
		struct prom_opts o = {0, 0};

		rc = prom_parse(kubelet, strlen(kubelet), &o, collect, &z, &res);
	}
	is_int(rc, 1, "callback can stop the parse");
	is_int(z.n, 2, "after two samples");

	/* escapes, spacing, trailing comma, CRLF, missing final newline */
	rc = parse("m{a=\"x\\\"y\\\\z\\nw\",b=\"\\q\"} 1\r\n"
		   "  m2 { pod = \"p\" , } \t 2 \t 17 \n"
		   "m3{} +Inf\n"
		   "m4 -Inf\n"
		   "m5 NaN\n"
		   "m6{pod=\"\"} 1e-3", 0, 1, &z, &res);
	is_int(rc, 0, "escapes and spacing parse");
	is_int(z.n, 6, "6 samples");
	is_str(z.l0[0], "x\"y\\z\nw", "escapes \\\" \\\\ \\n unescaped");
	ok(z.nlabels[0] == 2, "two labels");
	is_str(z.pod[1], "p", "blanks around = and trailing comma");
	ok(z.has_ts[1] && z.ts[1] == 17, "timestamp after tabs");
	ok(isinf(z.v[2]) && z.v[2] > 0, "+Inf");
	ok(isinf(z.v[3]) && z.v[3] < 0, "-Inf");
	ok(isnan(z.v[4]), "NaN");
	is_str(z.pod[5], "", "empty label value");
	is_dbl(z.v[5], 0.001, 1e-18, "last line without newline");

	/* numbers */
	is_dbl(dbl("0"), 0, 0, "0");
	is_dbl(dbl("-1.5"), -1.5, 0, "-1.5");
	is_dbl(dbl("1.6367616e+07"), 16367616, 0, "exponent");
	is_dbl(dbl(".5"), 0.5, 0, ".5");
	is_dbl(dbl("5."), 5, 0, "5.");
	is_dbl(dbl("0.000000000123"), 1.23e-10, 1e-25, "small");
	ok(dbl("0.1") == 0.1, "0.1 exactly as strtod");
	ok(dbl("123456789.123456789") == 123456789.123456789, "18 digits via strtod");
	ok(dbl("1e300") == 1e300, "large exponent via strtod");
	ok(dbl("1.7976931348623157e308") == 1.7976931348623157e308, "max double");
	ok(dbl("0x10") == 16, "hex via strtod");
	ok(isinf(dbl("inf")) && isinf(dbl("+Infinity")), "inf spellings");
	is_dbl(dbl(""), -99999, 0, "empty rejected");
	is_dbl(dbl("-"), -99999, 0, "sign only rejected");
	is_dbl(dbl("1e"), -99999, 0, "1e rejected");
	is_dbl(dbl("1.2.3"), -99999, 0, "1.2.3 rejected");
	is_dbl(dbl("abc"), -99999, 0, "abc rejected");
	is_dbl(dbl("."), -99999, 0, ". rejected");

	/* malformed lines: strict stops, lenient skips and counts */
	{
		static const char *bad[] = {
			"1abc 5\n",                     /* bad name */
			"m{a=\"x} 1\n",                 /* unterminated value */
			"m{a=x} 1\n",                   /* unquoted value */
			"m{a\"x\"} 1\n",                /* missing = */
			"m{a=\"x\" b=\"y\"} 1\n",       /* missing comma */
			"m{=\"x\"} 1\n",                /* empty label name */
			"m\n",                          /* no value */
			"m{a=\"x\"}\n",                 /* no value after labels */
			"m abc\n",                      /* bad value */
			"m 1 2.5\n",                    /* bad timestamp */
			"m 1 2 3\n",                    /* trailing text */
			"m-x 1\n",                      /* bad char in name */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			rc = parse(bad[i], 0, 1, &z, &res);
			ok(rc == -1 && res.first_error_line == 1 && res.first_error && z.n == 0,
			   "strict rejects bad line %zu (%s)", i, res.first_error ? res.first_error : "-");
		}
	}
	rc = parse("good 1\nm{a=\"x} 1\ngood 2\nm abc\ngood 3\n", 0, 0, &z, &res);
	is_int(rc, 0, "lenient parse completes");
	is_int(z.n, 3, "three good samples");
	is_int(res.bad_lines, 2, "two bad lines counted");
	is_int(res.first_error_line, 2, "first error on line 2");
	rc = parse("good 1\nm abc\ngood 2\n", 0, 1, &z, &res);
	is_int(rc, -1, "strict stops");
	is_int(z.n, 1, "after the first good line");
	/* only_known does not even look at other lines */
	rc = parse("garbage{{{ x\nnode_cpu_usage_seconds_total 5\n", 1, 1, &z, &res);
	is_int(rc, 0, "only_known skips unknown garbage");
	is_int(z.n, 1, "and still finds the known one");
	/* too many labels */
	{
		char line[1024] = "m{";

		for (int i = 0; i < PROM_MAX_LABELS + 1; i++)
			sprintf(line + strlen(line), "l%d=\"v\",", i);
		strcat(line, "} 1\n");
		rc = parse(line, 0, 1, &z, &res);
		is_int(rc, -1, "more than PROM_MAX_LABELS labels rejected");
	}
	/* a huge escaped value exceeds the scratch area: error, no overflow */
	{
		static char big[PROM_SCRATCH * 3];
		size_t n = 0;

		n += (size_t)sprintf(big, "m{a=\"");
		while (n < sizeof(big) - 16) {
			big[n++] = '\\';
			big[n++] = 'n';
		}
		strcpy(big + n, "\"} 1\n");
		rc = parse(big, 0, 1, &z, &res);
		is_int(rc, -1, "oversized escaped label value rejected");
	}
	rc = prom_parse("", 0, NULL, NULL, NULL, &res);
	is_int(rc, 0, "empty input");
	is_int(res.samples, 0, "no samples");
	rc = prom_parse("x 1\n", 4, NULL, NULL, NULL, NULL);
	is_int(rc, 0, "NULL callback, opts and result allowed");
	return done_testing();
}
