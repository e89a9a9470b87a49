/*
 * config.c — parser and lookup for config.h.
 *
 * Runs in: every process. Owns: the key/value table (heap, one owner: this
 * module). Lookups are linear; there are a few dozen keys and they are read
 * at start-up or per loop iteration, never per byte.
 */
#include "lib/config.h"
#include "lib/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv {
	char *key;
	char *val;
};

static struct kv *tab;
static size_t ntab;
static char *cur_path;

static void tab_free(struct kv *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].key);
		free(t[i].val);
	}
	free(t);
}

void cfg_free(void)
{
	tab_free(tab, ntab);
	tab = NULL;
	ntab = 0;
	free(cur_path);
	cur_path = NULL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int valid_key(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '.' && *k != '_' && *k != '-')
			return 0;
	return 1;
}

static int tab_put(struct kv **t, size_t *n, const char *k, const char *v)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*t)[i].key, k) == 0) {
			char *nv = strdup(v);
			if (!nv)
				return -1;
			free((*t)[i].val);
			(*t)[i].val = nv;
			return 0;
		}
	struct kv *nt = realloc(*t, (*n + 1) * sizeof **t);
	if (!nt)
		return -1;
	*t = nt;
	nt[*n].key = strdup(k);
	nt[*n].val = strdup(v);
	if (!nt[*n].key || !nt[*n].val) {
		free(nt[*n].key);
		free(nt[*n].val);
		return -1;
	}
	(*n)++;
	return 0;
}

int cfg_parse(const char *text, const char **err, int *line)
{
	struct kv *nt = NULL;
	size_t nn = 0;
	char *copy = strdup(text ? text : "");
	char *save = NULL, *ln;
	int lineno = 0;

	if (!copy) {
		*err = "out of memory";
		return -1;
	}
	/* strtok_r would skip empty lines and miscount; split by hand. */
	for (ln = copy; ln; ln = save) {
		char *nl = strchr(ln, '\n'), *eq, *k, *v;
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		k = trim(ln);
		if (*k == '#' || *k == ';' || *k == '\0')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			*err = "expected key = value";
			goto fail;
		}
		*eq = '\0';
		v = trim(eq + 1);
		k = trim(k);
		if (!valid_key(k)) {
			*err = "invalid key (letters, digits, . _ - only)";
			goto fail;
		}
		size_t vl = strlen(v);
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
			v[vl - 1] = '\0';
			v++;
		}
		if (tab_put(&nt, &nn, k, v) < 0) {
			*err = "out of memory";
			goto fail;
		}
	}
	free(copy);
	tab_free(tab, ntab);
	tab = nt;
	ntab = nn;
	return 0;
fail:
	*line = lineno;
	free(copy);
	tab_free(nt, nn);
	return -1;
}

int cfg_load(const char *path, const char **err, int *line)
{
	FILE *f;
	char *buf = NULL;
	size_t cap = 0, len = 0, r;
	char chunk[4096];
	int rc;

	*err = NULL;
	*line = 0;
	if (!path)
		path = getenv("MODELHUB_CONFIG");
	if (!path || !*path)
		return cfg_parse("", err, line);
	f = fopen(path, "r");
	if (!f) {
		*err = strerror(errno);
		return -1;
	}
	while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (len + r + 1 > cap) {
			cap = (len + r + 1) * 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				*err = "out of memory";
				return -1;
			}
			buf = nb;
		}
		memcpy(buf + len, chunk, r);
		len += r;
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	rc = cfg_parse(buf ? buf : "", err, line);
	free(buf);
	if (rc == 0) {
		char *p = strdup(path);
		free(cur_path);
		cur_path = p;
	}
	return rc;
}

const char *cfg_path(void) { return cur_path; }

int cfg_set(const char *key, const char *value)
{
	return valid_key(key) ? tab_put(&tab, &ntab, key, value) : -1;
}

static const char *env_lookup(const char *key)
{
	char name[128] = "MODELHUB_";
	size_t n = strlen(name);

	for (const char *k = key; *k && n < sizeof name - 1; k++)
		name[n++] = (*k == '.' || *k == '-') ? '_' : (char)toupper((unsigned char)*k);
	name[n] = '\0';
	return getenv(name);
}

const char *cfg_str(const char *key, const char *def)
{
	const char *e = env_lookup(key);

	if (e)
		return e;
	for (size_t i = 0; i < ntab; i++)
		if (strcmp(tab[i].key, key) == 0)
			return tab[i].val;
	return def;
}

long cfg_int(const char *key, long def)
{
	const char *v = cfg_str(key, NULL);
	char *end;
	long r;

	if (!v || !*v)
		return def;
	errno = 0;
	r = strtol(v, &end, 10);
	if (errno || *end) {
		log_warn_x("config key=%s value=\"%s\" msg=\"not an integer, using default %ld\"",
			   key, v, def);
		return def;
	}
	return r;
}

double cfg_double(const char *key, double def)
{
	const char *v = cfg_str(key, NULL);
	char *end;
	double r;

	if (!v || !*v)
		return def;
	errno = 0;
	r = strtod(v, &end);
	if (errno || *end) {
		log_warn_x("config key=%s value=\"%s\" msg=\"not a number, using default\"", key, v);
		return def;
	}
	return r;
}

int cfg_bool(const char *key, int def)
{
	const char *v = cfg_str(key, NULL);

	if (!v || !*v)
		return def;
	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
		return 1;
	if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
		return 0;
	log_warn_x("config key=%s value=\"%s\" msg=\"not a boolean, using default\"", key, v);
	return def;
}
