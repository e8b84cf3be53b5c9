/* SPDX-License-Identifier: MIT */
/* photoroom.c -- the Photoroom APIs, emulated: v1 segment and v2 edit.
 *
 * POST /v1/segment (multipart image_file; format png|jpg|webp, channels
 * rgba|alpha, bg_color, size preview|medium|hd|full) and POST /v2/edit
 * (multipart imageFile; removeBackground, background.color,
 * export.format png|jpeg|jpg|webp, unsupported names reported in
 * pr-unsupported-attributes), both with x-api-key, answer the cutout as
 * raw bytes with x-uncertainty-score; v1 with accept: application/json
 * answers {"base64img"}. Errors: v1 {detail, status_code, type}, v2
 * {"error":{"message"}} (402: {"error":{"detail"}}); a bad key is 403.
 * Not emulated: GET /v2/edit with imageUrl (the emulator fetches nothing),
 * AI backgrounds, shadows, relighting, expand, upscale and the other v2
 * families, /v1/render. */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
v1_error(struct emu_resp *out, unsigned status, const char *detail, const char *type)
{
    return emu_json(out, status, json_pack("{s:s,s:i,s:s}", "detail", detail, "status_code",
                                           (int)status, "type", type));
}

static int
v2_error(struct emu_resp *out, unsigned status, const char *message)
{
    return emu_json(out, status, json_pack("{s:{s:s}}", "error", status == 402 ? "detail"
                                                                               : "message",
                                           message));
}

static char *
text(struct emu_req *r, const char *name)
{
    const struct emu_part *p = emu_part(r, name, 0);
    return p ? ig_strndup(p->data.data ? p->data.data : "", p->data.len) : NULL;
}

static int
hex_color(const char *c, int rgb[3])
{
    if (c[0] == '#')
        c++;
    size_t n = strlen(c);
    if (n != 6 && n != 8)
        return -1;
    for (int i = 0; i < 3; i++) {
        char t[3] = {c[2 * i], c[2 * i + 1], 0}, *end;
        rgb[i] = (int)strtol(t, &end, 16);
        if (*end)
            return -1;
    }
    return 0;
}

static int
answer(struct emu_req *r, struct emu_resp *out, int v2)
{
    const char *fname = v2 ? "imageFile" : "image_file";
    const struct emu_part *f = emu_part(r, fname, 0);
    char *fmt = text(r, v2 ? "export.format" : "format"), *bg = text(r, v2 ? "background.color"
                                                                            : "bg_color"),
         *channels = v2 ? NULL : text(r, "channels"), *size = v2 ? NULL : text(r, "size"),
         *rm = v2 ? text(r, "removeBackground") : NULL;
    struct img *in = NULL, *pic = NULL;
    int rc;
    char unsupported[128] = "";
    if (!f || f->data.len == 0) {
        rc = v2 ? v2_error(out, 400, "imageFile is required")
                : v1_error(out, 400, "Please provide an image.", "missing_image");
        goto done;
    }
    struct img_limits lim = {.max_input_bytes = 30L << 20, .max_pixels = 50000000};
    struct ig_error err = {0};
    if (!(in = img_decode(f->data.data, f->data.len, &lim, &err))) {
        rc = v2 ? v2_error(out, 400, "The image could not be decoded")
                : v1_error(out, 400, "The image could not be decoded.", "invalid_image");
        goto done;
    }
    const char *fm = fmt ? fmt : "png";
    int ok = strcmp(fm, "png") == 0 || strcmp(fm, "jpg") == 0 || strcmp(fm, "webp") == 0 ||
             (v2 && strcmp(fm, "jpeg") == 0);
    if (!ok) {
        rc = v2 ? v2_error(out, 400, "export.format must be one of png, jpeg, jpg, webp, avif")
                : v1_error(out, 400, "format must be one of png, jpg, webp", "invalid_format");
        goto done;
    }
    if (rm && strcmp(rm, "true") != 0 && strcmp(rm, "false") != 0) {
        rc = v2_error(out, 400, "removeBackground must be boolean");
        goto done;
    }
    int rgb[3];
    if (bg && hex_color(bg, rgb) != 0) {
        rc = v2 ? v2_error(out, 400, "background.color must be a hex colour")
                : v1_error(out, 400, "bg_color must be a hex colour", "invalid_bg_color");
        goto done;
    }
    double max_mp = !size || strcmp(size, "full") == 0 ? 36
                    : strcmp(size, "hd") == 0          ? 4
                    : strcmp(size, "medium") == 0      ? 1.5
                    : strcmp(size, "preview") == 0     ? 0.25
                                                       : -1;
    if (max_mp < 0) {
        rc = v1_error(out, 400, "size must be one of preview, medium, hd, full", "invalid_size");
        goto done;
    }
    if (v2)
        for (int i = 0; i < r->n_parts; i++) {
            const char *n = r->parts[i].name;
            if (strcmp(n, "imageFile") && strcmp(n, "removeBackground") &&
                strcmp(n, "background.color") && strcmp(n, "export.format") &&
                strlen(unsupported) + strlen(n) + 2 < sizeof unsupported)
                snprintf(unsupported + strlen(unsupported),
                         sizeof unsupported - strlen(unsupported), "%s%s",
                         unsupported[0] ? "," : "", n);
        }
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "quota") == 0) {
        rc = v2 ? v2_error(out, 402, "API credits exhausted. Visit "
                                     "https://app.photoroom.com/api-dashboard to purchase more "
                                     "API credits")
                : v1_error(out, 402, "API credits exhausted.", "insufficient_credits");
        goto done;
    }
    if (kind && strcmp(kind, "rate_limit") == 0) {
        json_int_t ra = json_integer_value(json_object_get(r->fault, "retry_after"));
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)(ra > 0 ? ra : 1));
        emu_add_header(out, "Retry-After", secs);
        rc = v2 ? v2_error(out, 429, "Too many requests")
                : v1_error(out, 429, "Too many requests", "rate_limited");
        goto done;
    }
    pic = rm && strcmp(rm, "false") == 0 ? img_clone(in) : emu_cutout(in);
    if (pic && (double)pic->width * pic->height > max_mp * 1e6) {
        double k = sqrt(max_mp * 1e6 / ((double)pic->width * pic->height));
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
    enum img_format ef = strcmp(fm, "png") == 0 ? IMG_FMT_PNG
                         : strcmp(fm, "webp") == 0 ? IMG_FMT_WEBP
                                                   : IMG_FMT_JPEG;
    struct ig_buf enc = {0};
    if (kind && strcmp(kind, "corrupt_image") == 0)
        ig_buf_append(&enc, "\x89PNG\r\n\x1a\n-broken-", 16);
    else if (kind && strcmp(kind, "no_image") == 0)
        ig_buf_append(&enc, "", 0);
    else if (img_encode(pic, ef, ef == IMG_FMT_JPEG ? 80 : 90, NULL, &enc, &err) != 0) {
        rc = -1;
        goto done;
    }
    emu_add_header(out, "x-uncertainty-score", "0.12");
    emu_add_header(out, "x-emulator-fingerprint", emu_fingerprint(r->emu));
    if (unsupported[0])
        emu_add_header(out, "pr-unsupported-attributes", unsupported);
    const char *accept = emu_header(r, "accept");
    if (!v2 && accept && strstr(accept, "application/json")) {
        char *s = ig_malloc(4 * ((enc.len + 2) / 3) + 1);
        int n = s ? EVP_EncodeBlock((unsigned char *)s, (unsigned char *)enc.data, (int)enc.len)
                  : 0;
        rc = s ? emu_json(out, 200, json_pack("{s:s%}", "base64img", s, (size_t)n)) : -1;
        ig_free(s);
    } else {
        rc = emu_bytes(out, 200, ef == IMG_FMT_PNG ? "image/png"
                                 : ef == IMG_FMT_WEBP ? "image/webp"
                                                      : "image/jpeg",
                       enc.data, enc.len);
    }
    ig_buf_free(&enc);
done:
    img_free(in);
    img_free(pic);
    ig_free(fmt);
    ig_free(bg);
    ig_free(channels);
    ig_free(size);
    ig_free(rm);
    return rc;
}

static int
photoroom_handle(struct emu_req *r, struct emu_resp *out)
{
    const char *key = emu_header(r, "x-api-key");
    if (emu_auth_required(r->emu) && (!key || !*key))
        return emu_json(out, 403, json_pack("{s:s}", "detail", "Forbidden"));
    if (strcmp(r->url, "/v1/account") == 0)
        return emu_json(out, 200, json_pack("{s:{s:i,s:i}}", "credits", "available", 100,
                                             "subscription", 100));
    if (strcmp(r->url, "/v2/account") == 0)
        return emu_json(out, 200, json_pack("{s:{s:i,s:i},s:s}", "images", "available", 100,
                                             "subscription", 100, "plan", "basic"));
    int v1 = strcmp(r->url, "/v1/segment") == 0, v2 = strcmp(r->url, "/v2/edit") == 0;
    if (!v1 && !v2)
        return emu_json(out, 404, json_pack("{s:s}", "detail", "Not Found"));
    if (strcmp(r->method, "POST") != 0)
        return v2 ? v2_error(out, 400, "imageUrl inputs (GET) are not emulated: POST imageFile")
                  : emu_json(out, 405, json_pack("{s:s}", "detail", "Method Not Allowed"));
    return answer(r, out, v2);
}

const struct emu_vendor emu_vendor_photoroom = {
    .name = "photoroom",
    .handle = photoroom_handle,
};
