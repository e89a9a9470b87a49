/*
 * csvin.c — submitted bodies (CSV, plain text, multipart, JSON strings) to
 * the input list of a work request. Rules: csvin.h.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_requests.c, t/016-csvin.c.
 * Owns: the strings collected in struct csvin (csvin_free). Pure: no I/O.
 *
 * DESIGN: the CSV reader is a small state machine over the whole body that
 * parses every field of a record (a quoted field in a later column may hold
 * a line break, so the record end is only known after parsing it) but keeps
 * only the first. It is lenient where RFC 4180 is silent or strict in a way
 * that would reject real files: spaces before an opening quote, text after
 * a closing quote and bare quotes inside unquoted fields are kept as text.
 * The one hard error is a quote left open at the end of the body, which
 * would otherwise swallow the rest of the file into one input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fcgi/csvin.h"
#include "lib/buf.h"
#include "lib/smiles.h"
#include "lib/utf8.h"

static int is_space(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

const char *csvin_strerror(enum csvin_err e)
{
	switch (e) {
	case CSVIN_OK: return "ok";
	case CSVIN_NO_INPUTS: return "no inputs after the header and blank lines";
	case CSVIN_TOO_MANY: return "too many inputs";
	case CSVIN_TOO_LONG: return "input too long";
	case CSVIN_BAD_ENCODING: return "input is not valid UTF-8 text (or holds a NUL byte)";
	case CSVIN_BAD_QUOTE: return "unterminated quoted CSV field";
	case CSVIN_BAD_COLUMN: return "no such column";
	case CSVIN_AMBIGUOUS_COLUMN: return "cannot tell which column holds the inputs";
	case CSVIN_OOM: return "out of memory";
	}
	return "unknown error";
}

static int fail(struct csvin *c, enum csvin_err e, size_t line)
{
	if (c->err == CSVIN_OK) {
		c->err = e;
		c->err_line = line;
	}
	return -1;
}

int csvin_add(struct csvin *c, const char *s, size_t len, size_t line,
	      const struct csvin_opts *o)
{
	char *copy;

	if (c->err != CSVIN_OK)
		return -1;
	c->nlines++;
	while (len > 0 && is_space((unsigned char)s[0])) {
		s++;
		len--;
	}
	while (len > 0 && is_space((unsigned char)s[len - 1]))
		len--;
	if (len == 0)
		return 0;
	if (len > o->max_len)
		return fail(c, CSVIN_TOO_LONG, line);
	if (!utf8_valid_text(s, len))
		return fail(c, CSVIN_BAD_ENCODING, line);
	if (o->has_header > 0 && !c->header) {
		c->header = strndup(s, len);
		return c->header ? 0 : fail(c, CSVIN_OOM, line);
	}
	if (c->n >= o->max_inputs)
		return fail(c, CSVIN_TOO_MANY, line);
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		char **ni = realloc(c->inputs, ncap * sizeof(*ni));

		if (!ni)
			return fail(c, CSVIN_OOM, line);
		c->inputs = ni;
		c->cap = ncap;
	}
	copy = strndup(s, len);
	if (!copy)
		return fail(c, CSVIN_OOM, line);
	c->inputs[c->n++] = copy;
	return 0;
}

/* Length of the line break at p (CRLF, LF or a lone CR), 0 if none. */
static size_t eol_len(const char *p, const char *end)
{
	if (p < end && *p == '\n')
		return 1;
	if (p < end && *p == '\r')
		return (p + 1 < end && p[1] == '\n') ? 2 : 1;
	return 0;
}

static int parse_plain(struct csvin *c, const char *p, const char *end,
		       const struct csvin_opts *o)
{
	size_t line = 1;

	while (p < end) {
		const char *q = p;
		size_t e;

		while (q < end && *q != '\n' && *q != '\r')
			q++;
		if (csvin_add(c, p, (size_t)(q - p), line, o) < 0)
			return -1;
		e = eol_len(q, end);
		p = q + e;
		line++;
	}
	return 0;
}

enum csv_state { FIELD_START, UNQUOTED, QUOTED, QUOTE_SEEN };

/* One CSV record being read: position, state, every field collected into
 * one buffer, fields separated by NUL bytes. */
struct csv_rd {
	const char *p;
	enum csv_state st;
	int field;         /* 0-based column of the current field */
	size_t fstart;     /* offset of the current field in rec */
	size_t *line;      /* physical line, advanced at every line break */
	struct buf *rec;   /* the record's fields */
};

static void keep(struct csv_rd *r, const char *s, size_t n)
{
	buf_add(r->rec, s, n);
}

/* The steps below consume at most one character or line break at r->p and
 * return 1 when the record ended there. */
static int step_start(struct csv_rd *r, char ch)
{
	if (ch == '"') {
		if (!r->rec->oom)
			r->rec->len = r->fstart; /* drop spaces before the quote */
		r->st = QUOTED;
		r->p++;
	} else if (ch == ' ' || ch == '\t') {
		keep(r, r->p, 1);
		r->p++;
	} else {
		r->st = UNQUOTED; /* consumed by step_unquoted */
	}
	return 0;
}

/* Unquoted text, or just after a closing quote (QUOTE_SEEN), where a second
 * quote is an escaped quote and anything else is kept as text. */
static int step_unquoted(struct csv_rd *r, char ch, size_t eol)
{
	if (r->st == QUOTE_SEEN && ch == '"') {
		keep(r, "\"", 1);
		r->st = QUOTED;
		r->p++;
		return 0;
	}
	if (ch == ',') {
		buf_addc(r->rec, '\0');
		r->fstart = r->rec->len;
		r->field++;
		r->st = FIELD_START;
		r->p++;
		return 0;
	}
	if (eol) {
		r->p += eol;
		(*r->line)++;
		return 1;
	}
	keep(r, r->p, 1);
	r->st = UNQUOTED;
	r->p++;
	return 0;
}

/* Inside quotes: a line break is part of the field. */
static int step_quoted(struct csv_rd *r, char ch, size_t eol)
{
	if (ch == '"') {
		r->st = QUOTE_SEEN;
		r->p++;
		return 0;
	}
	if (eol) {
		keep(r, r->p, eol);
		(*r->line)++;
		r->p += eol;
		return 0;
	}
	keep(r, r->p, 1);
	r->p++;
	return 0;
}

/* One record starting at *pp into rec (fields NUL-separated, *nf of them).
 * Advances *pp past the record's line break and *line by the physical lines
 * consumed. 0, or -1 for an unterminated quote. */
static int csv_record(const char **pp, const char *end, size_t *line, struct buf *rec,
		      int *nf)
{
	struct csv_rd r = {*pp, FIELD_START, 0, 0, line, rec};
	int done = 0;

	buf_reset(rec);
	while (r.p < end && !done) {
		char ch = *r.p;
		size_t eol = eol_len(r.p, end);

		switch (r.st) {
		case FIELD_START:
			done = step_start(&r, ch);
			break;
		case UNQUOTED:
		case QUOTE_SEEN:
			done = step_unquoted(&r, ch, eol);
			break;
		case QUOTED:
			done = step_quoted(&r, ch, eol);
			break;
		}
	}
	*pp = r.p;
	*nf = r.field + 1;
	return !done && r.st == QUOTED ? -1 : 0;
}

/* ---- several columns: which one is the input (csvin.h) ---- */

struct csv_rows {
	struct csv_row {
		char *f;      /* nf NUL-separated fields (untrimmed) */
		size_t len;
		int nf;
		size_t line;
	} *r;
	size_t n, cap;
	int maxf;
};

static void rows_free(struct csv_rows *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free(rs->r[i].f);
	free(rs->r);
}

static int rows_add(struct csv_rows *rs, struct buf *rec, int nf, size_t line)
{
	if (rs->n == rs->cap) {
		size_t ncap = rs->cap ? rs->cap * 2 : 64;
		struct csv_row *nr = realloc(rs->r, ncap * sizeof(*nr));

		if (!nr)
			return -1;
		rs->r = nr;
		rs->cap = ncap;
	}
	buf_addc(rec, '\0');
	if (rec->oom)
		return -1;
	rs->r[rs->n].len = rec->len - 1;
	rs->r[rs->n].nf = nf;
	rs->r[rs->n].line = line;
	rs->r[rs->n++].f = buf_steal(rec);
	if (nf > rs->maxf)
		rs->maxf = nf;
	return 0;
}

/* Field k of a row, trimmed, as a pointer and length ("" past the end). */
static const char *row_field(const struct csv_row *rw, int k, size_t *len)
{
	const char *p = rw->f, *end = rw->f + rw->len;
	size_t n;

	for (int i = 0; i < k; i++) {
		if (i >= rw->nf - 1) {
			*len = 0;
			return "";
		}
		p += strlen(p) + 1;
	}
	if (p > end) {
		*len = 0;
		return "";
	}
	n = strlen(p);
	while (n > 0 && is_space((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n > 0 && is_space((unsigned char)p[n - 1]))
		n--;
	*len = n;
	return p;
}

static int row_blank(const struct csv_row *rw)
{
	for (int k = 0; k < rw->nf; k++) {
		size_t n;

		row_field(rw, k, &n);
		if (n)
			return 0;
	}
	return 1;
}

static const char *const input_names[] = {"smiles", "canonical_smiles", "input", "molecule"};
static const char *const key_names[] = {"id", "key", "name", "inchikey"};

static int name_is(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static int find_col(const struct csvin *c, const char *name)
{
	for (size_t k = 0; k < c->ncols; k++)
		if (name_is(c->cols[k], name))
			return (int)k;
	return -1;
}

/* Column names from the header row, or column_1..column_N. */
static int set_cols(struct csvin *c, const struct csv_row *hdr, int ncols)
{
	struct buf h = BUF_INIT;

	c->cols = calloc((size_t)ncols, sizeof(*c->cols));
	if (!c->cols)
		return -1;
	c->ncols = (size_t)ncols;
	for (int k = 0; k < ncols; k++) {
		size_t n = 0;
		const char *v = hdr ? row_field(hdr, k, &n) : "";
		char tmp[24];

		if (!hdr || n == 0) {
			snprintf(tmp, sizeof(tmp), "column_%d", k + 1);
			v = tmp;
			n = strlen(tmp);
		}
		if (!(c->cols[k] = strndup(v, n)))
			return -1;
		if (hdr) {
			if (k)
				buf_addc(&h, ',');
			buf_add_csv(&h, c->cols[k]);
		}
	}
	if (hdr) {
		c->header = buf_steal(&h);
		return c->header ? 0 : -1;
	}
	return 0;
}

/* Is row r a header: has_header, a known input name, or the column= name? */
static int looks_like_header(const struct csv_row *rw, const struct csvin_opts *o)
{
	if (o->has_header >= 0)
		return o->has_header > 0;
	for (int k = 0; k < rw->nf; k++) {
		size_t n;
		const char *v = row_field(rw, k, &n);
		char cell[64];

		if (n == 0 || n >= sizeof(cell))
			continue;
		memcpy(cell, v, n);
		cell[n] = '\0';
		if (o->column && name_is(cell, o->column))
			return 1;
		for (size_t i = 0; i < sizeof(input_names) / sizeof(*input_names); i++)
			if (name_is(cell, input_names[i]))
				return 1;
	}
	return 0;
}

/* The one column whose non-blank values all pass the SMILES screen. */
static int col_by_content(const struct csvin *c, const struct csv_rows *rs, size_t first)
{
	int found = -1;

	for (size_t k = 0; k < c->ncols; k++) {
		size_t seen = 0, ok = 1;

		for (size_t i = first; i < rs->n && ok; i++) {
			size_t n;
			const char *v = row_field(&rs->r[i], (int)k, &n);
			char cell[REQUESTS_SCREEN_MAX], why[SMILES_WHY_MAX];

			if (n == 0)
				continue;
			seen++;
			if (n >= sizeof(cell))
				ok = 0;
			else {
				memcpy(cell, v, n);
				cell[n] = '\0';
				ok = smiles_screen(cell, why, sizeof(why)) == 0;
			}
		}
		if (seen && ok) {
			if (found >= 0)
				return -1;
			found = (int)k;
		}
	}
	return found;
}

static int parse_index(const char *s)
{
	long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return (int)v;
}

/* c->col from column=, the header names or the content. */
static int choose_col(struct csvin *c, const struct csv_rows *rs, size_t first, int hdr,
		      const struct csvin_opts *o)
{
	int k = -1;

	if (o->column) {
		int idx = parse_index(o->column);

		k = idx >= 1 && (size_t)idx <= c->ncols ? idx - 1 : find_col(c, o->column);
		if (k < 0)
			return fail(c, CSVIN_BAD_COLUMN, 0);
	} else if (hdr) {
		for (size_t i = 0; i < sizeof(input_names) / sizeof(*input_names) && k < 0; i++)
			k = find_col(c, input_names[i]);
	}
	if (k < 0)
		k = col_by_content(c, rs, first);
	if (k < 0)
		return fail(c, CSVIN_AMBIGUOUS_COLUMN, 0);
	c->col = k;
	/* The key: a column named like an identifier, else the first column
	 * when it comes before the input. */
	c->key = -1;
	for (size_t i = 0; i < sizeof(key_names) / sizeof(*key_names) && c->key < 0; i++) {
		int kk = find_col(c, key_names[i]);

		if (kk >= 0 && kk != k)
			c->key = kk;
	}
	if (c->key < 0 && k > 0)
		c->key = 0;
	return 0;
}

/* Each data row: the chosen column is the input, the row is kept. */
static int add_rows(struct csvin *c, const struct csv_rows *rs, size_t first,
		    const struct csvin_opts *o)
{
	struct csvin_opts oo = *o;

	oo.has_header = 0;
	c->rows = calloc(rs->n ? rs->n : 1, sizeof(*c->rows));
	if (!c->rows)
		return fail(c, CSVIN_OOM, 0);
	for (size_t i = first; i < rs->n; i++) {
		const struct csv_row *rw = &rs->r[i];
		size_t n, before = c->n;
		const char *v = row_field(rw, c->col, &n);
		struct buf row = BUF_INIT;

		if (row_blank(rw))
			continue;
		if (csvin_add(c, v, n, rw->line, &oo) < 0)
			return -1;
		if (c->n == before)
			continue;
		for (size_t k = 0; k < c->ncols; k++) {
			enum csvin_err e = CSVIN_OK;

			v = row_field(rw, (int)k, &n);
			if (n > o->max_len)
				e = CSVIN_TOO_LONG;
			else if (!utf8_valid_text(v, n))
				e = CSVIN_BAD_ENCODING;
			if (e != CSVIN_OK) {
				buf_free(&row); /* found by t/fuzz/fuzz-parsers.c (a leak) */
				return fail(c, e, rw->line);
			}
			buf_add(&row, v, n);
			buf_addc(&row, '\0');
		}
		if (row.oom || !(c->rows[c->n - 1] = buf_steal(&row)))
			return fail(c, CSVIN_OOM, rw->line);
	}
	return 0;
}

static int multi_column(struct csvin *c, const struct csv_rows *rs, const struct csvin_opts *o)
{
	size_t first = 0;
	int hdr;

	while (first < rs->n && row_blank(&rs->r[first]))
		first++;
	if (first == rs->n)
		return 0;
	hdr = looks_like_header(&rs->r[first], o);
	if (set_cols(c, hdr ? &rs->r[first] : NULL, rs->maxf) < 0)
		return fail(c, CSVIN_OOM, 0);
	if (hdr)
		first++;
	if (choose_col(c, rs, first, hdr, o) < 0)
		return -1;
	return add_rows(c, rs, first, o);
}

static int parse_csv(struct csvin *c, const char *p, const char *end,
		     const struct csvin_opts *o)
{
	struct buf rec = BUF_INIT;
	struct csv_rows rs = {NULL, 0, 0, 0};
	size_t line = 1;
	int rc = 0;

	while (p < end && rc == 0) {
		size_t start_line = line;
		int nf;

		if (csv_record(&p, end, &line, &rec, &nf) < 0)
			rc = fail(c, CSVIN_BAD_QUOTE, start_line);
		else if (rec.oom || rows_add(&rs, &rec, nf, start_line) < 0)
			rc = fail(c, CSVIN_OOM, start_line);
	}
	buf_free(&rec);
	if (rc == 0 && rs.maxf > 1)
		rc = multi_column(c, &rs, o);
	else if (rc == 0)
		for (size_t i = 0; i < rs.n && rc == 0; i++)
			rc = csvin_add(c, rs.r[i].f, rs.r[i].len, rs.r[i].line, o);
	rows_free(&rs);
	return rc;
}

int csvin_parse(struct csvin *c, enum csvin_format fmt, const char *data, size_t len,
		const struct csvin_opts *o)
{
	const char *end = data + len;

	if (c->err != CSVIN_OK)
		return -1;
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		data += 3;
	if (fmt == CSVIN_CSV)
		return parse_csv(c, data, end, o);
	return parse_plain(c, data, end, o);
}

int csvin_finish(struct csvin *c)
{
	if (c->err != CSVIN_OK)
		return -1;
	if (c->n == 0)
		return fail(c, CSVIN_NO_INPUTS, 0);
	return 0;
}

void csvin_free(struct csvin *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->inputs[i]);
		if (c->rows)
			free(c->rows[i]);
	}
	free(c->inputs);
	free(c->rows);
	for (size_t k = 0; k < c->ncols; k++)
		free(c->cols[k]);
	free(c->cols);
	free(c->header);
	memset(c, 0, sizeof(*c));
}

/* ---- multipart/form-data ---- */

/* Value of parameter `key` in a header value like
 * `form-data; name="file"; filename="a.csv"`. Quoted or token values. */
static int header_param(const char *v, const char *vend, const char *key, const char **out,
			size_t *outlen)
{
	size_t klen = strlen(key);
	const char *p = v;

	while (p < vend) {
		const char *semi = memchr(p, ';', (size_t)(vend - p));

		if (!semi)
			break;
		p = semi + 1;
		while (p < vend && (*p == ' ' || *p == '\t'))
			p++;
		if ((size_t)(vend - p) > klen && strncasecmp(p, key, klen) == 0 && p[klen] == '=') {
			const char *s = p + klen + 1;

			if (s < vend && *s == '"') {
				const char *q = ++s;

				while (q < vend && *q != '"') {
					if (*q == '\\' && q + 1 < vend)
						q++;
					q++;
				}
				if (q >= vend)
					return -1;
				*out = s;
				*outlen = (size_t)(q - s);
				return 0;
			}
			{
				const char *q = s;

				while (q < vend && *q != ';' && *q != ' ' && *q != '\t')
					q++;
				*out = s;
				*outlen = (size_t)(q - s);
				return 0;
			}
		}
	}
	return -1;
}

int csvin_boundary(const char *content_type, char *out, size_t outsz)
{
	const char *v, *end;
	size_t vlen;

	if (!content_type)
		return -1;
	end = content_type + strlen(content_type);
	if (header_param(content_type, end, "boundary", &v, &vlen) < 0)
		return -1;
	if (vlen == 0 || vlen > 70 || vlen + 1 > outsz)
		return -1;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return 0;
}

static void part_headers(const char *h, const char *hend, struct csvin_part *pt)
{
	while (h < hend) {
		const char *eol = memmem(h, (size_t)(hend - h), "\r\n", 2);
		const char *le = eol ? eol : hend;
		const char *colon = memchr(h, ':', (size_t)(le - h));

		if (colon) {
			size_t nlen = (size_t)(colon - h);
			const char *v = colon + 1;

			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			if (nlen == 19 && strncasecmp(h, "Content-Disposition", 19) == 0) {
				const char *s;
				size_t sl;

				if (header_param(v, le, "name", &s, &sl) == 0) {
					pt->name = s;
					pt->name_len = sl;
				}
				if (header_param(v, le, "filename", &s, &sl) == 0) {
					pt->filename = s;
					pt->filename_len = sl;
				}
			} else if (nlen == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
				const char *te = le;

				while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
					te--;
				pt->type = v;
				pt->type_len = (size_t)(te - v);
			}
		}
		h = eol ? eol + 2 : hend;
	}
}

int csvin_multipart(const char *body, size_t len, const char *boundary,
		    struct csvin_part *parts, int max)
{
	char delim[80];
	size_t dlen;
	const char *end = body + len, *p;
	int n = 0;

	/* delim = "\r\n--" boundary; the first one may start the body. */
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	if (dlen >= sizeof(delim))
		return -1;
	if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
		p = body + dlen - 2;
	} else {
		p = memmem(body, len, delim, dlen);
		if (!p)
			return -1;
		p += dlen;
	}
	for (;;) {
		const char *hend, *next;
		struct csvin_part pt;

		/* After a delimiter: "--" ends the body, else optional
		 * whitespace and CRLF start a part. */
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return n;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return -1;
		p += 2;
		memset(&pt, 0, sizeof(pt));
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			hend = p; /* no headers */
			pt.data = p + 2;
		} else {
			hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
			if (!hend)
				return -1;
			pt.data = hend + 4;
		}
		part_headers(p, hend, &pt);
		next = memmem(pt.data, (size_t)(end - pt.data), delim, dlen);
		if (!next)
			return -1;
		pt.len = (size_t)(next - pt.data);
		if (n >= max)
			return -1;
		parts[n++] = pt;
		p = next + dlen;
	}
}
