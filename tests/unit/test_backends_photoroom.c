/* SPDX-License-Identifier: MIT */
/* test_backends_photoroom.c -- the Photoroom adapter against the Photoroom
 * emulator, in-process: v1 segment and v2 edit cutouts (RGBA), ignored
 * parameters noted, the vendor's errors in both shapes, faults and limits. */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static struct ig_buf photo;
static struct img *photo_img;

static int
setup(void **state)
{
    (void)state;
    setenv("IG_TEST_PR_KEY", "pr-key", 1);
    if (h_setup("photoroom", "photoroom", "", "env:IG_TEST_PR_KEY") != 0)
        return -1;
    photo_img = emu_picture("test", "product", 2, "x", 180, 120);
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

static void
check_cutout(const struct be_call *c)
{
    if (!c->result.ok)
        fail_msg("%s %s", c->result.err.code, c->result.err.message);
    struct ig_error err = {0};
    struct img *out = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    assert_non_null(out);
    assert_int_equal(out->width, 180);
    assert_true(out->info.has_alpha);
    assert_int_equal(out->rgba[3], 0);
    assert_int_equal(out->rgba[4 * (60 * 180 + 90) + 3], 255);
    img_free(out);
}

static void
test_v1_and_v2(void **state)
{
    (void)state;
    struct be_request req = {.cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1, .input = photo.data,
                             .input_len = photo.len};
    struct be_call *c = h_run(&req);
    check_cutout(c);
    assert_true(json_real_value(json_object_get(c->result.provenance, "uncertainty")) > 0);
    be_call_free(c);
    struct ig_backend_cfg v2 = H.backend;
    v2.model = "edit";
    json_t *vp = json_pack("{s:s}", "shadow.mode", "ai.soft");
    struct be_request r2 = {.cfg = &v2, .cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1,
                            .input = photo.data, .input_len = photo.len, .vendor_params = vp};
    c = h_run(&r2);
    check_cutout(c);
    char *notes = json_dumps(json_object_get(c->result.provenance, "notes"), 0);
    assert_non_null(strstr(notes, "shadow.mode"));
    free(notes);
    be_call_free(c);
    json_decref(vp);
    /* the vendor's validation, in each shape */
    vp = json_pack("{s:s}", "size", "huge");
    req.vendor_params = vp;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "size must be"));
    be_call_free(c);
    json_decref(vp);
    vp = json_pack("{s:s}", "background.color", "zzz");
    r2.vendor_params = vp;
    c = h_run(&r2);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "background.color"));
    be_call_free(c);
    json_decref(vp);
}

static void
test_errors(void **state)
{
    (void)state;
    struct be_request req = {.cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1, .input = photo.data,
                             .input_len = photo.len};
    const char *faults[][2] = {
        {"{\"kind\":\"quota\"}", "quota"},
        {"{\"kind\":\"rate_limit\",\"retry_after\":2}", "rate_limited"},
        {"{\"kind\":\"server_error\"}", "upstream_error"},
        {"{\"kind\":\"unavailable\"}", "upstream_error"},
        {"{\"kind\":\"no_image\"}", "malformed_response"},
        {"{\"kind\":\"wrong_type\"}", "malformed_response"},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        h_faults(faults[i][0]);
        struct be_call *c = h_run(&req);
        if (c->result.ok || strcmp(c->result.err.code, faults[i][1]) != 0)
            fail_msg("%s: got %s", faults[i][0], c->result.err.code);
        if (i == 1)
            assert_int_equal(c->result.retry_after_ms, 2000);
        be_call_free(c);
    }
    struct ig_backend_cfg nokey = H.backend;
    nokey.credential = NULL;
    req.cfg = &nokey;
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "auth");
    be_call_free(c);
    req.cfg = &H.backend;
    struct be_request junk = {.cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1, .input = "xx",
                              .input_len = 2};
    c = h_run(&junk);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    struct ig_backend_cfg quick = H.backend;
    quick.contract.limits.total_timeout_ms = 300;
    h_faults("{\"kind\":\"hang\"}");
    req.cfg = &quick;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    req.cfg = &H.backend;
    req.max_body_bytes = 800;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
    req.max_body_bytes = 0;
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
        cmocka_unit_test(test_v1_and_v2),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
