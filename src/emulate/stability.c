/* SPDX-License-Identifier: MIT */
/* stability.c -- Stability AI REST v2beta (stable-image), emulated.
 *
 * Every POST is multipart/form-data with `authorization: Bearer`. The
 * accept header picks the answer: an image type (the default) gives raw bytes
 * with `finish-reason` and `seed` headers; application/json gives {image
 * (b64), finish_reason, seed}. Served: generate/{core,ultra,sd3},
 * edit/inpaint (mask white = repaint), edit/remove-background (RGBA),
 * upscale/fast (4x, sync) and upscale/creative (async: {id} of 64 hex, then
 * GET /v2beta/results/{id} answers 202 {id, status: "in-progress"} and
 * finally the image; another key gets 404, as at Stability). Errors are
 * {id, name, errors[]}; moderation is 403 content_moderation, or (fault
 * content_filtered) a 200 whose finish-reason is CONTENT_FILTERED. Knobs
 * (⚠ in the reference): auth_status (401), pending_polls (2), json_result
 * (0: JSON results carry the b64 in "image", 1: in "result"),
 * reject_json_body (1: a JSON body is a 400). */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JOBS 64

struct job {
    char id[65];
    char key[128];               /* the API key that started it */
    struct img *result;
    int png, jpeg, polls;
    long long seed;
};

struct stab_state {
    struct job *jobs[MAX_JOBS];
    unsigned next;
};

static void
job_free(struct job *j)
{
    if (j) {
        img_free(j->result);
        ig_free(j);
    }
}

static void
state_free(void *p)
{
    struct stab_state *s = p;
    if (!s)
        return;
    for (int i = 0; i < MAX_JOBS; i++)
        job_free(s->jobs[i]);
    ig_free(s);
}

static int
error(struct emu_resp *out, unsigned status, const char *name, const char *msg)
{
    char id[33];
    snprintf(id, sizeof id, "%032x", status * 2654435761u);
    return emu_json(out, status, json_pack("{s:s,s:s,s:[s]}", "id", id, "name", name, "errors",
                                           msg));
}

static char *
text(struct emu_req *r, const char *name)
{
    const struct emu_part *p = emu_part(r, name, 0);
    return p ? ig_strndup(p->data.data ? p->data.data : "", p->data.len) : NULL;
}

static struct img *
image_part(struct emu_req *r, const char *name)
{
    const struct emu_part *p = emu_part(r, name, 0);
    struct img_limits lim = {.max_input_bytes = 10L << 20, .max_pixels = 16777216};
    struct ig_error err = {0};
    return p && p->data.len ? img_decode(p->data.data, p->data.len, &lim, &err) : NULL;
}

static int
aspect_size(const char *ar, int *w, int *h)
{
    static const char *const ok[] = {"21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16",
                                     "9:21", NULL};
    for (int i = 0; ok[i]; i++)
        if (strcmp(ok[i], ar) == 0) {
            int a, b;
            sscanf(ar, "%d:%d", &a, &b);
            double width = sqrt(1048576.0 * a / b);
            *w = (int)(width / 64 + 0.5) * 64;
            *h = (int)(width * b / a / 64 + 0.5) * 64;
            return 0;
        }
    return -1;
}

/* The answer for a finished image, in the shape accept asked for. */
static int
answer_image(struct emu_req *r, struct emu_resp *out, const struct img *pic, const char *fmt,
             long long seed, const char *finish, int corrupt, int status)
{
    enum img_format f = strcmp(fmt, "jpeg") == 0 ? IMG_FMT_JPEG
                        : strcmp(fmt, "webp") == 0 ? IMG_FMT_WEBP
                                                   : IMG_FMT_PNG;
    struct ig_buf enc = {0}, b64 = {0};
    struct ig_error err = {0};
    if (corrupt)
        ig_buf_append(&enc, "\x89PNG\r\n\x1a\n-broken-", 16);
    else if (img_encode(pic, f, 90, NULL, &enc, &err) != 0)
        return -1;
    char seed_s[32], mime[32];
    snprintf(seed_s, sizeof seed_s, "%lld", seed);
    snprintf(mime, sizeof mime, "image/%s", fmt);
    const char *accept = emu_header(r, "accept");
    int rc;
    if (accept && strstr(accept, "application/json")) {
        void *p;
        ig_buf_append(&b64, "", 0);
        p = b64.data;
        if (ig_grow(&p, &b64.cap, 4 * ((enc.len + 2) / 3) + 1, 1) != 0) {
            ig_buf_free(&enc);
            return -1;
        }
        b64.data = p;
        b64.len = (size_t)EVP_EncodeBlock((unsigned char *)b64.data,
                                          (unsigned char *)enc.data, (int)enc.len);
        const char *field = emu_knob_int(r->emu, "json_result", 0) == 1 ? "result" : "image";
        rc = emu_json(out, (unsigned)status,
                      json_pack("{s:s%,s:s,s:I}", field, b64.data, b64.len, "finish_reason",
                                finish, "seed", (json_int_t)seed));
    } else {
        emu_add_header(out, "finish-reason", finish);
        emu_add_header(out, "seed", seed_s);
        rc = emu_bytes(out, (unsigned)status, mime, enc.data, enc.len);
    }
    emu_add_header(out, "x-emulator-fingerprint", emu_fingerprint(r->emu));
    ig_buf_free(&enc);
    ig_buf_free(&b64);
    return rc;
}

static struct stab_state *
state_of(struct emu *e)
{
    struct stab_state *s = emu_vendor_state(e);
    if (!s && (s = ig_calloc(1, sizeof *s)))
        emu_set_vendor_state(e, s, state_free);
    return s;
}

/* ---- One POST ------------------------------------------------------------------ */

enum op { OP_CORE, OP_ULTRA, OP_SD3, OP_INPAINT, OP_REMOVE_BG, OP_UPSCALE_FAST, OP_CREATIVE };

static const struct {
    const char *path;
    enum op op;
} routes[] = {
    {"/v2beta/stable-image/generate/core", OP_CORE},
    {"/v2beta/stable-image/generate/ultra", OP_ULTRA},
    {"/v2beta/stable-image/generate/sd3", OP_SD3},
    {"/v2beta/stable-image/edit/inpaint", OP_INPAINT},
    {"/v2beta/stable-image/edit/remove-background", OP_REMOVE_BG},
    {"/v2beta/stable-image/upscale/fast", OP_UPSCALE_FAST},
    {"/v2beta/stable-image/upscale/creative", OP_CREATIVE},
    {NULL, 0},
};

static int
post(struct emu_req *r, struct emu_resp *out, enum op op, const char *api_key)
{
    const char *ct = emu_header(r, "Content-Type");
    if (!ct || strncmp(ct, "multipart/form-data", 19) != 0)
        return emu_knob_int(r->emu, "reject_json_body", 1)
                   ? error(out, 400, "bad_request",
                           "content-type: must be multipart/form-data")
                   : error(out, 415, "unsupported_media_type", "use multipart/form-data");
    char *prompt = text(r, "prompt"), *fmt_s = text(r, "output_format"),
         *seed_s = text(r, "seed"), *ar = text(r, "aspect_ratio"), *strength = text(r, "strength");
    struct img *in = NULL, *mask = NULL, *pic = NULL;
    int rc = 0;
    const char *fmt = fmt_s ? fmt_s : "png";
    int needs_prompt = op == OP_CORE || op == OP_ULTRA || op == OP_SD3 || op == OP_INPAINT ||
                       op == OP_CREATIVE;
    int needs_image = op == OP_INPAINT || op == OP_REMOVE_BG || op == OP_UPSCALE_FAST ||
                      op == OP_CREATIVE;
    if (needs_prompt && (!prompt || !*prompt)) {
        rc = error(out, 400, "bad_request", "prompt: is required");
        goto done;
    }
    if (prompt && strlen(prompt) > 10000) {
        rc = error(out, 400, "bad_request", "prompt: must be at most 10000 characters");
        goto done;
    }
    int fmt_ok = strcmp(fmt, "png") == 0 || strcmp(fmt, "jpeg") == 0 || strcmp(fmt, "webp") == 0;
    if (op == OP_SD3)
        fmt_ok = strcmp(fmt, "png") == 0 || strcmp(fmt, "jpeg") == 0;
    if (op == OP_REMOVE_BG)
        fmt_ok = strcmp(fmt, "png") == 0 || strcmp(fmt, "webp") == 0;
    if (!fmt_ok) {
        rc = error(out, 400, "bad_request", "output_format: must be one of the allowed values");
        goto done;
    }
    long long seed = 0;
    if (seed_s) {
        char *end;
        seed = strtoll(seed_s, &end, 10);
        if (*end || seed < 0 || seed > 4294967294LL) {
            rc = error(out, 400, "bad_request", "seed: must be between 0 and 4294967294");
            goto done;
        }
    }
    if (seed == 0)   /* 0 is "random": a deterministic one here */
        seed = (long long)(strlen(prompt ? prompt : "") * 104729 % 4294967294LL) + 1;
    if (needs_image) {
        if (!emu_part(r, "image", 0)) {
            rc = error(out, 400, "bad_request", "image: is required");
            goto done;
        }
        if (!(in = image_part(r, "image"))) {
            rc = error(out, 400, "bad_request", "image: could not be decoded");
            goto done;
        }
        if (op == OP_UPSCALE_FAST && (in->width < 32 || in->height < 32 || in->width > 1536 ||
                                      in->height > 1536 ||
                                      (long)in->width * in->height < 1024 ||
                                      (long)in->width * in->height > 1048576)) {
            rc = error(out, 400, "bad_request",
                       "image: width and height must be 32 to 1536 pixels, 1024 to 1048576 "
                       "pixels in total");
            goto done;
        }
        if ((op == OP_CREATIVE || op == OP_REMOVE_BG || op == OP_INPAINT) &&
            (in->width < 64 || in->height < 64)) {
            rc = error(out, 400, "bad_request", "image: each side must be at least 64 pixels");
            goto done;
        }
    }
    if (op == OP_ULTRA && emu_part(r, "image", 0) && !strength) {
        rc = error(out, 400, "bad_request", "strength: is required when image is given");
        goto done;
    }
    int w = 1024, h = 1024;
    if (ar && (op == OP_CORE || op == OP_ULTRA || op == OP_SD3) && aspect_size(ar, &w, &h) != 0) {
        rc = error(out, 400, "bad_request", "aspect_ratio: must be one of the allowed values");
        goto done;
    }
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "rate_limit") == 0) {
        json_int_t ra = json_integer_value(json_object_get(r->fault, "retry_after"));
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)(ra > 0 ? ra : 60));
        emu_add_header(out, "Retry-After", secs);
        rc = error(out, 429, "rate_limit_exceeded",
                   "You have exceeded the rate limit of 150 requests within a 10 second period");
        goto done;
    }
    if (kind && strcmp(kind, "quota") == 0) {
        rc = error(out, 402, "payment_required",
                   "You lack sufficient credits to make this request");
        goto done;
    }
    if (kind && strcmp(kind, "moderation") == 0) {
        rc = error(out, 403, "content_moderation",
                   "Your request was flagged by our content moderation system, as a result your "
                   "request was denied and you were not charged.");
        goto done;
    }
    if (kind && strcmp(kind, "malformed_json") == 0) {
        rc = emu_bytes(out, 200, "application/json", "{\"image\": \"iVBO", 14);
        goto done;
    }
    if (kind && strcmp(kind, "no_image") == 0) {
        emu_add_header(out, "finish-reason", "SUCCESS");
        rc = emu_bytes(out, 200, "image/png", "", 0);
        goto done;
    }
    char key[300];
    snprintf(key, sizeof key, "%.200s|%lld", prompt ? prompt : "", seed);
    emu_count_submit(r->emu, key);
    switch (op) {
    case OP_CORE:
    case OP_ULTRA:
    case OP_SD3: {
        const char *variant = op == OP_CORE ? "stability-core" : op == OP_ULTRA ? "stability-ultra"
                                                                                : "stability-sd3";
        pic = emu_picture(variant, prompt, seed, emu_fingerprint(r->emu), w, h);
        break;
    }
    case OP_INPAINT:
        mask = image_part(r, "mask");
        if (mask && (mask->width != in->width || mask->height != in->height)) {
            /* Stability resizes the mask to the image */
            struct ig_error err = {0};
            struct img *rs = img_resize(mask, in->width, in->height, "lanczos3", &err);
            img_free(mask);
            mask = rs;
        }
        if (mask)
            for (size_t i = 0; i < (size_t)mask->width * (size_t)mask->height; i++)
                mask->rgba[4 * i + 3] = (uint8_t)(255 - mask->rgba[4 * i]);
        pic = emu_edit(in, mask, prompt, seed);
        break;
    case OP_REMOVE_BG:
        pic = emu_cutout(in);
        break;
    case OP_UPSCALE_FAST:
    case OP_CREATIVE: {
        int uw = in->width * 4, uh = in->height * 4;
        if (op == OP_CREATIVE && (uw > 4096 || uh > 4096)) {
            double k = 4096.0 / (uw > uh ? uw : uh);
            uw = (int)(uw * k);
            uh = (int)(uh * k);
        }
        struct ig_error err = {0};
        pic = img_resize(in, uw, uh, "lanczos3", &err);
        break;
    }
    }
    if (!pic) {
        rc = -1;
        goto done;
    }
    if (kind && strcmp(kind, "content_filtered") == 0) {
        /* the picture comes back blurred: a coarse box down and up */
        struct ig_error err = {0};
        struct img *small = img_resize(pic, pic->width / 16 > 0 ? pic->width / 16 : 1,
                                       pic->height / 16 > 0 ? pic->height / 16 : 1, "box", &err);
        struct img *blur = small ? img_resize(small, pic->width, pic->height, "lanczos3", &err)
                                 : NULL;
        img_free(small);
        if (blur) {
            img_free(pic);
            pic = blur;
        }
    }
    int corrupt = kind && strcmp(kind, "corrupt_image") == 0;
    const char *finish = kind && strcmp(kind, "content_filtered") == 0 ? "CONTENT_FILTERED"
                                                                       : "SUCCESS";
    if (op == OP_CREATIVE) {
        struct job *j = ig_calloc(1, sizeof *j);
        if (!j) {
            rc = -1;
            goto done;
        }
        char rid[48];
        emu_request_id(r->emu, "", rid, sizeof rid);
        unsigned char digest[32];
        unsigned int dlen = 0;
        EVP_Digest(rid, strlen(rid), digest, &dlen, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
            snprintf(j->id + 2 * i, 3, "%02x", digest[i]);
        snprintf(j->key, sizeof j->key, "%s", api_key ? api_key : "");
        j->result = pic;
        pic = NULL;
        j->seed = seed;
        j->png = strcmp(fmt, "png") == 0;
        j->jpeg = strcmp(fmt, "jpeg") == 0;
        pthread_mutex_lock(emu_lock(r->emu));
        struct stab_state *s = state_of(r->emu);
        if (s) {
            unsigned slot = s->next++ % MAX_JOBS;
            job_free(s->jobs[slot]);
            s->jobs[slot] = j;
        }
        pthread_mutex_unlock(emu_lock(r->emu));
        if (!s) {
            job_free(j);
            rc = -1;
            goto done;
        }
        rc = emu_json(out, 200, json_pack("{s:s}", "id", j->id));
        goto done;
    }
    rc = answer_image(r, out, pic, fmt, seed, finish, corrupt, 200);
done:
    img_free(in);
    img_free(mask);
    img_free(pic);
    ig_free(prompt);
    ig_free(fmt_s);
    ig_free(seed_s);
    ig_free(ar);
    ig_free(strength);
    return rc;
}

static int
results(struct emu_req *r, struct emu_resp *out, const char *id, const char *api_key)
{
    long pending = emu_knob_int(r->emu, "pending_polls", 2);
    pthread_mutex_lock(emu_lock(r->emu));
    struct stab_state *s = emu_vendor_state(r->emu);
    struct job *j = NULL;
    for (int i = 0; s && i < MAX_JOBS; i++)
        if (s->jobs[i] && strcmp(s->jobs[i]->id, id) == 0 &&
            strcmp(s->jobs[i]->key, api_key ? api_key : "") == 0)
            j = s->jobs[i];
    int polls = j ? ++j->polls : 0;
    struct img *pic = j && polls > pending ? img_clone(j->result) : NULL;
    const char *fmt = j && j->png ? "png" : j && j->jpeg ? "jpeg" : "webp";
    long long seed = j ? j->seed : 0;
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!j)
        return error(out, 404, "not_found", "id: no generation found with this id");
    if (polls <= pending)
        return emu_json(out, 202, json_pack("{s:s,s:s}", "id", id, "status", "in-progress"));
    const char *kind = emu_fault_kind(r);
    int rc = pic ? answer_image(r, out, pic, fmt, seed, "SUCCESS",
                                kind && strcmp(kind, "corrupt_image") == 0, 200)
                 : -1;
    img_free(pic);
    return rc;
}

static int
stability_handle(struct emu_req *r, struct emu_resp *out)
{
    const char *auth = emu_header(r, "authorization");
    const char *key = auth && strncmp(auth, "Bearer ", 7) == 0 && auth[7] ? auth + 7 : NULL;
    if (emu_auth_required(r->emu) && !key)
        return error(out, (unsigned)emu_knob_int(r->emu, "auth_status", 401), "unauthorized",
                     "authorization: invalid or missing");
    if (strncmp(r->url, "/v2beta/results/", 16) == 0 && strcmp(r->method, "GET") == 0)
        return results(r, out, r->url + 16, key);
    if (strncmp(r->url, "/v2beta/stable-image/upscale/creative/result/", 45) == 0 &&
        strcmp(r->method, "GET") == 0)
        return results(r, out, r->url + 45, key);
    if (strcmp(r->url, "/v1/user/balance") == 0)
        return emu_json(out, 200, json_pack("{s:f}", "credits", 1000.0));
    for (int i = 0; routes[i].path; i++)
        if (strcmp(routes[i].path, r->url) == 0)
            return strcmp(r->method, "POST") == 0
                       ? post(r, out, routes[i].op, key)
                       : error(out, 405, "method_not_allowed", "use POST");
    return error(out, 404, "not_found", "no such endpoint");
}

const struct emu_vendor emu_vendor_stability = {
    .name = "stability",
    .handle = stability_handle,
};
