/* SPDX-License-Identifier: MIT */
/* metrics.c -- time each metric on one decoded pair, decode excluded.
 *
 * Usage: metrics A B [REPS] [METRIC,...]. Both images are decoded once;
 * each metric then runs one warm-up (first touch of its buffers costs page
 * faults on these VMs) and REPS timed runs on this thread. Prints one line
 * per metric: name, value, median ms. metrics.sh drives it beside the
 * peers; with REPS 1 under /usr/bin/time it gives the peak RSS. */
#include "core/alloc.h"
#include "image/image.h"
#include "validate/metric.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct img *
load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = ig_malloc((size_t)len);
    struct img *im = NULL;
    if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        struct ig_error e = {0};
        im = img_decode(buf, (size_t)len, NULL, &e);
        if (!im)
            fprintf(stderr, "%s: %s\n", path, e.message);
    }
    fclose(f);
    ig_free(buf);
    return im;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs metric `name` once; returns its value (NAN on error). */
static double
run(const char *name, const struct img *a, const struct img *b)
{
    struct ig_error e = {0};
    double v = NAN, p95;
    int rc = -1;
    if (!strcmp(name, "ssim"))
        rc = vd_ssim(a, b, VD_SSIM_LUMA, NULL, &v, &e);
    else if (!strcmp(name, "ssim_rgb"))
        rc = vd_ssim(a, b, VD_SSIM_RGB, NULL, &v, &e);
    else if (!strcmp(name, "msssim"))
        rc = vd_msssim(a, b, &v, &e);
    else if (!strcmp(name, "ssimulacra2"))
        rc = vd_ssimulacra2(a, b, &v, &e);
    else if (!strcmp(name, "psnr"))
        rc = vd_psnr(a, b, NULL, 32, &v, NULL, &e);
    else if (!strcmp(name, "deltae"))
        rc = vd_deltae(a, b, NULL, &v, &p95, &e);
    else if (!strcmp(name, "heatmap")) {
        struct img *h = vd_heatmap(a, b, &e);
        rc = h ? 0 : -1;
        v = 0;
        img_free(h);
    } else {
        enum vd_hash_algo algo;
        struct vd_hash ha, hb;
        if (vd_hash_algo_parse(name, &algo) != 0) {
            fprintf(stderr, "unknown metric %s\n", name);
            exit(2);
        }
        rc = vd_hash(a, algo, &ha, &e) | vd_hash(b, algo, &hb, &e);
        v = rc ? NAN : vd_hash_distance(&ha, &hb);
    }
    if (rc != 0)
        fprintf(stderr, "%s: %s [%s]\n", name, e.message, e.code);
    return v;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: metrics A B [REPS] [METRIC,...]\n");
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 7;
    char list[256] = "ssim,msssim,ssimulacra2,psnr,phash,dhash,ahash,blockhash,deltae,ssim_rgb";
    if (argc > 4)
        snprintf(list, sizeof list, "%s", argv[4]);
    struct ig_error e = {0};
    if (reps < 1 || img_init(&e) != 0)
        return 2;
    struct img *a = load(argv[1]), *b = load(argv[2]);
    if (!a || !b)
        return 2;
    double *t = ig_malloc((size_t)reps * sizeof *t);
    if (!t)
        return 2;
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        double v = reps > 1 ? run(name, a, b) : 0;
        for (int i = 0; i < reps; i++) {
            double t0 = now_ms();
            v = run(name, a, b);
            t[i] = now_ms() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        printf("%-12s %14.6f %10.2f ms\n", name, v, t[reps / 2]);
    }
    ig_free(t);
    img_free(a);
    img_free(b);
    return 0;
}
