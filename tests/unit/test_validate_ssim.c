/* SPDX-License-Identifier: MIT */
/* test_validate_ssim.c -- vd_ssim against scikit-image on real photos.
 *
 * Each photo and its degraded copies go to PNG; scikit-image's
 * structural_similarity(gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=255) scores the same files at
 * test time, on BT.601 luma and per channel, and ours must agree within
 * 1e-4. The weight map is checked against the mean of scikit-image's
 * full SSIM map over the same region. Then identity, alpha, errors and
 * every allocation failure. */
#include "validate_fixtures.h"

#include <math.h>

static const char ssim_py[] =
    "import sys, numpy as np, skimage.io as io\n"
    "from skimage.metrics import structural_similarity as S\n"
    "k = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)\n"
    "def load(p): return io.imread(p)[..., :3].astype(np.float64)\n"
    "def luma(a): return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114\n"
    "a = sys.argv[1:]\n"
    "for i in range(0, len(a), 2):\n"
    "    x, y = load(a[i]), load(a[i + 1])\n"
    "    print('%.10f %.10f' % (S(luma(x), luma(y), **k), S(x, y, channel_axis=2, **k)))\n";

static const char ssim_region_py[] =
    "import sys, numpy as np, skimage.io as io\n"
    "from skimage.metrics import structural_similarity as S\n"
    "k = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)\n"
    "def luma(p):\n"
    "    a = io.imread(p)[..., :3].astype(np.float64)\n"
    "    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114\n"
    "_, m = S(luma(sys.argv[1]), luma(sys.argv[2]), full=True, **k)\n"
    "split = int(sys.argv[3])\n"
    "print('%.10f' % m[5:-5, 5:split].mean())\n";

struct pair {
    const char *photo;
    enum vf_kind kind;
};

static void
test_matches_skimage(void **state)
{
    (void)state;
    static const struct pair pairs[] = {
        {"flower.png", VF_JPEG85},    {"flower.png", VF_JPEG30},  {"flower.png", VF_BLUR},
        {"flower.png", VF_RESIZE},    {"flower.png", VF_HUE},     {"astronaut.png", VF_JPEG30},
        {"astronaut.png", VF_HUE},    {"coffee.png", VF_BLUR},    {"coffee.png", VF_RESIZE},
        {"chelsea.png", VF_JPEG85},   {"chelsea.png", VF_BLUR},   {"rocket.jpg", VF_JPEG30},
    };
    enum { N = sizeof pairs / sizeof pairs[0] };
    double ours[N][2];
    char *paths[N][2], args[8192] = "";
    for (int i = 0; i < N; i++) {
        struct img *ref = vf_photo(pairs[i].photo);
        if (ref->width > 1024) {
            struct img *c = vf_crop(ref, 622, 244, 1024, 1024);
            img_free(ref);
            ref = c;
        }
        struct img *dist = vf_variant(ref, pairs[i].kind);
        struct ig_error e = {0};
        assert_int_equal(vd_ssim(ref, dist, VD_SSIM_LUMA, NULL, &ours[i][0], &e), 0);
        assert_int_equal(vd_ssim(ref, dist, VD_SSIM_RGB, NULL, &ours[i][1], &e), 0);
        paths[i][0] = vf_png(ref);
        paths[i][1] = vf_png(dist);
        size_t len = strlen(args);
        snprintf(args + len, sizeof args - len, " %s %s", paths[i][0], paths[i][1]);
        img_free(ref);
        img_free(dist);
    }
    char *out = vf_python(ssim_py, args), *p = out;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double want[2];
        char *end;
        for (int m = 0; m < 2; m++, p = end) {
            want[m] = strtod(p, &end);
            assert_ptr_not_equal(end, p);
            double d = fabs(want[m] - ours[i][m]);
            worst = d > worst ? d : worst;
            if (d > 1e-4)
                fail_msg("%s %s %s: ours %.6f, scikit-image %.6f", pairs[i].photo,
                         vf_kind_name[pairs[i].kind], m ? "rgb" : "luma", ours[i][m], want[m]);
        }
        remove(paths[i][0]);
        remove(paths[i][1]);
        ig_free(paths[i][0]);
        ig_free(paths[i][1]);
    }
    print_message("SSIM: %d pairs, luma and RGB, max |ours - scikit-image| = %.2g\n", N, worst);
    ig_free(out);
}

static void
test_weight_region(void **state)
{
    (void)state;
    struct img *ref = vf_photo("astronaut.png"), *dist = vf_variant(ref, VF_JPEG30);
    int w = ref->width, h = ref->height, split = w / 3;
    uint8_t *weight = ig_malloc((size_t)w * h);
    assert_non_null(weight);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            weight[(size_t)y * w + x] = x < split ? 255 : 0;
    double ours, all;
    struct ig_error e = {0};
    assert_int_equal(vd_ssim(ref, dist, VD_SSIM_LUMA, weight, &ours, &e), 0);
    assert_int_equal(vd_ssim(ref, dist, VD_SSIM_LUMA, NULL, &all, &e), 0);
    char *pa = vf_png(ref), *pb = vf_png(dist), args[2048];
    snprintf(args, sizeof args, "%s %s %d", pa, pb, split);
    char *out = vf_python(ssim_region_py, args);
    double want = strtod(out, NULL);
    if (fabs(want - ours) > 1e-4)
        fail_msg("weighted: ours %.6f, scikit-image %.6f", ours, want);
    assert_true(fabs(ours - all) > 1e-3);   /* the region really is different */
    memset(weight, 0, (size_t)w * h);
    assert_int_equal(vd_ssim(ref, dist, VD_SSIM_LUMA, weight, &ours, &e), -1);
    assert_string_equal(e.code, "empty_region");
    remove(pa);
    remove(pb);
    ig_free(pa);
    ig_free(pb);
    ig_free(out);
    ig_free(weight);
    img_free(ref);
    img_free(dist);
}

static void
test_identical_is_one(void **state)
{
    (void)state;
    struct img *a = vf_photo("coffee.png"), *b = img_clone(a);
    double s;
    struct ig_error e = {0};
    assert_int_equal(vd_ssim(a, b, VD_SSIM_LUMA, NULL, &s, &e), 0);
    assert_true(fabs(s - 1) < 1e-6);
    assert_int_equal(vd_ssim(a, b, VD_SSIM_RGB, NULL, &s, &e), 0);
    assert_true(fabs(s - 1) < 1e-6);
    img_free(a);
    img_free(b);
}

/* A cutout with junk RGB under alpha 0 and its copy flattened on white. */
static void
test_alpha_over_white(void **state)
{
    (void)state;
    struct img *a = vf_photo("astronaut.png"), *b = img_clone(a);
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < a->width; x++) {
            uint8_t *p = a->rgba + ((size_t)y * a->width + x) * 4;
            uint8_t *q = b->rgba + ((size_t)y * a->width + x) * 4;
            if (x > a->width / 2) {
                p[0] = (uint8_t)(x * 7);
                p[3] = 0;
                q[0] = q[1] = q[2] = 255;
            }
        }
    double s;
    struct ig_error e = {0};
    assert_int_equal(vd_ssim(a, b, VD_SSIM_RGB, NULL, &s, &e), 0);
    assert_true(fabs(s - 1) < 1e-6);
    img_free(a);
    img_free(b);
}

static void
test_errors(void **state)
{
    (void)state;
    struct img *a = img_new(64, 48), *b = img_new(48, 64), *t1 = img_new(10, 40),
               *t2 = img_new(10, 40), *s1 = img_new(11, 11), *s2 = img_new(11, 11);
    double s;
    struct ig_error e = {0};
    assert_int_equal(vd_ssim(a, b, VD_SSIM_LUMA, NULL, &s, &e), -1);
    assert_string_equal(e.code, "size_mismatch");
    assert_int_equal(vd_ssim(t1, t2, VD_SSIM_LUMA, NULL, &s, &e), -1);
    assert_string_equal(e.code, "image_too_small");
    assert_int_equal(vd_ssim(s1, s2, VD_SSIM_LUMA, NULL, &s, &e), 0);
    assert_true(fabs(s - 1) < 1e-6);
    img_free(a);
    img_free(b);
    img_free(t1);
    img_free(t2);
    img_free(s1);
    img_free(s2);
}

static int
ssim_rgb(const struct img *a, const struct img *b, struct ig_error *e)
{
    double s;
    return vd_ssim(a, b, VD_SSIM_RGB, NULL, &s, e);
}

static void
test_alloc_failures(void **state)
{
    (void)state;
    struct img *a = vf_photo("chelsea.png"), *b = vf_variant(a, VF_BLUR);
    vf_oom_walk(ssim_rgb, a, b);
    img_free(a);
    img_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_skimage), cmocka_unit_test(test_weight_region),
        cmocka_unit_test(test_identical_is_one), cmocka_unit_test(test_alpha_over_white),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
