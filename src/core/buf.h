/* SPDX-License-Identifier: MIT */
/* buf.h -- a growable byte buffer (bodies, JSON text, encoded images). */
#ifndef IG_CORE_BUF_H
#define IG_CORE_BUF_H

#include <stddef.h>

struct ig_buf {
    char  *data;   /* always NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
};

int  ig_buf_append(struct ig_buf *b, const void *p, size_t n);
/* Makes room for n more bytes, so that appending them copies nothing twice. */
int  ig_buf_reserve(struct ig_buf *b, size_t n);
int  ig_buf_puts(struct ig_buf *b, const char *s);
int  ig_buf_printf(struct ig_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ig_buf_reset(struct ig_buf *b);   /* len = 0, keeps the memory for reuse */
void ig_buf_free(struct ig_buf *b);
/* Hands the bytes to the caller (who frees them with ig_free). */
char *ig_buf_steal(struct ig_buf *b, size_t *len);

#endif
