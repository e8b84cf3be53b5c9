/* SPDX-License-Identifier: MIT */
/* arena.h -- bump allocation for things that die together.
 *
 * A config, a request or a job allocates many small pieces whose lifetimes
 * end at once; an arena frees them in one call and keeps the hot path free
 * of per-object frees (h2o's memory pool). Chunks come from ig_malloc so
 * allocation-failure tests reach arena users too. */
#ifndef IG_CORE_ARENA_H
#define IG_CORE_ARENA_H

#include <stddef.h>

struct ig_arena;

struct ig_arena *ig_arena_new(size_t chunk_size);
void  ig_arena_free(struct ig_arena *a);
/* Forgets every allocation but keeps the first chunk for reuse. */
void  ig_arena_reset(struct ig_arena *a);
void *ig_arena_alloc(struct ig_arena *a, size_t n);          /* zeroed, 16-aligned */
char *ig_arena_strdup(struct ig_arena *a, const char *s);
char *ig_arena_strndup(struct ig_arena *a, const char *s, size_t n);
char *ig_arena_printf(struct ig_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
