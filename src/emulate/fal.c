/* SPDX-License-Identifier: MIT */
/* fal.c -- the fal.ai queue API, emulated.
 *
 * POST /{owner}/{app}[/{path}] with `Authorization: Key ...` and the
 * model's JSON input queues a request: {request_id, response_url,
 * status_url, cancel_url, status: IN_QUEUE, queue_position}, header
 * x-fal-request-id. GET /{owner}/{app}/requests/{id}/status answers 202
 * (IN_QUEUE, then IN_PROGRESS) and 200 COMPLETED; GET .../requests/{id}
 * answers the output {images:[{url, width, height, content_type}], seed,
 * has_nsfw_concepts, timings, prompt}; PUT .../cancel answers
 * CANCELLATION_REQUESTED or ALREADY_COMPLETED. Status and result URLs use
 * owner/app only, as fal's do. The input follows fal-ai/flux/dev: prompt,
 * image_size (an enum or {width, height}), num_images (1..4), seed,
 * output_format (jpeg, png), sync_mode (data: URIs instead of URLs).
 * Validation errors are FastAPI 422 bodies. Knobs (⚠): pending_polls (2),
 * result_before_done_status (400: what the result URL answers while the
 * request is still running). */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQS 128

struct freq {
    char id[48];
    char app[96];            /* owner/app */
    char fingerprint[64];
    char *prompt;
    long long seed;
    int w, h, n, png, sync;
    int polls, forever, no_image, corrupt, nsfw, failed, done, canceled;
};

struct fal_state {
    struct freq *reqs[MAX_REQS];
    unsigned next;
};

static void
freq_free(struct freq *q)
{
    if (q) {
        ig_free(q->prompt);
        ig_free(q);
    }
}

static void
state_free(void *v)
{
    struct fal_state *s = v;
    if (!s)
        return;
    for (int i = 0; i < MAX_REQS; i++)
        freq_free(s->reqs[i]);
    ig_free(s);
}

static int
invalid(struct emu_resp *out, const char *field, const char *msg)
{
    return emu_json(out, 422, json_pack("{s:[{s:[s,s],s:s,s:s}]}", "detail", "loc", "body", field,
                                        "msg", msg, "type", "value_error"));
}

static int
detail(struct emu_resp *out, unsigned status, const char *msg)
{
    return emu_json(out, status, json_pack("{s:s}", "detail", msg));
}

static const struct {
    const char *name;
    int w, h;
} sizes[] = {
    {"square_hd", 1024, 1024},     {"square", 512, 512},          {"portrait_4_3", 768, 1024},
    {"portrait_16_9", 576, 1024},  {"landscape_4_3", 1024, 768},  {"landscape_16_9", 1024, 576},
    {NULL, 0, 0},
};

static struct fal_state *
state_of(struct emu *e)
{
    struct fal_state *s = emu_vendor_state(e);
    if (!s && (s = ig_calloc(1, sizeof *s)))
        emu_set_vendor_state(e, s, state_free);
    return s;
}

static int
submit(struct emu_req *r, struct emu_resp *out, const char *model)
{
    json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    int rc;
    if (!json_is_object(body)) {
        rc = invalid(out, "body", "Input should be a valid dictionary");
        goto done;
    }
    const char *prompt = json_string_value(json_object_get(body, "prompt"));
    if (!prompt) {
        rc = invalid(out, "prompt", "Field required");
        goto done;
    }
    json_t *isz = json_object_get(body, "image_size");
    int w = 1024, h = 768;
    if (json_is_string(isz)) {
        int found = 0;
        for (int i = 0; sizes[i].name; i++)
            if (strcmp(sizes[i].name, json_string_value(isz)) == 0) {
                w = sizes[i].w;
                h = sizes[i].h;
                found = 1;
            }
        if (!found) {
            rc = invalid(out, "image_size", "Input should be 'square_hd', 'square', "
                                            "'portrait_4_3', 'portrait_16_9', 'landscape_4_3' or "
                                            "'landscape_16_9'");
            goto done;
        }
    } else if (json_is_object(isz)) {
        w = (int)json_integer_value(json_object_get(isz, "width"));
        h = (int)json_integer_value(json_object_get(isz, "height"));
        if (w < 64 || h < 64 || w > 14142 || h > 14142) {
            rc = invalid(out, "image_size", "width and height must be between 64 and 14142");
            goto done;
        }
    } else if (isz) {
        rc = invalid(out, "image_size", "Input should be an enum value or an object");
        goto done;
    }
    json_t *nv = json_object_get(body, "num_images");
    int n = nv ? (int)json_integer_value(nv) : 1;
    if (n < 1 || n > 4) {
        rc = invalid(out, "num_images", "Input should be between 1 and 4");
        goto done;
    }
    const char *fmt = json_string_value(json_object_get(body, "output_format"));
    if (fmt && strcmp(fmt, "jpeg") != 0 && strcmp(fmt, "png") != 0) {
        rc = invalid(out, "output_format", "Input should be 'jpeg' or 'png'");
        goto done;
    }
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "rate_limit") == 0) {
        json_int_t ra = json_integer_value(json_object_get(r->fault, "retry_after"));
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)(ra > 0 ? ra : 1));
        emu_add_header(out, "Retry-After", secs);
        rc = detail(out, 429, "Too many requests: concurrent request limit reached");
        goto done;
    }
    if (kind && strcmp(kind, "malformed_json") == 0) {
        rc = emu_bytes(out, 200, "application/json", "{\"request_id\":", 14);
        goto done;
    }
    struct freq *q = ig_calloc(1, sizeof *q);
    if (!q || !(q->prompt = ig_strdup(prompt))) {
        freq_free(q);
        rc = -1;
        goto done;
    }
    json_t *sv = json_object_get(body, "seed");
    q->seed = json_is_integer(sv) ? json_integer_value(sv) : (long long)strlen(prompt) * 7727;
    q->w = w;
    q->h = h;
    q->n = n;
    q->png = fmt && strcmp(fmt, "png") == 0;
    q->sync = json_is_true(json_object_get(body, "sync_mode"));
    q->forever = kind && strcmp(kind, "pending_forever") == 0;
    q->no_image = kind && strcmp(kind, "no_image") == 0;
    q->corrupt = kind && strcmp(kind, "corrupt_image") == 0;
    q->nsfw = kind && strcmp(kind, "moderation") == 0;
    q->failed = kind && strcmp(kind, "task_error") == 0;
    /* owner/app only: the path after them is dropped from the queue URLs */
    const char *slash = strchr(model, '/');
    const char *slash2 = slash ? strchr(slash + 1, '/') : NULL;
    snprintf(q->app, sizeof q->app, "%.*s", slash2 ? (int)(slash2 - model) : (int)strlen(model),
             model);
    snprintf(q->fingerprint, sizeof q->fingerprint, "%s", emu_fingerprint(r->emu));
    char rid[32];
    emu_request_id(r->emu, "", rid, sizeof rid);
    snprintf(q->id, sizeof q->id, "80e732af-%.20s", rid);
    char key[300];
    snprintf(key, sizeof key, "%.200s|%lld", q->prompt, q->seed);
    emu_count_submit(r->emu, key);
    char base[400];
    snprintf(base, sizeof base, "%s/%s/requests/%s", emu_base_url(r->emu), q->app, q->id);
    pthread_mutex_lock(emu_lock(r->emu));
    struct fal_state *s = state_of(r->emu);
    if (s) {
        unsigned slot = s->next++ % MAX_REQS;
        freq_free(s->reqs[slot]);
        s->reqs[slot] = q;
    }
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!s) {
        freq_free(q);
        rc = -1;
        goto done;
    }
    char status_url[420], cancel_url[420];
    snprintf(status_url, sizeof status_url, "%s/status", base);
    snprintf(cancel_url, sizeof cancel_url, "%s/cancel", base);
    emu_add_header(out, "x-fal-request-id", q->id);
    rc = emu_json(out, 200, json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "request_id", q->id,
                                      "response_url", base, "status_url", status_url,
                                      "cancel_url", cancel_url, "status", "IN_QUEUE",
                                      "queue_position", 0));
done:
    json_decref(body);
    return rc;
}

static struct freq *
find(struct emu *e, const char *id)
{
    struct fal_state *s = emu_vendor_state(e);
    for (int i = 0; s && i < MAX_REQS; i++)
        if (s->reqs[i] && strcmp(s->reqs[i]->id, id) == 0)
            return s->reqs[i];
    return NULL;
}

static json_t *
image_entry(struct emu *e, const struct freq *q, int i)
{
    struct img *im = emu_picture("fal", q->prompt, q->seed + i, q->fingerprint, q->w, q->h);
    if (im && q->nsfw)
        memset(im->rgba, 0, (size_t)im->width * (size_t)im->height * 4);   /* blacked out */
    if (im && q->nsfw)
        for (size_t k = 0; k < (size_t)im->width * (size_t)im->height; k++)
            im->rgba[4 * k + 3] = 255;
    const char *ct = q->png ? "image/png" : "image/jpeg";
    json_t *entry = NULL;
    char url[400];
    if (!q->sync) {
        snprintf(url, sizeof url, "%s/files/%s/%d.%s", emu_base_url(e), q->id, i,
                 q->png ? "png" : "jpeg");
        entry = json_pack("{s:s,s:i,s:i,s:s}", "url", url, "width", q->w, "height", q->h,
                          "content_type", ct);
    } else if (im) {
        struct ig_buf enc = {0};
        struct ig_error err = {0};
        if (img_encode(im, q->png ? IMG_FMT_PNG : IMG_FMT_JPEG, 90, NULL, &enc, &err) == 0) {
            size_t cap = 4 * ((enc.len + 2) / 3) + 64;
            char *s = ig_malloc(cap);
            if (s) {
                int n = snprintf(s, cap, "data:%s;base64,", ct);
                EVP_EncodeBlock((unsigned char *)s + n, (unsigned char *)enc.data, (int)enc.len);
                entry = json_pack("{s:s,s:i,s:i,s:s}", "url", s, "width", q->w, "height", q->h,
                                  "content_type", ct);
                ig_free(s);
            }
        }
        ig_buf_free(&enc);
    }
    img_free(im);
    return entry;
}

static int
request_path(struct emu_req *r, struct emu_resp *out, const char *id, const char *what)
{
    long pending = emu_knob_int(r->emu, "pending_polls", 2);
    long early = emu_knob_int(r->emu, "result_before_done_status", 400);
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "malformed_json") == 0)
        return emu_bytes(out, 200, "application/json", "{\"status\":\"COMP", 15);
    pthread_mutex_lock(emu_lock(r->emu));
    struct freq *q = find(r->emu, id);
    int polls = 0, done = 0, cancel_state = 0;
    struct freq copy;
    if (q) {
        if (strcmp(what, "/status") == 0 && !q->done && !q->canceled) {
            polls = ++q->polls;
            if (!q->forever && polls > pending)
                q->done = 1;
        }
        if (strcmp(what, "/cancel") == 0) {
            cancel_state = q->done ? 2 : 1;
            q->canceled = !q->done;
        }
        done = q->done;
        copy = *q;
        copy.prompt = ig_strdup(q->prompt);
    }
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!q)
        return detail(out, 404, "Request not found");
    int rc;
    char base[400];
    snprintf(base, sizeof base, "%s/%s/requests/%s", emu_base_url(r->emu), copy.app, copy.id);
    if (strcmp(what, "/cancel") == 0) {
        rc = emu_json(out, cancel_state == 1 ? 202 : 400,
                      json_pack("{s:s}", "status", cancel_state == 1 ? "CANCELLATION_REQUESTED"
                                                                      : "ALREADY_COMPLETED"));
    } else if (strcmp(what, "/status") == 0) {
        const char *st = copy.canceled ? "COMPLETED" : done ? "COMPLETED"
                         : polls <= 1                      ? "IN_QUEUE"
                                                           : "IN_PROGRESS";
        json_t *o = json_pack("{s:s,s:s,s:s}", "status", st, "request_id", copy.id,
                              "response_url", base);
        if (strcmp(st, "IN_QUEUE") == 0)
            json_object_set_new(o, "queue_position", json_integer(0));
        if (done)
            json_object_set_new(o, "metrics", json_pack("{s:f}", "inference_time", 1.1));
        rc = emu_json(out, done || copy.canceled ? 200 : 202, o);
    } else if (what[0]) {
        rc = detail(out, 404, "Not found");
    } else if (copy.canceled) {
        rc = detail(out, 400, "Request was cancelled");
    } else if (!done) {
        rc = detail(out, (unsigned)early, "Request is still in progress");
    } else if (copy.failed) {
        rc = detail(out, 500, "Internal error while running the model");
    } else {
        json_t *images = json_array(), *flags = json_array();
        for (int i = 0; i < copy.n && !copy.no_image; i++) {
            json_t *e = image_entry(r->emu, &copy, i);
            if (e)
                json_array_append_new(images, e);
            json_array_append_new(flags, json_boolean(copy.nsfw));
        }
        emu_add_header(out, "x-emulator-fingerprint", copy.fingerprint);
        rc = emu_json(out, 200, json_pack("{s:o,s:I,s:o,s:{s:f},s:s}", "images", images, "seed",
                                          (json_int_t)copy.seed, "has_nsfw_concepts", flags,
                                          "timings", "inference", 1.1, "prompt", copy.prompt));
    }
    ig_free(copy.prompt);
    return rc;
}

static int
file(struct emu_req *r, struct emu_resp *out)
{
    char id[48];
    int i;
    if (sscanf(r->url, "/files/%47[^/]/%d.", id, &i) != 2)
        return detail(out, 404, "Not found");
    pthread_mutex_lock(emu_lock(r->emu));
    struct freq *q = find(r->emu, id);
    struct freq copy;
    if (q) {
        copy = *q;
        copy.prompt = ig_strdup(q->prompt);
        copy.sync = 1;   /* render the bytes */
    }
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!q || i < 0 || i >= copy.n) {
        if (q)
            ig_free(copy.prompt);
        return detail(out, 404, "Not found");
    }
    const char *ct = copy.png ? "image/png" : "image/jpeg";
    int rc;
    if (copy.corrupt) {
        rc = emu_bytes(out, 200, ct, "\xff\xd8\xff\xe0" "broken", 10);
    } else {
        struct img *im = emu_picture("fal", copy.prompt, copy.seed + i, copy.fingerprint, copy.w,
                                     copy.h);
        struct ig_buf enc = {0};
        struct ig_error err = {0};
        rc = im && img_encode(im, copy.png ? IMG_FMT_PNG : IMG_FMT_JPEG, 90, NULL, &enc, &err) == 0
                 ? emu_bytes(out, 200, ct, enc.data, enc.len)
                 : -1;
        img_free(im);
        ig_buf_free(&enc);
    }
    ig_free(copy.prompt);
    return rc;
}

static int
fal_handle(struct emu_req *r, struct emu_resp *out)
{
    if (strncmp(r->url, "/files/", 7) == 0)
        return file(r, out);
    const char *auth = emu_header(r, "Authorization");
    if (emu_auth_required(r->emu) && (!auth || strncmp(auth, "Key ", 4) != 0 || !auth[4]))
        return detail(out, 401, "No valid authentication credentials were provided");
    const char *req = strstr(r->url, "/requests/");
    if (req && strcmp(r->method, "POST") != 0) {
        char id[48];
        const char *rest = req + 10;
        size_t n = strcspn(rest, "/");
        if (n == 0 || n >= sizeof id)
            return detail(out, 404, "Not found");
        memcpy(id, rest, n);
        id[n] = '\0';
        const char *what = rest + n;
        if ((strcmp(what, "/cancel") == 0) != (strcmp(r->method, "PUT") == 0))
            return detail(out, 405, "Method Not Allowed");
        return request_path(r, out, id, what);
    }
    if (strcmp(r->method, "POST") == 0 && strchr(r->url + 1, '/'))
        return submit(r, out, r->url + 1);
    return detail(out, 404, "Not found");
}

const struct emu_vendor emu_vendor_fal = {
    .name = "fal",
    .handle = fal_handle,
};
