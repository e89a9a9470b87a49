/*
 * csvin.h — turn a submitted body (CSV, plain text, one multipart file part,
 * or the strings of a JSON array) into the list of inputs of a work request.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_requests.c (submit) and the
 * unit test t/016-csvin.c. Pure: no I/O, no globals, no logging.
 * Owns: the input strings and the header it collects (struct csvin, freed by
 * csvin_free()).
 *
 * Rules (one set for every submit path, docs/api.md "Inputs"):
 * - every input is trimmed (space, tab, CR, LF, VT, FF); blank inputs are
 *   skipped;
 * - with has_header > 0, the first non-blank line is the header: it is kept in
 *   c->header and never becomes an input;
 * - CSV (RFC 4180): quoted fields may hold commas, doubled quotes and line
 *   breaks. With one column, it is the input. With several (docs/api.md
 *   "Choosing the input column"): the first non-blank record is a header
 *   when has_header > 0, or (has_header < 0) when one of its cells is smiles, canonical_smiles,
 *   input or molecule (any case) or the column= name; the input column is
 *   opts.column (a header name, column_N, or a 1-based index), else the
 *   first of those names in the header, else the one column whose non-blank
 *   values all pass the SMILES screen (lib/smiles.h); none or several ->
 *   CSVIN_AMBIGUOUS_COLUMN, an unknown column= -> CSVIN_BAD_COLUMN. Every
 *   column of a kept record is kept (rows); the key column is one named id,
 *   key, name or inchikey, else the first column when the input is not it;
 * - plain text: one input per line, taken as is (no quote processing);
 * - a UTF-8 byte order mark at the start is ignored; inputs must be valid
 *   UTF-8 without NUL bytes; each input (and the header) is at most
 *   opts.max_len bytes; at most opts.max_inputs inputs.
 * Line numbers in errors are 1-based physical lines of the body (for JSON,
 * the 1-based position in the array).
 */
#ifndef MH_CSVIN_H
#define MH_CSVIN_H

#include <stddef.h>

enum csvin_err {
	CSVIN_OK = 0,
	CSVIN_NO_INPUTS,    /* nothing left after header and blank lines */
	CSVIN_TOO_MANY,     /* more than max_inputs */
	CSVIN_TOO_LONG,     /* one input longer than max_len */
	CSVIN_BAD_ENCODING, /* not UTF-8, or a NUL byte */
	CSVIN_BAD_QUOTE,    /* unterminated quoted CSV field */
	CSVIN_BAD_COLUMN,   /* column= names no column */
	CSVIN_AMBIGUOUS_COLUMN, /* several columns, none chosen (use column=) */
	CSVIN_OOM
};

enum csvin_format { CSVIN_PLAIN = 0, CSVIN_CSV };

struct csvin_opts {
	int has_header;     /* 1 yes, 0 no, -1 not said (CSV: detected by name) */
	size_t max_inputs;
	size_t max_len;     /* bytes per input, after trimming */
	const char *column; /* CSV: input column by name or 1-based index, or NULL */
};

/* Longest value the content test (SMILES screen) looks at. */
#define REQUESTS_SCREEN_MAX 4096

struct csvin {
	char **inputs;      /* n strings, malloc'd, owned */
	size_t n, cap;
	char *header;       /* NULL unless has_header and a header was seen */
	enum csvin_err err; /* first error; parsing stops there */
	size_t err_line;    /* line of that error (0 when not tied to a line) */
	size_t nlines;      /* lines/entries seen (diagnostics) */
	/* CSV with several columns (else ncols 0, rows NULL): */
	char **cols;        /* ncols names: the header's, or column_1.. */
	size_t ncols;
	int col;            /* 0-based input column */
	int key;            /* 0-based key column, -1 when none */
	char **rows;        /* per input: ncols trimmed NUL-terminated values */
};

#define CSVIN_INIT {NULL, 0, 0, NULL, CSVIN_OK, 0, 0, NULL, 0, 0, -1, NULL}

/* Parse a whole body. Returns 0, or -1 with c->err/c->err_line set. */
int csvin_parse(struct csvin *c, enum csvin_format fmt, const char *data, size_t len,
		const struct csvin_opts *o);
/* Add one raw entry (e.g. a JSON array element) at 1-based position `line`:
 * trimmed, blank skipped, the first non-blank one is the header when
 * has_header. 0 / -1 as above. */
int csvin_add(struct csvin *c, const char *s, size_t len, size_t line,
	      const struct csvin_opts *o);
/* After the last csvin_add/csvin_parse: -1 with CSVIN_NO_INPUTS when empty. */
int csvin_finish(struct csvin *c);
void csvin_free(struct csvin *c);
/* Short English description of an error code (static). */
const char *csvin_strerror(enum csvin_err e);

/* ---- multipart/form-data (RFC 7578) ---- */
struct csvin_part {
	const char *name;       /* form field name (not NUL-terminated) */
	size_t name_len;
	const char *filename;   /* NULL when the part is not a file */
	size_t filename_len;
	const char *type;       /* part Content-Type value, NULL if absent */
	size_t type_len;
	const char *data;       /* part body, points into the request body */
	size_t len;
};

/* Copy the boundary parameter of a multipart Content-Type into out.
 * 0, or -1 when absent, empty or longer than 70 characters (RFC 2046). */
int csvin_boundary(const char *content_type, char *out, size_t outsz);
/* Split body into at most max parts. Returns the number of parts, or -1
 * when the body is not well-formed multipart for that boundary. */
int csvin_multipart(const char *body, size_t len, const char *boundary,
		    struct csvin_part *parts, int max);

#endif
