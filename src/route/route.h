/* SPDX-License-Identifier: MIT */
/* route.h -- the routing rules that do not depend on how an adapter talks:
 * what a job would cost on a backend, whether a tenant's licence policy
 * allows a backend, which rungs of a ladder can serve a job (and why the
 * others cannot), and when to try again.
 *
 * Rate limits, breakers and budgets are in their own headers (limit.h,
 * breaker.h, budget.h); this one holds the pure functions. */
#ifndef IG_ROUTE_ROUTE_H
#define IG_ROUTE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* What the router needs to know of a job to choose rungs. */
struct route_need {
    enum ig_class cls;
    int width, height;        /* requested output size; 0 = backend default */
    int n;                    /* images wanted */
    int scale;                /* upscale factor */
    const char *quality;      /* "low" | "medium" | "high" | NULL */
    int wants_seed;           /* the caller pinned a seed */
    int wants_negative;       /* a negative prompt was given */
    int wants_mask;
    int wants_transparency;
    int n_references;
    long input_pixels;        /* upscale / cutout / edit input */
    const char *backend;      /* the caller named one backend (OpenAI 'model') */
};

/* Price of n images of w x h on a contract, in USD (0 for free). */
double route_price(const struct ig_contract *c, int width, int height, const char *quality, int n);

/* Does the tenant's licence policy allow a backend? 1 yes; 0 no with a
 * reason ("licence MIT AND AGPL-3.0 is copyleft; tenant policy denies copyleft"). */
int route_license_allows(const struct ig_tenant_cfg *t, const struct ig_contract *c, char *why,
                         size_t why_size);

/* Can the backend serve the job at all? 1 yes; 0 no with a reason. Seed and
 * negative-prompt needs do not refuse a rung: the prompt compiler drops or
 * translates them and says so; a mask, transparency, size or scale the
 * contract lacks does. */
int route_rung_fits(const struct ig_backend_cfg *b, const struct ig_tenant_cfg *t,
                    const struct route_need *need, char *why, size_t why_size);

struct route_candidate {
    const struct ig_backend_cfg *backend;
    const struct ig_rung *rung;   /* NULL when the caller named the backend */
    int usable;                   /* 0: skipped, see why */
    char why[256];
};

/* The ladder for the job (the caller's named ladder, the tenant's own, or the
 * class default), each rung checked. Fills up to max candidates in ladder
 * order and returns how many; -1 with err when no ladder exists. */
int route_plan(const struct ig_config *cfg, const struct ig_tenant_cfg *tenant,
               const char *ladder_name, const struct route_need *need,
               struct route_candidate *out, size_t max, struct ig_error *err);

/* Delay before retry number `attempt` (1-based): exponential from base_ms,
 * capped at cap_ms, with full jitter drawn from *rng; never less than
 * retry_after_ms when the vendor sent one. */
long route_backoff_ms(int attempt, long base_ms, long cap_ms, long retry_after_ms, uint64_t *rng);

/* Parses a Retry-After value: delta seconds (fractions allowed) or an HTTP
 * date; now is the current Unix time. -1 when unparseable. */
long route_parse_retry_after(const char *value, long now);

#endif
