/* SPDX-License-Identifier: MIT */
/* ssim.c -- structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004).
 *
 * The settings are scikit-image's structural_similarity with
 * gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
 * data_range=255: an 11-tap Gaussian (radius 5), K1 0.01, K2 0.03, the mean
 * over the windows that lie wholly inside the image. Only those windows are
 * computed, so no border rule is needed at all.
 *
 * The engine streams: each input row becomes five products (a, b, a², b²,
 * ab, centred on 128 so float keeps the variances exact enough), blurred
 * across and kept in a ring of 11 rows; each new row completes one row of
 * windows by a vertical 11-tap sum. MS-SSIM and the heatmap run the same
 * engine with their own sinks. */
#include "validate/vd_internal.h"

#include <math.h>

#include "core/alloc.h"

#define TAPS 11
#define RADIUS 5

static void
gaussian11(float k[TAPS])
{
    double w[TAPS], sum = 0;
    for (int i = 0; i < TAPS; i++) {
        double d = i - RADIUS;
        w[i] = exp(-0.5 * d * d / (1.5 * 1.5));
        sum += w[i];
    }
    for (int i = 0; i < TAPS; i++)
        k[i] = (float)(w[i] / sum);
}

int
vd_ssim_run(const struct vd_rows *src, vd_ssim_sink sink, void *ctx, struct ig_error *err)
{
    size_t w = (size_t)src->width, n = w - 2 * RADIUS;
    /* a, b; five products of width w; a ring of 11 x 5 blurred rows and
     * five vertical sums of width n; the ssim and cs rows. */
    float *block = ig_malloc((7 * w + (TAPS * 5 + 5 + 2) * n) * sizeof(float));
    if (!block)
        return vd_oom(err, "ssim");
    float *a = block, *b = a + w, *prod[5], *ring[TAPS][5], *sum[5];
    for (int q = 0; q < 5; q++)
        prod[q] = b + w + (size_t)q * w;
    float *p = prod[4] + w;
    for (int r = 0; r < TAPS; r++)
        for (int q = 0; q < 5; q++, p += n)
            ring[r][q] = p;
    for (int q = 0; q < 5; q++, p += n)
        sum[q] = p;
    float *ssim = p, *cs = p + n, k[TAPS];
    gaussian11(k);
    for (int y = 0; y < src->height; y++) {
        src->get(src, y, a, b);
        vd_k_products(a, b, prod[0], prod[1], prod[2], prod[3], prod[4], (int)w);
        for (int q = 0; q < 5; q++)
            vd_k_fir11(prod[q], ring[y % TAPS][q], (int)n, k);
        if (y < TAPS - 1)
            continue;
        for (int q = 0; q < 5; q++) {
            const float *rows[TAPS];
            for (int i = 0; i < TAPS; i++)
                rows[i] = ring[(y - (TAPS - 1) + i) % TAPS][q];
            vd_k_col11(rows, sum[q], (int)n, k);
        }
        vd_k_ssim(sum[0], sum[1], sum[2], sum[3], sum[4], ssim, cs, (int)n);
        sink(ctx, y - RADIUS, ssim, cs, (int)n);
    }
    ig_free(block);
    return 0;
}

struct mean {
    const uint8_t *weight;
    int width;
    double sum, wsum;
};

static void
mean_sink(void *ctx, int y, const float *ssim, const float *cs, int n)
{
    struct mean *m = ctx;
    (void)cs;
    if (!m->weight) {
        double s = 0;
        for (int x = 0; x < n; x++)
            s += ssim[x];
        m->sum += s;
        m->wsum += n;
        return;
    }
    const uint8_t *wr = m->weight + (size_t)y * (size_t)m->width + RADIUS;
    for (int x = 0; x < n; x++) {
        m->sum += (double)wr[x] * ssim[x];
        m->wsum += wr[x];
    }
}

int
vd_ssim(const struct img *a, const struct img *b, enum vd_ssim_mode mode, const uint8_t *weight,
        double *ssim, struct ig_error *err)
{
    if (vd_check_pair(a, b, TAPS, "ssim", err) != 0)
        return -1;
    int channels = mode == VD_SSIM_RGB ? 3 : 1;
    double total = 0;
    for (int c = 0; c < channels; c++) {
        struct vd_rows rows;
        struct mean m = {.weight = weight, .width = a->width};
        vd_rows_rgba(&rows, a, b, mode == VD_SSIM_RGB ? c : -1);
        if (vd_ssim_run(&rows, mean_sink, &m, err) != 0)
            return -1;
        if (m.wsum <= 0)
            return ig_error_set(err, 400, "empty_region",
                                "ssim: the weight map leaves no window to score");
        total += m.sum / m.wsum;
    }
    *ssim = total / channels;
    return 0;
}
