/*
 * ctl_user.c — `modelhubctl create-admin`, `create-token`, `reset-password`.
 *
 * Runs in: modelhubctl. Called by: main.c.
 * Owns: the generated password (wiped with sodium_memzero after printing)
 * and the token file written with --out (mode 0600).
 * Shared state: tables app_user and session through db/db_user.h.
 *
 * Passwords come from the environment variable named by --password-env
 * (so they never appear in argv or shell history) or are generated and
 * printed once. Tokens are printed or written only where asked; they are
 * never logged.
 */
#include "ctl/ctl.h"
#include "db/db_user.h"
#include "lib/log.h"
#include "lib/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTL_PW_LEN 20

/* Unambiguous characters (no 0/O, 1/l/I). */
static const char pw_alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

static void gen_password(char out[CTL_PW_LEN + 1])
{
	for (int i = 0; i < CTL_PW_LEN; i++)
		out[i] = pw_alphabet[randombytes_uniform(sizeof pw_alphabet - 1)];
	out[CTL_PW_LEN] = '\0';
}

/* Fill pw from --password-env or generate one (*generated = 1).
 * 0, or -1 after reporting. */
static int get_password(const struct ctl_opts *o, const char *user, const char *email,
			char *pw, size_t n, int *generated)
{
	const char *v, *bad;

	*generated = 0;
	if (!o->password_env) {
		gen_password(pw);
		*generated = 1;
		return 0;
	}
	v = getenv(o->password_env);
	if (!v || !*v) {
		fprintf(stderr, "modelhubctl: environment variable %s is not set\n", o->password_env);
		return -1;
	}
	if (strlen(v) >= n) {
		fprintf(stderr, "modelhubctl: password in %s is too long\n", o->password_env);
		return -1;
	}
	bad = validate_password(v, strlen(v), user, email);
	if (bad) {
		fprintf(stderr, "modelhubctl: password in %s rejected: %s\n", o->password_env, bad);
		return -1;
	}
	snprintf(pw, n, "%s", v);
	return 0;
}

int ctl_create_admin(const struct ctl_opts *o)
{
	const char *user = o->args[0], *email = o->args[1], *bad;
	char pw[VALIDATE_PASSWORD_MAX + 1];
	struct db *db = ctl_db();
	int64_t id = 0;
	int generated, rc = 1, f;

	if ((bad = validate_username(user, strlen(user)))) {
		fprintf(stderr, "modelhubctl: username rejected: %s\n", bad);
		return 1;
	}
	if ((bad = validate_email(email, strlen(email)))) {
		fprintf(stderr, "modelhubctl: email rejected: %s\n", bad);
		return 1;
	}
	f = db_user_find(db, user, &id);
	if (f < 0) {
		fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
		return 1;
	}
	if (f == 0) {
		printf("user %s already exists (id %lld); nothing changed\n", user, (long long)id);
		return 0;
	}
	if (get_password(o, user, email, pw, sizeof pw, &generated) < 0)
		return 1;
	if (db_user_create(db, user, email, pw, NULL, NULL, "ADMIN,USER", &id) < 0) {
		if (db_is_unique_violation(db))
			fprintf(stderr, "modelhubctl: the username or email is already taken\n");
		else
			fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
		goto out;
	}
	printf("created admin %s (id %lld)\n", user, (long long)id);
	if (generated)
		printf("password: %s\n", pw);
	rc = 0;
out:
	sodium_memzero(pw, sizeof pw);
	return rc;
}

int ctl_reset_password(const struct ctl_opts *o)
{
	const char *user = o->args[0];
	char pw[VALIDATE_PASSWORD_MAX + 1];
	struct db *db = ctl_db();
	int generated, r, rc = 1;

	if (get_password(o, user, "", pw, sizeof pw, &generated) < 0)
		return 1;
	r = db_user_set_password(db, user, pw);
	if (r < 0) {
		fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
	} else if (r == 1) {
		fprintf(stderr, "modelhubctl: no user %s\n", user);
	} else {
		printf("password of %s reset; its sessions were ended\n", user);
		if (generated)
			printf("password: %s\n", pw);
		rc = 0;
	}
	sodium_memzero(pw, sizeof pw);
	return rc;
}

static int write_token(const char *path, const char *tok)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t len = strlen(tok);
	int ok;

	if (fd < 0) {
		fprintf(stderr, "modelhubctl: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* the file may have existed with a wider mode */
	ok = fchmod(fd, 0600) == 0 && write(fd, tok, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
	if (close(fd) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "modelhubctl: cannot write %s: %s\n", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

int ctl_create_token(const struct ctl_opts *o)
{
	const char *user = o->args[0];
	char tok[DB_TOKEN_HEX_LEN + 1];
	struct db *db = ctl_db();
	int64_t id;
	int f, rc = 1;

	f = db_user_find(db, user, &id);
	if (f < 0) {
		fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
		return 1;
	}
	if (f == 1) {
		fprintf(stderr, "modelhubctl: no user %s\n", user);
		return 1;
	}
	if (db_token_create_api(db, id, o->ttl_days, tok) < 0) {
		fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
		return 1;
	}
	if (o->out) {
		if (write_token(o->out, tok) == 0) {
			printf("token for %s written to %s\n", user, o->out);
			rc = 0;
		}
	} else {
		printf("%s\n", tok);
		rc = 0;
	}
	sodium_memzero(tok, sizeof tok);
	return rc;
}
