/* SPDX-License-Identifier: MIT */
/* limit.c -- token buckets, concurrency counts and breakers by name.
 *
 * The table is small (one entry per backend and per tenant), so a linear
 * array under one mutex is simpler and faster than a hash map at this size. */
#include "route/limit.h"
#include "core/alloc.h"
#include "route/limit_redis.h"

#include <stdio.h>
#include <string.h>

void
route_bucket_init(struct route_bucket *b, double per_minute, long now_ms)
{
    b->per_minute = per_minute;
    b->tokens = per_minute;
    b->last_ms = now_ms;
}

static void
bucket_refill(struct route_bucket *b, long now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->per_minute / 60000.0;
        if (b->tokens > b->per_minute)
            b->tokens = b->per_minute;
        b->last_ms = now_ms;
    }
}

static long
bucket_wait(const struct route_bucket *b, double n)
{
    double missing = n - b->tokens;
    return missing <= 0 ? 0 : (long)(missing * 60000.0 / b->per_minute + 0.999);
}

int
route_bucket_take(struct route_bucket *b, double n, long now_ms, long *wait_ms)
{
    bucket_refill(b, now_ms);
    if (b->tokens >= n) {
        b->tokens -= n;
        if (wait_ms)
            *wait_ms = 0;
        return 1;
    }
    if (wait_ms)
        *wait_ms = n > b->per_minute ? -1 : bucket_wait(b, n);
    return 0;
}

void
route_breaker_init(struct route_breaker *b, int threshold, long cooldown_ms)
{
    memset(b, 0, sizeof *b);
    b->threshold = threshold;
    b->cooldown_ms = cooldown_ms;
}

int
route_breaker_allow(struct route_breaker *b, long now_ms)
{
    switch (b->state) {
    case ROUTE_BREAKER_CLOSED:
        return 1;
    case ROUTE_BREAKER_OPEN:
        if (now_ms - b->opened_ms < b->cooldown_ms)
            return 0;
        b->state = ROUTE_BREAKER_HALF_OPEN;
        b->probe_in_flight = 0;
        /* The first caller after the cooldown is the probe. */
        __attribute__((fallthrough));
    case ROUTE_BREAKER_HALF_OPEN:
        if (b->probe_in_flight)
            return 0;
        b->probe_in_flight = 1;
        return 1;
    }
    return 0;
}

void
route_breaker_record(struct route_breaker *b, int success, long now_ms)
{
    if (success) {
        b->state = ROUTE_BREAKER_CLOSED;
        b->failures = 0;
        b->probe_in_flight = 0;
        return;
    }
    b->failures++;
    if (b->state == ROUTE_BREAKER_HALF_OPEN ||
        (b->threshold > 0 && b->failures >= b->threshold)) {
        b->state = ROUTE_BREAKER_OPEN;
        b->opened_ms = now_ms;
        b->probe_in_flight = 0;
    }
}

const char *
route_breaker_state_name(enum route_breaker_state s)
{
    return s == ROUTE_BREAKER_CLOSED ? "closed" : s == ROUTE_BREAKER_OPEN ? "open" : "half_open";
}

/* ---- Named table, in memory ------------------------------------------------ */

struct entry {
    char name[96];
    struct route_bucket requests, images;
    int has_requests, has_images;
    int in_flight;
    struct route_breaker breaker;
    int has_breaker;
};

struct route_limits {
    pthread_mutex_t mu;
    struct entry *items;
    size_t n, cap;
    struct route_limits_redis *redis;   /* set: every call goes to Redis instead */
};

struct route_limits *
route_limits_new_redis(const char *addr, const char *prefix, struct ig_error *err)
{
    struct route_limits *l = route_limits_new();
    if (!l) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    l->redis = route_limits_redis_connect(addr, prefix, err);
    if (!l->redis) {
        route_limits_free(l);
        return NULL;
    }
    return l;
}

struct route_limits *
route_limits_new(void)
{
    struct route_limits *l = ig_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void
route_limits_free(struct route_limits *l)
{
    if (!l)
        return;
    route_limits_redis_free(l->redis);
    pthread_mutex_destroy(&l->mu);
    ig_free(l->items);
    ig_free(l);
}

/* Called with the mutex held. NULL only when out of memory. */
static struct entry *
find(struct route_limits *l, const char *name, int create)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    if (!create)
        return NULL;
    void *items = l->items;
    if (ig_grow(&items, &l->cap, l->n + 1, sizeof *l->items) != 0)
        return NULL;
    l->items = items;
    struct entry *e = &l->items[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return e;
}

int
route_limits_admit(struct route_limits *l, const char *name, const struct route_limit_spec *s,
                   int n_images, const char *holder, long now_ms, long *wait_ms, char *why,
                   size_t why_size)
{
    if (l->redis)
        return route_limits_redis_admit(l->redis, name, s, n_images, holder, wait_ms, why,
                                        why_size);
    pthread_mutex_lock(&l->mu);
    struct entry *e = find(l, name, 1);
    int ok = 0;
    long wait = 0;
    if (!e) {
        snprintf(why, why_size, "%s: out of memory", name);
        goto out;
    }
    if (s->rpm > 0 && !e->has_requests) {
        route_bucket_init(&e->requests, s->rpm, now_ms);
        e->has_requests = 1;
    }
    if (s->ipm > 0 && !e->has_images) {
        route_bucket_init(&e->images, s->ipm, now_ms);
        e->has_images = 1;
    }
    if (s->concurrency > 0 && e->in_flight >= s->concurrency) {
        snprintf(why, why_size, "%s: %d requests in flight (limit %d)", name, e->in_flight,
                 s->concurrency);
        goto out;
    }
    /* Check both buckets before taking from either: all or none. */
    if (e->has_requests) {
        bucket_refill(&e->requests, now_ms);
        if (e->requests.tokens < 1) {
            wait = bucket_wait(&e->requests, 1);
            snprintf(why, why_size, "%s: over %d requests per minute", name, s->rpm);
            goto out;
        }
    }
    if (e->has_images) {
        bucket_refill(&e->images, now_ms);
        if (e->images.tokens < n_images) {
            wait = n_images > e->images.per_minute ? -1 : bucket_wait(&e->images, n_images);
            snprintf(why, why_size, "%s: over %d images per minute", name, s->ipm);
            goto out;
        }
    }
    if (e->has_requests)
        e->requests.tokens -= 1;
    if (e->has_images)
        e->images.tokens -= n_images;
    e->in_flight++;
    ok = 1;
out:
    pthread_mutex_unlock(&l->mu);
    if (wait_ms)
        *wait_ms = wait;
    return ok;
}

void
route_limits_release(struct route_limits *l, const char *name, const char *holder)
{
    if (l->redis) {
        route_limits_redis_release(l->redis, name, holder);
        return;
    }
    pthread_mutex_lock(&l->mu);
    struct entry *e = find(l, name, 0);
    if (e && e->in_flight > 0)
        e->in_flight--;
    pthread_mutex_unlock(&l->mu);
}

int
route_limits_breaker_allow(struct route_limits *l, const char *name,
                           const struct route_limit_spec *s, long now_ms)
{
    if (s->breaker_threshold <= 0)
        return 1;
    if (l->redis)
        return route_limits_redis_breaker_allow(l->redis, name, s);
    pthread_mutex_lock(&l->mu);
    struct entry *e = find(l, name, 1);
    int ok = 1;
    if (e) {
        if (!e->has_breaker) {
            route_breaker_init(&e->breaker, s->breaker_threshold, s->breaker_cooldown_ms);
            e->has_breaker = 1;
        }
        ok = route_breaker_allow(&e->breaker, now_ms);
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

void
route_limits_breaker_record(struct route_limits *l, const char *name, int success, long now_ms)
{
    if (l->redis) {
        route_limits_redis_breaker_record(l->redis, name, success);
        return;
    }
    pthread_mutex_lock(&l->mu);
    struct entry *e = find(l, name, 0);
    if (e && e->has_breaker)
        route_breaker_record(&e->breaker, success, now_ms);
    pthread_mutex_unlock(&l->mu);
}

enum route_breaker_state
route_limits_breaker_state(struct route_limits *l, const char *name)
{
    if (l->redis)
        return route_limits_redis_breaker_state(l->redis, name);
    pthread_mutex_lock(&l->mu);
    struct entry *e = find(l, name, 0);
    enum route_breaker_state s = e && e->has_breaker ? e->breaker.state : ROUTE_BREAKER_CLOSED;
    pthread_mutex_unlock(&l->mu);
    return s;
}

int
route_limits_in_flight(struct route_limits *l, const char *name)
{
    if (l->redis)
        return route_limits_redis_in_flight(l->redis, name);
    pthread_mutex_lock(&l->mu);
    struct entry *e = find(l, name, 0);
    int n = e ? e->in_flight : 0;
    pthread_mutex_unlock(&l->mu);
    return n;
}
