/* SPDX-License-Identifier: MIT */
/* conv_simd.h -- the vector kernels of conv.c, written once for a 16-lane
 * float vector and included by conv.c once per instruction set.
 *
 * The includer defines:
 *   SIMD(name)        the name with the set's suffix
 *   SIMD_TARGET       the function attribute that enables the set
 *   vf                a 16-float vector type (one zmm, or two ymm)
 *   VLD VST VSET1 VZERO VADD VSUB VMUL VMAX
 *   VFMA(a, b, c)     a * b + c, fused
 *   VFNMA(a, b, c)    c - a * b, fused
 *   VHSUM4(a0..a3)    the sums of four vectors, in the lanes of an __m128
 *   SIMD_NC_MAX       most groups of 16 outputs a register block holds (2 or 4)
 *   SIMD_NP_1..NC_MAX pixels per block at that many groups (AVX-512 has 32
 *                     registers, AVX2 16: the blocks differ, the order of
 *                     the sums does not)
 *   SIMD_DOT_NP       pixels per block of the channel-dot kernel
 *
 * Every kernel sums each output lane in the same order whatever the block
 * shape (bias, then taps, segments and input channels in turn), so the two
 * instantiations give the same bytes, except the channel-dot kernel, whose
 * horizontal sum is shaped by the set. The file undefines all of these at
 * its end, ready for the next set. */

/* One input channel's step of a register block: acc[p][j] += x[p][ci] times
 * the weights' group j, for NPB pixels by NC groups of 16 outputs. */
#define BLOCK_STEP(NC, NPB, wp, x, ci)                                                          \
    do {                                                                                        \
        vf wv[NC];                                                                              \
        _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) wv[j] = VLD(wp + j * CONV_LANES); \
        _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++)                                  \
        {                                                                                       \
            vf xv = VSET1(x[p][ci]);                                                            \
            _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) acc[p][j] =                   \
                VFMA(xv, wv[j], acc[p][j]);                                                     \
        }                                                                                       \
    } while (0)

#define DEF_BLOCK(NC, NPB)                                                                      \
    SIMD_TARGET static void SIMD(block_##NC)(const struct conv_args *a, int y, int x, int n,     \
                                             int jb)                                            \
    {                                                                                           \
        vf acc[NPB][NC];                                                                        \
        _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++)                                   \
        {                                                                                       \
            vf bv = VLD(a->b + (jb + j) * CONV_LANES);                                          \
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
                    for (int ci = 0; ci < g->c; ci++, wk += a->cout_pad)                        \
                        BLOCK_STEP(NC, NPB, wk, pp, ci);                                        \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        vf zero = VZERO();                                                                      \
        for (int p = 0; p < n; p++) {                                                           \
            size_t px = ((size_t)y * a->out_pitch + x + p);                                     \
            float *o = a->out + px * a->out_stride + (size_t)jb * CONV_LANES;                   \
            _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) {                             \
                vf v = a->relu ? VMAX(acc[p][j], zero) : acc[p][j];                             \
                if (a->res)                                                                     \
                    v = VADD(v, VLD(a->res + px * a->res_stride + (size_t)(jb + j) * CONV_LANES)); \
                VST(o + j * CONV_LANES, v);                                                     \
            }                                                                                   \
        }                                                                                       \
    }

DEF_BLOCK(1, SIMD_NP_1)
DEF_BLOCK(2, SIMD_NP_2)
#if SIMD_NC_MAX >= 4
DEF_BLOCK(3, SIMD_NP_3)
DEF_BLOCK(4, SIMD_NP_4)
#endif
#undef DEF_BLOCK

/* Layers with at most 8 outputs (slim's 64->4 growth convs): 8-lane ymm
 * accumulators waste half as many lanes as 16-lane ones would. Both sets
 * have ymm, and 12 accumulators fit either's registers. */
SIMD_TARGET static void
SIMD(block256)(const struct conv_args *a, int y, int x, int n)
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

/* The channel-dot kernel: SIMD_DOT_NP pixels x 4 outputs, each a 16-lane
 * partial sum over input channels. */
SIMD_TARGET static void
SIMD(block_dot)(const struct conv_args *a, int y, int x, int n)
{
    enum { NPB = SIMD_DOT_NP, NO = CONV_DOT_MAX };
    vf acc[NPB][NO];
#pragma GCC unroll 16
    for (int p = 0; p < NPB; p++)
#pragma GCC unroll 16
        for (int o = 0; o < NO; o++)
            acc[p][o] = VZERO();
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
                    vf wv[NO];
#pragma GCC unroll 16
                    for (int o = 0; o < NO; o++)
                        wv[o] = VLD(wk + (size_t)o * a->cin);
#pragma GCC unroll 16
                    for (int p = 0; p < NPB; p++) {
                        vf v = VLD(pp[p] + ci);
#pragma GCC unroll 16
                        for (int o = 0; o < NO; o++)
                            acc[p][o] = VFMA(v, wv[o], acc[p][o]);
                    }
                }
            }
        }
    }
    const __m128 bv = _mm_loadu_ps(a->b), zero = _mm_setzero_ps();
    for (int p = 0; p < n; p++) {
        size_t px = (size_t)y * a->out_pitch + x + p;
        __m128 v = _mm_add_ps(VHSUM4(acc[p][0], acc[p][1], acc[p][2], acc[p][3]), bv);
        if (a->relu)
            v = _mm_max_ps(v, zero);
        /* lanes 4..7 of the 8-lane output are zero, as the other kernel leaves them */
        __m256 w = _mm256_insertf128_ps(_mm256_setzero_ps(), v, 0);
        if (a->res)
            w = _mm256_add_ps(w, _mm256_loadu_ps(a->res + px * a->res_stride));
        _mm256_storeu_ps(a->out + px * a->out_stride, w);
    }
}

/* Winograd (conv.c says how and why). Bt along one axis, in place on v[0],
 * v[s], ... (the same for every m with these points: it depends only on
 * the patch size al) */
SIMD_TARGET static inline void
SIMD(wino_bt)(vf *v, int al, int s)
{
    if (al == 4) {
        vf d0 = v[0], d1 = v[s], d2 = v[2 * s], d3 = v[3 * s];
        v[0] = VSUB(d2, d0);
        v[s] = VADD(d1, d2);
        v[2 * s] = VSUB(d2, d1);
        v[3 * s] = VSUB(d3, d1);
        return;
    }
    if (al == 8) {
        vf d[8];
        for (int i = 0; i < 8; i++)
            d[i] = v[i * s];
        const vf c525 = VSET1(5.25f), c425 = VSET1(-4.25f);
        vf s1 = VFMA(c425, d[4], VADD(d[2], d[6]));
        vf s2 = VFMA(c425, d[3], VADD(d[1], d[5]));
        vf t1 = VFMA(VSET1(-1.25f), d[4], VFMA(VSET1(0.25f), d[2], d[6]));
        vf t2 = VFMA(VSET1(2), d[5], VFMA(VSET1(-2.5f), d[3], VMUL(VSET1(0.5f), d[1])));
        vf u1 = VFMA(VSET1(-5), d[4], VFMA(VSET1(4), d[2], d[6]));
        vf u2 = VFMA(VSET1(0.5f), d[5], VFMA(VSET1(-2.5f), d[3], VMUL(VSET1(2), d[1])));
        v[0] = VFMA(c525, VSUB(d[2], d[4]), VSUB(d[6], d[0]));
        v[s] = VADD(s1, s2);
        v[2 * s] = VSUB(s1, s2);
        v[3 * s] = VADD(t1, t2);
        v[4 * s] = VSUB(t1, t2);
        v[5 * s] = VADD(u1, u2);
        v[6 * s] = VSUB(u1, u2);
        v[7 * s] = VFMA(c525, VSUB(d[3], d[5]), VSUB(d[7], d[1]));
        return;
    }
    const vf two = VSET1(2), four = VSET1(4), five = VSET1(5);
    vf d0 = v[0], d1 = v[s], d2 = v[2 * s], d3 = v[3 * s], d4 = v[4 * s], d5 = v[5 * s];
    vf d42 = VSUB(d4, d2), d43 = VSUB(d4, d3);
    v[0] = VFMA(four, d0, VFNMA(five, d2, d4));
    v[s] = VFNMA(four, VADD(d1, d2), VADD(d3, d4));
    v[2 * s] = VFMA(four, VSUB(d1, d2), d43);
    v[3 * s] = VFMA(two, VSUB(d3, d1), d42);
    v[4 * s] = VFMA(two, VSUB(d1, d3), d42);
    v[5 * s] = VFMA(four, d1, VFNMA(five, d3, d5));
}

/* At along one axis: the m outputs of x[0], x[s], ..., into y[0], y[ys], ... */
SIMD_TARGET static inline void
SIMD(wino_at)(const vf *x, int al, int m, int s, vf *y, int ys)
{
    if (al == 4) {
        y[0] = VADD(VADD(x[0], x[s]), x[2 * s]);
        y[ys] = VADD(VSUB(x[s], x[2 * s]), x[3 * s]);
        return;
    }
    if (al == 8) {             /* m = 4 */
        vf a1 = VADD(x[s], x[2 * s]), b1 = VSUB(x[s], x[2 * s]);
        vf a2 = VADD(x[3 * s], x[4 * s]), b2 = VSUB(x[3 * s], x[4 * s]);
        vf a3 = VADD(x[5 * s], x[6 * s]), b3 = VSUB(x[5 * s], x[6 * s]);
        y[0] = VADD(VADD(VADD(x[0], a1), a2), a3);
        y[ys] = VFMA(VSET1(0.5f), b3, VFMA(VSET1(2), b2, b1));
        y[2 * ys] = VFMA(VSET1(0.25f), a3, VFMA(VSET1(4), a2, a1));
        y[3 * ys] = VFMA(VSET1(0.125f), b3, VFMA(VSET1(8), b2, VADD(b1, x[7 * s])));
        return;
    }
    vf p12 = VADD(x[s], x[2 * s]), m12 = VSUB(x[s], x[2 * s]);
    vf p34 = VADD(x[3 * s], x[4 * s]), m34 = VSUB(x[3 * s], x[4 * s]);
    y[0] = VADD(VADD(x[0], p12), p34);
    if (m == 2) {
        y[ys] = VFMA(VSET1(2), m34, VADD(m12, x[5 * s]));
        return;
    }
    y[ys] = VFMA(VSET1(2), m34, m12);
    y[2 * ys] = VFMA(VSET1(4), p34, p12);
    y[3 * ys] = VFMA(VSET1(8), m34, VADD(m12, x[5 * s]));
}

/* V of the block whose top-left output is (bx, by), into v[point * vs + c]. */
SIMD_TARGET static void
SIMD(wino_in)(const struct conv_args *a, int bx, int by, float *v, size_t vs)
{
    const int al = a->wm + a->k - 1, r = a->k / 2, B = a->border;
    const long iy = a->oy + by - r + B, ix = a->ox + bx - r + B;
    int c0 = 0;
    for (int s = 0; s < a->nseg; s++) {
        const struct conv_seg *g = &a->seg[s];
        for (int c = 0; c < g->c; c += CONV_LANES, c0 += CONV_LANES) {
            vf d[64];
            for (int y = 0; y < al; y++) {
                const float *row = g->base + ((iy + y) * a->pitch + ix) * g->stride + c;
                for (int x = 0; x < al; x++)
                    d[y * al + x] = VLD(row + (size_t)x * g->stride);
                SIMD(wino_bt)(d + y * al, al, 1);
            }
            for (int x = 0; x < al; x++)
                SIMD(wino_bt)(d + x, al, al);
            for (int p = 0; p < al * al; p++)
                VST(v + (size_t)p * vs + c0, d[p]);
        }
    }
}

/* Y of the block at (bx, by) from m[point * ms + c]: bias, relu and the
 * residual as the direct kernel applies them; rows outside [y0, y1) and
 * columns outside the output are not stored. */
SIMD_TARGET static void
SIMD(wino_out)(const struct conv_args *a, int bx, int by, int y0, int y1, const float *m,
               size_t ms)
{
    const int wm = a->wm, al = wm + a->k - 1;
    const vf zero = VZERO();
    for (int c = 0; c < a->cout_pad; c += CONV_LANES) {
        vf t[64], z[32], out[16];
        for (int p = 0; p < al * al; p++)
            t[p] = VLD(m + (size_t)p * ms + c);
        /* along x: z[v * al + y] is output column v of patch row y */
        for (int y = 0; y < al; y++)
            SIMD(wino_at)(t + y * al, al, wm, 1, z + y, al);
        /* along y: out[u * wm + v] */
        for (int v = 0; v < wm; v++)
            SIMD(wino_at)(z + v * al, al, wm, 1, out + v, wm);
        const vf bv = VLD(a->b + c);
        for (int dy = 0; dy < wm; dy++) {
            int y = by + dy;
            if (y < y0 || y >= y1)
                continue;
            for (int dx = 0; dx < wm; dx++) {
                int x = bx + dx;
                if (x < 0 || x >= a->ow)
                    continue;
                size_t px = (size_t)y * a->out_pitch + x;
                vf o = VADD(out[dy * wm + dx], bv);
                if (a->relu)
                    o = VMAX(o, zero);
                if (a->res)
                    o = VADD(o, VLD(a->res + px * a->res_stride + c));
                VST(a->out + px * a->out_stride + c, o);
            }
        }
    }
}

/* One point's GEMM for nt blocks: m[t][jb*16 ..] = sum over ci of
 * v[t][ci] * u[ci][jb*16 ..], NPB blocks by NC groups of 16 outputs in
 * registers, as in the direct kernel. */
#define DEF_WGEMM(NC, NPB)                                                                      \
    SIMD_TARGET static void SIMD(wgemm_##NC)(const float *v, const float *u, float *m, int nt,  \
                                             int cin, int cout_pad, int jb)                     \
    {                                                                                           \
        for (int t0 = 0; t0 < nt; t0 += NPB) {                                                  \
            int n = nt - t0 < NPB ? nt - t0 : NPB;                                              \
            const float *vp[NPB];                                                               \
            _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++) vp[p] =                      \
                v + (size_t)(t0 + (p < n ? p : 0)) * cin;                                       \
            vf acc[NPB][NC];                                                                    \
            _Pragma("GCC unroll 16") for (int p = 0; p < NPB; p++)                              \
                _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++) acc[p][j] = VZERO();      \
            const float *uk = u + (size_t)jb * CONV_LANES;                                      \
            for (int ci = 0; ci < cin; ci++, uk += cout_pad)                                    \
                BLOCK_STEP(NC, NPB, uk, vp, ci);                                                \
            for (int p = 0; p < n; p++)                                                         \
                _Pragma("GCC unroll 16") for (int j = 0; j < NC; j++)                           \
                    VST(m + (size_t)(t0 + p) * cout_pad + (size_t)(jb + j) * CONV_LANES,        \
                        acc[p][j]);                                                             \
        }                                                                                       \
    }

DEF_WGEMM(1, SIMD_NP_1)
DEF_WGEMM(2, SIMD_NP_2)
#if SIMD_NC_MAX >= 4
DEF_WGEMM(3, SIMD_NP_3)
DEF_WGEMM(4, SIMD_NP_4)
#endif
#undef DEF_WGEMM
#undef BLOCK_STEP

/* Output rows [y0, y1), which start on a block row unless y0 is 0. */
SIMD_TARGET static void
SIMD(wino_rows)(const struct conv_args *a, int y0, int y1)
{
    const int wm = a->wm, al = wm + a->k - 1, P = al * al, nb = a->cout_pad / CONV_LANES;
    const size_t vs = (size_t)CONV_WINO_TILES * a->cin, ms = (size_t)CONV_WINO_TILES * a->cout_pad;
    float *V = a->scratch, *M = V + (size_t)P * vs;
    for (int by = y0 - (y0 + a->py) % wm; by < y1; by += wm)
        for (int bx0 = -a->px; bx0 < a->ow; bx0 += wm * CONV_WINO_TILES) {
            int nt = (a->ow - bx0 + wm - 1) / wm;
            nt = nt < CONV_WINO_TILES ? nt : CONV_WINO_TILES;
            for (int t = 0; t < nt; t++)
                SIMD(wino_in)(a, bx0 + wm * t, by, V + (size_t)t * a->cin, vs);
            for (int p = 0; p < P; p++) {
                const float *v = V + (size_t)p * vs, *u = a->u + (size_t)p * a->cin * a->cout_pad;
                float *m = M + (size_t)p * ms;
                for (int jb = 0; jb < nb; jb += SIMD_NC_MAX) {
                    switch (nb - jb < SIMD_NC_MAX ? nb - jb : SIMD_NC_MAX) {
                    case 1: SIMD(wgemm_1)(v, u, m, nt, a->cin, a->cout_pad, jb); break;
#if SIMD_NC_MAX >= 4
                    case 2: SIMD(wgemm_2)(v, u, m, nt, a->cin, a->cout_pad, jb); break;
                    case 3: SIMD(wgemm_3)(v, u, m, nt, a->cin, a->cout_pad, jb); break;
                    default: SIMD(wgemm_4)(v, u, m, nt, a->cin, a->cout_pad, jb); break;
#else
                    default: SIMD(wgemm_2)(v, u, m, nt, a->cin, a->cout_pad, jb); break;
#endif
                    }
                }
            }
            for (int t = 0; t < nt; t++)
                SIMD(wino_out)(a, bx0 + wm * t, by, y0, y1, M + (size_t)t * a->cout_pad, ms);
        }
}

/* Output rows [y0, y1) of the direct kernels. */
SIMD_TARGET static void
SIMD(direct_rows)(const struct conv_args *a, int y0, int y1)
{
#if SIMD_NC_MAX >= 4
    static const int np_of[5] = {0, SIMD_NP_1, SIMD_NP_2, SIMD_NP_3, SIMD_NP_4};
#else
    static const int np_of[3] = {0, SIMD_NP_1, SIMD_NP_2};
#endif
    int nb = a->cout_pad / CONV_LANES;
    if (a->wt) {
        for (int y = y0; y < y1; y++)
            for (int x = 0; x < a->ow; x += SIMD_DOT_NP)
                SIMD(block_dot)(a, y, x, a->ow - x < SIMD_DOT_NP ? a->ow - x : SIMD_DOT_NP);
        return;
    }
    if (a->cout_pad == CONV_NARROW) {
        for (int y = y0; y < y1; y++)
            for (int x = 0; x < a->ow; x += 12)
                SIMD(block256)(a, y, x, a->ow - x < 12 ? a->ow - x : 12);
        return;
    }
    for (int y = y0; y < y1; y++)
        for (int jb = 0; jb < nb; jb += SIMD_NC_MAX) {
            int nc = nb - jb < SIMD_NC_MAX ? nb - jb : SIMD_NC_MAX, np = np_of[nc];
            for (int x = 0; x < a->ow; x += np) {
                int n = a->ow - x < np ? a->ow - x : np;
                switch (nc) {
                case 1: SIMD(block_1)(a, y, x, n, jb); break;
#if SIMD_NC_MAX >= 4
                case 2: SIMD(block_2)(a, y, x, n, jb); break;
                case 3: SIMD(block_3)(a, y, x, n, jb); break;
                default: SIMD(block_4)(a, y, x, n, jb); break;
#else
                default: SIMD(block_2)(a, y, x, n, jb); break;
#endif
                }
            }
        }
}

/* What conv_rows runs on this set. */
SIMD_TARGET static void
SIMD(rows)(const struct conv_args *a, int y0, int y1)
{
    if (a->u)
        SIMD(wino_rows)(a, y0, y1);
    else
        SIMD(direct_rows)(a, y0, y1);
}

#undef vf
#undef SIMD
#undef SIMD_TARGET
#undef VLD
#undef VST
#undef VSET1
#undef VZERO
#undef VADD
#undef VSUB
#undef VMUL
#undef VMAX
#undef VFMA
#undef VFNMA
#undef VHSUM4
#undef SIMD_NC_MAX
#undef SIMD_NP_1
#undef SIMD_NP_2
#undef SIMD_NP_3
#undef SIMD_NP_4
#undef SIMD_DOT_NP
