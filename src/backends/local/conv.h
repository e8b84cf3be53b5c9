/* SPDX-License-Identifier: MIT */
/* conv.h -- the direct convolution kernel of the RDN engine.
 *
 * Tensors are NHWC float planes with a zero border (see rdn.c): every
 * buffer of a tile shares one pitch (pixels per row, border included), and
 * a pixel's channels are contiguous with a per-buffer stride. A convolution
 * reads a list of such segments as one input (a Concatenate costs nothing),
 * optionally through a nearest upsampling or a depth-to-space (both cost
 * nothing either: they are index arithmetic on the read). */
#ifndef IG_BACKENDS_LOCAL_CONV_H
#define IG_BACKENDS_LOCAL_CONV_H

#include <stddef.h>

#define CONV_LANES 16          /* output channels are padded to this, */
#define CONV_NARROW 8          /* or to this when there are at most 8 */
#define CONV_MAX_SEGS 256
#define CONV_DOT_MAX 4         /* most outputs the channel-dot kernel takes */
#define CONV_WINO_TILES 12     /* output blocks per Winograd chunk */

struct conv_seg {
    const float *base;         /* pixel (-border, -border) of the buffer */
    int c;                     /* channels taken (after a shuffle: per sub-pixel) */
    int stride;                /* floats per pixel */
};

struct conv_args {
    int k;                     /* kernel size (odd) */
    int cin, cout_pad;         /* input channels; outputs rounded up to CONV_NARROW or CONV_LANES */
    const float *w;            /* [k*k][cin][cout_pad] */
    const float *b;            /* [cout_pad] */
    /* NULL, or the same weights as [k*k][CONV_DOT_MAX][cin] (missing
     * outputs zero) for the channel-dot kernel: a layer of at most
     * CONV_DOT_MAX outputs whose segments are whole groups of CONV_LANES
     * channels, read without upsampling or depth-to-space */
    const float *wt;
    /* NULL, or the same weights for the Winograd kernel with wm x wm
     * output blocks, as [(wm+k-1)^2][cin][cout_pad] (conv_wino_pack); then
     * px and py are output (0, 0)'s image coordinates modulo wm, since the
     * blocks sit on multiples of wm whatever the tile, and scratch holds
     * conv_wino_scratch floats of the calling thread's own */
    const float *u;
    int wm, px, py;
    float *scratch;
    const struct conv_seg *seg;
    int nseg;
    int pitch, border;         /* of the input buffers */
    int up;                    /* input is read through nearest upsampling by up (1: none) */
    int shuffle;               /* input is read through depth-to-space by shuffle (1: none) */
    int relu;
    const float *res;          /* NULL, or a residual added after the bias (and relu) */
    int res_stride;            /* floats per pixel; rows of it share out_pitch */
    float *out;                /* output pixel (0, 0) */
    int out_stride, out_pitch; /* floats per pixel, pixels per row */
    int ow, oh;                /* output size */
    int ox, oy;                /* where output (0, 0) sits in the (upsampled) input grid */
};

/* Computes output rows [y0, y1). Picks the AVX-512 kernels when the CPU has
 * them, else the AVX2 ones, else a portable direct kernel; all give the
 * same results to float rounding (the two vector sets the same bytes, but
 * for the channel-dot kernel's horizontal sums). */
void conv_rows(const struct conv_args *a, int y0, int y1);
/* Winograd F(m x m, k x k) on the vector paths, for k = 3 or 5 and m = 2
 * or 4. conv_wino_block gives the m a layer should use, 0 for
 * none (the caller checks that it reads whole 16-channel groups without
 * upsampling or depth-to-space). Then: its transformed weights (u:
 * (m+k-1)^2 * cin * cout_pad floats), the scratch a thread needs, and
 * whether the kernel is in use on this machine (else conv_rows runs the
 * direct kernel and ignores u). A block reads up to m-1 pixels past the
 * region's edge, so buffers need a border of k/2 + m - 1; and the layer's
 * input must be valid conv_wino_reach(m) pixels further out than its
 * receptive field (two at m = 4, none at m = 2), so that no stored output's
 * rounding depends on how the image was tiled. */
int conv_wino_block(int k, int cin, int cout_pad);
int conv_wino_reach(int m);
void conv_wino_pack(int k, int m, int cin, int cout_pad, const float *w, float *u);
size_t conv_wino_scratch(int k, int m, int cin, int cout_pad);
int conv_wino_enabled(void);
/* "avx512", "avx2" or "portable": which kernels conv_rows uses now. */
const char *conv_kernel_name(void);
/* Forces the kernels of that name, or (NULL) restores the dispatch, so
 * tests can hold each fallback to the goldens on a machine with more;
 * -1 when this CPU cannot run them. */
int conv_force_kernel(const char *name);

#endif
