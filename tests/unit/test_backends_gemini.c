/* SPDX-License-Identifier: MIT */
/* test_backends_gemini.c -- the Gemini adapter against the Gemini emulator,
 * in-process: generateContent with inlineData in and out, the size
 * translated to aspectRatio/imageSize, thought parts skipped, moderation as
 * an HTTP 200 (finish and block reasons), every error class, every fault,
 * and the limits (body cap, deep JSON, wrong content type). */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static int
setup(void **state)
{
    (void)state;
    setenv("IG_TEST_GEMINI_KEY", "gem-test-key", 1);
    if (h_setup("gemini", "gemini", "", "env:IG_TEST_GEMINI_KEY") != 0)
        return -1;
    H.backend.model = "gemini-2.5-flash-image";
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
decoded(const struct be_call *c)
{
    struct ig_error err = {0};
    if (!c->result.ok)
        fail_msg("call failed: %s %s", c->result.err.code, c->result.err.message);
    assert_int_equal(c->result.n_images, 1);
    struct img *im = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    if (!im)
        fail_msg("decode: %s", err.message);
    return im;
}

static void
expect_error(const char *fault, const char *code)
{
    h_faults(fault);
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a heron", .n = 1,
                             .width = 1024, .height = 1024};
    struct be_call *c = h_run(&req);
    if (c->result.ok || strcmp(c->result.err.code, code) != 0)
        fail_msg("fault %s: got ok=%d %s (%s), wanted %s", fault, c->result.ok,
                 c->result.err.code, c->result.err.message, code);
    be_call_free(c);
}

static void
test_generate(void **state)
{
    (void)state;
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a heron in reeds",
                             .negative_prompt = "people", .n = 3, .width = 1344, .height = 768,
                             .seed = 11, .has_seed = 1};
    struct be_call *c = h_run(&req);
    struct img *im = decoded(c);
    /* 16:9 at 1K, from Google's table */
    assert_int_equal(im->width, 1344);
    assert_int_equal(im->height, 768);
    assert_string_equal(c->result.images[0].mime, "image/png");
    json_t *p = c->result.provenance;
    assert_string_equal(json_string_value(json_object_get(p, "finish_reason")), "STOP");
    assert_string_equal(json_string_value(json_object_get(p, "model_version")),
                        "gemini-2.5-flash-image");
    assert_string_equal(json_string_value(json_object_get(p, "fingerprint")), "fp_1");
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 11);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "usage"),
                                                        "candidatesTokenCount")),
                     1290);
    assert_non_null(json_string_value(json_object_get(p, "request_id")));
    assert_true(h_has_note(c, "translated", "aspectRatio 16:9"));
    assert_true(h_has_note(c, "dropped", "negative prompt"));
    assert_true(h_has_note(c, "dropped", "one image per call"));
    /* the same request again: the same picture; another vendor: another */
    struct be_call *again = h_run(&req);
    assert_int_equal(again->result.images[0].len, c->result.images[0].len);
    assert_memory_equal(again->result.images[0].data, c->result.images[0].data,
                        c->result.images[0].len);
    struct img *bfl = emu_picture("bfl", "a heron in reeds", 11, "fp_1", 1344, 768);
    assert_true(h_diff(bfl, im) > 20);
    img_free(bfl);
    img_free(im);
    be_call_free(again);
    be_call_free(c);
}

static void
test_gemini3_sizes_and_thought_parts(void **state)
{
    (void)state;
    struct ig_backend_cfg pro = H.backend;
    pro.model = "gemini-3-pro-image-preview";
    struct be_request req = {.cfg = &pro, .cls = IG_CLASS_GENERATE, .prompt = "a map", .n = 1,
                             .width = 2048, .height = 2048};
    struct be_call *c = h_run(&req);
    struct img *im = decoded(c);
    /* 2K, and the final image, not the 64x64 thought before it */
    assert_int_equal(im->width, 2048);
    assert_int_equal(im->height, 2048);
    img_free(im);
    be_call_free(c);
    /* 2.5 flash makes 1K only: the vendor refuses 2K */
    req.cfg = &H.backend;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "INVALID_ARGUMENT"));
    be_call_free(c);
    /* the third-party size table, a knob */
    h_knobs("{\"size_table\":1}");
    struct be_request wide = {.cls = IG_CLASS_GENERATE, .prompt = "a map", .n = 1,
                              .width = 1408, .height = 768};
    c = h_run(&wide);
    im = decoded(c);
    assert_int_equal(im->width, 1408);
    img_free(im);
    be_call_free(c);
    h_knobs("{\"size_table\":0}");
}

static void
test_edit(void **state)
{
    (void)state;
    struct img *in = emu_picture("test", "input", 2, "x", 160, 120);
    struct ig_buf png = {0};
    struct ig_error err = {0};
    assert_int_equal(img_encode(in, IMG_FMT_PNG, 0, NULL, &png, &err), 0);
    struct be_request req = {.cls = IG_CLASS_EDIT, .prompt = "add snow", .n = 1,
                             .input = png.data, .input_len = png.len, .mask = png.data,
                             .mask_len = png.len};
    struct be_call *c = h_run(&req);
    struct img *out = decoded(c);
    assert_int_equal(out->width, 160);
    assert_int_equal(out->height, 120);
    assert_true(h_diff(in, out) > 10);
    assert_true(h_has_note(c, "dropped", "mask"));
    img_free(out);
    img_free(in);
    ig_buf_free(&png);
    be_call_free(c);
}

static void
test_errors(void **state)
{
    (void)state;
    expect_error("{\"kind\":\"moderation\"}", "moderated");
    expect_error("{\"kind\":\"blocked\"}", "moderated");
    expect_error("{\"kind\":\"no_image\"}", "malformed_response");
    expect_error("{\"kind\":\"malformed_json\"}", "malformed_response");
    expect_error("{\"kind\":\"quota\"}", "quota");
    expect_error("{\"kind\":\"server_error\"}", "upstream_error");
    expect_error("{\"kind\":\"unavailable\"}", "upstream_error");
    expect_error("{\"kind\":\"truncated\"}", "malformed_response");
    expect_error("{\"kind\":\"wrong_type\"}", "malformed_response");
    expect_error("{\"kind\":\"deep_json\",\"depth\":5000}", "malformed_response");
    /* RetryInfo's delay is the wait when no Retry-After header is sent */
    h_faults("{\"kind\":\"rate_limit\",\"retry_after\":9}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "rate_limited");
    assert_int_equal(c->result.retry_after_ms, 9000);
    be_call_free(c);
    /* moderation carries the reason */
    h_faults("{\"kind\":\"moderation\"}");
    c = h_run(&req);
    assert_non_null(strstr(c->result.err.message, "IMAGE_SAFETY"));
    assert_false(c->result.charged);
    be_call_free(c);
    /* an unknown model */
    struct ig_backend_cfg bad = H.backend;
    bad.model = "gemini-0-nano";
    struct be_request r2 = {.cfg = &bad, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&r2);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    /* a corrupt image is passed on untouched */
    h_faults("{\"kind\":\"corrupt_image\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    struct ig_error err = {0};
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
    /* a hang ends at the contract's timeout */
    struct ig_backend_cfg quick = H.backend;
    quick.contract.limits.total_timeout_ms = 300;
    h_faults("{\"kind\":\"hang\"}");
    struct be_request hang = {.cfg = &quick, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&hang);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    /* the body cap */
    struct be_request small = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                               .max_body_bytes = 3000};
    c = h_run(&small);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
}

static void
test_auth(void **state)
{
    (void)state;
    struct ig_backend_cfg nokey = H.backend;
    nokey.credential = NULL;
    struct be_request req = {.cfg = &nokey, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "auth");
    be_call_free(c);
    /* an invalid key is a 400 at Google, but auth all the same */
    setenv("IG_TEST_GEMINI_KEY", "invalid", 1);
    req.cfg = &H.backend;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "auth");
    be_call_free(c);
    setenv("IG_TEST_GEMINI_KEY", "gem-test-key", 1);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_gemini3_sizes_and_thought_parts),
        cmocka_unit_test(test_edit),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_auth),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
