/* SPDX-License-Identifier: MIT */
/* test_backends_removebg.c -- the remove.bg adapter against the remove.bg
 * emulator, in-process: the cutout comes back RGBA with its credits, the
 * vendor's field validation, every error class and fault, and the limits. */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static struct ig_buf photo;
static struct img *photo_img;

static int
setup(void **state)
{
    (void)state;
    setenv("IG_TEST_RB_KEY", "rb-key", 1);
    if (h_setup("removebg", "removebg", "", "env:IG_TEST_RB_KEY") != 0)
        return -1;
    photo_img = emu_picture("test", "subject", 9, "x", 200, 150);
    struct ig_error err = {0};
    return img_encode(photo_img, IMG_FMT_PNG, 0, NULL, &photo, &err);
}

static int
teardown(void **state)
{
    (void)state;
    img_free(photo_img);
    ig_buf_free(&photo);
    h_teardown();
    return 0;
}

static struct be_request
cut_request(void)
{
    return (struct be_request){.cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1, .input = photo.data,
                               .input_len = photo.len};
}

static void
expect_error(const char *fault, const char *code)
{
    h_faults(fault);
    struct be_request req = cut_request();
    struct be_call *c = h_run(&req);
    if (c->result.ok || strcmp(c->result.err.code, code) != 0)
        fail_msg("fault %s: got ok=%d %s (%s), wanted %s", fault, c->result.ok,
                 c->result.err.code, c->result.err.message, code);
    be_call_free(c);
}

static void
test_cutout(void **state)
{
    (void)state;
    struct be_request req = cut_request();
    struct be_call *c = h_run(&req);
    assert_true(c->result.ok);
    assert_string_equal(c->result.images[0].mime, "image/png");
    struct ig_error err = {0};
    struct img *out = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    assert_non_null(out);
    /* full size (the adapter asks for it), RGBA: the background is transparent, the subject kept */
    assert_int_equal(out->width, 200);
    assert_int_equal(out->height, 150);
    assert_true(out->info.has_alpha);
    assert_int_equal(out->rgba[3], 0);
    size_t mid = 4 * (75 * 200 + 100);
    assert_int_equal(out->rgba[mid + 3], 255);
    assert_memory_equal(out->rgba + mid, photo_img->rgba + mid, 3);
    json_t *p = c->result.provenance;
    assert_true(json_real_value(json_object_get(p, "credits")) == 1.0);
    assert_string_equal(json_string_value(json_object_get(p, "foreground_type")), "other");
    img_free(out);
    be_call_free(c);
    /* the vendor's own default size, preview, is a small thumbnail and 0.25 credit */
    json_t *vp = json_pack("{s:s,s:s}", "size", "preview", "type", "product");
    req.vendor_params = vp;
    c = h_run(&req);
    assert_true(c->result.ok);
    out = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    assert_true((long)out->width * out->height <= 250000);
    assert_true(json_real_value(json_object_get(c->result.provenance, "credits")) == 0.25);
    assert_string_equal(json_string_value(json_object_get(c->result.provenance,
                                                          "foreground_type")),
                        "product");
    img_free(out);
    be_call_free(c);
    json_decref(vp);
    /* A size the cutout cannot honour is noted, and the model is still
     * named (it was only named when there was no note). */
    struct be_request sized = cut_request();
    sized.width = 64;
    sized.height = 64;
    c = h_run(&sized);
    assert_true(c->result.ok);
    assert_true(h_has_note(c, "dropped", "size 64x64"));
    assert_string_equal(json_string_value(json_object_get(c->result.provenance, "model")),
                        "remove.bg");
    be_call_free(c);
}

static void
test_vendor_validation(void **state)
{
    (void)state;
    struct be_request req = cut_request();
    json_t *vp = json_pack("{s:s}", "size", "gigantic");
    req.vendor_params = vp;
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "invalid_size"));
    be_call_free(c);
    json_decref(vp);
    vp = json_pack("{s:s}", "bg_color", "not-a-colour");
    req.vendor_params = vp;
    c = h_run(&req);
    assert_non_null(strstr(c->result.err.message, "invalid_bg_color"));
    be_call_free(c);
    json_decref(vp);
    /* bytes that are no image */
    struct be_request junk = {.cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1, .input = "nope",
                              .input_len = 4};
    c = h_run(&junk);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "failed_to_read_image"));
    be_call_free(c);
    /* other classes never leave the gateway */
    struct be_request gen = {.cfg = &H.backend, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct ig_error err = {0};
    assert_int_equal(be_call_start(H.loop, &gen, NULL, h_on_done, NULL, &err), -1);
}

static void
test_errors(void **state)
{
    (void)state;
    expect_error("{\"kind\":\"quota\"}", "quota");
    expect_error("{\"kind\":\"rate_limit\",\"retry_after\":4}", "rate_limited");
    expect_error("{\"kind\":\"server_error\"}", "upstream_error");
    expect_error("{\"kind\":\"unavailable\"}", "upstream_error");
    expect_error("{\"kind\":\"no_image\"}", "malformed_response");
    expect_error("{\"kind\":\"wrong_type\"}", "malformed_response");
    expect_error("{\"kind\":\"moderation\"}", "invalid_request");   /* unknown_foreground */
    h_faults("{\"kind\":\"rate_limit\",\"retry_after\":4}");
    struct be_request req = cut_request();
    struct be_call *c = h_run(&req);
    assert_int_equal(c->result.retry_after_ms, 4000);
    be_call_free(c);
    struct ig_backend_cfg nokey = H.backend;
    nokey.credential = NULL;
    req.cfg = &nokey;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "auth");
    assert_non_null(strstr(c->result.err.message, "auth_failed"));
    be_call_free(c);
    /* hang, body cap, corrupt image */
    struct ig_backend_cfg quick = H.backend;
    quick.contract.limits.total_timeout_ms = 300;
    h_faults("{\"kind\":\"hang\"}");
    req.cfg = &quick;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    req = cut_request();
    req.max_body_bytes = 1000;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
    req = cut_request();
    h_faults("{\"kind\":\"corrupt_image\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    struct ig_error err = {0};
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cutout),
        cmocka_unit_test(test_vendor_validation),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
