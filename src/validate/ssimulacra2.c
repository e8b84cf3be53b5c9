/* SPDX-License-Identifier: MIT */
/* ssimulacra2.c -- SSIMULACRA 2.1 (Jon Sneyers, Cloudinary), 100 = identical.
 *
 * The algorithm and its 108 weights are those of the reference,
 * cloudinary/ssimulacra2@81feacf src/ssimulacra2.cc (BSD-3): linear sRGB,
 * XYB made positive, six scales halved by 2x2 box averages in linear
 * light, libjxl's recursive Gaussian (sigma 1.5), per channel an SSIM
 * error map without the luminance denominator and two edge maps (ringing
 * where the original is smooth, blur where it had detail), their 1- and
 * 4-norms, a weighted sum and the published polynomial. Like the
 * reference, a scale narrower or shorter than 8 is not scored and the
 * remaining weights shift along.
 *
 * Unlike the reference it never holds an image-sized float plane. A scale
 * is streamed row by row: each row becomes XYB and the five quantities the
 * blur needs (a, b, a², b², ab per channel), blurred across, kept in a ring
 * of 2N+2 rows for the vertical recursion. The rows of scale s are built on
 * demand from two rows of scale s-1, down to the RGBA pixels, so the
 * linear pyramid is recomputed (cheap: a LUT and adds) instead of stored.
 * Alpha is composited over white, as for every metric here (the reference
 * CLI blends over grey backgrounds instead). */
#include "validate/vd_internal.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

#define SCALES 6
#define RING 12          /* >= 2N + 1 rows of horizontal blur, N = 5 */
#define PLANES 15        /* 3 channels x blurred {u, v, u², v², uv} */

/* Per-channel centres of positive XYB: the blurred quantities are of
 * a - centre, which keeps float's precision for the variances (see
 * vd_k_s2_ssim). */
static const float centre[3] = {0.42f, 0.4f, 0.55f};

static const double weight[108] = {
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
    0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
    0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
    11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833,
    0.0, 0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053,
    0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0,
    7.466890328078848, 0.0, 17.445833984131262, 0.0006235601634041466, 0.0, 0.0,
    6.683678146179332, 0.00037724407979611296, 1.027889937768264, 225.20515300849274, 0.0,
    0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757,
    0.0004485436923833408, 0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0,
    8.826982764996862, 23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682,
    0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0,
    0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537};

/* libjxl CreateRecursiveGaussian, the scalar coefficients. */
static void
iir_init(struct vd_iir *g, double sigma)
{
    double radius = roundf((float)(3.2795 * sigma + 0.2546));
    double pi2r = M_PI / (2.0 * radius), omega[3] = {pi2r, 3 * pi2r, 5 * pi2r};
    double p1 = 1.0 / tan(0.5 * omega[0]), p3 = -1.0 / tan(0.5 * omega[1]),
           p5 = 1.0 / tan(0.5 * omega[2]);
    double r1 = p1 * p1 / sin(omega[0]), r3 = -p3 * p3 / sin(omega[1]),
           r5 = p5 * p5 / sin(omega[2]);
    double rho[3];
    for (int i = 0; i < 3; i++)
        rho[i] = exp(-0.5 * sigma * sigma * omega[i] * omega[i]) / radius;
    double d13 = p1 * r3 - r1 * p3, d35 = p3 * r5 - r3 * p5, d51 = p5 * r1 - r5 * p1;
    double z15 = d35 / d13, z35 = d51 / d13;
    double m[9] = {p1, p3, p5, r1, r3, r5, z15, z35, 1};
    double inv[9] = {m[4] * m[8] - m[5] * m[7], m[2] * m[7] - m[1] * m[8],
                     m[1] * m[5] - m[2] * m[4], m[5] * m[6] - m[3] * m[8],
                     m[0] * m[8] - m[2] * m[6], m[2] * m[3] - m[0] * m[5],
                     m[3] * m[7] - m[4] * m[6], m[1] * m[6] - m[0] * m[7],
                     m[0] * m[4] - m[1] * m[3]};
    double det = m[0] * inv[0] + m[1] * inv[3] + m[2] * inv[6];
    double gamma[3] = {1, radius * radius - sigma * sigma, z15 * rho[0] + z35 * rho[1] + rho[2]};
    g->radius = (int)radius;
    for (int i = 0; i < 3; i++) {
        double beta = (inv[3 * i] * gamma[0] + inv[3 * i + 1] * gamma[1] +
                       inv[3 * i + 2] * gamma[2]) / det;
        g->n2[i] = (float)(-beta * cos(omega[i] * (radius + 1.0)));
        g->d1[i] = (float)(-2.0 * cos(omega[i]));
    }
}

/* ---- The linear-light pyramid, one row at a time --------------------------- */

#define STORED 2   /* the first scale kept as planes, 1/16 of the pixels */

struct pyramid {
    const struct img *im;
    const float *lut;
    int w[SCALES], h[SCALES];
    float *below[SCALES][2];   /* scale s keeps two rows of scale s-1 */
    float *stored;             /* scale STORED once built, else NULL */
};

/* Row y of scale s as three planar runs R, G, B of w[s] floats. */
static void
pyr_row(struct pyramid *p, int s, int y, float *out)
{
    int w = p->w[s];
    if (s == 0) {
        vd_k_linear(p->im->rgba + (size_t)y * (size_t)w * 4, p->lut, out, w);
        return;
    }
    if (s == STORED && p->stored) {
        memcpy(out, p->stored + (size_t)y * 3 * (size_t)w, 3 * (size_t)w * sizeof *out);
        return;
    }
    int bw = p->w[s - 1], bh = p->h[s - 1];
    float *r0 = p->below[s][0], *r1 = p->below[s][1];
    pyr_row(p, s - 1, 2 * y, r0);
    pyr_row(p, s - 1, 2 * y + 1 < bh ? 2 * y + 1 : bh - 1, r1);
    for (int c = 0; c < 3; c++)
        vd_k_down2(r0 + (size_t)c * bw, r1 + (size_t)c * bw, bw, out + (size_t)c * w, w);
}

/* Scales above STORED are built from it, so it is computed once (one
 * more pass over the pixels) instead of once per coarser scale. */
static void
pyr_store(struct pyramid *p, float *planes)
{
    for (int y = 0; y < p->h[STORED]; y++)
        pyr_row(p, STORED, y, planes + (size_t)y * 3 * (size_t)p->w[STORED]);
    p->stored = planes;
}

/* ---- One scale, streamed --------------------------------------------------- */

struct scale_state {
    int w;
    float *lin[2];               /* 3w: the current linear row of each image */
    float *xyb[RING][2];         /* 3w per image: kept for the edge maps */
    float *hb[RING];             /* PLANES*w: horizontally blurred quantities */
    float *p1, *p2;              /* PLANES*3w: the vertical sections' state */
    float *prod, *blur, *zero;   /* 5w, PLANES*w, w */
    float *bx, *by, *ones;       /* blur of 1 across (w) and down (h); ones */
    float *mu[2], *t[4];         /* w each: means, per-pixel error terms */
};

static float *
plane_of(float *base, int i, int w)
{
    return base + (size_t)i * (size_t)w;
}

/* Accumulate the six sums of one channel for output row n. */
static void
score_row(struct scale_state *st, int n, double sums[3][6])
{
    int w = st->w;
    for (int c = 0; c < 3; c++) {
        const float *bu = plane_of(st->blur, c * 5, w);
        vd_k_s2_ssim(bu, bu + w, bu + 2 * w, bu + 3 * w, bu + 4 * w, st->bx, st->by[n], centre[c],
                     st->mu[0], st->mu[1], st->t[0], st->t[1], w);
        sums[c][0] += vd_k_sum(st->t[0], w);
        sums[c][1] += vd_k_sum(st->t[1], w);
        const float *i1 = plane_of(st->xyb[n % RING][0], c, w),
                    *i2 = plane_of(st->xyb[n % RING][1], c, w);
        vd_k_s2_edge(i1, st->mu[0], i2, st->mu[1], st->t[0], st->t[1], st->t[2], st->t[3], w);
        for (int k = 0; k < 4; k++)
            sums[c][2 + k] += vd_k_sum(st->t[k], w);
    }
}

/* Vertical step n of every plane; top and bottom input rows may be out of
 * the image (zero rows). */
static void
vertical_step(struct scale_state *st, const struct vd_iir *g, int n, int h)
{
    int w = st->w, top = n - g->radius - 1, bottom = n + g->radius - 1;
    for (int q = 0; q < PLANES; q++) {
        const float *t = top >= 0 ? plane_of(st->hb[top % RING], q, w) : st->zero;
        const float *b = bottom < h ? plane_of(st->hb[bottom % RING], q, w) : st->zero;
        vd_k_iir_col(t, b, plane_of(st->p1, 3 * q, w), plane_of(st->p2, 3 * q, w),
                     plane_of(st->blur, q, w), w, g);
    }
}

static void
input_row(struct scale_state *st, struct pyramid py[2], int s, int r, const struct vd_iir *g)
{
    int w = st->w;
    for (int i = 0; i < 2; i++) {
        pyr_row(&py[i], s, r, st->lin[i]);
        float *x = st->xyb[r % RING][i];
        vd_k_xyb(st->lin[i], st->lin[i] + w, st->lin[i] + 2 * w, x, x + w, x + 2 * w, w);
    }
    float *hb = st->hb[r % RING];
    for (int c = 0; c < 3; c++) {
        float *a = plane_of(st->xyb[r % RING][0], c, w), *b = plane_of(st->xyb[r % RING][1], c, w);
        float *o = plane_of(hb, c * 5, w);
        vd_k_s2_centre(a, b, centre[c], st->prod, st->prod + w, st->prod + 2 * w,
                       st->prod + 3 * w, st->prod + 4 * w, w);
        vd_k_iir_rows(st->prod, o, w, 5, g);
    }
}

static void
run_scale(struct scale_state *st, struct pyramid py[2], int s, const struct vd_iir *g,
          double sums[3][6])
{
    int w = py[0].w[s], h = py[0].h[s], lag = g->radius - 1;
    st->w = w;
    memset(st->p1, 0, (size_t)PLANES * 3 * (size_t)w * sizeof(float));
    memset(st->p2, 0, (size_t)PLANES * 3 * (size_t)w * sizeof(float));
    memset(st->zero, 0, (size_t)w * sizeof(float));
    vd_k_iir_rows(st->ones, st->bx, w, 1, g);
    vd_k_iir_rows(st->ones, st->by, h, 1, g);
    for (int r = 0; r < h; r++) {
        input_row(st, py, s, r, g);
        vertical_step(st, g, r - lag, h);
        if (r - lag >= 0)
            score_row(st, r - lag, sums);
    }
    for (int n = h - lag > 0 ? h - lag : 0; n < h; n++) {
        vertical_step(st, g, n, h);
        score_row(st, n, sums);
    }
}

static double
final_score(const double norms[SCALES][3][6], int scales)
{
    double s = 0;
    int i = 0;
    for (int c = 0; c < 3; c++)
        for (int sc = 0; sc < scales; sc++)
            for (int n = 0; n < 2; n++) {
                s += weight[i++] * fabs(norms[sc][c][n]);       /* ssim */
                s += weight[i++] * fabs(norms[sc][c][2 + n]);   /* ringing */
                s += weight[i++] * fabs(norms[sc][c][4 + n]);   /* blur */
            }
    s *= 0.9562382616834844;
    s = 2.326765642916932 * s - 0.020884521182843837 * s * s + 6.248496625763138e-05 * s * s * s;
    return s > 0 ? 100.0 - 10.0 * pow(s, 0.6276336467831387) : 100.0;
}

int
vd_ssimulacra2(const struct img *a, const struct img *b, double *score, struct ig_error *err)
{
    if (vd_check_pair(a, b, 8, "ssimulacra2", err) != 0)
        return -1;
    struct pyramid py[2] = {{.im = a}, {.im = b}};
    float lut[257];
    for (int i = 0; i < 256; i++) {
        double v = i / 255.0;
        lut[i] = (float)(v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4));
    }
    lut[256] = lut[255];
    int scales = 0;
    for (int w = a->width, h = a->height; scales < SCALES && w >= 8 && h >= 8; scales++) {
        py[0].w[scales] = py[1].w[scales] = w;
        py[0].h[scales] = py[1].h[scales] = h;
        w = (w + 1) / 2;
        h = (h + 1) / 2;
    }
    /* One block: pyramid scratch, then the scale state sized for scale 0. */
    size_t w0 = (size_t)a->width, need = 0;
    for (int s = 1; s < scales; s++)
        need += 2 * 2 * 3 * (size_t)py[0].w[s - 1];
    size_t h0 = (size_t)a->height, long_side = w0 > h0 ? w0 : h0;
    need += w0 * (2 * 3 + RING * 2 * 3 + RING * PLANES + 2 * PLANES * 3 + 5 + PLANES + 1 + 1 + 2 + 4) +
            h0 + long_side;
    size_t stored = scales > STORED ? 3 * (size_t)py[0].w[STORED] * (size_t)py[0].h[STORED] : 0;
    need += 2 * stored;
    float *block = ig_malloc(need * sizeof(float)), *p = block;
    if (!block)
        return vd_oom(err, "ssimulacra2");
    for (int i = 0; i < 2; i++) {
        py[i].lut = lut;
        for (int s = 1; s < scales; s++)
            for (int k = 0; k < 2; k++, p += 3 * (size_t)py[0].w[s - 1])
                py[i].below[s][k] = p;
    }
    struct scale_state st;
    for (int i = 0; i < 2; i++, p += 3 * w0)
        st.lin[i] = p;
    for (int r = 0; r < RING; r++) {
        for (int i = 0; i < 2; i++, p += 3 * w0)
            st.xyb[r][i] = p;
        st.hb[r] = p;
        p += PLANES * w0;
    }
    st.p1 = p;
    st.p2 = p + PLANES * 3 * w0;
    p += 2 * PLANES * 3 * w0;
    st.prod = p;
    st.blur = p + 5 * w0;
    st.zero = st.blur + PLANES * w0;
    st.bx = st.zero + w0;
    st.by = st.bx + w0;
    st.ones = st.by + h0;
    p = st.ones + long_side;
    for (size_t i = 0; i < long_side; i++)
        st.ones[i] = 1;
    for (int k = 0; k < 2; k++, p += w0)
        st.mu[k] = p;
    for (int k = 0; k < 4; k++, p += w0)
        st.t[k] = p;
    struct vd_iir g;
    iir_init(&g, 1.5);
    float *planes = p;
    double norms[SCALES][3][6];
    for (int s = 0; s < scales; s++) {
        double sums[3][6] = {{0}};
        if (s == STORED)
            for (int i = 0; i < 2; i++)
                pyr_store(&py[i], planes + (size_t)i * stored);
        run_scale(&st, py, s, &g, sums);
        double px = (double)py[0].w[s] * py[0].h[s];
        for (int c = 0; c < 3; c++) {
            norms[s][c][0] = sums[c][0] / px;
            norms[s][c][1] = sqrt(sqrt(sums[c][1] / px));
            norms[s][c][2] = sums[c][2] / px;
            norms[s][c][3] = sqrt(sqrt(sums[c][3] / px));
            norms[s][c][4] = sums[c][4] / px;
            norms[s][c][5] = sqrt(sqrt(sums[c][5] / px));
        }
    }
    ig_free(block);
    *score = final_score(norms, scales);
    return 0;
}
