/* SPDX-License-Identifier: MIT */
/* limit_redis.h -- cluster-wide rate limits, concurrency slots and breakers
 * in Redis (used through route/limit.h, not directly). */
#ifndef IG_ROUTE_LIMIT_REDIS_H
#define IG_ROUTE_LIMIT_REDIS_H

#include "route/limit.h"

struct route_limits_redis;

struct route_limits_redis *route_limits_redis_connect(const char *addr, const char *prefix,
                                                      struct ig_error *err);
void route_limits_redis_free(struct route_limits_redis *r);
int route_limits_redis_admit(struct route_limits_redis *r, const char *name,
                             const struct route_limit_spec *s, int n_images, const char *holder,
                             long *wait_ms, char *why, size_t why_size);
void route_limits_redis_release(struct route_limits_redis *r, const char *name,
                                const char *holder);
int route_limits_redis_breaker_allow(struct route_limits_redis *r, const char *name,
                                     const struct route_limit_spec *s);
void route_limits_redis_breaker_record(struct route_limits_redis *r, const char *name,
                                       int success);
enum route_breaker_state route_limits_redis_breaker_state(struct route_limits_redis *r,
                                                          const char *name);
int route_limits_redis_in_flight(struct route_limits_redis *r, const char *name);

#endif
