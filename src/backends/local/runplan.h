/* SPDX-License-Identifier: MIT */
/* runplan.h -- an allocator for runs that repeat the same allocations.
 *
 * An inference on a fixed-size input asks for the same blocks in the same
 * order every time. The first run is served by a best-fit allocator inside
 * one reserved region and recorded (size, when allocated, when freed); at
 * its end every block gets an offset so that no two blocks alive at the
 * same time overlap (greedy by size, which on ISNet lands exactly on the
 * peak of live bytes), and the region's pages past that plan are handed
 * back. Later runs are served from the plan while their allocations and
 * frees repeat the recorded sequence; the first one that does not ends the
 * replay for that run (everything after it comes from malloc, the blocks
 * already handed out stay valid), and the next run is recorded again.
 *
 * Allocations outside begin/end, and any that do not fit the region, come
 * from malloc; free takes any of them. Thread-safe. Nothing here knows
 * about ONNX Runtime: isnet.c wraps it in an OrtAllocator.
 *
 * Hand-written because no general allocator plans ahead: glibc, jemalloc,
 * tcmalloc and ORT's own arena each place a block when it is asked for, so
 * the same run leaves them fragmented to 0.69-0.83 GB peak RSS where a
 * placement that knows every block's lifetime fits in the 268 MB the graph
 * has alive at once (docs/local-backends.md). */
#ifndef IG_BACKENDS_LOCAL_RUNPLAN_H
#define IG_BACKENDS_LOCAL_RUNPLAN_H

#include <stddef.h>

struct runplan;

struct runplan_stats {
    int replaying;       /* the next run is served from a plan */
    size_t plan_bytes;   /* the plan's extent: the most bytes alive at once, or a little more */
    size_t touched;      /* bytes of the region touched so far and not handed back */
    size_t recorded;     /* allocations in the recorded run */
    size_t replays;      /* runs served entirely from the plan */
    size_t divergences;  /* runs whose allocations left the recorded sequence */
    size_t outside;      /* allocations a run took from malloc (region full or diverged) */
};

/* Reserves region bytes of address space (no memory until touched); NULL
 * when it cannot be mapped. */
struct runplan *runplan_new(size_t region);
void runplan_destroy(struct runplan *p);
/* 64-byte aligned; NULL only when malloc fails. */
void *runplan_alloc(struct runplan *p, size_t size);
void runplan_free(struct runplan *p, void *ptr);
/* Brackets one run. */
void runplan_begin(struct runplan *p);
void runplan_end(struct runplan *p);
/* The workload changed (another model): the next run is recorded. */
void runplan_forget(struct runplan *p);
void runplan_get_stats(struct runplan *p, struct runplan_stats *out);

#endif
