/* SPDX-License-Identifier: MIT */
/* test_route_gateway.c -- the job engine against a scripted executor: the
 * success path, fallbacks on errors and on validation failures, retries that
 * honour Retry-After, budget ceilings, idempotency, cancel, and resuming an
 * async vendor job after a restart without resubmitting it.
 *
 * The executor here is a test double for the adapters (they are tested
 * against the vendor emulators elsewhere): each backend answers from a
 * script, on its own thread, the way a network answer arrives. */
#include "testutil.h"
#include "core/alloc.h"
#include "route/gateway.h"
#include "core/log.h"
#include "route/sched.h"
#include "lora_fixtures.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char config_yaml[] =
    "limits: {max_attempts: 8, job_timeout_ms: 20000}\n"
    "backends:\n"
    "  - name: alpha\n"
    "    adapter: openai\n"
    "    endpoint: http://127.0.0.1:1/v1\n"
    "    contract:\n"
    "      classes: [generate, upscale]\n"
    "      scales: [2]\n"
    "      supports: [seed]\n"
    "      grammar: natural-language\n"
    "      tier: fingerprint\n"
    "      license: {id: proprietary, flags: [commercial]}\n"
    "      price: {model: per-image, usd: 0.25}\n"
    "      base_model: FLUX.2 [dev]\n"
    "  - name: beta\n"
    "    adapter: bfl\n"
    "    endpoint: http://127.0.0.1:1\n"
    "    contract:\n"
    "      classes: [generate]\n"
    "      supports: [seed]\n"
    "      grammar: natural-language\n"
    "      tier: perceptual\n"
    "      license: {id: agpl-model, flags: [commercial, copyleft]}\n"
    "      price: {model: free}\n"
    "      base_model: black-forest-labs/FLUX.1-dev\n"
    "tenants:\n"
    "  - name: rich\n"
    "  - name: poor\n"
    "    budget: {daily_usd: 0.30}\n"
    "  - name: strict\n"
    "    license_policy: {deny_copyleft: true}\n"
    "ladders:\n"
    "  - name: gen\n"
    "    class: generate\n"
    "    rungs:\n"
    "      - {backend: alpha, retries: 1, reseeds: 1}\n"
    "      - {backend: beta}\n"
    "  - name: up\n"
    "    class: upscale\n"
    "    rungs:\n"
    "      - {backend: alpha}\n";

/* ---- The scripted executor ---------------------------------------------- */

enum act { OK, FAIL_UPSTREAM, FAIL_RATE, FAIL_AUTH, BAD_IMAGE, GRAY, HANG_THEN_OK };

struct script {
    pthread_mutex_t mu;
    enum act alpha[16], beta[16];
    int n_alpha, n_beta, calls_alpha, calls_beta;
    long long seeds[32];
    int n_seeds;
    char resumed_with[256];
    long alpha_times[16];
    int cancels;                  /* executor cancels asked for */
};

static struct script S;
static struct ig_buf red_png, gray_png;

struct pending {
    route_done_fn done;
    void *cookie;
    enum act act;
    long delay_ms;
};

static void *
answer(void *arg)
{
    struct pending *p = arg;
    if (p->delay_ms)
        usleep((useconds_t)p->delay_ms * 1000);
    struct route_outcome o;
    memset(&o, 0, sizeof o);
    o.retry_after_ms = -1;
    o.cost_usd = -1;
    switch (p->act) {
    case OK:
    case HANG_THEN_OK:
    case GRAY:
    case BAD_IMAGE: {
        const struct ig_buf *src = p->act == GRAY ? &gray_png : &red_png;
        size_t len = p->act == BAD_IMAGE ? 40 : src->len;
        o.vendor_charged = 1;
        /* Not the test's thread: a failure goes back as the attempt's. */
        o.images[0].data = ig_malloc(len);
        o.provenance = ig_strdup("{\"request_id\":\"req-1\",\"fingerprint\":\"fp-a\"}");
        if (!o.images[0].data || !o.provenance) {
            ig_error_set(&o.err, 500, "out_of_memory", "the fake vendor is out of memory");
            break;
        }
        o.ok = 1;
        memcpy(o.images[0].data, src->data, len);
        o.images[0].len = len;
        strcpy(o.images[0].mime, "image/png");
        o.n_images = 1;
        break;
    }
    case FAIL_UPSTREAM:
        ig_error_set(&o.err, 502, "upstream_error", "vendor said 500");
        break;
    case FAIL_RATE:
        ig_error_set(&o.err, 429, "rate_limited", "slow down");
        o.retry_after_ms = 300;
        break;
    case FAIL_AUTH:
        ig_error_set(&o.err, 401, "auth", "bad key");
        break;
    }
    p->done(p->cookie, &o);
    ig_free(p);
    return NULL;
}

static int
exec_start(void *ud, const struct route_attempt *a, route_done_fn done, void *cookie,
           struct ig_error *err)
{
    struct pending *p = ig_calloc(1, sizeof *p);
    if (!p)
        return ig_error_set(err, 500, "out_of_memory", "the fake vendor is out of memory");
    p->done = done;
    p->cookie = cookie;
    pthread_mutex_lock(&S.mu);
    if (a->has_seed && S.n_seeds < 32)
        S.seeds[S.n_seeds++] = a->seed;
    if (a->vendor_resume)
        snprintf(S.resumed_with, sizeof S.resumed_with, "%s", a->vendor_resume);
    if (strcmp(a->backend->name, "alpha") == 0) {
        S.alpha_times[S.calls_alpha % 16] = route_now_ms();
        p->act = S.calls_alpha < S.n_alpha ? S.alpha[S.calls_alpha] : OK;
        S.calls_alpha++;
    } else {
        p->act = S.calls_beta < S.n_beta ? S.beta[S.calls_beta] : OK;
        S.calls_beta++;
    }
    pthread_mutex_unlock(&S.mu);
    if (p->act == HANG_THEN_OK) {
        /* An async vendor job: the adapter saves its id before waiting. */
        a->save_vendor(a->cookie, "{\"id\":\"vendor-123\"}");
        p->delay_ms = 400;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, answer, p) != 0) {
        ig_free(p);
        return ig_error_set(err, 500, "threads", "the fake vendor cannot start a thread");
    }
    pthread_detach(t);
    return 0;
}

static void
exec_cancel(void *ud, void *cookie)
{
    (void)ud;
    (void)cookie;
    pthread_mutex_lock(&S.mu);
    S.cancels++;
    pthread_mutex_unlock(&S.mu);
}

/* Validation double: an all-gray output fails, anything else passes. */
static int
validate(void *ud, const struct ig_config *cfg, enum ig_class cls, const json_t *request,
         const struct img *out, const struct img *input, const struct img *mask, json_t **report,
         int *pass, struct ig_error *err)
{
    int gray = out->rgba[0] == 128 && out->rgba[1] == 128 && out->rgba[2] == 128;
    *pass = !gray;
    *report = json_pack("{s:s,s:b}", "name", "not_collapsed", "pass", *pass);
    if (gray)
        ig_error_set(err, 502, "validation_failed", "collapsed to gray");
    return 0;
}

/* ---- Fixture -------------------------------------------------------------- */

static struct ig_config *cfg;
static struct store *st;
static struct ig_metrics *metrics;
static struct route_gateway *gw;
static char base_dir[128], crash_dir[160];
static const char *dir = base_dir;

static void
script(const enum act *alpha, int na, const enum act *beta, int nb)
{
    pthread_mutex_lock(&S.mu);
    if (na)
        memcpy(S.alpha, alpha, (size_t)na * sizeof *alpha);
    if (nb)
        memcpy(S.beta, beta, (size_t)nb * sizeof *beta);
    S.n_alpha = na;
    S.n_beta = nb;
    S.calls_alpha = S.calls_beta = S.n_seeds = 0;
    S.resumed_with[0] = '\0';
    S.cancels = 0;
    pthread_mutex_unlock(&S.mu);
}

static void
start_gateway(void)
{
    struct ig_error err = {0};
    st = store_open(dir, &err);
    assert_non_null(st);
    metrics = ig_metrics_new();
    struct route_executor ex = {.ud = NULL, .start = exec_start, .cancel = exec_cancel};
    struct route_hooks hooks = {.validate = validate};
    gw = route_gateway_new(cfg, st, metrics, &ex, &hooks, 2, &err);
    assert_non_null(gw);
}

static void
stop_gateway(void)
{
    /* Let answers in flight land before the gateway goes away. */
    for (int i = 0; i < 100 && route_gateway_active(gw) > 0; i++)
        usleep(20000);
    route_gateway_free(gw);
    ig_metrics_free(metrics);
    store_close(st);
}

static int
setup(void **state)
{
    pthread_mutex_init(&S.mu, NULL);
    snprintf(base_dir, sizeof base_dir, "/tmp/iggw-XXXXXX");
    if (!mkdtemp(base_dir))
        return -1;
    struct ig_error err = {0};
    cfg = ig_config_load("gw.yaml", config_yaml, strlen(config_yaml), NULL, &err);
    if (!cfg) {
        print_error("%s\n", err.message);
        return -1;
    }
    struct img *im = img_new(32, 32);
    for (int i = 0; i < 32 * 32; i++)
        memcpy(im->rgba + 4 * i, "\xd0\x20\x20\xff", 4);
    img_encode(im, IMG_FMT_PNG, 0, NULL, &red_png, &err);
    for (int i = 0; i < 32 * 32; i++)
        memcpy(im->rgba + 4 * i, "\x80\x80\x80\xff", 4);
    img_encode(im, IMG_FMT_PNG, 0, NULL, &gray_png, &err);
    img_free(im);
    start_gateway();
    return 0;
}

static int
teardown(void **state)
{
    stop_gateway();
    ig_config_free(cfg);
    ig_buf_free(&red_png);
    ig_buf_free(&gray_png);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", base_dir, crash_dir);
    return system(cmd);
}

static json_t *
run(const char *tenant, const char *request_json, struct store_job *out)
{
    struct ig_error err = {0};
    json_t *req = json_loads(request_json, 0, NULL);
    assert_non_null(req);
    char id[40];
    if (route_gateway_submit(gw, tenant, req, NULL, id, &err) < 0)
        fail_msg("submit: %s", err.message);
    json_decref(req);
    assert_true(route_gateway_wait(gw, id, 15000));
    assert_int_equal(store_job_get(st, id, tenant, out, &err), 0);
    return out->result ? json_loads(out->result, 0, NULL)
                       : json_loads(out->error, 0, NULL);
}

static const char *
attempt_outcome(json_t *attempts, size_t i)
{
    return json_string_value(json_object_get(json_array_get(attempts, i), "outcome"));
}

/* ---- Tests ---------------------------------------------------------------- */

static void
test_success_first_rung(void **state)
{
    script((enum act[]){OK}, 1, NULL, 0);
    struct store_job j;
    json_t *r = run("rich", "{\"class\":\"generate\",\"prompt\":\"a red square\",\"seed\":7}", &j);
    assert_int_equal(j.state, STORE_SUCCEEDED);
    json_t *out = json_array_get(json_object_get(r, "outputs"), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "width")), 32);
    /* The stored blob is the vendor's bytes, untouched. */
    struct ig_buf blob = {0};
    struct ig_error err = {0};
    assert_int_equal(store_blob_get(st, json_string_value(json_object_get(out, "file")), &blob,
                                    &err), 0);
    assert_int_equal(blob.len, red_png.len);
    assert_memory_equal(blob.data, red_png.data, blob.len);
    ig_buf_free(&blob);
    json_t *p = json_object_get(r, "provenance");
    assert_string_equal(json_string_value(json_object_get(p, "backend")), "alpha");
    assert_string_equal(json_string_value(json_object_get(p, "tier")), "fingerprint");
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 7);
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "vendor"),
                                                          "fingerprint")), "fp-a");
    assert_true(json_real_value(json_object_get(p, "cost_usd")) == 0.25);
    assert_int_equal(S.seeds[0], 7);
    json_decref(r);
    store_job_clear(&j);
}

static void
test_fallback_after_retries(void **state)
{
    script((enum act[]){FAIL_UPSTREAM, FAIL_UPSTREAM}, 2, (enum act[]){OK}, 1);
    struct store_job j;
    json_t *r = run("rich", "{\"class\":\"generate\",\"prompt\":\"x\"}", &j);
    assert_int_equal(j.state, STORE_SUCCEEDED);
    json_t *att = json_object_get(json_object_get(r, "provenance"), "attempts");
    assert_int_equal(json_array_size(att), 3);
    assert_string_equal(attempt_outcome(att, 0), "upstream_error");
    assert_string_equal(attempt_outcome(att, 1), "upstream_error");
    assert_string_equal(attempt_outcome(att, 2), "ok");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "provenance"),
                                                          "backend")), "beta");
    assert_int_equal(S.calls_alpha, 2);   /* one try plus its one retry */
    json_decref(r);
    store_job_clear(&j);
}

static void
test_retry_after_is_honoured(void **state)
{
    script((enum act[]){FAIL_RATE, OK}, 2, NULL, 0);
    struct store_job j;
    json_t *r = run("rich", "{\"class\":\"generate\",\"prompt\":\"x\"}", &j);
    assert_int_equal(j.state, STORE_SUCCEEDED);
    assert_int_equal(S.calls_alpha, 2);
    long gap = S.alpha_times[1] - S.alpha_times[0];
    assert_true(gap >= 300);   /* the vendor's Retry-After: 300 ms */
    json_decref(r);
    store_job_clear(&j);
}

static void
test_validation_failure_reseeds_then_falls_back(void **state)
{
    script((enum act[]){GRAY, GRAY}, 2, (enum act[]){OK}, 1);
    struct store_job j;
    json_t *r = run("rich", "{\"class\":\"generate\",\"prompt\":\"x\",\"seed\":1}", &j);
    assert_int_equal(j.state, STORE_SUCCEEDED);
    json_t *att = json_object_get(json_object_get(r, "provenance"), "attempts");
    assert_string_equal(attempt_outcome(att, 0), "validation_failed");
    assert_string_equal(attempt_outcome(att, 1), "validation_failed");
    assert_string_equal(attempt_outcome(att, 2), "ok");
    assert_int_equal(S.seeds[0], 1);
    assert_true(S.seeds[1] != 1);   /* the re-seed */
    json_decref(r);
    store_job_clear(&j);
}

static void
test_corrupt_output_falls_back(void **state)
{
    script((enum act[]){BAD_IMAGE, BAD_IMAGE}, 2, (enum act[]){OK}, 1);
    struct store_job j;
    json_t *r = run("rich", "{\"class\":\"generate\",\"prompt\":\"x\"}", &j);
    assert_int_equal(j.state, STORE_SUCCEEDED);
    json_t *att = json_object_get(json_object_get(r, "provenance"), "attempts");
    assert_string_equal(attempt_outcome(att, 0), "corrupt_image");
    json_decref(r);
    store_job_clear(&j);
}

static void
test_all_rungs_fail(void **state)
{
    script((enum act[]){FAIL_AUTH}, 1, (enum act[]){FAIL_AUTH}, 1);
    struct store_job j;
    json_t *e = run("rich", "{\"class\":\"generate\",\"prompt\":\"x\"}", &j);
    assert_int_equal(j.state, STORE_FAILED);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "no_rung_succeeded");
    json_t *att = json_object_get(e, "attempts");
    assert_int_equal(json_array_size(att), 2);   /* auth is not retried */
    assert_string_equal(attempt_outcome(att, 0), "auth");
    json_decref(e);
    store_job_clear(&j);
}

/* The $0.25 rung fits a $0.30 ceiling once; the second job skips it for the
 * free rung, and the committed spend never passes the ceiling. */
static void
test_budget_ceiling(void **state)
{
    script(NULL, 0, NULL, 0);
    struct store_job j;
    json_t *r = run("poor", "{\"class\":\"generate\",\"prompt\":\"x\"}", &j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "provenance"),
                                                          "backend")), "alpha");
    json_decref(r);
    store_job_clear(&j);
    r = run("poor", "{\"class\":\"generate\",\"prompt\":\"x\"}", &j);
    json_t *p = json_object_get(r, "provenance");
    assert_string_equal(json_string_value(json_object_get(p, "backend")), "beta");
    json_t *skip = json_array_get(json_object_get(p, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(skip, "outcome")), "skipped");
    assert_non_null(strstr(json_string_value(json_object_get(skip, "message")), "ceiling"));
    double spent = 0;
    struct ig_error err = {0};
    store_budget_spent(st, "poor", 0, &spent, &err);
    assert_true(spent <= 0.30);
    json_decref(r);
    store_job_clear(&j);
    /* The gauge says what is left today: the ceiling less the ledger. */
    assert_true(route_gateway_recover(gw, &err) >= 0);
    struct ig_buf text = {0};
    assert_int_equal(ig_metrics_render(metrics, &text), 0);
    const char *key = "imagegate_budget_remaining_usd{tenant=\"poor\",period=\"day\"} ";
    const char *at = strstr(text.data, key);
    assert_non_null(at);
    double left = strtod(at + strlen(key), NULL);
    assert_true(fabs(left - (0.30 - spent)) < 1e-9);
    assert_null(strstr(text.data, "tenant=\"rich\",period"));
    ig_buf_free(&text);
}

static void
test_licence_policy_refuses_rung(void **state)
{
    script((enum act[]){FAIL_AUTH}, 1, NULL, 0);
    struct store_job j;
    json_t *e = run("strict", "{\"class\":\"generate\",\"prompt\":\"x\"}", &j);
    assert_int_equal(j.state, STORE_FAILED);
    json_t *att = json_object_get(e, "attempts");
    assert_string_equal(attempt_outcome(att, 1), "skipped");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(att, 1), "message")),
                           "copyleft"));
    assert_int_equal(S.calls_beta, 0);
    json_decref(e);
    store_job_clear(&j);
}

static void
test_bad_requests_refused_up_front(void **state)
{
    const char *bad[] = {
        "[]", "{}", "{\"class\":\"paint\"}", "{\"class\":\"generate\"}",
        "{\"class\":\"upscale\"}", "{\"class\":\"generate\",\"prompt\":\"x\",\"n\":99}",
        "{\"class\":\"generate\",\"prompt\":\"x\",\"size\":\"big\"}",
        "{\"class\":\"generate\",\"prompt\":\"x\",\"seed\":\"seven\"}",
        "{\"class\":\"edit\",\"prompt\":\"x\",\"input\":\"00ff\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ig_error err = {0};
        json_t *req = json_loads(bad[i], 0, NULL);
        char id[40];
        assert_int_equal(route_gateway_submit(gw, "rich", req, NULL, id, &err), -1);
        assert_string_equal(err.code, "invalid_request");
        assert_int_equal(err.http_status, 400);
        json_decref(req);
    }
}

static void
test_idempotent_submit(void **state)
{
    script(NULL, 0, NULL, 0);
    struct ig_error err = {0};
    json_t *req = json_loads("{\"class\":\"generate\",\"prompt\":\"once\"}", 0, NULL);
    char a[40], b[40];
    assert_int_equal(route_gateway_submit(gw, "rich", req, "k1", a, &err), 0);
    assert_int_equal(route_gateway_submit(gw, "rich", req, "k1", b, &err), 1);
    assert_string_equal(a, b);
    assert_true(route_gateway_wait(gw, a, 5000));
    assert_int_equal(S.calls_alpha, 1);
    json_decref(req);
    req = json_loads("{\"class\":\"generate\",\"prompt\":\"other\"}", 0, NULL);
    assert_int_equal(route_gateway_submit(gw, "rich", req, "k1", b, &err), -1);
    assert_string_equal(err.code, "idempotency_conflict");
    json_decref(req);
}

static void
test_cancel(void **state)
{
    script((enum act[]){HANG_THEN_OK}, 1, NULL, 0);
    struct ig_error err = {0};
    json_t *req = json_loads("{\"class\":\"generate\",\"prompt\":\"slow\"}", 0, NULL);
    char id[40];
    assert_int_equal(route_gateway_submit(gw, "rich", req, NULL, id, &err), 0);
    json_decref(req);
    usleep(100000);
    assert_int_equal(route_gateway_cancel(gw, id, "other-tenant", &err), -1);
    assert_string_equal(err.code, "not_found");
    assert_int_equal(route_gateway_cancel(gw, id, "rich", &err), 0);
    /* The call in flight is stopped, not left to run out. */
    assert_int_equal(S.cancels, 1);
    struct store_job j;
    assert_int_equal(store_job_get(st, id, NULL, &j, &err), 0);
    assert_int_equal(j.state, STORE_CANCELLED);
    store_job_clear(&j);
    assert_int_equal(route_gateway_cancel(gw, id, "rich", &err), -1);
    assert_string_equal(err.code, "job_finished");
    for (int i = 0; i < 100 && route_gateway_active(gw) > 0; i++)
        usleep(20000);
    assert_int_equal(route_gateway_active(gw), 0);
}

/* A job whose vendor call was in flight when the process died resumes with
 * the vendor's saved id: the adapter re-polls, nothing is resubmitted. */
static void
test_recovery_resumes_vendor_job(void **state)
{
    script((enum act[]){HANG_THEN_OK}, 1, NULL, 0);
    struct ig_error err = {0};
    json_t *req = json_loads("{\"class\":\"generate\",\"prompt\":\"crash me\"}", 0, NULL);
    char id[40];
    assert_int_equal(route_gateway_submit(gw, "rich", req, NULL, id, &err), 0);
    json_decref(req);
    usleep(150000);   /* the adapter has saved the vendor id and is waiting */
    struct store_job j;
    assert_int_equal(store_job_get(st, id, NULL, &j, &err), 0);
    assert_int_equal(j.state, STORE_RUNNING);
    assert_non_null(j.vendor);
    store_job_clear(&j);
    /* Simulate the crash: the store keeps only what was committed. Copy the
     * database aside while the job is running, then restart on the copy. */
    char cmd[512];
    snprintf(crash_dir, sizeof crash_dir, "%s-crash", base_dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", crash_dir, base_dir, crash_dir);
    assert_int_equal(system(cmd), 0);
    stop_gateway();
    dir = crash_dir;
    script((enum act[]){OK}, 1, NULL, 0);
    start_gateway();
    assert_int_equal(route_gateway_recover(gw, &err), 1);
    assert_true(route_gateway_wait(gw, id, 5000));
    assert_int_equal(store_job_get(st, id, NULL, &j, &err), 0);
    assert_int_equal(j.state, STORE_SUCCEEDED);
    store_job_clear(&j);
    assert_string_equal(S.resumed_with, "{\"id\":\"vendor-123\"}");
    /* The reservation from before the crash was committed, not doubled. */
    double spent = 0;
    store_budget_spent(st, "rich", 0, &spent, &err);
    assert_true(spent > 0);
}

/* A FLUX.1 LoRA skips the FLUX.2 rung with the reason and runs on FLUX.1. */
static void
test_lora_routed_by_base_model(void **state)
{
    script(NULL, 0, NULL, 0);
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_double_blocks_0_img_attn_qkv", 0, 3072, 9216, 4);
    stw_alpha(&w, "lora_unet_double_blocks_0_img_attn_qkv", 4, "BF16");
    stw_pair(&w, "lora_unet_double_blocks_18_img_mlp_0", 0, 3072, 12288, 4);
    stw_pair(&w, "lora_unet_single_blocks_37_linear1", 0, 3072, 21504, 4);
    stw_pair(&w, "lora_unet_single_blocks_37_linear2", 0, 15360, 3072, 4);
    size_t len;
    unsigned char *bytes = stw_bytes(&w, &len);
    char hex[65], body[256];
    struct ig_error err = {0};
    assert_int_equal(store_blob_put(st, bytes, len, hex, &err), 0);
    snprintf(body, sizeof body,
             "{\"class\":\"generate\",\"prompt\":\"x\",\"lora\":{\"file\":\"%s\"}}", hex);
    struct store_job j;
    json_t *r = run("rich", body, &j);
    assert_int_equal(j.state, STORE_SUCCEEDED);
    json_t *p = json_object_get(r, "provenance");
    assert_string_equal(json_string_value(json_object_get(p, "backend")), "beta");
    json_t *skip = json_array_get(json_object_get(p, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(skip, "message")),
                        "trained on FLUX.1 [dev]; this backend runs FLUX.2 [dev]; retrain");
    assert_int_equal(S.calls_alpha, 0);
    json_decref(r);
    store_job_clear(&j);
    /* A file that is not safetensors fails the job with the parser's code. */
    assert_int_equal(store_blob_put(st, "not a lora", 10, hex, &err), 0);
    snprintf(body, sizeof body,
             "{\"class\":\"generate\",\"prompt\":\"x\",\"lora\":{\"file\":\"%s\"}}", hex);
    json_t *req = json_loads(body, 0, NULL);
    char id[40];
    assert_int_equal(route_gateway_submit(gw, "rich", req, NULL, id, &err), -1);
    assert_int_equal(strncmp(err.code, "safetensors", 11), 0);
    json_decref(req);
    ig_free(bytes);
    stw_free(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_first_rung),
        cmocka_unit_test(test_fallback_after_retries),
        cmocka_unit_test(test_retry_after_is_honoured),
        cmocka_unit_test(test_validation_failure_reseeds_then_falls_back),
        cmocka_unit_test(test_corrupt_output_falls_back),
        cmocka_unit_test(test_all_rungs_fail),
        cmocka_unit_test(test_budget_ceiling),
        cmocka_unit_test(test_licence_policy_refuses_rung),
        cmocka_unit_test(test_bad_requests_refused_up_front),
        cmocka_unit_test(test_idempotent_submit),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_lora_routed_by_base_model),
        cmocka_unit_test(test_recovery_resumes_vendor_job),
    };
    ig_log_setup(NULL, IG_LOG_ERROR);
    return cmocka_run_group_tests(tests, setup, teardown);
}
