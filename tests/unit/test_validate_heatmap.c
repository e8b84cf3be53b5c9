/* SPDX-License-Identifier: MIT */
/* test_validate_heatmap.c -- the diff heatmap marks what changed and only
 * that: identical images give a pure grey picture, one repainted patch
 * shows red over the patch and grey far from it. */
#include "validate_fixtures.h"

static int
is_grey(const uint8_t *p)
{
    return p[0] == p[1] && p[1] == p[2] && p[3] == 255;
}

static void
test_identical_is_grey(void **state)
{
    (void)state;
    struct img *a = vf_photo("coffee.png"), *b = img_clone(a);
    struct ig_error e = {0};
    struct img *h = vd_heatmap(a, b, &e);
    assert_non_null(h);
    assert_int_equal(h->width, a->width);
    assert_int_equal(h->height, a->height);
    for (size_t i = 0; i < (size_t)h->width * h->height; i++)
        if (!is_grey(h->rgba + 4 * i))
            fail_msg("pixel %zu is not grey", i);
    img_free(h);
    img_free(a);
    img_free(b);
}

static void
test_patch_is_red(void **state)
{
    (void)state;
    struct img *a = vf_photo("astronaut.png"), *b = img_clone(a);
    for (int y = 200; y < 260; y++)
        for (int x = 300; x < 360; x++) {
            uint8_t *p = b->rgba + ((size_t)y * a->width + x) * 4;
            p[0] = (uint8_t)(255 - p[0]);
            p[1] = (uint8_t)(255 - p[1]);
        }
    struct ig_error e = {0};
    struct img *h = vd_heatmap(a, b, &e);
    assert_non_null(h);
    const uint8_t *in = h->rgba + ((size_t)230 * a->width + 330) * 4;
    assert_true(in[0] == 255 && in[1] < 60 && in[2] < 60);
    assert_true(is_grey(h->rgba + ((size_t)20 * a->width + 20) * 4));
    assert_true(is_grey(h->rgba + ((size_t)(a->height - 1) * a->width + a->width - 1) * 4));
    img_free(h);
    img_free(a);
    img_free(b);
}

static void
test_errors_and_alloc(void **state)
{
    (void)state;
    struct img *a = img_new(20, 20), *b = img_new(20, 21), *t1 = img_new(10, 10),
               *t2 = img_new(10, 10);
    struct ig_error e = {0};
    assert_null(vd_heatmap(a, b, &e));
    assert_string_equal(e.code, "size_mismatch");
    assert_null(vd_heatmap(t1, t2, &e));
    assert_string_equal(e.code, "image_too_small");
    ig_alloc_fail_at(0);
    for (unsigned long nth = 1;; nth++) {
        ig_alloc_fail_at(nth);
        struct img *h = vd_heatmap(a, a, &e);
        unsigned long made = ig_alloc_fail_at(0);
        if (h && made < nth) {
            img_free(h);
            break;
        }
        assert_null(h);
        assert_true(nth < 100);
    }
    img_free(a);
    img_free(b);
    img_free(t1);
    img_free(t2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical_is_grey),
        cmocka_unit_test(test_patch_is_red),
        cmocka_unit_test(test_errors_and_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
