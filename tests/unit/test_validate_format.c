/* SPDX-License-Identifier: MIT */
/* test_validate_format.c -- decode, format, size and aspect: a photo in
 * the format and shape asked passes; broken bytes, a JPEG where PNG was
 * asked, a wrong size and a squashed aspect fail; checks with nothing asked
 * skip. */
#include "gate_fixtures.h"

static int
skips(vd_check_fn fn, const struct vd_task *t)
{
    struct vd_check c;
    struct ig_error err = {0};
    return fn(t, &c, &err) == VD_SKIP;
}

static void
test_decode(void **state)
{
    struct img *im = gf_photo("rocket.jpg");
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    assert_true(gf_run(vd_check_decode, &t).pass);
    /* What the gate hands on when the bytes did not decode. */
    static const char junk[] = "\x89PNG\r\n\x1a\nnot really";
    struct ig_error err = {0};
    assert_null(img_decode(junk, sizeof junk - 1, NULL, &err));
    gf_task(&t, IG_CLASS_GENERATE, NULL);
    t.decode_error = err.message;
    struct vd_check c = gf_run(vd_check_decode, &t);
    assert_false(c.pass);
    assert_string_equal(c.note, err.message);
    img_free(im);
}

static void
test_format(void **state)
{
    struct img *im = gf_photo("rocket.jpg");
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    assert_int_equal(t.format, IMG_FMT_JPEG);
    assert_true(skips(vd_check_format, &t));
    t.want_format = IMG_FMT_JPEG;
    assert_true(gf_run(vd_check_format, &t).pass);
    t.want_format = IMG_FMT_PNG;
    assert_false(gf_run(vd_check_format, &t).pass);
    /* A bound of 0 keeps the mismatch as a report. */
    static const char yaml[] = "backends: []\nvalidation:\n  generate: {format: 0}\n";
    struct ig_error err = {0};
    struct ig_config *cfg = ig_config_load("t.yaml", yaml, sizeof yaml - 1, NULL, &err);
    assert_non_null(cfg);
    t.cfg = cfg;
    struct vd_check c = gf_run(vd_check_format, &t);
    assert_true(c.pass);
    assert_true(c.score == 0);
    ig_config_free(cfg);
    img_free(im);
}

static void
test_size_and_aspect(void **state)
{
    struct img *im = gf_photo("coffee.png");   /* 600x400, 3:2 */
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    assert_true(skips(vd_check_size, &t));
    assert_true(skips(vd_check_aspect, &t));
    t.want_w = 1536;
    t.want_h = 1024;                           /* 3:2, another size: aspect only */
    assert_true(skips(vd_check_size, &t));
    assert_true(gf_run(vd_check_aspect, &t).pass);
    t.size_exact = 1;
    assert_false(gf_run(vd_check_size, &t).pass);
    t.want_w = 600;
    t.want_h = 400;
    assert_true(gf_run(vd_check_size, &t).pass);
    t.want_w = 1024;                           /* 16:9 asked, 3:2 delivered */
    t.want_h = 576;
    t.size_exact = 0;
    struct vd_check c = gf_run(vd_check_aspect, &t);
    assert_false(c.pass);
    assert_true(c.score > 0.1);
    img_free(im);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_size_and_aspect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
