/* SPDX-License-Identifier: MIT */
/* runplan.c -- an allocator for runs that repeat the same allocations (see
 * runplan.h). */
#include "backends/local/runplan.h"
#include "core/alloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALIGN       64
/* The plan is made in O(n^2); a run with more allocations than this is not
 * recorded (it is still served by the best-fit allocator). */
#define MAX_RECORDS 8192

struct rec {            /* one allocation of the recorded run */
    size_t size;        /* rounded to ALIGN */
    size_t off;         /* in the region: where it was (recording), where it goes (plan) */
    size_t t0, t1;      /* event numbers of its allocation and its free */
};

struct live {           /* a region block handed out and not yet freed */
    size_t off, size;
    size_t rec;         /* its record, or SIZE_MAX */
};

struct span {
    size_t off, size;
};

struct event {          /* the recorded run as a sequence: allocation or free of a record */
    size_t rec;
    int alloc;
};

struct runplan {
    pthread_mutex_t mu;
    char *base;
    size_t region;
    size_t top;                 /* high-water mark of touched bytes */
    int in_run;

    /* Best-fit allocator over the region (when not replaying). */
    struct span *free;          /* sorted by offset, coalesced; [top, region) is implicit */
    size_t n_free, free_cap;

    struct live *live;
    size_t n_live, live_cap;

    /* Recording. */
    int recording;              /* this run is recorded */
    struct rec *rec;
    size_t n_rec, rec_cap;
    size_t t;                   /* event counter */

    /* Replay. */
    int replaying;
    int diverged;               /* this run left the plan */
    struct event *ev;
    size_t n_ev, ev_cap, pos;
    size_t plan_bytes;

    size_t replays, divergences, outside;
};

static size_t
round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

struct runplan *
runplan_new(size_t region)
{
    region = round_up(region, (size_t)sysconf(_SC_PAGESIZE));
    /* Address space only: pages are allocated when first touched. */
    void *base = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    struct runplan *p = ig_calloc(1, sizeof *p);
    if (!p) {
        munmap(base, region);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->base = base;
    p->region = region;
    return p;
}

void
runplan_destroy(struct runplan *p)
{
    if (!p)
        return;
    munmap(p->base, p->region);
    ig_free(p->free);
    ig_free(p->live);
    ig_free(p->rec);
    ig_free(p->ev);
    pthread_mutex_destroy(&p->mu);
    ig_free(p);
}

/* ---- Blocks from malloc --------------------------------------------------- */

/* ALIGN-aligned, with the pointer malloc gave just below it. */
static void *
outside_alloc(size_t size)
{
    char *raw = ig_malloc(size + ALIGN + sizeof(void *));
    if (!raw)
        return NULL;
    uintptr_t a = round_up((uintptr_t)raw + sizeof(void *), ALIGN);
    ((void **)a)[-1] = raw;
    return (void *)a;
}

static void
outside_free(void *ptr)
{
    ig_free(((void **)ptr)[-1]);
}

/* ---- Best-fit over the region ---------------------------------------------- */

/* Offset of a free span of size bytes, or SIZE_MAX when the region is full. */
static size_t
fit_take(struct runplan *p, size_t size)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < p->n_free; i++)
        if (p->free[i].size >= size && (best == SIZE_MAX || p->free[i].size < p->free[best].size))
            best = i;
    if (best != SIZE_MAX) {
        size_t off = p->free[best].off;
        p->free[best].off += size;
        p->free[best].size -= size;
        if (p->free[best].size == 0) {
            memmove(p->free + best, p->free + best + 1, (p->n_free - best - 1) * sizeof *p->free);
            p->n_free--;
        }
        return off;
    }
    /* Grow at the end: a free span that ends there is used first. */
    size_t end = p->n_free ? p->free[p->n_free - 1].off + p->free[p->n_free - 1].size : 0;
    size_t off = p->n_free && end == p->top ? p->free[p->n_free - 1].off : p->top;
    if (off + size > p->region)
        return SIZE_MAX;
    if (p->n_free && end == p->top)
        p->n_free--;
    p->top = off + size;
    return off;
}

/* Returns [off, off + size) to the free list; -1 when the list cannot grow
 * (the bytes are then lost to the allocator until the next plan). */
static int
fit_give(struct runplan *p, size_t off, size_t size)
{
    size_t i = 0;
    while (i < p->n_free && p->free[i].off < off)
        i++;
    int left = i > 0 && p->free[i - 1].off + p->free[i - 1].size == off;
    int right = i < p->n_free && off + size == p->free[i].off;
    if (left && right) {
        p->free[i - 1].size += size + p->free[i].size;
        memmove(p->free + i, p->free + i + 1, (p->n_free - i - 1) * sizeof *p->free);
        p->n_free--;
    } else if (left) {
        p->free[i - 1].size += size;
    } else if (right) {
        p->free[i].off = off;
        p->free[i].size += size;
    } else {
        if (ig_grow((void **)&p->free, &p->free_cap, p->n_free + 1, sizeof *p->free) != 0)
            return -1;
        memmove(p->free + i + 1, p->free + i, (p->n_free - i) * sizeof *p->free);
        p->free[i] = (struct span){off, size};
        p->n_free++;
    }
    return 0;
}

/* The free list is the region minus the live blocks (after a replay, whose
 * blocks were placed by the plan). */
static void
fit_rebuild(struct runplan *p)
{
    p->n_free = 0;
    /* Live blocks by offset: few, so insertion order is fine. */
    for (size_t i = 1; i < p->n_live; i++)
        for (size_t j = i; j > 0 && p->live[j - 1].off > p->live[j].off; j--) {
            struct live x = p->live[j];
            p->live[j] = p->live[j - 1];
            p->live[j - 1] = x;
        }
    size_t at = 0;
    for (size_t i = 0; i < p->n_live; i++) {
        if (p->live[i].off > at && fit_give(p, at, p->live[i].off - at) != 0)
            break;
        at = p->live[i].off + p->live[i].size > at ? p->live[i].off + p->live[i].size : at;
    }
    if (at < p->top)
        (void)fit_give(p, at, p->top - at);
}

/* ---- The plan -------------------------------------------------------------- */

static int
by_size_desc(const void *a, const void *b)
{
    const struct rec *x = *(const struct rec *const *)a, *y = *(const struct rec *const *)b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}

static int
by_off(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Places the recorded blocks, largest first, each in the tightest gap left
 * by the blocks already placed that are alive at the same time. Returns the
 * extent, or 0 when out of memory. */
static size_t
plan_offsets(struct runplan *p)
{
    size_t n = p->n_rec, extent = 0;
    struct rec **order = ig_malloc((n ? n : 1) * sizeof *order);
    struct span *busy = ig_malloc((n ? n : 1) * sizeof *busy);
    if (!order || !busy) {
        ig_free(order);
        ig_free(busy);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &p->rec[i];
    qsort(order, n, sizeof *order, by_size_desc);
    for (size_t i = 0; i < n; i++) {
        struct rec *r = order[i];
        size_t nb = 0;
        for (size_t j = 0; j < i; j++)
            if (order[j]->t0 < r->t1 && r->t0 < order[j]->t1)
                busy[nb++] = (struct span){order[j]->off, order[j]->size};
        qsort(busy, nb, sizeof *busy, by_off);
        size_t at = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
        for (size_t j = 0; j < nb; j++) {
            if (busy[j].off >= at + r->size && busy[j].off - at < best_gap) {
                best = at;
                best_gap = busy[j].off - at;
            }
            if (busy[j].off + busy[j].size > at)
                at = busy[j].off + busy[j].size;
        }
        r->off = best != SIZE_MAX ? best : at;
        if (r->off + r->size > extent)
            extent = r->off + r->size;
    }
    ig_free(order);
    ig_free(busy);
    return extent;
}

/* The recorded run as the sequence of its events, for replay to follow. */
static int
plan_events(struct runplan *p)
{
    if (ig_grow((void **)&p->ev, &p->ev_cap, p->t, sizeof *p->ev) != 0)
        return -1;
    for (size_t i = 0; i < p->n_rec; i++) {
        p->ev[p->rec[i].t0] = (struct event){i, 1};
        p->ev[p->rec[i].t1] = (struct event){i, 0};
    }
    p->n_ev = p->t;
    return 0;
}

/* ---- Allocation -------------------------------------------------------------- */

/* The run has left the recorded sequence: nothing more comes from the plan
 * in it, as the plan's offsets assume the recorded order from here on. */
static void
diverge(struct runplan *p)
{
    if (!p->diverged)
        p->divergences++;
    p->diverged = 1;
}

static int
live_add(struct runplan *p, size_t off, size_t size, size_t rec)
{
    if (ig_grow((void **)&p->live, &p->live_cap, p->n_live + 1, sizeof *p->live) != 0)
        return -1;
    p->live[p->n_live++] = (struct live){off, size, rec};
    return 0;
}

void *
runplan_alloc(struct runplan *p, size_t size)
{
    size_t sz = round_up(size ? size : 1, ALIGN);
    pthread_mutex_lock(&p->mu);
    void *out = NULL;
    if (!p->in_run)
        goto outside;
    if (p->replaying) {
        struct event *e = !p->diverged && p->pos < p->n_ev ? &p->ev[p->pos] : NULL;
        if (!e || !e->alloc || p->rec[e->rec].size != sz) {
            /* Not the allocation the plan expects. */
            diverge(p);
            goto outside_counted;
        }
        const struct rec *r = &p->rec[e->rec];
        if (live_add(p, r->off, r->size, e->rec) != 0)
            goto outside_counted;
        p->pos++;
        out = p->base + r->off;
        goto done;
    }
    if (p->recording && p->n_rec >= MAX_RECORDS)
        p->recording = 0;
    size_t off = fit_take(p, sz);
    if (off == SIZE_MAX) {
        p->recording = 0;   /* a run that did not fit is not a plan */
        goto outside_counted;
    }
    size_t rec = SIZE_MAX;
    if (p->recording) {
        if (ig_grow((void **)&p->rec, &p->rec_cap, p->n_rec + 1, sizeof *p->rec) != 0) {
            p->recording = 0;
        } else {
            rec = p->n_rec++;
            p->rec[rec] = (struct rec){sz, off, p->t++, SIZE_MAX};
        }
    }
    if (live_add(p, off, sz, rec) != 0) {
        if (rec != SIZE_MAX)
            p->n_rec--;
        p->recording = 0;
        (void)fit_give(p, off, sz);
        goto outside_counted;
    }
    out = p->base + off;
    goto done;
outside_counted:
    p->outside++;
outside:
    out = outside_alloc(sz);
done:
    pthread_mutex_unlock(&p->mu);
    return out;
}

void
runplan_free(struct runplan *p, void *ptr)
{
    if (!ptr)
        return;
    char *c = ptr;
    if (c < p->base || c >= p->base + p->region) {
        outside_free(ptr);
        return;
    }
    size_t off = (size_t)(c - p->base);
    pthread_mutex_lock(&p->mu);
    size_t i = 0;
    while (i < p->n_live && p->live[i].off != off)
        i++;
    if (i == p->n_live) {   /* not ours: a caller's bug; nothing safe to do */
        pthread_mutex_unlock(&p->mu);
        return;
    }
    struct live b = p->live[i];
    p->live[i] = p->live[--p->n_live];
    if (p->replaying) {
        /* Replayed blocks are not returned to anything: their place is
         * the plan's. A free out of the recorded order ends the replay. */
        const struct event *e = !p->diverged && p->pos < p->n_ev ? &p->ev[p->pos] : NULL;
        if (e && !e->alloc && e->rec == b.rec) {
            p->pos++;
        } else {
            diverge(p);
        }
    } else {
        if (b.rec != SIZE_MAX && p->recording)
            p->rec[b.rec].t1 = p->t++;
        else if (p->recording)
            p->recording = 0;   /* freed a block the record does not know */
        if (fit_give(p, b.off, b.size) != 0)
            p->recording = 0;
    }
    pthread_mutex_unlock(&p->mu);
}

/* ---- Runs ------------------------------------------------------------------- */

void
runplan_begin(struct runplan *p)
{
    pthread_mutex_lock(&p->mu);
    p->in_run = 1;
    p->diverged = 0;
    p->pos = 0;
    if (!p->replaying) {
        /* Only a run that starts with the region empty can be replayed. */
        p->recording = p->n_live == 0;
        p->n_rec = 0;
        p->t = 0;
    }
    pthread_mutex_unlock(&p->mu);
}

void
runplan_end(struct runplan *p)
{
    pthread_mutex_lock(&p->mu);
    p->in_run = 0;
    if (p->replaying) {
        if (!p->diverged && p->n_live == 0 && p->pos == p->n_ev) {
            p->replays++;
        } else {
            /* Back to best-fit around whatever is still alive; the next
             * run is recorded. */
            diverge(p);
            p->replaying = 0;
            fit_rebuild(p);
        }
    } else if (p->recording && p->n_live == 0 && p->n_rec > 0) {
        size_t extent = plan_offsets(p);
        if (extent > 0 && extent <= p->region && plan_events(p) == 0) {
            p->replaying = 1;
            p->plan_bytes = extent;
            /* The best-fit run touched more than the plan needs: hand the
             * rest back. */
            size_t keep = round_up(extent, (size_t)sysconf(_SC_PAGESIZE));
            if (p->top > keep)
                madvise(p->base + keep, p->top - keep, MADV_DONTNEED);
            p->top = keep;
            p->n_free = 0;
        }
    }
    p->recording = 0;
    pthread_mutex_unlock(&p->mu);
}

void
runplan_forget(struct runplan *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->replaying) {
        p->replaying = 0;
        fit_rebuild(p);
    }
    pthread_mutex_unlock(&p->mu);
}

void
runplan_get_stats(struct runplan *p, struct runplan_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = (struct runplan_stats){.replaying = p->replaying, .plan_bytes = p->plan_bytes,
                                  .touched = p->top, .recorded = p->replaying ? p->n_rec : 0,
                                  .replays = p->replays, .divergences = p->divergences,
                                  .outside = p->outside};
    pthread_mutex_unlock(&p->mu);
}
