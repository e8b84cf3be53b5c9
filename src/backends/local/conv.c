/* SPDX-License-Identifier: MIT */
/* conv.c -- blocked direct convolution, AVX-512 with a portable fallback.
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

void
conv_rows(const struct conv_args *a, int y0, int y1)
{
    if (have_avx512())
        rows512(a, y0, y1);
    else
        rows_portable(a, y0, y1);
}

const char *
conv_kernel_name(void)
{
    return have_avx512() ? "avx512" : "portable";
}
