/* SPDX-License-Identifier: MIT */
/* test_validate_edit.c -- masked edits of a real photo: a rectangle of the
 * input replaced by part of another photo, with a light re-encode grain
 * elsewhere, passes (kept outside, changed inside), read through both mask
 * conventions. A picture regenerated from scratch fails "preserve"; an
 * "edit" that changed nothing fails "changed"; without a mask only the
 * changed area is reported. */
#include "gate_fixtures.h"

#define W 600
#define H 400
#define X0 200
#define Y0 120
#define MW 200
#define MH 150

static int
in_rect(int x, int y)
{
    return x >= X0 && x < X0 + MW && y >= Y0 && y < Y0 + MH;
}

/* alpha_style: transparent = edit (OpenAI); else white = edit on black. */
static struct img *
rect_mask(int alpha_style)
{
    struct img *m = gf_fill(W, H, alpha_style ? 0 : 0, 0, 0);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = m->rgba + 4 * ((size_t)y * W + x);
            if (!in_rect(x, y))
                continue;
            if (alpha_style)
                p[3] = 0;
            else
                p[0] = p[1] = p[2] = 255;
        }
    return m;
}

static struct img *
edited(const struct img *input)
{
    struct img *other = gf_photo_crop("astronaut.png", 0, 0, W - 88, H);
    struct img *out = img_clone(input);
    assert_non_null(out);
    gf_add_noise(out, 2, 0, 9);
    for (int y = Y0; y < Y0 + MH; y++)
        memcpy(out->rgba + ((size_t)y * W + X0) * 4, other->rgba + ((size_t)y * other->width + X0) * 4,
               MW * 4);
    img_free(other);
    return out;
}

static void
task(struct vd_task *t, const struct img *out, const struct img *in, const struct img *mask)
{
    gf_task(t, IG_CLASS_EDIT, out);
    t->input = in;
    t->mask = mask;
}

static void
test_good_edit_passes(void **state)
{
    struct img *in = gf_photo("coffee.png"), *out = edited(in);
    for (int style = 0; style < 2; style++) {
        struct img *mask = rect_mask(style);
        struct vd_task t;
        task(&t, out, in, mask);
        struct vd_check p = gf_run(vd_check_preserve, &t);
        assert_true(p.pass);
        assert_true(p.score > 0.9);
        struct vd_check c = gf_run(vd_check_changed, &t);
        assert_true(c.pass);
        assert_true(c.score > 0.5);
        img_free(mask);
    }
    img_free(in);
    img_free(out);
}

static void
test_regenerated_fails_preserve(void **state)
{
    struct img *in = gf_photo("coffee.png"), *mask = rect_mask(0);
    struct img *out = gf_photo_crop("rocket.jpg", 0, 0, W, H);
    struct vd_task t;
    task(&t, out, in, mask);
    struct vd_check p = gf_run(vd_check_preserve, &t);
    assert_false(p.pass);
    assert_true(p.score < 0.5);
    img_free(in);
    img_free(out);
    img_free(mask);
}

static void
test_unchanged_fails_changed(void **state)
{
    struct img *in = gf_photo("coffee.png"), *mask = rect_mask(1);
    struct img *out = img_clone(in);
    gf_add_noise(out, 2, 0, 4);
    struct vd_task t;
    task(&t, out, in, mask);
    assert_true(gf_run(vd_check_preserve, &t).pass);
    struct vd_check c = gf_run(vd_check_changed, &t);
    assert_false(c.pass);
    assert_true(c.score < 0.01);
    img_free(in);
    img_free(out);
    img_free(mask);
}

static void
test_no_mask_reports_area(void **state)
{
    struct img *in = gf_photo("coffee.png"), *out = edited(in);
    struct vd_task t;
    task(&t, out, in, NULL);
    struct vd_check c;
    struct ig_error err = {0};
    assert_int_equal(vd_check_preserve(&t, &c, &err), VD_SKIP);
    c = gf_run(vd_check_changed, &t);
    assert_string_equal(c.name, "changed_area");
    assert_true(c.pass);
    /* The rectangle is 12.5 % of the picture; most of it really changed. */
    assert_true(c.score > 0.08 && c.score < 0.14);
    img_free(in);
    img_free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_edit_passes),
        cmocka_unit_test(test_regenerated_fails_preserve),
        cmocka_unit_test(test_unchanged_fails_changed),
        cmocka_unit_test(test_no_mask_reports_area),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
