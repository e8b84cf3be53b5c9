/* SPDX-License-Identifier: MIT */
/* cutout_quality.c -- how good local-isnet's mattes are, against a known
 * alpha, for bench/cutout_quality.sh.
 *
 * Usage: cutout_quality TRUTH.png BACKGROUND...
 *
 * No package ships a ground-truth matte, so one is made: TRUTH.png is an
 * RGBA cutout whose alpha is taken as the truth and whose RGB as the
 * foreground F. Each background photo is scaled to cover the cutout and
 * centre-cropped (B), the composite I = a*F + (1-a)*B is run through the
 * backend in this process, and the returned alpha p is scored against a:
 *
 *   SAD, MSE, Grad   alpha-matting errors (Rhemann et al. 2009; the Deep
 *                    Image Matting evaluation code), over the unknown band:
 *                    every pixel within 10 px of a soft or edge pixel of a;
 *   halo_bleed       on the rim of the cutout (a > 0.05, within 3 px inside
 *                    the 0.5 contour), where the returned colour sits on the
 *                    segment from the local foreground colour to the local
 *                    background colour, alpha-weighted (0: foreground);
 *   cut_fg           just outside the contour, how much the input still
 *                    looks like the subject (lost detail, eroded masks).
 * The last two follow METRICS.md section 5.3 and need no truth; they are
 * also printed for the truth alpha on the same composite, as the floor a
 * perfect matte without colour decontamination would get. This program
 * shares no code with src/validate on purpose: it measures the backend,
 * the gate is judged elsewhere. */
#include "backends/local/local.h"
#include "core/alloc.h"
#include "core/config.h"
#include "image/image.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNKNOWN_BAND 10   /* px around soft/edge truth pixels */
#define RIM          3    /* px, halo and cut rims */
#define SURE         8    /* px from the contour: surely foreground/background */
#define REF_RADIUS   12   /* 25x25 windows for the local reference colours */

struct scores {
    double sad, mse, grad;
    long unknown;
    double halo, halo_frac, cut;
};

static void *
xcalloc(size_t n, size_t size)
{
    void *p = ig_calloc(n, size);
    if (!p) {
        fprintf(stderr, "cutout_quality: out of memory\n");
        exit(1);
    }
    return p;
}

static struct img *
load(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct ig_buf b = {0};
    char chunk[1 << 16];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ig_buf_append(&b, chunk, n) != 0)
            break;
    if (f)
        fclose(f);
    struct ig_error err = {0};
    struct img *im = b.data ? img_decode(b.data, b.len, NULL, &err) : NULL;
    ig_buf_free(&b);
    if (!im) {
        fprintf(stderr, "cutout_quality: cannot read %s: %s\n", path, err.message);
        exit(1);
    }
    return im;
}

/* The background scaled to cover w x h, centre-cropped. */
static struct img *
cover(const struct img *bg, int w, int h)
{
    double s = fmax((double)w / bg->width, (double)h / bg->height);
    int sw = (int)ceil(bg->width * s), sh = (int)ceil(bg->height * s);
    struct ig_error err = {0};
    struct img *big = img_resize(bg, sw < w ? w : sw, sh < h ? h : sh, "lanczos3", &err);
    struct img *out = img_new(w, h);
    if (!big || !out) {
        fprintf(stderr, "cutout_quality: %s\n", err.message[0] ? err.message : "out of memory");
        exit(1);
    }
    int x0 = (big->width - w) / 2, y0 = (big->height - h) / 2;
    for (int y = 0; y < h; y++)
        memcpy(out->rgba + (size_t)y * w * 4, big->rgba + ((size_t)(y + y0) * big->width + x0) * 4,
               (size_t)w * 4);
    img_free(big);
    return out;
}

/* ---- Distance transform (Felzenszwalb & Huttenlocher), squared px ------ */

static void
edt_1d(const double *f, int n, double *d, int *v, double *z)
{
    int k = 0;
    v[0] = 0;
    z[0] = -DBL_MAX;
    z[1] = DBL_MAX;
    /* z[0] is -inf, so the parabola search never runs past v[0]. */
    for (int q = 1; q < n; q++) {
        double s = ((f[q] + (double)q * q) - (f[v[k]] + (double)v[k] * v[k])) / (2.0 * (q - v[k]));
        while (s <= z[k]) {
            k--;
            s = ((f[q] + (double)q * q) - (f[v[k]] + (double)v[k] * v[k])) / (2.0 * (q - v[k]));
        }
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = DBL_MAX;
    }
    k = 0;
    for (int q = 0; q < n; q++) {
        while (z[k + 1] < q)
            k++;
        d[q] = (double)(q - v[k]) * (q - v[k]) + f[v[k]];
    }
}

/* Distance (px) from every pixel to the nearest pixel where target[i]. */
static float *
edt(const unsigned char *target, int w, int h)
{
    int n = w > h ? w : h;
    double *grid = xcalloc((size_t)w * h, sizeof *grid);
    double *f = xcalloc((size_t)n, sizeof *f), *d = xcalloc((size_t)n, sizeof *d);
    double *z = xcalloc((size_t)n + 1, sizeof *z);
    int *v = xcalloc((size_t)n, sizeof *v);
    for (size_t i = 0; i < (size_t)w * h; i++)
        grid[i] = target[i] ? 0 : 1e12;
    for (int x = 0; x < w; x++) {
        for (int y = 0; y < h; y++)
            f[y] = grid[(size_t)y * w + x];
        edt_1d(f, h, d, v, z);
        for (int y = 0; y < h; y++)
            grid[(size_t)y * w + x] = d[y];
    }
    float *out = xcalloc((size_t)w * h, sizeof *out);
    for (int y = 0; y < h; y++) {
        edt_1d(grid + (size_t)y * w, w, d, v, z);
        for (int x = 0; x < w; x++)
            out[(size_t)y * w + x] = (float)sqrt(d[x]);
    }
    ig_free(grid);
    ig_free(f);
    ig_free(d);
    ig_free(z);
    ig_free(v);
    return out;
}

/* ---- Box sums over an integral image ------------------------------------ */

static double *
integral(const double *src, int w, int h)
{
    double *s = xcalloc((size_t)(w + 1) * (h + 1), sizeof *s);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            s[(size_t)(y + 1) * (w + 1) + x + 1] = src[(size_t)y * w + x] +
                                                  s[(size_t)y * (w + 1) + x + 1] +
                                                  s[(size_t)(y + 1) * (w + 1) + x] -
                                                  s[(size_t)y * (w + 1) + x];
    return s;
}

static double
box_sum(const double *s, int w, int h, int x, int y, int r)
{
    int x0 = x - r < 0 ? 0 : x - r, x1 = x + r + 1 > w ? w : x + r + 1;
    int y0 = y - r < 0 ? 0 : y - r, y1 = y + r + 1 > h ? h : y + r + 1;
    size_t W = (size_t)w + 1;
    return s[y1 * W + x1] - s[y0 * W + x1] - s[y1 * W + x0] + s[y0 * W + x0];
}

/* ---- halo_bleed and cut_fg (METRICS.md 5.3) ------------------------------ */

/* a: alpha 0..1 judged; col: the colours returned (for halo); in: input. */
static void
edge_scores(const float *a, const struct img *col, const struct img *in, struct scores *s)
{
    int w = in->width, h = in->height;
    size_t n = (size_t)w * h;
    unsigned char *inside = xcalloc(n, 1), *outside = xcalloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        inside[i] = a[i] >= 0.5f;
        outside[i] = !inside[i];
    }
    float *d_in = edt(outside, w, h);    /* inside pixels: distance to the outside */
    float *d_out = edt(inside, w, h);
    /* Sums of colour and count over surely-fg and surely-bg pixels. */
    double *plane = xcalloc(n, sizeof *plane);
    double *sf[4], *sb[4];
    for (int c = 0; c < 4; c++) {
        for (size_t i = 0; i < n; i++)
            plane[i] = d_in[i] > SURE ? (c < 3 ? in->rgba[4 * i + c] / 255.0 : 1) : 0;
        sf[c] = integral(plane, w, h);
        for (size_t i = 0; i < n; i++)
            plane[i] = d_out[i] > SURE ? (c < 3 ? in->rgba[4 * i + c] / 255.0 : 1) : 0;
        sb[c] = integral(plane, w, h);
    }
    double area = (2.0 * REF_RADIUS + 1) * (2.0 * REF_RADIUS + 1);
    double halo_num = 0, halo_den = 0, cut_sum = 0;
    long rim_n = 0, rim_hi = 0, cut_n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int rim = a[i] > 0.05f && d_in[i] <= RIM;   /* d_in is 0 outside */
            int outer = outside[i] && d_out[i] <= RIM;
            if (!rim && !outer)
                continue;
            double nf = box_sum(sf[3], w, h, x, y, REF_RADIUS);
            double nb = box_sum(sb[3], w, h, x, y, REF_RADIUS);
            if (nf < 0.02 * area || nb < 0.02 * area)
                continue;
            double F[3], B[3], d2 = 0;
            for (int c = 0; c < 3; c++) {
                F[c] = box_sum(sf[c], w, h, x, y, REF_RADIUS) / nf;
                B[c] = box_sum(sb[c], w, h, x, y, REF_RADIUS) / nb;
                d2 += (B[c] - F[c]) * (B[c] - F[c]);
            }
            if (sqrt(d2) <= 0.1)
                continue;
            if (rim) {
                double dot = 0;
                for (int c = 0; c < 3; c++)
                    dot += (col->rgba[4 * i + c] / 255.0 - F[c]) * (B[c] - F[c]);
                double t = fmin(1, fmax(0, dot / d2));
                halo_num += a[i] * t;
                halo_den += a[i];
                rim_n++;
                rim_hi += t > 0.5;
            }
            if (outer) {
                double dot = 0;
                for (int c = 0; c < 3; c++)
                    dot += (in->rgba[4 * i + c] / 255.0 - F[c]) * (B[c] - F[c]);
                cut_sum += 1 - fmin(1, fmax(0, dot / d2));
                cut_n++;
            }
        }
    s->halo = halo_den > 0 ? halo_num / halo_den : 0;
    s->halo_frac = rim_n ? (double)rim_hi / rim_n : 0;
    s->cut = cut_n ? cut_sum / cut_n : 0;
    for (int c = 0; c < 4; c++) {
        ig_free(sf[c]);
        ig_free(sb[c]);
    }
    ig_free(plane);
    ig_free(d_in);
    ig_free(d_out);
    ig_free(inside);
    ig_free(outside);
}

/* ---- SAD, MSE, Grad over the unknown band -------------------------------- */

/* |grad| with first-derivative-of-Gaussian filters, sigma 1.4, 9x9,
 * normalised so the kernel's squares sum to 1, replicate borders. */
static float *
gradient(const float *a, int w, int h)
{
    enum { H = 4, K = 2 * H + 1 };
    const double sigma = 1.4;
    double G[K], D[K], g2 = 0, d2 = 0;
    for (int i = 0; i < K; i++) {
        double x = i - H;
        G[i] = exp(-x * x / (2 * sigma * sigma)) / (sigma * sqrt(2 * M_PI));
        D[i] = -x * G[i] / (sigma * sigma);
        g2 += G[i] * G[i];
        d2 += D[i] * D[i];
    }
    double norm = 1 / sqrt(g2 * d2);
    size_t n = (size_t)w * h;
    float *gx_t = xcalloc(n, sizeof *gx_t), *gy_t = xcalloc(n, sizeof *gy_t);
    float *mag = xcalloc(n, sizeof *mag);
    /* hx[i][j] = G(i) D(j): D along x then G along y; hy the transpose. */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double sx = 0, sy = 0;
            for (int k = 0; k < K; k++) {
                int xx = x + k - H;
                xx = xx < 0 ? 0 : xx >= w ? w - 1 : xx;
                double v = a[(size_t)y * w + xx];
                sx += D[k] * v;
                sy += G[k] * v;
            }
            gx_t[(size_t)y * w + x] = (float)sx;
            gy_t[(size_t)y * w + x] = (float)sy;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double gx = 0, gy = 0;
            for (int k = 0; k < K; k++) {
                int yy = y + k - H;
                yy = yy < 0 ? 0 : yy >= h ? h - 1 : yy;
                gx += G[k] * gx_t[(size_t)yy * w + x];
                gy += D[k] * gy_t[(size_t)yy * w + x];
            }
            mag[(size_t)y * w + x] = (float)(sqrt(gx * gx + gy * gy) * norm);
        }
    ig_free(gx_t);
    ig_free(gy_t);
    return mag;
}

static void
matte_errors(const float *p, const float *g, int w, int h, struct scores *s)
{
    size_t n = (size_t)w * h;
    unsigned char *edge = xcalloc(n, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int soft = g[i] > 0 && g[i] < 1;
            int step = (x + 1 < w && (g[i] >= 0.5f) != (g[i + 1] >= 0.5f)) ||
                       (y + 1 < h && (g[i] >= 0.5f) != (g[i + w] >= 0.5f));
            edge[i] = soft || step;
        }
    float *dist = edt(edge, w, h);
    float *gp = gradient(p, w, h), *gg = gradient(g, w, h);
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        if (dist[i] > UNKNOWN_BAND)
            continue;
        double e = (double)p[i] - g[i];
        s->sad += fabs(e);
        s->mse += e * e;
        double ge = (double)gp[i] - gg[i];
        s->grad += ge * ge;
        s->unknown++;
    }
    s->sad /= 1000;
    s->mse = s->unknown ? s->mse / s->unknown : 0;
    s->grad /= 1000;
    ig_free(edge);
    ig_free(dist);
    ig_free(gp);
    ig_free(gg);
}

static const char *
base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cutout_quality TRUTH.png BACKGROUND...\n");
        return 2;
    }
    struct ig_error err = {0};
    struct ig_config *cfg = img_init(&err) == 0 ? ig_config_load_default(NULL, &err) : NULL;
    const struct ig_backend_cfg *b = cfg ? ig_config_backend(cfg, "local-isnet") : NULL;
    char why[512] = "";
    if (!b || !be_local_isnet.available(b, why, sizeof why)) {
        fprintf(stderr, "cutout_quality: local-isnet is unavailable: %s %s\n", err.message, why);
        return 1;
    }
    struct img_limits limits;
    img_limits_from_config(&limits, &cfg->limits);
    struct img *truth = load(argv[1]);
    int w = truth->width, h = truth->height;
    size_t n = (size_t)w * h;
    float *g = xcalloc(n, sizeof *g), *p = xcalloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++)
        g[i] = truth->rgba[4 * i + 3] / 255.0f;

    printf("%-14s %-32s %8s %9s %8s %7s %7s %6s %9s %7s %10s %9s\n", "foreground", "background",
           "SAD", "MSE", "Grad", "unknown", "halo", "frac", "cut_fg", "cover",
           "halo_truth", "cut_truth");
    for (int k = 2; k < argc; k++) {
        struct img *bg = load(argv[k]);
        struct img *comp = cover(bg, w, h);
        img_free(bg);
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) {
                double v = g[i] * truth->rgba[4 * i + c] + (1 - g[i]) * comp->rgba[4 * i + c];
                comp->rgba[4 * i + c] = (uint8_t)(v + 0.5);
            }
        struct ig_buf png = {0};
        if (img_encode(comp, IMG_FMT_PNG, 0, NULL, &png, &err) != 0) {
            fprintf(stderr, "cutout_quality: %s\n", err.message);
            return 1;
        }
        struct be_request req = {.cfg = b, .cls = IG_CLASS_REMOVE_BACKGROUND, .input = png.data,
                                 .input_len = png.len, .img_limits = &limits};
        struct be_result res;
        memset(&res, 0, sizeof res);
        if (be_local_isnet.run(&req, &res) != 0) {
            fprintf(stderr, "cutout_quality: %s: %s\n", res.err.code, res.err.message);
            return 1;
        }
        struct img *out = img_decode(res.images[0].data, res.images[0].len, NULL, &err);
        if (!out) {
            fprintf(stderr, "cutout_quality: %s\n", err.message);
            return 1;
        }
        double cov = 0;
        for (size_t i = 0; i < n; i++) {
            p[i] = out->rgba[4 * i + 3] / 255.0f;
            cov += p[i];
        }
        struct scores s, t;
        matte_errors(p, g, w, h, &s);
        edge_scores(p, out, comp, &s);
        edge_scores(g, comp, comp, &t);
        printf("%-14.14s %-32.32s %8.2f %9.5f %8.2f %7ld %7.3f %6.3f %9.3f %7.3f %10.3f %9.3f\n",
               base(argv[1]), base(argv[k]), s.sad, s.mse, s.grad, s.unknown, s.halo,
               s.halo_frac, s.cut, cov / (double)n, t.halo, t.cut);
        fflush(stdout);
        img_free(out);
        img_free(comp);
        be_result_clear(&res);
        ig_buf_free(&png);
    }
    ig_free(g);
    ig_free(p);
    img_free(truth);
    be_local_shutdown();
    ig_config_free(cfg);
    return 0;
}
