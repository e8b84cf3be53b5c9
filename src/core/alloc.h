/* SPDX-License-Identifier: MIT */
/* alloc.h -- the one allocation funnel.
 *
 * Every allocation in imagegate goes through these (SQLite's sqlite3Malloc
 * idea), so that a test can make the Nth allocation fail and walk every
 * out-of-memory path instead of hoping it works. */
#ifndef IG_CORE_ALLOC_H
#define IG_CORE_ALLOC_H

#include <stddef.h>

void *ig_malloc(size_t n);
void *ig_calloc(size_t count, size_t size);
void *ig_realloc(void *p, size_t n);
void  ig_free(void *p);
char *ig_strdup(const char *s);
char *ig_strndup(const char *s, size_t n);
/* Grows *array (of *cap elements of size elem) to hold at least need. */
int   ig_grow(void **array, size_t *cap, size_t need, size_t elem);

/* Test hook: the nth allocation from now (1-based) and all after it fail;
 * 0 turns failure injection off. Returns how many allocations were made since
 * the last call, so a test can learn how many points there are to fail. */
unsigned long ig_alloc_fail_at(unsigned long nth);

#endif
