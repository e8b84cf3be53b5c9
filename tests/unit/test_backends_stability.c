/* SPDX-License-Identifier: MIT */
/* test_backends_stability.c -- the Stability v2beta adapter against the
 * Stability emulator, in-process: multipart generate with the seed and
 * finish-reason headers, inpaint within the mask, remove-background to
 * RGBA, the 4x fast upscale, the async creative upscale (202 until done,
 * resumable), moderation both ways (403 and CONTENT_FILTERED), every error
 * class, the faults and the limits. */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

#include <math.h>

static int
setup(void **state)
{
    (void)state;
    setenv("IG_TEST_STAB_KEY", "sk-stab", 1);
    if (h_setup("stability", "stability", "", "env:IG_TEST_STAB_KEY") != 0)
        return -1;
    H.backend.model = "core";
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
input_png(int w, int h, struct ig_buf *png, struct img **keep)
{
    struct img *in = emu_picture("test", "input", 5, "x", w, h);
    struct ig_error err = {0};
    assert_int_equal(img_encode(in, IMG_FMT_PNG, 0, NULL, png, &err), 0);
    *keep = in;
}

static void
expect_error(const char *fault, const char *code)
{
    h_faults(fault);
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a barn", .n = 1};
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
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a barn in snow",
                             .negative_prompt = "people", .n = 2, .width = 1600, .height = 900,
                             .seed = 1234, .has_seed = 1, .output_format = "jpeg"};
    struct be_call *c = h_run(&req);
    struct img *im = decoded(c);
    assert_string_equal(c->result.images[0].mime, "image/jpeg");
    /* 16:9 at about a megapixel */
    assert_true(im->width > im->height);
    assert_true(fabs((double)im->width / im->height - 16.0 / 9) < 0.05);
    json_t *p = c->result.provenance;
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 1234);
    assert_string_equal(json_string_value(json_object_get(p, "finish_reason")), "SUCCESS");
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")), "generate/core");
    assert_string_equal(json_string_value(json_object_get(p, "fingerprint")), "fp_1");
    /* without a seed the vendor picks one, and the adapter reports it */
    struct be_request noseed = {.cls = IG_CLASS_GENERATE, .prompt = "a barn", .n = 1};
    struct be_call *c2 = h_run(&noseed);
    assert_true(c2->result.ok);
    assert_true(json_integer_value(json_object_get(c2->result.provenance, "seed")) > 0);
    /* sd3 models go to generate/sd3, which refuses webp */
    struct ig_backend_cfg sd3 = H.backend;
    sd3.model = "sd3.5-large";
    struct be_request webp = {.cfg = &sd3, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                              .output_format = "webp"};
    struct be_call *c3 = h_run(&webp);
    assert_string_equal(c3->result.err.code, "invalid_request");
    assert_non_null(strstr(c3->result.err.message, "output_format"));
    img_free(im);
    be_call_free(c);
    be_call_free(c2);
    be_call_free(c3);
}

static void
test_inpaint_within_mask(void **state)
{
    (void)state;
    struct ig_buf png = {0}, mpng = {0};
    struct img *in;
    input_png(128, 128, &png, &in);
    struct img *mask = img_new(128, 128);
    for (int i = 0; i < 128 * 128; i++) {
        int y = i / 128;
        mask->rgba[4 * i] = mask->rgba[4 * i + 1] = mask->rgba[4 * i + 2] = y < 64 ? 255 : 0;
        mask->rgba[4 * i + 3] = 255;
    }
    struct ig_error err = {0};
    assert_int_equal(img_encode(mask, IMG_FMT_PNG, 0, NULL, &mpng, &err), 0);
    struct be_request req = {.cls = IG_CLASS_EDIT, .prompt = "a window", .n = 1,
                             .input = png.data, .input_len = png.len, .mask = mpng.data,
                             .mask_len = mpng.len, .output_format = "png"};
    struct be_call *c = h_run(&req);
    struct img *out = decoded(c);
    long top = 0, bottom = 0;
    for (int y = 0; y < 128; y++)
        for (int x = 0; x < 128; x++) {
            size_t i = 4 * ((size_t)y * 128 + (size_t)x);
            if (in->rgba[i] != out->rgba[i] || in->rgba[i + 2] != out->rgba[i + 2])
                *(y < 64 ? &top : &bottom) += 1;
        }
    assert_true(top > 64 * 128 / 2);
    assert_int_equal(bottom, 0);
    img_free(out);
    img_free(in);
    img_free(mask);
    ig_buf_free(&png);
    ig_buf_free(&mpng);
    be_call_free(c);
}

static void
test_remove_background_and_fast_upscale(void **state)
{
    (void)state;
    struct ig_buf png = {0};
    struct img *in;
    input_png(96, 80, &png, &in);
    struct be_request cut = {.cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1, .input = png.data,
                             .input_len = png.len};
    struct be_call *c = h_run(&cut);
    struct img *out = decoded(c);
    assert_true(out->info.has_alpha);
    assert_int_equal(out->rgba[3], 0);                                  /* a corner: gone */
    assert_int_equal(out->rgba[4 * (40 * 96 + 48) + 3], 255);          /* the middle: kept */
    img_free(out);
    be_call_free(c);
    struct be_request up = {.cls = IG_CLASS_UPSCALE, .n = 1, .scale = 2, .input = png.data,
                            .input_len = png.len};
    c = h_run(&up);
    out = decoded(c);
    assert_int_equal(out->width, 384);
    assert_int_equal(out->height, 320);
    assert_string_equal(json_string_value(json_object_get(c->result.provenance, "endpoint")),
                        "upscale/fast");
    /* a resample of the input: close to it once brought back down */
    struct ig_error err = {0};
    struct img *down = img_resize(out, 96, 80, "box", &err);
    assert_true(h_diff(down, in) < 8);
    img_free(down);
    img_free(out);
    be_call_free(c);
    /* upscale/fast refuses inputs over 1536 px a side */
    struct ig_buf big = {0};
    struct img *bi;
    input_png(1600, 40, &big, &bi);
    struct be_request toobig = {.cls = IG_CLASS_UPSCALE, .n = 1, .input = big.data,
                                .input_len = big.len};
    c = h_run(&toobig);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    img_free(bi);
    ig_buf_free(&big);
    img_free(in);
    ig_buf_free(&png);
}

static void
test_creative_upscale_is_async(void **state)
{
    (void)state;
    json_decref(h_admin("reset", ""));
    struct ig_buf png = {0};
    struct img *in;
    input_png(128, 96, &png, &in);
    struct ig_backend_cfg creative = H.backend;
    creative.model = "creative";
    struct be_request req = {.cfg = &creative, .cls = IG_CLASS_UPSCALE, .prompt = "sharper",
                             .n = 1, .input = png.data, .input_len = png.len,
                             .output_format = "png"};
    struct be_call *c = h_run(&req);
    struct img *out = decoded(c);
    assert_int_equal(out->width, 512);
    assert_int_equal(out->height, 384);
    const char *id = json_string_value(json_object_get(c->result.provenance, "request_id"));
    assert_int_equal(strlen(id), 64);
    /* two 202 answers, then the image */
    json_t *stats = h_admin("stats", NULL);
    char path[128];
    snprintf(path, sizeof path, "/v2beta/results/%s", id);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "by_path"), path)),
                     3);
    json_decref(stats);
    /* resuming the saved id polls it again, with no new job */
    char saved[sizeof h_last.saved];
    memcpy(saved, h_last.saved, sizeof saved);
    assert_non_null(strstr(saved, id));
    struct be_request again = {.cfg = &creative, .cls = IG_CLASS_UPSCALE, .n = 1,
                               .resume = saved};
    struct be_call *r = h_run(&again);
    assert_true(r->result.ok);
    assert_memory_equal(r->result.images[0].data, c->result.images[0].data,
                        c->result.images[0].len);
    be_call_free(r);
    /* another key does not see the job: 404, the result is gone for it */
    setenv("IG_TEST_STAB_KEY", "sk-other", 1);
    r = h_run(&again);
    assert_string_equal(r->result.err.code, "upstream_error");
    setenv("IG_TEST_STAB_KEY", "sk-stab", 1);
    be_call_free(r);
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
    expect_error("{\"kind\":\"content_filtered\"}", "moderated");
    expect_error("{\"kind\":\"rate_limit\",\"retry_after\":3}", "rate_limited");
    expect_error("{\"kind\":\"quota\"}", "quota");
    expect_error("{\"kind\":\"server_error\"}", "upstream_error");
    expect_error("{\"kind\":\"unavailable\"}", "upstream_error");
    expect_error("{\"kind\":\"no_image\"}", "malformed_response");
    expect_error("{\"kind\":\"malformed_json\"}", "malformed_response");
    expect_error("{\"kind\":\"wrong_type\"}", "malformed_response");
    expect_error("{\"kind\":\"deep_json\",\"depth\":5000}", "malformed_response");
    /* Retry-After is read */
    h_faults("{\"kind\":\"rate_limit\",\"retry_after\":3}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_int_equal(c->result.retry_after_ms, 3000);
    be_call_free(c);
    /* auth */
    struct ig_backend_cfg nokey = H.backend;
    nokey.credential = NULL;
    struct be_request r2 = {.cfg = &nokey, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&r2);
    assert_string_equal(c->result.err.code, "auth");
    be_call_free(c);
    /* a missing image never leaves the gateway */
    struct be_request noimg = {.cfg = &H.backend, .cls = IG_CLASS_REMOVE_BACKGROUND, .n = 1};
    struct ig_error err = {0};
    assert_int_equal(be_call_start(H.loop, &noimg, NULL, h_on_done, NULL, &err), -1);
    /* a seed out of the vendor's range is dropped, with a note */
    struct be_request bigseed = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                                 .seed = 5000000000LL, .has_seed = 1};
    c = h_run(&bigseed);
    assert_true(c->result.ok);
    char *notes = json_dumps(json_object_get(c->result.provenance, "notes"), 0);
    assert_non_null(strstr(notes, "0..4294967294"));
    free(notes);
    be_call_free(c);
    /* A raw image cut short (Content-Length agreeing) is, like a corrupt one,
     * passed on untouched: the gateway's decode refuses it. */
    h_faults("{\"kind\":\"truncated\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
    /* hang, body cap, corrupt image */
    struct ig_backend_cfg quick = H.backend;
    quick.contract.limits.total_timeout_ms = 300;
    h_faults("{\"kind\":\"hang\"}");
    struct be_request hang = {.cfg = &quick, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&hang);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    struct be_request small = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                               .max_body_bytes = 2000};
    c = h_run(&small);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
    h_faults("{\"kind\":\"corrupt_image\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_inpaint_within_mask),
        cmocka_unit_test(test_remove_background_and_fast_upscale),
        cmocka_unit_test(test_creative_upscale_is_async),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
