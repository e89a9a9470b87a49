/*
 * prom.c — Prometheus text exposition parser (see prom.h for the grammar).
 *
 * Runs in: the scraper (kubelet /metrics/resource), bench/prom-parse, tests.
 * Called by: hubd/scraper.c through prom_parse(). Owns: nothing; no
 * allocation. Pure.
 *
 * DESIGN. A 100-node × 110-pod cluster produces about 7 MB of text per scrape
 * cycle, which must parse in well under 20 ms of CPU. So: one pass over each
 * line, memchr for the line end, names matched by length then memcmp, label
 * values referenced in place unless they hold an escape (then unescaped into
 * a scratch area), and floats converted exactly by the Clinger fast path
 * (≤ 15 significant digits, |exponent| ≤ 22) with strtod as the fallback for
 * everything else. With only_known, lines of other series are skipped after
 * their name.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/prom.h"

static const char *const metric_names[PROM_METRIC_MAX] = {
	[PROM_OTHER] = "",
	[PROM_CONTAINER_CPU] = "container_cpu_usage_seconds_total",
	[PROM_CONTAINER_MEM] = "container_memory_working_set_bytes",
	[PROM_CONTAINER_START] = "container_start_time_seconds",
	[PROM_POD_CPU] = "pod_cpu_usage_seconds_total",
	[PROM_POD_MEM] = "pod_memory_working_set_bytes",
	[PROM_NODE_CPU] = "node_cpu_usage_seconds_total",
	[PROM_NODE_MEM] = "node_memory_working_set_bytes",
	[PROM_CONTAINER_CFS_PERIODS] = "container_cpu_cfs_periods_total",
	[PROM_CONTAINER_CFS_THROTTLED] = "container_cpu_cfs_throttled_periods_total",
};

const char *prom_metric_name(enum prom_metric m)
{
	return m > PROM_OTHER && m < PROM_METRIC_MAX ? metric_names[m] : "";
}

enum prom_metric prom_metric_of(const char *name, size_t n)
{
	/* first letter and length narrow it to one candidate */
	switch (name[0]) {
	case 'c':
		if (n == 33 && memcmp(name, metric_names[PROM_CONTAINER_CPU], n) == 0)
			return PROM_CONTAINER_CPU;
		if (n == 34 && memcmp(name, metric_names[PROM_CONTAINER_MEM], n) == 0)
			return PROM_CONTAINER_MEM;
		if (n == 28 && memcmp(name, metric_names[PROM_CONTAINER_START], n) == 0)
			return PROM_CONTAINER_START;
		if (n == 31 && memcmp(name, metric_names[PROM_CONTAINER_CFS_PERIODS], n) == 0)
			return PROM_CONTAINER_CFS_PERIODS;
		if (n == 41 && memcmp(name, metric_names[PROM_CONTAINER_CFS_THROTTLED], n) == 0)
			return PROM_CONTAINER_CFS_THROTTLED;
		break;
	case 'p':
		if (n == 27 && memcmp(name, metric_names[PROM_POD_CPU], n) == 0)
			return PROM_POD_CPU;
		if (n == 28 && memcmp(name, metric_names[PROM_POD_MEM], n) == 0)
			return PROM_POD_MEM;
		break;
	case 'n':
		if (n == 28 && memcmp(name, metric_names[PROM_NODE_CPU], n) == 0)
			return PROM_NODE_CPU;
		if (n == 29 && memcmp(name, metric_names[PROM_NODE_MEM], n) == 0)
			return PROM_NODE_MEM;
		break;
	}
	return PROM_OTHER;
}

int prom_str_eq(struct prom_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

/* ---- numbers ---- */

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int is_digit(char c)
{
	return (unsigned)(c - '0') < 10;
}

static int lower_eq(const char *p, size_t n, const char *lit)
{
	size_t k = strlen(lit);

	if (n != k)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((p[i] | 0x20) != lit[i])
			return 0;
	return 1;
}

static int slow_double(const char *p, size_t n, double *out)
{
	char tmp[64];
	char *endp;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	/* strtod skips leading blanks and takes "0x..": Prometheus has neither
	 * blanks here nor would a leading space reach us; reject blanks */
	if (tmp[0] == ' ' || tmp[0] == '\t')
		return -1;
	*out = strtod(tmp, &endp);
	return endp == tmp + n ? 0 : -1;
}

/* Decimal mantissa gathered so far: up to 19 significant digits in m, the
 * power of ten to apply to it, and whether digits had to be dropped. */
struct mant {
	uint64_t m;
	int sig, e10, any, lossy;
};

/* Digits of the integer part (frac 0) or of the fraction (frac 1); returns
 * where they end. A dropped integer digit still scales the value. */
static const char *mant_digits(struct mant *d, const char *s, const char *e, int frac)
{
	for (; s < e && is_digit(*s); s++) {
		d->any = 1;
		if (d->sig < 19) {
			d->m = d->m * 10 + (uint64_t)(*s - '0');
			d->sig += d->m != 0;
			d->e10 -= frac;
		} else {
			d->e10 += !frac;
			d->lossy = 1;
		}
	}
	return s;
}

/* The exponent at s ('e' or 'E', an optional sign, digits), added to *e10.
 * Returns its end, or NULL when no digit follows. */
static const char *exponent(const char *s, const char *e, int *e10)
{
	int x = 0, neg = 0, any = 0;

	s++;
	if (s < e && (*s == '+' || *s == '-'))
		neg = *s++ == '-';
	for (; s < e && is_digit(*s); s++) {
		any = 1;
		if (x < 100000)
			x = x * 10 + (*s - '0');
	}
	if (!any)
		return NULL;
	*e10 += neg ? -x : x;
	return s;
}

/* NaN, Inf, Infinity in any case (after the sign). 0 / -1. */
static int special(const char *s, const char *e, int neg, double *out)
{
	size_t k = (size_t)(e - s);

	if (lower_eq(s, k, "nan")) {
		*out = NAN;
		return 0;
	}
	if (lower_eq(s, k, "inf") || lower_eq(s, k, "infinity")) {
		*out = neg ? -INFINITY : INFINITY;
		return 0;
	}
	return -1;
}

int prom_parse_double(const char *p, size_t n, double *out)
{
	const char *s = p, *e = p + n;
	struct mant d = {0, 0, 0, 0, 0};
	int neg = 0;
	double v;

	if (s < e && (*s == '+' || *s == '-'))
		neg = *s++ == '-';
	if (s == e)
		return -1;
	if (!is_digit(*s) && *s != '.')
		return special(s, e, neg, out);
	s = mant_digits(&d, s, e, 0);
	if (s < e && *s == '.')
		s = mant_digits(&d, s + 1, e, 1);
	if (!d.any)
		return -1;
	if (s < e && (*s == 'e' || *s == 'E') && !(s = exponent(s, e, &d.e10)))
		return -1;
	if (s != e || d.lossy || d.sig > 15 || d.e10 < -22 || d.e10 > 22)
		return slow_double(p, n, out);
	v = (double)d.m;
	v = d.e10 < 0 ? v / pow10_tab[-d.e10] : v * pow10_tab[d.e10];
	*out = neg ? -v : v;
	return 0;
}

static int parse_int64(const char *p, size_t n, int64_t *out)
{
	const char *s = p, *e = p + n;
	uint64_t v = 0;
	int neg = 0;

	if (s < e && (*s == '+' || *s == '-'))
		neg = *s++ == '-';
	if (s == e || (size_t)(e - s) > 18)
		return -1;
	for (; s < e; s++) {
		if (!is_digit(*s))
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* ---- lines ---- */

static int is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int is_name_ch(char c)
{
	return is_name_start(c) || is_digit(c);
}

static const char *skip_blank(const char *q, const char *le)
{
	while (q < le && (*q == ' ' || *q == '\t'))
		q++;
	return q;
}

/* One label value starting after its opening quote. Returns the position
 * after the closing quote, or NULL (error text in *err). */
static const char *label_value(const char *q, const char *le, struct prom_str *out, char *scratch,
			       size_t *used, const char **err)
{
	const char *start = q;
	char *w;

	while (q < le && *q != '"' && *q != '\\')
		q++;
	if (q < le && *q == '"') {
		out->p = start;
		out->n = (size_t)(q - start);
		return q + 1;
	}
	/* escapes: unescape into scratch */
	w = scratch + *used;
	if ((size_t)(q - start) > PROM_SCRATCH - *used)
		goto too_long;
	memcpy(w, start, (size_t)(q - start));
	w += q - start;
	while (q < le && *q != '"') {
		char c = *q++;

		if (c == '\\') {
			if (q == le)
				break;
			c = *q++;
			if (c == 'n') {
				c = '\n';
			} else if (c != '\\' && c != '"') {
				/* unknown escape: kept as written */
				if (w >= scratch + PROM_SCRATCH)
					goto too_long;
				*w++ = '\\';
			}
		}
		if (w >= scratch + PROM_SCRATCH)
			goto too_long;
		*w++ = c;
	}
	if (q >= le) {
		*err = "unterminated label value";
		return NULL;
	}
	out->p = scratch + *used;
	out->n = (size_t)(w - out->p);
	*used += out->n;
	return q + 1;
too_long:
	*err = "label values too long";
	return NULL;
}

static const char *parse_labels(const char *q, const char *le, struct prom_sample *s,
				char *scratch, const char **err)
{
	size_t used = 0;

	q++; /* '{' */
	for (;;) {
		const char *ln;
		struct prom_str v;
		size_t n;

		q = skip_blank(q, le);
		if (q < le && *q == '}')
			return q + 1;
		if (q >= le || !is_name_start(*q) || *q == ':') {
			*err = "bad label name";
			return NULL;
		}
		ln = q;
		while (q < le && is_name_ch(*q) && *q != ':')
			q++;
		n = (size_t)(q - ln);
		q = skip_blank(q, le);
		if (q >= le || *q != '=') {
			*err = "expected '=' after label name";
			return NULL;
		}
		q = skip_blank(q + 1, le);
		if (q >= le || *q != '"') {
			*err = "expected '\"' to open label value";
			return NULL;
		}
		q = label_value(q + 1, le, &v, scratch, &used, err);
		if (!q)
			return NULL;
		if (s->nlabels >= PROM_MAX_LABELS) {
			*err = "too many labels";
			return NULL;
		}
		s->label_names[s->nlabels].p = ln;
		s->label_names[s->nlabels].n = n;
		s->label_values[s->nlabels++] = v;
		if (n == 3 && memcmp(ln, "pod", 3) == 0)
			s->pod = v;
		else if (n == 9 && memcmp(ln, "container", 9) == 0)
			s->container = v;
		else if (n == 9 && memcmp(ln, "namespace", 9) == 0)
			s->namespace_ = v;
		q = skip_blank(q, le);
		if (q < le && *q == ',') {
			q++;
			continue;
		}
		if (q < le && *q == '}')
			return q + 1;
		*err = "expected ',' or '}' after label value";
		return NULL;
	}
}

/* Parse one sample line [p, le). 1 = sample in *s, 0 = skipped (comment,
 * blank, unknown series with only_known), -1 = malformed (*err). */
static int parse_line(const char *p, const char *le, int only_known, struct prom_sample *s,
		      char *scratch, const char **err)
{
	const char *q = skip_blank(p, le), *tok;

	if (q == le || *q == '#')
		return 0;
	if (!is_name_start(*q)) {
		*err = "bad metric name";
		return -1;
	}
	s->name.p = q;
	while (q < le && is_name_ch(*q))
		q++;
	s->name.n = (size_t)(q - s->name.p);
	s->metric = prom_metric_of(s->name.p, s->name.n);
	if (only_known && s->metric == PROM_OTHER)
		return 0;
	s->nlabels = 0;
	s->container.p = s->pod.p = s->namespace_.p = NULL;
	s->container.n = s->pod.n = s->namespace_.n = 0;
	if (q < le && *q != ' ' && *q != '\t' && *q != '{') {
		*err = "bad metric name";
		return -1;
	}
	tok = skip_blank(q, le);
	if (tok < le && *tok == '{') {
		q = parse_labels(tok, le, s, scratch, err);
		if (!q)
			return -1;
	}
	q = skip_blank(q, le);
	tok = q;
	while (q < le && *q != ' ' && *q != '\t')
		q++;
	if (q == tok) {
		*err = "missing value";
		return -1;
	}
	if (prom_parse_double(tok, (size_t)(q - tok), &s->value) < 0) {
		*err = "bad value";
		return -1;
	}
	q = skip_blank(q, le);
	s->has_ts = 0;
	if (q < le) {
		tok = q;
		while (q < le && *q != ' ' && *q != '\t')
			q++;
		if (parse_int64(tok, (size_t)(q - tok), &s->ts_ms) < 0) {
			*err = "bad timestamp";
			return -1;
		}
		s->has_ts = 1;
		q = skip_blank(q, le);
		if (q != le) {
			*err = "trailing text after timestamp";
			return -1;
		}
	}
	return 1;
}

int prom_parse(const char *buf, size_t len, const struct prom_opts *opts, prom_cb cb, void *arg,
	       struct prom_result *res)
{
	static const struct prom_opts defaults = {0, 0};
	struct prom_result local;
	struct prom_sample s;
	char scratch[PROM_SCRATCH];
	const char *p = buf, *end = buf + len;
	int line = 0;

	if (!opts)
		opts = &defaults;
	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le, *err = NULL;
		int rc;

		if (!eol)
			eol = end;
		le = eol;
		if (le > p && le[-1] == '\r')
			le--;
		line++;
		rc = parse_line(p, le, opts->only_known, &s, scratch, &err);
		p = eol + 1;
		if (rc == 0)
			continue;
		if (rc < 0) {
			res->bad_lines++;
			if (!res->first_error_line) {
				res->first_error_line = line;
				res->first_error = err;
			}
			if (opts->strict) {
				res->lines = line;
				return -1;
			}
			continue;
		}
		s.line = line;
		res->samples++;
		if (cb && cb(&s, arg)) {
			res->lines = line;
			return 1;
		}
	}
	res->lines = line;
	return 0;
}
