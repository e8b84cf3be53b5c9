/* SPDX-License-Identifier: MIT */
/* edit.c -- edit: what was outside the mask is kept, what was inside it
 * really changed; without a mask, how much of the picture changed.
 *
 * Masks come in two conventions and both are read: a mask with any
 * transparency marks the region to edit by alpha 0 (OpenAI's, and the
 * gateway's API), an opaque mask marks it white (A1111, FLUX Fill). A mask
 * of another size is sampled at the output's. The kept region is scored
 * with luma SSIM over a weight map that leaves out a band of EDGE_PX around
 * the mask, where models blend their edit into the picture on purpose. A
 * pixel counts as changed when a channel moved by more than CHANGE_LEVELS:
 * above what JPEG q30 or a VAE round trip does to an untouched pixel in
 * most places. */
#include "validate/gate.h"
#include "validate/metric.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#define EDGE_PX 8
#define CHANGE_LEVELS 24

/* 1 where the mask says "edit", at the output's size. */
static uint8_t *
edit_region(const struct img *mask, int w, int h, struct ig_error *err)
{
    uint8_t *r = ig_malloc((size_t)w * h);
    if (!r) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    size_t mn = (size_t)mask->width * mask->height;
    int by_alpha = 0;
    for (size_t i = 0; i < mn && !by_alpha; i++)
        by_alpha = mask->rgba[4 * i + 3] < 255;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int mx = (int)((long)x * mask->width / w), my = (int)((long)y * mask->height / h);
            const uint8_t *p = mask->rgba + 4 * ((size_t)my * mask->width + mx);
            r[(size_t)y * w + x] =
                by_alpha ? p[3] == 0 : (299 * p[0] + 587 * p[1] + 114 * p[2]) >= 128000;
        }
    return r;
}

/* The output at the input's size (a copy when it already is). */
static struct img *
output_at_input(const struct vd_task *t, struct ig_error *err)
{
    if (t->output->width == t->input->width && t->output->height == t->input->height) {
        struct img *c = img_clone(t->output);
        if (!c)
            ig_error_set(err, 500, "out_of_memory", "out of memory");
        return c;
    }
    return img_resize(t->output, t->input->width, t->input->height, "lanczos3", err);
}

static int
changed(const uint8_t *a, const uint8_t *b)
{
    for (int c = 0; c < 3; c++)
        if (abs((int)a[c] - (int)b[c]) > CHANGE_LEVELS)
            return 1;
    return 0;
}

int
vd_check_preserve(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    /* SSIM's 11x11 window needs an input at least that big. */
    if (!t->input || !t->mask || t->input->width < 11 || t->input->height < 11)
        return VD_SKIP;
    int w = t->input->width, h = t->input->height;
    struct img *o = output_at_input(t, err);
    uint8_t *region = o ? edit_region(t->mask, w, h, err) : NULL;
    /* Integral image of the edit region: a kept pixel is weighed only when
     * no edit pixel lies within EDGE_PX of it. */
    uint32_t *sum = region ? ig_calloc((size_t)(w + 1) * (h + 1), sizeof *sum) : NULL;
    uint8_t *weight = sum ? ig_malloc((size_t)w * h) : NULL;
    if (!weight) {
        if (o && region)
            ig_error_set(err, 500, "out_of_memory", "out of memory");
        img_free(o);
        ig_free(region);
        ig_free(sum);
        return -1;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            sum[(size_t)(y + 1) * (w + 1) + x + 1] = region[(size_t)y * w + x] +
                                                    sum[(size_t)y * (w + 1) + x + 1] +
                                                    sum[(size_t)(y + 1) * (w + 1) + x] -
                                                    sum[(size_t)y * (w + 1) + x];
    size_t kept = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int x0 = x - EDGE_PX < 0 ? 0 : x - EDGE_PX, x1 = x + EDGE_PX + 1 > w ? w : x + EDGE_PX + 1;
            int y0 = y - EDGE_PX < 0 ? 0 : y - EDGE_PX, y1 = y + EDGE_PX + 1 > h ? h : y + EDGE_PX + 1;
            uint32_t s = sum[(size_t)y1 * (w + 1) + x1] - sum[(size_t)y0 * (w + 1) + x1] -
                         sum[(size_t)y1 * (w + 1) + x0] + sum[(size_t)y0 * (w + 1) + x0];
            weight[(size_t)y * w + x] = s == 0;
            kept += s == 0;
        }
    double bound = vd_bound(t, "preserve", 0.85), ssim = 1.0;
    int rc = kept ? vd_ssim(o, t->input, VD_SSIM_LUMA, weight, &ssim, err) : 0;
    img_free(o);
    ig_free(region);
    ig_free(sum);
    ig_free(weight);
    if (rc != 0)
        return -1;
    if (!kept)
        return vd_result(out, "preserve", 1.0, bound, 1, "the mask leaves nothing to keep");
    return vd_result(out, "preserve", ssim, bound, ssim >= bound,
                     "luma SSIM outside the mask (%d px band left out), %.1f%% of the picture",
                     EDGE_PX, 100.0 * kept / ((double)w * h));
}

int
vd_check_changed(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (!t->input)
        return VD_SKIP;
    int w = t->input->width, h = t->input->height;
    struct img *o = output_at_input(t, err);
    if (!o)
        return -1;
    uint8_t *region = t->mask ? edit_region(t->mask, w, h, err) : NULL;
    if (t->mask && !region) {
        img_free(o);
        return -1;
    }
    size_t n = (size_t)w * h, inside = 0, moved = 0;
    for (size_t i = 0; i < n; i++) {
        if (region && !region[i])
            continue;
        inside++;
        moved += changed(o->rgba + 4 * i, t->input->rgba + 4 * i);
    }
    img_free(o);
    ig_free(region);
    double share = inside ? (double)moved / inside : 0;
    if (!t->mask) {
        double bound = vd_bound(t, "changed_area", 1.0);
        return vd_result(out, "changed_area", share, bound, share <= bound,
                         "share of the picture changed by more than %d levels (no mask)",
                         CHANGE_LEVELS);
    }
    double bound = vd_bound(t, "changed", 0.10);
    if (!inside)
        return vd_result(out, "changed", 0, bound, 0, "the mask marks nothing to edit");
    return vd_result(out, "changed", share, bound, share >= bound,
                     "share of the masked region changed by more than %d levels", CHANGE_LEVELS);
}
