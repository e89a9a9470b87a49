/* 904-instance-retention.c — instance logs and directories go with the request retention (issue 17, finding 7: the instance logs were never deleted): local_jail_sweep removes <id>.log files and <id>/ directories not modified for retention_days, keeps newer ones and names that are not instance ids, and never follows a symlink a model left in its directory. */
#include "cluster/local_jail.h"
#include "t/lib/tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char var[64], path[256];

static const char *at(const char *rel)
{
	snprintf(path, sizeof path, "%s/%s", var, rel);
	return path;
}

static void touch(const char *rel, int days_old)
{
	struct timeval tv[2];
	int fd = open(at(rel), O_WRONLY | O_CREAT, 0644);

	if (fd >= 0)
		close(fd);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= (time_t)days_old * 86400;
	tv[1] = tv[0];
	utimes(at(rel), tv);
}

static void age_dir(const char *rel, int days_old)
{
	struct timeval tv[2];

	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= (time_t)days_old * 86400;
	tv[1] = tv[0];
	utimes(at(rel), tv);
}

static int exists(const char *rel)
{
	struct stat st;

	return lstat(at(rel), &st) == 0;
}

int main(void)
{
	char outside[96];

	snprintf(var, sizeof var, "/tmp/mh904-XXXXXX");
	if (!mkdtemp(var))
		return 1;
	is_int(local_jail_sweep(var, 7), 0, "no instances directory yet: nothing to do");
	mkdir(at("instances"), 0755);
	touch("instances/1.log", 10);
	touch("instances/2.log", 1);
	touch("instances/notes.log", 30);
	mkdir(at("instances/3"), 0700);
	touch("instances/3/scratch", 10);
	snprintf(outside, sizeof outside, "%s/outside", var);
	touch("outside", 30);
	ok(symlink(outside, at("instances/3/link")) == 0, "fixture: a symlink out of instance 3's directory");
	age_dir("instances/3", 10);
	mkdir(at("instances/4"), 0700);
	is_int(local_jail_sweep(var, 7), 2, "two entries past 7 days removed");
	ok(!exists("instances/1.log"), "an old instance log is gone");
	ok(exists("instances/2.log"), "a recent one stays");
	ok(!exists("instances/3"), "an old instance directory is gone, with what the model left");
	ok(exists("outside"), "... the file its symlink pointed to is untouched");
	ok(exists("instances/4"), "a recent directory stays");
	ok(exists("instances/notes.log"), "a name that is no instance id stays");
	is_int(local_jail_sweep(var, 0), 1, "retention 0: the day-old log goes too (the new directory stays)");
	ok(!exists("instances/2.log"), "... it is gone");
	rmdir(at("instances/4"));
	unlink(at("instances/notes.log"));
	unlink(at("outside"));
	rmdir(at("instances"));
	rmdir(var);
	return done_testing();
}
