/* SPDX-License-Identifier: MIT */
/* openai.c -- OpenAI Images: generations as JSON, edits as multipart.
 *
 * POST {endpoint}/images/generations with {model, prompt, n, size, quality,
 * output_format, ...}; POST {endpoint}/images/edits as multipart with
 * image (or image[] for references), mask and the same fields as text.
 * Answers carry data[].b64_json (GPT image) or data[].url (DALL-E, fetched
 * at once: it expires). Errors are {"error":{"message","type","code"}};
 * moderation is a 400 with code moderation_blocked or
 * content_policy_violation; 429 with insufficient_quota is quota, not a
 * rate limit. The API takes no seed and no negative prompt: both are
 * dropped with a note. Parameters the gateway does not interpret
 * (vendor_params: background, moderation, output_compression, style, user,
 * input_fidelity) are sent as given. */
#include "backends/backend.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/jscan.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct openai_state {
    json_t *pending_urls;    /* data[].url still to download */
    size_t next_url;
    json_t *usage;
};

static void
openai_free_state(void *p)
{
    struct openai_state *s = p;
    if (!s)
        return;
    json_decref(s->pending_urls);
    json_decref(s->usage);
    ig_free(s);
}

static const char *
model_of(const struct be_call *c)
{
    const char *m = json_string_value(json_object_get(c->req.vendor_params, "model"));
    return c->req.cfg->model ? c->req.cfg->model : m ? m : "gpt-image-1";
}

static void
note_dropped(struct be_call *c)
{
    if (c->req.has_seed)
        be_note(c, "dropped", "seed %lld: the OpenAI Images API takes no seed", c->req.seed);
    if (c->req.negative_prompt && *c->req.negative_prompt)
        be_note(c, "dropped", "negative prompt: the OpenAI Images API takes none");
}

/* Fields of vendor_params that are sent as they are. */
static int
passthrough(const char *key)
{
    static const char *const keys[] = {"background", "moderation", "output_compression",
                                       "style", "user", "input_fidelity", "partial_images",
                                       NULL};
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

static int
openai_submit_generate(struct be_call *c)
{
    json_t *body = json_pack("{s:s,s:s,s:i}", "model", model_of(c), "prompt",
                             c->req.prompt ? c->req.prompt : "", "n", c->req.n > 0 ? c->req.n : 1);
    if (!body)
        return -1;
    if (c->req.width > 0 && c->req.height > 0) {
        char size[32];
        snprintf(size, sizeof size, "%dx%d", c->req.width, c->req.height);
        json_object_set_new(body, "size", json_string(size));
    }
    if (c->req.quality)
        json_object_set_new(body, "quality", json_string(c->req.quality));
    if (c->req.output_format)
        json_object_set_new(body, "output_format", json_string(c->req.output_format));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->req.vendor_params, key, v)
        if (passthrough(key))
            json_object_set(body, key, v);
    if (be_x_start(c, "POST", "%s/images/generations", c->base) != 0 ||
        be_x_credential(c, "Authorization: Bearer ") != 0)
        return -1;
    return be_x_json(c, body);
}

static int
add_part(curl_mime *m, const char *name, const char *value)
{
    curl_mimepart *p = curl_mime_addpart(m);
    return p && curl_mime_name(p, name) == CURLE_OK &&
                   curl_mime_data(p, value, CURL_ZERO_TERMINATED) == CURLE_OK
               ? 0
               : -1;
}

static int
add_file(curl_mime *m, const char *name, const void *data, size_t len, const char *filename)
{
    curl_mimepart *p = curl_mime_addpart(m);
    return p && curl_mime_name(p, name) == CURLE_OK &&
                   curl_mime_data(p, data, len) == CURLE_OK &&
                   curl_mime_filename(p, filename) == CURLE_OK &&
                   curl_mime_type(p, "image/png") == CURLE_OK
               ? 0
               : -1;
}

static int
openai_submit_edit(struct be_call *c)
{
    if (!c->req.input)
        return be_fail(c, 400, "invalid_request", "an edit needs an input image"), -1;
    if (be_x_start(c, "POST", "%s/images/edits", c->base) != 0 ||
        be_x_credential(c, "Authorization: Bearer ") != 0)
        return -1;
    curl_mime *m = curl_mime_init(c->easy);
    if (!m)
        return -1;
    c->x.mime = m;
    char num[32];
    snprintf(num, sizeof num, "%d", c->req.n > 0 ? c->req.n : 1);
    int rc = add_file(m, "image", c->req.input, c->req.input_len, "image.png") ||
             add_part(m, "prompt", c->req.prompt ? c->req.prompt : "") ||
             add_part(m, "model", model_of(c)) || add_part(m, "n", num);
    if (!rc && c->req.mask)
        rc = add_file(m, "mask", c->req.mask, c->req.mask_len, "mask.png");
    if (!rc && c->req.width > 0) {
        char size[32];
        snprintf(size, sizeof size, "%dx%d", c->req.width, c->req.height);
        rc = add_part(m, "size", size);
    }
    if (!rc && c->req.quality)
        rc = add_part(m, "quality", c->req.quality);
    if (!rc && c->req.output_format)
        rc = add_part(m, "output_format", c->req.output_format);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->req.vendor_params, key, v) {
        if (rc || !passthrough(key) || strcmp(key, "moderation") == 0)
            continue;   /* moderation is not an edit parameter */
        char text[64];
        if (json_is_string(v))
            rc = add_part(m, key, json_string_value(v));
        else if (json_is_integer(v) && snprintf(text, sizeof text, "%lld",
                                                (long long)json_integer_value(v)) > 0)
            rc = add_part(m, key, text);
    }
    return rc ? -1 : 0;
}

static int
openai_submit(struct be_call *c)
{
    c->state = ig_calloc(1, sizeof(struct openai_state));
    if (!c->state)
        return -1;
    note_dropped(c);
    if (c->req.cls == IG_CLASS_EDIT)
        return openai_submit_edit(c);
    if (c->req.cls != IG_CLASS_GENERATE)
        return be_fail(c, 400, "invalid_request", "OpenAI Images serves generate and edit only"),
               -1;
    return openai_submit_generate(c);
}

static enum be_next
openai_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *code = json_string_value(json_object_get(e, "code"));
    enum be_next r;
    if (c->x.status == 400 && code &&
        (strcmp(code, "moderation_blocked") == 0 || strcmp(code, "content_policy_violation") == 0))
        r = be_fail(c, 422, "moderated", "%s", msg ? msg : code);
    else if (c->x.status == 429 && code &&
             (strcmp(code, "insufficient_quota") == 0 ||
              strcmp(code, "project_spend_limit_exceeded") == 0))
        r = be_fail(c, 402, "quota", "%s", msg ? msg : code);
    else
        r = be_fail_status(c, msg);
    json_decref(j);
    return r;
}

/* Downloads the next data[].url, or finishes. */
static enum be_next
next_download(struct be_call *c)
{
    struct openai_state *s = c->state;
    enum be_next next = be_download_next(c, s->pending_urls, &s->next_url);
    return next;
}

/* The answer to a data[].url download. */
static enum be_next
openai_fetch(struct be_call *c)
{
    if (c->x.status != 200)
        return be_fail(c, 502, "upstream_error", "downloading the result: HTTP %ld", c->x.status);
    if (be_take_image(c, 1, "the downloaded result") != 0)
        return BE_DONE;
    return next_download(c);
}

/* A string value of the answer, for a caller that needs it as a C string:
 * short ones are decoded by jscan; one with escapes or over the buffer
 * goes through jansson (a URL, say). NULL when it is not a string. */
static char *
answer_string(const char *doc, const struct ig_jfield *f)
{
    if (f->type != IG_J_STRING)
        return NULL;
    char *out = ig_malloc(f->len);
    if (out && ig_jscan_string(doc, f, out, f->len) == 0)
        return out;
    ig_free(out);
    json_t *v = json_loadb(doc + f->off, f->len, JSON_DECODE_ANY, NULL);
    char *copy = json_is_string(v) ? ig_strdup(json_string_value(v)) : NULL;
    json_decref(v);
    return copy;
}

/* One data[] item's b64_json, decoded into raw. The base64 is decoded from
 * the answer in place: it holds no escapes (escaped says whether it does)
 * unless a vendor wrote '/' as "\/", which goes through the string decoder
 * first. */
static int
decode_item_b64(const char *doc, const struct ig_jfield *f, int escaped, struct ig_buf *raw)
{
    if (!escaped)
        return be_base64_decode_n(doc + f->off + 1, f->len - 2, raw);
    char *text = answer_string(doc, f);
    int rc = text ? be_base64_decode(text, raw) : -1;
    ig_free(text);
    return rc;
}

/* A relayed answer goes back to the client as it came, so its images are
 * only read for their header: decoding a megabyte of base64 to read the
 * 33 bytes of a PNG's header was most of what was left of a relay's cost.
 * The head is decoded and kept when it is a PNG (whose header is at the
 * start); other formats (a JPEG's SOF may follow large metadata) are
 * decoded whole. 1: the head was kept; 0: decode the whole; -1: not base64. */
#define B64_HEAD_CHARS 4096
static int
add_item_head(struct be_call *c, const char *doc, const struct ig_jfield *f, int escaped,
              const char *mime, struct ig_buf *raw)
{
    const char *p = doc + f->off + 1;
    size_t n = f->len - 2;
    if (n <= B64_HEAD_CHARS || n % 4 || escaped ||
        (n >= 5 && strncmp(p, "data:", 5) == 0))
        return 0;
    if (be_base64_decode_n(p, B64_HEAD_CHARS, raw) != 0)
        return -1;
    if (raw->len < 8 || memcmp(raw->data, "\x89PNG\r\n\x1a\n", 8) != 0)
        return 0;
    int before = c->result.n_images;
    if (be_add_image(c, raw->data, raw->len, mime) != 0)
        return -1;
    if (c->result.n_images > before)
        c->result.images[before].size = n / 4 * 3 - (p[n - 1] == '=') - (p[n - 2] == '=');
    return 1;
}

/* The (synchronous) answer to the submit: images, or URLs to download.
 *
 * Read with jscan, not jansson: an answer is a megabyte or more of base64
 * in one string, which jansson decoded and copied byte by byte (about 17
 * ms of the I/O loop per answer here, 59 answers a second at most), while
 * only a few short fields are wanted around it. */
static enum be_next
openai_poll(struct be_call *c)
{
    struct openai_state *s = c->state;
    if (!be_answer_is_json(c))
        return BE_DONE;
    const char *doc = c->x.answer.data ? c->x.answer.data : "";
    size_t len = c->x.answer.len;
    struct ig_jfield f[] = {{.key = "data"}, {.key = "usage"}, {.key = "size"},
                            {.key = "quality"}, {.key = "output_format"}, {.key = "background"}};
    struct ig_error err = {0};
    if (ig_jscan(doc, len, c->req.max_json_depth > 0 ? c->req.max_json_depth : 32, f, 6, &err) !=
        0)
        return be_fail(c, 502, "malformed_response", "%s (HTTP %ld)", err.message, c->x.status);
    struct ig_jfield items[BE_MAX_IMAGES];
    size_t n_items = 0;
    if (ig_jscan_items(doc, &f[0], items, BE_MAX_IMAGES, &n_items) != 0 || n_items == 0)
        return be_fail(c, 502, "malformed_response", "HTTP 200 with no image in data[]");
    struct be_prov p;
    be_prov_begin(&p, c);
    be_prov_str(&p, "model", model_of(c));
    const char *rid = be_answer_header(c, "x-request-id");
    if (rid)
        be_prov_str(&p, "request_id", rid);
    /* OpenAI reports no build for images; imagegate's emulator does, and a
     * proxy in front of OpenAI may. */
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (fp)
        be_prov_str(&p, "fingerprint", fp);
    if (f[1].type == IG_J_OBJECT)
        be_prov_json(&p, "usage", doc + f[1].off, f[1].len);
    char fmt[32] = "png";
    for (int k = 2; k < 6; k++) {
        char *v = answer_string(doc, &f[k]);
        if (!v)
            continue;
        be_prov_str(&p, f[k].key, v);
        if (k == 4)
            ig_scopy(fmt, sizeof fmt, v);
        ig_free(v);
    }
    be_prov_end(&p);
    char mime[48];
    ig_sjoin(mime, sizeof mime, "image/", fmt);
    c->result.charged = 1;
    struct ig_buf raw = {0};
    enum be_next next = BE_DONE;
    /* Each item's fields first: heads alone do only when every image comes
     * in this answer, which then goes back to the client (no URL to fetch,
     * after which the answer would be rebuilt from the images). */
    struct ig_jfield g[BE_MAX_IMAGES][2];
    int escaped[BE_MAX_IMAGES];
    size_t n_use = n_items < BE_MAX_IMAGES ? n_items : BE_MAX_IMAGES;
    int urls = 0;
    for (size_t i = 0; i < n_use; i++) {
        g[i][0] = (struct ig_jfield){.key = "b64_json"};
        g[i][1] = (struct ig_jfield){.key = "url"};
        if (items[i].type != IG_J_OBJECT ||
            ig_jscan(doc + items[i].off, items[i].len, 0, g[i], 2, &err) != 0) {
            ig_buf_free(&raw);
            return be_fail(c, 502, "malformed_response", "data[%zu] has neither b64_json nor url",
                           i);
        }
        g[i][0].off += items[i].off;
        g[i][1].off += items[i].off;
        escaped[i] = g[i][0].type == IG_J_STRING &&
                     memchr(doc + g[i][0].off + 1, '\\', g[i][0].len - 2) != NULL;
        urls += g[i][0].type != IG_J_STRING && g[i][1].type == IG_J_STRING;
    }
    int heads = c->req.relay_body && !urls;
    for (size_t i = 0; i < n_use; i++) {
        int head = heads && g[i][0].type == IG_J_STRING
                       ? add_item_head(c, doc, &g[i][0], escaped[i], mime, &raw)
                       : 0;
        if (head > 0)
            continue;
        if (head < 0) {
            next = be_fail(c, 502, "malformed_response", "data[%zu].b64_json is not base64", i);
            break;
        }
        char *url = g[i][0].type == IG_J_STRING ? NULL : answer_string(doc, &g[i][1]);
        if (g[i][0].type == IG_J_STRING) {
            if (decode_item_b64(doc, &g[i][0], escaped[i], &raw) != 0 || raw.len == 0) {
                next = be_fail(c, 502, "malformed_response", "data[%zu].b64_json is not base64",
                               i);
                break;
            }
            if (be_add_image(c, raw.data, raw.len, mime) != 0) {
                next = be_fail(c, 500, "upstream_error", "out of memory");
                break;
            }
        } else if (url) {
            if (!s->pending_urls)
                s->pending_urls = json_array();
            json_array_append_new(s->pending_urls, json_string(url));
            ig_free(url);
        } else {
            next = be_fail(c, 502, "malformed_response", "data[%zu] has neither b64_json nor url",
                           i);
            break;
        }
    }
    ig_buf_free(&raw);
    if (c->result.err.code[0])
        return next;
    if (s->pending_urls)
        return next_download(c);
    c->result.ok = 1;
    return BE_DONE;
}

/* The client spoke OpenAI's own dialect to the gateway: its body goes on
 * byte for byte, with only the model replaced by this backend's (or put
 * first when the client named none). */
static int
openai_relay(struct be_call *c)
{
    const struct be_request *q = &c->req;
    c->state = ig_calloc(1, sizeof(struct openai_state));
    if (!c->state)
        return -1;
    struct ig_buf mb = {0};
    if (ig_json_put_string(&mb, model_of(c)) != 0) {
        ig_buf_free(&mb);
        return -1;
    }
    const char *model = mb.data;
    size_t head, tail;
    if (q->relay_model_len) {
        head = q->relay_model_off;
        tail = q->relay_model_off + q->relay_model_len;
    } else {
        const char *brace = memchr(q->relay_body, '{', q->relay_len);
        head = tail = brace ? (size_t)(brace - q->relay_body) + 1 : 0;
    }
    int rc = be_x_start(c, "POST", "%s/images/generations", c->base) != 0 ||
                     be_x_credential(c, "Authorization: Bearer ") != 0 ||
                     be_x_header(c, "Content-Type: application/json") != 0 ||
                     ig_buf_reserve(&c->x.body, q->relay_len + strlen(model) + 16) != 0 ||
                     ig_buf_append(&c->x.body, q->relay_body, head) != 0 ||
                     (!q->relay_model_len && ig_buf_puts(&c->x.body, "\"model\":") != 0) ||
                     ig_buf_puts(&c->x.body, model) != 0 ||
                     (!q->relay_model_len && ig_buf_puts(&c->x.body, ",") != 0) ||
                     ig_buf_append(&c->x.body, q->relay_body + tail, q->relay_len - tail) != 0
                 ? -1
                 : 0;
    ig_buf_free(&mb);
    return rc;
}

const struct be_protocol be_protocol_openai = {
    .name = "openai",
    .submit = openai_submit,            /* submit: generations JSON or edits multipart */
    .poll = openai_poll,                /* poll: the synchronous answer, images or URLs */
    .fetch = openai_fetch,              /* fetch: a data[].url download */
    .parse_error = openai_error,        /* parse_error: {"error":{message,type,code}} */
    .resume = NULL,                     /* resume: synchronous API, nothing to resume */
    .relay = openai_relay,              /* relay: the client's own generations body */
    .cancel = NULL,                     /* cancel: synchronous API */
    .free_state = openai_free_state,    /* free_state */
};
