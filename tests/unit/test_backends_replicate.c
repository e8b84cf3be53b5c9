/* SPDX-License-Identifier: MIT */
/* test_backends_replicate.c -- the Replicate adapter against the Replicate
 * emulator, in-process: Prefer: wait answered at once, the wait window
 * ending first (then polling urls.get through starting and processing),
 * outputs as URLs and as data: URIs, several outputs, versions, failures
 * (moderated or not), every error class and fault, resume, and the limits. */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static int
setup(void **state)
{
    (void)state;
    setenv("IG_TEST_REP_KEY", "r8_test", 1);
    if (h_setup("replicate", "replicate", "", "env:IG_TEST_REP_KEY") != 0)
        return -1;
    H.backend.model = "black-forest-labs/flux-1.1-pro";
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    h_teardown();
    return 0;
}

static void
expect_error(const char *fault, const char *code)
{
    h_faults(fault);
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a boat", .n = 1,
                             .width = 512, .height = 512};
    struct be_call *c = h_run(&req);
    if (c->result.ok || strcmp(c->result.err.code, code) != 0)
        fail_msg("fault %s: got ok=%d %s (%s), wanted %s", fault, c->result.ok,
                 c->result.err.code, c->result.err.message, code);
    be_call_free(c);
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
test_wait_then_download(void **state)
{
    (void)state;
    json_decref(h_admin("reset", ""));
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a boat at sea", .n = 2,
                             .width = 512, .height = 384, .seed = 9, .has_seed = 1,
                             .output_format = "png"};
    struct be_call *c = h_run(&req);
    assert_int_equal(c->result.n_images, 2);
    struct img *a = decoded(c, 0), *b = decoded(c, 1);
    assert_int_equal(a->width, 512);
    assert_int_equal(a->height, 384);
    assert_true(h_diff(a, b) > 5);   /* two outputs, two pictures */
    json_t *p = c->result.provenance;
    assert_string_equal(json_string_value(json_object_get(p, "finish_reason")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 9);
    assert_non_null(json_object_get(json_object_get(p, "usage"), "predict_time"));
    /* Prefer: wait made it one create and no poll */
    json_t *stats = h_admin("stats", NULL);
    assert_int_equal(json_integer_value(json_object_get(stats, "requests")), 3);
    json_decref(stats);
    img_free(a);
    img_free(b);
    be_call_free(c);
}

static void
test_wait_window_ends_first(void **state)
{
    (void)state;
    h_knobs("{\"wait_completes\":0}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "slow", .n = 1, .width = 256,
                             .height = 256};
    struct be_call *c = h_run(&req);
    struct img *im = decoded(c, 0);
    img_free(im);
    /* the saved state names the prediction's get URL: resuming polls it */
    char saved[sizeof h_last.saved];
    memcpy(saved, h_last.saved, sizeof saved);
    assert_non_null(strstr(saved, "/v1/predictions/"));
    struct be_request again = {.cls = IG_CLASS_GENERATE, .prompt = "slow", .n = 1,
                               .resume = saved};
    struct be_call *r = h_run(&again);
    assert_true(r->result.ok);
    assert_memory_equal(r->result.images[0].data, c->result.images[0].data,
                        c->result.images[0].len);
    be_call_free(r);
    be_call_free(c);
    /* outputs as data: URIs */
    h_knobs("{\"wait_completes\":1,\"data_uri_outputs\":1}");
    req.output_format = "webp";
    c = h_run(&req);
    im = decoded(c, 0);
    assert_string_equal(c->result.images[0].mime, "image/webp");
    img_free(im);
    be_call_free(c);
    h_knobs("{\"data_uri_outputs\":0}");
    /* a version instead of a model */
    struct ig_backend_cfg v = H.backend;
    v.model = "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc";
    struct be_request vr = {.cfg = &v, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&vr);
    assert_true(c->result.ok);
    be_call_free(c);
}

static void
test_errors(void **state)
{
    (void)state;
    expect_error("{\"kind\":\"moderation\"}", "moderated");
    expect_error("{\"kind\":\"task_error\"}", "upstream_error");
    expect_error("{\"kind\":\"quota\"}", "quota");
    expect_error("{\"kind\":\"rate_limit\",\"retry_after\":2}", "rate_limited");
    expect_error("{\"kind\":\"server_error\"}", "upstream_error");
    expect_error("{\"kind\":\"unavailable\"}", "upstream_error");
    expect_error("{\"kind\":\"malformed_json\"}", "malformed_response");
    expect_error("{\"kind\":\"no_image\"}", "malformed_response");
    expect_error("{\"kind\":\"wrong_type\"}", "malformed_response");
    expect_error("{\"kind\":\"deep_json\",\"depth\":5000}", "malformed_response");
    h_faults("{\"kind\":\"rate_limit\",\"retry_after\":2}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_int_equal(c->result.retry_after_ms, 2000);
    be_call_free(c);
    /* the vendor's validation: a 422 */
    struct be_request big = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 4000,
                             .height = 4000};
    c = h_run(&big);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    /* auth */
    struct ig_backend_cfg nokey = H.backend;
    nokey.credential = NULL;
    struct be_request r2 = {.cfg = &nokey, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&r2);
    assert_string_equal(c->result.err.code, "auth");
    be_call_free(c);
    /* an output that expired before the download */
    h_knobs("{\"output_ttl_ms\":-1000}");
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "upstream_error");
    assert_non_null(strstr(c->result.err.message, "expired"));
    be_call_free(c);
    h_knobs("{\"output_ttl_ms\":3600000}");
    /* a prediction that never ends stops at the job's deadline */
    h_knobs("{\"wait_completes\":0}");
    h_faults("{\"kind\":\"pending_forever\"}");
    struct be_request forever = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                                 .deadline_ms = h_now_ms() + 800};
    c = h_run(&forever);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    /* a poll redirected to a private address is refused */
    h_faults("{\"kind\":\"none\"},{\"kind\":\"redirect\",\"location\":\"http://192.168.1.1/\"}");
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "malformed_response");
    assert_non_null(strstr(c->result.err.message, "refused"));
    be_call_free(c);
    h_knobs("{\"wait_completes\":1}");
    /* a corrupt output is passed on untouched */
    h_faults("{\"kind\":\"corrupt_image\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    struct ig_error err = {0};
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
}

/* A cancelled prediction is cancelled at the vendor too, and the call ends
 * at once instead of at its deadline. */
static void
test_cancel(void **state)
{
    (void)state;
    json_decref(h_admin("reset", ""));
    h_knobs("{\"wait_completes\":0}");
    h_faults("{\"kind\":\"pending_forever\"}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .tag = 42,
                             .deadline_ms = h_now_ms() + 60000};
    long t0 = h_now_ms();
    h_start(&req);
    assert_true(h_wait_saved());
    be_loop_cancel(H.loop, 41);           /* not this call: nothing happens */
    be_loop_cancel(H.loop, 42);
    struct be_call *c = h_wait();
    assert_false(c->result.ok);
    assert_string_equal(c->result.err.code, "cancelled");
    assert_int_equal(json_integer_value(json_object_get(c->result.provenance, "vendor_cancel")),
                     200);
    assert_true(h_now_ms() - t0 < 30000);
    /* The emulator's record of the prediction says canceled. */
    json_t *saved = json_loads(h_last.saved, 0, NULL);
    const char *get = json_string_value(json_object_get(saved, "get"));
    assert_non_null(get);
    struct ig_buf out = {0};
    CURL *e = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Authorization: Bearer r8_test");
    curl_easy_setopt(e, CURLOPT_URL, get);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, h_collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(e);
    json_t *pred = json_loadb(out.data, out.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(pred, "status")), "canceled");
    json_decref(pred);
    json_decref(saved);
    ig_buf_free(&out);
    be_call_free(c);
    h_knobs("{\"wait_completes\":1}");
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_then_download),
        cmocka_unit_test(test_wait_window_ends_first),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cancel),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
