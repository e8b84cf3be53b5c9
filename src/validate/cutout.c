/* SPDX-License-Identifier: MIT */
/* cutout.c -- remove-background: an alpha matte that is there, plausible,
 * clean on its rim, and consistent with the input photo.
 *
 * There is no ground-truth matte in production, but the gate has the input
 * photo, so METRICS.md section 5.3's reference-based edge scores apply.
 * Around the 0.5 contour of alpha, local reference colours come from the
 * input: F (box mean over pixels surely inside, more than 8 px in) and B
 * (surely outside), in a 25x25 window. A colour c is placed on the segment
 * F -> B as t = clamp((c-F).(B-F)/|B-F|^2, 0, 1):
 *   halo_bleed: the output's colours on the inner rim (d_in <= 3 px, alpha
 *     > 0.05), alpha-weighted mean of t: background left on the cutout;
 *   cut_fg: the input's colours on the outer rim (d_out <= 3 px), mean of
 *     1 - t: subject that was cut away.
 * Windows where F and B look alike (|B-F| < 0.1) give no verdict and are
 * left out. Only rim pixels need the window means, so they are summed
 * directly per pixel: a few percent of the image times 625, with no
 * image-sized float buffers to touch. Distances are 3-4 chamfer (within 8 %
 * of Euclidean), enough for 3 and 8 px bands. */
#include "validate/gate.h"
#include "core/alloc.h"

#include <math.h>
#include <string.h>

#define RIM_PX 3
#define SURE_PX 8
#define WIN_R 12

static int
same_size(const struct vd_task *t, struct vd_check *out, const char *name)
{
    if (t->input->width == t->output->width && t->input->height == t->output->height)
        return 1;
    vd_result(out, name, 0, 0, 0, "the cutout is %dx%d, the input %dx%d", t->output->width,
              t->output->height, t->input->width, t->input->height);
    return 0;
}

int
vd_check_alpha(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    size_t n = (size_t)t->output->width * t->output->height, clear = 0;
    for (size_t i = 0; i < n; i++)
        clear += t->output->rgba[4 * i + 3] < 255;
    double share = (double)clear / n;
    int has = t->output->info.has_alpha;
    return vd_result(out, "alpha", share, 0, has && clear > 0,
                     has ? "share of pixels not opaque" : "the output has no alpha channel");
}

int
vd_check_coverage(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    size_t n = (size_t)t->output->width * t->output->height, fg = 0;
    for (size_t i = 0; i < n; i++)
        fg += t->output->rgba[4 * i + 3] >= 128;
    double cov = (double)fg / n;
    double lo = vd_bound(t, "coverage", 0.005), hi = vd_bound(t, "coverage_max", 0.995);
    return vd_result(out, "coverage", cov, lo, cov > lo && cov < hi,
                     "share of alpha >= 0.5; plausible between %.3f and %.3f", lo, hi);
}

/* Chamfer 3-4 distance (in thirds of a pixel, capped) from every pixel to
 * the nearest pixel where inside[] differs from want. */
static void
chamfer(const uint8_t *inside, int want, int w, int h, uint16_t *d)
{
    const uint16_t cap = 65535;
    for (size_t i = 0; i < (size_t)w * h; i++)
        d[i] = inside[i] == want ? cap : 0;
#define RELAX(x, y, c)                                                                          \
    do {                                                                                        \
        if ((x) >= 0 && (x) < w && (y) >= 0 && (y) < h) {                                      \
            unsigned v = d[(size_t)(y) * w + (x)] + (c);                                        \
            if (v < *p)                                                                         \
                *p = (uint16_t)v;                                                               \
        }                                                                                       \
    } while (0)
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint16_t *p = &d[(size_t)y * w + x];
            RELAX(x - 1, y, 3);
            RELAX(x - 1, y - 1, 4);
            RELAX(x, y - 1, 3);
            RELAX(x + 1, y - 1, 4);
        }
    for (int y = h - 1; y >= 0; y--)
        for (int x = w - 1; x >= 0; x--) {
            uint16_t *p = &d[(size_t)y * w + x];
            RELAX(x + 1, y, 3);
            RELAX(x + 1, y + 1, 4);
            RELAX(x, y + 1, 3);
            RELAX(x - 1, y + 1, 4);
        }
#undef RELAX
}

struct rim {
    int w, h;
    uint8_t *inside;          /* alpha >= 0.5 */
    uint16_t *d_in, *d_out;   /* thirds of a pixel */
};

static void
rim_free(struct rim *r)
{
    ig_free(r->inside);
    ig_free(r->d_in);
    ig_free(r->d_out);
}

static int
rim_build(const struct img *out, struct rim *r, struct ig_error *err)
{
    memset(r, 0, sizeof *r);
    r->w = out->width;
    r->h = out->height;
    size_t n = (size_t)r->w * r->h;
    r->inside = ig_malloc(n);
    r->d_in = ig_malloc(n * sizeof *r->d_in);
    r->d_out = ig_malloc(n * sizeof *r->d_out);
    if (!r->inside || !r->d_in || !r->d_out) {
        rim_free(r);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        r->inside[i] = out->rgba[4 * i + 3] >= 128;
    chamfer(r->inside, 1, r->w, r->h, r->d_in);
    chamfer(r->inside, 0, r->w, r->h, r->d_out);
    return 0;
}

/* F and B around (x, y) from the input; 0 when this window gives no verdict. */
static int
local_refs(const struct rim *r, const struct img *in, int x, int y, double f[3], double b[3])
{
    double sf[3] = {0}, sb[3] = {0};
    int nf = 0, nb = 0, area = 0;
    for (int j = y - WIN_R; j <= y + WIN_R; j++) {
        if (j < 0 || j >= r->h)
            continue;
        for (int i = x - WIN_R; i <= x + WIN_R; i++) {
            if (i < 0 || i >= r->w)
                continue;
            size_t k = (size_t)j * r->w + i;
            const uint8_t *p = in->rgba + 4 * k;
            area++;
            if (r->inside[k] && r->d_in[k] > 3 * SURE_PX) {
                for (int c = 0; c < 3; c++)
                    sf[c] += p[c];
                nf++;
            } else if (!r->inside[k] && r->d_out[k] > 3 * SURE_PX) {
                for (int c = 0; c < 3; c++)
                    sb[c] += p[c];
                nb++;
            }
        }
    }
    if (nf <= area / 50 || nb <= area / 50)
        return 0;
    double dist2 = 0;
    for (int c = 0; c < 3; c++) {
        f[c] = sf[c] / nf / 255.0;
        b[c] = sb[c] / nb / 255.0;
        dist2 += (b[c] - f[c]) * (b[c] - f[c]);
    }
    return dist2 > 0.01;
}

/* Where colour p lies on the segment f -> b, 0..1. */
static double
toward_bg(const uint8_t *p, const double f[3], const double b[3])
{
    double dot = 0, len2 = 0;
    for (int c = 0; c < 3; c++) {
        dot += (p[c] / 255.0 - f[c]) * (b[c] - f[c]);
        len2 += (b[c] - f[c]) * (b[c] - f[c]);
    }
    double t = dot / len2;
    return t < 0 ? 0 : t > 1 ? 1 : t;
}

/* halo (outer == 0) or cut (outer == 1) score over the rim; -1 on error,
 * *judged 0 when no window gave a verdict. */
static int
rim_score(const struct vd_task *t, int outer, double *score, long *judged, struct ig_error *err)
{
    struct rim r;
    if (rim_build(t->output, &r, err) != 0)
        return -1;
    double sum = 0, wsum = 0;
    *judged = 0;
    for (int y = 0; y < r.h; y++)
        for (int x = 0; x < r.w; x++) {
            size_t k = (size_t)y * r.w + x;
            double a = t->output->rgba[4 * k + 3] / 255.0, f[3], b[3];
            if (outer ? r.inside[k] || r.d_out[k] > 3 * RIM_PX
                      : a <= 0.05 || (r.inside[k] && r.d_in[k] > 3 * RIM_PX))
                continue;
            if (!local_refs(&r, t->input, x, y, f, b))
                continue;
            if (outer) {
                sum += 1.0 - toward_bg(t->input->rgba + 4 * k, f, b);
                wsum += 1.0;
            } else {
                sum += a * toward_bg(t->output->rgba + 4 * k, f, b);
                wsum += a;
            }
            (*judged)++;
        }
    rim_free(&r);
    *score = wsum > 0 ? sum / wsum : 0;
    return 0;
}

static int
rim_check(const struct vd_task *t, struct vd_check *out, const char *name, double dflt, int outer,
          const char *what, struct ig_error *err)
{
    if (!t->input)
        return VD_SKIP;
    if (!same_size(t, out, name))
        return 0;
    double score, bound = vd_bound(t, name, dflt);
    long judged;
    if (rim_score(t, outer, &score, &judged, err) != 0)
        return -1;
    if (!judged)
        return vd_result(out, name, 0, bound, 1,
                         "no verdict: no rim where subject and background differ");
    return vd_result(out, name, score, bound, score <= bound, "%s; %ld rim px judged", what,
                     judged);
}

int
vd_check_halo_bleed(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    return rim_check(t, out, "halo_bleed", 0.40, 0, "background colour on the cutout's rim", err);
}

int
vd_check_cut_fg(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    return rim_check(t, out, "cut_fg", 0.50, 1, "subject colour just outside the cut", err);
}

/* fg*a + input*(1-a) against the input, i.e. a*|fg - input|: zero inside an
 * untouched subject, small on a decontaminated rim (a(1-a)|F-B| at most a
 * quarter of the contrast), large when the cutout's colours are not the
 * photo's. Mean over pixels with any alpha, in 8-bit levels. */
int
vd_check_composite(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (!t->input)
        return VD_SKIP;
    if (!same_size(t, out, "composite"))
        return 0;
    size_t n = (size_t)t->output->width * t->output->height, m = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *o = t->output->rgba + 4 * i, *p = t->input->rgba + 4 * i;
        if (!o[3])
            continue;
        double a = o[3] / 255.0;
        for (int c = 0; c < 3; c++)
            sum += a * fabs((double)o[c] - p[c]);
        m += 3;
    }
    double score = m ? sum / m : 0, bound = vd_bound(t, "composite", 6.0);
    return vd_result(out, "composite", score, bound, score <= bound,
                     "mean |fg*a + input*(1-a) - input| in 8-bit levels");
}
