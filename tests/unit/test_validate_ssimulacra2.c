/* SPDX-License-Identifier: MIT */
/* test_validate_ssimulacra2.c -- vd_ssimulacra2 against the reference.
 *
 * The reference is not packaged, so its answers are carried here. They
 * were measured on 2026-11-25 by building cloudinary/ssimulacra2@81feacf
 * (its build_ssimulacra script, Debian libhwy 1.0.3, lcms2 2.14, libpng,
 * libjpeg-turbo) outside this tree and running `ssimulacra2 REF.png
 * DIST.png` on the PNG files these same fixtures write (vf_png of the
 * reference and of its vf_variant). Ours must be within 0.5 of each. */
#include "validate_fixtures.h"

#include <math.h>

struct known {
    const char *photo;
    enum vf_kind kind;
    double reference;
};

static const struct known known[] = {
    {"flower.png", VF_JPEG85, 86.92539518},     {"flower.png", VF_JPEG30, 58.83298606},
    {"flower.png", VF_BLUR, -4.95316070},       {"flower.png", VF_RESIZE, 34.12532831},
    {"flower.png", VF_HUE, -25.06289349},       {"astronaut.png", VF_JPEG30, 56.74940323},
    {"coffee.png", VF_BLUR, -20.21755659},      {"chelsea.png", VF_JPEG85, 83.23645564},
};

static struct img *
reference_image(const char *photo)
{
    struct img *ref = vf_photo(photo);
    if (ref->width > 1024) {
        struct img *c = vf_crop(ref, 622, 244, 1024, 1024);
        img_free(ref);
        ref = c;
    }
    return ref;
}

static void
test_matches_reference(void **state)
{
    (void)state;
    double worst = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        struct img *ref = reference_image(known[i].photo), *dist = vf_variant(ref, known[i].kind);
        double s;
        struct ig_error e = {0};
        assert_int_equal(vd_ssimulacra2(ref, dist, &s, &e), 0);
        double d = fabs(s - known[i].reference);
        worst = d > worst ? d : worst;
        if (d > 0.5)
            fail_msg("%s %s: ours %.3f, reference %.3f", known[i].photo,
                     vf_kind_name[known[i].kind], s, known[i].reference);
        img_free(ref);
        img_free(dist);
    }
    print_message("SSIMULACRA2: %zu pairs, max |ours - reference| = %.3f\n",
                  sizeof known / sizeof known[0], worst);
}

static void
test_identical_and_sizes(void **state)
{
    (void)state;
    struct img *a = vf_photo("chelsea.png"), *b = img_clone(a);
    double s;
    struct ig_error e = {0};
    assert_int_equal(vd_ssimulacra2(a, b, &s, &e), 0);
    assert_true(s == 100.0);
    struct img *s8 = vf_crop(a, 100, 100, 8, 8), *t8 = vf_crop(a, 101, 100, 8, 8);
    assert_int_equal(vd_ssimulacra2(s8, t8, &s, &e), 0);
    assert_true(s < 100.0);
    struct img *s7 = vf_crop(a, 0, 0, 7, 30), *t7 = vf_crop(a, 1, 0, 7, 30);
    assert_int_equal(vd_ssimulacra2(s7, t7, &s, &e), -1);
    assert_string_equal(e.code, "image_too_small");
    assert_int_equal(vd_ssimulacra2(s7, s8, &s, &e), -1);
    assert_string_equal(e.code, "size_mismatch");
    img_free(a);
    img_free(b);
    img_free(s8);
    img_free(t8);
    img_free(s7);
    img_free(t7);
}

/* Colour matters: the hue rotation that luma SSIM calls 0.97 is far below
 * "high quality" here, and worse than JPEG q30. */
static void
test_sees_colour(void **state)
{
    (void)state;
    struct img *ref = reference_image("flower.png"), *hue = vf_variant(ref, VF_HUE),
               *q30 = vf_variant(ref, VF_JPEG30);
    double sh, sq, y;
    struct ig_error e = {0};
    assert_int_equal(vd_ssimulacra2(ref, hue, &sh, &e), 0);
    assert_int_equal(vd_ssimulacra2(ref, q30, &sq, &e), 0);
    assert_int_equal(vd_ssim(ref, hue, VD_SSIM_LUMA, NULL, &y, &e), 0);
    assert_true(sh < 0 && sh < sq && y > 0.9);
    img_free(ref);
    img_free(hue);
    img_free(q30);
}

/* Junk RGB under alpha 0 against the same pixels flattened on white. */
static void
test_alpha_over_white(void **state)
{
    (void)state;
    struct img *a = vf_photo("coffee.png"), *b = img_clone(a);
    for (size_t i = 0; i < (size_t)a->width * a->height; i += 3) {
        a->rgba[4 * i + 1] = 7;
        a->rgba[4 * i + 3] = 0;
        memset(b->rgba + 4 * i, 255, 4);
    }
    double s;
    struct ig_error e = {0};
    assert_int_equal(vd_ssimulacra2(a, b, &s, &e), 0);
    assert_true(s == 100.0);
    img_free(a);
    img_free(b);
}

static int
score(const struct img *a, const struct img *b, struct ig_error *e)
{
    double s;
    return vd_ssimulacra2(a, b, &s, e);
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
        cmocka_unit_test(test_matches_reference), cmocka_unit_test(test_identical_and_sizes),
        cmocka_unit_test(test_sees_colour),       cmocka_unit_test(test_alpha_over_white),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
