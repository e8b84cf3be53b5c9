/* SPDX-License-Identifier: MIT */
/* palette.c -- generate: the picture's dominant colours are brand colours.
 *
 * Opaque pixels are binned on a 8x8x8 RGB grid (coarse on purpose: shading
 * spreads one painted colour over neighbouring fine bins), each bin keeping
 * the mean of its pixels. Bins holding at least DOMINANT_SHARE of the
 * picture are its dominant colours (the largest one when none is). Each is
 * compared with the nearest palette colour in CIEDE2000, and the score is
 * the worst of these: one dominant off-brand colour fails the picture. */
#include "validate/gate.h"
#include "validate/metric.h"

#define BINS 512
#define DOMINANT_SHARE 0.10

int
vd_check_palette(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (t->n_palette == 0)
        return VD_SKIP;
    size_t count[BINS] = {0};
    double mean[BINS][3] = {{0}};
    size_t n = (size_t)t->output->width * t->output->height, opaque = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = t->output->rgba + 4 * i;
        if (p[3] < 128)
            continue;
        int b = (p[0] >> 5) << 6 | (p[1] >> 5) << 3 | p[2] >> 5;
        count[b]++;
        for (int c = 0; c < 3; c++)
            mean[b][c] += p[c];
        opaque++;
    }
    double bound = vd_bound(t, "palette", 10.0);
    if (!opaque)
        return vd_result(out, "palette", 0, bound, 1, "no opaque pixel to judge");
    int largest = 0;
    for (int b = 1; b < BINS; b++)
        if (count[b] > count[largest])
            largest = b;
    double worst = 0, worst_share = 0;
    int worst_rgb[3] = {0, 0, 0}, dominant = 0;
    for (int b = 0; b < BINS; b++) {
        double share = (double)count[b] / opaque;
        if (!count[b] || (share < DOMINANT_SHARE && b != largest))
            continue;
        dominant++;
        uint8_t rgb[3];
        for (int c = 0; c < 3; c++)
            rgb[c] = (uint8_t)(mean[b][c] / count[b] + 0.5);
        double lab[3], best = 1e9;
        vd_srgb_to_lab(rgb[0], rgb[1], rgb[2], lab);
        for (size_t k = 0; k < t->n_palette; k++) {
            double plab[3];
            vd_srgb_to_lab(t->palette[k].r, t->palette[k].g, t->palette[k].b, plab);
            double d = vd_ciede2000(lab, plab);
            if (d < best)
                best = d;
        }
        if (best > worst) {
            worst = best;
            worst_share = share;
            for (int c = 0; c < 3; c++)
                worst_rgb[c] = rgb[c];
        }
    }
    return vd_result(out, "palette", worst, bound, worst <= bound,
                     "worst of %d dominant colours: #%02x%02x%02x (%.0f%% of the picture), "
                     "CIEDE2000 to the nearest brand colour",
                     dominant, worst_rgb[0], worst_rgb[1], worst_rgb[2], 100.0 * worst_share);
}
