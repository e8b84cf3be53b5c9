/* SPDX-License-Identifier: MIT */
/* simd.c -- the inner loops of the metrics, written for the vectoriser.
 *
 * Each kernel is a flat loop over one row with restrict pointers and
 * selects instead of branches, compiled at -O3 with FMA contraction and
 * cloned for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and baseline
 * x86-64: the loader picks the clone for the CPU it runs on, so the project
 * needs no -march flag. Sanitizer builds go without the clones, whose ifunc
 * resolvers would run before ASan is set up. Everything that is not a
 * per-pixel loop stays in the metric files at the project's normal flags. */
#pragma GCC optimize("O3", "fp-contract=fast")
#include "validate/vd_internal.h"

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define VD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VD_CLONES
#endif

VD_CLONES void
vd_k_luma(const uint8_t *restrict rgba, float *restrict out, int n)
{
    for (int x = 0; x < n; x++) {
        const uint8_t *p = rgba + 4 * x;
        float r = vd_over_white(p[0], p[3]), g = vd_over_white(p[1], p[3]),
              b = vd_over_white(p[2], p[3]);
        out[x] = 0.299f * r + 0.587f * g + 0.114f * b;
    }
}

VD_CLONES void
vd_k_channel(const uint8_t *restrict rgba, int channel, float *restrict out, int n)
{
    for (int x = 0; x < n; x++)
        out[x] = vd_over_white(rgba[4 * x + channel], rgba[4 * x + 3]);
}

VD_CLONES void
vd_k_fir11(const float *restrict in, float *restrict out, int n, const float *restrict k)
{
    for (int x = 0; x < n; x++) {
        float s = k[0] * in[x];
        for (int i = 1; i < 11; i++)
            s += k[i] * in[x + i];
        out[x] = s;
    }
}

VD_CLONES void
vd_k_products(const float *restrict a, const float *restrict b, float *restrict pa,
              float *restrict pb, float *restrict paa, float *restrict pbb, float *restrict pab,
              int n)
{
    for (int x = 0; x < n; x++) {
        float u = a[x] - 128.0f, v = b[x] - 128.0f;
        pa[x] = u;
        pb[x] = v;
        paa[x] = u * u;
        pbb[x] = v * v;
        pab[x] = u * v;
    }
}

VD_CLONES void
vd_k_col11(const float *const *rows, float *restrict out, int n, const float *restrict k)
{
    const float *restrict r0 = rows[0], *restrict r1 = rows[1], *restrict r2 = rows[2],
                          *restrict r3 = rows[3], *restrict r4 = rows[4], *restrict r5 = rows[5],
                          *restrict r6 = rows[6], *restrict r7 = rows[7], *restrict r8 = rows[8],
                          *restrict r9 = rows[9], *restrict r10 = rows[10];
    for (int x = 0; x < n; x++)
        out[x] = k[0] * r0[x] + k[1] * r1[x] + k[2] * r2[x] + k[3] * r3[x] + k[4] * r4[x] +
                 k[5] * r5[x] + k[6] * r6[x] + k[7] * r7[x] + k[8] * r8[x] + k[9] * r9[x] +
                 k[10] * r10[x];
}

VD_CLONES void
vd_k_ssim(const float *restrict ma, const float *restrict mb, const float *restrict saa,
          const float *restrict sbb, const float *restrict sab, float *restrict ssim,
          float *restrict cs, int n)
{
    const float c1 = (0.01f * 255) * (0.01f * 255), c2 = (0.03f * 255) * (0.03f * 255);
    for (int x = 0; x < n; x++) {
        float u = ma[x], v = mb[x];
        float va = saa[x] - u * u, vb = sbb[x] - v * v, cov = sab[x] - u * v;
        float mu = u + 128.0f, mv = v + 128.0f;
        float c = (2.0f * cov + c2) / (va + vb + c2);
        /* (2 mu mv + C1) / (mu² + mv² + C1), written so that equal means
         * give exactly 1 whatever the compiler fuses. */
        float l = 1.0f - (u - v) * (u - v) / (mu * mu + mv * mv + c1);
        cs[x] = c;
        ssim[x] = c * l;
    }
}

VD_CLONES void
vd_k_pil_l(const uint8_t *restrict rgba, uint8_t *restrict out, int n)
{
    for (int x = 0; x < n; x++) {
        const uint8_t *p = rgba + 4 * x;
        uint32_t a = p[3], r = 255 - ((255 - p[0]) * a + 127) / 255,
                 g = 255 - ((255 - p[1]) * a + 127) / 255, b = 255 - ((255 - p[2]) * a + 127) / 255;
        out[x] = (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
    }
}

VD_CLONES int32_t
vd_k_dot_u8(const uint8_t *restrict in, const int32_t *restrict k, int n)
{
    int32_t s = 0;
    for (int x = 0; x < n; x++)
        s += (int32_t)in[x] * k[x];
    return s;
}

VD_CLONES void
vd_k_linear(const uint8_t *restrict rgba, const float *restrict lut, float *restrict out, int n)
{
    for (int x = 0; x < n; x++)
        for (int c = 0; c < 3; c++) {
            float v = vd_over_white(rgba[4 * x + c], rgba[4 * x + 3]);
            int i = (int)v;
            float f = v - (float)i;
            out[(size_t)c * n + x] = lut[i] + f * (lut[i + 1] - lut[i]);
        }
}

VD_CLONES void
vd_k_down2(const float *restrict a, const float *restrict b, int bw, float *restrict out, int n)
{
    int pairs = bw / 2;
    for (int x = 0; x < pairs; x++)
        out[x] = (((a[2 * x] + a[2 * x + 1]) + b[2 * x]) + b[2 * x + 1]) * 0.25f;
    if (n > pairs)
        out[pairs] = (((a[bw - 1] + a[bw - 1]) + b[bw - 1]) + b[bw - 1]) * 0.25f;
}

/* cbrt for positive x: a bit-level first guess refined by three Newton
 * steps, full float precision and, unlike cbrtf, vectorisable. */
static inline float
cbrt_pos(float x)
{
    union {
        float f;
        uint32_t u;
    } v = {.f = x};
    v.u = v.u / 3 + 709921077u;
    float y = v.f;
    for (int i = 0; i < 3; i++)
        y = (2.0f * y + x / (y * y)) * (1.0f / 3.0f);
    return y;
}

VD_CLONES void
vd_k_xyb(const float *restrict r, const float *restrict g, const float *restrict b,
         float *restrict ox, float *restrict oy, float *restrict ob, int n)
{
    const float bias = 0.0037930732552754493f, cb = 0.15595420054f;   /* cbrt(bias) */
    for (int x = 0; x < n; x++) {
        float m0 = 0.30f * r[x] + 0.622f * g[x] + 0.078f * b[x] + bias;
        float m1 = 0.23f * r[x] + 0.692f * g[x] + 0.078f * b[x] + bias;
        float m2 = 0.24342268924547819f * r[x] + 0.20476744424496821f * g[x] +
                   0.55180986650955360f * b[x] + bias;
        m0 = cbrt_pos(m0 > 0 ? m0 : 0) - cb;
        m1 = cbrt_pos(m1 > 0 ? m1 : 0) - cb;
        m2 = cbrt_pos(m2 > 0 ? m2 : 0) - cb;
        float xx = 0.5f * (m0 - m1), yy = 0.5f * (m0 + m1);
        ox[x] = xx * 14.0f + 0.42f;
        oy[x] = yy + 0.01f;
        ob[x] = (m2 - yy) + 0.55f;
    }
}

/* The recursion runs along the row, so it cannot be vectorised across x;
 * instead up to 8 rows advance together as the lanes of one vector. Lanes
 * see identical operations, so two equal rows give bit-equal outputs (the
 * SSIM term of an image against itself is then exactly 0), which a
 * compiler free to vectorise some rows and not others would not promise. */
typedef float vd_v8 __attribute__((vector_size(32)));

VD_CLONES void
vd_k_iir_rows(const float *restrict in, float *restrict out, int n, int rows,
              const struct vd_iir *g)
{
    vd_v8 p1[3] = {0}, p2[3] = {0}, n2[3], d1[3];
    for (int k = 0; k < 3; k++) {
        n2[k] = (vd_v8){0} + g->n2[k];
        d1[k] = (vd_v8){0} + g->d1[k];
    }
    int r = g->radius;
    for (int i = -r + 1; i < n; i++) {
        int left = i - r - 1, right = i + r - 1;
        vd_v8 sum = {0}, o = {0};
        for (int q = 0; q < rows; q++) {
            const float *row = in + (size_t)q * (size_t)n;
            sum[q] = (left >= 0 ? row[left] : 0.0f) + (right < n ? row[right] : 0.0f);
        }
        for (int k = 0; k < 3; k++) {
            vd_v8 v = n2[k] * sum - d1[k] * p1[k] - p2[k];
            p2[k] = p1[k];
            p1[k] = v;
            o += v;
        }
        if (i >= 0)
            for (int q = 0; q < rows; q++)
                out[(size_t)q * (size_t)n + (size_t)i] = o[q];
    }
}

VD_CLONES void
vd_k_iir_col(const float *restrict top, const float *restrict bottom, float *restrict p1,
             float *restrict p2, float *restrict out, int n, const struct vd_iir *g)
{
    for (int k = 0; k < 3; k++) {
        float n2 = g->n2[k], d1 = g->d1[k];
        float *restrict q1 = p1 + (size_t)k * n, *restrict q2 = p2 + (size_t)k * n;
        for (int x = 0; x < n; x++) {
            float v = n2 * (top[x] + bottom[x]) - d1 * q1[x] - q2[x];
            q2[x] = q1[x];
            q1[x] = v;
            out[x] = k ? out[x] + v : v;
        }
    }
}

VD_CLONES void
vd_k_s2_centre(const float *restrict a, const float *restrict b, float c, float *restrict u,
               float *restrict v, float *restrict uu, float *restrict vv, float *restrict uv,
               int n)
{
    for (int x = 0; x < n; x++) {
        float p = a[x] - c, q = b[x] - c;
        u[x] = p;
        v[x] = q;
        uu[x] = p * p;
        vv[x] = q * q;
        uv[x] = p * q;
    }
}

VD_CLONES void
vd_k_s2_ssim(const float *restrict bu, const float *restrict bv, const float *restrict buu,
             const float *restrict bvv, const float *restrict buv, const float *restrict bx,
             float by, float c, float *restrict mu1, float *restrict mu2, float *restrict d,
             float *restrict d4, int n)
{
    for (int x = 0; x < n; x++) {
        float b1 = bx[x] * by, out = 1.0f - b1, cb = c * b1;
        float m1 = bu[x] + cb, m2 = bv[x] + cb, edge = c * cb * out;
        /* One expression shape for all three, so that identical images
         * give bit-identical variances and a score of exactly 100. */
        float s11 = buu[x] - bu[x] * bu[x] + c * (bu[x] + bu[x]) * out + edge;
        float s22 = bvv[x] - bv[x] * bv[x] + c * (bv[x] + bv[x]) * out + edge;
        float s12 = buv[x] - bu[x] * bv[x] + c * (bu[x] + bv[x]) * out + edge;
        float num_m = 1.0f - (m1 - m2) * (m1 - m2);
        float v = 1.0f - num_m * (2 * s12 + 0.0009f) / (s11 + s22 + 0.0009f);
        v = v > 0 ? v : 0;
        mu1[x] = m1;
        mu2[x] = m2;
        d[x] = v;
        d4[x] = (v * v) * (v * v);
    }
}

VD_CLONES void
vd_k_s2_edge(const float *restrict i1, const float *restrict m1, const float *restrict i2,
             const float *restrict m2, float *restrict art, float *restrict art4,
             float *restrict lost, float *restrict lost4, int n)
{
    for (int x = 0; x < n; x++) {
        float e1 = i1[x] - m1[x], e2 = i2[x] - m2[x];
        e1 = e1 < 0 ? -e1 : e1;
        e2 = e2 < 0 ? -e2 : e2;
        float d = (1.0f + e2) / (1.0f + e1) - 1.0f;
        float a = d > 0 ? d : 0, l = d < 0 ? -d : 0;
        art[x] = a;
        art4[x] = (a * a) * (a * a);
        lost[x] = l;
        lost4[x] = (l * l) * (l * l);
    }
}

VD_CLONES double
vd_k_sum(const float *restrict v, int n)
{
    float lane[16] = {0};
    int x = 0;
    for (; x + 16 <= n; x += 16)
        for (int l = 0; l < 16; l++)
            lane[l] += v[x + l];
    double s = 0;
    for (int l = 0; l < 16; l++)
        s += lane[l];
    for (; x < n; x++)
        s += v[x];
    return s;
}
