/* SPDX-License-Identifier: MIT */
/* test_validate_psnr.c -- vd_psnr against scikit-image, the worst tile
 * against numpy.
 *
 * scikit-image's peak_signal_noise_ratio(data_range=255) on the RGB files
 * gives the global figure; numpy gives the lowest PSNR over 32x32 tiles
 * (partial at the right and bottom edges). The point of the worst tile is
 * checked directly too: one repainted patch barely moves the global
 * figure and sinks the tile. */
#include "validate_fixtures.h"

#include <math.h>

static const char psnr_py[] =
    "import sys, numpy as np, skimage.io as io\n"
    "from skimage.metrics import peak_signal_noise_ratio as P\n"
    "a = sys.argv[1:]\n"
    "for i in range(0, len(a), 2):\n"
    "    x = io.imread(a[i])[..., :3].astype(np.float64)\n"
    "    y = io.imread(a[i + 1])[..., :3].astype(np.float64)\n"
    "    worst = min(10 * np.log10(255.0 ** 2 / ((x[r:r + 32, c:c + 32] - "
    "y[r:r + 32, c:c + 32]) ** 2).mean())\n"
    "                for r in range(0, x.shape[0], 32) for c in range(0, x.shape[1], 32))\n"
    "    print('%.10f %.10f' % (P(x.astype(np.uint8), y.astype(np.uint8), data_range=255), "
    "worst))\n";

static void
test_matches_skimage(void **state)
{
    (void)state;
    static const char *photos[] = {"chelsea.png", "coffee.png", "astronaut.png"};
    static const enum vf_kind kinds[] = {VF_JPEG85, VF_RESIZE, VF_HUE};
    enum { N = 3 };
    double ours[N][2];
    char *paths[N][2], args[4096] = "";
    for (int i = 0; i < N; i++) {
        struct img *ref = vf_photo(photos[i]), *dist = vf_variant(ref, kinds[i]);
        struct ig_error e = {0};
        assert_int_equal(vd_psnr(ref, dist, NULL, 32, &ours[i][0], &ours[i][1], &e), 0);
        paths[i][0] = vf_png(ref);
        paths[i][1] = vf_png(dist);
        size_t len = strlen(args);
        snprintf(args + len, sizeof args - len, " %s %s", paths[i][0], paths[i][1]);
        img_free(ref);
        img_free(dist);
    }
    char *out = vf_python(psnr_py, args), *p = out;
    for (int i = 0; i < N; i++) {
        for (int m = 0; m < 2; m++) {
            char *end;
            double want = strtod(p, &end);
            assert_ptr_not_equal(end, p);
            p = end;
            if (fabs(want - ours[i][m]) > 1e-6)
                fail_msg("%s %s %s: ours %.6f, reference %.6f", photos[i],
                         vf_kind_name[kinds[i]], m ? "worst tile" : "psnr", ours[i][m], want);
        }
        for (int k = 0; k < 2; k++) {
            remove(paths[i][k]);
            ig_free(paths[i][k]);
        }
    }
    ig_free(out);
}

static void
test_worst_tile_and_weight(void **state)
{
    (void)state;
    struct img *a = vf_photo("astronaut.png"), *b = img_clone(a);
    for (int y = 100; y < 132; y++)       /* one 32x32 tile painted grey */
        for (int x = 64; x < 96; x++)
            memset(b->rgba + ((size_t)y * a->width + x) * 4, 128, 3);
    double psnr, worst, masked;
    struct ig_error e = {0};
    assert_int_equal(vd_psnr(a, b, NULL, 32, &psnr, &worst, &e), 0);
    assert_true(psnr > 25 && worst < psnr - 15);
    uint8_t *weight = ig_calloc((size_t)a->width * a->height, 1);
    assert_non_null(weight);
    weight[0] = 255;                      /* an unchanged pixel only */
    assert_int_equal(vd_psnr(a, b, weight, 0, &masked, &worst, &e), 0);
    assert_true(isinf(masked) && isinf(worst));
    memset(weight, 0, (size_t)a->width * a->height);
    assert_int_equal(vd_psnr(a, b, weight, 0, &masked, NULL, &e), -1);
    assert_string_equal(e.code, "empty_region");
    ig_free(weight);
    img_free(a);
    img_free(b);
}

static void
test_identical_alpha_sizes(void **state)
{
    (void)state;
    struct img *a = img_new(3, 2), *b = img_new(3, 2), *c = img_new(2, 3), *one = img_new(1, 1);
    for (int i = 0; i < 6; i++) {          /* transparent junk vs white */
        a->rgba[4 * i] = (uint8_t)(40 * i);
        memset(b->rgba + 4 * i, 255, 4);
    }
    double p, w;
    struct ig_error e = {0};
    assert_int_equal(vd_psnr(a, b, NULL, 2, &p, &w, &e), 0);
    assert_true(isinf(p) && isinf(w));
    assert_int_equal(vd_psnr(a, c, NULL, 0, &p, NULL, &e), -1);
    assert_string_equal(e.code, "size_mismatch");
    one->rgba[3] = 255;
    assert_int_equal(vd_psnr(one, one, NULL, 8, &p, &w, &e), 0);
    assert_true(isinf(p));
    img_free(a);
    img_free(b);
    img_free(c);
    img_free(one);
}

static int
score(const struct img *a, const struct img *b, struct ig_error *e)
{
    double p, w;
    return vd_psnr(a, b, NULL, 32, &p, &w, e);
}

static void
test_alloc_failures(void **state)
{
    (void)state;
    struct img *a = vf_photo("chelsea.png"), *b = vf_variant(a, VF_BLUR);
    vf_oom_walk(score, a, b);
    img_free(a);
    img_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_skimage),
        cmocka_unit_test(test_worst_tile_and_weight),
        cmocka_unit_test(test_identical_alpha_sizes),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
