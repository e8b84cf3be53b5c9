/* SPDX-License-Identifier: MIT */
/* a1111.c -- the AUTOMATIC1111 stable-diffusion-webui API, emulated.
 *
 * POST /sdapi/v1/txt2img and /sdapi/v1/img2img (JSON) answer {images:
 * [b64 PNG, no data: prefix], parameters (the request echoed), info (a JSON
 * string: seed, all_seeds, sd_model_name, sd_model_hash, ...)}; img2img
 * takes init_images (b64; a data: prefix is tolerated) and a mask (white =
 * repaint). POST /sdapi/v1/extra-single-image upscales {image,
 * upscaling_resize} to {image, html_info}. Every answer carries
 * X-Process-Time. Errors: FastAPI 422 for bad fields, the API middleware's
 * {error, detail, body, errors} otherwise (404 "Sampler not found", 500
 * "Invalid encoded image"). The model hash is the fingerprint, so a
 * rotation is a checkpoint swap. Knobs: api_auth (0; 1: HTTP Basic is
 * required, as with --api-auth). */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const samplers[] = {"Euler a", "Euler", "DPM++ 2M", "DPM++ SDE", "DDIM",
                                       "UniPC", "LMS", "Heun", NULL};
static const char *const upscalers[] = {"None", "Lanczos", "Nearest", "R-ESRGAN 4x+", "ESRGAN_4x",
                                        "SwinIR 4x", NULL};

static int
mw_error(struct emu_resp *out, unsigned status, const char *error, const char *detail,
         const char *errors)
{
    return emu_json(out, status, json_pack("{s:s,s:s,s:s,s:s}", "error", error, "detail", detail,
                                           "body", "", "errors", errors));
}

static int
invalid(struct emu_resp *out, const char *field, const char *msg)
{
    return emu_json(out, 422, json_pack("{s:[{s:[s,s],s:s,s:s}]}", "detail", "loc", "body", field,
                                        "msg", msg, "type", "value_error"));
}

static int
listed(const char *const *list, const char *v)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], v) == 0)
            return 1;
    return 0;
}

static struct img *
b64_image(const char *text)
{
    if (!text)
        return NULL;
    if (strncmp(text, "data:", 5) == 0 && strchr(text, ','))
        text = strchr(text, ',') + 1;
    size_t len = strlen(text);
    if (len == 0 || len % 4)
        return NULL;
    unsigned char *raw = ig_malloc(len / 4 * 3 + 1);
    if (!raw)
        return NULL;
    int n = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)len);
    while (n > 0 && text[len - 1] == '=') {
        len--;
        n--;
    }
    struct img_limits lim = {.max_input_bytes = 50L << 20, .max_pixels = 50000000};
    struct ig_error err = {0};
    struct img *im = n > 0 ? img_decode(raw, (size_t)n, &lim, &err) : NULL;
    ig_free(raw);
    return im;
}

/* PNG, base64 without a prefix; the corrupt fault swaps in broken bytes. */
static json_t *
b64_png(const struct img *im, int corrupt)
{
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    json_t *v = NULL;
    if (corrupt)
        ig_buf_append(&enc, "\x89PNG\r\n\x1a\n-broken-", 16);
    else if (img_encode(im, IMG_FMT_PNG, 0, NULL, &enc, &err) != 0)
        return NULL;
    char *s = ig_malloc(4 * ((enc.len + 2) / 3) + 1);
    if (s) {
        int n = EVP_EncodeBlock((unsigned char *)s, (unsigned char *)enc.data, (int)enc.len);
        v = json_stringn(s, (size_t)n);
        ig_free(s);
    }
    ig_buf_free(&enc);
    return v;
}

static int
generate(struct emu_req *r, struct emu_resp *out, json_t *body, int img2img)
{
    const char *prompt = json_string_value(json_object_get(body, "prompt"));
    const char *neg = json_string_value(json_object_get(body, "negative_prompt"));
    json_t *wv = json_object_get(body, "width"), *hv = json_object_get(body, "height");
    if ((wv && !json_is_integer(wv)) || (hv && !json_is_integer(hv)))
        return invalid(out, wv && !json_is_integer(wv) ? "width" : "height",
                       "value is not a valid integer");
    int w = wv ? (int)json_integer_value(wv) : 512, h = hv ? (int)json_integer_value(hv) : 512;
    if (w < 64 || h < 64 || w > 2048 || h > 2048)
        return invalid(out, "width", "width and height must be between 64 and 2048");
    w -= w % 8;
    h -= h % 8;
    int batch = json_object_get(body, "batch_size")
                    ? (int)json_integer_value(json_object_get(body, "batch_size"))
                    : 1;
    int iters = json_object_get(body, "n_iter")
                    ? (int)json_integer_value(json_object_get(body, "n_iter"))
                    : 1;
    if (batch < 1 || iters < 1 || batch * iters > 16)
        return invalid(out, "batch_size", "batch_size x n_iter must be 1..16");
    const char *sampler = json_string_value(json_object_get(body, "sampler_name"));
    if (sampler && !listed(samplers, sampler))
        return mw_error(out, 404, "HTTPException", "Sampler not found", "");
    json_t *sv = json_object_get(body, "seed");
    long long seed = json_is_integer(sv) ? json_integer_value(sv) : -1;
    if (seed == -1)   /* random: a deterministic one here */
        seed = (long long)strlen(prompt ? prompt : "") * 2654435761LL % 4294967295LL;
    struct img *init = NULL, *mask = NULL;
    if (img2img) {
        json_t *inits = json_object_get(body, "init_images");
        if (!json_is_array(inits) || json_array_size(inits) == 0)
            return invalid(out, "init_images", "field required");
        if (!(init = b64_image(json_string_value(json_array_get(inits, 0)))))
            return mw_error(out, 500, "ValueError", "", "Invalid encoded image");
        const char *m = json_string_value(json_object_get(body, "mask"));
        if (m) {
            if (!(mask = b64_image(m))) {
                img_free(init);
                return mw_error(out, 500, "ValueError", "", "Invalid encoded image");
            }
            if (mask->width != init->width || mask->height != init->height) {
                struct ig_error err = {0};
                struct img *rs = img_resize(mask, init->width, init->height, "lanczos3", &err);
                img_free(mask);
                mask = rs;
            }
            for (size_t i = 0; mask && i < (size_t)mask->width * (size_t)mask->height; i++)
                mask->rgba[4 * i + 3] = (uint8_t)(255 - mask->rgba[4 * i]);
        }
        if (!wv && !hv) {
            w = init->width;
            h = init->height;
        }
    }
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "malformed_json") == 0) {
        img_free(init);
        img_free(mask);
        return emu_bytes(out, 200, "application/json", "{\"images\":[\"iVBO", 15);
    }
    char key[300];
    snprintf(key, sizeof key, "%.200s|%lld", prompt ? prompt : "", seed);
    emu_count_submit(r->emu, key);
    json_t *images = json_array(), *seeds = json_array();
    int corrupt = kind && strcmp(kind, "corrupt_image") == 0;
    for (int i = 0; i < batch * iters && !(kind && strcmp(kind, "no_image") == 0); i++) {
        struct img *pic;
        if (init) {
            pic = emu_edit(init, mask, prompt ? prompt : "", seed + i);
            if (pic && (pic->width != w || pic->height != h)) {
                struct ig_error err = {0};
                struct img *rs = img_resize(pic, w, h, "lanczos3", &err);
                img_free(pic);
                pic = rs;
            }
        } else {
            pic = emu_picture("a1111", prompt ? prompt : "", seed + i, emu_fingerprint(r->emu), w,
                              h);
        }
        json_t *b = pic ? b64_png(pic, corrupt) : NULL;
        img_free(pic);
        if (!b) {
            json_decref(images);
            json_decref(seeds);
            img_free(init);
            img_free(mask);
            return -1;
        }
        json_array_append_new(images, b);
        json_array_append_new(seeds, json_integer(seed + i));
    }
    img_free(init);
    img_free(mask);
    json_t *info = json_pack("{s:s,s:s,s:I,s:o,s:i,s:i,s:s,s:s,s:s,s:s}", "prompt",
                             prompt ? prompt : "", "negative_prompt", neg ? neg : "", "seed",
                             (json_int_t)seed, "all_seeds", seeds, "width", w, "height", h,
                             "sampler_name", sampler ? sampler : "Euler a", "sd_model_name",
                             "v1-5-pruned-emaonly", "sd_model_hash", emu_fingerprint(r->emu),
                             "version", "v1.10.1");
    char *info_s = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    json_t *params = json_deep_copy(body);
    json_object_del(params, "init_images");
    json_object_del(params, "mask");
    json_t *ans = json_pack("{s:o,s:o,s:s}", "images", images, "parameters", params, "info",
                            info_s ? info_s : "{}");
    free(info_s);
    return emu_json(out, 200, ans);
}

static int
upscale(struct emu_req *r, struct emu_resp *out, json_t *body)
{
    struct img *in = b64_image(json_string_value(json_object_get(body, "image")));
    if (!in)
        return mw_error(out, 500, "ValueError", "", "Invalid encoded image");
    const char *up = json_string_value(json_object_get(body, "upscaler_1"));
    if (up && !listed(upscalers, up)) {
        img_free(in);
        return mw_error(out, 404, "HTTPException", "Upscaler not found", "");
    }
    json_t *f = json_object_get(body, "upscaling_resize");
    double k = json_is_number(f) ? json_number_value(f) : 2;
    int mode = (int)json_integer_value(json_object_get(body, "resize_mode"));
    int w = mode == 1 ? (int)json_integer_value(json_object_get(body, "upscaling_resize_w"))
                      : (int)(in->width * k);
    int h = mode == 1 ? (int)json_integer_value(json_object_get(body, "upscaling_resize_h"))
                      : (int)(in->height * k);
    if (k < 1 || k > 8 || w < 1 || h < 1 || (long)w * h > 50000000L) {
        img_free(in);
        return invalid(out, "upscaling_resize", "the upscaled size is out of range");
    }
    struct ig_error err = {0};
    struct img *pic = img_resize(in, w, h, "lanczos3", &err);
    img_free(in);
    const char *kind = emu_fault_kind(r);
    json_t *b = pic ? b64_png(pic, kind && strcmp(kind, "corrupt_image") == 0) : NULL;
    img_free(pic);
    if (!b)
        return -1;
    return emu_json(out, 200, json_pack("{s:o,s:s}", "image", b, "html_info", "<p></p>"));
}

static int
a1111_handle(struct emu_req *r, struct emu_resp *out)
{
    emu_add_header(out, "X-Process-Time", "0.0123");
    if (emu_knob_int(r->emu, "api_auth", 0) == 1) {
        const char *auth = emu_header(r, "Authorization");
        if (!auth || strncmp(auth, "Basic ", 6) != 0 || !auth[6]) {
            emu_add_header(out, "WWW-Authenticate", "Basic");
            return emu_json(out, 401, json_pack("{s:s}", "detail",
                                                "Incorrect username or password"));
        }
    }
    int t2i = strcmp(r->url, "/sdapi/v1/txt2img") == 0;
    int i2i = strcmp(r->url, "/sdapi/v1/img2img") == 0;
    int up = strcmp(r->url, "/sdapi/v1/extra-single-image") == 0;
    if (strcmp(r->url, "/sdapi/v1/samplers") == 0) {
        json_t *list = json_array();
        for (int i = 0; samplers[i]; i++)
            json_array_append_new(list, json_pack("{s:s}", "name", samplers[i]));
        return emu_json(out, 200, list);
    }
    if (!t2i && !i2i && !up)
        return emu_json(out, 404, json_pack("{s:s}", "detail", "Not Found"));
    if (strcmp(r->method, "POST") != 0)
        return emu_json(out, 405, json_pack("{s:s}", "detail", "Method Not Allowed"));
    json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    int rc;
    if (!json_is_object(body))
        rc = emu_json(out, 422, json_pack("{s:[{s:[s,i],s:s,s:s}]}", "detail", "loc", "body", 0,
                                          "msg", "Expecting value", "type",
                                          "value_error.jsondecode"));
    else
        rc = up ? upscale(r, out, body) : generate(r, out, body, i2i);
    json_decref(body);
    return rc;
}

const struct emu_vendor emu_vendor_a1111 = {
    .name = "a1111",
    .handle = a1111_handle,
};
