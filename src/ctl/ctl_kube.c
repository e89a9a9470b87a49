/*
 * ctl_kube.c — `modelhubctl kubeconfig FILE [CONTEXT]`: print the kube.*
 * configuration lines for a kubeconfig's context.
 *
 * Runs in: modelhubctl. Called by: main.c.
 * Owns: the parsed kubeconfig (json-c), the CA file it may write
 * (<FILE>.ca.crt, mode 0644, from certificate-authority-data).
 *
 * A kubeconfig is YAML (kubectl writes a plain block style: maps, "- "
 * lists, scalars) or JSON. The small reader below handles exactly that
 * block subset — indentation, "key: value", "- item", quoted and plain
 * scalars, comments, empty {} and [] — which is what kubectl writes; flow
 * collections, anchors and multi-line scalars are refused with a message.
 * Client certificates and exec plugins are not supported by the backend
 * (token only) and are reported as such.
 */
#include "ctl/ctl.h"
#include "lib/json.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct yline {
	int indent;
	char *text;     /* after the indentation, trailing space removed */
};

struct yreader {
	struct yline *l;
	int n, pos;
	const char *err;
};

static char *scalar(const char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && ((s[0] == '"' && s[n - 1] == '"') || (s[0] == '\'' && s[n - 1] == '\''))) {
		char *o = malloc(n), *p = o;
		for (size_t i = 1; o && i + 1 < n; i++) {
			if (s[0] == '"' && s[i] == '\\' && i + 2 < n)
				i++;
			else if (s[0] == '\'' && s[i] == '\'' && i + 2 < n && s[i + 1] == '\'')
				i++;
			*p++ = s[i];
		}
		if (o)
			*p = '\0';
		return o;
	}
	return strdup(s);
}

/* Position of the ':' that ends a mapping key, or NULL. */
static char *key_colon(char *t)
{
	char q = 0;

	for (char *p = t; *p; p++) {
		if (q) {
			if (*p == q)
				q = 0;
		} else if (*p == '"' || *p == '\'') {
			q = *p;
		} else if (*p == ':' && (p[1] == ' ' || p[1] == '\0')) {
			return p;
		}
	}
	return NULL;
}

static struct json_object *parse_block(struct yreader *y, int indent);

/* A sequence entry line: "- value" or a lone "-". */
static int is_dash(const char *t)
{
	return strncmp(t, "- ", 2) == 0 || strcmp(t, "-") == 0;
}

static struct json_object *parse_value_after_key(struct yreader *y, int indent, const char *rest)
{
	if (strcmp(rest, "{}") == 0)
		return json_object_new_object();
	if (strcmp(rest, "[]") == 0)
		return json_object_new_array();
	if (*rest) {
		if (*rest == '{' || *rest == '[' || *rest == '&' || *rest == '*' || *rest == '|' ||
		    *rest == '>') {
			y->err = "flow collections, anchors and block scalars are not supported";
			return NULL;
		}
		char *v = scalar(rest);
		struct json_object *o = v ? json_object_new_string(v) : NULL;
		free(v);
		return o;
	}
	if (y->pos < y->n && (y->l[y->pos].indent > indent ||
			      (y->l[y->pos].indent == indent && is_dash(y->l[y->pos].text))))
		return parse_block(y, y->l[y->pos].indent);
	return json_object_new_string("");
}

/* The sequence entry at line ln ("- ..."), consuming its lines. */
static struct json_object *parse_seq_item(struct yreader *y, struct yline *ln, int indent)
{
	struct json_object *item;

	if (strcmp(ln->text, "-") == 0) {
		y->pos++;
		item = parse_block(y, y->pos < y->n ? y->l[y->pos].indent : indent + 2);
	} else {
		char *t = ln->text + 2;
		while (*t == ' ')
			t++;
		if (key_colon(t)) {
			/* "- key: v" starts a mapping indented past the dash */
			ln->indent += (int)(t - ln->text);
			ln->text = t;
			item = parse_block(y, ln->indent);
		} else {
			char *v = scalar(t);
			item = v ? json_object_new_string(v) : NULL;
			free(v);
			y->pos++;
		}
	}
	if (!item && !y->err)
		item = json_object_new_string("");
	return item;
}

/* The mapping entry at line ln ("key: ..."), added to o with its value.
 * 0, or -1 with y->err when the line is not a key. */
static int parse_map_entry(struct yreader *y, struct yline *ln, int indent, struct json_object *o)
{
	char *colon = key_colon(ln->text), *key, *rest;
	struct json_object *v;

	if (!colon) {
		y->err = "expected key: value";
		return -1;
	}
	*colon = '\0';
	key = scalar(ln->text);
	rest = colon + 1;
	while (*rest == ' ')
		rest++;
	y->pos++;
	v = parse_value_after_key(y, indent, rest);
	if (key)
		json_object_object_add(o, key, v);
	else
		json_object_put(v);
	free(key);
	return 0;
}

/* The sequence or mapping whose lines start at y->pos with this indent. */
static struct json_object *parse_block(struct yreader *y, int indent)
{
	struct json_object *o;
	int seq;

	if (y->pos >= y->n)
		return NULL;
	seq = is_dash(y->l[y->pos].text);
	o = seq ? json_object_new_array() : json_object_new_object();
	while (y->pos < y->n && !y->err) {
		struct yline *ln = &y->l[y->pos];
		if (ln->indent < indent)
			break;
		if (ln->indent > indent) {
			y->err = "unexpected indentation";
			break;
		}
		if (seq) {
			if (!is_dash(ln->text))
				break;
			json_object_array_add(o, parse_seq_item(y, ln, indent));
		} else if (parse_map_entry(y, ln, indent, o) < 0) {
			break;
		}
	}
	return o;
}

/* Parse YAML block text (modified in place) or JSON. NULL with *err. */
static struct json_object *kubeconfig_parse(char *text, const char **err)
{
	struct yreader y = {0};
	struct json_object *o;
	char *save = NULL, *line;
	int cap = 0;

	o = json_tokener_parse(text);
	if (o)
		return o;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int ind = 0;
		size_t n;
		char *c;
		while (line[ind] == ' ')
			ind++;
		if (line[ind] == '\t') {
			*err = "tabs in indentation";
			free(y.l);
			return NULL;
		}
		/* comments: whole line, or " #" outside quotes (tokens never hold " #") */
		c = line[ind] == '#' ? line + ind : strstr(line, " #");
		if (c)
			*c = '\0';
		n = strlen(line);
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (!line[ind] || strcmp(line + ind, "---") == 0)
			continue;
		if (y.n == cap) {
			cap = cap ? cap * 2 : 64;
			struct yline *l = realloc(y.l, (size_t)cap * sizeof *l);
			if (!l) {
				free(y.l);
				*err = "out of memory";
				return NULL;
			}
			y.l = l;
		}
		y.l[y.n].indent = ind;
		y.l[y.n].text = line + ind;
		y.n++;
	}
	o = y.n ? parse_block(&y, y.l[0].indent) : NULL;
	if (y.err || !o || !json_object_is_type(o, json_type_object) || y.pos < y.n) {
		*err = y.err ? y.err : "not a kubeconfig";
		json_object_put(o);
		o = NULL;
	}
	free(y.l);
	return o;
}

/* The "what" member of the entry of list whose name is name. */
static struct json_object *named(struct json_object *root, const char *list, const char *name,
				 const char *what)
{
	struct json_object *a, *v;

	if (!name || !json_object_object_get_ex(root, list, &a) || !json_object_is_type(a, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		const char *n = jx_str(e, "name");
		if (n && strcmp(n, name) == 0)
			return json_object_object_get_ex(e, what, &v) ? v : NULL;
	}
	return NULL;
}

static int write_ca(const char *kubeconfig, const char *b64, char *path, size_t n)
{
	size_t len = strlen(b64), out_len = 0;
	unsigned char *bin = malloc(len + 1);
	FILE *f;
	int rc = -1;

	if (!bin)
		return -1;
	if (sodium_base642bin(bin, len + 1, b64, len, " \n\r", &out_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		goto out;
	snprintf(path, n, "%s.ca.crt", kubeconfig);
	f = fopen(path, "we");
	if (!f)
		goto out;
	if (fwrite(bin, 1, out_len, f) == out_len)
		rc = 0;
	if (fclose(f) != 0)
		rc = -1;
	chmod(path, 0644);
out:
	free(bin);
	return rc;
}

/* The whole of a small file (under 16 MiB), NUL-terminated; NULL when it
 * cannot be read. The caller frees it. */
static char *read_small_file(FILE *f)
{
	char *text = NULL;
	long size;

	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size < (1 << 24) &&
	    fseek(f, 0, SEEK_SET) == 0 && (text = calloc((size_t)size + 1, 1)) &&
	    fread(text, 1, (size_t)size, f) == (size_t)size)
		return text;
	free(text);
	return NULL;
}

/* kube.ca_file (written out from certificate-authority-data, or the
 * certificate-authority path) and kube.insecure of a cluster entry.
 * 0 / -1 (reported). */
static int print_tls(const char *file, struct json_object *cl)
{
	const char *ca_data = jx_str(cl, "certificate-authority-data");
	struct json_object *ins;
	char ca_path[1200];

	if (ca_data) {
		if (write_ca(file, ca_data, ca_path, sizeof ca_path) < 0) {
			fprintf(stderr, "modelhubctl: %s: cannot write the CA from certificate-authority-data\n",
				file);
			return -1;
		}
		printf("kube.ca_file = %s\n", ca_path);
	} else if (jx_str(cl, "certificate-authority")) {
		printf("kube.ca_file = %s\n", jx_str(cl, "certificate-authority"));
	}
	if (json_object_object_get_ex(cl, "insecure-skip-tls-verify", &ins) &&
	    ((json_object_is_type(ins, json_type_boolean) && json_object_get_boolean(ins)) ||
	     (json_object_is_type(ins, json_type_string) &&
	      strcmp(json_object_get_string(ins), "true") == 0)))
		printf("kube.insecure = 1\n");
	return 0;
}

int ctl_kubeconfig(const struct ctl_opts *o)
{
	const char *file = o->args[0], *ctx_name, *err = "unreadable";
	struct json_object *root = NULL, *ctx, *cl, *user;
	FILE *f = fopen(file, "re");
	char *text;
	int rc = 1;

	if (!f) {
		fprintf(stderr, "modelhubctl: cannot open %s\n", file);
		return 1;
	}
	text = read_small_file(f);
	fclose(f);
	if (text)
		root = kubeconfig_parse(text, &err);
	if (!root) {
		fprintf(stderr, "modelhubctl: %s: %s\n", file, err);
		goto out;
	}
	ctx_name = o->nargs > 1 ? o->args[1] : jx_str(root, "current-context");
	ctx = named(root, "contexts", ctx_name, "context");
	if (!ctx) {
		fprintf(stderr, "modelhubctl: %s: no context %s\n", file, ctx_name ? ctx_name : "(current-context unset)");
		goto out;
	}
	cl = named(root, "clusters", jx_str(ctx, "cluster"), "cluster");
	user = named(root, "users", jx_str(ctx, "user"), "user");
	if (!cl || !jx_str(cl, "server")) {
		fprintf(stderr, "modelhubctl: %s: context %s has no cluster server\n", file, ctx_name);
		goto out;
	}
	if (!user || (!jx_str(user, "token") && !jx_str(user, "tokenFile"))) {
		fprintf(stderr, "modelhubctl: %s: user of context %s has no token (client certificates "
			"and exec plugins are not supported; use a service-account token)\n", file, ctx_name);
		goto out;
	}
	printf("hub.backend = kubernetes\n");
	printf("kube.server = %s\n", jx_str(cl, "server"));
	if (jx_str(user, "token"))
		printf("kube.token = %s\n", jx_str(user, "token"));
	else
		printf("kube.token_file = %s\n", jx_str(user, "tokenFile"));
	if (print_tls(file, cl) < 0)
		goto out;
	if (jx_str(ctx, "namespace"))
		printf("kube.namespace = %s\n", jx_str(ctx, "namespace"));
	rc = 0;
out:
	json_object_put(root);
	free(text);
	return rc;
}
