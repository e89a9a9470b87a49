/*
 * buf.h — growable byte buffer (strings, HTTP bodies, CSV output).
 *
 * Runs in: every process. The buffer owns its memory; buf_free() releases it
 * and leaves an empty, reusable buffer. After an allocation failure the
 * buffer is marked failed (buf.oom) and further appends are ignored, so
 * callers check once at the end.
 */
#ifndef MH_BUF_H
#define MH_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data; /* always NUL-terminated when len > 0 or after buf_cstr() */
	size_t len;
	size_t cap;
	int oom;
};

#define BUF_INIT {NULL, 0, 0, 0}

int buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as one RFC 4180 CSV field (quoted when it holds , " CR or LF). */
void buf_add_csv(struct buf *b, const char *s);
/* Keep only the last `lines` lines of what was appended since offset from
 * (lines <= 0: keep all). */
void buf_keep_tail_lines(struct buf *b, size_t from, int lines);
const char *buf_cstr(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hand the data to the caller (who free()s it); the buffer becomes empty. */
char *buf_steal(struct buf *b);

#endif
