/* SPDX-License-Identifier: MIT */
/* test_backends_comfyui.c -- the ComfyUI adapter against the ComfyUI
 * emulator, in-process: the built-in workflow filled in, a user's workflow
 * with placeholders, /history until the run, /view downloads, graph
 * validation errors, a failed run, resume, faults and limits. */
#include "emu_harness.h"
#include "core/alloc.h"
#include "image/image.h"

static int
setup(void **state)
{
    (void)state;
    return h_setup("comfyui", "comfyui", "", NULL);
}

static int
teardown(void **state)
{
    (void)state;
    h_teardown();
    return 0;
}

static void
test_default_workflow(void **state)
{
    (void)state;
    json_decref(h_admin("reset", ""));
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a mill", .n = 2,
                             .width = 320, .height = 192, .seed = 12, .has_seed = 1};
    struct be_call *c = h_run(&req);
    if (!c->result.ok)
        fail_msg("%s %s", c->result.err.code, c->result.err.message);
    assert_int_equal(c->result.n_images, 2);
    struct ig_error err = {0};
    struct img *a = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    assert_int_equal(a->width, 320);
    assert_int_equal(a->height, 192);
    /* the graph's seed and text reached the sampler: the emulator painted (prompt, seed) */
    struct img *want = emu_picture("comfyui", "a mill", 12, "fp_1", 320, 192);
    assert_true(h_diff(a, want) < 1.0);
    json_t *p = c->result.provenance;
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 12);
    assert_string_equal(json_string_value(json_object_get(p, "finish_reason")), "success");
    json_t *stats = h_admin("stats", NULL);
    json_t *subs = json_object_get(stats, "submits");
    assert_int_equal(json_integer_value(json_object_get(subs, "a mill|12")), 1);
    json_decref(stats);
    /* resume polls the saved prompt_id */
    char saved[sizeof h_last.saved];
    memcpy(saved, h_last.saved, sizeof saved);
    struct be_request again = {.cls = IG_CLASS_GENERATE, .prompt = "a mill", .n = 2,
                               .resume = saved};
    struct be_call *r = h_run(&again);
    assert_true(r->result.ok);
    assert_int_equal(r->result.n_images, 2);
    be_call_free(r);
    img_free(a);
    img_free(want);
    be_call_free(c);
}

static void
test_user_workflow_and_validation(void **state)
{
    (void)state;
    const char *wf =
        "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
        "\"sd_xl_base_1.0.safetensors\"}},"
        "\"2\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":\"{{width}}\","
        "\"height\":\"{{height}}\",\"batch_size\":1}},"
        "\"3\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"{{prompt}}\","
        "\"clip\":[\"1\",1]}},"
        "\"4\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"1\",1]}},"
        "\"5\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":\"{{seed}}\",\"steps\":4,"
        "\"cfg\":1,\"sampler_name\":\"euler\",\"scheduler\":\"normal\",\"denoise\":1,"
        "\"model\":[\"1\",0],\"positive\":[\"3\",0],\"negative\":[\"4\",0],"
        "\"latent_image\":[\"2\",0]}},"
        "\"6\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"5\",0],\"vae\":[\"1\",2]}},"
        "\"7\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"6\",0]}}}";
    json_t *vp = json_pack("{s:o}", "workflow", json_loads(wf, 0, NULL));
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "sdxl", .n = 1, .width = 256,
                             .height = 256, .vendor_params = vp};
    struct be_call *c = h_run(&req);
    assert_true(c->result.ok);
    char *notes = json_dumps(json_object_get(c->result.provenance, "notes"), 0);
    assert_non_null(strstr(notes, "no seed asked"));
    free(notes);
    be_call_free(c);
    /* an unknown checkpoint: value_not_in_list, with its node */
    json_object_set_new(json_object_get(json_object_get(json_object_get(vp, "workflow"), "1"),
                                        "inputs"),
                        "ckpt_name", json_string("nope.safetensors"));
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "ckpt_name"));
    be_call_free(c);
    /* a graph with no output */
    json_object_del(json_object_get(vp, "workflow"), "7");
    json_object_set_new(json_object_get(json_object_get(json_object_get(vp, "workflow"), "1"),
                                        "inputs"),
                        "ckpt_name", json_string("sd_xl_base_1.0.safetensors"));
    c = h_run(&req);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "prompt_no_outputs"));
    be_call_free(c);
    json_decref(vp);
    /* an unknown node class */
    vp = json_pack("{s:{s:{s:s,s:{}}}}", "workflow", "1", "class_type", "MagicNode", "inputs");
    req.vendor_params = vp;
    c = h_run(&req);
    assert_non_null(strstr(c->result.err.message, "invalid_prompt"));
    be_call_free(c);
    json_decref(vp);
}

static void
test_faults(void **state)
{
    (void)state;
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 64,
                             .height = 64, .seed = 1, .has_seed = 1};
    const char *faults[][2] = {
        {"{\"kind\":\"task_error\"}", "upstream_error"},
        {"{\"kind\":\"server_error\"}", "upstream_error"},
        {"{\"kind\":\"none\"},{\"kind\":\"malformed_json\"}", "malformed_response"},
        {"{\"kind\":\"none\"},{\"kind\":\"none\"},{\"kind\":\"none\"},{\"kind\":\"no_image\"}",
         "malformed_response"},
        {"{\"kind\":\"wrong_type\"}", "malformed_response"},
        {"{\"kind\":\"deep_json\",\"depth\":5000}", "malformed_response"},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        h_faults(faults[i][0]);
        struct be_call *c = h_run(&req);
        if (c->result.ok || strcmp(c->result.err.code, faults[i][1]) != 0)
            fail_msg("%s: got ok=%d %s %s", faults[i][0], c->result.ok, c->result.err.code,
                     c->result.err.message);
        be_call_free(c);
    }
    struct be_call *c;
    h_faults("{\"kind\":\"task_error\"}");
    c = h_run(&req);
    assert_non_null(strstr(c->result.err.message, "CUDA out of memory"));
    be_call_free(c);
    struct be_request forever = req;
    forever.deadline_ms = h_now_ms() + 600;
    h_knobs("{\"pending_polls\":1000}");
    c = h_run(&forever);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    h_knobs("{\"pending_polls\":2}");
    struct be_request small = req;
    small.max_body_bytes = 300;
    c = h_run(&small);
    assert_string_equal(c->result.err.code, "malformed_response");
    be_call_free(c);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_workflow),
        cmocka_unit_test(test_user_workflow_and_validation),
        cmocka_unit_test(test_faults),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
