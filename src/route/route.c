/* SPDX-License-Identifier: MIT */
/* route.c -- pricing, licence policy, rung fitting, planning and backoff. */
#include "route/route.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

double
route_price(const struct ig_contract *c, int width, int height, const char *quality, int n)
{
    if (n < 1)
        n = 1;
    double mp = (double)width * height / 1e6;
    switch (c->price.model) {
    case IG_PRICE_FREE:
        return 0;
    case IG_PRICE_PER_MEGAPIXEL:
        /* Vendors bill at least one megapixel and round up. */
        return c->price.usd * (mp > 1 ? ceil(mp) : 1) * n;
    case IG_PRICE_PER_CREDIT:
        return c->price.usd * c->price.credits_per_image * n;
    case IG_PRICE_PER_IMAGE:
        break;
    }
    /* A table row matches when each of its columns is absent or equal; the
     * most specific match wins; a job with no quality takes the dearest
     * match, since a reservation must not undershoot. */
    char size[32];
    snprintf(size, sizeof size, "%dx%d", width, height);
    double best = -1;
    int best_spec = -1;
    for (size_t i = 0; i < c->price.n_rows; i++) {
        const struct ig_price_row *r = &c->price.rows[i];
        if (r->size && strcmp(r->size, size) != 0)
            continue;
        if (r->quality && quality && strcmp(r->quality, quality) != 0)
            continue;
        int spec = (r->size != NULL) * 2 + (r->quality && quality);
        if (spec > best_spec || (spec == best_spec && r->usd > best)) {
            best = r->usd;
            best_spec = spec;
        }
    }
    return (best >= 0 ? best : c->price.usd) * n;
}

int
route_license_allows(const struct ig_tenant_cfg *t, const struct ig_contract *c, char *why,
                     size_t why_size)
{
    if (!t)
        return 1;
    unsigned f = c->license.flags;
    const char *id = c->license.id ? c->license.id : "unknown";
    const char *rule = NULL;
    if (t->license_policy.require_commercial && !(f & IG_LIC_COMMERCIAL))
        rule = "does not allow commercial use; tenant policy requires it";
    else if (t->license_policy.deny_copyleft && (f & IG_LIC_COPYLEFT))
        rule = "is copyleft; tenant policy denies copyleft";
    else if (t->license_policy.deny_noncommercial && (f & IG_LIC_NONCOMMERCIAL))
        rule = "is non-commercial; tenant policy denies non-commercial licences";
    else if (t->license_policy.deny_attribution && (f & IG_LIC_ATTRIBUTION))
        rule = "requires attribution; tenant policy denies it";
    if (!rule)
        return 1;
    snprintf(why, why_size, "licence %s %s", id, rule);
    return 0;
}

static int
tenant_allows_backend(const struct ig_tenant_cfg *t, const char *name)
{
    if (!t || t->n_allowed == 0)
        return 1;
    for (size_t i = 0; i < t->n_allowed; i++)
        if (strcmp(t->allowed_backends[i], name) == 0)
            return 1;
    return 0;
}

int
route_rung_fits(const struct ig_backend_cfg *b, const struct ig_tenant_cfg *t,
                const struct route_need *need, char *why, size_t why_size)
{
    const struct ig_contract *c = &b->contract;
    if (!(c->classes & IG_CLASS_BIT(need->cls))) {
        snprintf(why, why_size, "does not serve %s", ig_class_name(need->cls));
        return 0;
    }
    if (!tenant_allows_backend(t, b->name)) {
        snprintf(why, why_size, "not allowed for tenant %s", t->name);
        return 0;
    }
    if (!route_license_allows(t, c, why, why_size))
        return 0;
    if (need->wants_mask && !(c->caps & IG_CAP_MASK)) {
        snprintf(why, why_size, "takes no mask");
        return 0;
    }
    if (need->wants_transparency && !(c->caps & IG_CAP_TRANSPARENCY)) {
        snprintf(why, why_size, "cannot produce transparency");
        return 0;
    }
    if (need->n_references > 0 && !(c->caps & IG_CAP_REFERENCE_IMAGES)) {
        snprintf(why, why_size, "takes no reference images");
        return 0;
    }
    if (need->cls == IG_CLASS_UPSCALE && need->scale > 0) {
        int ok = 0;
        for (size_t i = 0; i < c->n_scales; i++)
            ok |= c->scales[i] == need->scale;
        if (!ok) {
            snprintf(why, why_size, "has no x%d scale", need->scale);
            return 0;
        }
    }
    long limit = c->max_pixels;
    if (need->input_pixels && limit &&
        (need->cls == IG_CLASS_UPSCALE || need->cls == IG_CLASS_REMOVE_BACKGROUND) &&
        need->input_pixels > limit) {
        snprintf(why, why_size, "input of %ld pixels is over its limit of %ld", need->input_pixels,
                 limit);
        return 0;
    }
    if (need->cls == IG_CLASS_UPSCALE && need->input_pixels && c->max_output_pixels) {
        long s = need->scale > 0 ? need->scale : c->n_scales ? c->scales[0] : 2;
        if (need->input_pixels > c->max_output_pixels / (s * s)) {
            snprintf(why, why_size, "x%ld of %ld pixels is over its output limit of %ld pixels",
                     s, need->input_pixels, c->max_output_pixels);
            return 0;
        }
    }
    /* Generated sizes are snapped by the prompt compiler; only a size that
     * no snapping can reach (beyond the contract's largest side) refuses. */
    if ((need->cls == IG_CLASS_GENERATE || need->cls == IG_CLASS_EDIT) && need->width > 0 &&
        c->max_side && (need->width > c->max_side * 2 || need->height > c->max_side * 2)) {
        snprintf(why, why_size, "cannot produce %dx%d (max side %d)", need->width, need->height,
                 c->max_side);
        return 0;
    }
    return 1;
}

int
route_plan(const struct ig_config *cfg, const struct ig_tenant_cfg *tenant,
           const char *ladder_name, const struct route_need *need,
           struct route_candidate *out, size_t max, struct ig_error *err)
{
    if (need->backend) {
        const struct ig_backend_cfg *b = ig_config_backend(cfg, need->backend);
        if (b) {
            if (max < 1)
                return 0;
            memset(out, 0, sizeof *out);
            out->backend = b;
            out->usable = route_rung_fits(b, tenant, need, out->why, sizeof out->why);
            return 1;
        }
        /* Not a backend: maybe a ladder's name (OpenAI's `model` names either). */
        ladder_name = need->backend;
    }
    const struct ig_ladder_cfg *l = NULL;
    if (ladder_name) {
        l = ig_config_ladder_named(cfg, ladder_name);
        if (!l)
            return ig_error_set(err, 400, "unknown_ladder", "no backend or ladder named '%s'",
                                ladder_name);
        if (l->cls != need->cls)
            return ig_error_set(err, 400, "ladder_class_mismatch",
                                "ladder '%s' is for %s jobs, not %s", l->name,
                                ig_class_name(l->cls), ig_class_name(need->cls));
    } else {
        l = ig_config_ladder(cfg, need->cls, tenant ? tenant->name : NULL);
        if (!l)
            return ig_error_set(err, 400, "no_ladder", "no ladder serves %s jobs",
                                ig_class_name(need->cls));
    }
    size_t n = 0;
    for (size_t i = 0; i < l->n_rungs && n < max; i++, n++) {
        memset(&out[n], 0, sizeof out[n]);
        out[n].rung = &l->rungs[i];
        out[n].backend = ig_config_backend(cfg, l->rungs[i].backend);
        out[n].usable = out[n].backend &&
                        route_rung_fits(out[n].backend, tenant, need, out[n].why,
                                        sizeof out[n].why);
    }
    return (int)n;
}

static uint64_t
next_random(uint64_t *s)
{
    /* xorshift64*: enough for jitter, and seedable for tests. */
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

long
route_backoff_ms(int attempt, long base_ms, long cap_ms, long retry_after_ms, uint64_t *rng)
{
    if (attempt < 1)
        attempt = 1;
    long ceiling = base_ms;
    for (int i = 1; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    long delay = ceiling > 0 ? (long)(next_random(rng) % (uint64_t)(ceiling + 1)) : 0;
    return retry_after_ms > delay ? retry_after_ms : delay;
}

long
route_parse_retry_after(const char *value, long now)
{
    if (!value)
        return -1;
    while (*value == ' ')
        value++;
    char *end;
    double secs = strtod(value, &end);
    if (end != value) {
        while (*end == ' ')
            end++;
        if (*end || secs < 0 || !isfinite(secs) || secs > 86400.0 * 365)
            return -1;
        return (long)(secs * 1000.0 + 0.5);
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!rest || *rest)
        return -1;
    long at = (long)timegm(&tm);
    return at > now ? (at - now) * 1000 : 0;
}
