/* SPDX-License-Identifier: MIT */
/* test_validate_gate.c -- the gate as a whole: which checks each class
 * runs, the report and its JSON form, bounds from the config, and the
 * gateway hook building its task from a job request. */
#include "gate_fixtures.h"

#include <jansson.h>

static const char *
names(const struct vd_report *r)
{
    static char buf[512];
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < r->n; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? " " : "", r->checks[i].name);
    return buf;
}

static void
run(const struct vd_task *t, struct vd_report *r)
{
    struct ig_error err = {0};
    if (vd_gate_run(t, r, &err) != 0)
        fail_msg("gate: %s %s", err.code, err.message);
    print_message("%s: %s\n", r->pass ? "pass" : "FAIL", names(r));
}

static void
test_generate(void **state)
{
    struct img *im = gf_photo("coffee.png");
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    t.want_w = 1536;
    t.want_h = 1024;
    struct vd_report r;
    run(&t, &r);
    assert_true(r.pass);
    assert_string_equal(names(&r), "decode aspect blank clipped noise");

    json_t *j = vd_report_json(&r);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "pass")));
    json_t *c = json_array_get(json_object_get(j, "checks"), 4);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "noise");
    assert_true(json_is_number(json_object_get(c, "score")));
    assert_true(json_real_value(json_object_get(c, "bound")) == 0.5);
    assert_true(json_is_true(json_object_get(c, "pass")));
    json_decref(j);

    struct img *noise = gf_fill(600, 400, 128, 128, 128);
    gf_add_noise(noise, 40, 0, 3);
    t.output = noise;
    run(&t, &r);
    assert_false(r.pass);
    char failed[128];
    vd_report_failed(&r, failed, sizeof failed);
    assert_string_equal(failed, "noise");
    img_free(im);
    img_free(noise);
}

static void
test_undecodable_stops(void **state)
{
    struct vd_task t;
    gf_task(&t, IG_CLASS_UPSCALE, NULL);
    t.decode_error = "cannot read the image header";
    struct vd_report r;
    run(&t, &r);
    assert_false(r.pass);
    assert_string_equal(names(&r), "decode");
}

static void
test_class_tables(void **state)
{
    struct img *in = gf_photo_crop("flower.png", 600, 200, 256, 256);
    struct ig_error err = {0};
    struct img *up = img_resize(in, 512, 512, "lanczos3", &err);
    assert_non_null(up);
    struct vd_task t;
    gf_task(&t, IG_CLASS_UPSCALE, up);
    t.input = in;
    t.scale = 2;
    vd_task_derive(&t);
    struct vd_report r;
    run(&t, &r);
    assert_true(r.pass);
    assert_string_equal(names(&r),
                        "decode size aspect blank clipped noise scale lr_psnr lr_tile_psnr lr_ssim");

    /* The same picture as a cutout: it has no alpha. */
    struct img *flat = img_clone(in);
    gf_task(&t, IG_CLASS_REMOVE_BACKGROUND, flat);
    t.input = in;
    vd_task_derive(&t);
    run(&t, &r);
    assert_false(r.pass);
    assert_string_equal(names(&r), "decode size aspect blank clipped noise alpha coverage "
                                   "halo_bleed cut_fg composite");
    char failed[128];
    vd_report_failed(&r, failed, sizeof failed);
    assert_string_equal(failed, "alpha, coverage");

    gf_task(&t, IG_CLASS_EDIT, flat);
    t.input = in;
    run(&t, &r);
    assert_true(r.pass);
    assert_string_equal(names(&r), "decode blank clipped noise changed_area");
    img_free(in);
    img_free(up);
    img_free(flat);
}

static void
test_config_bounds(void **state)
{
    static const char yaml[] = "backends: []\n"
                               "validation:\n"
                               "  generate: {clipped: 0.05}\n";
    struct ig_error err = {0};
    struct ig_config *cfg = ig_config_load("t.yaml", yaml, sizeof yaml - 1, NULL, &err);
    assert_non_null(cfg);
    struct img *im = gf_photo("astronaut.png");   /* 14 % of it clipped */
    struct vd_task t;
    gf_task(&t, IG_CLASS_GENERATE, im);
    struct vd_report r;
    run(&t, &r);
    assert_true(r.pass);
    t.cfg = cfg;
    run(&t, &r);
    assert_false(r.pass);
    /* Bounds are per class: an edit keeps the default. */
    t.cls = IG_CLASS_EDIT;
    run(&t, &r);
    assert_true(r.pass);
    img_free(im);
    ig_config_free(cfg);
}

static json_t *
hook(const char *request, const struct img *out, const struct img *in, int *pass,
     struct ig_error *err, int expect_rc)
{
    json_t *req = json_loads(request, 0, NULL);
    assert_non_null(req);
    json_t *report = NULL;
    enum ig_class cls;
    assert_int_equal(ig_class_parse(json_string_value(json_object_get(req, "class")), &cls), 0);
    int rc = vd_gate_job(NULL, NULL, cls, req, out, in, NULL, &report, pass, err);
    json_decref(req);
    assert_int_equal(rc, expect_rc);
    return report;
}

static void
test_job_hook(void **state)
{
    struct img *photo = gf_photo("coffee.png"), *gray = gf_fill(600, 400, 128, 128, 128);
    int pass = -1;
    struct ig_error err = {0};
    json_t *rep = hook("{\"class\":\"generate\",\"size\":\"1536x1024\"}", photo, NULL, &pass,
                       &err, 0);
    assert_int_equal(pass, 1);
    assert_true(json_is_true(json_object_get(rep, "pass")));
    json_decref(rep);

    rep = hook("{\"class\":\"generate\",\"size\":\"1024x1024\"}", gray, NULL, &pass, &err, 0);
    assert_int_equal(pass, 0);
    assert_string_equal(err.code, "validation_failed");
    assert_non_null(strstr(err.message, "aspect, blank"));
    json_decref(rep);

    memset(&err, 0, sizeof err);
    rep = hook("{\"class\":\"generate\",\"checks\":{\"palette\":[\"#ff0000\",\"blue\"]}}", photo,
               NULL, &pass, &err, -1);
    assert_null(rep);
    assert_string_equal(err.code, "invalid_palette");

    memset(&err, 0, sizeof err);
    rep = hook("{\"class\":\"generate\",\"checks\":{\"expect_txt\":\"ACME\"}}", photo, NULL,
               &pass, &err, -1);
    assert_string_equal(err.code, "invalid_request");
    assert_non_null(strstr(err.message, "checks.expect_txt"));

    /* An upscale's expected size comes from its input and scale. */
    struct img *small = gf_photo_crop("coffee.png", 0, 0, 300, 200);
    memset(&err, 0, sizeof err);
    rep = hook("{\"class\":\"upscale\",\"scale\":4}", photo, small, &pass, &err, 0);
    assert_int_equal(pass, 0);
    assert_non_null(strstr(err.message, "size"));
    assert_non_null(strstr(err.message, "scale"));
    json_decref(rep);
    img_free(small);
    img_free(photo);
    img_free(gray);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),      cmocka_unit_test(test_undecodable_stops),
        cmocka_unit_test(test_class_tables),  cmocka_unit_test(test_config_bounds),
        cmocka_unit_test(test_job_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
