/* SPDX-License-Identifier: MIT */
/* test_validate_colour.c -- CIEDE2000 on Sharma's published data, sRGB to
 * Lab and per-pixel Delta E against scikit-image.
 *
 * The 34 pairs and their Delta E 00 are Table 1 of G. Sharma, W. Wu,
 * E. N. Dalal, "The CIEDE2000 color-difference formula: implementation
 * notes, supplementary test data, and mathematical observations", Color
 * Research & Application 30(1), 2005; they are the published answers, to
 * four decimals. Lab of 8-bit sRGB and the per-pixel mean and 95th
 * percentile come from scikit-image (rgb2lab, deltaE_ciede2000) at test
 * time; our percentile is the upper edge of a 0.01-wide bin. The table is
 * rounded to 4 decimals, so the tolerance there is 1e-4. */
#include "validate_fixtures.h"

#include <math.h>

static const double sharma[34][7] = {
    {50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425},
    {50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615},
    {50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412},
    {50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669},
    {50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461},
    {50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065},
    {50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492},
    {50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977},
    {50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030},
    {50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000},
    {60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644},
    {63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630},
    {61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731},
    {35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645},
    {22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373},
    {36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146},
    {90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441},
    {90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381},
    {6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377},
    {2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082},
};

static void
test_sharma(void **state)
{
    (void)state;
    double worst = 0;
    for (int i = 0; i < 34; i++) {
        double d = vd_ciede2000(sharma[i], sharma[i] + 3);
        double r = vd_ciede2000(sharma[i] + 3, sharma[i]);
        if (fabs(d - sharma[i][6]) > 1e-4 || fabs(r - d) > 1e-12)
            fail_msg("pair %d: ours %.6f (reversed %.6f), Sharma %.4f", i + 1, d, r,
                     sharma[i][6]);
        worst = fabs(d - sharma[i][6]) > worst ? fabs(d - sharma[i][6]) : worst;
    }
    print_message("CIEDE2000: 34 Sharma pairs, max |delta| %.1g\n", worst);
}

static const char lab_py[] =
    "import sys, numpy as np, skimage.io as io\n"
    "from skimage.color import rgb2lab, deltaE_ciede2000\n"
    "v = np.array([int(x) for x in sys.argv[1].split(',')], dtype=np.uint8).reshape(1, -1, 3)\n"
    "print(' '.join('%.8f' % x for x in rgb2lab(v).ravel()))\n"
    "x = rgb2lab(io.imread(sys.argv[2])[..., :3])\n"
    "y = rgb2lab(io.imread(sys.argv[3])[..., :3])\n"
    "d = deltaE_ciede2000(x, y)\n"
    "print('%.8f %.8f' % (d.mean(), np.percentile(d, 95)))\n";

static void
test_against_skimage(void **state)
{
    (void)state;
    static const uint8_t rgb[][3] = {{0, 0, 0},     {255, 255, 255}, {255, 0, 0}, {0, 255, 0},
                                     {0, 0, 255},   {10, 20, 30},    {128, 64, 200},
                                     {250, 251, 3}, {7, 7, 7}};
    enum { NC = sizeof rgb / sizeof rgb[0] };
    char args[4096] = "";
    for (int i = 0; i < NC; i++) {
        size_t len = strlen(args);
        snprintf(args + len, sizeof args - len, "%s%d,%d,%d", i ? "," : "", rgb[i][0], rgb[i][1],
                 rgb[i][2]);
    }
    struct img *a = vf_photo("coffee.png"), *b = vf_variant(a, VF_HUE);
    char *pa = vf_png(a), *pb = vf_png(b);
    size_t len = strlen(args);
    snprintf(args + len, sizeof args - len, " %s %s", pa, pb);
    char *out = vf_python(lab_py, args), *p = out;
    for (int i = 0; i < NC; i++) {
        double lab[3];
        vd_srgb_to_lab(rgb[i][0], rgb[i][1], rgb[i][2], lab);
        for (int k = 0; k < 3; k++) {
            char *end;
            double want = strtod(p, &end);
            assert_ptr_not_equal(end, p);
            p = end;
            if (fabs(want - lab[k]) > 1e-4)
                fail_msg("rgb %d,%d,%d Lab[%d]: ours %.6f, scikit-image %.6f", rgb[i][0],
                         rgb[i][1], rgb[i][2], k, lab[k], want);
        }
    }
    double mean, p95, want_mean = strtod(p, &p), want_p95 = strtod(p, NULL);
    struct ig_error e = {0};
    assert_int_equal(vd_deltae(a, b, NULL, &mean, &p95, &e), 0);
    if (fabs(mean - want_mean) > 1e-4 || p95 < want_p95 - 1e-6 || p95 > want_p95 + 0.01)
        fail_msg("deltae: ours %.5f / p95 %.3f, scikit-image %.5f / %.5f", mean, p95, want_mean,
                 want_p95);
    print_message("Delta E hue pair: mean %.4f (scikit-image %.4f), p95 %.2f (%.4f)\n", mean,
                  want_mean, p95, want_p95);
    remove(pa);
    remove(pb);
    ig_free(pa);
    ig_free(pb);
    ig_free(out);
    img_free(a);
    img_free(b);
}

static void
test_identical_alpha_sizes(void **state)
{
    (void)state;
    struct img *a = vf_photo("chelsea.png"), *b = img_clone(a), *c = img_new(4, 4);
    double mean, p95;
    struct ig_error e = {0};
    assert_int_equal(vd_deltae(a, b, NULL, &mean, &p95, &e), 0);
    assert_true(mean == 0 && p95 == 0);
    for (size_t i = 0; i < (size_t)a->width * a->height; i += 2) {
        a->rgba[4 * i + 2] = 0;
        a->rgba[4 * i + 3] = 0;
        memset(b->rgba + 4 * i, 255, 4);
    }
    assert_int_equal(vd_deltae(a, b, NULL, &mean, &p95, &e), 0);
    assert_true(mean == 0 && p95 == 0);
    assert_int_equal(vd_deltae(a, c, NULL, &mean, &p95, &e), -1);
    assert_string_equal(e.code, "size_mismatch");
    img_free(a);
    img_free(b);
    img_free(c);
}

static int
score(const struct img *a, const struct img *b, struct ig_error *e)
{
    double m, p;
    return vd_deltae(a, b, NULL, &m, &p, e);
}

static void
test_alloc_failures(void **state)
{
    (void)state;
    struct img *a = img_new(8, 8), *b = img_new(8, 8);
    b->rgba[3] = 255;
    vf_oom_walk(score, a, b);
    img_free(a);
    img_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sharma),
        cmocka_unit_test(test_against_skimage),
        cmocka_unit_test(test_identical_alpha_sizes),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
