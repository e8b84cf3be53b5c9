/* SPDX-License-Identifier: MIT */
/* phash.c -- the classic DCT perceptual hash, for near-duplicate datasets.
 *
 * Luma is box-averaged to 32x32, transformed with a separable DCT-II, and
 * the 8x8 lowest frequencies (DC excluded from the median) become 64 bits:
 * above or below their median. Two photos of the same scene land a few bits
 * apart; different scenes about 32. Kept inside lora/ because validate/ has
 * no hash yet; the lead can fold it into validate's pHash when that lands. */
#include "lora/lora.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N 32

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
lora_phash(const unsigned char *rgba, int w, int h, unsigned long long *out, struct ig_error *err)
{
    if (!rgba || w <= 0 || h <= 0)
        return ig_error_set(err, 400, "bad_image", "pHash needs a non-empty image");
    double luma[N][N], tmp[N][N], dct[N][N], cosines[N][N];
    for (int y = 0; y < N; y++) {
        int y0 = (int)((long)y * h / N), y1 = (int)((long)(y + 1) * h / N);
        if (y1 <= y0)
            y1 = y0 + 1;
        for (int x = 0; x < N; x++) {
            int x0 = (int)((long)x * w / N), x1 = (int)((long)(x + 1) * w / N);
            if (x1 <= x0)
                x1 = x0 + 1;
            /* At most 16x16 samples per cell: an average needs no more,
             * and a 20-megapixel photo then costs what a small one does. */
            int sy = (y1 - y0 + 15) / 16, sx = (x1 - x0 + 15) / 16;
            double sum = 0;
            long n = 0;
            for (int yy = y0; yy < y1 && yy < h; yy += sy)
                for (int xx = x0; xx < x1 && xx < w; xx += sx) {
                    const unsigned char *p = rgba + ((size_t)yy * (size_t)w + (size_t)xx) * 4;
                    sum += 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
                    n++;
                }
            luma[y][x] = sum / (double)n;
        }
    }
    for (int k = 0; k < N; k++)
        for (int n = 0; n < N; n++)
            cosines[k][n] = cos(M_PI / N * (n + 0.5) * k);
    for (int y = 0; y < N; y++)
        for (int k = 0; k < 8; k++) {
            double s = 0;
            for (int n = 0; n < N; n++)
                s += luma[y][n] * cosines[k][n];
            tmp[y][k] = s;
        }
    for (int k = 0; k < 8; k++)
        for (int x = 0; x < 8; x++) {
            double s = 0;
            for (int n = 0; n < N; n++)
                s += tmp[n][x] * cosines[k][n];
            dct[k][x] = s;
        }
    double sorted[63];
    for (int i = 1; i < 64; i++)
        sorted[i - 1] = dct[i / 8][i % 8];
    qsort(sorted, 63, sizeof sorted[0], cmp_double);
    double median = sorted[31];
    unsigned long long hash = 0;
    for (int i = 0; i < 64; i++)
        if (dct[i / 8][i % 8] > median)
            hash |= 1ull << i;
    *out = hash;
    return 0;
}

int
lora_hamming(unsigned long long a, unsigned long long b)
{
    return __builtin_popcountll(a ^ b);
}
