/* SPDX-License-Identifier: MIT */
/* validate_fixtures.h -- pairs of real photos and degraded copies for the
 * metric tests, and the bridge to the Python peers that give the expected
 * values.
 *
 * The degradations are the ones the reference tables use: JPEG q30 and q85
 * (through img_encode), a Gaussian blur, a 4x Lanczos down-and-up, a hue
 * rotation of 54 degrees in LCh (both through libvips). Expected values
 * are computed at test time by Debian's /usr/bin/python3 (scikit-image,
 * Pillow, scipy); a missing module fails the test, it never skips. */
#ifndef IG_TESTS_VALIDATE_FIXTURES_H
#define IG_TESTS_VALIDATE_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "testutil.h"
#include "core/alloc.h"
#include "image/image.h"
#include "validate/metric.h"

enum vf_kind { VF_JPEG85, VF_JPEG30, VF_BLUR, VF_RESIZE, VF_HUE, VF_KINDS };

static const char *const vf_kind_name[VF_KINDS] = {"jpeg-q85", "jpeg-q30", "blur-s3",
                                                  "lanczos-4x", "hue-54"};

static inline struct img *
vf_decode(const void *buf, size_t len)
{
    struct ig_error e = {0};
    assert_int_equal(img_init(&e), 0);
    struct img *im = img_decode(buf, len, NULL, &e);
    if (!im)
        fail_msg("decode: %s [%s]", e.message, e.code);
    return im;
}

static inline struct img *
vf_photo(const char *name)
{
    size_t len;
    char *bytes = tu_read(tu_photo(name), &len);
    struct img *im = vf_decode(bytes, len);
    ig_free(bytes);
    return im;
}

static inline struct img *
vf_from_vips(VipsImage *v)
{
    size_t size;
    void *mem = vips_image_write_to_memory(v, &size);
    assert_non_null(mem);
    struct img *im = img_new(vips_image_get_width(v), vips_image_get_height(v));
    assert_non_null(im);
    assert_int_equal(size, (size_t)im->width * (size_t)im->height * 4);
    memcpy(im->rgba, mem, size);
    g_free(mem);
    return im;
}

static inline struct img *
vf_reencode(const struct img *im, int quality)
{
    struct ig_buf out = {0};
    struct ig_error e = {0};
    assert_int_equal(img_encode(im, IMG_FMT_JPEG, quality, NULL, &out, &e), 0);
    struct img *r = vf_decode(out.data, out.len);
    ig_buf_free(&out);
    return r;
}

static inline struct img *
vf_variant(const struct img *ref, enum vf_kind kind)
{
    struct ig_error e = {0};
    if (kind == VF_JPEG85 || kind == VF_JPEG30)
        return vf_reencode(ref, kind == VF_JPEG85 ? 85 : 30);
    if (kind == VF_RESIZE) {
        struct img *s = img_resize(ref, ref->width / 4, ref->height / 4, "lanczos3", &e);
        assert_non_null(s);
        struct img *r = img_resize(s, ref->width, ref->height, "lanczos3", &e);
        assert_non_null(r);
        img_free(s);
        return r;
    }
    VipsImage *in = vips_image_new_from_memory(ref->rgba, (size_t)ref->width * ref->height * 4,
                                               ref->width, ref->height, 4, VIPS_FORMAT_UCHAR);
    assert_non_null(in);
    VipsImage *t[6] = {0};
    struct img *r;
    if (kind == VF_BLUR) {
        assert_int_equal(vips_gaussblur(in, &t[0], 3.0, "precision", VIPS_PRECISION_FLOAT, NULL),
                         0);
        assert_int_equal(vips_cast_uchar(t[0], &t[1], NULL), 0);
        r = vf_from_vips(t[1]);
    } else {
        double add[3] = {0, 0, 54}, mul[3] = {1, 1, 1};
        assert_int_equal(vips_extract_band(in, &t[0], 0, "n", 3, NULL), 0);
        assert_int_equal(vips_colourspace(t[0], &t[1], VIPS_INTERPRETATION_LCH, "source_space",
                                          VIPS_INTERPRETATION_sRGB, NULL),
                         0);
        assert_int_equal(vips_linear(t[1], &t[2], mul, add, 3, NULL), 0);
        assert_int_equal(vips_colourspace(t[2], &t[3], VIPS_INTERPRETATION_sRGB, NULL), 0);
        assert_int_equal(vips_cast_uchar(t[3], &t[4], NULL), 0);
        assert_int_equal(vips_bandjoin_const1(t[4], &t[5], 255, NULL), 0);
        r = vf_from_vips(t[5]);
    }
    for (int i = 0; i < 6; i++)
        if (t[i])
            g_object_unref(t[i]);
    g_object_unref(in);
    return r;
}

/* A centred crop, so the 2268x1512 photo gives a 1 MP square. */
static inline struct img *
vf_crop(const struct img *im, int x0, int y0, int w, int h)
{
    struct img *r = img_new(w, h);
    assert_non_null(r);
    for (int y = 0; y < h; y++)
        memcpy(r->rgba + (size_t)y * w * 4, im->rgba + ((size_t)(y0 + y) * im->width + x0) * 4,
               (size_t)w * 4);
    return r;
}

/* Writes im as a PNG temp file; returns a heap copy of its path. */
static inline char *
vf_png(const struct img *im)
{
    struct ig_buf out = {0};
    struct ig_error e = {0};
    assert_int_equal(img_encode(im, IMG_FMT_PNG, 0, NULL, &out, &e), 0);
    char *path = ig_strdup(tu_write_temp(".png", out.data, out.len));
    ig_buf_free(&out);
    return path;
}

/* Runs /usr/bin/python3 -c SCRIPT ARGS... and returns its stdout (heap).
 * Any failure, a missing module included, fails the test. */
static inline char *
vf_python(const char *script, const char *args)
{
    const char *spath = tu_write_temp(".py", script, strlen(script));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", spath, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct ig_buf out = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        assert_int_equal(ig_buf_append(&out, chunk, n), 0);
    int rc = pclose(p);
    remove(spath);
    if (rc != 0)
        fail_msg("python reference failed (exit %d): is python3-skimage installed? "
                 "run scripts/setup",
                 rc);
    assert_int_equal(ig_buf_append(&out, "", 1), 0);
    return ig_buf_steal(&out, &n);
}

/* Fails the nth allocation for n = 1, 2, ... until the metric makes fewer
 * than n: every failure must come back as -1 with out_of_memory. */
typedef int (*vf_metric_fn)(const struct img *a, const struct img *b, struct ig_error *e);

static inline void
vf_oom_walk(vf_metric_fn fn, const struct img *a, const struct img *b)
{
    ig_alloc_fail_at(0);
    for (unsigned long nth = 1;; nth++) {
        struct ig_error e = {0};
        ig_alloc_fail_at(nth);
        int rc = fn(a, b, &e);
        unsigned long made = ig_alloc_fail_at(0);
        if (rc == 0 && made < nth)
            break;
        assert_int_equal(rc, -1);
        assert_string_equal(e.code, "out_of_memory");
        assert_true(nth < 100);
    }
}

/* An RGBA image of w x h filled by f(x, y, px). */
static inline struct img *
vf_synth(int w, int h, void (*f)(int x, int y, uint8_t px[4]))
{
    struct img *im = img_new(w, h);
    assert_non_null(im);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            f(x, y, im->rgba + ((size_t)y * w + x) * 4);
    return im;
}

#endif
