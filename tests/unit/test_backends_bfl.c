/* SPDX-License-Identifier: MIT */
/* test_backends_bfl.c -- the BFL FLUX adapter against the BFL emulator,
 * in-process: submit, polling through Pending to every final state, the
 * download of result.sample before it expires, edits (Kontext and Fill),
 * every error class, every fault, resuming a saved task, and the limits
 * (body cap, deep JSON, wrong content type, a task that never finishes, a
 * redirect to a private address). */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static int
setup(void **state)
{
    (void)state;
    setenv("IG_TEST_BFL_KEY", "bfl-test-key", 1);
    if (h_setup("bfl", "bfl", "", "env:IG_TEST_BFL_KEY") != 0)
        return -1;
    H.backend.model = "flux-pro-1.1";
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
    assert_true(c->result.ok);
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
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a fox", .n = 1,
                             .width = 512, .height = 512};
    struct be_call *c = h_run(&req);
    if (c->result.ok || strcmp(c->result.err.code, code) != 0)
        fail_msg("fault %s: got ok=%d %s (%s), wanted %s", fault, c->result.ok,
                 c->result.err.code, c->result.err.message, code);
    be_call_free(c);
}

/* ---- Happy path and provenance -------------------------------------------- */

static void
test_generate_polls_then_downloads(void **state)
{
    (void)state;
    json_decref(h_admin("reset", ""));
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a lighthouse at dusk",
                             .negative_prompt = "fog", .n = 2, .width = 1024, .height = 768,
                             .seed = 42, .has_seed = 1, .output_format = "png"};
    struct be_call *c = h_run(&req);
    struct img *im = decoded(c);
    assert_int_equal(im->width, 1024);
    assert_int_equal(im->height, 768);
    assert_string_equal(c->result.images[0].mime, "image/png");
    json_t *p = c->result.provenance;
    assert_string_equal(json_string_value(json_object_get(p, "model")), "flux-pro-1.1");
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 42);
    assert_string_equal(json_string_value(json_object_get(p, "finish_reason")), "Ready");
    assert_string_equal(json_string_value(json_object_get(p, "fingerprint")), "fp_1");
    assert_non_null(json_string_value(json_object_get(p, "request_id")));
    assert_true(json_real_value(json_object_get(p, "credits")) == 4.0);
    assert_true(c->result.cost_usd > 0.039 && c->result.cost_usd < 0.041);
    assert_true(c->result.charged);
    assert_true(h_has_note(c, "dropped", "negative prompt"));
    assert_true(h_has_note(c, "dropped", "one image per task"));
    /* The saved resume state names the task and where to poll it. */
    json_t *saved = json_loads(h_last.saved, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(saved, "id")),
                        json_string_value(json_object_get(p, "request_id")));
    assert_non_null(strstr(json_string_value(json_object_get(saved, "polling_url")),
                           "/v1/get_result?id="));
    json_decref(saved);
    /* Two Pending answers (the emulator's default), then Ready: three polls. */
    json_t *stats = h_admin("stats", NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "by_path"),
                                                        "/v1/get_result")),
                     3);
    json_decref(stats);
    img_free(im);
    be_call_free(c);
}

static void
test_pictures_are_deterministic_and_drift(void **state)
{
    (void)state;
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a red kite", .n = 1,
                             .width = 256, .height = 256, .seed = 7, .has_seed = 1,
                             .output_format = "png"};
    struct be_call *a = h_run(&req);
    struct be_call *b = h_run(&req);
    assert_int_equal(a->result.images[0].len, b->result.images[0].len);
    assert_memory_equal(a->result.images[0].data, b->result.images[0].data,
                        a->result.images[0].len);
    req.seed = 8;
    struct be_call *other = h_run(&req);
    json_decref(h_admin("rotate", ""));
    req.seed = 7;
    struct be_call *rotated = h_run(&req);
    json_decref(h_admin("reset", ""));
    struct img *ia = decoded(a), *io = decoded(other), *ir = decoded(rotated);
    double d_seed = h_diff(ia, io), d_rot = h_diff(ia, ir);
    /* another seed: another picture; a rotation: the same picture, drifted */
    assert_true(d_seed > 20);
    assert_true(d_rot > 0.5 && d_rot < 10);
    assert_string_equal(json_string_value(json_object_get(rotated->result.provenance,
                                                          "fingerprint")),
                        "fp_2");
    /* another vendor's emulator paints another picture for the same request */
    struct img *oa = emu_picture("openai", "a red kite", 7, "fp_1", 256, 256);
    struct img *ba = emu_picture("bfl", "a red kite", 7, "fp_1", 256, 256);
    assert_true(h_diff(oa, ba) > 20);
    assert_true(h_diff(ba, ia) < 1.0);   /* and the bfl one is what was served */
    img_free(oa);
    img_free(ba);
    img_free(ia);
    img_free(io);
    img_free(ir);
    be_call_free(a);
    be_call_free(b);
    be_call_free(other);
    be_call_free(rotated);
}

static void
test_aspect_translation_and_format_knob(void **state)
{
    (void)state;
    /* Kontext takes an aspect ratio, not a size; its default output_format
     * is unsure (png or jpeg): a knob. */
    struct ig_backend_cfg kontext = H.backend;
    kontext.model = "flux-kontext-pro";
    struct be_request req = {.cfg = &kontext, .cls = IG_CLASS_GENERATE, .prompt = "dunes",
                             .n = 1, .width = 1024, .height = 576};
    struct be_call *c = h_run(&req);
    struct img *im = decoded(c);
    assert_string_equal(c->result.images[0].mime, "image/png");
    assert_true(h_has_note(c, "translated", "aspect_ratio 16:9"));
    /* about a megapixel at 16:9 */
    assert_true(im->width >= 1312 && im->width <= 1376);
    assert_true(abs(im->width * 9 / 16 - im->height) < 40);
    img_free(im);
    be_call_free(c);
    h_knobs("{\"kontext_default_format\":0}");
    c = h_run(&req);
    assert_true(c->result.ok);
    assert_string_equal(c->result.images[0].mime, "image/jpeg");
    be_call_free(c);
    h_knobs("{\"kontext_default_format\":1}");
    /* flux-pro-1.1 defaults to jpeg */
    struct be_request pro = {.cls = IG_CLASS_GENERATE, .prompt = "dunes", .n = 1, .width = 256,
                             .height = 256};
    c = h_run(&pro);
    assert_true(c->result.ok);
    assert_string_equal(c->result.images[0].mime, "image/jpeg");
    be_call_free(c);
}

/* ---- Edits ---------------------------------------------------------------------- */

static struct img *
base_picture(struct ig_buf *png)
{
    struct img *in = emu_picture("test", "input", 1, "x", 128, 96);
    struct ig_error err = {0};
    assert_int_equal(img_encode(in, IMG_FMT_PNG, 0, NULL, png, &err), 0);
    return in;
}

static void
test_kontext_edit(void **state)
{
    (void)state;
    struct ig_buf png = {0};
    struct img *in = base_picture(&png);
    struct be_request req = {.cls = IG_CLASS_EDIT, .prompt = "make it night", .n = 1,
                             .input = png.data, .input_len = png.len, .output_format = "png"};
    struct be_call *c = h_run(&req);
    struct img *out = decoded(c);
    assert_string_equal(json_string_value(json_object_get(c->result.provenance, "model")),
                        "flux-kontext-pro");
    assert_int_equal(out->width, 128);
    assert_int_equal(out->height, 96);
    assert_true(h_diff(in, out) > 10);
    img_free(out);
    img_free(in);
    ig_buf_free(&png);
    be_call_free(c);
}

static void
test_fill_changes_masked_region_only(void **state)
{
    (void)state;
    struct ig_buf png = {0}, mpng = {0};
    struct img *in = base_picture(&png);
    /* BFL masks: white where to paint. The left half here. */
    struct img *mask = img_new(128, 96);
    for (int y = 0; y < 96; y++)
        for (int x = 0; x < 128; x++) {
            uint8_t *p = mask->rgba + 4 * (y * 128 + x);
            p[0] = p[1] = p[2] = x < 64 ? 255 : 0;
            p[3] = 255;
        }
    struct ig_error err = {0};
    assert_int_equal(img_encode(mask, IMG_FMT_PNG, 0, NULL, &mpng, &err), 0);
    struct be_request req = {.cls = IG_CLASS_EDIT, .prompt = "a door", .n = 1,
                             .input = png.data, .input_len = png.len, .mask = mpng.data,
                             .mask_len = mpng.len, .output_format = "png", .width = 512,
                             .height = 512};
    struct be_call *c = h_run(&req);
    struct img *out = decoded(c);
    assert_string_equal(json_string_value(json_object_get(c->result.provenance, "model")),
                        "flux-pro-1.0-fill");
    assert_true(h_has_note(c, "dropped", "follows the input image"));
    long changed_left = 0, changed_right = 0;
    for (int y = 0; y < 96; y++)
        for (int x = 0; x < 128; x++) {
            size_t i = 4 * ((size_t)y * 128 + (size_t)x);
            int diff = abs(in->rgba[i] - out->rgba[i]) + abs(in->rgba[i + 1] - out->rgba[i + 1]);
            if (diff > 0)
                *(x < 64 ? &changed_left : &changed_right) += 1;
        }
    assert_true(changed_left > 64 * 96 / 2);
    assert_int_equal(changed_right, 0);
    img_free(out);
    img_free(in);
    img_free(mask);
    ig_buf_free(&png);
    ig_buf_free(&mpng);
    be_call_free(c);
}

/* ---- Errors --------------------------------------------------------------------- */

static void
test_vendor_validation(void **state)
{
    (void)state;
    /* flux-pro-1.1 takes multiples of 32 between 256 and 1440: a 422. */
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 1000,
                             .height = 768};
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "width"));
    be_call_free(c);
    req.width = 2048;
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    /* An unknown model is a 404 there. */
    struct ig_backend_cfg bad = H.backend;
    bad.model = "flux-9000";
    struct be_request r2 = {.cfg = &bad, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&r2);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    /* A class BFL does not serve never leaves the gateway. */
    struct be_request up = {.cfg = &H.backend, .cls = IG_CLASS_UPSCALE, .n = 1};
    struct ig_error err = {0};
    assert_int_equal(be_call_start(H.loop, &up, NULL, h_on_done, NULL, &err), -1);
    assert_string_equal(err.code, "invalid_request");
}

static void
test_auth(void **state)
{
    (void)state;
    /* No key sent: BFL refuses. */
    struct ig_backend_cfg nokey = H.backend;
    nokey.credential = NULL;
    struct be_request req = {.cfg = &nokey, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "auth");
    assert_int_equal(c->result.err.http_status, 403);
    be_call_free(c);
    /* The reference is unsure whether it is 401 or 403: a knob. */
    h_knobs("{\"auth_status\":401}");
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "auth");
    assert_int_equal(c->result.err.http_status, 401);
    be_call_free(c);
    h_knobs("{\"auth_status\":403}");
    /* A credential reference that resolves to nothing never leaves the gateway. */
    unsetenv("IG_TEST_BFL_KEY");
    struct be_request r2 = {.cfg = &H.backend, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct ig_error err = {0};
    assert_int_equal(be_call_start(H.loop, &r2, NULL, h_on_done, NULL, &err), -1);
    assert_string_equal(err.code, "auth");
    assert_null(strstr(err.message, "bfl-test-key"));
    setenv("IG_TEST_BFL_KEY", "bfl-test-key", 1);
}

static void
test_error_classes(void **state)
{
    (void)state;
    expect_error("{\"kind\":\"rate_limit\",\"retry_after\":2}", "rate_limited");
    expect_error("{\"kind\":\"quota\"}", "quota");
    expect_error("{\"kind\":\"moderation\"}", "moderated");
    expect_error("{\"kind\":\"moderation\",\"stage\":\"request\"}", "moderated");
    expect_error("{\"kind\":\"task_error\"}", "upstream_error");
    expect_error("{\"kind\":\"server_error\"}", "upstream_error");
    expect_error("{\"kind\":\"unavailable\"}", "upstream_error");
    expect_error("{\"kind\":\"malformed_json\"}", "malformed_response");
    /* malformed JSON in a poll answer, not the submit's */
    expect_error("{\"kind\":\"none\"},{\"kind\":\"malformed_json\"}", "malformed_response");
    expect_error("{\"kind\":\"no_image\"}", "malformed_response");
    /* too many active tasks */
    h_knobs("{\"max_active\":0}");
    expect_error("{\"kind\":\"none\"}", "rate_limited");
    h_knobs("{\"max_active\":24}");
}

static void
test_retry_after_and_moderation_details(void **state)
{
    (void)state;
    h_faults("{\"kind\":\"rate_limit\",\"retry_after\":5}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_int_equal(c->result.retry_after_ms, 5000);
    be_call_free(c);
    h_faults("{\"kind\":\"moderation\"}");
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "moderated");
    assert_non_null(strstr(c->result.err.message, "Content Moderated"));
    assert_non_null(strstr(c->result.err.message, "NSFW"));
    assert_false(c->result.charged);   /* moderated tasks are not billed */
    be_call_free(c);
}

/* ---- Async states and faults ------------------------------------------------------ */

static void
test_expired_sample(void **state)
{
    (void)state;
    h_knobs("{\"sample_ttl_ms\":-1000}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "upstream_error");
    assert_non_null(strstr(c->result.err.message, "expired"));
    be_call_free(c);
    h_knobs("{\"sample_ttl_ms\":600000}");
}

static void
test_resume_and_task_not_found(void **state)
{
    (void)state;
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "resume me", .n = 1,
                             .seed = 3, .has_seed = 1};
    struct be_call *first = h_run(&req);
    assert_true(first->result.ok);
    char saved[512];
    snprintf(saved, sizeof saved, "%s", h_last.saved);
    /* The gateway crashed after the submit: the saved task is polled, not resubmitted. */
    json_t *before = h_admin("stats", NULL);
    struct be_request again = {.cls = IG_CLASS_GENERATE, .prompt = "resume me", .n = 1,
                               .resume = saved};
    struct be_call *c = h_run(&again);
    assert_true(c->result.ok);
    assert_int_equal(c->result.images[0].len, first->result.images[0].len);
    assert_memory_equal(c->result.images[0].data, first->result.images[0].data,
                        first->result.images[0].len);
    json_t *after = h_admin("stats", NULL);
    assert_true(json_equal(json_object_get(before, "submits"), json_object_get(after, "submits")));
    json_decref(before);
    json_decref(after);
    be_call_free(c);
    be_call_free(first);
    /* A task the vendor forgot. */
    char gone[512];
    snprintf(gone, sizeof gone,
             "{\"id\":\"no-such-task\",\"polling_url\":\"%s/v1/get_result?id=no-such-task\"}",
             H.endpoint);
    struct be_request lost = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .resume = gone};
    c = h_run(&lost);
    assert_string_equal(c->result.err.code, "upstream_error");
    assert_non_null(strstr(c->result.err.message, "Task not found"));
    be_call_free(c);
    /* A saved state that is not one. */
    struct be_request junk = {.cfg = &H.backend, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                              .resume = "{\"id\":1}"};
    struct ig_error err = {0};
    assert_int_equal(be_call_start(H.loop, &junk, NULL, h_on_done, NULL, &err), -1);
    assert_string_equal(err.code, "malformed_response");
}

static void
test_transport_faults(void **state)
{
    (void)state;
    /* latency on the submit and on a poll: still a success */
    h_faults("{\"kind\":\"latency\",\"delay_ms\":150},{\"kind\":\"latency\",\"delay_ms\":150}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = h_run(&req);
    assert_true(c->result.ok);
    be_call_free(c);
    /* a truncated submit answer */
    expect_error("{\"kind\":\"truncated\"}", "malformed_response");
    /* a hang at a poll ends at the contract's timeout */
    struct ig_backend_cfg quick = H.backend;
    quick.contract.limits.total_timeout_ms = 400;
    h_faults("{\"kind\":\"none\"},{\"kind\":\"hang\"}");
    struct be_request hang = {.cfg = &quick, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = h_run(&hang);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    /* a corrupt image is the adapter's success, untouched: the gateway's decode refuses it */
    h_faults("{\"kind\":\"corrupt_image\"}");
    c = h_run(&req);
    assert_true(c->result.ok);
    struct ig_error err = {0};
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
}

/* ---- Limits ----------------------------------------------------------------------- */

static void
test_limits(void **state)
{
    (void)state;
    /* The picture is larger than the body cap. */
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                             .output_format = "png", .max_body_bytes = 4000};
    struct be_call *c = h_run(&req);
    assert_string_equal(c->result.err.code, "malformed_response");
    assert_non_null(strstr(c->result.err.message, "larger than"));
    be_call_free(c);
    /* JSON deeper than the limit, at a poll. */
    h_faults("{\"kind\":\"none\"},{\"kind\":\"deep_json\",\"depth\":5000}");
    struct be_request deep = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                              .max_json_depth = 16};
    c = h_run(&deep);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
    /* HTML where JSON belongs. */
    expect_error("{\"kind\":\"wrong_type\"}", "malformed_response");
    /* A task that never finishes ends at the job's deadline, not never. */
    h_faults("{\"kind\":\"pending_forever\"}");
    struct be_request forever = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                                 .deadline_ms = h_now_ms() + 900};
    c = h_run(&forever);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    /* A poll redirected to a private address is refused. */
    h_faults("{\"kind\":\"none\"},{\"kind\":\"redirect\",\"location\":"
             "\"http://10.1.2.3/v1/get_result?id=x\"}");
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "malformed_response");
    assert_non_null(strstr(c->result.err.message, "refused"));
    be_call_free(c);
}

/* Several tasks in flight on the one loop thread: each one's Pending
 * waits cost no thread, and a slow one does not hold up the others. */
static void
test_many_tasks_on_one_thread(void **state)
{
    (void)state;
    enum { N = 6 };
    struct h_waiter ws[N];
    h_faults("{\"kind\":\"latency\",\"delay_ms\":1200}");
    for (int i = 0; i < N; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        pthread_mutex_init(&ws[i].mu, NULL);
        pthread_cond_init(&ws[i].cv, NULL);
        char prompt[32];
        snprintf(prompt, sizeof prompt, "task %d", i);
        struct be_request req = {.cfg = &H.backend, .cls = IG_CLASS_GENERATE, .prompt = prompt,
                                 .n = 1, .width = 256, .height = 256,
                                 .max_body_bytes = 64L << 20};
        struct ig_error err = {0};
        assert_int_equal(be_call_start(H.loop, &req, NULL, h_on_done, &ws[i], &err), 0);
        if (i == 0) {
            /* the slow one is on the wire before the others start */
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    int finished_before_slow = 0;
    for (int i = N - 1; i >= 0; i--) {
        pthread_mutex_lock(&ws[i].mu);
        while (!ws[i].done)
            pthread_cond_wait(&ws[i].cv, &ws[i].mu);
        pthread_mutex_unlock(&ws[i].mu);
        if (i > 0 && !ws[0].done)
            finished_before_slow++;
        assert_true(ws[i].call->result.ok);
        be_call_free(ws[i].call);
    }
    /* the fast tasks did not queue behind the slow submit */
    assert_int_equal(finished_before_slow, N - 1);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_polls_then_downloads),
        cmocka_unit_test(test_pictures_are_deterministic_and_drift),
        cmocka_unit_test(test_aspect_translation_and_format_knob),
        cmocka_unit_test(test_kontext_edit),
        cmocka_unit_test(test_fill_changes_masked_region_only),
        cmocka_unit_test(test_vendor_validation),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_retry_after_and_moderation_details),
        cmocka_unit_test(test_expired_sample),
        cmocka_unit_test(test_resume_and_task_not_found),
        cmocka_unit_test(test_transport_faults),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_tasks_on_one_thread),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
