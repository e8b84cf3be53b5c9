/* SPDX-License-Identifier: MIT */
/* heatmap.c -- where two images differ, as a picture.
 *
 * The first image is drawn in dimmed grey and the local dissimilarity
 * (1 - SSIM on luma, from the same engine as vd_ssim) is laid over it from
 * transparent through yellow to red; 1 - SSIM of 0.25 or more is full red.
 * Output rows are written as the engine finishes them; the 5-pixel border
 * that no whole window covers takes its nearest scored neighbour. */
#include "validate/vd_internal.h"

#include <string.h>

#include "core/alloc.h"

#define RADIUS 5

struct paint {
    const struct img *a;
    struct img *out;
};

static void
paint_pixel(const uint8_t *src, float ssim, uint8_t *dst)
{
    float grey = 0.6f * (0.299f * vd_over_white(src[0], src[3]) +
                         0.587f * vd_over_white(src[1], src[3]) +
                         0.114f * vd_over_white(src[2], src[3])) + 40;
    float t = (1.0f - ssim) * 4;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    float colour[3] = {255, 220 * (1 - t), 0};
    for (int c = 0; c < 3; c++)
        dst[c] = (uint8_t)(grey * (1 - t) + colour[c] * t + 0.5f);
    dst[3] = 255;
}

static void
paint_sink(void *ctx, int y, const float *ssim, const float *cs, int n)
{
    struct paint *p = ctx;
    (void)cs;
    int w = p->a->width;
    const uint8_t *src = p->a->rgba + (size_t)y * (size_t)w * 4;
    uint8_t *dst = p->out->rgba + (size_t)y * (size_t)w * 4;
    for (int x = 0; x < w; x++) {
        int i = x < RADIUS ? 0 : x - RADIUS >= n ? n - 1 : x - RADIUS;
        paint_pixel(src + 4 * x, ssim[i], dst + 4 * x);
    }
}

struct img *
vd_heatmap(const struct img *a, const struct img *b, struct ig_error *err)
{
    if (vd_check_pair(a, b, 2 * RADIUS + 1, "heatmap", err) != 0)
        return NULL;
    struct img *out = img_new(a->width, a->height);
    if (!out) {
        vd_oom(err, "heatmap");
        return NULL;
    }
    struct paint p = {a, out};
    struct vd_rows rows;
    vd_rows_rgba(&rows, a, b, -1);
    if (vd_ssim_run(&rows, paint_sink, &p, err) != 0) {
        img_free(out);
        return NULL;
    }
    size_t stride = (size_t)a->width * 4;
    for (int y = 0; y < RADIUS; y++) {
        memcpy(out->rgba + (size_t)y * stride, out->rgba + (size_t)RADIUS * stride, stride);
        memcpy(out->rgba + (size_t)(a->height - 1 - y) * stride,
               out->rgba + (size_t)(a->height - 1 - RADIUS) * stride, stride);
    }
    return out;
}
