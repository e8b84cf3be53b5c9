/* SPDX-License-Identifier: MIT */
/* test_validate_ocr.c -- the expected-text check on text rendered with
 * libvips (vips_text) onto a banner over a real photo, the way a generated
 * poster carries its slogan: the right words pass, a misspelling and a
 * picture without text fail, and no expected text skips the check. */
#include "gate_fixtures.h"

#include <vips/vips.h>

/* vips_text loads fonts through fontconfig, whose caches live until exit by
 * design; LeakSanitizer asks this hook what not to report. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

/* The photo with a white banner across its middle and text on it in black. */
static struct img *
poster(const char *photo, const char *text)
{
    struct img *im = gf_photo_crop(photo, 0, 0, 448, 300);
    VipsImage *t = NULL;
    if (vips_text(&t, text, "font", "sans bold 28", "width", 416, "dpi", 72, NULL) != 0)
        fail_msg("vips_text: %s", vips_error_buffer());
    VipsImage *u = NULL;
    assert_int_equal(vips_cast_uchar(t, &u, NULL), 0);
    size_t sz;
    uint8_t *mask = vips_image_write_to_memory(u, &sz);
    assert_non_null(mask);
    int tw = vips_image_get_width(u), th = vips_image_get_height(u);
    int y0 = 150 - th / 2 - 20, x0 = 16;
    for (int y = y0; y < y0 + th + 40; y++)
        for (int x = 0; x < 448; x++) {
            uint8_t *p = im->rgba + 4 * ((size_t)y * 448 + x);
            int ty = y - y0 - 20, tx = x - x0;
            int ink = ty >= 0 && ty < th && tx >= 0 && tx < tw ? mask[(size_t)ty * tw + tx] : 0;
            for (int c = 0; c < 3; c++)
                p[c] = (uint8_t)(255 - ink);
        }
    g_free(mask);
    g_object_unref(t);
    g_object_unref(u);
    return im;
}

static struct vd_check
read_text(const struct img *im, const char *expect)
{
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    t.expect_text = expect;
    return gf_run(vd_check_text, &t);
}

static void
test_right_text_passes(void **state)
{
    struct img *im = poster("coffee.png", "ACME Summer Sale");
    struct vd_check c = read_text(im, "acme summer sale!");
    assert_true(c.pass);
    assert_true(c.score >= 0.9);
    /* The words anywhere in what was read, case and punctuation aside. */
    assert_true(read_text(im, "Summer").pass);
    img_free(im);
}

static void
test_misspelt_text_fails(void **state)
{
    /* What an image model does to a slogan, on the same poster as above. */
    struct img *im = poster("coffee.png", "AMCE Sunmer Slae");
    struct vd_check c = read_text(im, "ACME Summer Sale");
    assert_false(c.pass);
    /* Read, and found wanting: the score is the spelling, not a blind miss. */
    assert_true(c.score > 0.5 && c.score < 0.8);
    img_free(im);
}

static void
test_no_text_fails(void **state)
{
    struct img *im = gf_photo("astronaut.png");
    assert_false(read_text(im, "ACME Summer Sale").pass);
    img_free(im);
}

static void
test_no_expectation_skips(void **state)
{
    struct img *im = gf_photo("rocket.jpg");
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    struct vd_check c;
    struct ig_error err = {0};
    assert_int_equal(vd_check_text(&t, &c, &err), VD_SKIP);
    img_free(im);
}

/* The thread's handle is kept between reads: later reads on it give the
 * same answer, and their time is printed for a look at the cost. */
static void
test_repeated_reads(void **state)
{
    struct img *im = poster("rocket.jpg", "Fresh Coffee Daily");
    read_text(im, "fresh coffee daily");
    gint64 t0 = g_get_monotonic_time();
    for (int i = 0; i < 3; i++)
        assert_true(read_text(im, "fresh coffee daily").pass);
    print_message("three reads: %.0f ms\n", (g_get_monotonic_time() - t0) / 1000.0);
    img_free(im);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_text_passes), cmocka_unit_test(test_misspelt_text_fails),
        cmocka_unit_test(test_no_text_fails),     cmocka_unit_test(test_no_expectation_skips),
        cmocka_unit_test(test_repeated_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
