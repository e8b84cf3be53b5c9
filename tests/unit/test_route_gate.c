/* SPDX-License-Identifier: MIT */
/* test_route_gate.c -- the validation gate inside the job engine, end to
 * end: the hook the gateway is assembled with (vd_gate_job) judges real
 * outputs. Rung 1's backend answers a diverged sampler's grey noise, rung
 * 2's a real photo; the job fails the gate on rung 1, succeeds on rung 2,
 * and its attempts name the check that failed. With gate.enabled false the
 * same noise is served from rung 1, as before the gate existed.
 *
 * The executor is a test double for the adapters: each backend answers
 * from its own thread with the encoded picture it was given. */
#include "gate_fixtures.h"
#include "core/metrics.h"
#include "route/gateway.h"
#include "store/store.h"
#include "validate/gate.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static const char config_fmt[] =
    "gate: {enabled: %s}\n"
    "limits: {max_attempts: 6, job_timeout_ms: 20000}\n"
    "backends:\n"
    "  - name: noisy\n"
    "    adapter: openai\n"
    "    endpoint: http://127.0.0.1:1/v1\n"
    "    contract: {classes: [generate], grammar: natural-language, tier: none,\n"
    "               license: {id: proprietary, flags: [commercial]}, price: {model: free}}\n"
    "  - name: sound\n"
    "    adapter: bfl\n"
    "    endpoint: http://127.0.0.1:1\n"
    "    contract: {classes: [generate], grammar: natural-language, tier: none,\n"
    "               license: {id: proprietary, flags: [commercial]}, price: {model: free}}\n"
    "tenants:\n"
    "  - name: acme\n"
    "ladders:\n"
    "  - name: gen\n"
    "    class: generate\n"
    "    rungs: [{backend: noisy}, {backend: sound}]\n";

static struct ig_buf noise_png, photo_png;

struct answer {
    route_done_fn done;
    void *cookie;
    const struct ig_buf *png;
};

static void *
answer(void *arg)
{
    struct answer *a = arg;
    struct route_outcome o;
    memset(&o, 0, sizeof o);
    o.retry_after_ms = -1;
    o.cost_usd = -1;
    o.vendor_charged = 1;
    /* Not the test's thread: a failure goes back as the attempt's, and the
     * test's own asserts see it; a cmocka assert here would not. */
    o.images[0].data = ig_malloc(a->png->len);
    if (o.images[0].data) {
        o.ok = 1;
        memcpy(o.images[0].data, a->png->data, a->png->len);
        o.images[0].len = a->png->len;
        strcpy(o.images[0].mime, "image/png");
        o.n_images = 1;
    } else {
        ig_error_set(&o.err, 500, "out_of_memory", "the fake vendor is out of memory");
    }
    a->done(a->cookie, &o);
    ig_free(a);
    return NULL;
}

static int
exec_start(void *ud, const struct route_attempt *at, route_done_fn done, void *cookie,
           struct ig_error *err)
{
    struct answer *a = ig_calloc(1, sizeof *a);
    if (!a)
        return ig_error_set(err, 500, "out_of_memory", "the fake vendor is out of memory");
    a->done = done;
    a->cookie = cookie;
    a->png = strcmp(at->backend->name, "noisy") == 0 ? &noise_png : &photo_png;
    pthread_t t;
    if (pthread_create(&t, NULL, answer, a) != 0) {
        ig_free(a);
        return ig_error_set(err, 500, "threads", "the fake vendor cannot start a thread");
    }
    pthread_detach(t);
    return 0;
}

static void
encode(struct img *im, struct ig_buf *out)
{
    struct ig_error err = {0};
    if (img_encode(im, IMG_FMT_PNG, 0, NULL, out, &err) != 0)
        fail_msg("encode: %s", err.message);
    img_free(im);
}

static int
setup(void **state)
{
    struct img *noise = gf_fill(512, 512, 128, 128, 128);
    gf_add_noise(noise, 40, 0, 17);
    encode(noise, &noise_png);
    encode(gf_photo_crop("astronaut.png", 0, 0, 512, 512), &photo_png);
    return 0;
}

static int
teardown(void **state)
{
    ig_buf_free(&noise_png);
    ig_buf_free(&photo_png);
    return 0;
}

/* Runs one generate job through a gateway built with the real gate hook;
 * returns the job's result (or error) JSON. */
static json_t *
run_job(const char *gate_enabled, struct store_job *job)
{
    char dir[] = "/tmp/iggate-XXXXXX", yaml[2048], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(yaml, sizeof yaml, config_fmt, gate_enabled);
    struct ig_error err = {0};
    struct ig_config *cfg = ig_config_load("gate.yaml", yaml, strlen(yaml), NULL, &err);
    if (!cfg)
        fail_msg("config: %s", err.message);
    struct store *st = store_open(dir, &err);
    assert_non_null(st);
    struct ig_metrics *m = ig_metrics_new();
    struct route_executor ex = {.start = exec_start};
    struct route_hooks hooks = {.validate = vd_gate_job};
    struct route_gateway *gw = route_gateway_new(cfg, st, m, &ex, &hooks, 2, &err);
    assert_non_null(gw);
    json_t *req = json_pack("{s:s,s:s,s:s}", "class", "generate", "prompt", "an astronaut",
                            "size", "1024x1024");
    char id[40];
    if (route_gateway_submit(gw, "acme", req, NULL, id, &err) < 0)
        fail_msg("submit: %s", err.message);
    json_decref(req);
    assert_true(route_gateway_wait(gw, id, 30000));
    assert_int_equal(store_job_get(st, id, "acme", job, &err), 0);
    json_t *r = json_loads(job->result ? job->result : job->error, 0, NULL);
    assert_non_null(r);
    for (int i = 0; i < 100 && route_gateway_active(gw) > 0; i++)
        usleep(20000);
    /* The metrics say which check refused which backend's output. */
    struct ig_buf text = {0};
    assert_int_equal(ig_metrics_render(m, &text), 0);
    int refused = strstr(text.data, "imagegate_validation_failures_total{backend=\"noisy\","
                                    "class=\"generate\",check=\"noise\"} 1") != NULL;
    assert_int_equal(refused, gate_enabled[0] == 't');
    ig_buf_free(&text);
    route_gateway_free(gw);
    ig_metrics_free(m);
    store_close(st);
    ig_config_free(cfg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return r;
}

static void
test_noise_falls_back(void **state)
{
    struct store_job job;
    json_t *r = run_job("true", &job);
    assert_int_equal(job.state, STORE_SUCCEEDED);
    json_t *prov = json_object_get(r, "provenance");
    assert_string_equal(json_string_value(json_object_get(prov, "backend")), "sound");
    json_t *att = json_object_get(prov, "attempts");
    assert_int_equal(json_array_size(att), 2);
    json_t *first = json_array_get(att, 0);
    assert_string_equal(json_string_value(json_object_get(first, "backend")), "noisy");
    assert_string_equal(json_string_value(json_object_get(first, "outcome")), "validation_failed");
    const char *msg = json_string_value(json_object_get(first, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "noise"));
    /* The failed check in the attempt's report, with its score and bound. */
    json_t *checks = json_object_get(json_array_get(json_object_get(first, "validation"), 0),
                                     "checks");
    int named = 0;
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) {
        if (strcmp(json_string_value(json_object_get(c, "name")), "noise") != 0)
            continue;
        named = 1;
        assert_true(json_is_false(json_object_get(c, "pass")));
        assert_true(json_real_value(json_object_get(c, "score")) < 0.2);
    }
    assert_true(named);
    assert_string_equal(json_string_value(json_object_get(json_array_get(att, 1), "outcome")),
                        "ok");
    print_message("%s\n", msg);
    json_decref(r);
    store_job_clear(&job);
}

static void
test_gate_disabled_serves_rung_one(void **state)
{
    struct store_job job;
    json_t *r = run_job("false", &job);
    assert_int_equal(job.state, STORE_SUCCEEDED);
    json_t *prov = json_object_get(r, "provenance");
    assert_string_equal(json_string_value(json_object_get(prov, "backend")), "noisy");
    assert_int_equal(json_array_size(json_object_get(prov, "attempts")), 1);
    json_decref(r);
    store_job_clear(&job);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noise_falls_back),
        cmocka_unit_test(test_gate_disabled_serves_rung_one),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
