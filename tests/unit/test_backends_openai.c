/* SPDX-License-Identifier: MIT */
/* test_backends_openai.c -- the OpenAI adapter against the OpenAI emulator,
 * in-process over loopback: generations and edits, every error class the
 * adapter maps, every fault the emulator injects, and the limits (body cap,
 * deadline, wrong content type). The two were written from the vendor
 * reference separately, so a misreading on either side shows here. */
#include "testutil.h"
#include "backends/backend.h"
#include "core/alloc.h"
#include "emulate/emulate.h"
#include "image/image.h"
#include "route/sched.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct emu *emu;
static struct be_loop *loop;
static struct ig_backend_cfg backend;
static char endpoint[128];

static int
setup(void **state)
{
    struct ig_error err = {0};
    emu = emu_start("openai", "127.0.0.1:0", NULL, &err);
    loop = emu ? be_loop_new(&err) : NULL;
    if (!loop) {
        print_error("%s\n", err.message);
        return -1;
    }
    snprintf(endpoint, sizeof endpoint, "http://%s/v1", emu_address(emu));
    backend.name = "openai-test";
    backend.adapter = "openai";
    backend.endpoint = endpoint;
    backend.credential = "env:IG_TEST_OPENAI_KEY";
    backend.model = "gpt-image-1";
    backend.contract.limits.total_timeout_ms = 30000;   /* sanitizer builds */
    setenv("IG_TEST_OPENAI_KEY", "sk-test", 1);
    return 0;
}

static int
teardown(void **state)
{
    be_loop_free(loop);
    emu_stop(emu);
    return 0;
}

/* ---- Running one call to its end ---------------------------------------- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct be_call *call;
    char saved[256];
};

static void
on_done(void *ud, struct be_call *c)
{
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->call = c;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static struct be_call *
run(struct be_request *req)
{
    static struct waiter w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.done = 0;
    struct ig_error err = {0};
    if (!req->cfg)
        req->cfg = &backend;
    if (!req->max_body_bytes)
        req->max_body_bytes = 64L << 20;
    if (be_call_start(loop, req, NULL, on_done, &w, &err) != 0)
        fail_msg("start: %s", err.message);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return w.call;
}

static void
faults(const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "http://%s/_emulator/faults", emu_address(emu));
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(devnull);
    curl_easy_cleanup(c);
}

static json_t *
admin(const char *what, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "http://%s/_emulator/%s", emu_address(emu), what);
    struct ig_buf out = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    FILE *f = open_memstream(&out.data, &out.len);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(f);
    curl_easy_cleanup(c);
    json_t *j = json_loadb(out.data, out.len, 0, NULL);
    free(out.data);
    return j;
}

static void
expect_error(const char *fault, const char *code)
{
    char json[256];
    snprintf(json, sizeof json, "{\"faults\":[%s]}", fault);
    faults(json);
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a cat", .n = 1};
    struct be_call *c = run(&req);
    if (c->result.ok || strcmp(c->result.err.code, code) != 0)
        fail_msg("fault %s: got ok=%d %s (%s), wanted %s", fault, c->result.ok,
                 c->result.err.code, c->result.err.message, code);
    be_call_free(c);
}

/* ---- Tests ------------------------------------------------------------------ */

static void
test_generate(void **state)
{
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "a lighthouse", .n = 2,
                             .width = 1024, .height = 1024, .quality = "low",
                             .seed = 42, .has_seed = 1, .negative_prompt = "fog"};
    struct be_call *c = run(&req);
    assert_true(c->result.ok);
    assert_int_equal(c->result.n_images, 2);
    struct ig_error err = {0};
    struct img *a = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    struct img *b = img_decode(c->result.images[1].data, c->result.images[1].len, NULL, &err);
    assert_non_null(a);
    assert_int_equal(a->width, 1024);
    assert_memory_not_equal(a->rgba, b->rgba, 1024 * 4 * 16);   /* n images differ */
    json_t *p = c->result.provenance;
    assert_string_equal(json_string_value(json_object_get(p, "model")), "gpt-image-1");
    assert_non_null(json_object_get(p, "request_id"));
    assert_string_equal(json_string_value(json_object_get(p, "fingerprint")), "fp_1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "usage"),
                                                        "output_tokens")), 2 * 272);
    /* The seed and the negative prompt were dropped, and said so. */
    json_t *notes = json_object_get(p, "notes");
    assert_int_equal(json_array_size(notes), 2);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(notes, 0), "message")),
                           "seed"));
    img_free(a);
    img_free(b);
    be_call_free(c);
}

static void
test_edit_changes_masked_region_only(void **state)
{
    size_t len;
    char *photo = tu_read(tu_photo("astronaut.png"), &len);
    struct ig_error err = {0};
    struct img *in = img_decode(photo, len, NULL, &err);
    /* Mask: transparent (edit here) in the left half, opaque elsewhere. */
    struct img *mask = img_new(in->width, in->height);
    for (int y = 0; y < in->height; y++)
        for (int x = 0; x < in->width; x++)
            mask->rgba[4 * (y * in->width + x) + 3] = x < in->width / 2 ? 0 : 255;
    struct ig_buf mask_png = {0};
    assert_int_equal(img_encode(mask, IMG_FMT_PNG, 0, NULL, &mask_png, &err), 0);
    struct be_request req = {.cls = IG_CLASS_EDIT, .prompt = "paint it blue", .n = 1,
                             .input = photo, .input_len = len,
                             .mask = mask_png.data, .mask_len = mask_png.len};
    struct be_call *c = run(&req);
    assert_true(c->result.ok);
    struct img *out = img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err);
    assert_non_null(out);
    assert_int_equal(out->width, in->width);
    long changed_left = 0, changed_right = 0;
    for (int y = 0; y < in->height; y++)
        for (int x = 0; x < in->width; x++) {
            size_t i = 4 * ((size_t)y * (size_t)in->width + (size_t)x);
            int diff = memcmp(out->rgba + i, in->rgba + i, 3) != 0;
            if (x < in->width / 2)
                changed_left += diff;
            else
                changed_right += diff;
        }
    assert_true(changed_left > (long)in->width * in->height / 2 * 9 / 10);
    assert_int_equal(changed_right, 0);
    img_free(out);
    img_free(in);
    img_free(mask);
    ig_buf_free(&mask_png);
    ig_free(photo);
    be_call_free(c);
}

static void
test_vendor_validation_errors(void **state)
{
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1, .width = 640,
                             .height = 480};
    struct be_call *c = run(&req);
    assert_false(c->result.ok);
    assert_string_equal(c->result.err.code, "invalid_request");
    assert_non_null(strstr(c->result.err.message, "Invalid value"));
    be_call_free(c);
    struct be_request many = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 11};
    c = run(&many);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
    /* OpenAI serves generate and edit only: refused before any call. */
    struct be_request up = {.cfg = &backend, .cls = IG_CLASS_UPSCALE, .n = 1,
                            .max_body_bytes = 1 << 20};
    struct ig_error err = {0};
    assert_int_equal(be_call_start(loop, &up, NULL, on_done, NULL, &err), -1);
    assert_string_equal(err.code, "invalid_request");
}

static void
test_auth(void **state)
{
    unsetenv("IG_TEST_OPENAI_KEY");
    struct be_request req = {.cfg = &backend, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct ig_error err = {0};
    assert_int_equal(be_call_start(loop, &req, NULL, on_done, NULL, &err), -1);
    assert_string_equal(err.code, "auth");
    assert_non_null(strstr(err.message, "env:IG_TEST_OPENAI_KEY"));
    /* A key the vendor refuses: an empty bearer token. */
    setenv("IG_TEST_OPENAI_KEY", "", 1);
    struct ig_backend_cfg b = backend;
    b.credential = "file:/dev/null";
    req.cfg = &b;
    assert_int_equal(be_call_start(loop, &req, NULL, on_done, NULL, &err), -1);
    setenv("IG_TEST_OPENAI_KEY", "sk-test", 1);
}

static void
test_error_classes(void **state)
{
    expect_error("{\"kind\":\"rate_limit\",\"retry_after\":3}", "rate_limited");
    expect_error("{\"kind\":\"quota\"}", "quota");
    expect_error("{\"kind\":\"moderation\"}", "moderated");
    expect_error("{\"kind\":\"server_error\"}", "upstream_error");
    expect_error("{\"kind\":\"unavailable\"}", "upstream_error");
    expect_error("{\"kind\":\"malformed_json\"}", "malformed_response");
    expect_error("{\"kind\":\"no_image\"}", "malformed_response");
}

static void
test_retry_after_is_read(void **state)
{
    faults("{\"faults\":[{\"kind\":\"rate_limit\",\"retry_after\":7}]}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    struct be_call *c = run(&req);
    assert_string_equal(c->result.err.code, "rate_limited");
    assert_int_equal(c->result.retry_after_ms, 7000);
    be_call_free(c);
}

static void
test_transport_faults(void **state)
{
    /* Latency within the timeout: still a success. */
    faults("{\"faults\":[{\"kind\":\"latency\",\"delay_ms\":300}]}");
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "slow", .n = 1};
    struct be_call *c = run(&req);
    assert_true(c->result.ok);
    be_call_free(c);
    /* A truncated body is not an image. */
    faults("{\"faults\":[{\"kind\":\"truncated\"}]}");
    c = run(&req);
    assert_false(c->result.ok);
    assert_true(strcmp(c->result.err.code, "malformed_response") == 0 ||
                strcmp(c->result.err.code, "upstream_error") == 0);
    be_call_free(c);
    /* A hang ends at the contract's timeout. */
    struct ig_backend_cfg quick = backend;
    quick.contract.limits.total_timeout_ms = 500;
    faults("{\"faults\":[{\"kind\":\"hang\"}]}");
    struct be_request hang = {.cfg = &quick, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = run(&hang);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    /* A corrupt image is the adapter's success: the gateway's decode refuses it. */
    faults("{\"faults\":[{\"kind\":\"corrupt_image\"}]}");
    c = run(&req);
    assert_true(c->result.ok);
    struct ig_error err = {0};
    assert_null(img_decode(c->result.images[0].data, c->result.images[0].len, NULL, &err));
    be_call_free(c);
}

static void
test_limits(void **state)
{
    /* An answer over the body cap. */
    struct be_request req = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                             .max_body_bytes = 10000};
    struct be_call *c = run(&req);
    assert_string_equal(c->result.err.code, "malformed_response");
    assert_non_null(strstr(c->result.err.message, "larger than"));
    be_call_free(c);
    /* A deadline already past. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    struct be_request late = {.cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1,
                              .deadline_ms = (long)ts.tv_sec * 1000 - 1};
    c = run(&late);
    assert_string_equal(c->result.err.code, "timeout");
    be_call_free(c);
    /* A vendor that answers HTML: wrong content type. */
    struct ig_backend_cfg wrong = backend;
    char ep[160];
    snprintf(ep, sizeof ep, "http://%s/_emulator/stats", emu_address(emu));
    wrong.endpoint = ep;   /* answers JSON, but at the wrong path: a 404 from the emulator */
    struct be_request r404 = {.cfg = &wrong, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    c = run(&r404);
    assert_false(c->result.ok);
    assert_string_equal(c->result.err.code, "invalid_request");
    be_call_free(c);
}

/* Many calls in flight on the one loop thread, each delayed at the vendor:
 * the vendor sees them at the same time. */
static void
test_concurrency_on_one_thread(void **state)
{
    json_decref(admin("reset", ""));
    enum { N = 8 };
    char json[1024] = "{\"faults\":[";
    for (int i = 0; i < N; i++)
        strcat(json, i ? ",{\"kind\":\"latency\",\"delay_ms\":400}"
                       : "{\"kind\":\"latency\",\"delay_ms\":400}");
    strcat(json, "]}");
    faults(json);
    struct waiter ws[N];
    for (int i = 0; i < N; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        pthread_mutex_init(&ws[i].mu, NULL);
        pthread_cond_init(&ws[i].cv, NULL);
        struct be_request req = {.cfg = &backend, .cls = IG_CLASS_GENERATE, .prompt = "p",
                                 .n = 1, .width = 1024, .height = 1024, .quality = "low",
                                 .max_body_bytes = 64L << 20};
        struct ig_error err = {0};
        assert_int_equal(be_call_start(loop, &req, NULL, on_done, &ws[i], &err), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_mutex_lock(&ws[i].mu);
        while (!ws[i].done)
            pthread_cond_wait(&ws[i].cv, &ws[i].mu);
        pthread_mutex_unlock(&ws[i].mu);
        assert_true(ws[i].call->result.ok);
        be_call_free(ws[i].call);
    }
    json_t *stats = admin("stats", NULL);
    assert_true(json_integer_value(json_object_get(stats, "max_concurrent")) >= N / 2);
    json_decref(stats);
}

/* ---- A driven loop (an HTTP thread's own) ---------------------------------- */

struct driven {
    int done;
    pthread_t on;                 /* the thread the done callback ran on */
    struct be_call *call;
};

static void
on_driven_done(void *ud, struct be_call *c)
{
    struct driven *d = ud;
    d->done = 1;
    d->on = pthread_self();
    d->call = c;
}

static struct be_request
driven_request(void)
{
    return (struct be_request){.cfg = &backend, .cls = IG_CLASS_GENERATE, .prompt = "p", .n = 1,
                               .width = 1024, .height = 1024, .quality = "low",
                               .max_body_bytes = 64L << 20};
}

struct driven_other {
    struct be_loop *l;
    struct driven *d;
    int rc;
    long delay_ms;                /* for a bare wake-up: sleep, then wake */
};

static void *
start_elsewhere(void *arg)
{
    struct driven_other *o = arg;
    if (o->delay_ms) {
        usleep((useconds_t)o->delay_ms * 1000);
        be_loop_wakeup(o->l);
        return NULL;
    }
    struct be_request req = driven_request();
    struct ig_error err = {0};
    o->rc = be_call_start(o->l, &req, NULL, on_driven_done, o->d, &err);
    return NULL;
}

/* 1. Calls started on the owner and from another thread both run, and
 *    every done callback runs on the owner, inside be_loop_turn.
 * 2. A call from another thread, or be_loop_wakeup, cuts the owner's wait
 *    short.
 * 3. Freed with a call in flight, the loop ends it, on the owner, with the
 *    shutting-down error; the thread then drives no loop. */
static void
test_driven_loop(void **state)
{
    json_decref(admin("reset", ""));
    struct ig_error err = {0};
    struct be_loop *l = be_loop_new_driven(&err);
    assert_non_null(l);
    assert_null(be_loop_current());
    be_loop_bind(l);
    assert_ptr_equal(be_loop_current(), l);

    /* 1 */
    struct driven mine = {0}, theirs = {0};
    struct be_request req = driven_request();
    assert_int_equal(be_call_start(l, &req, NULL, on_driven_done, &mine, &err), 0);
    struct driven_other o = {.l = l, .d = &theirs};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, start_elsewhere, &o), 0);
    pthread_join(t, NULL);
    assert_int_equal(o.rc, 0);
    assert_false(mine.done || theirs.done);   /* nothing runs until the owner turns */
    for (long end = route_now_ms() + 30000; !(mine.done && theirs.done) && route_now_ms() < end;)
        be_loop_wait(l, NULL, 0, be_loop_turn(l));
    assert_true(mine.done && theirs.done);
    assert_true(pthread_equal(mine.on, pthread_self()));
    assert_true(pthread_equal(theirs.on, pthread_self()));
    assert_true(mine.call->result.ok);
    assert_true(theirs.call->result.ok);
    be_call_free(mine.call);
    be_call_free(theirs.call);

    /* 2: a call from elsewhere, then a bare wake-up, each ends a long wait. */
    memset(&theirs, 0, sizeof theirs);
    o = (struct driven_other){.l = l, .d = &theirs};
    be_loop_turn(l);
    long t0 = route_now_ms();
    assert_int_equal(pthread_create(&t, NULL, start_elsewhere, &o), 0);
    be_loop_wait(l, NULL, 0, 1000);
    long waited = route_now_ms() - t0;
    pthread_join(t, NULL);
    assert_true(waited < 900);
    for (long end = route_now_ms() + 30000; !theirs.done && route_now_ms() < end;)
        be_loop_wait(l, NULL, 0, be_loop_turn(l));
    assert_true(theirs.done);
    be_call_free(theirs.call);
    be_loop_turn(l);
    o = (struct driven_other){.l = l, .delay_ms = 50};
    t0 = route_now_ms();
    assert_int_equal(pthread_create(&t, NULL, start_elsewhere, &o), 0);
    be_loop_wait(l, NULL, 0, 1000);
    waited = route_now_ms() - t0;
    pthread_join(t, NULL);
    assert_true(waited >= 40 && waited < 900);

    /* 3 */
    faults("{\"faults\":[{\"kind\":\"latency\",\"delay_ms\":3000}]}");
    memset(&mine, 0, sizeof mine);
    req = driven_request();
    assert_int_equal(be_call_start(l, &req, NULL, on_driven_done, &mine, &err), 0);
    for (int i = 0; i < 5; i++) {
        long w = be_loop_turn(l);
        be_loop_wait(l, NULL, 0, w < 20 ? w : 20);
    }
    assert_false(mine.done);
    be_loop_free(l);
    assert_true(mine.done);
    assert_true(pthread_equal(mine.on, pthread_self()));
    assert_false(mine.call->result.ok);
    assert_string_equal(mine.call->result.err.code, "timeout");
    be_call_free(mine.call);
    assert_null(be_loop_current());
    json_decref(admin("reset", ""));
}

/* ---- Answer shapes, from a canned upstream ------------------------------- */

/* The answer a canned upstream gives to every request. */
static const char *canned;

static enum MHD_Result
canned_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
              const char *version, const char *data, size_t *size, void **state)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    if (!*state) {
        *state = conn;
        return MHD_YES;
    }
    if (*size) {
        *size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(canned), (void *)canned,
                                                             MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* A canned upstream on a free port, and the test backend pointed at it. */
static struct MHD_Daemon *
canned_start(struct ig_backend_cfg *b, char *ep, size_t ep_size)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            canned_answer, NULL, MHD_OPTION_END);
    assert_non_null(d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(ep, ep_size, "http://127.0.0.1:%u/v1", (unsigned)info->port);
    *b = backend;
    b->endpoint = ep;
    return d;
}

/* A 1x1 PNG in base64, the image of the canned answers below. */
static const char png_b64[] = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVQI12P4"
                              "z8AAAAMBAQAYjZ2wAAAAAElFTkSuQmCC";

/* The answer is read with a structural scan, not a DOM: each shape a vendor
 * may send, well or badly formed, gives the images or the error it should. */
static void
test_answer_shapes(void **state)
{
    char ep[64];
    struct ig_backend_cfg b;
    struct MHD_Daemon *d = canned_start(&b, ep, sizeof ep);
    /* The PNG, plainly and with two of its letters written as \u escapes
     * (valid JSON a vendor may send: the decoder must resolve them). */
    char plain[512], escaped[512], two[1024];
    snprintf(plain, sizeof plain,
             "{\"created\":1,\"data\":[{\"b64_json\":\"%s\"}],\"usage\":{\"total_tokens\":9},"
             "\"output_format\":\"png\",\"size\":\"1024x1024\",\"quality\":\"low\"}",
             png_b64);
    snprintf(escaped, sizeof escaped, "{\"data\":[{\"b64_json\":\"%s\"}]}", png_b64);
    char *at = strstr(escaped, "I12P4");
    assert_non_null(at);
    snprintf(two, sizeof two, "{\"data\":[{\"b64_json\":\"%s\"},{\"revised_prompt\":\"x\","
             "\"b64_json\":\"%s\"}],\"data2\":[1,[2,{\"x\":\"]\"}]]}", png_b64, png_b64);
    struct ig_buf esc = {0};
    assert_int_equal(ig_buf_append(&esc, escaped, (size_t)(at - escaped)), 0);
    assert_int_equal(ig_buf_puts(&esc, "I12\\u0050\\u0034"), 0);  /* "P4", as \u escapes */
    assert_int_equal(ig_buf_puts(&esc, at + 5), 0);
    struct {
        const char *answer;
        const char *code;      /* NULL: success */
        int images;
    } cases[] = {
        {plain, NULL, 1},
        {esc.data, NULL, 1},
        {two, NULL, 2},
        {"{\"data\":[]}", "malformed_response", 0},
        {"{\"data\":{\"b64_json\":\"x\"}}", "malformed_response", 0},
        {"{\"data\":[\"iVBOR\"]}", "malformed_response", 0},
        {"{\"data\":[{\"revised_prompt\":\"no image\"}]}", "malformed_response", 0},
        {"{\"data\":[{\"b64_json\":\"not base64!\"}]}", "malformed_response", 0},
        {"{\"data\":[{\"b64_json\":12}]}", "malformed_response", 0},
        {"{\"data\":[{\"b64_json\":\"iVBO", "malformed_response", 0},
        {"[{\"b64_json\":\"iVBO\"}]", "malformed_response", 0},
        {"", "malformed_response", 0},
        {"{\"created\":1}", "malformed_response", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        canned = cases[i].answer;
        struct be_request req = {.cfg = &b, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
        struct be_call *c = run(&req);
        if (!cases[i].code) {
            if (!c->result.ok)
                fail_msg("case %zu: %s", i, c->result.err.message);
            assert_int_equal(c->result.n_images, cases[i].images);
            struct img_info inf;
            struct ig_error e = {0};
            assert_int_equal(img_probe(c->result.images[0].data, c->result.images[0].len, NULL,
                                       &inf, &e), 0);
            assert_int_equal(inf.width, 1);
        } else {
            assert_false(c->result.ok);
            if (strcmp(c->result.err.code, cases[i].code) != 0)
                fail_msg("case %zu: %s, wanted %s", i, c->result.err.code, cases[i].code);
        }
        if (i == 0) {
            json_t *p = c->result.provenance;
            assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "usage"),
                                                                "total_tokens")), 9);
            assert_string_equal(json_string_value(json_object_get(p, "size")), "1024x1024");
            assert_string_equal(json_string_value(json_object_get(p, "quality")), "low");
            assert_string_equal(c->result.images[0].mime, "image/png");
        }
        be_call_free(c);
    }
    ig_buf_free(&esc);
    MHD_stop_daemon(d);
}

/* A generation on the canned vendor, relayed (relay_body sent as it is)
 * when relay_body is set; it must succeed, label naming the case. */
static struct be_call *
run_generation(struct ig_backend_cfg *b, const char *relay_body, const char *label)
{
    struct be_request req = {.cfg = b, .cls = IG_CLASS_GENERATE, .prompt = "x", .n = 1};
    if (relay_body) {
        req.relay_body = relay_body;
        req.relay_len = strlen(relay_body);
    }
    struct be_call *c = run(&req);
    if (!c->result.ok)
        fail_msg("%s: %s", label, c->result.err.message);
    return c;
}

/* A relay's provenance is written as text, not built as a tree: the same
 * members with the same values as the tree a durable call builds from the
 * same answer -- a usage object laid out with whitespace (dropped) or
 * holding non-ASCII text (through jansson), strings with escapes, UTF-8,
 * and bytes that are not UTF-8 (dropped, as the tree drops them) -- apart
 * from vendor_ms, a time. When something wants the tree after the text
 * began (a note), the text becomes the tree, with nothing lost. */
static void
test_relay_provenance_text_is_the_tree(void **state)
{
    char ep[64];
    struct ig_backend_cfg b;
    struct MHD_Daemon *d = canned_start(&b, ep, sizeof ep);
    static const char *const tails[] = {
        ",\"usage\":{\"total_tokens\":9,\"input_tokens\":2},\"size\":\"1024x1024\","
        "\"quality\":\"low\",\"output_format\":\"png\",\"background\":\"opaque\"",
        ",\"usage\" : {\n  \"total_tokens\" : 9 ,\n  \"details\" : {\"a b\" : [1, 2.5e3, true,"
        " null, \"x\\\" \\\\ y\"]}\r\n}\t,\"quality\":\"lo\\u0077\\n\"",
        ",\"usage\":{\"caf\xc3\xa9\":1},\"quality\":\"h\xc3\xa9\"",
        ",\"usage\":{\"n\":1},\"quality\":\"\xff\xfe\",\"size\":\"a\\u00e9\"",
        "",
    };
    static const char client[] = "{\"prompt\":\"x\"}";
    for (size_t k = 0; k < sizeof tails / sizeof tails[0]; k++) {
        struct ig_buf answer = {0};
        assert_int_equal(ig_buf_printf(&answer, "{\"data\":[{\"b64_json\":\"%s\"}]%s}", png_b64,
                                       tails[k]), 0);
        canned = answer.data;
        json_t *got[2];
        for (int relay = 0; relay < 2; relay++) {
            char label[48];
            snprintf(label, sizeof label, "answer %zu relay %d", k, relay);
            struct be_call *c = run_generation(&b, relay ? client : NULL, label);
            if (relay) {
                assert_null(c->result.provenance);
                struct ig_buf whole = {0};
                assert_int_equal(ig_buf_printf(&whole, "{%s}", c->result.provenance_text.data),
                                 0);
                json_error_t je;
                got[1] = json_loadb(whole.data, whole.len, 0, &je);
                if (!got[1])
                    fail_msg("answer %zu: the text is not JSON (%s): %s", k, je.text, whole.data);
                ig_buf_free(&whole);
                /* Wanted as a tree now: the text becomes it. */
                json_t *tree = be_provenance(c);
                assert_int_equal(c->result.provenance_text.len, 0);
                assert_true(json_equal(tree, got[1]));
            } else {
                assert_int_equal(c->result.provenance_text.len, 0);
                got[0] = json_deep_copy(c->result.provenance);
            }
            be_call_free(c);
        }
        for (int i = 0; i < 2; i++) {
            assert_true(json_is_integer(json_object_get(got[i], "vendor_ms")));
            json_object_del(got[i], "vendor_ms");
        }
        if (!json_equal(got[0], got[1])) {
            char *t0 = json_dumps(got[0], JSON_SORT_KEYS), *t1 = json_dumps(got[1], JSON_SORT_KEYS);
            fail_msg("answer %zu:\n tree %s\n text %s", k, t0, t1);
        }
        if (k == 1)
            assert_string_equal(json_string_value(json_object_get(got[1], "quality")), "low\n");
        if (k == 3)
            assert_null(json_object_get(got[1], "quality"));
        json_decref(got[0]);
        json_decref(got[1]);
        ig_buf_free(&answer);
    }
    MHD_stop_daemon(d);
}

/* A relayed answer goes back to the client as it came: a PNG in it is
 * decoded only as far as its header, and its whole size is kept beside;
 * a JPEG, and any answer outside the relay, is decoded whole. */
static void
test_relay_reads_png_heads(void **state)
{
    char ep[64];
    struct ig_backend_cfg b;
    struct MHD_Daemon *d = canned_start(&b, ep, sizeof ep);
    struct img *noise = img_new(96, 64);
    assert_non_null(noise);
    unsigned seed = 7;
    for (size_t i = 0; i < 96 * 64 * 4; i++)
        noise->rgba[i] = (unsigned char)rand_r(&seed);
    static const char client[] = "{\"prompt\":\"x\",\"model\":\"m\"}";
    enum img_format fmts[] = {IMG_FMT_PNG, IMG_FMT_JPEG};
    for (int k = 0; k < 2; k++) {
        struct ig_buf enc = {0}, b64 = {0}, answer = {0};
        struct ig_error err = {0};
        assert_int_equal(img_encode(noise, fmts[k], 90, NULL, &enc, &err), 0);
        assert_true(enc.len > 4096);
        assert_int_equal(be_base64_encode(enc.data, enc.len, &b64), 0);
        assert_int_equal(ig_buf_printf(&answer, "{\"data\":[{\"b64_json\":\"%s\"}]}", b64.data), 0);
        canned = answer.data;
        for (int relay = 0; relay < 2; relay++) {
            char label[48];
            snprintf(label, sizeof label, "fmt %d relay %d", k, relay);
            struct be_call *c = run_generation(&b, relay ? client : NULL, label);
            struct be_image *im = &c->result.images[0];
            if (relay && k == 0) {
                assert_int_equal(im->size, enc.len);
                assert_true(im->len < enc.len);
                assert_memory_equal(im->data, enc.data, im->len);
                assert_int_equal(c->result.raw.len, answer.len);   /* the answer, as it came */
            } else {
                assert_int_equal(im->size, 0);
                assert_int_equal(im->len, enc.len);
                assert_memory_equal(im->data, enc.data, enc.len);
            }
            struct img_info inf;
            assert_int_equal(img_probe(im->data, im->len, NULL, &inf, &err), 0);
            assert_int_equal(inf.width, 96);
            be_call_free(c);
        }
        ig_buf_free(&enc);
        ig_buf_free(&b64);
        ig_buf_free(&answer);
    }
    img_free(noise);
    MHD_stop_daemon(d);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_edit_changes_masked_region_only),
        cmocka_unit_test(test_vendor_validation_errors),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_retry_after_is_read),
        cmocka_unit_test(test_transport_faults),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_concurrency_on_one_thread),
        cmocka_unit_test(test_driven_loop),
        cmocka_unit_test(test_answer_shapes),
        cmocka_unit_test(test_relay_reads_png_heads),
        cmocka_unit_test(test_relay_provenance_text_is_the_tree),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
