/* 016-csvin.c — unit tests of csvin: CSV/plain/JSON-entry input rules and multipart. */
#include <string.h>

#include "fcgi/csvin.h"
#include "t/lib/tap.h"

static struct csvin_opts opts(int has_header, size_t max_inputs, size_t max_len)
{
	struct csvin_opts o = {has_header, max_inputs, max_len, NULL};
	return o;
}

static int parse(struct csvin *c, enum csvin_format f, const char *s, struct csvin_opts o)
{
	*c = (struct csvin)CSVIN_INIT;
	if (csvin_parse(c, f, s, strlen(s), &o) < 0)
		return -1;
	return csvin_finish(c);
}

static void test_plain(void)
{
	struct csvin c;

	ok(parse(&c, CSVIN_PLAIN, "CCO\n  c1ccccc1 \r\n\n\t\nO\rN", opts(0, 10, 4096)) == 0,
	   "plain: parses");
	is_int(c.n, 4, "plain: blank lines skipped, CR, LF, CRLF all end lines");
	is_str(c.inputs[0], "CCO", "plain: first");
	is_str(c.inputs[1], "c1ccccc1", "plain: trimmed");
	is_str(c.inputs[2], "O", "plain: lone CR ends a line");
	is_str(c.inputs[3], "N", "plain: last line without newline");
	ok(c.header == NULL, "plain: no header without has_header");
	csvin_free(&c);

	ok(parse(&c, CSVIN_PLAIN, "\n\nsmiles\nCCO\n", opts(1, 10, 4096)) == 0, "header: parses");
	is_str(c.header, "smiles", "header: first non-blank line is the header");
	is_int(c.n, 1, "header: never an input");
	is_str(c.inputs[0], "CCO", "header: then the inputs");
	csvin_free(&c);

	ok(parse(&c, CSVIN_PLAIN, "a,\"b\"\n", opts(0, 10, 4096)) == 0, "plain: no quote processing");
	is_str(c.inputs[0], "a,\"b\"", "plain: line kept as is");
	csvin_free(&c);

	ok(parse(&c, CSVIN_PLAIN, "\xEF\xBB\xBF" "CCO\n", opts(0, 10, 4096)) == 0, "BOM: parses");
	is_str(c.inputs[0], "CCO", "BOM: stripped");
	csvin_free(&c);
}

static void test_errors(void)
{
	struct csvin c;

	ok(parse(&c, CSVIN_PLAIN, "\n \n\t\n", opts(0, 10, 4096)) < 0, "blank body fails");
	is_int(c.err, CSVIN_NO_INPUTS, "blank body: NO_INPUTS");
	csvin_free(&c);

	ok(parse(&c, CSVIN_PLAIN, "", opts(0, 10, 4096)) < 0, "empty body fails");
	is_int(c.err, CSVIN_NO_INPUTS, "empty body: NO_INPUTS");
	csvin_free(&c);

	ok(parse(&c, CSVIN_CSV, "smiles\n\n", opts(1, 10, 4096)) < 0, "header only fails");
	is_int(c.err, CSVIN_NO_INPUTS, "header only: NO_INPUTS");
	csvin_free(&c);

	ok(parse(&c, CSVIN_PLAIN, "a\nb\nc\n", opts(0, 3, 4096)) == 0, "exactly max inputs ok");
	csvin_free(&c);
	ok(parse(&c, CSVIN_PLAIN, "h\na\nb\nc\n", opts(1, 3, 4096)) == 0,
	   "header does not count against max");
	csvin_free(&c);
	ok(parse(&c, CSVIN_PLAIN, "a\nb\n\nc\nd\n", opts(0, 3, 4096)) < 0, "max + 1 fails");
	is_int(c.err, CSVIN_TOO_MANY, "max + 1: TOO_MANY");
	is_int(c.err_line, 5, "max + 1: line of the first extra input");
	csvin_free(&c);

	ok(parse(&c, CSVIN_PLAIN, "abcd\n  abcde  \n", opts(0, 10, 5)) == 0,
	   "max_len counts trimmed bytes");
	csvin_free(&c);
	ok(parse(&c, CSVIN_PLAIN, "abc\n\nabcdef\n", opts(0, 10, 5)) < 0, "too long fails");
	is_int(c.err, CSVIN_TOO_LONG, "too long: TOO_LONG");
	is_int(c.err_line, 3, "too long: its line number");
	csvin_free(&c);
	ok(parse(&c, CSVIN_PLAIN, "abcdef\nC\n", opts(1, 10, 5)) < 0, "too long header fails");
	is_int(c.err_line, 1, "too long header: line 1");
	csvin_free(&c);

	ok(parse(&c, CSVIN_PLAIN, "CCO\n\xff\xfe\n", opts(0, 10, 4096)) < 0, "bad UTF-8 fails");
	is_int(c.err, CSVIN_BAD_ENCODING, "bad UTF-8: BAD_ENCODING");
	is_int(c.err_line, 2, "bad UTF-8: line 2");
	csvin_free(&c);

	{
		static const char nul[] = "CCO\nC\0C\n";
		struct csvin_opts o = opts(0, 10, 4096);

		c = (struct csvin)CSVIN_INIT;
		ok(csvin_parse(&c, CSVIN_PLAIN, nul, sizeof(nul) - 1, &o) < 0, "NUL byte fails");
		is_int(c.err, CSVIN_BAD_ENCODING, "NUL byte: BAD_ENCODING");
		csvin_free(&c);
	}

	ok(parse(&c, CSVIN_CSV, "CCO\n\"abc\nCC\n", opts(0, 10, 4096)) < 0, "open quote fails");
	is_int(c.err, CSVIN_BAD_QUOTE, "open quote: BAD_QUOTE");
	is_int(c.err_line, 2, "open quote: line where the record starts");
	csvin_free(&c);
	ok(strlen(csvin_strerror(CSVIN_BAD_QUOTE)) > 0, "strerror gives text");
}

static int parse_col(struct csvin *c, const char *s, int has_header, const char *column)
{
	struct csvin_opts o = {has_header, 100, 4096, column};

	return parse(c, CSVIN_CSV, s, o);
}

static void test_csv(void)
{
	struct csvin c;
	const char *body =
		"smiles,name\r\n"
		"CCO,ethanol\r\n"
		"\"C(=O)O\",\"formic, acid\"\r\n"
		"\"a,b\",x\r\n"
		"\"say \"\"hi\"\"\",y\r\n"
		"\"two\nlines\",z\r\n"
		"N,\"note with\nbreak\"\r\n"
		"  \"  spaced  \"  ,w\n"
		",only second column\n"
		"O\n"
		"\r\n"
		"P,\"\"\"\"";

	ok(parse(&c, CSVIN_CSV, body, opts(1, 100, 4096)) == 0, "csv: parses");
	is_str(c.header, "smiles,name", "csv: header is line 1, re-quoted");
	is_int(c.n, 9, "csv: 9 inputs (row with empty first column skipped)");
	is_str(c.inputs[0], "CCO", "csv: first column only");
	is_str(c.inputs[1], "C(=O)O", "csv: quoted field unquoted");
	is_str(c.inputs[2], "a,b", "csv: comma inside quotes");
	is_str(c.inputs[3], "say \"hi\"", "csv: doubled quotes");
	is_str(c.inputs[4], "two\nlines", "csv: line break inside quotes kept");
	is_str(c.inputs[5], "N", "csv: line break in a later quoted column does not split");
	is_str(c.inputs[6], "spaced", "csv: spaces around a quoted field trimmed");
	is_str(c.inputs[7], "O", "csv: single column row");
	if (c.n == 9)
		is_str(c.inputs[8], "P", "csv: last row without line break");
	csvin_free(&c);

	ok(parse(&c, CSVIN_CSV, "CCO\nP,\"\"\"\"", opts(0, 100, 4096)) == 0, "csv: escaped quote at EOF");
	is_int(c.n, 2, "csv: two rows");
	is_str(c.inputs[1], "P", "csv: row with a quoted-quote second column");
	csvin_free(&c);

	ok(parse_col(&c, "x\"y,z\nab\"\"c\n", -1, "1") == 0,
	   "csv: bare quotes in unquoted fields are text");
	is_str(c.inputs[0], "x\"y", "csv: bare quote kept");
	is_str(c.inputs[1], "ab\"\"c", "csv: bare doubled quote kept");
	csvin_free(&c);

	ok(parse_col(&c, "\"a\"b,c\n", -1, "1") == 0, "csv: text after closing quote");
	is_str(c.inputs[0], "ab", "csv: appended");
	csvin_free(&c);

	/* Line numbers count physical lines including those inside quotes. */
	ok(parse(&c, CSVIN_CSV, "\"a\nb\"\nc\ntoolongvalue\n", opts(0, 100, 5)) < 0, "csv: too long");
	is_int(c.err_line, 4, "csv: line number counts lines inside quotes");
	csvin_free(&c);
}

static void test_add(void)
{
	struct csvin c = CSVIN_INIT;
	struct csvin_opts o = opts(1, 2, 4096);

	ok(csvin_add(&c, "  ", 2, 1, &o) == 0, "add: blank skipped");
	ok(csvin_add(&c, "smiles", 6, 2, &o) == 0, "add: header");
	ok(csvin_add(&c, " CCO ", 5, 3, &o) == 0, "add: input");
	ok(csvin_add(&c, "O", 1, 4, &o) == 0, "add: input 2");
	ok(csvin_add(&c, "N", 1, 5, &o) < 0, "add: third input over max 2");
	is_int(c.err_line, 5, "add: err_line is the position");
	ok(csvin_add(&c, "C", 1, 6, &o) < 0, "add: sticky error");
	is_str(c.header, "smiles", "add: header kept");
	is_str(c.inputs[0], "CCO", "add: trimmed");
	csvin_free(&c);
	csvin_free(NULL);
	ok(1, "free NULL ok");
}

static void test_multipart(void)
{
	char b[80];
	struct csvin_part parts[4];
	const char *body =
		"preamble\r\n"
		"--XyZ\r\n"
		"Content-Disposition: form-data; name=\"has_header\"\r\n"
		"\r\n"
		"true\r\n"
		"--XyZ\r\n"
		"Content-Disposition: form-data; name=\"file\"; filename=\"mols.csv\"\r\n"
		"Content-Type: text/csv\r\n"
		"\r\n"
		"smiles\r\nCCO\r\n--not the boundary\r\n"
		"\r\n"
		"--XyZ--\r\n";
	int n;

	ok(csvin_boundary("multipart/form-data; boundary=XyZ", b, sizeof(b)) == 0 &&
		   strcmp(b, "XyZ") == 0, "boundary: token");
	ok(csvin_boundary("multipart/form-data; charset=utf-8; BOUNDARY=\"a b\"", b, sizeof(b)) == 0 &&
		   strcmp(b, "a b") == 0, "boundary: quoted, case-insensitive");
	ok(csvin_boundary("multipart/form-data", b, sizeof(b)) < 0, "boundary: missing");
	ok(csvin_boundary("multipart/form-data; boundary=", b, sizeof(b)) < 0, "boundary: empty");
	ok(csvin_boundary(NULL, b, sizeof(b)) < 0, "boundary: no content type");

	n = csvin_multipart(body, strlen(body), "XyZ", parts, 4);
	is_int(n, 2, "multipart: two parts");
	if (n == 2) {
		ok(parts[0].name_len == 10 && memcmp(parts[0].name, "has_header", 10) == 0,
		   "multipart: field name");
		ok(parts[0].filename == NULL, "multipart: field has no filename");
		ok(parts[0].len == 4 && memcmp(parts[0].data, "true", 4) == 0, "multipart: field value");
		ok(parts[1].filename_len == 8 && memcmp(parts[1].filename, "mols.csv", 8) == 0,
		   "multipart: filename");
		ok(parts[1].type_len == 8 && memcmp(parts[1].type, "text/csv", 8) == 0,
		   "multipart: part content type");
		ok(parts[1].len == strlen("smiles\r\nCCO\r\n--not the boundary\r\n") &&
			   memcmp(parts[1].data, "smiles\r\nCCO\r\n--not", 18) == 0,
		   "multipart: file content up to the delimiter");
	}
	ok(csvin_multipart(body, strlen(body), "nope", parts, 4) < 0, "multipart: wrong boundary");
	ok(csvin_multipart(body, strlen(body), "XyZ", parts, 1) < 0, "multipart: too many parts");
	{
		const char *trunc = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nabc";
		ok(csvin_multipart(trunc, strlen(trunc), "XyZ", parts, 4) < 0,
		   "multipart: missing closing delimiter");
	}
	{
		const char *noh = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\nabc--XyZ--";
		ok(csvin_multipart(noh, strlen(noh), "XyZ", parts, 4) < 0,
		   "multipart: headers never end");
	}
	{
		const char *empty = "--XyZ--\r\n";
		is_int(csvin_multipart(empty, strlen(empty), "XyZ", parts, 4), 0, "multipart: no parts");
	}
}


static const char *cell(const struct csvin *c, size_t i, size_t k)
{
	const char *p = c->rows[i];

	while (k--)
		p += strlen(p) + 1;
	return p;
}

static void test_columns(void)
{
	struct csvin c;

	ok(parse_col(&c, "smiles,x\nCCO,1\n", 0, "1") == 0, "has_header=0 said: parses");
	is_str(c.inputs[0], "smiles", "has_header=0 said: no header detection");
	csvin_free(&c);

	ok(parse_col(&c, "inchikey,smiles\nBSYNRYMUTXBXSQ-UHFFFAOYSA-N,CC(=O)Oc1ccccc1C(=O)O\n"
		     "LFQSCWFLJHTTHZ-UHFFFAOYSA-N,CCO\n", -1, NULL) == 0,
	   "inchikey,smiles: parses without has_header");
	is_int(c.n, 2, "inchikey,smiles: header detected by name, two inputs");
	is_int(c.col, 1, "inchikey,smiles: smiles is the input");
	is_int(c.key, 0, "inchikey,smiles: inchikey is the key");
	is_str(c.inputs[0], "CC(=O)Oc1ccccc1C(=O)O", "inchikey,smiles: first input");
	is_str(c.inputs[1], "CCO", "inchikey,smiles: second input");
	is_str(cell(&c, 1, 0), "LFQSCWFLJHTTHZ-UHFFFAOYSA-N", "inchikey,smiles: key kept");
	is_str(c.header, "inchikey,smiles", "inchikey,smiles: header");
	csvin_free(&c);

	ok(parse_col(&c, "name,SMILES\nethanol,CCO\n", -1, NULL) == 0, "name,SMILES parses");
	is_int(c.col, 1, "name,SMILES: case-insensitive");
	is_int(c.key, 0, "name,SMILES: name is the key");
	csvin_free(&c);

	ok(parse_col(&c, "smiles,activity\nCCO,1.5\nCCN,\"2,5\"\n", -1, NULL) == 0,
	   "smiles,activity parses");
	is_int(c.col, 0, "smiles,activity: first column");
	is_int(c.key, -1, "smiles,activity: no key");
	is_str(cell(&c, 1, 1), "2,5", "smiles,activity: quoted other column kept");
	csvin_free(&c);

	ok(parse_col(&c, "id,canonical_smiles,x\n7,CCO,a\n", 1, NULL) == 0, "id,... parses");
	is_int(c.col, 1, "canonical_smiles chosen");
	is_int(c.key, 0, "id is the key");
	csvin_free(&c);

	ok(parse_col(&c, "a,b\nCCO,c1ccccc1\n", 1, "b") == 0, "column= by name");
	is_str(c.inputs[0], "c1ccccc1", "column=b: second column");
	csvin_free(&c);
	ok(parse_col(&c, "a,B\nCCO,c1ccccc1\n", -1, "b") == 0, "column= name marks the header");
	is_int(c.n, 1, "column= name: header not an input");
	is_str(c.inputs[0], "c1ccccc1", "column=b: case-insensitive");
	csvin_free(&c);
	ok(parse_col(&c, "CCO,N\nCCC,O\n", -1, "2") == 0, "column= by index");
	is_str(c.inputs[1], "O", "column=2: second column, no header");
	csvin_free(&c);

	ok(parse_col(&c, "mol-1,CCO\nmol-2,c1ccccc1\n", -1, NULL) == 0, "headerless by content");
	is_int(c.col, 1, "headerless: the SMILES column");
	is_str(c.cols[0], "column_1", "headerless: names column_N");
	is_str(c.inputs[0], "CCO", "headerless: input");
	csvin_free(&c);

	ok(parse_col(&c, "CCO,CCN\nCCC,O\n", -1, NULL) < 0, "two SMILES-like columns fail");
	is_int(c.err, CSVIN_AMBIGUOUS_COLUMN, "ambiguous: AMBIGUOUS_COLUMN");
	csvin_free(&c);
	ok(parse_col(&c, "a,b\nx,y\n", 1, NULL) < 0, "no SMILES column fails");
	is_int(c.err, CSVIN_AMBIGUOUS_COLUMN, "none: AMBIGUOUS_COLUMN");
	csvin_free(&c);
	ok(parse_col(&c, "id,smiles\n1,CCO\n", -1, "nope") < 0, "unknown column= fails");
	is_int(c.err, CSVIN_BAD_COLUMN, "unknown column=: BAD_COLUMN");
	is_int(c.ncols, 2, "unknown column=: columns known for the message");
	csvin_free(&c);
	ok(parse_col(&c, "id,smiles\n1,CCO\n", -1, "3") < 0, "column=3 of 2 fails");
	is_int(c.err, CSVIN_BAD_COLUMN, "column out of range: BAD_COLUMN");
	csvin_free(&c);

	ok(parse_col(&c, "id,smiles\n\n1,CCO\n2\n", -1, NULL) == 0, "short rows parse");
	is_int(c.n, 1, "short row with a blank input skipped");
	csvin_free(&c);
}

int main(void)
{
	test_plain();
	test_errors();
	test_csv();
	test_add();
	test_columns();
	test_multipart();
	return done_testing();
}
