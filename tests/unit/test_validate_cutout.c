/* SPDX-License-Identifier: MIT */
/* test_validate_cutout.c -- remove-background checks on cutouts with a
 * known matte: a subject (a crop of one photo) composited with a soft disc
 * alpha over a green-tinted second photo, as a subject in front of a
 * textured backdrop. The true cutout passes; the same matte dilated with
 * the input's colours (a halo of background), an eroded one (subject cut
 * away), empty and full mattes, an opaque output and a cutout whose
 * colours are not the photo's must fail their check. */
#include "gate_fixtures.h"

#include <math.h>

#define W 448
#define H 300
#define CX 224.0
#define CY 150.0
#define R 100.0

struct scene {
    struct img *fg, *bg, *input;
};

/* Alpha of a disc of radius r with a 2 px soft edge. */
static double
disc(int x, int y, double r)
{
    double d = hypot(x - CX, y - CY);
    double a = (r - d) / 2.0 + 0.5;
    return a < 0 ? 0 : a > 1 ? 1 : a;
}

static void
scene_make(struct scene *s)
{
    s->fg = gf_photo_crop("astronaut.png", 32, 64, W, H);
    s->bg = gf_photo_crop("coffee.png", 100, 50, W, H);
    for (size_t i = 0; i < (size_t)W * H; i++) {
        uint8_t *p = s->bg->rgba + 4 * i;
        p[0] = (uint8_t)(p[0] / 3);
        p[1] = (uint8_t)(120 + p[1] / 3);
        p[2] = (uint8_t)(p[2] / 3);
    }
    s->input = img_clone(s->bg);
    assert_non_null(s->input);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t k = 4 * ((size_t)y * W + x);
            double a = disc(x, y, R);
            for (int c = 0; c < 3; c++)
                s->input->rgba[k + c] =
                    gf_clamp(a * s->fg->rgba[k + c] + (1 - a) * s->bg->rgba[k + c]);
        }
}

static void
scene_free(struct scene *s)
{
    img_free(s->fg);
    img_free(s->bg);
    img_free(s->input);
}

/* A cutout with a disc matte of radius r, colours from src. */
static struct img *
cutout(const struct img *src, double r)
{
    struct img *im = img_clone(src);
    assert_non_null(im);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            im->rgba[4 * ((size_t)y * W + x) + 3] = gf_clamp(255 * disc(x, y, r));
    im->info.has_alpha = 1;
    im->info.format = IMG_FMT_PNG;
    return im;
}

static void
task(struct vd_task *t, const struct img *out, const struct scene *s)
{
    gf_task(t, IG_CLASS_REMOVE_BACKGROUND, out);
    t->input = s->input;
}

static void
test_true_cutout_passes(void **state)
{
    struct scene s;
    scene_make(&s);
    struct img *good = cutout(s.fg, R);
    struct vd_task t;
    task(&t, good, &s);
    assert_true(gf_run(vd_check_alpha, &t).pass);
    assert_true(gf_run(vd_check_coverage, &t).pass);
    struct vd_check halo = gf_run(vd_check_halo_bleed, &t);
    assert_true(halo.pass);
    assert_true(halo.score < 0.2);
    struct vd_check cut = gf_run(vd_check_cut_fg, &t);
    assert_true(cut.pass);
    assert_true(cut.score < 0.3);
    assert_true(gf_run(vd_check_composite, &t).pass);
    /* The naive cutout (the input's colours with the true matte) is
     * contaminated on its soft edge only: still within the bounds. */
    struct img *naive = cutout(s.input, R);
    task(&t, naive, &s);
    assert_true(gf_run(vd_check_halo_bleed, &t).pass);
    assert_true(gf_run(vd_check_composite, &t).pass);
    img_free(good);
    img_free(naive);
    scene_free(&s);
}

static void
test_halo_fails(void **state)
{
    struct scene s;
    scene_make(&s);
    /* A matte 4 px too big, filled from the input: a rim of backdrop. */
    struct img *haloed = cutout(s.input, R + 4);
    struct vd_task t;
    task(&t, haloed, &s);
    struct vd_check c = gf_run(vd_check_halo_bleed, &t);
    assert_false(c.pass);
    assert_true(c.score > 0.5);
    assert_true(gf_run(vd_check_cut_fg, &t).pass);
    img_free(haloed);
    scene_free(&s);
}

static void
test_cut_subject_fails(void **state)
{
    struct scene s;
    scene_make(&s);
    struct img *eroded = cutout(s.fg, R - 6);
    struct vd_task t;
    task(&t, eroded, &s);
    struct vd_check c = gf_run(vd_check_cut_fg, &t);
    assert_false(c.pass);
    assert_true(c.score > 0.5);
    assert_true(gf_run(vd_check_halo_bleed, &t).pass);
    img_free(eroded);
    scene_free(&s);
}

static void
test_implausible_mattes_fail(void **state)
{
    struct scene s;
    scene_make(&s);
    struct vd_task t;
    struct img *empty = cutout(s.fg, -10);
    task(&t, empty, &s);
    assert_false(gf_run(vd_check_coverage, &t).pass);
    struct img *full = cutout(s.fg, 1000);
    task(&t, full, &s);
    assert_false(gf_run(vd_check_coverage, &t).pass);
    assert_false(gf_run(vd_check_alpha, &t).pass);   /* nothing transparent */
    /* An opaque JPEG-like answer: no alpha channel at all. */
    struct img *flat = img_clone(s.input);
    task(&t, flat, &s);
    struct vd_check c = gf_run(vd_check_alpha, &t);
    assert_false(c.pass);
    img_free(empty);
    img_free(full);
    img_free(flat);
    scene_free(&s);
}

static void
test_foreign_colours_fail(void **state)
{
    struct scene s;
    scene_make(&s);
    struct img *other = gf_photo_crop("chelsea.png", 0, 0, W, H);
    struct img *wrong = cutout(other, R);
    struct vd_task t;
    task(&t, wrong, &s);
    struct vd_check c = gf_run(vd_check_composite, &t);
    assert_false(c.pass);
    /* A cutout of another size cannot be judged against the input. */
    struct img *small = gf_photo_crop("chelsea.png", 0, 0, 200, 100);
    small->info.has_alpha = 1;
    task(&t, small, &s);
    assert_false(gf_run(vd_check_composite, &t).pass);
    assert_false(gf_run(vd_check_halo_bleed, &t).pass);
    img_free(other);
    img_free(wrong);
    img_free(small);
    scene_free(&s);
}

static void
test_no_input_skips(void **state)
{
    struct img *im = gf_photo("chelsea.png");
    struct vd_task t;
    gf_task(&t, IG_CLASS_REMOVE_BACKGROUND, im);
    struct vd_check c;
    struct ig_error err = {0};
    assert_int_equal(vd_check_halo_bleed(&t, &c, &err), VD_SKIP);
    assert_int_equal(vd_check_cut_fg(&t, &c, &err), VD_SKIP);
    assert_int_equal(vd_check_composite(&t, &c, &err), VD_SKIP);
    img_free(im);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true_cutout_passes),  cmocka_unit_test(test_halo_fails),
        cmocka_unit_test(test_cut_subject_fails),   cmocka_unit_test(test_implausible_mattes_fail),
        cmocka_unit_test(test_foreign_colours_fail), cmocka_unit_test(test_no_input_skips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
