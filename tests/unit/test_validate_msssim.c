/* SPDX-License-Identifier: MIT */
/* test_validate_msssim.c -- vd_msssim against MS-SSIM written in numpy.
 *
 * No Debian package computes MS-SSIM, so the reference is the definition
 * in a few lines of numpy/scipy at test time: scikit-image's Gaussian
 * statistics (gaussian_filter sigma 1.5, truncate 3.5, the valid windows),
 * cs at scales 1-4, SSIM at scale 5, 2x2 average pooling that drops an odd
 * last row or column, the paper's weights. Ours must agree within 1e-4. */
#include "validate_fixtures.h"

#include <math.h>

static const char msssim_py[] =
    "import sys, numpy as np, skimage.io as io\n"
    "from scipy.ndimage import gaussian_filter\n"
    "def luma(p):\n"
    "    a = io.imread(p)[..., :3].astype(np.float64)\n"
    "    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114\n"
    "def stats(x, y):\n"
    "    f = lambda z: gaussian_filter(z, 1.5, truncate=3.5)\n"
    "    ux, uy = f(x), f(y)\n"
    "    vx, vy, vxy = f(x * x) - ux * ux, f(y * y) - uy * uy, f(x * y) - ux * uy\n"
    "    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2\n"
    "    cs = (2 * vxy + c2) / (vx + vy + c2)\n"
    "    s = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs\n"
    "    return s[5:-5, 5:-5].mean(), cs[5:-5, 5:-5].mean()\n"
    "def pool(z):\n"
    "    z = z[:z.shape[0] // 2 * 2, :z.shape[1] // 2 * 2]\n"
    "    return (z[0::2, 0::2] + z[0::2, 1::2] + z[1::2, 0::2] + z[1::2, 1::2]) / 4\n"
    "beta = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]\n"
    "a = sys.argv[1:]\n"
    "for i in range(0, len(a), 2):\n"
    "    x, y, r = luma(a[i]), luma(a[i + 1]), 1.0\n"
    "    for s in range(5):\n"
    "        m, cs = stats(x, y)\n"
    "        r *= max(m if s == 4 else cs, 0) ** beta[s]\n"
    "        x, y = pool(x), pool(y)\n"
    "    print('%.10f' % r)\n";

static void
test_matches_numpy(void **state)
{
    (void)state;
    static const char *photos[] = {"flower.png", "astronaut.png", "coffee.png", "chelsea.png"};
    static const enum vf_kind kinds[] = {VF_JPEG30, VF_BLUR, VF_RESIZE, VF_HUE};
    enum { N = 4 };
    double ours[N];
    char *paths[N][2], args[4096] = "";
    for (int i = 0; i < N; i++) {
        struct img *ref = vf_photo(photos[i]);
        if (ref->width > 1024) {
            struct img *c = vf_crop(ref, 622, 244, 1024, 1024);
            img_free(ref);
            ref = c;
        }
        struct img *dist = vf_variant(ref, kinds[i]);
        struct ig_error e = {0};
        assert_int_equal(vd_msssim(ref, dist, &ours[i], &e), 0);
        paths[i][0] = vf_png(ref);
        paths[i][1] = vf_png(dist);
        size_t len = strlen(args);
        snprintf(args + len, sizeof args - len, " %s %s", paths[i][0], paths[i][1]);
        img_free(ref);
        img_free(dist);
    }
    char *out = vf_python(msssim_py, args), *p = out;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        char *end;
        double want = strtod(p, &end);
        assert_ptr_not_equal(end, p);
        p = end;
        double d = fabs(want - ours[i]);
        worst = d > worst ? d : worst;
        if (d > 1e-4)
            fail_msg("%s %s: ours %.6f, numpy %.6f", photos[i], vf_kind_name[kinds[i]], ours[i],
                     want);
        for (int k = 0; k < 2; k++) {
            remove(paths[i][k]);
            ig_free(paths[i][k]);
        }
    }
    print_message("MS-SSIM: %d pairs, max |ours - numpy| = %.2g\n", N, worst);
    ig_free(out);
}

static void
test_identical_and_sizes(void **state)
{
    (void)state;
    struct img *a = vf_photo("chelsea.png"), *b = img_clone(a);
    double s;
    struct ig_error e = {0};
    assert_int_equal(vd_msssim(a, b, &s, &e), 0);
    assert_true(fabs(s - 1) < 1e-6);
    struct img *c = vf_crop(a, 0, 0, 175, 200), *d = vf_crop(a, 1, 0, 175, 200);
    assert_int_equal(vd_msssim(c, d, &s, &e), -1);
    assert_string_equal(e.code, "image_too_small");
    assert_int_equal(vd_msssim(a, c, &s, &e), -1);
    assert_string_equal(e.code, "size_mismatch");
    img_free(a);
    img_free(b);
    img_free(c);
    img_free(d);
}

static int
score(const struct img *a, const struct img *b, struct ig_error *e)
{
    double s;
    return vd_msssim(a, b, &s, e);
}

static void
test_alloc_failures(void **state)
{
    (void)state;
    struct img *a = vf_photo("chelsea.png"), *b = vf_variant(a, VF_JPEG30);
    vf_oom_walk(score, a, b);
    img_free(a);
    img_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_numpy),
        cmocka_unit_test(test_identical_and_sizes),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
