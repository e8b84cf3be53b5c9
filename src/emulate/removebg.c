/* SPDX-License-Identifier: MIT */
/* removebg.c -- the remove.bg API, emulated.
 *
 * POST /v1.0/removebg with X-Api-Key, as multipart (image_file) or JSON
 * (image_file_b64); exactly one source. (Form-urlencoded bodies, which the
 * vendor also takes, are not parsed here: they carry no source.) The answer is the cutout as
 * raw bytes (PNG keeps the alpha, JPG is flattened; channels=alpha gives
 * the mask alone) with X-Width, X-Height, X-Type, X-Credits-Charged and the
 * X-Ratelimit-* headers, or with accept: application/json
 * {"data":{"result_b64"}}. size preview (0.25 MP, 0.25 credit) shrinks the
 * result; full, 4k, auto and 50MP keep it (1 credit). Errors are
 * {"errors":[{title, code}]}: 400 per field, 402 credits, 403 key, 429 rate.
 * Not emulated: image_url and bg_image_url (the emulator fetches nothing:
 * 400 failed_image_download), format zip (400 invalid_format), roi, crop,
 * scale, position, shadows. GET /v1.0/account answers the credit balance. */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
rb_error(struct emu_resp *out, unsigned status, const char *title, const char *code)
{
    json_t *e = json_pack("{s:s}", "title", title);
    if (code)
        json_object_set_new(e, "code", json_string(code));
    return emu_json(out, status, json_pack("{s:[o]}", "errors", e));
}

/* A field from multipart, or from the JSON or form body. */
static char *
field(struct emu_req *r, json_t *body, const char *name)
{
    const struct emu_part *p = emu_part(r, name, 0);
    if (p)
        return ig_strndup(p->data.data ? p->data.data : "", p->data.len);
    const char *v = json_string_value(json_object_get(body, name));
    return v ? ig_strdup(v) : NULL;
}

static struct img *
decode(const void *data, size_t len)
{
    struct img_limits lim = {.max_input_bytes = 22L << 20, .max_pixels = 50000000};
    struct ig_error err = {0};
    return img_decode(data, len, &lim, &err);
}

static struct img *
from_b64(const char *text)
{
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
    struct img *im = n > 0 ? decode(raw, (size_t)n) : NULL;
    ig_free(raw);
    return im;
}

static int
hexval(const char *s, int n)
{
    char tmp[3] = {s[0], n == 2 ? s[1] : s[0], 0};
    char *end;
    long v = strtol(tmp, &end, 16);
    return *end ? -1 : (int)v;
}

/* bg_color: rrggbb, rgb or rrggbbaa in hex; -1 when invalid. */
static int
parse_color(const char *c, int rgb[3])
{
    size_t n = strlen(c);
    if (n != 3 && n != 6 && n != 8)
        return -1;
    for (int i = 0; i < 3; i++) {
        rgb[i] = n == 3 ? hexval(c + i, 1) : hexval(c + 2 * i, 2);
        if (rgb[i] < 0)
            return -1;
    }
    return 0;
}

static int
removebg(struct emu_req *r, struct emu_resp *out)
{
    json_t *body = NULL;
    const char *ct = emu_header(r, "Content-Type");
    if (ct && strstr(ct, "application/json"))
        body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    char *b64 = field(r, body, "image_file_b64"), *url = field(r, body, "image_url"),
         *size = field(r, body, "size"), *format = field(r, body, "format"),
         *channels = field(r, body, "channels"), *bg = field(r, body, "bg_color"),
         *type = field(r, body, "type");
    const struct emu_part *file = emu_part(r, "image_file", 0);
    struct img *in = NULL, *pic = NULL;
    int rc;
    int sources = (file != NULL) + (b64 != NULL) + (url != NULL);
    if (sources == 0) {
        rc = rb_error(out, 400, "No image given", "missing_source");
        goto done;
    }
    if (sources > 1) {
        rc = rb_error(out, 400, "Multiple image sources given", "multiple_sources");
        goto done;
    }
    if (url) {
        rc = rb_error(out, 400, "Failed to download image from given image_url (the emulator "
                                "fetches no URLs)",
                      "failed_image_download");
        goto done;
    }
    if (file && file->data.len > 22L << 20) {
        rc = rb_error(out, 400, "File too large", "file_too_large");
        goto done;
    }
    in = file ? decode(file->data.data, file->data.len) : from_b64(b64);
    if (!in) {
        rc = rb_error(out, 400, "Failed to read image", "failed_to_read_image");
        goto done;
    }
    const char *sz = size ? size : "preview";
    double max_mp = strcmp(sz, "preview") == 0 || strcmp(sz, "small") == 0 ||
                            strcmp(sz, "regular") == 0
                        ? 0.25
                    : strcmp(sz, "medium") == 0 ? 1.5
                    : strcmp(sz, "hd") == 0     ? 4
                    : strcmp(sz, "full") == 0 || strcmp(sz, "4k") == 0 ||
                            strcmp(sz, "auto") == 0 || strcmp(sz, "50MP") == 0
                        ? 50
                        : -1;
    if (max_mp < 0) {
        rc = rb_error(out, 400, "Invalid size", "invalid_size");
        goto done;
    }
    const char *fmt = format ? format : "auto";
    if (strcmp(fmt, "auto") != 0 && strcmp(fmt, "png") != 0 && strcmp(fmt, "jpg") != 0 &&
        strcmp(fmt, "webp") != 0) {
        rc = rb_error(out, 400, "Invalid format (zip is not emulated)", "invalid_format");
        goto done;
    }
    if (channels && strcmp(channels, "rgba") != 0 && strcmp(channels, "alpha") != 0) {
        rc = rb_error(out, 400, "Invalid channels", "invalid_channels");
        goto done;
    }
    int rgb[3];
    if (bg && parse_color(bg, rgb) != 0) {
        rc = rb_error(out, 400, "Invalid bg_color", "invalid_bg_color");
        goto done;
    }
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "rate_limit") == 0) {
        json_int_t ra = json_integer_value(json_object_get(r->fault, "retry_after"));
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)(ra > 0 ? ra : 1));
        emu_add_header(out, "Retry-After", secs);
        rc = rb_error(out, 429, "Rate limit exceeded", NULL);
        goto done;
    }
    if (kind && strcmp(kind, "quota") == 0) {
        rc = rb_error(out, 402, "Insufficient credits", NULL);
        goto done;
    }
    if (kind && strcmp(kind, "moderation") == 0) {
        /* remove.bg has no moderation; the nearest refusal is this */
        rc = rb_error(out, 400, "Could not identify foreground in image", "unknown_foreground");
        goto done;
    }
    pic = emu_cutout(in);
    if (pic && (double)pic->width * pic->height > max_mp * 1e6) {
        double k = sqrt(max_mp * 1e6 / ((double)pic->width * pic->height));
        struct ig_error err = {0};
        struct img *rs = img_resize(pic, (int)(pic->width * k), (int)(pic->height * k),
                                    "lanczos3", &err);
        img_free(pic);
        pic = rs;
    }
    if (!pic) {
        rc = -1;
        goto done;
    }
    size_t npx = (size_t)pic->width * (size_t)pic->height;
    if (channels && strcmp(channels, "alpha") == 0) {
        for (size_t i = 0; i < npx; i++) {
            uint8_t a = pic->rgba[4 * i + 3];
            pic->rgba[4 * i] = pic->rgba[4 * i + 1] = pic->rgba[4 * i + 2] = a;
            pic->rgba[4 * i + 3] = 255;
        }
    } else if (bg) {
        for (size_t i = 0; i < npx; i++) {
            double a = pic->rgba[4 * i + 3] / 255.0;
            for (int c = 0; c < 3; c++)
                pic->rgba[4 * i + (size_t)c] =
                    (uint8_t)(pic->rgba[4 * i + (size_t)c] * a + rgb[c] * (1 - a) + 0.5);
            pic->rgba[4 * i + 3] = 255;
        }
    }
    enum img_format f = strcmp(fmt, "jpg") == 0 ? IMG_FMT_JPEG
                        : strcmp(fmt, "webp") == 0 ? IMG_FMT_WEBP
                                                   : IMG_FMT_PNG;
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    if (kind && strcmp(kind, "corrupt_image") == 0)
        ig_buf_append(&enc, "\x89PNG\r\n\x1a\n-broken-", 16);
    else if (kind && strcmp(kind, "no_image") == 0)
        ig_buf_append(&enc, "", 0);
    else if (img_encode(pic, f, 90, NULL, &enc, &err) != 0) {
        rc = -1;
        goto done;
    }
    char w[16], h[16], credits[16];
    snprintf(w, sizeof w, "%d", pic->width);
    snprintf(h, sizeof h, "%d", pic->height);
    snprintf(credits, sizeof credits, "%g", max_mp <= 0.25 ? 0.25 : 1.0);
    emu_add_header(out, "X-Width", w);
    emu_add_header(out, "X-Height", h);
    emu_add_header(out, "X-Type", type && strcmp(type, "auto") != 0 ? type : "other");
    emu_add_header(out, "X-Credits-Charged", credits);
    emu_add_header(out, "X-Ratelimit-Limit", "500");
    emu_add_header(out, "X-Ratelimit-Remaining", "499");
    emu_add_header(out, "x-emulator-fingerprint", emu_fingerprint(r->emu));
    const char *accept = emu_header(r, "accept");
    if (accept && strstr(accept, "application/json")) {
        if (kind && strcmp(kind, "malformed_json") == 0) {
            rc = emu_bytes(out, 200, "application/json", "{\"data\":{\"result_b64", 19);
        } else {
            struct ig_buf b = {0};
            void *p;
            ig_buf_append(&b, "", 0);
            p = b.data;
            rc = ig_grow(&p, &b.cap, 4 * ((enc.len + 2) / 3) + 1, 1);
            if (rc == 0) {
                b.data = p;
                b.len = (size_t)EVP_EncodeBlock((unsigned char *)b.data,
                                                (unsigned char *)enc.data, (int)enc.len);
                rc = emu_json(out, 200, json_pack("{s:{s:s%}}", "data", "result_b64", b.data,
                                                  b.len));
            }
            ig_buf_free(&b);
        }
    } else {
        rc = emu_bytes(out, 200, f == IMG_FMT_JPEG ? "image/jpeg"
                                 : f == IMG_FMT_WEBP ? "image/webp"
                                                     : "image/png",
                       enc.data, enc.len);
    }
    ig_buf_free(&enc);
done:
    img_free(in);
    img_free(pic);
    ig_free(b64);
    ig_free(url);
    ig_free(size);
    ig_free(format);
    ig_free(channels);
    ig_free(bg);
    ig_free(type);
    json_decref(body);
    return rc;
}

static int
removebg_handle(struct emu_req *r, struct emu_resp *out)
{
    const char *key = emu_header(r, "X-Api-Key");
    if (emu_auth_required(r->emu) && (!key || !*key))
        return rb_error(out, 403, "API Key invalid", "auth_failed");
    if (strcmp(r->url, "/v1.0/account") == 0 && strcmp(r->method, "GET") == 0)
        return emu_json(out, 200,
                        json_pack("{s:{s:{s:{s:i,s:i,s:i,s:i},s:{s:i,s:s}}}}", "data",
                                  "attributes", "credits", "total", 200, "subscription", 150,
                                  "payg", 50, "enterprise", 0, "api", "free_calls", 50, "sizes",
                                  "all"));
    if (strcmp(r->url, "/v1.0/removebg") == 0)
        return strcmp(r->method, "POST") == 0 ? removebg(r, out)
                                              : rb_error(out, 405, "Method not allowed", NULL);
    return rb_error(out, 404, "Not found", NULL);
}

const struct emu_vendor emu_vendor_removebg = {
    .name = "removebg",
    .handle = removebg_handle,
};
