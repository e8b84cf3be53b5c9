/* SPDX-License-Identifier: MIT */
/* sched.h -- the worker pool: run a function now or after a delay.
 *
 * Every step of a job (planning, validation, decoding, a retry after its
 * backoff) is a task here; adapters' I/O loops only post tasks and never run
 * CPU-heavy work themselves. Delayed tasks sit in a min-heap keyed by due
 * time, so a thousand jobs waiting out a Retry-After cost a heap entry each,
 * not a thread. */
#ifndef IG_ROUTE_SCHED_H
#define IG_ROUTE_SCHED_H

#include "core/error.h"

struct route_sched;

struct route_sched *route_sched_new(int threads, struct ig_error *err);
/* Runs fn(arg) on a worker after delay_ms (0 = as soon as one is free).
 * -1 only when out of memory or shutting down. */
int route_sched_post(struct route_sched *s, long delay_ms, void (*fn)(void *), void *arg);
/* Stops the workers after the tasks already due; later ones are dropped
 * (durable jobs are resumed from the store by the next process). */
void route_sched_free(struct route_sched *s);
/* Monotonic milliseconds, the clock the scheduler runs on. */
long route_now_ms(void);

#endif
