/* SPDX-License-Identifier: MIT */
/* buf.c -- growable byte buffer. */
#include "core/buf.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A buffer's first allocation: most hold a few hundred bytes of JSON or
 * headers, which grown from ig_grow's 8 bytes took six reallocs each (a
 * relay's provenance and record text, 1-2 % of its CPU). */
#define BUF_FIRST 256

/* Room for n more bytes and the NUL after them. */
static int
room(struct ig_buf *b, size_t n)
{
    if (n >= SIZE_MAX - b->len)   /* len + n + 1 would wrap */
        return -1;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    if (!b->cap && need < BUF_FIRST)
        need = BUF_FIRST;
    void *data = b->data;
    if (ig_grow(&data, &b->cap, need, 1) != 0)
        return -1;
    b->data = data;
    return 0;
}

int
ig_buf_append(struct ig_buf *b, const void *p, size_t n)
{
    if (room(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
ig_buf_reserve(struct ig_buf *b, size_t n)
{
    return room(b, n);
}

int
ig_buf_puts(struct ig_buf *b, const char *s)
{
    return ig_buf_append(b, s, strlen(s));
}

/* Formats into the room the buffer has, and only when that is too short
 * grows it and formats again: one vsnprintf for most calls, not two. */
int
ig_buf_printf(struct ig_buf *b, const char *fmt, ...)
{
    if (room(b, 0) != 0)
        return -1;
    size_t left = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, left, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->data[b->len] = '\0';
        return -1;
    }
    if ((size_t)n >= left) {
        if (room(b, (size_t)n) != 0) {
            b->data[b->len] = '\0';
            return -1;
        }
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
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
