/* SPDX-License-Identifier: MIT */
/* test_validate_upscale.c -- preserve-mode upscale checks, set up as in
 * METRICS.md section 6.2: the input is a 1024x1024 crop of flower.png
 * reduced 4x with Lanczos. The true high-resolution crop and a Lanczos
 * upscale of the input pass; the true crop with one 256x256 patch replaced
 * by another part of the photo (a local re-imagining), another photo
 * altogether, and an output of the wrong size fail. */
#include "gate_fixtures.h"

struct up {
    struct img *hr, *lr;
};

static void
up_make(struct up *u)
{
    struct ig_error err = {0};
    u->hr = gf_photo_crop("flower.png", 622, 244, 1024, 1024);
    u->lr = img_resize(u->hr, 256, 256, "lanczos3", &err);
    assert_non_null(u->lr);
}

static void
up_free(struct up *u)
{
    img_free(u->hr);
    img_free(u->lr);
}

static void
task(struct vd_task *t, const struct img *out, const struct up *u)
{
    gf_task(t, IG_CLASS_UPSCALE, out);
    t->input = u->lr;
    t->scale = 4;
}

static void
all(const struct vd_task *t, int expect_pass)
{
    vd_check_fn fns[] = {vd_check_scale, vd_check_lr_psnr, vd_check_lr_tile_psnr,
                         vd_check_lr_ssim};
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
        if (expect_pass)
            assert_true(gf_run(fns[i], t).pass);
        else
            gf_run(fns[i], t);
}

static void
test_faithful_upscales_pass(void **state)
{
    struct up u;
    up_make(&u);
    struct vd_task t;
    task(&t, u.hr, &u);
    all(&t, 1);
    struct ig_error err = {0};
    struct img *lanczos = img_resize(u.lr, 1024, 1024, "lanczos3", &err);
    assert_non_null(lanczos);
    task(&t, lanczos, &u);
    all(&t, 1);
    assert_true(gf_run(vd_check_lr_psnr, &t).score > 35.0);
    img_free(lanczos);
    up_free(&u);
}

static void
test_replaced_patch_fails(void **state)
{
    struct up u;
    up_make(&u);
    struct img *full = gf_photo("flower.png");
    struct img *patched = img_clone(u.hr);
    assert_non_null(patched);
    for (int y = 0; y < 256; y++)
        memcpy(patched->rgba + ((size_t)(384 + y) * 1024 + 384) * 4,
               full->rgba + ((size_t)(1200 + y) * full->width + 100) * 4, 256 * 4);
    struct vd_task t;
    task(&t, patched, &u);
    all(&t, 0);
    struct vd_check tile = gf_run(vd_check_lr_tile_psnr, &t);
    assert_false(tile.pass);
    assert_true(tile.score < 15.0);
    assert_true(gf_run(vd_check_scale, &t).pass);
    img_free(patched);
    img_free(full);
    up_free(&u);
}

static void
test_other_picture_fails(void **state)
{
    struct up u;
    up_make(&u);
    struct ig_error err = {0};
    struct img *cat = gf_photo_crop("chelsea.png", 0, 0, 256, 256);
    struct img *other = img_resize(cat, 1024, 1024, "lanczos3", &err);
    assert_non_null(other);
    struct vd_task t;
    task(&t, other, &u);
    assert_false(gf_run(vd_check_lr_psnr, &t).pass);
    assert_false(gf_run(vd_check_lr_tile_psnr, &t).pass);
    assert_false(gf_run(vd_check_lr_ssim, &t).pass);
    img_free(cat);
    img_free(other);
    up_free(&u);
}

static void
test_wrong_scale_fails(void **state)
{
    struct up u;
    up_make(&u);
    struct ig_error err = {0};
    struct img *x3 = img_resize(u.lr, 768, 768, "lanczos3", &err);
    assert_non_null(x3);
    struct vd_task t;
    task(&t, x3, &u);
    struct vd_check c = gf_run(vd_check_scale, &t);
    assert_false(c.pass);
    assert_true(c.score == 3.0);
    /* No scale asked: the nearest whole factor is taken, and 3 is exact. */
    t.scale = 0;
    assert_true(gf_run(vd_check_scale, &t).pass);
    struct img *odd = img_resize(u.lr, 1000, 1000, "lanczos3", &err);
    assert_non_null(odd);
    task(&t, odd, &u);
    t.scale = 0;
    assert_false(gf_run(vd_check_scale, &t).pass);
    img_free(x3);
    img_free(odd);
    up_free(&u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faithful_upscales_pass),
        cmocka_unit_test(test_replaced_patch_fails),
        cmocka_unit_test(test_other_picture_fails),
        cmocka_unit_test(test_wrong_scale_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
