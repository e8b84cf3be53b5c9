/* SPDX-License-Identifier: MIT */
/* gemini.c -- Google Gemini native image generation (generateContent).
 *
 * POST {endpoint}/v1beta/models/{model}:generateContent, key in
 * x-goog-api-key. The prompt is a text part, input images inlineData parts;
 * generationConfig asks for responseModalities [TEXT, IMAGE] and an
 * imageConfig: the requested size is translated to the nearest supported
 * aspectRatio and an imageSize (1K, 2K, 4K), noted in provenance. Gemini
 * takes no mask (edits are prompt-driven), no negative prompt and one image
 * per call: each is noted when dropped. The seed goes to the generic
 * generationConfig.seed. The image is the last non-thought inlineData part
 * of candidates[0] (Gemini 3 emits thought images first). Moderation
 * arrives as an HTTP 200: promptFeedback.blockReason without candidates, or
 * a safety finishReason (SAFETY, IMAGE_SAFETY, PROHIBITED_CONTENT, ...). A
 * 200 with no image otherwise (NO_IMAGE, a text-only answer) is
 * malformed_response. Errors are Google RPC status bodies; a 429
 * RESOURCE_EXHAUSTED with a daily QuotaFailure is quota, otherwise
 * rate_limited with RetryInfo.retryDelay as the wait; API_KEY_INVALID is
 * auth. The API is synchronous: nothing to poll, resume or cancel. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
model_of(const struct be_call *c)
{
    const char *m = c->req.cfg->model;
    if (!m)
        m = json_string_value(json_object_get(c->req.vendor_params, "model"));
    return m ? m : "gemini-2.5-flash-image";
}

/* The supported ratio nearest (in log space) to w:h. */
static const char *
nearest_ratio(int w, int h)
{
    static const char *const ratios[] = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5",
                                         "5:4", "9:16", "16:9", "21:9", NULL};
    const char *best = "1:1";
    double want = log((double)w / h), best_d = 1e9;
    for (int i = 0; ratios[i]; i++) {
        int a, b;
        sscanf(ratios[i], "%d:%d", &a, &b);
        double d = fabs(log((double)a / b) - want);
        if (d < best_d) {
            best_d = d;
            best = ratios[i];
        }
    }
    return best;
}

static json_t *
inline_part(const void *data, size_t len)
{
    struct ig_buf b = {0};
    json_t *p = be_base64_encode(data, len, &b) == 0
                    ? json_pack("{s:{s:s,s:s%}}", "inlineData", "mimeType", "image/png", "data",
                                b.data, b.len)
                    : NULL;
    ig_buf_free(&b);
    return p;
}

static int
gemini_submit(struct be_call *c)
{
    if (c->req.cls != IG_CLASS_GENERATE && c->req.cls != IG_CLASS_EDIT)
        return be_fail(c, 400, "invalid_request", "Gemini serves generate and edit only"), -1;
    if (c->req.cls == IG_CLASS_EDIT && !c->req.input)
        return be_fail(c, 400, "invalid_request", "an edit needs an input image"), -1;
    const char *model = model_of(c);
    json_t *parts = json_pack("[{s:s}]", "text", c->req.prompt ? c->req.prompt : "");
    json_t *ic = json_object();
    json_t *gc = json_pack("{s:[s,s],s:o}", "responseModalities", "TEXT", "IMAGE", "imageConfig",
                           ic);
    if (!parts || !gc) {
        json_decref(parts);
        json_decref(gc);
        return -1;
    }
    if (c->req.input) {
        json_t *p = inline_part(c->req.input, c->req.input_len);
        if (!p) {
            json_decref(parts);
            json_decref(gc);
            return -1;
        }
        json_array_append_new(parts, p);
    }
    if (c->req.mask)
        be_note(c, "dropped", "mask: Gemini edits are prompt-driven, it takes no mask");
    if (c->req.negative_prompt && *c->req.negative_prompt)
        be_note(c, "dropped", "negative prompt: Gemini takes none");
    if (c->req.n > 1)
        be_note(c, "dropped", "n=%d: Gemini makes one image per call", c->req.n);
    if (c->req.has_seed)
        json_object_set_new(gc, "seed", json_integer(c->req.seed));
    if (c->req.width > 0 && c->req.height > 0) {
        const char *ar = nearest_ratio(c->req.width, c->req.height);
        int side = c->req.width > c->req.height ? c->req.width : c->req.height;
        const char *size = side <= 1600 ? "1K" : side <= 3200 ? "2K" : "4K";
        json_object_set_new(ic, "aspectRatio", json_string(ar));
        /* 1K is the default and the only size some models take: only ask for more. */
        if (strcmp(size, "1K") != 0)
            json_object_set_new(ic, "imageSize", json_string(size));
        be_note(c, "translated", "size %dx%d sent as aspectRatio %s, imageSize %s",
                c->req.width, c->req.height, ar, size);
    }
    json_t *body = json_pack("{s:[{s:s,s:o}],s:o}", "contents", "role", "user", "parts", parts,
                             "generationConfig", gc);
    if (!body)
        return -1;
    json_t *safety = json_object_get(c->req.vendor_params, "safetySettings");
    if (safety)
        json_object_set(body, "safetySettings", safety);
    const char *v1beta = strstr(c->base, "/v1beta");
    if (be_x_start(c, "POST", "%s%s/models/%s:generateContent", c->base,
                   v1beta && v1beta[7] == '\0' ? "" : "/v1beta", model) != 0 ||
        be_x_credential(c, "x-goog-api-key: ") != 0) {
        json_decref(body);
        return -1;
    }
    if (!c->result.provenance)
        c->result.provenance = json_object();
    json_object_set_new(c->result.provenance, "model", json_string(model));
    return be_x_json(c, body);
}

static int
is_safety(const char *reason)
{
    static const char *const safety[] = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT",
                                         "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
                                         "RECITATION", "IMAGE_RECITATION", NULL};
    for (int i = 0; safety[i]; i++)
        if (strcmp(safety[i], reason) == 0)
            return 1;
    return 0;
}

static enum be_next
read_answer(struct be_call *c, json_t *j)
{
    json_t *p = c->result.provenance;
    const char *rid = json_string_value(json_object_get(j, "responseId"));
    const char *version = json_string_value(json_object_get(j, "modelVersion"));
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (rid)
        json_object_set_new(p, "request_id", json_string(rid));
    if (version)
        json_object_set_new(p, "model_version", json_string(version));
    if (fp || version)
        json_object_set_new(p, "fingerprint", json_string(fp ? fp : version));
    if (json_object_get(j, "usageMetadata"))
        json_object_set(p, "usage", json_object_get(j, "usageMetadata"));
    if (c->req.has_seed)
        json_object_set_new(p, "seed", json_integer(c->req.seed));
    const char *block =
        json_string_value(json_object_get(json_object_get(j, "promptFeedback"), "blockReason"));
    json_t *cand = json_array_get(json_object_get(j, "candidates"), 0);
    if (block && !cand) {
        json_object_set_new(p, "finish_reason", json_string(block));
        return be_fail(c, 422, "moderated", "the prompt was blocked (blockReason %s)", block);
    }
    if (!cand)
        return be_fail(c, 502, "malformed_response", "HTTP 200 with no candidates");
    const char *finish = json_string_value(json_object_get(cand, "finishReason"));
    if (finish)
        json_object_set_new(p, "finish_reason", json_string(finish));
    if (finish && is_safety(finish))
        return be_fail(c, 422, "moderated", "the image was withheld (finishReason %s)", finish);
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    json_t *last = NULL;
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part)
        if (json_object_get(part, "inlineData") && !json_is_true(json_object_get(part, "thought")))
            last = json_object_get(part, "inlineData");
    if (!last)
        return be_fail(c, 502, "malformed_response", "HTTP 200 with no image (finishReason %s)",
                       finish ? finish : "none");
    const char *data = json_string_value(json_object_get(last, "data"));
    const char *mime = json_string_value(json_object_get(last, "mimeType"));
    struct ig_buf raw = {0};
    enum be_next r;
    if (!data || be_base64_decode(data, &raw) != 0 || raw.len == 0)
        r = be_fail(c, 502, "malformed_response", "inlineData.data is not base64");
    else if (be_add_image(c, raw.data, raw.len, mime ? mime : "image/png") != 0)
        r = be_fail(c, 500, "upstream_error", "out of memory");
    else {
        c->result.ok = 1;
        c->result.charged = 1;
        r = BE_DONE;
    }
    ig_buf_free(&raw);
    return r;
}

static enum be_next
gemini_poll(struct be_call *c)
{
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    enum be_next r = json_is_object(j) ? read_answer(c, j)
                                       : be_fail(c, 502, "malformed_response",
                                                 "the answer is not a JSON object");
    json_decref(j);
    return r;
}

static enum be_next
gemini_fetch(struct be_call *c)
{
    /* Images come inline; there is never a download. */
    return be_fail(c, 500, "upstream_error", "Gemini has no result downloads");
}

static enum be_next
gemini_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    /* the streaming variant wraps the error in a one-element list */
    json_t *e = json_object_get(json_is_array(j) ? json_array_get(j, 0) : j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *status = json_string_value(json_object_get(e, "status"));
    int key_invalid = 0, daily = 0;
    long retry_ms = -1;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(e, "details"), i, d) {
        const char *type = json_string_value(json_object_get(d, "@type"));
        const char *reason = json_string_value(json_object_get(d, "reason"));
        if (reason && strcmp(reason, "API_KEY_INVALID") == 0)
            key_invalid = 1;
        if (type && strstr(type, "RetryInfo")) {
            const char *delay = json_string_value(json_object_get(d, "retryDelay"));
            if (delay)
                retry_ms = (long)(strtod(delay, NULL) * 1000);
        }
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(d, "violations"), k, v) {
            const char *qid = json_string_value(json_object_get(v, "quotaId"));
            if (qid && strstr(qid, "PerDay"))
                daily = 1;
        }
    }
    char text[400];
    snprintf(text, sizeof text, "%s%s%s", status ? status : "", status ? ": " : "",
             msg ? msg : "no message");
    json_decref(j);
    enum be_next r;
    if (key_invalid)
        r = be_fail(c, 401, "auth", "%s", text);
    else if (c->x.status == 429 && daily)
        r = be_fail(c, 402, "quota", "%s", text);
    else
        r = be_fail_status(c, text);
    if (c->result.retry_after_ms < 0 && retry_ms >= 0)
        c->result.retry_after_ms = retry_ms;
    return r;
}

const struct be_protocol be_protocol_gemini = {
    .name = "gemini",
    .submit = gemini_submit,            /* submit: generateContent */
    .poll = gemini_poll,                /* poll: the synchronous answer */
    .fetch = gemini_fetch,              /* fetch: never (images are inline) */
    .parse_error = gemini_parse_error,  /* parse_error: Google RPC status */
    .resume = NULL,                     /* resume: synchronous API */
    .cancel = NULL,                     /* cancel: synchronous API */
    .free_state = NULL,                 /* free_state: no state */
};
