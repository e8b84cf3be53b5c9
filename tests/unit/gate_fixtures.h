/* SPDX-License-Identifier: MIT */
/* gate_fixtures.h -- pictures for the validation gate's tests, made from the
 * real photos in .deps/photos: crops, blank and clipped frames, grey noise,
 * and a task around an output.
 *
 * Failing images are made the way real failures look (a black safety
 * frame, a diverged sampler's noise), and passing ones are untouched
 * photos, so a check that passes both or fails both is caught. */
#ifndef IG_TESTS_GATE_FIXTURES_H
#define IG_TESTS_GATE_FIXTURES_H

#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "core/alloc.h"
#include "image/image.h"
#include "validate/gate.h"

/* A photo decoded to RGBA, no limits. */
static inline struct img *
gf_photo(const char *name)
{
    size_t len;
    char *bytes = tu_read(tu_photo(name), &len);
    struct ig_error err = {0};
    struct img *im = img_decode(bytes, len, NULL, &err);
    ig_free(bytes);
    if (!im)
        fail_msg("cannot decode %s: %s", name, err.message);
    return im;
}

static inline struct img *
gf_crop(const struct img *src, int x0, int y0, int w, int h)
{
    assert_true(x0 + w <= src->width && y0 + h <= src->height);
    struct img *im = img_new(w, h);
    assert_non_null(im);
    for (int y = 0; y < h; y++)
        memcpy(im->rgba + (size_t)y * w * 4, src->rgba + ((size_t)(y0 + y) * src->width + x0) * 4,
               (size_t)w * 4);
    im->info = src->info;
    im->info.width = w;
    im->info.height = h;
    return im;
}

/* A w x h crop of a photo, from its top left corner plus (x0, y0). */
static inline struct img *
gf_photo_crop(const char *name, int x0, int y0, int w, int h)
{
    struct img *full = gf_photo(name);
    struct img *im = gf_crop(full, x0, y0, w, h);
    img_free(full);
    return im;
}

static inline struct img *
gf_fill(int w, int h, uint8_t r, uint8_t g, uint8_t b)
{
    struct img *im = img_new(w, h);
    assert_non_null(im);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        im->rgba[4 * i] = r;
        im->rgba[4 * i + 1] = g;
        im->rgba[4 * i + 2] = b;
        im->rgba[4 * i + 3] = 255;
    }
    im->info.format = IMG_FMT_PNG;
    im->info.width = w;
    im->info.height = h;
    return im;
}

/* Deterministic xorshift, so that a failure reproduces. */
static inline uint32_t
gf_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Approximately Gaussian (sum of four uniforms) noise around mean. */
static inline double
gf_gauss(uint32_t *s)
{
    double v = 0;
    for (int i = 0; i < 4; i++)
        v += (gf_rand(s) & 0xffff) / 65535.0;
    return (v - 2.0) * 1.732;
}

static inline uint8_t
gf_clamp(double v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)(v + 0.5);
}

/* Adds noise of stddev sigma to every channel (mono: the same to all). */
static inline void
gf_add_noise(struct img *im, double sigma, int mono, uint32_t seed)
{
    uint32_t s = seed ? seed : 1;
    for (size_t i = 0; i < (size_t)im->width * im->height; i++) {
        double m = sigma * gf_gauss(&s);
        for (int c = 0; c < 3; c++) {
            double v = mono ? m : sigma * gf_gauss(&s);
            im->rgba[4 * i + c] = gf_clamp(im->rgba[4 * i + c] + v);
        }
    }
}

static inline void
gf_task(struct vd_task *t, enum ig_class cls, const struct img *output)
{
    memset(t, 0, sizeof *t);
    t->cls = cls;
    t->output = output;
    t->format = output ? output->info.format : IMG_FMT_UNKNOWN;
}

/* Runs one check that must run (not skip, not error) and returns its result. */
static inline struct vd_check
gf_run(vd_check_fn fn, const struct vd_task *t)
{
    struct vd_check c;
    struct ig_error err = {0};
    memset(&c, 0, sizeof c);
    int rc = fn(t, &c, &err);
    if (rc != 0)
        fail_msg("check returned %d: %s %s", rc, err.code, err.message);
    print_message("  %-14s score %10.4f bound %8.4f %s  %s\n", c.name, c.score, c.bound,
                  c.pass ? "pass" : "FAIL", c.note);
    return c;
}

#endif
