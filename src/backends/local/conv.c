/* SPDX-License-Identifier: MIT */
/* conv.c -- blocked direct and Winograd convolution, for AVX-512 and for
 * AVX2 (the same kernels, conv_simd.h), with a portable direct fallback.
 *
 * Why direct and not im2col + GEMM: measured on a Zen 5 host, one thread,
 * 192x192 tile, warm buffers, OpenBLAS 0.3.21 (Debian; it picks its
 * AVX-512 "Cooperlake" kernels on Zen 5): 3x3 64->64 direct 38-48 GMAC/s
 * against 25 for im2col + sgemm, 5x5 47-52 against 25-27, 1x1 128->64
 * 30-35 against 23-29. The layers are thin (4 to 64 outputs), im2col
 * copies every input k*k times (and its buffer is k*k times an activation,
 * slow to touch first here), and GEMM cannot read a concatenation, an
 * upsampling or a depth-to-space in place. So no OpenBLAS.
 *
 * The kernel keeps a block of output pixels by output channels in vector
 * accumulators (on AVX-512 6 x 64 channels, 8 x 48, 12 x 32 or 12 x 16 for
 * narrower layers; on AVX2, with half the registers of half the width,
 * 3 x 32 or 6 x 16; 12 x 8 in ymm for layers of at most 8 outputs on both);
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
 * not allowed for the whole build; only the vector kernels carry a target
 * attribute. Before AVX2 had its own, a machine without AVX-512 ran the
 * portable kernel: slim x2 on 512x512 took 50 s steady (1.2 GMAC/s) on a
 * 2-core Zen 1 (AVX2, 35 GMAC/s peak), where the AVX2 kernels take
 * 1.1-1.4 s and ONNX Runtime 2.3-3.1 s. All kernels sum each lane in the
 * same order, so results differ from each other only by FMA rounding, and
 * the two vector sets not at all outside the channel-dot kernel (test 1.7). */
#include "backends/local/conv.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#define NP 6                   /* output pixels per block (portable kernel) */
#define NP_MAX 12              /* the widest vector block */

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

/*---- The vector kernels, once per instruction set ------------------------ */

/* AVX-512: one zmm per 16 lanes; accumulators 12x1, 12x2, 8x3, 6x4 zmm (at
 * most 24, leaving room for the weights and a broadcast in 32 registers). */
#define vf __m512
#define SIMD(name) name##_avx512
#define SIMD_TARGET __attribute__((target("avx512f,fma")))
#define VLD _mm512_loadu_ps
#define VST _mm512_storeu_ps
#define VSET1 _mm512_set1_ps
#define VZERO _mm512_setzero_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VMAX _mm512_max_ps
#define VFMA _mm512_fmadd_ps
#define VFNMA _mm512_fnmadd_ps
#define VHSUM4 hsum4_avx512
#define SIMD_NC_MAX 4
#define SIMD_NP_1 12
#define SIMD_NP_2 12
#define SIMD_NP_3 8
#define SIMD_NP_4 6
#define SIMD_DOT_NP 6

/* Sum of each of four 16-lane accumulators, in lanes 0..3. */
SIMD_TARGET static inline __m128
hsum4_avx512(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m512 x01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    __m512 x23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    __m512 y = _mm512_add_ps(_mm512_shuffle_ps(x01, x23, 0x44), _mm512_shuffle_ps(x01, x23, 0xEE));
    __m256 z = _mm256_add_ps(_mm512_castps512_ps256(y),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(y), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(z), _mm256_extractf128_ps(z, 1));
}

#include "backends/local/conv_simd.h"

/* AVX2: 16 lanes as two ymm, and 16 registers, so blocks of 6 pixels by
 * 16 outputs or 3 by 32 (12 accumulators, the weights and a broadcast);
 * the channel-dot kernel takes one pixel at a time (8 accumulators). */
typedef struct {
    __m256 l, h;
} vf2;
#define vf vf2
#define SIMD(name) name##_avx2
#define SIMD_TARGET __attribute__((target("avx2,fma")))

SIMD_TARGET static inline vf2
vld2(const float *p)
{
    return (vf2){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}

SIMD_TARGET static inline void
vst2(float *p, vf2 v)
{
    _mm256_storeu_ps(p, v.l);
    _mm256_storeu_ps(p + 8, v.h);
}

SIMD_TARGET static inline vf2
vset2(float x)
{
    __m256 v = _mm256_set1_ps(x);
    return (vf2){v, v};
}

SIMD_TARGET static inline vf2
vzero2(void)
{
    return (vf2){_mm256_setzero_ps(), _mm256_setzero_ps()};
}

#define DEF_OP2(name, op)                                                                       \
    SIMD_TARGET static inline vf2 name(vf2 a, vf2 b)                                            \
    {                                                                                           \
        return (vf2){op(a.l, b.l), op(a.h, b.h)};                                               \
    }
DEF_OP2(vadd2, _mm256_add_ps)
DEF_OP2(vsub2, _mm256_sub_ps)
DEF_OP2(vmul2, _mm256_mul_ps)
DEF_OP2(vmax2, _mm256_max_ps)
#undef DEF_OP2

SIMD_TARGET static inline vf2
vfma2(vf2 a, vf2 b, vf2 c)
{
    return (vf2){_mm256_fmadd_ps(a.l, b.l, c.l), _mm256_fmadd_ps(a.h, b.h, c.h)};
}

SIMD_TARGET static inline vf2
vfnma2(vf2 a, vf2 b, vf2 c)
{
    return (vf2){_mm256_fnmadd_ps(a.l, b.l, c.l), _mm256_fnmadd_ps(a.h, b.h, c.h)};
}

SIMD_TARGET static inline __m128
hsum4_avx2(vf2 a0, vf2 a1, vf2 a2, vf2 a3)
{
    __m256 x01 = _mm256_hadd_ps(_mm256_add_ps(a0.l, a0.h), _mm256_add_ps(a1.l, a1.h));
    __m256 x23 = _mm256_hadd_ps(_mm256_add_ps(a2.l, a2.h), _mm256_add_ps(a3.l, a3.h));
    __m256 y = _mm256_hadd_ps(x01, x23);
    return _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1));
}

#define VLD vld2
#define VST vst2
#define VSET1 vset2
#define VZERO vzero2
#define VADD vadd2
#define VSUB vsub2
#define VMUL vmul2
#define VMAX vmax2
#define VFMA vfma2
#define VFNMA vfnma2
#define VHSUM4 hsum4_avx2
#define SIMD_NC_MAX 2
#define SIMD_NP_1 6
#define SIMD_NP_2 3
#define SIMD_DOT_NP 1

#include "backends/local/conv_simd.h"

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

enum isa { ISA_PORTABLE, ISA_AVX2, ISA_AVX512 };

static const char *const isa_names[] = {"portable", "avx2", "avx512"};

static enum isa
isa_best(void)
{
    if (!__builtin_cpu_supports("fma"))
        return ISA_PORTABLE;
    if (__builtin_cpu_supports("avx512f"))
        return ISA_AVX512;
    return __builtin_cpu_supports("avx2") ? ISA_AVX2 : ISA_PORTABLE;
}

/* -1: the best the CPU has; else the kernel a test forced */
static atomic_int forced = -1;

static enum isa
isa_now(void)
{
    int f = atomic_load(&forced);
    return f >= 0 ? (enum isa)f : isa_best();
}

int
conv_force_kernel(const char *name)
{
    if (!name) {
        atomic_store(&forced, -1);
        return 0;
    }
    for (int i = 0; i <= (int)isa_best(); i++)
        if (strcmp(name, isa_names[i]) == 0) {
            atomic_store(&forced, i);
            return 0;
        }
    return -1;
}

int
conv_wino_enabled(void)
{
    return isa_now() != ISA_PORTABLE;
}

void
conv_rows(const struct conv_args *a, int y0, int y1)
{
    switch (isa_now()) {
    case ISA_AVX512: rows_avx512(a, y0, y1); break;
    case ISA_AVX2: rows_avx2(a, y0, y1); break;
    default: rows_portable(a, y0, y1); break;
    }
}

const char *
conv_kernel_name(void)
{
    return isa_names[isa_now()];
}
