/* SPDX-License-Identifier: MIT */
/* buf.c -- growable byte buffer. */
#include "core/buf.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
ig_buf_append(struct ig_buf *b, const void *p, size_t n)
{
    void *data = b->data;
    if (ig_grow(&data, &b->cap, b->len + n + 1, 1) != 0)
        return -1;
    b->data = data;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
ig_buf_reserve(struct ig_buf *b, size_t n)
{
    void *data = b->data;
    if (ig_grow(&data, &b->cap, b->len + n + 1, 1) != 0)
        return -1;
    b->data = data;
    return 0;
}

int
ig_buf_puts(struct ig_buf *b, const char *s)
{
    return ig_buf_append(b, s, strlen(s));
}

int
ig_buf_printf(struct ig_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    void *data = b->data;
    if (ig_grow(&data, &b->cap, b->len + (size_t)n + 1, 1) != 0)
        return -1;
    b->data = data;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void
ig_buf_reset(struct ig_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void
ig_buf_free(struct ig_buf *b)
{
    ig_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *
ig_buf_steal(struct ig_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
