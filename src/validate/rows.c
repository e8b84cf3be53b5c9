/* SPDX-License-Identifier: MIT */
/* rows.c -- the pieces every metric unit shares: the checks on a pair of
 * images, and row sources that turn RGBA or stored planes into float rows.
 *
 * Rows are produced on demand so a metric holds a window of rows, not a
 * converted copy of each image. */
#include "validate/vd_internal.h"

#include <string.h>

int
vd_check_pair(const struct img *a, const struct img *b, int min_side, const char *metric,
              struct ig_error *err)
{
    if (!a || !b || !a->rgba || !b->rgba)
        return ig_error_set(err, 400, "bad_image", "%s: an image is missing", metric);
    if (a->width != b->width || a->height != b->height)
        return ig_error_set(err, 400, "size_mismatch",
                            "%s: the images differ in size (%dx%d vs %dx%d); resize one first",
                            metric, a->width, a->height, b->width, b->height);
    if (a->width < min_side || a->height < min_side)
        return ig_error_set(err, 400, "image_too_small",
                            "%s needs at least %dx%d pixels; the images are %dx%d", metric,
                            min_side, min_side, a->width, a->height);
    return 0;
}

int
vd_oom(struct ig_error *err, const char *metric)
{
    return ig_error_set(err, 500, "out_of_memory", "%s: out of memory", metric);
}

static void
get_rgba(const struct vd_rows *r, int y, float *a, float *b)
{
    size_t off = (size_t)y * (size_t)r->width * 4;
    if (r->channel < 0) {
        vd_k_luma(r->ia->rgba + off, a, r->width);
        vd_k_luma(r->ib->rgba + off, b, r->width);
    } else {
        vd_k_channel(r->ia->rgba + off, r->channel, a, r->width);
        vd_k_channel(r->ib->rgba + off, r->channel, b, r->width);
    }
}

static void
get_planes(const struct vd_rows *r, int y, float *a, float *b)
{
    size_t off = (size_t)y * (size_t)r->width;
    memcpy(a, r->pa + off, (size_t)r->width * sizeof *a);
    memcpy(b, r->pb + off, (size_t)r->width * sizeof *b);
}

void
vd_rows_rgba(struct vd_rows *r, const struct img *a, const struct img *b, int channel)
{
    memset(r, 0, sizeof *r);
    r->width = a->width;
    r->height = a->height;
    r->get = get_rgba;
    r->ia = a;
    r->ib = b;
    r->channel = channel;
}

void
vd_rows_planes(struct vd_rows *r, const float *a, const float *b, int width, int height)
{
    memset(r, 0, sizeof *r);
    r->width = width;
    r->height = height;
    r->get = get_planes;
    r->pa = a;
    r->pb = b;
}
