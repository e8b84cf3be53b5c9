/* SPDX-License-Identifier: MIT */
/* openai.c -- the OpenAI Images emulator (docs/emulators.md).
 *
 * POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart:
 * image or image[], mask, prompt, and the rest as text parts), answered the
 * way OpenAI answers: ImagesResponse with data[].b64_json and usage for GPT
 * image models; the error envelope {"error":{"message","type","param",
 * "code"}} with OpenAI's status codes; x-request-id on every answer. Field
 * validation follows the reference: prompt required, n 1..10, size one of
 * the GPT image sizes, quality, output_format and background from their
 * enums, a transparent background only with png or webp.
 *
 * The fingerprint is not part of OpenAI's API (it has none for images); the
 * emulator reports it in x-emulator-fingerprint so that tests can see which
 * build made a picture. ⚠ response_format on GPT image models: the real API
 * is reported to reject it; the emulator does too (400), as the reference's
 * emulator notes suggest. */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
fail(struct emu_resp *out, unsigned status, const char *type, const char *code, const char *param,
     const char *msg)
{
    return emu_json(out, status,
                    json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", msg, "type", type,
                              "param", param, "code", code));
}

/* The fields of a request, from JSON or from multipart text parts. */
struct fields {
    const char *prompt, *model, *size, *quality, *output_format, *background, *response_format;
    long n;
    char *owned[12];
    int n_owned;
};

static const char *
part_text(struct emu_req *r, const char *name, struct fields *f)
{
    const struct emu_part *p = emu_part(r, name, 0);
    if (!p || f->n_owned >= 12)
        return NULL;
    char *s = ig_strndup(p->data.data ? p->data.data : "", p->data.len);
    f->owned[f->n_owned++] = s;
    return s;
}

static int
check(struct fields *f, struct emu_resp *out)
{
    if (!f->prompt || !*f->prompt)
        return fail(out, 400, "invalid_request_error", NULL, "prompt",
                    "Missing required parameter: 'prompt'."), 1;
    if (strlen(f->prompt) > 32000)
        return fail(out, 400, "invalid_request_error", "string_above_max_length", "prompt",
                    "Invalid 'prompt': string too long. Expected a string with maximum length "
                    "32000."), 1;
    if (f->n < 1 || f->n > 10)
        return fail(out, 400, "invalid_request_error", "integer_out_of_range", "n",
                    "Invalid 'n': integer out of range. Expected a value between 1 and 10."), 1;
    static const char *const sizes[] = {"1024x1024", "1536x1024", "1024x1536", "auto", NULL};
    static const char *const qualities[] = {"low", "medium", "high", "auto", "standard", NULL};
    static const char *const formats[] = {"png", "jpeg", "webp", NULL};
    static const char *const backgrounds[] = {"transparent", "opaque", "auto", NULL};
    struct { const char *v; const char *const *ok; const char *param; } enums[] = {
        {f->size, sizes, "size"}, {f->quality, qualities, "quality"},
        {f->output_format, formats, "output_format"}, {f->background, backgrounds, "background"}};
    for (int i = 0; i < 4; i++) {
        if (!enums[i].v)
            continue;
        int found = 0;
        for (int k = 0; enums[i].ok[k]; k++)
            found |= strcmp(enums[i].ok[k], enums[i].v) == 0;
        if (!found) {
            char msg[200];
            snprintf(msg, sizeof msg, "Invalid value: '%.60s'. Supported values are listed in the "
                                      "API reference.", enums[i].v);
            return fail(out, 400, "invalid_request_error", "invalid_value", enums[i].param, msg),
                   1;
        }
    }
    if (f->background && strcmp(f->background, "transparent") == 0 && f->output_format &&
        strcmp(f->output_format, "jpeg") == 0)
        return fail(out, 400, "invalid_request_error", "invalid_value", "background",
                    "Transparent background requires output_format png or webp."), 1;
    if (f->response_format)
        return fail(out, 400, "invalid_request_error", "unknown_parameter", "response_format",
                    "Unknown parameter: 'response_format'."), 1;
    return 0;
}

static int
answer_images(struct emu_req *r, struct emu_resp *out, struct fields *f, const struct img *in,
              const struct img *mask)
{
    struct emu *e = r->emu;
    const char *fault = emu_fault_kind(r);
    char rid[48];
    emu_request_id(e, "req_", rid, sizeof rid);
    emu_add_header(out, "x-request-id", rid);
    emu_add_header(out, "x-emulator-fingerprint", emu_fingerprint(e));
    if (fault && strcmp(fault, "rate_limit") == 0) {
        char ra[32];
        long s = (long)json_integer_value(json_object_get(r->fault, "retry_after"));
        snprintf(ra, sizeof ra, "%ld", s > 0 ? s : 1);
        emu_add_header(out, "retry-after", ra);
        return fail(out, 429, "requests", "rate_limit_exceeded", NULL,
                    "Rate limit reached for images per minute. Please try again later.");
    }
    if (fault && strcmp(fault, "quota") == 0)
        return fail(out, 429, "insufficient_quota", "insufficient_quota", NULL,
                    "You exceeded your current quota, please check your plan and billing details.");
    if (fault && strcmp(fault, "moderation") == 0)
        return fail(out, 400, "image_generation_user_error", "moderation_blocked", NULL,
                    "Your request was rejected by the safety system.");
    if (fault && strcmp(fault, "malformed_json") == 0)
        return emu_bytes(out, 200, "application/json", "{\"created\": 17, \"data\": [", 25);
    /* Counted as run at the vendor: everything after here produces output. */
    char key[600];
    snprintf(key, sizeof key, "%s|%s", r->url, f->prompt);
    emu_count_submit(e, key);
    if (fault && strcmp(fault, "no_image") == 0)
        return emu_json(out, 200, json_pack("{s:I,s:[]}", "created", (json_int_t)time(NULL), "data"));
    int w = 1024, h = 1024;
    if (f->size && strcmp(f->size, "auto") != 0)
        sscanf(f->size, "%dx%d", &w, &h);
    if (in && (!f->size || strcmp(f->size, "auto") == 0)) {
        w = in->width;
        h = in->height;
    }
    const char *fmt_name = f->output_format ? f->output_format : "png";
    enum img_format fmt = strcmp(fmt_name, "jpeg") == 0 ? IMG_FMT_JPEG
                          : strcmp(fmt_name, "webp") == 0 ? IMG_FMT_WEBP
                                                          : IMG_FMT_PNG;
    json_t *data = json_array();
    struct ig_buf enc = {0}, b64 = {0};
    struct ig_error err = {0};
    for (long i = 0; i < f->n; i++) {
        struct img *pic;
        if (in) {
            struct img *base = in->width == w && in->height == h ? img_clone(in)
                                                                 : img_resize(in, w, h, "lanczos3", &err);
            pic = base ? emu_edit(base, mask, f->prompt, i) : NULL;
            img_free(base);
        } else {
            /* OpenAI takes no seed: each image of n differs by its index. */
            pic = emu_picture("openai", f->prompt, i, emu_fingerprint(e), w, h);
        }
        ig_buf_reset(&enc);
        if (!pic || img_encode(pic, fmt, 90, NULL, &enc, &err) != 0) {
            img_free(pic);
            json_decref(data);
            ig_buf_free(&enc);
            return fail(out, 500, "server_error", NULL, NULL, "The server had an error.");
        }
        img_free(pic);
        if (fault && strcmp(fault, "corrupt_image") == 0)
            enc.len = enc.len > 64 ? 64 : enc.len;
        ig_buf_reset(&b64);
        ig_buf_append(&b64, "", 0);
        void *p = b64.data;
        ig_grow(&p, &b64.cap, 4 * ((enc.len + 2) / 3) + 1, 1);
        b64.data = p;
        EVP_EncodeBlock((unsigned char *)b64.data, (unsigned char *)enc.data, (int)enc.len);
        json_array_append_new(data, json_pack("{s:s}", "b64_json", b64.data));
    }
    ig_buf_free(&enc);
    ig_buf_free(&b64);
    /* gpt-image-1 output tokens per image (the reference's derived table). */
    const char *q = f->quality ? f->quality : "auto";
    int square = w == h;
    int out_tokens = strcmp(q, "low") == 0 ? (square ? 272 : 408)
                     : strcmp(q, "medium") == 0 ? (square ? 1056 : 1584)
                                                : (square ? 4160 : 6240);
    int in_tokens = (int)(strlen(f->prompt) / 4) + 1;
    char size[32];
    snprintf(size, sizeof size, "%dx%d", w, h);
    return emu_json(out, 200,
                    json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:{s:i,s:{s:i,s:i},s:i,s:i}}", "created",
                              (json_int_t)time(NULL), "background",
                              f->background ? f->background : "opaque", "output_format", fmt_name,
                              "quality", strcmp(q, "auto") == 0 ? "high" : q, "size", size, "data",
                              data, "usage", "input_tokens", in_tokens, "input_tokens_details",
                              "text_tokens", in_tokens, "image_tokens", in ? 323 : 0,
                              "output_tokens", (int)f->n * out_tokens, "total_tokens",
                              in_tokens + (int)f->n * out_tokens));
}

static int
openai_handle(struct emu_req *r, struct emu_resp *out)
{
    int gen = strcmp(r->url, "/v1/images/generations") == 0;
    int edit = strcmp(r->url, "/v1/images/edits") == 0;
    if (!gen && !edit)
        return fail(out, 404, "invalid_request_error", "unknown_url", NULL,
                    "Invalid URL: no such path on this server.");
    if (strcmp(r->method, "POST") != 0)
        return fail(out, 405, "invalid_request_error", NULL, NULL, "Use POST.");
    const char *auth = emu_header(r, "Authorization");
    if (emu_auth_required(r->emu) && (!auth || strncmp(auth, "Bearer ", 7) != 0 || !auth[7]))
        return fail(out, 401, "invalid_request_error", "invalid_api_key", NULL,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth.");
    struct fields f = {.n = 1};
    json_t *body = NULL;
    int rc;
    struct img *in = NULL, *mask = NULL;
    if (gen) {
        const char *ct = emu_header(r, "Content-Type");
        if (!ct || !strstr(ct, "application/json"))
            return fail(out, 400, "invalid_request_error", NULL, NULL,
                        "Send generations as application/json.");
        body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
        if (!json_is_object(body)) {
            json_decref(body);
            return fail(out, 400, "invalid_request_error", NULL, NULL,
                        "We could not parse the JSON body of your request.");
        }
        f.prompt = json_string_value(json_object_get(body, "prompt"));
        f.model = json_string_value(json_object_get(body, "model"));
        f.size = json_string_value(json_object_get(body, "size"));
        f.quality = json_string_value(json_object_get(body, "quality"));
        f.output_format = json_string_value(json_object_get(body, "output_format"));
        f.background = json_string_value(json_object_get(body, "background"));
        f.response_format = json_string_value(json_object_get(body, "response_format"));
        json_t *n = json_object_get(body, "n");
        if (n)
            f.n = json_is_integer(n) ? (long)json_integer_value(n) : -1;
    } else {
        f.prompt = part_text(r, "prompt", &f);
        f.model = part_text(r, "model", &f);
        f.size = part_text(r, "size", &f);
        f.quality = part_text(r, "quality", &f);
        f.output_format = part_text(r, "output_format", &f);
        f.background = part_text(r, "background", &f);
        f.response_format = part_text(r, "response_format", &f);
        const char *n = part_text(r, "n", &f);
        if (n)
            f.n = strtol(n, NULL, 10);
        const struct emu_part *ip = emu_part(r, "image", 0);
        if (!ip)
            ip = emu_part(r, "image[]", 0);
        const struct emu_part *mp = emu_part(r, "mask", 0);
        struct img_limits lim = {.max_input_bytes = 50L << 20, .max_pixels = 50000000};
        struct ig_error err = {0};
        if (!ip) {
            rc = fail(out, 400, "invalid_request_error", NULL, "image",
                      "Missing required parameter: 'image'.");
            goto done;
        }
        in = img_decode(ip->data.data, ip->data.len, &lim, &err);
        if (!in) {
            rc = fail(out, 400, "invalid_request_error", "invalid_image_file", "image",
                      "Invalid image file or mode for image 1, please check your image file.");
            goto done;
        }
        if (mp) {
            mask = img_decode(mp->data.data, mp->data.len, &lim, &err);
            if (!mask || mask->width != in->width || mask->height != in->height) {
                rc = fail(out, 400, "invalid_request_error", "invalid_image_file", "mask",
                          "Invalid mask image file: it must be a PNG of the image's size.");
                goto done;
            }
        }
    }
    rc = check(&f, out) ? 0 : answer_images(r, out, &f, in, mask);
done:
    img_free(in);
    img_free(mask);
    for (int i = 0; i < f.n_owned; i++)
        ig_free(f.owned[i]);
    json_decref(body);
    return rc;
}

const struct emu_vendor emu_vendor_openai = {
    .name = "openai",
    .handle = openai_handle,
};
