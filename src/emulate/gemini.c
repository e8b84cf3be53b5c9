/* SPDX-License-Identifier: MIT */
/* gemini.c -- Google Gemini native image generation, emulated.
 *
 * POST /v1beta/models/{model}:generateContent with the key in the
 * x-goog-api-key header or the ?key= query. The request's contents[0].parts
 * carry the text and any inlineData images (an edit repaints the first
 * one: Gemini has no mask); generationConfig.responseModalities must name
 * IMAGE for an image to come back; imageConfig takes aspectRatio and
 * imageSize only, checked against the model's tables (400
 * INVALID_ARGUMENT). The answer is a GenerateContentResponse whose last
 * non-thought part is the picture as base64 inlineData; Gemini 3 models
 * first emit a "thought" image part, as the real ones do. Moderation is an
 * HTTP 200: finishReason IMAGE_SAFETY with no parts, or (fault "blocked")
 * no candidates and promptFeedback.blockReason. Errors use the Google RPC
 * status shape. Knobs (the reference is unsure, ⚠): size_table (0: Google's
 * table, 16:9 = 1344x768; 1: the third-party one, 16:9 = 1408x768),
 * strict_image_size (1: "2k" in lower case is rejected), thought_parts (1:
 * Gemini 3 models emit a thought image first), retry_delay_s (the
 * RetryInfo delay of a 429, 17). */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct gem_model {
    const char *name;
    int max_size;          /* 1: 1K only; 4: up to 4K */
    int tokens_1k, tokens_4k;
} models[] = {
    {"gemini-2.5-flash-image", 1, 1290, 1290},
    {"gemini-2.5-flash-image-preview", 1, 1290, 1290},
    {"gemini-3-pro-image-preview", 4, 1120, 2000},
    {"gemini-3.1-flash-image-preview", 4, 1120, 2000},
    {NULL, 0, 0, 0},
};

/* 1K sizes per aspect ratio: Google's table, then the third-party one. */
static const struct gem_size {
    const char *ratio;
    int w, h, w3, h3;
} sizes[] = {
    {"1:1", 1024, 1024, 1024, 1024}, {"2:3", 832, 1248, 832, 1248},
    {"3:2", 1248, 832, 1248, 832},   {"3:4", 864, 1184, 864, 1184},
    {"4:3", 1184, 864, 1184, 864},   {"4:5", 896, 1152, 896, 1152},
    {"5:4", 1152, 896, 1152, 896},   {"9:16", 768, 1344, 768, 1408},
    {"16:9", 1344, 768, 1408, 768},  {"21:9", 1536, 672, 1536, 640},
    {NULL, 0, 0, 0, 0},
};

static int
rpc_error(struct emu_resp *out, unsigned code, const char *status, const char *msg,
          json_t *details)
{
    json_t *e = json_pack("{s:i,s:s,s:s}", "code", (int)code, "message", msg, "status", status);
    if (details)
        json_object_set_new(e, "details", details);
    return emu_json(out, code, json_pack("{s:o}", "error", e));
}

static int
b64_out(const void *data, size_t len, struct ig_buf *out)
{
    ig_buf_reset(out);
    if (ig_buf_append(out, "", 0) != 0)
        return -1;
    void *p = out->data;
    if (ig_grow(&p, &out->cap, 4 * ((len + 2) / 3) + 1, 1) != 0)
        return -1;
    out->data = p;
    out->len = (size_t)EVP_EncodeBlock((unsigned char *)out->data, data, (int)len);
    return 0;
}

static struct img *
b64_image(const char *text)
{
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len % 4)
        return NULL;
    unsigned char *raw = ig_malloc(len / 4 * 3 + 1);
    if (!raw)
        return NULL;
    int n = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)len);
    while (n > 0 && len && text[len - 1] == '=') {
        len--;
        n--;
    }
    struct img_limits lim = {.max_input_bytes = 20L << 20, .max_pixels = 50000000};
    struct ig_error err = {0};
    struct img *im = n > 0 ? img_decode(raw, (size_t)n, &lim, &err) : NULL;
    ig_free(raw);
    return im;
}

/* A picture as an inlineData part (PNG). */
static json_t *
image_part(const struct img *pic, int corrupt, int thought)
{
    struct ig_buf enc = {0}, b64 = {0};
    struct ig_error err = {0};
    json_t *part = NULL;
    if (corrupt) {
        ig_buf_append(&enc, "\x89PNG\r\n\x1a\n-not-a-png-", 19);
    } else if (img_encode(pic, IMG_FMT_PNG, 0, NULL, &enc, &err) != 0) {
        goto out;
    }
    if (b64_out(enc.data, enc.len, &b64) != 0)
        goto out;
    part = json_pack("{s:{s:s,s:s%}}", "inlineData", "mimeType", "image/png", "data", b64.data,
                     b64.len);
    if (part && thought)
        json_object_set_new(part, "thought", json_true());
out:
    ig_buf_free(&enc);
    ig_buf_free(&b64);
    return part;
}

static int
generate(struct emu_req *r, struct emu_resp *out, const struct gem_model *m)
{
    json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    struct img *input = NULL, *pic = NULL;
    int rc;
    if (!json_is_object(body)) {
        rc = rpc_error(out, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.", NULL);
        goto done;
    }
    json_t *contents = json_object_get(body, "contents");
    json_t *parts = json_object_get(json_array_get(contents, json_array_size(contents) - 1),
                                    "parts");
    if (!json_is_array(parts) || json_array_size(parts) == 0) {
        rc = rpc_error(out, 400, "INVALID_ARGUMENT",
                       "* GenerateContentRequest.contents: contents is not specified", NULL);
        goto done;
    }
    char prompt[2048] = "";
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) {
        const char *text = json_string_value(json_object_get(p, "text"));
        json_t *inl = json_object_get(p, "inlineData");
        if (text)
            snprintf(prompt + strlen(prompt), sizeof prompt - strlen(prompt), "%s", text);
        if (inl && !input) {
            const char *mt = json_string_value(json_object_get(inl, "mimeType"));
            input = mt && strncmp(mt, "image/", 6) == 0
                        ? b64_image(json_string_value(json_object_get(inl, "data")))
                        : NULL;
            if (!input) {
                rc = rpc_error(out, 400, "INVALID_ARGUMENT",
                               "Unable to process input image. Please retry or report in "
                               "https://developers.generativeai.google/guide/troubleshooting",
                               NULL);
                goto done;
            }
        }
    }
    json_t *gc = json_object_get(body, "generationConfig");
    json_t *mods = json_object_get(gc, "responseModalities");
    int want_image = 0;
    json_array_foreach(mods, i, p)
        want_image |= json_string_value(p) && strcmp(json_string_value(p), "IMAGE") == 0;
    json_t *ic = json_object_get(gc, "imageConfig");
    const char *key;
    json_t *v;
    json_object_foreach(ic, key, v)
        if (strcmp(key, "aspectRatio") != 0 && strcmp(key, "imageSize") != 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "Invalid JSON payload received. Unknown name \"%s\" at "
                                      "'generation_config.image_config': Cannot find field.",
                     key);
            rc = rpc_error(out, 400, "INVALID_ARGUMENT", msg, NULL);
            goto done;
        }
    const char *ar = json_string_value(json_object_get(ic, "aspectRatio"));
    const char *isz = json_string_value(json_object_get(ic, "imageSize"));
    const struct gem_size *sz = NULL;
    for (int k = 0; sizes[k].ratio; k++)
        if (strcmp(sizes[k].ratio, ar ? ar : "1:1") == 0)
            sz = &sizes[k];
    if (!sz) {
        rc = rpc_error(out, 400, "INVALID_ARGUMENT", "Unsupported aspect ratio.", NULL);
        goto done;
    }
    int mult = 1;
    if (isz) {
        int strict = emu_knob_int(r->emu, "strict_image_size", 1) == 1;
        mult = strcmp(isz, "1K") == 0 ? 1 : strcmp(isz, "2K") == 0 ? 2 : strcmp(isz, "4K") == 0 ? 4
               : !strict && strcmp(isz, "2k") == 0                                   ? 2
               : !strict && strcmp(isz, "4k") == 0                                   ? 4
               : !strict && strcmp(isz, "1k") == 0                                   ? 1
                                                                                     : 0;
        if (mult == 0 || mult > m->max_size) {
            rc = rpc_error(out, 400, "INVALID_ARGUMENT", "Unsupported image size.", NULL);
            goto done;
        }
    }
    json_t *seedv = json_object_get(gc, "seed");
    long long seed = json_is_integer(seedv) ? json_integer_value(seedv)
                                            : (long long)(strlen(prompt) * 7919 + 17);
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "rate_limit") == 0) {
        char delay[16];
        json_int_t ra = json_integer_value(json_object_get(r->fault, "retry_after"));
        snprintf(delay, sizeof delay, "%llds",
                 (long long)(ra > 0 ? ra : emu_knob_int(r->emu, "retry_delay_s", 17)));
        rc = rpc_error(out, 429, "RESOURCE_EXHAUSTED",
                       "Resource has been exhausted (e.g. check quota).",
                       json_pack("[{s:s,s:s}]", "@type", "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay", delay));
        goto done;
    }
    if (kind && strcmp(kind, "quota") == 0) {
        rc = rpc_error(out, 429, "RESOURCE_EXHAUSTED",
                       "You exceeded your current quota, please check your plan and billing "
                       "details.",
                       json_pack("[{s:s,s:[{s:s,s:s}]}]", "@type",
                                 "type.googleapis.com/google.rpc.QuotaFailure", "violations",
                                 "quotaMetric",
                                 "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
                                 "quotaId", "GenerateRequestsPerDayPerProjectPerModel"));
        goto done;
    }
    if (kind && strcmp(kind, "malformed_json") == 0) {
        rc = emu_bytes(out, 200, "application/json", "{\"candidates\": [{\"content\": {", 28);
        goto done;
    }
    char rid[48], key_s[300];
    emu_request_id(r->emu, "gem-", rid, sizeof rid);
    snprintf(key_s, sizeof key_s, "%.200s|%lld", prompt, seed);
    emu_count_submit(r->emu, key_s);
    int in_tokens = (int)strlen(prompt) / 4 + 1 + (input ? 258 : 0);
    int out_tokens = mult == 4 ? m->tokens_4k : m->tokens_1k;
    json_t *usage = json_pack("{s:i,s:i,s:i,s:[{s:s,s:i}],s:[{s:s,s:i}]}", "promptTokenCount",
                              in_tokens, "candidatesTokenCount", out_tokens, "totalTokenCount",
                              in_tokens + out_tokens, "promptTokensDetails", "modality", "TEXT",
                              "tokenCount", in_tokens, "candidatesTokensDetails", "modality",
                              "IMAGE", "tokenCount", out_tokens);
    json_t *ans = json_pack("{s:o,s:s,s:s}", "usageMetadata", usage, "modelVersion", m->name,
                            "responseId", rid);
    if (kind && strcmp(kind, "blocked") == 0) {
        json_object_set_new(ans, "promptFeedback", json_pack("{s:s}", "blockReason", "SAFETY"));
        rc = emu_json(out, 200, ans);
        goto done;
    }
    json_t *cand_parts = json_array();
    const char *finish = "STOP";
    if (kind && strcmp(kind, "moderation") == 0) {
        finish = "IMAGE_SAFETY";
    } else if (!want_image || (kind && strcmp(kind, "no_image") == 0)) {
        json_array_append_new(cand_parts, json_pack("{s:s}", "text",
                                                    "I can describe it, but here is no image."));
        finish = want_image ? "NO_IMAGE" : "STOP";
    } else {
        int w = emu_knob_int(r->emu, "size_table", 0) == 1 ? sz->w3 : sz->w;
        int h = emu_knob_int(r->emu, "size_table", 0) == 1 ? sz->h3 : sz->h;
        if (input && !ar) {
            /* no aspect ratio asked: the reference image's shape */
            w = input->width;
            h = input->height;
        } else {
            w *= mult;
            h *= mult;
        }
        pic = input ? emu_edit(input, NULL, prompt, seed)
                    : emu_picture("gemini", prompt, seed, emu_fingerprint(r->emu), w, h);
        if (pic && input && (pic->width != w || pic->height != h)) {
            struct ig_error err = {0};
            struct img *rs = img_resize(pic, w, h, "lanczos3", &err);
            img_free(pic);
            pic = rs;
        }
        if (!pic) {
            json_decref(cand_parts);
            json_decref(ans);
            rc = -1;
            goto done;
        }
        if (strncmp(m->name, "gemini-3", 8) == 0 && emu_knob_int(r->emu, "thought_parts", 1)) {
            struct img *draft = emu_picture("gemini-draft", prompt, seed, "draft", 64, 64);
            json_t *tp = draft ? image_part(draft, 0, 1) : NULL;
            img_free(draft);
            if (tp)
                json_array_append_new(cand_parts, tp);
        }
        json_array_append_new(cand_parts, json_pack("{s:s}", "text", "Here is your image."));
        json_t *ip = image_part(pic, kind && strcmp(kind, "corrupt_image") == 0, 0);
        if (ip)
            json_array_append_new(cand_parts, ip);
    }
    json_t *cand = json_pack("{s:s,s:i}", "finishReason", finish, "index", 0);
    if (json_array_size(cand_parts))
        json_object_set_new(cand, "content", json_pack("{s:s,s:o}", "role", "model", "parts",
                                                       cand_parts));
    else
        json_decref(cand_parts);
    json_object_set_new(ans, "candidates", json_pack("[o]", cand));
    emu_add_header(out, "x-emulator-fingerprint", emu_fingerprint(r->emu));
    rc = emu_json(out, 200, ans);
done:
    img_free(input);
    img_free(pic);
    json_decref(body);
    return rc;
}

static int
gemini_handle(struct emu_req *r, struct emu_resp *out)
{
    const char *prefix = "/v1beta/models/";
    const char *colon = strrchr(r->url, ':');
    if (strncmp(r->url, prefix, strlen(prefix)) != 0 || !colon)
        return rpc_error(out, 404, "NOT_FOUND", "The requested URL was not found on this server.",
                         NULL);
    const char *key = emu_header(r, "x-goog-api-key");
    if (!key)
        key = emu_query(r, "key");
    if (emu_auth_required(r->emu) && (!key || !*key))
        return rpc_error(out, 403, "PERMISSION_DENIED",
                         "Method doesn't allow unregistered callers (callers without established "
                         "identity). Please use API Key or other form of API consumer identity "
                         "to call this API.",
                         NULL);
    if (key && strcmp(key, "invalid") == 0)
        return rpc_error(out, 400, "INVALID_ARGUMENT",
                         "API key not valid. Please pass a valid API key.",
                         json_pack("[{s:s,s:s,s:s}]", "@type",
                                   "type.googleapis.com/google.rpc.ErrorInfo", "reason",
                                   "API_KEY_INVALID", "domain", "googleapis.com"));
    if (strcmp(colon, ":generateContent") != 0 || strcmp(r->method, "POST") != 0)
        return rpc_error(out, 404, "NOT_FOUND", "The requested URL was not found on this server.",
                         NULL);
    size_t n = (size_t)(colon - r->url) - strlen(prefix);
    for (int i = 0; models[i].name; i++)
        if (strlen(models[i].name) == n && strncmp(models[i].name, r->url + strlen(prefix), n) == 0)
            return generate(r, out, &models[i]);
    char msg[200];
    snprintf(msg, sizeof msg, "models/%.*s is not found for API version v1beta, or is not "
                              "supported for generateContent.",
             (int)n, r->url + strlen(prefix));
    return rpc_error(out, 404, "NOT_FOUND", msg, NULL);
}

const struct emu_vendor emu_vendor_gemini = {
    .name = "gemini",
    .handle = gemini_handle,
};
