/* SPDX-License-Identifier: MIT */
/* metric.h -- perceptual metrics between images, each a small unit of one shape.
 *
 * Every metric takes decoded RGBA (struct img, 8-bit sRGB) and returns 0 with
 * its score, or -1 with err (codes: size_mismatch, image_too_small,
 * out_of_memory). Two images must have the same size; callers that want to
 * compare anyway resize first (the CLI's --resize). Alpha is composited over
 * white before a metric sees colour, so an RGBA cutout and its flattened
 * copy compare as equal. Algorithms and constants: METRICS.md in the
 * reference; the tests compare against scikit-image and the SSIMULACRA2
 * reference build.
 *
 * A `weight` argument, where there is one, is an optional per-pixel byte map
 * (width*height) of the region to score: pixels with weight 0 are left out
 * of the mean. NULL scores the whole image. */
#ifndef IG_VALIDATE_METRIC_H
#define IG_VALIDATE_METRIC_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "image/image.h"

/* ---- Perceptual hashes ---------------------------------------------------- */

enum vd_hash_algo {
    VD_HASH_AHASH,       /* 8x8 mean */
    VD_HASH_DHASH,       /* 9x8 horizontal gradient */
    VD_HASH_PHASH,       /* imagehash: 32x32 Lanczos, 8x8 DCT block with DC, median */
    VD_HASH_BLOCKHASH    /* 16x16 blocks, 256 bits */
};

struct vd_hash {
    enum vd_hash_algo algo;
    int nbits;           /* 64, or 256 for blockhash */
    uint8_t bits[32];    /* most significant bit first, as the hex form reads */
};

int vd_hash(const struct img *im, enum vd_hash_algo algo, struct vd_hash *out,
            struct ig_error *err);
/* Hamming distance; -1 when the two are of different algorithms. */
int vd_hash_distance(const struct vd_hash *a, const struct vd_hash *b);
/* Lower-case hex, nbits/4 digits and a NUL (out needs 65 bytes). */
void vd_hash_hex(const struct vd_hash *h, char *out);
int vd_hash_algo_parse(const char *name, enum vd_hash_algo *out);   /* "phash" */
const char *vd_hash_algo_name(enum vd_hash_algo a);

/* ---- Structural similarity -------------------------------------------------- */

enum vd_ssim_mode {
    VD_SSIM_LUMA,        /* on Y' (BT.601 luma), the usual single number */
    VD_SSIM_RGB          /* per channel, then the mean of the three */
};

/* Wang et al.: Gaussian 11x11 window, sigma 1.5, K1 0.01, K2 0.03, L 255,
 * population covariance, mean over the valid (unpadded) windows as
 * scikit-image's structural_similarity(gaussian_weights=True). */
int vd_ssim(const struct img *a, const struct img *b, enum vd_ssim_mode mode,
            const uint8_t *weight, double *ssim, struct ig_error *err);
/* MS-SSIM on luma: 5 scales, weights 0.0448 0.2856 0.3001 0.2363 0.1333. */
int vd_msssim(const struct img *a, const struct img *b, double *msssim, struct ig_error *err);
/* SSIMULACRA 2.1: XYB, 6 scales, the published weights; 100 = identical. */
int vd_ssimulacra2(const struct img *a, const struct img *b, double *score,
                   struct ig_error *err);

/* ---- Pixel differences ------------------------------------------------------- */

/* PSNR over RGB (dB; INFINITY for identical images). With tile > 0 also the
 * worst PSNR of any tile x tile block (edge blocks partial); worst may be
 * NULL. */
int vd_psnr(const struct img *a, const struct img *b, const uint8_t *weight, int tile,
            double *psnr, double *worst, struct ig_error *err);

/* CIEDE2000 between two sRGB colours (D65 Lab). */
void vd_srgb_to_lab(uint8_t r, uint8_t g, uint8_t b, double lab[3]);
double vd_ciede2000(const double lab1[3], const double lab2[3]);
/* Per-pixel CIEDE2000: its mean and 95th percentile. */
int vd_deltae(const struct img *a, const struct img *b, const uint8_t *weight, double *mean,
              double *p95, struct ig_error *err);

/* A diff heatmap the size of a: the first image in grey, the local
 * dissimilarity (1 - SSIM map on luma) laid over it in a colour ramp. What a
 * person looks at when a comparison fails. */
struct img *vd_heatmap(const struct img *a, const struct img *b, struct ig_error *err);

#endif
