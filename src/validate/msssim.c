/* SPDX-License-Identifier: MIT */
/* msssim.c -- multi-scale SSIM (Wang, Simoncelli, Bovik 2003) on luma.
 *
 * Five scales with the paper's weights. Scale 1 runs the SSIM engine on
 * the RGBA pair directly; each further scale is a 2x2 average pool of the
 * one before (an odd last row or column is dropped, as a VALID pool does),
 * held as two small float planes, a third of one full-size plane in all.
 * The contrast-structure mean of scales 1-4 and the full SSIM mean of
 * scale 5 are combined as a weighted product; a negative term counts as 0
 * so the power stays defined. */
#include "validate/vd_internal.h"

#include <math.h>

#include "core/alloc.h"

#define SCALES 5

static const double beta[SCALES] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};

struct means {
    double ssim, cs;
    long n;
};

static void
means_sink(void *ctx, int y, const float *ssim, const float *cs, int n)
{
    struct means *m = ctx;
    (void)y;
    double s = 0, c = 0;
    for (int x = 0; x < n; x++) {
        s += ssim[x];
        c += cs[x];
    }
    m->ssim += s;
    m->cs += c;
    m->n += n;
}

/* 2x2 average of the luma of an RGBA image into a w/2 x h/2 plane. */
static int
pool_rgba(const struct img *im, float *out, struct ig_error *err)
{
    int w = im->width, ow = w / 2, oh = im->height / 2;
    float *rows = ig_malloc(2 * (size_t)w * sizeof *rows);
    if (!rows)
        return vd_oom(err, "msssim");
    for (int y = 0; y < oh; y++) {
        vd_k_luma(im->rgba + (size_t)(2 * y) * (size_t)w * 4, rows, w);
        vd_k_luma(im->rgba + (size_t)(2 * y + 1) * (size_t)w * 4, rows + w, w);
        float *o = out + (size_t)y * (size_t)ow;
        for (int x = 0; x < ow; x++)
            o[x] = 0.25f * (rows[2 * x] + rows[2 * x + 1] + rows[w + 2 * x] + rows[w + 2 * x + 1]);
    }
    ig_free(rows);
    return 0;
}

/* The same pool from one plane to the next, in place (the output row y
 * only reads input rows 2y and 2y+1, which lie at or after it). */
static void
pool_plane(float *p, int w, int h)
{
    int ow = w / 2, oh = h / 2;
    for (int y = 0; y < oh; y++) {
        const float *r0 = p + (size_t)(2 * y) * (size_t)w, *r1 = r0 + w;
        float *o = p + (size_t)y * (size_t)ow;
        for (int x = 0; x < ow; x++)
            o[x] = 0.25f * (r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1]);
    }
}

int
vd_msssim(const struct img *a, const struct img *b, double *msssim, struct ig_error *err)
{
    if (vd_check_pair(a, b, 11 << (SCALES - 1), "msssim", err) != 0)
        return -1;
    int w = a->width / 2, h = a->height / 2;
    size_t plane = (size_t)w * (size_t)h;
    float *pa = ig_malloc(2 * plane * sizeof *pa);
    if (!pa)
        return vd_oom(err, "msssim");
    float *pb = pa + plane;
    double result = 1;
    struct vd_rows rows;
    vd_rows_rgba(&rows, a, b, -1);
    if (pool_rgba(a, pa, err) != 0 || pool_rgba(b, pb, err) != 0)
        goto fail;
    for (int s = 0; s < SCALES; s++) {
        if (s > 1) {
            pool_plane(pa, w, h);
            pool_plane(pb, w, h);
            w /= 2;
            h /= 2;
        }
        if (s > 0)
            vd_rows_planes(&rows, pa, pb, w, h);
        struct means m = {0};
        if (vd_ssim_run(&rows, means_sink, &m, err) != 0)
            goto fail;
        double term = (s == SCALES - 1 ? m.ssim : m.cs) / (double)m.n;
        result *= pow(term > 0 ? term : 0, beta[s]);
    }
    ig_free(pa);
    *msssim = result;
    return 0;
fail:
    ig_free(pa);
    return -1;
}
