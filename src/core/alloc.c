/* SPDX-License-Identifier: MIT */
/* alloc.c -- allocation funnel with failure injection for tests. */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong alloc_count;
static atomic_ulong alloc_fail_nth;

static int
should_fail(void)
{
    unsigned long nth = atomic_load_explicit(&alloc_fail_nth, memory_order_relaxed);
    unsigned long n = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
    return nth && n >= nth;
}

unsigned long
ig_alloc_fail_at(unsigned long nth)
{
    unsigned long made = atomic_exchange(&alloc_count, 0);
    atomic_store(&alloc_fail_nth, nth);
    return made;
}

void *
ig_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *
ig_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *
ig_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void
ig_free(void *p)
{
    free(p);
}

char *
ig_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = ig_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *
ig_strdup(const char *s)
{
    return ig_strndup(s, SIZE_MAX);
}

int
ig_grow(void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return -1;
        ncap *= 2;
    }
    void *p = ig_realloc(*array, ncap * elem);
    if (!p)
        return -1;
    *array = p;
    *cap = ncap;
    return 0;
}
