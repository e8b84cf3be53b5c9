/* SPDX-License-Identifier: MIT */
/* vd_internal.h -- what the metric units in validate/ share, and nobody else.
 *
 * Every metric streams: it pulls pixel rows on demand and keeps only a few
 * rows of float state, never full-size float planes, so a 50 MP pair costs
 * little more than the two decoded images. The row sources, the pair checks
 * and the vectorised kernels (simd.c) live here once. */
#ifndef IG_VALIDATE_VD_INTERNAL_H
#define IG_VALIDATE_VD_INTERNAL_H

#include "validate/metric.h"

/* Fills err with size_mismatch or image_too_small (both sides < min_side)
 * and returns -1, else 0. */
int vd_check_pair(const struct img *a, const struct img *b, int min_side, const char *metric,
                  struct ig_error *err);
int vd_oom(struct ig_error *err, const char *metric);

/* One 8-bit channel value composited over white by its alpha, 0..255. */
static inline float
vd_over_white(unsigned c, unsigned alpha)
{
    return 255.0f - (float)(255u - c) * (float)alpha * (1.0f / 255.0f);
}

/* ---- Row sources ------------------------------------------------------------ */

/* A pair of one-channel float images read one row at a time, top to
 * bottom: the luma of two RGBA images, one of their channels, or two
 * stored planes. */
struct vd_rows {
    int width, height;
    void (*get)(const struct vd_rows *r, int y, float *a, float *b);
    const struct img *ia, *ib;    /* RGBA sources */
    int channel;                  /* 0..2, or -1 for BT.601 luma */
    const float *pa, *pb;         /* plane sources, width*height */
};

void vd_rows_rgba(struct vd_rows *r, const struct img *a, const struct img *b, int channel);
void vd_rows_planes(struct vd_rows *r, const float *a, const float *b, int width, int height);

/* ---- The SSIM engine (ssim.c) ------------------------------------------------ */

/* Called once per output row of valid windows: y is the image row of the
 * window centres, the n values are for columns 5..5+n-1. ssim is the full
 * index, cs its contrast-structure part. */
typedef void (*vd_ssim_sink)(void *ctx, int y, const float *ssim, const float *cs, int n);

/* Wang SSIM with an 11x11 Gaussian (sigma 1.5) over the valid windows,
 * streamed: 11 rows of five blurred quantities are all it holds. */
int vd_ssim_run(const struct vd_rows *src, vd_ssim_sink sink, void *ctx, struct ig_error *err);

/* ---- Kernels (simd.c, vectorised with runtime CPU dispatch) ------------------- */

void vd_k_luma(const uint8_t *rgba, float *out, int n);
void vd_k_channel(const uint8_t *rgba, int channel, float *out, int n);
/* out[x] = sum k[i] * in[x+i], i < 11, for x < n. */
void vd_k_fir11(const float *in, float *out, int n, const float *k);
/* The five products the SSIM window needs, centred on 128 for precision. */
void vd_k_products(const float *a, const float *b, float *pa, float *pb, float *paa, float *pbb,
                   float *pab, int n);
/* out[x] = sum k[i] * rows[i][x], i < 11. */
void vd_k_col11(const float *const *rows, float *out, int n, const float *k);
/* SSIM and cs from the blurred (centred) quantities. */
void vd_k_ssim(const float *ma, const float *mb, const float *saa, const float *sbb,
               const float *sab, float *ssim, float *cs, int n);
/* PIL's "L": RGB composited over white, then (19595 R + 38470 G + 7471 B
 * + 0x8000) >> 16. */
void vd_k_pil_l(const uint8_t *rgba, uint8_t *out, int n);
int32_t vd_k_dot_u8(const uint8_t *in, const int32_t *k, int n);

/* SSIMULACRA2's pieces. The recursive Gaussian is libjxl's
 * (Charalampidis 2016): three second-order sections over a window of
 * radius N, one pass with N-1 samples of look-ahead. */
struct vd_iir {
    int radius;
    float n2[3], d1[3];
};
/* RGBA composited over white to linear RGB, three planar runs of n; lut
 * has 257 entries (the sRGB curve at 0..255 and a copy of the last), and
 * values between integers (from alpha) are interpolated. */
void vd_k_linear(const uint8_t *rgba, const float *lut, float *out, int n);
/* One row of a 2x2 box average: rows a and b of width bw to n = (bw+1)/2,
 * the last column repeated when bw is odd. */
void vd_k_down2(const float *a, const float *b, int bw, float *out, int n);
/* Linear RGB rows (0..1) to SSIMULACRA2's positive XYB rows. */
void vd_k_xyb(const float *r, const float *g, const float *b, float *x, float *y, float *bb,
              int n);
/* Horizontal pass over `rows` (at most 8) consecutive rows of n. */
void vd_k_iir_rows(const float *in, float *out, int n, int rows, const struct vd_iir *g);
/* One vertical step for a whole row: top and bottom are the input rows
 * n-N-1 and n+N-1 (zero rows outside), p1 and p2 the three sections'
 * last two outputs (3*n each). */
void vd_k_iir_col(const float *top, const float *bottom, float *p1, float *p2, float *out, int n,
                  const struct vd_iir *g);
/* SSIMULACRA2 blurs channel values centred on c (u = a - c) so float keeps
 * the variances: s11 - mu1² is rebuilt from the blurred u, u² with b1,
 * the blur of a constant 1 (bx[x] * by), which is below 1 near the
 * zero-padded borders. */
void vd_k_s2_centre(const float *a, const float *b, float c, float *u, float *v, float *uu,
                    float *vv, float *uv, int n);
void vd_k_s2_ssim(const float *bu, const float *bv, const float *buu, const float *bvv,
                  const float *buv, const float *bx, float by, float c, float *mu1, float *mu2,
                  float *d, float *d4, int n);
void vd_k_s2_edge(const float *i1, const float *m1, const float *i2, const float *m2, float *art,
                  float *art4, float *lost, float *lost4, int n);
/* Sum of n floats in 16 float lanes, then double. */
double vd_k_sum(const float *v, int n);

#endif
