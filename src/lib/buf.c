/*
 * buf.c — implementation of buf.h. Called by: everything that builds text.
 */
#include "lib/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, ncap;
	char *nd;

	if (b->oom)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	nd = realloc(b->data, ncap);
	if (!nd) {
		b->oom = 1;
		return -1;
	}
	b->data = nd;
	b->cap = ncap;
	return 0;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }
void buf_addc(struct buf *b, char c) { buf_add(b, &c, 1); }

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void buf_add_csv(struct buf *b, const char *s)
{
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		buf_adds(b, s);
		return;
	}
	buf_addc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			buf_addc(b, '"');
		buf_addc(b, *s);
	}
	buf_addc(b, '"');
}

void buf_keep_tail_lines(struct buf *b, size_t from, int lines)
{
	size_t i = b->len;

	if (lines <= 0 || b->oom || b->len <= from)
		return;
	if (b->data[b->len - 1] == '\n')
		i--; /* a final newline ends the last line, it does not start one */
	while (i > from) {
		if (b->data[i - 1] == '\n' && --lines == 0)
			break;
		i--;
	}
	if (i > from) {
		memmove(b->data + from, b->data + i, b->len - i);
		b->len = from + (b->len - i);
		b->data[b->len] = '\0';
	}
}

const char *buf_cstr(struct buf *b)
{
	if (buf_reserve(b, 0) < 0)
		return "";
	b->data[b->len] = '\0';
	return b->data;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

char *buf_steal(struct buf *b)
{
	char *d;

	buf_cstr(b);
	d = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}
