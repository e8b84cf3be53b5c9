/* SPDX-License-Identifier: MIT */
/* test_backends_fal.c -- the fal queue adapter against the fal emulator,
 * in-process: submit, status (202 IN_QUEUE, IN_PROGRESS, 200 COMPLETED),
 * the result and its image downloads, sync_mode data: URIs, NSFW flags,
 * every error class and fault, resume, and the limits. */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static int
setup(void **state)
{
    (void)state;
    setenv("IG_TEST_FAL_KEY", "id:secret", 1);
    if (h_setup("fal", "fal", "", "env:IG_TEST_FAL_KEY") != 0)
        return -1;
    H.backend.model = "fal-ai/flux/dev";
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
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a lamp", .n = 1,
                             .width = 256, .height = 256};
    struct be_call *c = h_run(&req);
    if (c->result.ok || strcmp(c->result.err.code, code) != 0)
        fail_msg("fault %s: got ok=%d %s (%s), wanted %s", fault, c->result.ok,
                 c->result.err.code, c->result.err.message, code);
    be_call_free(c);
}

static void
test_queue(void **state)
{
    (void)state;
    json_decref(h_admin("reset", ""));
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a lamp on a desk", .n = 2,
                             .width = 320, .height = 240, .seed = 4, .has_seed = 1,
                             .output_format = "png"};
    struct be_call *c = h_run(&req);
    if (!c->result.ok)
        fail_msg("%s %s", c->result.err.code, c->result.err.message);
    assert_int_equal(c->result.n_images, 2);
    struct ig_error err = {0};
    struct img *a = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    assert_non_null(a);
    assert_int_equal(a->width, 320);
    assert_int_equal(a->height, 240);
    assert_string_equal(c->result.images[0].mime, "image/png");
    json_t *p = c->result.provenance;
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 4);
    assert_string_equal(json_string_value(json_object_get(p, "finish_reason")), "COMPLETED");
    /* the status and result URLs use owner/app only */
    char saved[sizeof h_last.saved];
    memcpy(saved, h_last.saved, sizeof saved);
    assert_non_null(strstr(saved, "/fal-ai/flux/requests/"));
    json_t *stats = h_admin("stats", NULL);
    json_t *by = json_object_get(stats, "by_path");
    const char *path;
    json_t *n;
    int statuses = 0;
    json_object_foreach(by, path, n)
        if (strstr(path, "/status"))
            statuses += (int)json_integer_value(n);
    assert_int_equal(statuses, 3);   /* IN_QUEUE, IN_PROGRESS, COMPLETED */
    json_decref(stats);
    /* resuming the saved request polls it, no new submit */
    struct be_request again = {.cls = IG_CLASS_GENERATE, .prompt = "a lamp on a desk", .n = 2,
                               .resume = saved};
    struct be_call *r = h_run(&again);
    assert_true(r->result.ok);
    assert_memory_equal(r->result.images[0].data, c->result.images[0].data,
                        c->result.images[0].len);
    be_call_free(r);
    img_free(a);
    be_call_free(c);
    /* sync_mode: data: URIs in the output */
    json_t *vp = json_pack("{s:b}", "sync_mode", 1);
    struct be_request sync = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 128,
                              .height = 128, .vendor_params = vp};
    c = h_run(&sync);
    assert_true(c->result.ok);
    assert_string_equal(c->result.images[0].mime, "image/jpeg");
    be_call_free(c);
    json_decref(vp);
    /* What fal's flux takes no form of is noted, and the notes stay beside
     * the model (submit once replaced the notes with the model). */
    struct be_request noted = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 128,
                               .height = 128, .negative_prompt = "blurry",
                               .output_format = "webp"};
    c = h_run(&noted);
    assert_true(c->result.ok);
    assert_true(h_has_note(c, "dropped", "negative prompt"));
    assert_true(h_has_note(c, "translated", "output_format webp sent as png"));
    assert_string_equal(json_string_value(json_object_get(c->result.provenance, "model")),
                        "fal-ai/flux/dev");
    be_call_free(c);
}

static void
test_errors(void **state)
{
    (void)state;
    expect_error("{\"kind\":\"moderation\"}", "moderated");
    expect_error("{\"kind\":\"task_error\"}", "upstream_error");
    expect_error("{\"kind\":\"rate_limit\",\"retry_after\":3}", "rate_limited");
    expect_error("{\"kind\":\"server_error\"}", "upstream_error");
    expect_error("{\"kind\":\"unavailable\"}", "upstream_error");
    expect_error("{\"kind\":\"malformed_json\"}", "malformed_response");
    expect_error("{\"kind\":\"none\"},{\"kind\":\"malformed_json\"}", "malformed_response");
    expect_error("{\"kind\":\"no_image\"}", "malformed_response");
    expect_error("{\"kind\":\"wrong_type\"}", "malformed_response");
    expect_error("{\"kind\":\"deep_json\",\"depth\":5000}", "malformed_response");
    h_faults("{\"kind\":\"rate_limit\",\"retry_after\":3}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_int_equal(c->result.retry_after_ms, 3000);
    be_call_free(c);
    /* the vendor's validation: a 422 */
    struct be_request five = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 5};
    c = h_run(&five);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "num_images"));
    be_call_free(c);
    struct ig_backend_cfg nokey = H.backend;
    nokey.credential = NULL;
    struct be_request r2 = {.cfg = &nokey, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&r2);
    assert_string_equal(c->result.err.code, "auth");
    be_call_free(c);
    /* a request that never completes stops at the deadline */
    h_faults("{\"kind\":\"pending_forever\"}");
    struct be_request forever = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                                 .deadline_ms = h_now_ms() + 800};
    c = h_run(&forever);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    /* a status URL redirected to a private address */
    h_faults("{\"kind\":\"none\"},{\"kind\":\"redirect\",\"location\":\"http://172.16.0.1/\"}");
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
    /* a corrupt image is passed on untouched */
    h_faults("{\"kind\":\"corrupt_image\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    struct ig_error err = {0};
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
}

/* A cancelled request is cancelled in fal's queue (202
 * CANCELLATION_REQUESTED), and the call ends at once. A vendor that has not
 * begun to answer within the response timeout is given up on without
 * waiting for the total timeout. */
static void
test_cancel_and_response_timeout(void **state)
{
    (void)state;
    h_faults("{\"kind\":\"pending_forever\"}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .tag = 7,
                             .deadline_ms = h_now_ms() + 60000};
    h_start(&req);
    assert_true(h_wait_saved());
    be_loop_cancel(H.loop, 7);
    struct be_call *c = h_wait();
    assert_string_equal(c->result.err.code, "cancelled");
    assert_int_equal(json_integer_value(json_object_get(c->result.provenance, "vendor_cancel")),
                     202);
    be_call_free(c);

    struct ig_backend_cfg slow = H.backend;
    slow.contract.limits.response_timeout_ms = 300;
    h_faults("{\"kind\":\"hang\"}");
    struct be_request hang = {.cfg = &slow, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    long t0 = h_now_ms();
    c = h_run(&hang);
    assert_string_equal(c->result.err.code, "timeout");
    assert_non_null(strstr(c->result.err.message, "no answer began within 300 ms"));
    /* The total timeout is 30 s and the hang lasts as long: the response
     * timeout is what ended it. */
    assert_true(h_now_ms() - t0 < 20000);
    be_call_free(c);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cancel_and_response_timeout),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
