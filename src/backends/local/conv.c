/* SPDX-License-Identifier: MIT */
/* conv.c -- blocked direct and Winograd convolution, AVX-512 with a
 * portable (direct) fallback.
 *
 * Why direct and not im2col + GEMM: measured on this machine, one thread,
 * 192x192 tile, warm buffers, OpenBLAS 0.3.21 (Debian; it picks its
 * AVX-512 "Cooperlake" kernels on Zen 5): 3x3 64->64 direct 38-48 GMAC/s
 * against 25 for im2col + sgemm, 5x5 47-52 against 25-27, 1x1 128->64
 * 30-35 against 23-29. The layers are thin (4 to 64 outputs), im2col
 * copies every input k*k times (and its buffer is k*k times an activation,
 * slow to touch first here), and GEMM cannot read a concatenation, an
 * upsampling or a depth-to-space in place. So no OpenBLAS.
 *
 * The kernel keeps a block of output pixels by output channels in zmm
 * accumulators (6 x 64 channels, 8 x 48, 12 x 32 or 12 x 16 for narrower
 * layers, 12 x 8 in ymm for layers of at most 8 outputs);
 * each input channel of each tap costs one broadcast per pixel and one
 * weight load per 16 channels. Weights are HWIO with the output axis padded
 * to 16 lanes, the layout TF.js ships, so the innermost load is contiguous.
 * Reading through upsampling or depth-to-space is folded into the per-tap
 * pixel addresses, so no high-resolution activation is ever stored.
 *
 * Layers of at most four outputs (slim's 64->4 growth convolutions) waste
 * most lanes either way round, so they run a second kernel that vectorises
 * over input channels instead: 16 channels of one pixel in a register, one
 * accumulator per pixel and output, and a horizontal sum at the end. Every
 * lane does useful work; measured on one thread, 3x3 64->4: 17.6 GMAC/s
 * with the 8-lane kernel, 44 with this one.
 *
 * Dispatch is at run time (__builtin_cpu_supports), since -march=native is
 * not allowed for the whole build; only this file's AVX-512 functions carry
 * a target attribute. Both kernels sum in the same order per lane, so
 * results differ from each other only by FMA rounding. */
#include "backends/local/conv.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stddef.h>

#define NP 6                   /* output pixels per block (portable kernel) */
#define NP_MAX 12              /* the widest AVX-512 block */

/* Where tap (kx) of block pixels [x, x+np) reads in each segment: pixel
 * offsets into the buffers and, through a shuffle, channel-group offsets. */
struct taps {
    long off[NP_MAX];
    int sub[NP_MAX];
};

static inline void
taps_at(const struct conv_args *a, int Y, int x, int n, int kx, int np, struct taps *t)
{
    const int f = a->up * a->shuffle, B = a->border;
    if (f == 1) {              /* the common case: no division per tap */
        for (int p = 0; p < np; p++) {
            t->off[p] = (long)(Y + B) * a->pitch + a->ox + x + (p < n ? p : 0) + kx - a->k / 2 + B;
            t->sub[p] = 0;
        }
        return;
    }
    int iy = (Y + f * B) / f - B, sy = Y - iy * f;
    for (int p = 0; p < np; p++) {
        int X = a->ox + x + (p < n ? p : 0) + kx - a->k / 2;
        int ix = (X + f * B) / f - B;
        t->off[p] = (long)(iy + B) * a->pitch + ix + B;
        t->sub[p] = a->shuffle > 1 ? sy * f + (X - ix * f) : 0;
    }
}

#define DEF_BLOCK512(NC, NPB)                                                                   \
    __attribute__((target("avx512f,fma"))) static void                                          \
    block512_##NC(const struct conv_args *a, int y, int x, int n, int jb)                       \
    {                                                                                           \
        __m512 acc[NPB][NC];                                                                    \
        _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++)                                   \
        {                                                                                       \
            __m512 bv = _mm512_loadu_ps(a->b + (jb + j) * CONV_LANES);                          \
            _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++) acc[p][j] = bv;              \
        }                                                                                       \
        const int r = a->k / 2;                                                                 \
        for (int ky = 0; ky < a->k; ky++) {                                                     \
            int Y = a->oy + y + ky - r;                                                         \
            for (int kx = 0; kx < a->k; kx++) {                                                 \
                struct taps t;                                                                  \
                taps_at(a, Y, x, n, kx, NPB, &t);                                               \
                const float *wk = a->w + (size_t)(ky * a->k + kx) * a->cin * a->cout_pad +      \
                                  (size_t)jb * CONV_LANES;                                      \
                for (int s = 0; s < a->nseg; s++) {                                             \
                    const struct conv_seg *g = &a->seg[s];                                      \
                    const float *pp[NPB];                                                       \
                    _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++) pp[p] =              \
                        g->base + t.off[p] * g->stride + t.sub[p] * g->c;                       \
                    for (int ci = 0; ci < g->c; ci++) {                                         \
                        __m512 wv[NC];                                                          \
                        _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) wv[j] =           \
                            _mm512_loadu_ps(wk + j * CONV_LANES);                               \
                        _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++)                  \
                        {                                                                       \
                            __m512 v = _mm512_set1_ps(pp[p][ci]);                               \
                            _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) acc[p][j] =   \
                                _mm512_fmadd_ps(v, wv[j], acc[p][j]);                           \
                        }                                                                       \
                        wk += a->cout_pad;                                                      \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        __m512 zero = _mm512_setzero_ps();                                                      \
        for (int p = 0; p < n; p++) {                                                           \
            size_t px = ((size_t)y * a->out_pitch + x + p);                                     \
            float *o = a->out + px * a->out_stride + (size_t)jb * CONV_LANES;                   \
            _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) {                             \
                __m512 v = a->relu ? _mm512_max_ps(acc[p][j], zero) : acc[p][j];                \
                if (a->res)                                                                     \
                    v = _mm512_add_ps(v, _mm512_loadu_ps(a->res + px * a->res_stride +          \
                                                         (size_t)(jb + j) * CONV_LANES));       \
                _mm512_storeu_ps(o + j * CONV_LANES, v);                                        \
            }                                                                                   \
        }                                                                                       \
    }

/* accumulators: 12x1, 12x2, 8x3, 6x4 zmm (at most 24, leaving room for the
 * weights and a broadcast in the 32 registers) */
DEF_BLOCK512(1, 12)
DEF_BLOCK512(2, 12)
DEF_BLOCK512(3, 8)
DEF_BLOCK512(4, 6)

/* Layers with at most 8 outputs (slim's 64->4 growth convs): 8-lane ymm
 * accumulators waste half as many lanes as 16-lane ones would. */
__attribute__((target("avx512f,fma"))) static void
block256(const struct conv_args *a, int y, int x, int n)
{
    enum { NPB = 12 };
    __m256 acc[NPB];
    __m256 bv = _mm256_loadu_ps(a->b);
    for (int p = 0; p < NPB; p++)
        acc[p] = bv;
    const int r = a->k / 2;
    for (int ky = 0; ky < a->k; ky++) {
        int Y = a->oy + y + ky - r;
        for (int kx = 0; kx < a->k; kx++) {
            struct taps t;
            taps_at(a, Y, x, n, kx, NPB, &t);
            const float *wk = a->w + (size_t)(ky * a->k + kx) * a->cin * a->cout_pad;
            for (int s = 0; s < a->nseg; s++) {
                const struct conv_seg *g = &a->seg[s];
                const float *pp[NPB];
#pragma GCC unroll 16
                for (int p = 0; p < NPB; p++)
                    pp[p] = g->base + t.off[p] * g->stride + t.sub[p] * g->c;
                for (int ci = 0; ci < g->c; ci++, wk += a->cout_pad) {
                    __m256 wv = _mm256_loadu_ps(wk);
#pragma GCC unroll 16
                    for (int p = 0; p < NPB; p++)
                        acc[p] = _mm256_fmadd_ps(_mm256_set1_ps(pp[p][ci]), wv, acc[p]);
                }
            }
        }
    }
    __m256 zero = _mm256_setzero_ps();
    for (int p = 0; p < n; p++) {
        size_t px = (size_t)y * a->out_pitch + x + p;
        __m256 v = a->relu ? _mm256_max_ps(acc[p], zero) : acc[p];
        if (a->res)
            v = _mm256_add_ps(v, _mm256_loadu_ps(a->res + px * a->res_stride));
        _mm256_storeu_ps(a->out + px * a->out_stride, v);
    }
}

/* Sum of each of four 16-lane accumulators, in lanes 0..3. */
__attribute__((target("avx512f,fma"))) static inline __m128
hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m512 x01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    __m512 x23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    __m512 y = _mm512_add_ps(_mm512_shuffle_ps(x01, x23, 0x44), _mm512_shuffle_ps(x01, x23, 0xEE));
    __m256 z = _mm256_add_ps(_mm512_castps512_ps256(y),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(y), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(z), _mm256_extractf128_ps(z, 1));
}

/* The channel-dot kernel: DOT_NP pixels x 4 outputs, each a 16-lane
 * partial sum over input channels. */
#define DOT_NP 6

__attribute__((target("avx512f,fma"))) static void
block_dot(const struct conv_args *a, int y, int x, int n)
{
    enum { NPB = DOT_NP, NO = CONV_DOT_MAX };
    __m512 acc[NPB][NO];
#pragma GCC unroll 16
    for (int p = 0; p < NPB; p++)
#pragma GCC unroll 16
        for (int o = 0; o < NO; o++)
            acc[p][o] = _mm512_setzero_ps();
    const int r = a->k / 2;
    for (int ky = 0; ky < a->k; ky++) {
        int Y = a->oy + y + ky - r;
        for (int kx = 0; kx < a->k; kx++) {
            struct taps t;
            taps_at(a, Y, x, n, kx, NPB, &t);
            const float *wk = a->wt + (size_t)(ky * a->k + kx) * NO * a->cin;
            for (int s = 0; s < a->nseg; s++) {
                const struct conv_seg *g = &a->seg[s];
                const float *pp[NPB];
#pragma GCC unroll 16
                for (int p = 0; p < NPB; p++)
                    pp[p] = g->base + t.off[p] * g->stride;
                for (int ci = 0; ci < g->c; ci += CONV_LANES, wk += CONV_LANES) {
                    __m512 wv[NO];
#pragma GCC unroll 16
                    for (int o = 0; o < NO; o++)
                        wv[o] = _mm512_loadu_ps(wk + (size_t)o * a->cin);
#pragma GCC unroll 16
                    for (int p = 0; p < NPB; p++) {
                        __m512 v = _mm512_loadu_ps(pp[p] + ci);
#pragma GCC unroll 16
                        for (int o = 0; o < NO; o++)
                            acc[p][o] = _mm512_fmadd_ps(v, wv[o], acc[p][o]);
                    }
                }
            }
        }
    }
    const __m128 bv = _mm_loadu_ps(a->b), zero = _mm_setzero_ps();
    for (int p = 0; p < n; p++) {
        size_t px = (size_t)y * a->out_pitch + x + p;
        __m128 v = _mm_add_ps(hsum4(acc[p][0], acc[p][1], acc[p][2], acc[p][3]), bv);
        if (a->relu)
            v = _mm_max_ps(v, zero);
        /* lanes 4..7 of the 8-lane output are zero, as the other kernel leaves them */
        __m256 w = _mm256_zextps128_ps256(v);
        if (a->res)
            w = _mm256_add_ps(w, _mm256_loadu_ps(a->res + px * a->res_stride));
        _mm256_storeu_ps(a->out + px * a->out_stride, w);
    }
}

/*---- Winograd F(m x m, k x k) --------------------------------------------
 *
 * A block of m x m outputs is computed from the (m+k-1)^2 input patch under
 * it: the patch is transformed (V = Bt d B), each of the (m+k-1)^2 points
 * is a small GEMM over input channels against weights transformed at plan
 * time (U = G g Gt), and the output transform (Y = At M A) gives the
 * block. Per output pixel that is (m+k-1)^2/m^2 multiply-adds per channel
 * pair instead of k^2: F(2x2, 3x3) 4 instead of 9, F(4x4, 3x3) 2.25,
 * F(2x2, 5x5) 9 and F(4x4, 5x5) 4 instead of 25. The points are 0, 1, -1
 * (then 2, -2 for six points, then 1/2, -1/2 for eight) and infinity, so
 * the coefficients stay at most 8 and the rounding within what the goldens
 * allow: simulated in float, the largest relative error of one block was
 * 3e-6 for F(2x2, 5x5) and 5.5e-6 for F(4x4, 5x5).
 *
 * The bytes must not depend on the tile or the thread count. Blocks sit on
 * multiples of m in image coordinates (a->px, a->py), so a pixel is always
 * computed at the same place in its block. What a block reads past the
 * region is another matter. Which patch pixels an output's rounding can
 * depend on follows from the zeros of At and Bt: Bt's rows for the finite
 * points leave out the patch's last pixel, the row for infinity leaves out
 * its first, and At's first row skips infinity while its other rows skip
 * the point 0, whose Bt row is the only one that reads the first pixel. So
 * an output reads, even in float, at most m-2 pixels beyond its own k x k
 * inputs on either side (conv_wino_reach):
 *   - at m = 2 none: what a block reads past the region reaches only the
 *     outputs that are not stored;
 *   - at m = 4 two, so the planner has the layer's input computed two
 *     pixels further out, and every stored output then reads the same
 *     values whatever the tiling. test_1_6 checks both, and that one pixel
 *     less at m = 4 changes outputs.
 * 4x4 blocks cost those extra margins on every earlier layer, so only
 * layers of at least 64 inputs and 64 outputs take them (conv_wino_block):
 * in slim F_0, GFF_2 and UPN1 (5x5). */

static const double wino_g23[4][3] = {{-1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double wino_g43[6][3] = {{0.25, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                      {0, 0, 1}};
static const double wino_g25[6][5] = {{0.25, 0, 0, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
                                      {0, 0, 0, 0, 1}};
static const double wino_g45[8][5] = {{-1, 0, 0, 0, 0},
                                      {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
                                      {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9},
                                      {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45},
                                      {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45},
                                      {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45},
                                      {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45},
                                      {0, 0, 0, 0, 1}};

int
conv_wino_block(int k, int cin, int cout_pad)
{
    if (cout_pad % CONV_LANES != 0)
        return 0;
    if (k != 3 && k != 5)
        return 0;
    return cin >= 64 && cout_pad >= 64 ? 4 : 2;
}

int
conv_wino_reach(int m)
{
    return m - 2;
}

static double
wino_g(int k, int m, int i, int j)
{
    if (k == 5)
        return m == 4 ? wino_g45[i][j] : wino_g25[i][j];
    return m == 4 ? wino_g43[i][j] : wino_g23[i][j];
}

/* Each point's k x k coefficients (G's row i by G's row j) are formed once,
 * not once per channel pair: this runs in the first, cold job. */
void
conv_wino_pack(int k, int m, int cin, int cout_pad, const float *w, float *u)
{
    const int al = m + k - 1;
    const size_t plane = (size_t)cin * cout_pad;
    double c[25];
    for (int i = 0; i < al; i++)
        for (int j = 0; j < al; j++) {
            for (int t = 0; t < k * k; t++)
                c[t] = wino_g(k, m, i, t / k) * wino_g(k, m, j, t % k);
            float *up = u + (size_t)(i * al + j) * plane;
            for (size_t q = 0; q < plane; q++) {
                double s = 0;
                for (int t = 0; t < k * k; t++)
                    s += c[t] * w[(size_t)t * plane + q];
                up[q] = (float)s;
            }
        }
}

size_t
conv_wino_scratch(int k, int m, int cin, int cout_pad)
{
    return (size_t)(m + k - 1) * (m + k - 1) * CONV_WINO_TILES * (size_t)(cin + cout_pad);
}

/* Bt along one axis, in place on v[0], v[s], ... (the same for every m
 * with these points: it depends only on the patch size al) */
__attribute__((target("avx512f,fma"))) static inline void
wino_bt(__m512 *v, int al, int s)
{
    if (al == 4) {
        __m512 d0 = v[0], d1 = v[s], d2 = v[2 * s], d3 = v[3 * s];
        v[0] = d2 - d0;
        v[s] = d1 + d2;
        v[2 * s] = d2 - d1;
        v[3 * s] = d3 - d1;
        return;
    }
    if (al == 8) {
        __m512 d[8];
        for (int i = 0; i < 8; i++)
            d[i] = v[i * s];
        const __m512 c525 = _mm512_set1_ps(5.25f), c425 = _mm512_set1_ps(-4.25f);
        __m512 s1 = _mm512_fmadd_ps(c425, d[4], d[2] + d[6]);
        __m512 s2 = _mm512_fmadd_ps(c425, d[3], d[1] + d[5]);
        __m512 t1 = _mm512_fmadd_ps(_mm512_set1_ps(-1.25f), d[4],
                                    _mm512_fmadd_ps(_mm512_set1_ps(0.25f), d[2], d[6]));
        __m512 t2 = _mm512_fmadd_ps(_mm512_set1_ps(2), d[5],
                                    _mm512_fmadd_ps(_mm512_set1_ps(-2.5f), d[3],
                                                    _mm512_mul_ps(_mm512_set1_ps(0.5f), d[1])));
        __m512 u1 = _mm512_fmadd_ps(_mm512_set1_ps(-5), d[4],
                                    _mm512_fmadd_ps(_mm512_set1_ps(4), d[2], d[6]));
        __m512 u2 = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), d[5],
                                    _mm512_fmadd_ps(_mm512_set1_ps(-2.5f), d[3],
                                                    _mm512_mul_ps(_mm512_set1_ps(2), d[1])));
        v[0] = _mm512_fmadd_ps(c525, d[2] - d[4], d[6] - d[0]);
        v[s] = s1 + s2;
        v[2 * s] = s1 - s2;
        v[3 * s] = t1 + t2;
        v[4 * s] = t1 - t2;
        v[5 * s] = u1 + u2;
        v[6 * s] = u1 - u2;
        v[7 * s] = _mm512_fmadd_ps(c525, d[3] - d[5], d[7] - d[1]);
        return;
    }
    const __m512 two = _mm512_set1_ps(2), four = _mm512_set1_ps(4), five = _mm512_set1_ps(5);
    __m512 d0 = v[0], d1 = v[s], d2 = v[2 * s], d3 = v[3 * s], d4 = v[4 * s], d5 = v[5 * s];
    __m512 d42 = d4 - d2, d43 = d4 - d3;
    v[0] = _mm512_fmadd_ps(four, d0, _mm512_fnmadd_ps(five, d2, d4));
    v[s] = _mm512_fnmadd_ps(four, d1 + d2, d3 + d4);
    v[2 * s] = _mm512_fmadd_ps(four, d1 - d2, d43);
    v[3 * s] = _mm512_fmadd_ps(two, d3 - d1, d42);
    v[4 * s] = _mm512_fmadd_ps(two, d1 - d3, d42);
    v[5 * s] = _mm512_fmadd_ps(four, d1, _mm512_fnmadd_ps(five, d3, d5));
}

/* At along one axis: the m outputs of x[0], x[s], ..., into y[0], y[ys], ... */
__attribute__((target("avx512f,fma"))) static inline void
wino_at(const __m512 *x, int al, int m, int s, __m512 *y, int ys)
{
    if (al == 4) {
        y[0] = x[0] + x[s] + x[2 * s];
        y[ys] = x[s] - x[2 * s] + x[3 * s];
        return;
    }
    if (al == 8) {             /* m = 4 */
        __m512 a1 = x[s] + x[2 * s], b1 = x[s] - x[2 * s];
        __m512 a2 = x[3 * s] + x[4 * s], b2 = x[3 * s] - x[4 * s];
        __m512 a3 = x[5 * s] + x[6 * s], b3 = x[5 * s] - x[6 * s];
        y[0] = x[0] + a1 + a2 + a3;
        y[ys] = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), b3, _mm512_fmadd_ps(_mm512_set1_ps(2), b2, b1));
        y[2 * ys] =
            _mm512_fmadd_ps(_mm512_set1_ps(0.25f), a3, _mm512_fmadd_ps(_mm512_set1_ps(4), a2, a1));
        y[3 * ys] = _mm512_fmadd_ps(_mm512_set1_ps(0.125f), b3,
                                    _mm512_fmadd_ps(_mm512_set1_ps(8), b2, b1 + x[7 * s]));
        return;
    }
    __m512 p12 = x[s] + x[2 * s], m12 = x[s] - x[2 * s];
    __m512 p34 = x[3 * s] + x[4 * s], m34 = x[3 * s] - x[4 * s];
    y[0] = x[0] + p12 + p34;
    if (m == 2) {
        y[ys] = _mm512_fmadd_ps(_mm512_set1_ps(2), m34, m12 + x[5 * s]);
        return;
    }
    y[ys] = _mm512_fmadd_ps(_mm512_set1_ps(2), m34, m12);
    y[2 * ys] = _mm512_fmadd_ps(_mm512_set1_ps(4), p34, p12);
    y[3 * ys] = _mm512_fmadd_ps(_mm512_set1_ps(8), m34, m12 + x[5 * s]);
}

/* V of the block whose top-left output is (bx, by), into v[point * vs + c]. */
__attribute__((target("avx512f,fma"))) static void
wino_in(const struct conv_args *a, int bx, int by, float *v, size_t vs)
{
    const int al = a->wm + a->k - 1, r = a->k / 2, B = a->border;
    const long iy = a->oy + by - r + B, ix = a->ox + bx - r + B;
    int c0 = 0;
    for (int s = 0; s < a->nseg; s++) {
        const struct conv_seg *g = &a->seg[s];
        for (int c = 0; c < g->c; c += CONV_LANES, c0 += CONV_LANES) {
            __m512 d[64];
            for (int y = 0; y < al; y++) {
                const float *row = g->base + ((iy + y) * a->pitch + ix) * g->stride + c;
                for (int x = 0; x < al; x++)
                    d[y * al + x] = _mm512_loadu_ps(row + (size_t)x * g->stride);
                wino_bt(d + y * al, al, 1);
            }
            for (int x = 0; x < al; x++)
                wino_bt(d + x, al, al);
            for (int p = 0; p < al * al; p++)
                _mm512_storeu_ps(v + (size_t)p * vs + c0, d[p]);
        }
    }
}

/* Y of the block at (bx, by) from m[point * ms + c]: bias, relu and the
 * residual as the direct kernel applies them; rows outside [y0, y1) and
 * columns outside the output are not stored. */
__attribute__((target("avx512f,fma"))) static void
wino_out(const struct conv_args *a, int bx, int by, int y0, int y1, const float *m, size_t ms)
{
    const int wm = a->wm, al = wm + a->k - 1;
    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < a->cout_pad; c += CONV_LANES) {
        __m512 t[64], z[32], out[16];
        for (int p = 0; p < al * al; p++)
            t[p] = _mm512_loadu_ps(m + (size_t)p * ms + c);
        /* along x: z[v * al + y] is output column v of patch row y */
        for (int y = 0; y < al; y++)
            wino_at(t + y * al, al, wm, 1, z + y, al);
        /* along y: out[u * wm + v] */
        for (int v = 0; v < wm; v++)
            wino_at(z + v * al, al, wm, 1, out + v, wm);
        const __m512 bv = _mm512_loadu_ps(a->b + c);
        for (int dy = 0; dy < wm; dy++) {
            int y = by + dy;
            if (y < y0 || y >= y1)
                continue;
            for (int dx = 0; dx < wm; dx++) {
                int x = bx + dx;
                if (x < 0 || x >= a->ow)
                    continue;
                size_t px = (size_t)y * a->out_pitch + x;
                __m512 o = out[dy * wm + dx] + bv;
                if (a->relu)
                    o = _mm512_max_ps(o, zero);
                if (a->res)
                    o = o + _mm512_loadu_ps(a->res + px * a->res_stride + c);
                _mm512_storeu_ps(a->out + px * a->out_stride + c, o);
            }
        }
    }
}

/* One point's GEMM for nt blocks: m[t][jb*16 ..] = sum over ci of
 * v[t][ci] * u[ci][jb*16 ..], NPB blocks by NC groups of 16 outputs in
 * registers, as in the direct kernel. */
#define DEF_WGEMM(NC, NPB)                                                                      \
    __attribute__((target("avx512f,fma"))) static void                                          \
    wgemm_##NC(const float *v, const float *u, float *m, int nt, int cin, int cout_pad, int jb) \
    {                                                                                           \
        for (int t0 = 0; t0 < nt; t0 += NPB) {                                                  \
            int n = nt - t0 < NPB ? nt - t0 : NPB;                                              \
            const float *vp[NPB];                                                               \
            _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++) vp[p] =                      \
                v + (size_t)(t0 + (p < n ? p : 0)) * cin;                                       \
            __m512 acc[NPB][NC];                                                                \
            _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++)                              \
                _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) acc[p][j] =               \
                    _mm512_setzero_ps();                                                        \
            const float *uk = u + (size_t)jb * CONV_LANES;                                      \
            for (int ci = 0; ci < cin; ci++, uk += cout_pad) {                                  \
                __m512 wv[NC];                                                                  \
                _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) wv[j] =                   \
                    _mm512_loadu_ps(uk + j * CONV_LANES);                                       \
                _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++)                          \
                {                                                                               \
                    __m512 x = _mm512_set1_ps(vp[p][ci]);                                       \
                    _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) acc[p][j] =           \
                        _mm512_fmadd_ps(x, wv[j], acc[p][j]);                                   \
                }                                                                               \
            }                                                                                   \
            for (int p = 0; p < n; p++)                                                         \
                _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++)                           \
                    _mm512_storeu_ps(m + (size_t)(t0 + p) * cout_pad +                          \
                                         (size_t)(jb + j) * CONV_LANES,                         \
                                     acc[p][j]);                                                \
        }                                                                                       \
    }

DEF_WGEMM(1, 12)
DEF_WGEMM(2, 12)
DEF_WGEMM(3, 8)
DEF_WGEMM(4, 6)

/* Output rows [y0, y1), which start on a block row unless y0 is 0. */
__attribute__((target("avx512f,fma"))) static void
wino_rows(const struct conv_args *a, int y0, int y1)
{
    const int wm = a->wm, al = wm + a->k - 1, P = al * al, nb = a->cout_pad / CONV_LANES;
    const size_t vs = (size_t)CONV_WINO_TILES * a->cin, ms = (size_t)CONV_WINO_TILES * a->cout_pad;
    float *V = a->scratch, *M = V + (size_t)P * vs;
    for (int by = y0 - (y0 + a->py) % wm; by < y1; by += wm)
        for (int bx0 = -a->px; bx0 < a->ow; bx0 += wm * CONV_WINO_TILES) {
            int nt = (a->ow - bx0 + wm - 1) / wm;
            nt = nt < CONV_WINO_TILES ? nt : CONV_WINO_TILES;
            for (int t = 0; t < nt; t++)
                wino_in(a, bx0 + wm * t, by, V + (size_t)t * a->cin, vs);
            for (int p = 0; p < P; p++) {
                const float *v = V + (size_t)p * vs, *u = a->u + (size_t)p * a->cin * a->cout_pad;
                float *m = M + (size_t)p * ms;
                for (int jb = 0; jb < nb; jb += 4) {
                    switch (nb - jb < 4 ? nb - jb : 4) {
                    case 1: wgemm_1(v, u, m, nt, a->cin, a->cout_pad, jb); break;
                    case 2: wgemm_2(v, u, m, nt, a->cin, a->cout_pad, jb); break;
                    case 3: wgemm_3(v, u, m, nt, a->cin, a->cout_pad, jb); break;
                    default: wgemm_4(v, u, m, nt, a->cin, a->cout_pad, jb); break;
                    }
                }
            }
            for (int t = 0; t < nt; t++)
                wino_out(a, bx0 + wm * t, by, y0, y1, M + (size_t)t * a->cout_pad, ms);
        }
}

__attribute__((target("avx512f,fma"))) static void
rows512(const struct conv_args *a, int y0, int y1)
{
    static const int np_of[5] = {0, 12, 12, 8, 6};
    int nb = a->cout_pad / CONV_LANES;
    if (a->wt) {
        for (int y = y0; y < y1; y++)
            for (int x = 0; x < a->ow; x += DOT_NP)
                block_dot(a, y, x, a->ow - x < DOT_NP ? a->ow - x : DOT_NP);
        return;
    }
    if (a->cout_pad == CONV_NARROW) {
        for (int y = y0; y < y1; y++)
            for (int x = 0; x < a->ow; x += 12)
                block256(a, y, x, a->ow - x < 12 ? a->ow - x : 12);
        return;
    }
    for (int y = y0; y < y1; y++)
        for (int jb = 0; jb < nb; jb += 4) {
            int nc = nb - jb < 4 ? nb - jb : 4, np = np_of[nc];
            for (int x = 0; x < a->ow; x += np) {
                int n = a->ow - x < np ? a->ow - x : np;
                switch (nc) {
                case 1: block512_1(a, y, x, n, jb); break;
                case 2: block512_2(a, y, x, n, jb); break;
                case 3: block512_3(a, y, x, n, jb); break;
                default: block512_4(a, y, x, n, jb); break;
                }
            }
        }
}

static void
rows_portable(const struct conv_args *a, int y0, int y1)
{
    const int r = a->k / 2;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < a->ow; x += NP) {
            int n = a->ow - x < NP ? a->ow - x : NP;
            for (int c0 = 0; c0 < a->cout_pad; c0 += CONV_LANES) {
                int L = a->cout_pad - c0 < CONV_LANES ? a->cout_pad - c0 : CONV_LANES;
                float acc[NP][CONV_LANES];
                for (int p = 0; p < NP; p++)
                    for (int l = 0; l < L; l++)
                        acc[p][l] = a->b[c0 + l];
                for (int ky = 0; ky < a->k; ky++)
                    for (int kx = 0; kx < a->k; kx++) {
                        struct taps t;
                        taps_at(a, a->oy + y + ky - r, x, n, kx, NP, &t);
                        const float *wk = a->w + (size_t)(ky * a->k + kx) * a->cin * a->cout_pad +
                                          (size_t)c0;
                        for (int s = 0; s < a->nseg; s++) {
                            const struct conv_seg *g = &a->seg[s];
                            for (int ci = 0; ci < g->c; ci++, wk += a->cout_pad)
                                for (int p = 0; p < NP; p++) {
                                    float v = g->base[t.off[p] * g->stride + t.sub[p] * g->c + ci];
                                    for (int l = 0; l < L; l++)
                                        acc[p][l] += v * wk[l];
                                }
                        }
                    }
                for (int p = 0; p < n; p++) {
                    size_t px = (size_t)y * a->out_pitch + x + p;
                    float *o = a->out + px * a->out_stride + (size_t)c0;
                    const float *rs = a->res ? a->res + px * a->res_stride + (size_t)c0 : NULL;
                    for (int l = 0; l < L; l++)
                        o[l] = (a->relu && acc[p][l] < 0 ? 0 : acc[p][l]) + (rs ? rs[l] : 0.0f);
                }
            }
        }
}

static atomic_int force_portable;

static int
have_avx512(void)
{
    return !atomic_load(&force_portable) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("fma");
}

void
conv_force_portable(int on)
{
    atomic_store(&force_portable, on != 0);
}

int
conv_wino_enabled(void)
{
    return have_avx512();
}

void
conv_rows(const struct conv_args *a, int y0, int y1)
{
    if (!have_avx512())
        rows_portable(a, y0, y1);
    else if (a->u)
        wino_rows(a, y0, y1);
    else
        rows512(a, y0, y1);
}

const char *
conv_kernel_name(void)
{
    return have_avx512() ? "avx512" : "portable";
}
