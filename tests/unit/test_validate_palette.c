/* SPDX-License-Identifier: MIT */
/* test_validate_palette.c -- brand palettes: a photo printed as a
 * two-colour brand poster (its shadows navy, its lights yellow, with the
 * photo's texture kept as shading) passes its palette and fails another;
 * the untouched photo fails the brand palette. Palette strings that are
 * not #RRGGBB lists are refused. */
#include "gate_fixtures.h"

static const char brand[] = "#1a3d7c, #f2c14e";

static struct img *
duotone(void)
{
    struct img *im = gf_photo("chelsea.png");
    for (size_t i = 0; i < (size_t)im->width * im->height; i++) {
        uint8_t *p = im->rgba + 4 * i;
        int y = (299 * p[0] + 587 * p[1] + 114 * p[2]) / 1000;
        int shade = (y % 16) - 8;
        const uint8_t *c = y < 110 ? (const uint8_t[]){0x1a, 0x3d, 0x7c}
                                   : (const uint8_t[]){0xf2, 0xc1, 0x4e};
        for (int k = 0; k < 3; k++)
            p[k] = gf_clamp(c[k] + shade);
    }
    return im;
}

static struct vd_check
judge(const struct img *im, const char *palette)
{
    struct vd_task t;
    struct ig_error err = {0};
    gf_task(&t, IG_CLASS_GENERATE, im);
    if (vd_palette_parse(palette, &t, &err) != 0)
        fail_msg("%s", err.message);
    return gf_run(vd_check_palette, &t);
}

static void
test_brand_poster_passes(void **state)
{
    struct img *im = duotone();
    struct vd_check c = judge(im, brand);
    assert_true(c.pass);
    assert_true(c.score < 5.0);
    assert_false(judge(im, "#c0392b,#27ae60").pass);
    img_free(im);
}

static void
test_photo_fails_brand(void **state)
{
    struct img *im = gf_photo("chelsea.png");
    struct vd_check c = judge(im, brand);
    assert_false(c.pass);
    assert_true(c.score > 10.0);
    img_free(im);
}

static void
test_parse(void **state)
{
    struct vd_task t;
    struct ig_error err = {0};
    memset(&t, 0, sizeof t);
    assert_int_equal(vd_palette_parse("#FFffFF,#000000", &t, &err), 0);
    assert_int_equal(t.n_palette, 2);
    assert_int_equal(t.palette[0].g, 255);
    const char *bad[] = {"", "red", "#12345", "#GG0000", "#1234567", "#123456;#000000", " , "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(vd_palette_parse(bad[i], &t, &err), -1);
        assert_string_equal(err.code, "invalid_palette");
    }
    /* No palette: nothing to check. */
    struct img *im = gf_photo("rocket.jpg");
    gf_task(&t, IG_CLASS_GENERATE, im);
    struct vd_check c;
    assert_int_equal(vd_check_palette(&t, &c, &err), VD_SKIP);
    img_free(im);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brand_poster_passes),
        cmocka_unit_test(test_photo_fails_brand),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
