/* SPDX-License-Identifier: MIT */
/* test_validate_collapse.c -- blank, clipped and noise on real photos and
 * on the collapses METRICS.md section 7 lists: uniform grey, black and
 * white frames, grey RGB and mono noise, and a washed-out photo drowned
 * in noise. Smooth but real pictures (a blurred photo, a gradient) must
 * still pass. */
#include "gate_fixtures.h"

static void
check_all_pass(struct img *im)
{
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    assert_true(gf_run(vd_check_blank, &t).pass);
    assert_true(gf_run(vd_check_clipped, &t).pass);
    assert_true(gf_run(vd_check_noise, &t).pass);
}

static void
test_photos_pass(void **state)
{
    const char *names[] = {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                           "cvo9xd_keong_macan_srgb8.png"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        print_message("%s\n", names[i]);
        struct img *im = gf_photo(names[i]);
        check_all_pass(im);
        img_free(im);
    }
}

/* Blurred by averaging 8x8 blocks and sampling back: very smooth, not collapsed. */
static void
test_smooth_photo_passes(void **state)
{
    struct img *im = gf_photo_crop("flower.png", 600, 200, 512, 512);
    struct ig_error err = {0};
    struct img *small = img_resize(im, 64, 64, "box", &err);
    assert_non_null(small);
    struct img *soft = img_resize(small, 512, 512, "lanczos3", &err);
    assert_non_null(soft);
    check_all_pass(soft);
    img_free(im);
    img_free(small);
    img_free(soft);
}

/* A photo reduced to 3x2 pixels, blown up again and its contrast cut to a
 * fifth: a hazy sky-like gradient (like the emulators' pictures), flat in
 * nearly every 16x16 tile, yet a picture, not a blank frame. */
static void
test_gradient_passes(void **state)
{
    struct img *im = gf_photo("coffee.png");
    struct ig_error err = {0};
    struct img *tiny = img_resize(im, 3, 2, "box", &err);
    assert_non_null(tiny);
    struct img *sky = img_resize(tiny, 1024, 683, "lanczos3", &err);
    assert_non_null(sky);
    for (size_t i = 0; i < (size_t)1024 * 683; i++)
        for (int c = 0; c < 3; c++)
            sky->rgba[4 * i + c] = (uint8_t)(128 + (sky->rgba[4 * i + c] - 128) / 5);
    check_all_pass(sky);
    img_free(im);
    img_free(tiny);
    img_free(sky);
}

static void
test_blank_fails(void **state)
{
    struct img *gray = gf_fill(512, 512, 128, 128, 128);
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, gray);
    struct vd_check c = gf_run(vd_check_blank, &t);
    assert_false(c.pass);
    assert_true(c.score >= 0.95);
    assert_true(gf_run(vd_check_clipped, &t).pass);   /* grey is not clipped */
    assert_true(gf_run(vd_check_noise, &t).pass);     /* nor noise */
    img_free(gray);

    /* A photo with a faint gradient of noise-free grey over 97 % of it. */
    struct img *photo = gf_photo_crop("chelsea.png", 0, 0, 448, 300);
    struct img *mostly = gf_fill(448, 300, 200, 200, 200);
    for (int y = 0; y < 40; y++)
        memcpy(mostly->rgba + (size_t)y * 448 * 4, photo->rgba + (size_t)y * 448 * 4, 64 * 4);
    gf_task(&t, IG_CLASS_GENERATE, mostly);
    assert_false(gf_run(vd_check_blank, &t).pass);
    img_free(photo);
    img_free(mostly);
}

static void
test_clipped_fails(void **state)
{
    struct img *black = gf_fill(400, 300, 0, 0, 0), *white = gf_fill(400, 300, 255, 255, 255);
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, black);
    struct vd_check c = gf_run(vd_check_clipped, &t);
    assert_false(c.pass);
    assert_true(c.score > 0.99);
    gf_task(&t, IG_CLASS_GENERATE, white);
    assert_false(gf_run(vd_check_clipped, &t).pass);
    img_free(black);
    img_free(white);

    /* A photo pushed to black but for a few highlights: still a safety frame. */
    struct img *dark = gf_photo_crop("coffee.png", 0, 0, 512, 400);
    for (size_t i = 0; i < (size_t)512 * 400; i++)
        for (int ch = 0; ch < 3; ch++)
            dark->rgba[4 * i + ch] = i % 20 == 0 ? dark->rgba[4 * i + ch] : 1;
    gf_task(&t, IG_CLASS_GENERATE, dark);
    assert_false(gf_run(vd_check_clipped, &t).pass);
    img_free(dark);
}

static void
test_noise_fails(void **state)
{
    struct vd_task t;
    struct img *rgb = gf_fill(512, 512, 128, 128, 128);
    gf_add_noise(rgb, 40, 0, 7);
    gf_task(&t, IG_CLASS_GENERATE, rgb);
    struct vd_check c = gf_run(vd_check_noise, &t);
    assert_false(c.pass);
    assert_true(c.score < 0.2);
    assert_true(gf_run(vd_check_blank, &t).pass);    /* noise is not flat: only "noise" says it */
    img_free(rgb);

    struct img *mono = gf_fill(512, 512, 128, 128, 128);
    gf_add_noise(mono, 40, 1, 11);
    gf_task(&t, IG_CLASS_GENERATE, mono);
    assert_false(gf_run(vd_check_noise, &t).pass);
    img_free(mono);

    /* Washed out (contrast / 8) and drowned in noise: the picture is still
     * faintly there, the sampler diverged anyway. */
    struct img *washed = gf_photo_crop("astronaut.png", 0, 0, 512, 512);
    for (size_t i = 0; i < (size_t)512 * 512; i++)
        for (int ch = 0; ch < 3; ch++)
            washed->rgba[4 * i + ch] = (uint8_t)(112 + washed->rgba[4 * i + ch] / 8);
    gf_add_noise(washed, 24, 0, 3);
    gf_task(&t, IG_CLASS_GENERATE, washed);
    assert_false(gf_run(vd_check_noise, &t).pass);
    img_free(washed);
}

/* JPEG-grade grain on a photo is texture, not collapse. */
static void
test_grainy_photo_passes(void **state)
{
    struct img *im = gf_photo("coffee.png");
    gf_add_noise(im, 4, 1, 5);
    check_all_pass(im);
    img_free(im);
}

static void
test_config_bound(void **state)
{
    struct ig_error err = {0};
    static const char yaml[] = "backends: []\nvalidation:\n  generate: {noise: 0.995}\n";
    struct ig_config_diags d = {0};
    struct ig_config *cfg = ig_config_load("t.yaml", yaml, sizeof yaml - 1, &d, &err);
    ig_config_diags_free(&d);
    if (!cfg)
        fail_msg("%s", err.message);
    /* A noise bound above a photo's autocorrelation: with the HF rule still
     * required the photo keeps passing, and the bound is the config's. */
    struct img *im = gf_photo("chelsea.png");
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    t.cfg = cfg;
    struct vd_check c = gf_run(vd_check_noise, &t);
    assert_true(c.bound == 0.995);
    assert_true(c.pass);
    img_free(im);
    ig_config_free(cfg);
}

/* A black output fails as a generation, but an upscale of a black input is
 * faithful; a black upscale of a photo is not. */
static void
test_faithful_to_a_collapsed_input(void **state)
{
    struct img *black = img_new(64, 64), *black2 = img_new(128, 128);
    assert_non_null(black);
    assert_non_null(black2);
    for (size_t i = 0; i < (size_t)64 * 64; i++)
        black->rgba[4 * i + 3] = 255;
    for (size_t i = 0; i < (size_t)128 * 128; i++)
        black2->rgba[4 * i + 3] = 255;
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, black2);
    assert_false(gf_run(vd_check_blank, &t).pass);
    assert_false(gf_run(vd_check_clipped, &t).pass);
    gf_task(&t, IG_CLASS_UPSCALE, black2);
    t.input = black;
    struct vd_check c = gf_run(vd_check_blank, &t);
    assert_true(c.pass);
    assert_non_null(strstr(c.note, "faithful"));
    assert_true(gf_run(vd_check_clipped, &t).pass);
    struct img *photo = gf_photo_crop("flower.png", 600, 200, 64, 64);
    t.input = photo;
    assert_false(gf_run(vd_check_blank, &t).pass);
    assert_false(gf_run(vd_check_clipped, &t).pass);
    img_free(photo);
    img_free(black);
    img_free(black2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faithful_to_a_collapsed_input),
        cmocka_unit_test(test_photos_pass),     cmocka_unit_test(test_smooth_photo_passes),
        cmocka_unit_test(test_gradient_passes),
        cmocka_unit_test(test_blank_fails),     cmocka_unit_test(test_clipped_fails),
        cmocka_unit_test(test_noise_fails),     cmocka_unit_test(test_grainy_photo_passes),
        cmocka_unit_test(test_config_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
