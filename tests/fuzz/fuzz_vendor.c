/* SPDX-License-Identifier: MIT */
/* fuzz_vendor.c -- libFuzzer target for the ten vendor adapters' answer
 * parsers: what a vendor (or something in its place) sends back is the
 * least trusted input the gateway reads. No network: a call is built for
 * one of the embedded default config's vendor backends, its first exchange
 * built by the protocol (submit, or relay for a relayed generation), and
 * then the input supplies the answers, one per exchange, through the slot
 * the loop would pick (be_call_dispatch).
 *
 * The input: byte 0 picks the backend, byte 1 the class (among the
 * contract's), the seed, n and whether to relay; then answers, each a
 * status index, a Content-Type index, a header index, a 2-byte length and
 * that many body bytes. A finished call, settled as the loop settles it,
 * is a success whose images all have bytes and an image type, or an error
 * with a code; no input may crash, read out of bounds or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
    0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8,
    0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static const char relay_body[] =
    "{\"model\":\"gpt-image-1\",\"prompt\":\"a lighthouse\",\"n\":1,\"size\":\"1024x1024\"}";

static const long statuses[] = {200, 200, 200, 200, 201, 202, 302, 400, 401, 402,
                                403, 404, 409, 413, 422, 429, 500, 502, 503};
static const char *const types[] = {"application/json", "application/json; charset=utf-8",
                                    "image/png", "image/jpeg", "image/webp", "text/plain",
                                    "", "text/html", "application/octet-stream"};
static const char *const headers[] = {NULL, "Retry-After: 2", "retry-after-ms: 1500",
                                      "x-request-id: req_1", "Retry-After: -5",
                                      "x-emulator-fingerprint: fp-1"};

#define N(a) (sizeof a / sizeof a[0])

static const struct ig_config *cfg;
static const struct ig_backend_cfg *vendors[32];
static size_t n_vendors;

static void
no_save(void *ud, const char *json)
{
    (void)ud;
    (void)json;
}

static void
check(int ok)
{
    if (!ok)
        abort();
}

static void
setup(void)
{
    struct ig_config_diags d = {0};
    struct ig_error err = {0};
    struct ig_config *c = ig_config_load_default(&d, &err);
    ig_config_diags_free(&d);
    check(c != NULL);
    for (size_t i = 0; i < c->n_backends && n_vendors < N(vendors); i++)
        if (be_find(c->backends[i].adapter))
            vendors[n_vendors++] = &c->backends[i];
    check(n_vendors > 0);
    cfg = c;
}

/* The first exchange, as be_call_start builds it; 0 when the protocol
 * built one. */
static int
start(struct be_call *c, const struct ig_backend_cfg *b, uint8_t how)
{
    unsigned classes = b->contract.classes;
    enum ig_class want[IG_CLASS_COUNT];
    int n = 0;
    for (int k = 0; k < IG_CLASS_COUNT; k++)
        if (classes & IG_CLASS_BIT(k))
            want[n++] = (enum ig_class)k;
    check(n > 0);
    enum ig_class cls = want[how % n];
    c->proto = be_find(b->adapter);
    c->req = (struct be_request){
        .cfg = b,
        .cls = cls,
        .prompt = "a lighthouse on a cliff",
        .negative_prompt = how & 0x10 ? "blurry" : NULL,
        .width = 1024,
        .height = 1024,
        .n = how & 0x20 ? 2 : 1,
        .scale = 2,
        .seed = 42,
        .has_seed = (how & 0x40) != 0,
        .job_id = "job_fuzz",
        .attempt = 1,
        .max_body_bytes = 1 << 20,
        .max_json_depth = 32,
    };
    if (cls != IG_CLASS_GENERATE) {
        c->req.input = png;
        c->req.input_len = sizeof png;
    }
    int relay = (how & 0x80) && cls == IG_CLASS_GENERATE && c->proto->relay;
    if (relay) {
        c->req.relay_body = relay_body;
        c->req.relay_len = sizeof relay_body - 1;
        c->req.relay_model_off = 9;
        c->req.relay_model_len = 13;
    }
    c->save = no_save;
    be_result_clear(&c->result);
    c->base = ig_strdup(b->endpoint ? b->endpoint : "http://127.0.0.1:1");
    c->credential = ig_strdup("sk-fuzz");
    c->easy = curl_easy_init();
    if (!c->base || !c->credential || !c->easy)
        return -1;
    return relay ? c->proto->relay(c) : c->proto->submit(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg)
        setup();
    if (size < 2)
        return 0;
    struct be_call *c = ig_calloc(1, sizeof *c);
    if (!c)
        return 0;
    if (start(c, vendors[data[0] % n_vendors], data[1]) != 0) {
        be_call_free(c);
        return 0;
    }
    const uint8_t *p = data + 2, *end = data + size;
    int done = 0;
    for (int step = 0; !done && step < 8 && end - p >= 5; step++) {
        size_t len = (size_t)p[3] | (size_t)p[4] << 8;
        const uint8_t *body = p + 5;
        if (len > (size_t)(end - body))
            len = (size_t)(end - body);
        ig_buf_reset(&c->x.answer);
        check(ig_buf_append(&c->x.answer, body, len) == 0);
        c->x.status = statuses[p[0] % N(statuses)];
        snprintf(c->x.content_type, sizeof c->x.content_type, "%s", types[p[1] % N(types)]);
        c->x.curl_code = CURLE_OK;
        ig_buf_reset(&c->x.answer_headers);
        const char *h = headers[p[2] % N(headers)];
        if (h)
            check(ig_buf_append(&c->x.answer_headers, h, strlen(h) + 1) == 0);
        p = body + len;
        curl_easy_reset(c->easy);
        done = be_call_dispatch(c) == BE_DONE;
    }
    if (done) {
        be_call_settle(c);
        check(c->result.ok || c->result.err.code[0]);
        for (int i = 0; c->result.ok && i < c->result.n_images; i++) {
            const struct be_image *im = &c->result.images[i];
            check(im->data && im->len > 0);
            check(strncmp(im->mime, "image/", 6) == 0 ||
                  strcmp(im->mime, "application/octet-stream") == 0);
        }
    }
    be_call_free(c);
    return 0;
}
