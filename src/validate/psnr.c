/* SPDX-License-Identifier: MIT */
/* psnr.c -- peak signal-to-noise ratio over RGB, and the worst tile.
 *
 * The global figure hides a local repaint: a 256² patch replaced in a
 * 4 MP upscale moves it a few dB, but the tile holding the patch drops to
 * single digits. So squared errors are summed per tile as well, one row of
 * tiles at a time, and the lowest tile PSNR is reported beside the mean.
 * Opaque pixels take an integer path; others are composited over white. */
#include "validate/vd_internal.h"

#include <math.h>

#include "core/alloc.h"

static double
to_db(double sse, double n)
{
    if (sse <= 0)
        return INFINITY;
    return 10.0 * log10(255.0 * 255.0 * n / sse);
}

/* Squared error of one pixel summed over R, G and B. */
static double
pixel_sse(const uint8_t *p, const uint8_t *q)
{
    if ((p[3] & q[3]) == 255) {
        int dr = p[0] - q[0], dg = p[1] - q[1], db = p[2] - q[2];
        return dr * dr + dg * dg + db * db;
    }
    double s = 0;
    for (int c = 0; c < 3; c++) {
        double d = vd_over_white(p[c], p[3]) - vd_over_white(q[c], q[3]);
        s += d * d;
    }
    return s;
}

int
vd_psnr(const struct img *a, const struct img *b, const uint8_t *weight, int tile,
        double *psnr, double *worst, struct ig_error *err)
{
    if (vd_check_pair(a, b, 1, "psnr", err) != 0)
        return -1;
    int w = a->width, h = a->height, tiles = tile > 0 ? (w + tile - 1) / tile : 0;
    double *tsse = NULL, *tn = NULL;
    if (tiles) {
        tsse = ig_calloc(2 * (size_t)tiles, sizeof *tsse);
        if (!tsse)
            return vd_oom(err, "psnr");
        tn = tsse + tiles;
    }
    double sse = 0, n = 0, low = INFINITY;
    for (int y = 0; y < h; y++) {
        const uint8_t *pa = a->rgba + (size_t)y * (size_t)w * 4;
        const uint8_t *pb = b->rgba + (size_t)y * (size_t)w * 4;
        const uint8_t *wr = weight ? weight + (size_t)y * (size_t)w : NULL;
        for (int x = 0; x < w; x++) {
            double wt = wr ? wr[x] : 1;
            if (wt == 0)
                continue;
            double e = wt * pixel_sse(pa + 4 * x, pb + 4 * x);
            sse += e;
            n += 3 * wt;
            if (tiles) {
                tsse[x / tile] += e;
                tn[x / tile] += 3 * wt;
            }
        }
        if (tiles && ((y + 1) % tile == 0 || y == h - 1)) {
            for (int t = 0; t < tiles; t++) {
                double db = to_db(tsse[t], tn[t]);
                if (tn[t] > 0 && db < low)
                    low = db;
                tsse[t] = tn[t] = 0;
            }
        }
    }
    ig_free(tsse);
    if (n <= 0)
        return ig_error_set(err, 400, "empty_region", "psnr: the weight map leaves no pixel");
    *psnr = to_db(sse, n);
    if (worst)
        *worst = tiles ? low : *psnr;
    return 0;
}
