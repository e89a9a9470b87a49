/* 138-cmdpath.c — unit tests of cmdpath_allowed (hub.local_command_dirs, issue 17 finding 4): no list allows any program; otherwise absolute paths inside a listed directory only, no . or .., {models_dir}, separators, a symlink leading out refused, a symlinked directory (/bin -> /usr/bin) resolved. */
#include "lib/cmdpath.h"
#include "t/lib/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
	char why[512] = "", tmp[] = "/tmp/mh138-XXXXXX", in[64], out[64], link[128], prog[128];

	ok(cmdpath_allowed("anything", "", "/m", why, sizeof why), "empty list: any program");
	ok(cmdpath_allowed("rm", NULL, "/m", why, sizeof why), "no list: any program");
	ok(cmdpath_allowed("/usr/bin/python3", "/usr/bin", "/m", why, sizeof why),
	   "/usr/bin/python3 in /usr/bin");
	ok(!cmdpath_allowed("python3", "/usr/bin", "/m", why, sizeof why), "a bare name is refused");
	ok(strstr(why, "absolute") != NULL, "... saying it must be absolute (%s)", why);
	ok(!cmdpath_allowed("/usr/bin/../../bin/sh", "/usr/bin", "/m", why, sizeof why),
	   "'..' is refused");
	ok(!cmdpath_allowed("/usr/bin/./x", "/usr/bin", "/m", why, sizeof why), "'.' is refused");
	ok(!cmdpath_allowed("/usr/binx/y", "/usr/bin", "/m", why, sizeof why),
	   "a sibling with the same prefix is outside");
	ok(!cmdpath_allowed("/usr/bin", "/usr/bin", "/m", why, sizeof why),
	   "the directory itself is not a program in it");
	ok(!cmdpath_allowed("/opt/x/run", "/usr/bin:/usr/local/bin", "/m", why, sizeof why),
	   "outside every listed directory");
	ok(strstr(why, "/opt/x/run") && strstr(why, "hub.local_command_dirs"),
	   "... the reason names the program and the key (%s)", why);
	ok(!cmdpath_allowed("/x/m", "/usr/bin, /x", "/m", why, sizeof why),
	   "an entry with a space is not a directory (' /x' is not absolute)");
	ok(cmdpath_allowed("/usr/local/bin/m", "/usr/bin,/usr/local/bin/", "/m", why, sizeof why),
	   "',' separates, a trailing '/' is fine");
	ok(cmdpath_allowed("{models_dir}/serve.py", "{models_dir}", "/srv/models", why, sizeof why),
	   "{models_dir} in the program and the list");
	ok(!cmdpath_allowed("{models_dir}/serve.py", "/usr/bin", "/srv/models", why, sizeof why),
	   "{models_dir} is not allowed unless listed");
	ok(cmdpath_allowed("/bin/sh", "/bin", "/m", why, sizeof why),
	   "/bin/sh in /bin even where /bin is a link to /usr/bin (%s)", why);

	/* a symlink inside an allowed directory that leads out */
	if (!mkdtemp(tmp))
		return 1;
	snprintf(in, sizeof in, "%s/in", tmp);
	snprintf(out, sizeof out, "%s/out", tmp);
	mkdir(in, 0755);
	mkdir(out, 0755);
	snprintf(prog, sizeof prog, "%s/prog", out);
	fclose(fopen(prog, "w"));
	snprintf(link, sizeof link, "%s/evil", in);
	ok(symlink(prog, link) == 0, "fixture: %s -> %s", link, prog);
	ok(!cmdpath_allowed(link, in, "/m", why, sizeof why), "a symlink leading out is refused");
	ok(strstr(why, "leads to") != NULL, "... saying where it leads (%s)", why);
	snprintf(prog, sizeof prog, "%s/ok", in);
	fclose(fopen(prog, "w"));
	ok(cmdpath_allowed(prog, in, "/m", why, sizeof why), "a real file inside is allowed");
	unlink(link);
	unlink(prog);
	snprintf(prog, sizeof prog, "%s/prog", out);
	unlink(prog);
	rmdir(in);
	rmdir(out);
	rmdir(tmp);
	return done_testing();
}
