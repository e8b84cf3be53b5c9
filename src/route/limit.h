/* SPDX-License-Identifier: MIT */
/* limit.h -- rate limits, concurrency caps and circuit breakers, in memory.
 *
 * One gateway process keeps these in a table keyed by name ("backend:openai",
 * "tenant:acme"). Every call takes the current time from the caller, so tests
 * drive the clock and nothing here sleeps. Thread-safe. */
#ifndef IG_ROUTE_LIMIT_H
#define IG_ROUTE_LIMIT_H

#include <pthread.h>
#include <stddef.h>

#include "core/error.h"

/* Token bucket: per_minute tokens a minute, burst up to per_minute. */
struct route_bucket {
    double tokens;
    double per_minute;
    long   last_ms;
};

void route_bucket_init(struct route_bucket *b, double per_minute, long now_ms);
/* Takes n tokens: 1 when taken; 0 when not, with *wait_ms until they would be. */
int route_bucket_take(struct route_bucket *b, double n, long now_ms, long *wait_ms);

enum route_breaker_state { ROUTE_BREAKER_CLOSED, ROUTE_BREAKER_OPEN, ROUTE_BREAKER_HALF_OPEN };

struct route_breaker {
    enum route_breaker_state state;
    int  failures;            /* consecutive */
    int  threshold;           /* failures that open it */
    long cooldown_ms;         /* how long it stays open */
    long opened_ms;
    int  probe_in_flight;     /* half-open lets one request through */
};

void route_breaker_init(struct route_breaker *b, int threshold, long cooldown_ms);
/* 1 when a request may go; in half-open state only the first caller gets 1. */
int route_breaker_allow(struct route_breaker *b, long now_ms);
void route_breaker_record(struct route_breaker *b, int success, long now_ms);
const char *route_breaker_state_name(enum route_breaker_state s);

/* The named table: one bucket pair, a concurrency count and a breaker each.
 * In memory for one gateway; in Redis (limit_redis.c) when several share
 * the limits, each operation one atomic Lua script there. */
struct route_limits;

struct route_limits *route_limits_new(void);
/* addr: "HOST:PORT" of a Redis server; prefix namespaces the keys. */
struct route_limits *route_limits_new_redis(const char *addr, const char *prefix,
                                            struct ig_error *err);
void route_limits_free(struct route_limits *l);

struct route_limit_spec {
    int rpm, ipm, concurrency;     /* 0 = unlimited */
    int breaker_threshold;         /* 0 = no breaker */
    long breaker_cooldown_ms;
    long slot_ttl_ms;              /* 0: 10 minutes */
};

/* Admits one request of n images under `name` for `holder` (a job attempt):
 * takes a request token, n image tokens and a concurrency slot, all or none.
 * 1 admitted; 0 refused with *wait_ms (0 when only concurrency refused, -1
 * when never possible) and a reason in why; -1 when the limits cannot be
 * reached (a shared store down), with why. A slot held by a holder that
 * never releases it (its replica died) lapses after slot_ttl_ms. */
int route_limits_admit(struct route_limits *l, const char *name, const struct route_limit_spec *s,
                       int n_images, const char *holder, long now_ms, long *wait_ms, char *why,
                       size_t why_size);
void route_limits_release(struct route_limits *l, const char *name, const char *holder);
/* Breaker of `name` (created closed on first use with spec's settings). */
int route_limits_breaker_allow(struct route_limits *l, const char *name,
                               const struct route_limit_spec *s, long now_ms);
void route_limits_breaker_record(struct route_limits *l, const char *name, int success,
                                 long now_ms);
enum route_breaker_state route_limits_breaker_state(struct route_limits *l, const char *name);
int route_limits_in_flight(struct route_limits *l, const char *name);

#endif
