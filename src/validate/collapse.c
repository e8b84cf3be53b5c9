/* SPDX-License-Identifier: MIT */
/* collapse.c -- is the output a picture at all: blank, clipped, or noise.
 *
 * Diffusion models fail silently: a black frame from a safety filter or an
 * overflowing VAE, a uniform grey, or grey noise from a diverged sampler,
 * all returned as "succeeded". METRICS.md section 7 measured which
 * statistics of 8-bit BT.601 luma tell these apart from real photos, and
 * the three checks use its rules. Laplacian variance is deliberately not
 * one of them: it is highest for noise and flags sharp photos as blurry.
 * Noise is told by its lag-1 autocorrelation (natural images > 0.98, white
 * noise ~0) together with its high-frequency share (photos < 0.01, noise
 * > 0.7); either alone misfires on fine textures or on smooth renders.
 *
 * One departure from METRICS.md: its "flat tiles" (16x16, stddev < 2) are
 * counted only at the picture's dominant level (tile mean within
 * FLAT_LEVELS of the median tile mean). A smooth gradient -- a sky, a
 * studio backdrop, the emulators' pictures -- is flat in every tile while
 * its levels sweep the range; a blank frame, with or without a small mark
 * on it, is flat at one level. */
#include "validate/gate.h"
#include "core/alloc.h"

#include <math.h>

#define FLAT_LEVELS 4

struct luma_stats {
    double stddev;
    double flat_tiles;     /* share of 16x16 tiles with stddev < 2 at the dominant level */
    double clipped;        /* share of pixels with Y <= 2 or >= 253 */
    double rho1;           /* horizontal lag-1 autocorrelation */
    double hf_share;       /* var(Y - box3(Y)) / var(Y) */
};

static void
tile_stats(const uint8_t *y, int w, int x0, int y0, int tw, int th, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (int j = y0; j < y0 + th; j++)
        for (int i = x0; i < x0 + tw; i++) {
            double v = y[(size_t)j * w + i];
            s += v;
            s2 += v * v;
        }
    double n = (double)tw * th, var = s2 / n - (s / n) * (s / n);
    *mean = s / n;
    *sd = var > 0 ? sqrt(var) : 0;
}

/* Share of tiles flat at the dominant level; 1 for an image too small to tile. */
static int
flat_share(const uint8_t *y, int w, int h, double *share)
{
    int tw = w < 16 ? w : 16, th = h < 16 ? h : 16;
    size_t nx = (size_t)(w / tw), ny = (size_t)(h / th), n = nx * ny;
    double *means = ig_malloc(n * sizeof *means);
    uint8_t *flat = ig_malloc(n);
    if (!means || !flat) {
        ig_free(means);
        ig_free(flat);
        return -1;
    }
    size_t hist[256] = {0};
    for (size_t j = 0; j < ny; j++)
        for (size_t i = 0; i < nx; i++) {
            double sd, *m = &means[j * nx + i];
            tile_stats(y, w, (int)i * tw, (int)j * th, tw, th, m, &sd);
            flat[j * nx + i] = sd < 2.0;
            hist[(int)(*m + 0.5)]++;
        }
    size_t seen = 0;
    int median = 0;
    while (median < 255 && (seen += hist[median]) * 2 < n)
        median++;
    size_t count = 0;
    for (size_t k = 0; k < n; k++)
        count += flat[k] && fabs(means[k] - median) <= FLAT_LEVELS;
    *share = n ? (double)count / n : 1.0;
    ig_free(means);
    ig_free(flat);
    return 0;
}

/* Mean of the 3x3 neighbourhood, borders clamped. */
static double
box3(const uint8_t *y, int w, int h, int x, int yy)
{
    int s = 0;
    for (int dj = -1; dj <= 1; dj++) {
        int j = yy + dj < 0 ? 0 : yy + dj >= h ? h - 1 : yy + dj;
        for (int di = -1; di <= 1; di++) {
            int i = x + di < 0 ? 0 : x + di >= w ? w - 1 : x + di;
            s += y[(size_t)j * w + i];
        }
    }
    return s / 9.0;
}

static int
luma_stats(const struct img *im, struct luma_stats *st, struct ig_error *err)
{
    uint8_t *y = vd_luma(im);
    if (!y)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    int w = im->width, h = im->height;
    size_t n = (size_t)w * h;
    double sum = 0, sum2 = 0;
    size_t clipped = 0;
    for (size_t i = 0; i < n; i++) {
        sum += y[i];
        sum2 += (double)y[i] * y[i];
        clipped += y[i] <= 2 || y[i] >= 253;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    if (var < 0)
        var = 0;
    st->stddev = sqrt(var);
    st->clipped = (double)clipped / n;

    if (flat_share(y, w, h, &st->flat_tiles) != 0) {
        ig_free(y);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }

    double num = 0, den = 0, hsum = 0, hsum2 = 0;
    for (int j = 0; j < h; j++) {
        const uint8_t *row = y + (size_t)j * w;
        for (int i = 0; i < w; i++) {
            double d = row[i] - mean;
            den += d * d;
            if (i + 1 < w)
                num += d * (row[i + 1] - mean);
            double hf = row[i] - box3(y, w, h, i, j);
            hsum += hf;
            hsum2 += hf * hf;
        }
    }
    double hmean = hsum / n, hvar = hsum2 / n - hmean * hmean;
    st->rho1 = den > 0 ? num / den : 1.0;
    st->hf_share = var > 1e-9 ? hvar / var : 0.0;
    ig_free(y);
    return 0;
}

/* The three rules, on one image's statistics. */
static int
blank_fails(const struct vd_task *t, const struct luma_stats *st)
{
    return st->flat_tiles >= vd_bound(t, "blank", 0.95) ||
           st->stddev < vd_bound(t, "blank_min_stddev", 2.0);
}

static int
clipped_fails(const struct vd_task *t, const struct luma_stats *st)
{
    return st->clipped >= vd_bound(t, "clipped", 0.90);
}

static int
noise_fails(const struct vd_task *t, const struct luma_stats *st)
{
    return st->rho1 < vd_bound(t, "noise", 0.5) &&
           st->hf_share > vd_bound(t, "noise_hf_share", 0.3);
}

/* An output that fails a rule its job's input fails too is faithful, not
 * collapsed: an upscaled black frame is black. 1 when the input fails;
 * -1 on error. */
static int
input_fails(const struct vd_task *t, int (*fails)(const struct vd_task *, const struct luma_stats *),
            struct ig_error *err)
{
    if (!t->input)
        return 0;
    struct luma_stats st;
    if (luma_stats(t->input, &st, err) != 0)
        return -1;
    return fails(t, &st);
}

/* Runs one rule on the output (and, when it fails, on the input). */
static int
judge(const struct vd_task *t, int (*fails)(const struct vd_task *, const struct luma_stats *),
      struct luma_stats *st, int *pass, const char **why, struct ig_error *err)
{
    if (luma_stats(t->output, st, err) != 0)
        return -1;
    *pass = !fails(t, st);
    *why = "";
    if (!*pass) {
        int in = input_fails(t, fails, err);
        if (in < 0)
            return -1;
        if (in) {
            *pass = 1;
            *why = "; the input is so too: faithful";
        }
    }
    return 0;
}

int
vd_check_blank(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    struct luma_stats st;
    int pass;
    const char *why;
    if (judge(t, blank_fails, &st, &pass, &why, err) != 0)
        return -1;
    double min_sd = vd_bound(t, "blank_min_stddev", 2.0);
    return vd_result(out, "blank", st.flat_tiles, vd_bound(t, "blank", 0.95), pass,
                     "16x16 tiles flat at one level %.3f (fail at >= bound); luma stddev %.2f "
                     "(fail < %.1f)%s",
                     st.flat_tiles, st.stddev, min_sd, why);
}

int
vd_check_clipped(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    struct luma_stats st;
    int pass;
    const char *why;
    if (judge(t, clipped_fails, &st, &pass, &why, err) != 0)
        return -1;
    return vd_result(out, "clipped", st.clipped, vd_bound(t, "clipped", 0.90), pass,
                     "share of pixels at black or white (fail at >= bound): often a safety "
                     "filter's answer%s", why);
}

int
vd_check_noise(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    struct luma_stats st;
    int pass;
    const char *why;
    if (judge(t, noise_fails, &st, &pass, &why, err) != 0)
        return -1;
    double hf_bound = vd_bound(t, "noise_hf_share", 0.3);
    return vd_result(out, "noise", st.rho1, vd_bound(t, "noise", 0.5), pass,
                     "lag-1 autocorrelation (fail below bound when the HF share %.3f > %.2f)%s",
                     st.hf_share, hf_bound, why);
}
