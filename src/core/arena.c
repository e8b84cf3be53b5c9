/* SPDX-License-Identifier: MIT */
/* arena.c -- chunked bump allocator. */
#include "core/arena.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct ig_arena {
    struct chunk *head;
    size_t chunk_size;
};

struct ig_arena *
ig_arena_new(size_t chunk_size)
{
    struct ig_arena *a = ig_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->chunk_size = chunk_size ? chunk_size : 16384;
    return a;
}

void
ig_arena_free(struct ig_arena *a)
{
    if (!a)
        return;
    for (struct chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        ig_free(c);
    }
    ig_free(a);
}

void
ig_arena_reset(struct ig_arena *a)
{
    if (!a || !a->head)
        return;
    struct chunk *keep = a->head;
    while (keep->next)
        keep = keep->next;   /* the oldest chunk: the one sized chunk_size */
    for (struct chunk *c = a->head, *next; c != keep; c = next) {
        next = c->next;
        ig_free(c);
    }
    keep->used = 0;
    a->head = keep;
}

void *
ig_arena_alloc(struct ig_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    struct chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        if (size > SIZE_MAX - sizeof *c)
            return NULL;
        c = ig_malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *
ig_arena_strndup(struct ig_arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = ig_arena_alloc(a, len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *
ig_arena_strdup(struct ig_arena *a, const char *s)
{
    return ig_arena_strndup(a, s, SIZE_MAX);
}

char *
ig_arena_printf(struct ig_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *d = ig_arena_alloc(a, (size_t)n + 1);
    if (!d)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}
