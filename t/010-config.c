/* 010-config — lib/config: parsing, errors with line numbers, env overrides, typed getters, reload. */
#include "lib/config.h"
#include "lib/log.h"
#include "lib/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	const char *err = NULL;
	int line = 0;
	char path[] = "/tmp/mh-010-XXXXXX";
	int fd;
	FILE *f;

	log_init("t010");
	log_set_level(LOG_ERROR); /* the typed getters warn on bad values */
	unsetenv("MODELHUB_DB_SCHEMA");
	unsetenv("MODELHUB_FCGI_WORKERS");

	ok(cfg_parse("# comment\n\n; also a comment\n db.schema =  other  \n"
		     "fcgi.workers=4\nquoted = \"a b # c\"\nempty =\nx.y-z_w = 1\n", &err, &line) == 0,
	   "parse a file with comments, blanks, spaces, quotes");
	is_str(cfg_str("db.schema", "modelhub"), "other", "value is trimmed");
	is_int(cfg_int("fcgi.workers", 0), 4, "integer value");
	is_str(cfg_str("quoted", NULL), "a b # c", "double quotes are removed, # inside kept");
	is_str(cfg_str("empty", "def"), "", "empty value is an empty string");
	is_int(cfg_int("empty", 7), 7, "empty value: integer default");
	is_str(cfg_str("x.y-z_w", NULL), "1", "key with . - _");
	is_str(cfg_str("missing", "dflt"), "dflt", "missing key gives the default");
	ok(cfg_str("missing", NULL) == NULL, "missing key without default is NULL");

	/* later duplicate wins */
	ok(cfg_parse("a = 1\na = 2\n", &err, &line) == 0, "duplicate keys parse");
	is_str(cfg_str("a", NULL), "2", "the last duplicate wins");

	/* errors keep the old table and report the line */
	ok(cfg_parse("a = 1\n", &err, &line) == 0, "reset");
	ok(cfg_parse("b = 2\n\nno equals sign here\n", &err, &line) == -1, "line without = fails");
	is_int(line, 3, "error line number counts blank lines");
	ok(err && *err, "error message set: %s", err ? err : "(null)");
	is_str(cfg_str("a", NULL), "1", "failed parse keeps the previous values");
	ok(cfg_str("b", NULL) == NULL, "failed parse adds nothing");
	ok(cfg_parse("bad key = 1\n", &err, &line) == -1, "key with a space fails");
	is_int(line, 1, "bad key on line 1");
	ok(cfg_parse("k$y = 1\n", &err, &line) == -1, "key with $ fails");
	ok(cfg_parse(" = 1\n", &err, &line) == -1, "empty key fails");

	/* typed getters */
	ok(cfg_parse("i = 12\nneg = -3\nbad = 12x\nd = 2.5\nt1 = true\nt2 = YES\nt3 = on\n"
		     "f1 = 0\nf2 = off\nbb = maybe\nbig = 99999999999999999999999\n", &err, &line) == 0,
	   "typed values parse");
	is_int(cfg_int("i", 0), 12, "cfg_int");
	is_int(cfg_int("neg", 0), -3, "cfg_int negative");
	is_int(cfg_int("bad", 5), 5, "cfg_int with trailing junk gives the default");
	is_int(cfg_int("big", 6), 6, "cfg_int overflow gives the default");
	is_dbl(cfg_double("d", 0), 2.5, 1e-9, "cfg_double");
	is_dbl(cfg_double("bad", 1.5), 1.5, 1e-9, "cfg_double junk gives the default");
	is_int(cfg_bool("t1", 0), 1, "bool true");
	is_int(cfg_bool("t2", 0), 1, "bool YES");
	is_int(cfg_bool("t3", 0), 1, "bool on");
	is_int(cfg_bool("f1", 1), 0, "bool 0");
	is_int(cfg_bool("f2", 1), 0, "bool off");
	is_int(cfg_bool("bb", 1), 1, "bool junk gives the default (1)");
	is_int(cfg_bool("bb", 0), 0, "bool junk gives the default (0)");
	is_int(cfg_bool("nope", 1), 1, "bool missing gives the default");

	/* environment overrides the file */
	ok(cfg_parse("db.schema = fromfile\nfcgi.max-body = 10\n", &err, &line) == 0, "parse");
	setenv("MODELHUB_DB_SCHEMA", "fromenv", 1);
	setenv("MODELHUB_FCGI_MAX_BODY", "20", 1);
	is_str(cfg_str("db.schema", NULL), "fromenv", "MODELHUB_DB_SCHEMA overrides db.schema");
	is_int(cfg_int("fcgi.max-body", 0), 20, "dashes map to underscores in the env name");
	setenv("MODELHUB_ONLY_ENV", "e", 1);
	is_str(cfg_str("only.env", NULL), "e", "env alone defines a key");
	unsetenv("MODELHUB_DB_SCHEMA");
	unsetenv("MODELHUB_FCGI_MAX_BODY");
	unsetenv("MODELHUB_ONLY_ENV");
	is_str(cfg_str("db.schema", NULL), "fromfile", "without env the file value is back");

	/* cfg_set */
	ok(cfg_set("set.key", "v") == 0, "cfg_set");
	is_str(cfg_str("set.key", NULL), "v", "cfg_set value visible");
	ok(cfg_set("bad key", "v") == -1, "cfg_set rejects a bad key");

	/* files */
	ok(cfg_load("/nonexistent/modelhub.conf", &err, &line) == -1, "missing file fails");
	ok(err && *err, "missing file: error says why (%s)", err ? err : "");
	is_str(cfg_str("db.schema", NULL), "fromfile", "failed load keeps the values");
	fd = mkstemp(path);
	ok(fd >= 0, "temp file");
	f = fdopen(fd, "w");
	fputs("db.schema = infile\nfcgi.workers = 3", f); /* no final newline */
	fclose(f);
	ok(cfg_load(path, &err, &line) == 0, "load a file");
	is_str(cfg_str("db.schema", NULL), "infile", "value from the file");
	is_int(cfg_int("fcgi.workers", 0), 3, "last line without newline");
	is_str(cfg_path(), path, "cfg_path names the file");
	ok(cfg_str("set.key", NULL) == NULL, "a load replaces all earlier values");
	setenv("MODELHUB_CONFIG", path, 1);
	cfg_free();
	ok(cfg_load(NULL, &err, &line) == 0 && strcmp(cfg_str("db.schema", ""), "infile") == 0,
	   "NULL path reads $MODELHUB_CONFIG");
	unsetenv("MODELHUB_CONFIG");
	ok(cfg_load(NULL, &err, &line) == 0 && cfg_str("db.schema", NULL) == NULL,
	   "NULL path without $MODELHUB_CONFIG: defaults only");
	unlink(path);
	cfg_free();
	ok(cfg_str("db.schema", NULL) == NULL, "cfg_free empties the table");
	return done_testing();
}
