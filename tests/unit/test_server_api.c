/* SPDX-License-Identifier: MIT */
/* test_server_api.c -- the HTTP API over real loopback connections: the
 * native job API, the OpenAI-compatible endpoints, tenant keys and
 * isolation, signed file URLs, and hostile requests (huge, malformed, deep,
 * unknown fields, bad images). The job engine underneath runs with an
 * executor double that answers every attempt with a real PNG; adapters are
 * tested against the vendor emulators elsewhere. */
#include "testutil.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "route/gateway.h"
#include "server/server.h"
#include "store/store.h"

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* key "alpha-key" and "beta-key", hashed */
static const char config_yaml[] =
    "limits: {max_body_bytes: 2MiB, max_header_bytes: 8KiB, max_json_depth: 8, job_timeout_ms: 10000}\n"
    "fetch: {allow_http: true, allow_loopback: true}\n"
    "backends:\n"
    "  - name: fake\n"
    "    adapter: openai\n"
    "    endpoint: http://127.0.0.1:1/v1\n"
    "    model: gpt-image-1\n"
    "    contract:\n"
    "      classes: [generate, edit, upscale]\n"
    "      scales: [2]\n"
    "      supports: [mask]\n"
    "      grammar: natural-language\n"
    "      tier: fingerprint\n"
    "      license: {id: proprietary, flags: [commercial]}\n"
    "      price: {model: per-image, usd: 0.01}\n"
    "tenants:\n"
    "  - name: alpha\n"
    "    keys: [\"sha256:KEYA\"]\n"
    "    webhook_secret: env:IG_TEST_HOOK_SECRET\n"
    "  - name: beta\n"
    "    keys: [\"sha256:KEYB\"]\n"
    "ladders:\n"
    "  - {name: g, class: generate, rungs: [{backend: fake}]}\n"
    "  - {name: e, class: edit, rungs: [{backend: fake}]}\n"
    "  - {name: u, class: upscale, rungs: [{backend: fake}]}\n";

static struct ig_buf png;
static char base[128];
static struct ig_config *cfg;
static struct store *st;
static struct ig_metrics *metrics;
static struct route_gateway *gw;
static struct srv *server;
static char dir[64];
static int attempts_seen;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

struct pending {
    route_done_fn done;
    void *cookie;
};

static void *
answer(void *arg)
{
    struct pending *p = arg;
    struct route_outcome o;
    memset(&o, 0, sizeof o);
    o.retry_after_ms = -1;
    o.cost_usd = -1;
    o.vendor_charged = 1;
    /* Not the test's thread: a failure goes back as the attempt's, and the
     * test's own asserts see it; a cmocka assert here would not. */
    o.images[0].data = ig_malloc(png.len);
    o.provenance = ig_strdup("{\"usage\":{\"total_tokens\":10}}");
    if (o.images[0].data && o.provenance) {
        o.ok = 1;
        memcpy(o.images[0].data, png.data, png.len);
        o.images[0].len = png.len;
        strcpy(o.images[0].mime, "image/png");
        o.n_images = 1;
    } else {
        ig_error_set(&o.err, 500, "out_of_memory", "the fake vendor is out of memory");
    }
    p->done(p->cookie, &o);
    ig_free(p);
    return NULL;
}

static int
exec_start(void *ud, const struct route_attempt *a, route_done_fn done, void *cookie,
           struct ig_error *err)
{
    pthread_mutex_lock(&mu);
    attempts_seen++;
    pthread_mutex_unlock(&mu);
    struct pending *p = ig_calloc(1, sizeof *p);
    if (!p)
        return ig_error_set(err, 500, "out_of_memory", "the fake vendor is out of memory");
    p->done = done;
    p->cookie = cookie;
    pthread_t t;
    if (pthread_create(&t, NULL, answer, p) != 0) {
        ig_free(p);
        return ig_error_set(err, 500, "threads", "the fake vendor cannot start a thread");
    }
    pthread_detach(t);
    return 0;
}

static void
hash_key(const char *key, char out[72])
{
    unsigned char md[32];
    unsigned n;
    EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
setup(void **state)
{
    ig_log_setup(NULL, IG_LOG_ERROR);
    char ha[72], hb[72];
    hash_key("alpha-key", ha);
    hash_key("beta-key", hb);
    /* Put the real hashes where the placeholders KEYA and KEYB stand. */
    char final[4200];
    const char *a = strstr(config_yaml, "KEYA"), *b = strstr(config_yaml, "KEYB");
    snprintf(final, sizeof final, "%.*s%s%.*s%s%s", (int)(a - config_yaml), config_yaml, ha,
             (int)(b - a - 4), a + 4, hb, b + 4);
    struct ig_error err = {0};
    cfg = ig_config_load("api.yaml", final, strlen(final), NULL, &err);
    if (!cfg) {
        print_error("config: %s\n", err.message);
        return -1;
    }
    snprintf(dir, sizeof dir, "/tmp/igapi-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    st = store_open(dir, &err);
    metrics = ig_metrics_new();
    struct route_executor ex = {.start = exec_start};
    gw = route_gateway_new(cfg, st, metrics, &ex, NULL, 2, &err);
    struct srv_deps deps = {.gw = gw, .store = st, .metrics = metrics, .signing_key = "k"};
    server = srv_start(cfg, &deps, "127.0.0.1:0", &err);
    if (!server) {
        print_error("server: %s\n", err.message);
        return -1;
    }
    snprintf(base, sizeof base, "http://%s", srv_address(server));
    struct img *im = img_new(16, 16);
    for (int i = 0; i < 256; i++)
        memcpy(im->rgba + 4 * i, "\x10\x80\xf0\xff", 4);
    img_encode(im, IMG_FMT_PNG, 0, NULL, &png, &err);
    img_free(im);
    return 0;
}

static int
teardown(void **state)
{
    srv_stop(server);
    for (int i = 0; i < 100 && route_gateway_active(gw) > 0; i++)
        usleep(20000);
    route_gateway_free(gw);
    ig_metrics_free(metrics);
    store_close(st);
    ig_config_free(cfg);
    ig_buf_free(&png);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* ---- HTTP helper ------------------------------------------------------------ */

struct resp {
    long status;
    struct ig_buf body;
    char content_type[128];
    char license[256];
};

static size_t
collect(char *p, size_t size, size_t n, void *ud)
{
    return ig_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static size_t
header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = size * n;
    if (len > 14 && strncasecmp(p, "Content-Type: ", 14) == 0)
        snprintf(r->content_type, sizeof r->content_type, "%.*s", (int)(len - 16), p + 14);
    if (len > 21 && strncasecmp(p, "X-Imagegate-License: ", 21) == 0)
        snprintf(r->license, sizeof r->license, "%.*s", (int)(len - 23), p + 21);
    return len;
}

static json_t *
call(const char *method, const char *path, const char *key, const char *ctype, const char *body,
     size_t body_len, const char *extra_header, struct resp *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *h = NULL;
    char line[256];
    if (key) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, line);
    }
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
    }
    if (extra_header)
        h = curl_slist_append(h, extra_header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("curl %s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out->body.len ? json_loadb(out->body.data, out->body.len, 0, NULL) : NULL;
}

static json_t *
post_json(const char *path, const char *key, const char *body, const char *extra,
          struct resp *out)
{
    return call("POST", path, key, "application/json", body, strlen(body), extra, out);
}

static const char *
error_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static char *
png_b64(void)
{
    char *out = ig_malloc(4 * ((png.len + 2) / 3) + 1);
    assert_non_null(out);
    EVP_EncodeBlock((unsigned char *)out, (unsigned char *)png.data, (int)png.len);
    return out;
}

/* ---- Tests ---------------------------------------------------------------- */

static void
test_job_round_trip(void **state)
{
    char *b64 = png_b64();
    char body[4096];
    snprintf(body, sizeof body, "{\"class\":\"upscale\",\"scale\":2,\"input\":{\"b64\":\"%s\"}}", b64);
    ig_free(b64);
    struct resp r;
    json_t *j = post_json("/v1/jobs", "alpha-key", body, "Prefer: wait=10", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "succeeded");
    const char *id = json_string_value(json_object_get(j, "id"));
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    ig_buf_free(&r.body);
    json_t *g = call("GET", path, "alpha-key", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *out = json_array_get(json_object_get(g, "outputs"), 0);
    const char *url = json_string_value(json_object_get(out, "url"));
    assert_non_null(url);
    assert_string_equal(json_string_value(json_object_get(json_object_get(g, "provenance"),
                                                          "backend")), "fake");
    ig_buf_free(&r.body);

    /* The result bytes, with provenance headers. */
    snprintf(path, sizeof path, "/v1/jobs/%s/result", id);
    call("GET", path, "alpha-key", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "image/png");
    assert_int_equal(r.body.len, png.len);
    assert_memory_equal(r.body.data, png.data, png.len);
    assert_string_equal(r.license, "proprietary; commercial");
    ig_buf_free(&r.body);

    /* The signed file URL works without a key; tampering does not. */
    json_t *f = call("GET", url, NULL, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, png.len);
    ig_buf_free(&r.body);
    char bad[600];
    snprintf(bad, sizeof bad, "%s", url);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    f = call("GET", bad, NULL, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(error_code(f), "bad_signature");
    json_decref(f);
    ig_buf_free(&r.body);
    /* An expired time, even with a signature for another time, is refused. */
    const char *exp = strstr(url, "exp=");
    snprintf(bad, sizeof bad, "%.*sexp=1000&sig=%s", (int)(exp - url), url, strstr(url, "sig=") + 4);
    f = call("GET", bad, NULL, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 403);
    json_decref(f);
    ig_buf_free(&r.body);

    /* Another tenant cannot see the job, nor tell it exists. */
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    json_t *x = call("GET", path, "beta-key", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(error_code(x), "not_found");
    json_decref(x);
    ig_buf_free(&r.body);
    json_decref(g);
    json_decref(j);
}

static void
test_auth(void **state)
{
    struct resp r;
    json_t *j = post_json("/v1/jobs", NULL, "{}", NULL, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(error_code(j), "unauthorized");
    json_decref(j);
    ig_buf_free(&r.body);
    j = post_json("/v1/jobs", "wrong", "{}", NULL, &r);
    assert_int_equal(r.status, 401);
    json_decref(j);
    ig_buf_free(&r.body);
    /* The health check needs no key. */
    j = call("GET", "/healthz", NULL, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    json_decref(j);
    ig_buf_free(&r.body);
}

static void
test_hostile_bodies(void **state)
{
    struct resp r;
    struct { const char *body; long status; const char *code; } cases[] = {
        {"{\"class\":", 400, "bad_json"},
        {"[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]", 400, "json_too_deep"},
        {"{\"class\":\"generate\",\"prompt\":\"x\",\"colour\":1}", 400, "invalid_request"},
        {"{\"class\":\"generate\",\"prompt\":5}", 400, "invalid_request"},
        {"{\"class\":\"teleport\",\"prompt\":\"x\"}", 400, "invalid_request"},
        {"{\"class\":\"upscale\",\"input\":{\"b64\":\"!!notbase64!!\"}}", 400, "invalid_request"},
        {"{\"class\":\"upscale\",\"input\":{\"b64\":\"aGVsbG8gd29ybGQ=\"}}", 415, "unsupported_format"},
        {"{\"class\":\"upscale\",\"input\":{\"url\":\"http://10.0.0.1/x.png\"}}", 400, "url_refused"},
        {"{\"class\":\"upscale\",\"input\":{\"url\":\"http://169.254.169.254/latest\"}}", 400, "url_refused"},
        {"{\"class\":\"upscale\",\"input\":{\"url\":\"file:///etc/passwd\"}}", 400, "url_refused"},
        {"{\"class\":\"generate\",\"prompt\":\"x\",\"webhook\":{\"url\":\"http://10.0.0.1/h\"}}", 400, "url_refused"},
        {"{\"class\":\"generate\",\"prompt\":\"x\",\"webhook\":{\"u\":1}}", 400, "invalid_request"},
        {"", 400, "bad_json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = post_json("/v1/jobs", "alpha-key", cases[i].body, NULL, &r);
        if (r.status != cases[i].status || !error_code(j) ||
            strcmp(error_code(j), cases[i].code) != 0)
            fail_msg("case %zu: %ld %s", i, r.status, r.body.data ? r.body.data : "");
        assert_non_null(json_object_get(json_object_get(j, "error"), "attempts"));
        json_decref(j);
        ig_buf_free(&r.body);
    }
    /* Over the body limit: refused from Content-Length, before reading it. */
    size_t big = 3u << 20;
    char *huge = ig_malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    json_t *j = call("POST", "/v1/jobs", "alpha-key", "application/json", huge, big, NULL, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(error_code(j), "body_too_large");
    json_decref(j);
    ig_buf_free(&r.body);
    ig_free(huge);
    /* Headers within limits.max_header_bytes (8 KiB here) are read; over it,
     * refused with 431 before any handler runs. */
    char *pad = ig_malloc(12 << 10);
    assert_non_null(pad);
    for (size_t kib = 4; kib <= 12; kib += 8) {
        int n = snprintf(pad, 12 << 10, "X-Pad: ");
        memset(pad + n, 'a', (kib << 10) - (size_t)n);
        pad[(kib << 10) - 1] = '\0';
        j = call("GET", "/v2/nothing", "alpha-key", NULL, NULL, 0, pad, &r);
        assert_int_equal(r.status, kib == 4 ? 404 : 431);
        json_decref(j);
        ig_buf_free(&r.body);
    }
    ig_free(pad);
    /* Wrong media type. */
    j = call("POST", "/v1/jobs", "alpha-key", "text/plain", "{}", 2, NULL, &r);
    assert_int_equal(r.status, 415);
    json_decref(j);
    ig_buf_free(&r.body);
    /* Unknown path and method. */
    j = call("GET", "/v2/nothing", "alpha-key", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    json_decref(j);
    ig_buf_free(&r.body);
    j = call("PUT", "/v1/jobs", "alpha-key", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 405);
    json_decref(j);
    ig_buf_free(&r.body);
}

static void
test_openai_generations(void **state)
{
    struct resp r;
    json_t *j = post_json("/v1/images/generations", "alpha-key",
                          "{\"model\":\"gpt-image-1\",\"prompt\":\"a blue square\","
                          "\"size\":\"1024x1024\",\"background\":\"opaque\","
                          "\"moderation\":\"low\"}", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *d = json_array_get(json_object_get(j, "data"), 0);
    const char *b64 = json_string_value(json_object_get(d, "b64_json"));
    assert_non_null(b64);
    unsigned char raw[4096];
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)strlen(b64));
    assert_true(n >= (int)png.len);
    assert_memory_equal(raw, png.data, png.len);
    assert_true(json_integer_value(json_object_get(j, "created")) > 1700000000);
    assert_string_equal(json_string_value(json_object_get(j, "size")), "16x16");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                        "total_tokens")), 10);
    json_decref(j);
    ig_buf_free(&r.body);
    /* response_format=url gives a signed URL. */
    j = post_json("/v1/images/generations", "alpha-key",
                  "{\"prompt\":\"x\",\"response_format\":\"url\"}", NULL, &r);
    assert_int_equal(r.status, 200);
    const char *url = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"),
                                                                       0), "url"));
    assert_non_null(url);
    assert_non_null(strstr(url, "/v1/files/"));
    json_decref(j);
    ig_buf_free(&r.body);
    j = post_json("/v1/images/generations", "alpha-key", "{\"model\":\"gpt-image-1\"}", NULL, &r);
    assert_int_equal(r.status, 400);
    json_decref(j);
    ig_buf_free(&r.body);
    j = post_json("/v1/images/generations", "alpha-key", "{\"prompt\":\"x\",\"stream\":true}",
                  NULL, &r);
    assert_int_equal(r.status, 400);
    json_decref(j);
    ig_buf_free(&r.body);
}

/* POSTs a form to /v1/images/edits as tenant alpha; the status, and the
 * answer into body. */
static long
post_form(curl_mime *mime, CURL *c, struct ig_buf *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/images/edits", base);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer alpha-key");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return status;
}

static void
test_openai_edits_multipart(void **state)
{
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(mime);
    curl_mime_name(p, "image[]");
    curl_mime_filename(p, "in.png");
    curl_mime_type(p, "image/png");
    curl_mime_data(p, png.data, png.len);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "mask");
    curl_mime_filename(p, "mask.png");
    curl_mime_data(p, png.data, png.len);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "prompt");
    curl_mime_data(p, "make it green", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "n");
    curl_mime_data(p, "1", CURL_ZERO_TERMINATED);
    struct ig_buf body = {0};
    long status = post_form(mime, c, &body);
    if (status != 200)
        fail_msg("edits: %ld %s", status, body.data);
    json_t *j = json_loadb(body.data, body.len, 0, NULL);
    assert_non_null(json_object_get(json_array_get(json_object_get(j, "data"), 0), "b64_json"));
    json_decref(j);
    ig_buf_free(&body);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    /* Edits without an image, and as JSON, are refused. */
    struct resp r;
    j = post_json("/v1/images/edits", "alpha-key", "{\"prompt\":\"x\"}", NULL, &r);
    assert_int_equal(r.status, 415);
    json_decref(j);
    ig_buf_free(&r.body);
    /* A form of more fields than a request keeps (24): refused whole. */
    c = curl_easy_init();
    mime = curl_mime_init(c);
    for (int i = 0; i < 25; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        p = curl_mime_addpart(mime);
        curl_mime_name(p, name);
        curl_mime_data(p, "v", CURL_ZERO_TERMINATED);
    }
    status = post_form(mime, c, &body);
    j = json_loadb(body.data, body.len, 0, NULL);
    if (status != 400 || !j)
        fail_msg("a form of 25 fields: %ld %.*s", status, (int)body.len, body.data);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "too_many_parts");
    json_decref(j);
    ig_buf_free(&body);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
}

static void
test_idempotency_header(void **state)
{
    pthread_mutex_lock(&mu);
    int before = attempts_seen;
    pthread_mutex_unlock(&mu);
    struct resp r;
    const char *body = "{\"class\":\"generate\",\"prompt\":\"only once\"}";
    json_t *a = post_json("/v1/jobs", "alpha-key", body, "Idempotency-Key: abc-1", &r);
    assert_true(r.status == 202 || r.status == 200);
    ig_buf_free(&r.body);
    json_t *b = post_json("/v1/jobs", "alpha-key", body, "Idempotency-Key: abc-1", &r);
    ig_buf_free(&r.body);
    assert_string_equal(json_string_value(json_object_get(a, "id")),
                        json_string_value(json_object_get(b, "id")));
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", json_string_value(json_object_get(a, "id")));
    json_t *c = call("GET", path, "alpha-key", NULL, NULL, 0, "Prefer: wait=5", &r);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "succeeded");
    ig_buf_free(&r.body);
    pthread_mutex_lock(&mu);
    assert_int_equal(attempts_seen - before, 1);
    pthread_mutex_unlock(&mu);
    json_t *d = post_json("/v1/jobs", "alpha-key", "{\"class\":\"generate\",\"prompt\":\"else\"}",
                          "Idempotency-Key: abc-1", &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(error_code(d), "idempotency_conflict");
    ig_buf_free(&r.body);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
}

/* ---- A receiver for webhooks ------------------------------------------------ */

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static char hook_body[65536], hook_sig[256];
static int hook_calls;

static enum MHD_Result
hook_serve(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *data, size_t *size, void **req)
{
    static struct ig_buf body;
    if (!*req) {
        *req = c;
        ig_buf_reset(&body);
        return MHD_YES;
    }
    if (*size) {
        ig_buf_append(&body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&hook_mu);
    hook_calls++;
    snprintf(hook_body, sizeof hook_body, "%s", body.data ? body.data : "");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Imagegate-Signature");
    snprintf(hook_sig, sizeof hook_sig, "%s", sig ? sig : "");
    pthread_mutex_unlock(&hook_mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 204, r);
    MHD_destroy_response(r);
    return ret;
}

static void
test_webhook_signed(void **state)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            hook_serve, NULL, MHD_OPTION_END);
    assert_non_null(d);
    int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    char body[256];
    snprintf(body, sizeof body,
             "{\"class\":\"generate\",\"prompt\":\"hook me\",\"webhook\":{\"url\":"
             "\"http://127.0.0.1:%d/hook\"}}", port);
    struct resp r;
    json_t *j = post_json("/v1/jobs", "alpha-key", body, "Prefer: wait=5", &r);
    assert_int_equal(r.status, 200);
    const char *id = json_string_value(json_object_get(j, "id"));
    int calls = 0;
    for (int i = 0; i < 100 && !calls; i++) {
        usleep(20000);
        pthread_mutex_lock(&hook_mu);
        calls = hook_calls;
        pthread_mutex_unlock(&hook_mu);
    }
    assert_int_equal(calls, 1);
    json_t *hook = json_loads(hook_body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(hook, "id")), id);
    assert_string_equal(json_string_value(json_object_get(hook, "state")), "succeeded");
    /* t=<time>,v1=HMAC-SHA256(secret, "<time>.<body>") */
    long t = 0;
    char v1[65] = "";
    assert_int_equal(sscanf(hook_sig, "t=%ld,v1=%64s", &t, v1), 2);
    char signed_part[70000];
    snprintf(signed_part, sizeof signed_part, "%ld.%s", t, hook_body);
    unsigned char mac[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), "hook-secret", 11, (unsigned char *)signed_part, strlen(signed_part), mac,
         &n);
    char want[65];
    for (unsigned i = 0; i < n; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(v1, want);
    json_decref(hook);
    json_decref(j);
    ig_buf_free(&r.body);
    MHD_stop_daemon(d);
    /* The tenant without a webhook secret cannot ask for webhooks. */
    j = post_json("/v1/jobs", "beta-key", body, NULL, &r);
    assert_int_equal(r.status, 400);
    json_decref(j);
    ig_buf_free(&r.body);
}

/* An input image by URL: here, a signed file URL of this very gateway. */
static void
test_url_input(void **state)
{
    char *b64 = png_b64();
    char body[4096];
    snprintf(body, sizeof body, "{\"class\":\"upscale\",\"input\":{\"b64\":\"%s\"}}", b64);
    ig_free(b64);
    struct resp r;
    json_t *j = post_json("/v1/jobs", "alpha-key", body, "Prefer: wait=5", &r);
    const char *url = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "outputs"), 0), "url"));
    assert_non_null(url);
    char b2[1024];
    snprintf(b2, sizeof b2, "{\"class\":\"upscale\",\"input\":{\"url\":\"%s%s\"}}", base, url);
    ig_buf_free(&r.body);
    json_t *k = post_json("/v1/jobs", "alpha-key", b2, "Prefer: wait=5", &r);
    if (r.status != 200)
        fail_msg("url input: %ld %s", r.status, r.body.data);
    assert_string_equal(json_string_value(json_object_get(k, "state")), "succeeded");
    json_decref(k);
    json_decref(j);
    ig_buf_free(&r.body);
    /* A URL answering 404 is a clear error. */
    snprintf(b2, sizeof b2, "{\"class\":\"upscale\",\"input\":{\"url\":\"%s/v1/nothing\"}}", base);
    k = post_json("/v1/jobs", "alpha-key", b2, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(k), "fetch_failed");
    json_decref(k);
    ig_buf_free(&r.body);
}

/* A URL server that answers with the test PNG after 1 s. */
static enum MHD_Result
slow_png(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
         const char *version, const char *data, size_t *size, void **state)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    (void)size;
    if (!*state) {
        *state = conn;
        return MHD_YES;
    }
    usleep(1000 * 1000);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(png.len, png.data, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "image/png");
    enum MHD_Result ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

struct slow_job {
    char body[512];
    struct resp r;
    json_t *j;
};

static void *
post_slow_job(void *arg)
{
    struct slow_job *sj = arg;
    sj->j = post_json("/v1/jobs", "alpha-key", sj->body, "Prefer: wait=5", &sj->r);
    return NULL;
}

/* Two jobs whose inputs download for a second each, one per HTTP thread:
 * the downloads run on the fetch workers, so both threads still answer
 * /healthz at once; then both jobs succeed. */
static void
test_url_input_does_not_hold_the_thread(void **state)
{
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                         NULL, NULL, slow_png, NULL, MHD_OPTION_END);
    assert_non_null(d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    struct slow_job jobs[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        snprintf(jobs[i].body, sizeof jobs[i].body,
                 "{\"class\":\"upscale\",\"input\":{\"url\":\"http://127.0.0.1:%u/in%d.png\"}}",
                 (unsigned)info->port, i);
        assert_int_equal(pthread_create(&t[i], NULL, post_slow_job, &jobs[i]), 0);
    }
    usleep(200 * 1000);   /* both requests are in, both downloads under way */
    for (int k = 0; k < 4; k++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        struct resp h;
        json_decref(call("GET", "/healthz", NULL, NULL, NULL, 0, NULL, &h));
        clock_gettime(CLOCK_MONOTONIC, &b);
        long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        assert_int_equal(h.status, 200);
        if (ms > 400)
            fail_msg("/healthz took %ld ms while two URL inputs downloaded", ms);
        ig_buf_free(&h.body);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].r.status != 200)
            fail_msg("job %d: %ld %s", i, jobs[i].r.status, jobs[i].r.body.data);
        assert_string_equal(json_string_value(json_object_get(jobs[i].j, "state")), "succeeded");
        json_decref(jobs[i].j);
        ig_buf_free(&jobs[i].r.body);
    }
    MHD_stop_daemon(d);
}

static void
test_metrics_parse(void **state)
{
    struct resp r;
    call("GET", "/metrics", NULL, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    /* Every sample line is NAME{labels} VALUE with a finite number. */
    char *save = NULL;
    int samples = 0;
    for (char *line = strtok_r(r.body.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        char *end;
        strtod(sp + 1, &end);
        assert_true(*end == '\0');
        samples++;
    }
    assert_true(samples > 10);
    ig_buf_free(&r.body);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_round_trip),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_hostile_bodies),
        cmocka_unit_test(test_openai_generations),
        cmocka_unit_test(test_openai_edits_multipart),
        cmocka_unit_test(test_idempotency_header),
        cmocka_unit_test(test_webhook_signed),
        cmocka_unit_test(test_url_input),
        cmocka_unit_test(test_url_input_does_not_hold_the_thread),
        cmocka_unit_test(test_metrics_parse),
    };
    setenv("IG_TEST_HOOK_SECRET", "hook-secret", 1);
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
