/* SPDX-License-Identifier: MIT */
/* sched.c -- worker threads over a min-heap of timed tasks. */
#include "route/sched.h"
#include "core/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

struct task {
    long due;
    unsigned long seq;        /* FIFO among tasks due at the same time */
    void (*fn)(void *);
    void *arg;
};

struct route_sched {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct task *heap;
    size_t n, cap;
    unsigned long seq;
    int stopping;
    int n_threads;
    pthread_t *threads;
};

long
route_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
before(const struct task *a, const struct task *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
heap_push(struct route_sched *s, struct task t)
{
    size_t i = s->n++;
    s->heap[i] = t;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&s->heap[i], &s->heap[p]))
            break;
        struct task tmp = s->heap[i];
        s->heap[i] = s->heap[p];
        s->heap[p] = tmp;
        i = p;
    }
}

static struct task
heap_pop(struct route_sched *s)
{
    struct task top = s->heap[0];
    s->heap[0] = s->heap[--s->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->n && before(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->n && before(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == i)
            break;
        struct task tmp = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = tmp;
        i = m;
    }
    return top;
}

static void *
worker(void *arg)
{
    struct route_sched *s = arg;
    pthread_setname_np(pthread_self(), "ig-worker");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->stopping && (s->n == 0 || s->heap[0].due > route_now_ms()))
            break;
        if (s->n == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        long wait = s->heap[0].due - route_now_ms();
        if (wait > 0) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += wait / 1000;
            until.tv_nsec += (wait % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &until);
            continue;
        }
        struct task t = heap_pop(s);
        pthread_mutex_unlock(&s->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

struct route_sched *
route_sched_new(int threads, struct ig_error *err)
{
    if (threads < 1)
        threads = 1;
    struct route_sched *s = ig_calloc(1, sizeof *s);
    if (!s || !(s->threads = ig_calloc((size_t)threads, sizeof *s->threads))) {
        ig_free(s);
        ig_error_set(err, 500, "out_of_memory", "out of memory starting workers");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&s->threads[i], NULL, worker, s) != 0) {
            s->n_threads = i;
            route_sched_free(s);
            ig_error_set(err, 500, "threads", "cannot start worker thread %d", i);
            return NULL;
        }
    }
    s->n_threads = threads;
    return s;
}

int
route_sched_post(struct route_sched *s, long delay_ms, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&s->mu);
    void *heap = s->heap;
    if (s->stopping || ig_grow(&heap, &s->cap, s->n + 1, sizeof *s->heap) != 0) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    s->heap = heap;
    heap_push(s, (struct task){route_now_ms() + (delay_ms > 0 ? delay_ms : 0), s->seq++, fn, arg});
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void
route_sched_free(struct route_sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    ig_free(s->heap);
    ig_free(s->threads);
    ig_free(s);
}
