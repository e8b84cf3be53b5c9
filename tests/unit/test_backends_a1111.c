/* SPDX-License-Identifier: MIT */
/* test_backends_a1111.c -- the AUTOMATIC1111 adapter against the webui
 * emulator, in-process: txt2img with a batch and the info string, img2img
 * within a mask, extra-single-image upscales, HTTP Basic with --api-auth,
 * the webui's error bodies, and the faults and limits. */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static int
setup(void **state)
{
    (void)state;
    if (h_setup("a1111", "a1111", "", NULL) != 0)
        return -1;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    h_teardown();
    return 0;
}

static struct img *
decoded(const struct be_call *c, int i)
{
    struct ig_error err = {0};
    if (!c->result.ok)
        fail_msg("call failed: %s %s", c->result.err.code, c->result.err.message);
    struct img *im = img_decode(c->result.images[i].data, c->result.images[i].len, NULL, &err);
    if (!im)
        fail_msg("decode: %s", err.message);
    return im;
}

static void
test_txt2img(void **state)
{
    (void)state;
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a castle", .n = 2,
                             .negative_prompt = "blurry", .width = 320, .height = 256,
                             .seed = 77, .has_seed = 1};
    struct be_call *c = h_run(&req);
    assert_int_equal(c->result.n_images, 2);
    struct img *a = decoded(c, 0), *b = decoded(c, 1);
    assert_int_equal(a->width, 320);
    assert_int_equal(a->height, 256);
    assert_true(h_diff(a, b) > 5);
    json_t *p = c->result.provenance;
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 77);
    assert_string_equal(json_string_value(json_object_get(p, "fingerprint")), "fp_1");
    assert_string_equal(json_string_value(json_object_get(p, "model")), "v1-5-pruned-emaonly");
    img_free(a);
    img_free(b);
    be_call_free(c);
    /* The webui answers PNG whatever was asked: noted, beside the endpoint. */
    struct be_request jpeg = req;
    jpeg.n = 1;
    jpeg.output_format = "jpeg";
    c = h_run(&jpeg);
    assert_true(c->result.ok);
    assert_true(h_has_note(c, "dropped", "output_format jpeg"));
    assert_string_equal(json_string_value(json_object_get(c->result.provenance, "endpoint")),
                        "txt2img");
    be_call_free(c);
    /* an unknown sampler is the webui's 404 */
    json_t *vp = json_pack("{s:s}", "sampler_name", "Nope");
    req.vendor_params = vp;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "Sampler not found"));
    be_call_free(c);
    json_decref(vp);
    /* a size out of range: FastAPI's 422 */
    struct be_request big = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 9000,
                             .height = 64};
    c = h_run(&big);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
}

static void
test_img2img_and_upscale(void **state)
{
    (void)state;
    struct img *in = emu_picture("test", "input", 3, "x", 128, 128);
    struct img *mask = img_new(128, 128);
    for (int i = 0; i < 128 * 128; i++) {
        uint8_t v = (i % 128) >= 64 ? 255 : 0;   /* the right half */
        mask->rgba[4 * i] = mask->rgba[4 * i + 1] = mask->rgba[4 * i + 2] = v;
        mask->rgba[4 * i + 3] = 255;
    }
    struct ig_buf png = {0}, mpng = {0};
    struct ig_error err = {0};
    assert_int_equal(img_encode(in, IMG_FMT_PNG, 0, NULL, &png, &err), 0);
    assert_int_equal(img_encode(mask, IMG_FMT_PNG, 0, NULL, &mpng, &err), 0);
    struct be_request req = {.cls = IG_CLASS_EDIT, .prompt = "a tower", .n = 1,
                             .input = png.data, .input_len = png.len, .mask = mpng.data,
                             .mask_len = mpng.len};
    struct be_call *c = h_run(&req);
    struct img *out = decoded(c, 0);
    long left = 0, right = 0;
    for (int i = 0; i < 128 * 128; i++)
        if (memcmp(in->rgba + 4 * i, out->rgba + 4 * i, 3) != 0)
            *((i % 128) >= 64 ? &right : &left) += 1;
    assert_int_equal(left, 0);
    assert_true(right > 64 * 128 / 2);
    img_free(out);
    be_call_free(c);
    struct be_request up = {.cls = IG_CLASS_UPSCALE, .n = 1, .scale = 3, .input = png.data,
                            .input_len = png.len};
    c = h_run(&up);
    out = decoded(c, 0);
    assert_int_equal(out->width, 384);
    struct img *down = img_resize(out, 128, 128, "box", &err);
    assert_true(h_diff(down, in) < 8);
    img_free(down);
    img_free(out);
    be_call_free(c);
    /* bytes that are no image: the webui's 500, the input's fault */
    struct be_request junk = {.cls = IG_CLASS_EDIT, .prompt = "x", .n = 1, .input = "nope",
                              .input_len = 4};
    c = h_run(&junk);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    img_free(in);
    img_free(mask);
    ig_buf_free(&png);
    ig_buf_free(&mpng);
}

static void
test_auth_and_faults(void **state)
{
    (void)state;
    h_knobs("{\"api_auth\":1}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 64,
                             .height = 64};
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "auth");
    be_call_free(c);
    setenv("IG_TEST_A1111_AUTH", "user:pass", 1);
    struct ig_backend_cfg basic = H.backend;
    basic.credential = "env:IG_TEST_A1111_AUTH";
    req.cfg = &basic;
    c = h_run(&req);
    assert_true(c->result.ok);
    be_call_free(c);
    h_knobs("{\"api_auth\":0}");
    req.cfg = &H.backend;
    const char *faults[][2] = {
        {"{\"kind\":\"server_error\"}", "upstream_error"},
        {"{\"kind\":\"unavailable\"}", "upstream_error"},
        {"{\"kind\":\"malformed_json\"}", "malformed_response"},
        {"{\"kind\":\"no_image\"}", "malformed_response"},
        {"{\"kind\":\"wrong_type\"}", "malformed_response"},
        {"{\"kind\":\"deep_json\",\"depth\":5000}", "malformed_response"},
        {"{\"kind\":\"truncated\"}", "malformed_response"},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        h_faults(faults[i][0]);
        c = h_run(&req);
        if (c->result.ok || strcmp(c->result.err.code, faults[i][1]) != 0)
            fail_msg("%s: got %s", faults[i][0], c->result.err.code);
        be_call_free(c);
    }
    struct ig_backend_cfg quick = H.backend;
    quick.contract.limits.total_timeout_ms = 300;
    h_faults("{\"kind\":\"hang\"}");
    struct be_request hang = {.cfg = &quick, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&hang);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    h_faults("{\"kind\":\"corrupt_image\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    struct ig_error err = {0};
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
    struct be_request small = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                               .max_body_bytes = 500};
    c = h_run(&small);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt2img),
        cmocka_unit_test(test_img2img_and_upscale),
        cmocka_unit_test(test_auth_and_faults),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
