/* SPDX-License-Identifier: MIT */
/* rdn.c -- times the local-rdn engine: cold, steady, throughput, memory, quality.
 *
 * Usage: rdn MODEL_DIR SCALE IMAGE [THREADS] [TILE] [REPS] [OUT.png]
 *
 * "cold" is the first job of this fresh process (model load, plan, buffers
 * touched for the first time); "steady" is the median of REPS more jobs on
 * the same warm engine. GMAC/s counts the model's useful multiply-adds per
 * input pixel (from model.json), not tile overlap or lane padding, so it is
 * comparable with ONNX Runtime on the same graph (bench/ort_rdn.c). Peak
 * RSS is the process's. LR-PSNR is the PSNR between the input and the
 * output box-downscaled back to the input size (a consistency measure: how
 * much the upscaler invents that contradicts the input), for RDN and, as the
 * baseline, Lanczos3. One line of key=value per run, for bench/upscale.sh. */
#include "backends/local/rdn.h"
#include "core/alloc.h"
#include "image/image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double
now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* PSNR over RGB between a and b (same size). */
static double
psnr(const struct img *a, const struct img *b)
{
    double se = 0;
    size_t n = (size_t)a->width * a->height;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            double d = (double)a->rgba[i * 4 + c] - b->rgba[i * 4 + c];
            se += d * d;
        }
    double mse = se / ((double)n * 3);
    return mse == 0 ? 99.0 : 10 * log10(255.0 * 255.0 / mse);
}

static double
lr_psnr(const struct img *in, const struct img *up)
{
    struct ig_error err = {0};
    struct img *down = img_resize(up, in->width, in->height, "box", &err);
    if (!down) {
        fprintf(stderr, "rdn: box downscale: %s\n", err.message);
        return -1;
    }
    double p = psnr(in, down);
    img_free(down);
    return p;
}

static struct img *
read_image(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct ig_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ig_buf_append(&b, chunk, n) != 0)
            break;
    fclose(f);
    struct ig_error err = {0};
    struct img *im = img_decode(b.data, b.len, NULL, &err);
    if (!im)
        fprintf(stderr, "rdn: %s: %s\n", path, err.message);
    ig_buf_free(&b);
    return im;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: rdn MODEL_DIR SCALE IMAGE [THREADS] [TILE] [REPS] [OUT.png]\n");
        return 2;
    }
    const char *dir = argv[1], *path = argv[3];
    int scale = atoi(argv[2]);
    struct rdn_opts o = {.threads = argc > 4 ? atoi(argv[4]) : 2,
                         .tile = argc > 5 ? atoi(argv[5]) : 0};
    int reps = argc > 6 ? atoi(argv[6]) : 3;
    const char *outpath = argc > 7 ? argv[7] : NULL;
    struct ig_error err = {0};
    if (img_init(&err) != 0) {
        fprintf(stderr, "rdn: %s\n", err.message);
        return 1;
    }
    struct img *in = read_image(path);
    if (!in)
        return 1;
    struct img *out = NULL;
    struct rdn_stats st;
    double t0 = now_s();
    if (rdn_upscale(dir, scale, in, &o, &out, &st, &err) != 0) {
        fprintf(stderr, "rdn: %s: %s\n", err.code, err.message);
        return 1;
    }
    double cold = now_s() - t0;
    double *steady = calloc(reps > 0 ? (size_t)reps : 1, sizeof *steady);
    if (!steady)
        return 1;
    for (int r = 0; r < reps; r++) {
        struct img *o2 = NULL;
        t0 = now_s();
        if (rdn_upscale(dir, scale, in, &o, &o2, &st, &err) != 0) {
            fprintf(stderr, "rdn: %s: %s\n", err.code, err.message);
            return 1;
        }
        steady[r] = now_s() - t0;
        img_free(o2);
    }
    qsort(steady, (size_t)(reps > 0 ? reps : 1), sizeof *steady, cmp_double);
    double med = reps > 0 ? steady[reps / 2] : cold;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct img *lz = img_resize(in, in->width * scale, in->height * scale, "lanczos3", &err);
    if (!lz) {
        fprintf(stderr, "rdn: lanczos: %s\n", err.message);
        return 1;
    }
    printf("engine=imagegate model=%s scale=%d input=%dx%d threads=%d tile=%d kernel=%s "
           "winograd=%d margin=%d tiles=%d cold_s=%.3f steady_s=%.3f gmacs_cold=%.1f "
           "gmacs_steady=%.1f workspace_mb=%.0f peak_rss_mb=%.0f lr_psnr_rdn=%.2f "
           "lr_psnr_lanczos3=%.2f\n",
           dir, scale, in->width, in->height, st.threads, st.tile, st.kernel, st.winograd,
           st.margin, st.tiles, cold, med, (double)st.macs / cold / 1e9, (double)st.macs / med / 1e9,
           st.workspace_mb, (double)ru.ru_maxrss / 1024.0, lr_psnr(in, out), lr_psnr(in, lz));
    if (outpath) {
        struct ig_buf enc = {0};
        if (img_encode(out, IMG_FMT_PNG, 0, NULL, &enc, &err) != 0) {
            fprintf(stderr, "rdn: encode: %s\n", err.message);
            return 1;
        }
        FILE *f = fopen(outpath, "wb");
        if (!f || fwrite(enc.data, 1, enc.len, f) != enc.len) {
            fprintf(stderr, "rdn: cannot write %s\n", outpath);
            return 1;
        }
        fclose(f);
        ig_buf_free(&enc);
    }
    free(steady);
    img_free(lz);
    img_free(out);
    img_free(in);
    rdn_shutdown();
    return 0;
}
