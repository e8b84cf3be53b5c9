/* SPDX-License-Identifier: MIT */
/* bfl.c -- the Black Forest Labs emulator (docs/emulators.md).
 *
 * POST /v1/{model} (x-key) answers {id, polling_url, cost, input_mp,
 * output_mp} with polling_url pointing back here. GET /v1/get_result?id=
 * walks the documented state machine: Pending (progress rising) for the
 * first two polls, then Ready with result.sample, a URL this emulator serves
 * under /_files/ that expires (10 minutes, as BFL's; 403 afterwards, as blob
 * storage answers). Unknown ids answer "Task not found". At most 24 tasks
 * may be pending at once (429 beyond, as BFL's concurrency limit).
 * Validation: prompt a string; width and height 256..1440 in multiples of
 * 32 for flux-pro-1.1 (422 with FastAPI's detail list otherwise);
 * output_format jpeg or png. Faults: moderation makes the task end
 * "Content Moderated"; rate_limit, quota (402) and the transport faults act
 * on whichever request takes them. */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TASKS 1024
#define EXPIRY_S 600

struct task {
    char id[48];
    char prompt[512];
    long long seed;
    int width, height, polls, moderated, png;
    char fingerprint[64];
    time_t ready_at;
};

struct bfl {
    struct task tasks[MAX_TASKS];
    int n;
};

static struct bfl *
state(struct emu *e)
{
    struct bfl *b = emu_vendor_state(e);
    if (!b && (b = ig_calloc(1, sizeof *b)))
        emu_set_vendor_state(e, b, ig_free);
    return b;
}

static int
detail(struct emu_resp *out, unsigned status, const char *loc, const char *msg)
{
    return emu_json(out, status,
                    json_pack("{s:[{s:[s,s],s:s,s:s}]}", "detail", "loc", "body", loc, "msg", msg,
                              "type", "value_error"));
}

static struct task *
find(struct bfl *b, const char *id)
{
    for (int i = 0; id && i < b->n; i++)
        if (strcmp(b->tasks[i].id, id) == 0)
            return &b->tasks[i];
    return NULL;
}

static int
submit(struct emu_req *r, struct emu_resp *out, const char *model)
{
    struct emu *e = r->emu;
    const char *fault = emu_fault_kind(r);
    if (fault && strcmp(fault, "rate_limit") == 0) {
        emu_add_header(out, "Retry-After", "1");
        return emu_json(out, 429, json_pack("{s:s}", "detail", "Too many active tasks"));
    }
    if (fault && strcmp(fault, "quota") == 0)
        return emu_json(out, 402, json_pack("{s:s}", "detail", "Insufficient credits"));
    if (fault && strcmp(fault, "malformed_json") == 0)
        return emu_bytes(out, 200, "application/json", "{\"id\": ", 7);
    json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    int rc;
    if (!json_is_object(body)) {
        rc = detail(out, 422, "body", "Input should be a valid JSON object");
        goto done;
    }
    json_t *prompt = json_object_get(body, "prompt");
    json_t *w = json_object_get(body, "width"), *h = json_object_get(body, "height");
    const char *fmt = json_string_value(json_object_get(body, "output_format"));
    int width = w ? (int)json_integer_value(w) : 1024, height = h ? (int)json_integer_value(h) : 768;
    if (!json_is_string(prompt)) {
        rc = detail(out, 422, "prompt", "Input should be a valid string");
        goto done;
    }
    if (strcmp(model, "flux-pro-1.1") == 0 &&
        ((w && !json_is_integer(w)) || width < 256 || width > 1440 || width % 32 ||
         (h && !json_is_integer(h)) || height < 256 || height > 1440 || height % 32)) {
        rc = detail(out, 422, "width", "width and height must be 256..1440, multiples of 32");
        goto done;
    }
    if (fmt && strcmp(fmt, "jpeg") != 0 && strcmp(fmt, "png") != 0) {
        rc = detail(out, 422, "output_format", "Input should be 'jpeg' or 'png'");
        goto done;
    }
    char new_id[48];
    emu_request_id(e, "", new_id, sizeof new_id);   /* takes the lock itself */
    pthread_mutex_lock(emu_lock(e));
    struct bfl *b = state(e);
    int pending = 0;
    for (int i = 0; b && i < b->n; i++)
        pending += b->tasks[i].polls < 2 && !b->tasks[i].moderated;
    if (!b || pending >= 24 || b->n >= MAX_TASKS) {
        pthread_mutex_unlock(emu_lock(e));
        emu_add_header(out, "Retry-After", "1");
        rc = emu_json(out, 429, json_pack("{s:s}", "detail", "Too many active tasks"));
        goto done;
    }
    struct task *t = &b->tasks[b->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", new_id);
    snprintf(t->prompt, sizeof t->prompt, "%s", json_string_value(prompt));
    json_t *seed = json_object_get(body, "seed");
    t->seed = json_is_integer(seed) ? json_integer_value(seed) : (long long)(time(NULL) & 0xffffff);
    t->width = width;
    t->height = height;
    t->png = fmt && strcmp(fmt, "png") == 0;
    t->moderated = fault && strcmp(fault, "moderation") == 0;
    snprintf(t->fingerprint, sizeof t->fingerprint, "%s", emu_fingerprint(e));
    char id[48];
    snprintf(id, sizeof id, "%s", t->id);
    pthread_mutex_unlock(emu_lock(e));
    char key[600];
    snprintf(key, sizeof key, "/v1/%s|%s", model, json_string_value(prompt));
    emu_count_submit(e, key);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/get_result?id=%s", emu_base_url(e), id);
    double mp = (double)width * height / 1e6;
    rc = emu_json(out, 200, json_pack("{s:s,s:s,s:f,s:f,s:f}", "id", id, "polling_url", url,
                                      "cost", 4.0, "input_mp", 0.0, "output_mp", mp));
done:
    json_decref(body);
    return rc;
}

static int
get_result(struct emu_req *r, struct emu_resp *out)
{
    struct emu *e = r->emu;
    const char *id = emu_query(r, "id");
    if (!id)
        return detail(out, 422, "id", "Field required");
    pthread_mutex_lock(emu_lock(e));
    struct bfl *b = state(e);
    struct task *t = b ? find(b, id) : NULL;
    if (!t) {
        pthread_mutex_unlock(emu_lock(e));
        return emu_json(out, 200, json_pack("{s:s,s:s,s:n}", "id", id, "status", "Task not found",
                                            "result"));
    }
    t->polls++;
    json_t *ans;
    if (t->moderated) {
        ans = json_pack("{s:s,s:s,s:n,s:{s:[s]}}", "id", id, "status", "Content Moderated", "result",
                        "details", "Moderation Reasons", "Derivative Works Filter");
    } else if (t->polls <= 2) {
        ans = json_pack("{s:s,s:s,s:n,s:f}", "id", id, "status", "Pending", "result", "progress",
                        t->polls * 0.4);
    } else {
        if (!t->ready_at)
            t->ready_at = time(NULL);
        char url[256];
        snprintf(url, sizeof url, "%s/_files/%s.%s?se=%ld", emu_base_url(e), id,
                 t->png ? "png" : "jpg", (long)t->ready_at + EXPIRY_S);
        ans = json_pack("{s:s,s:s,s:{s:s,s:s,s:I},s:f}", "id", id, "status", "Ready", "result",
                        "sample", url, "prompt", t->prompt, "seed", (json_int_t)t->seed,
                        "progress", 1.0);
    }
    pthread_mutex_unlock(emu_lock(e));
    return emu_json(out, 200, ans);
}

static int
file(struct emu_req *r, struct emu_resp *out)
{
    struct emu *e = r->emu;
    char id[48];
    const char *name = r->url + strlen("/_files/");
    snprintf(id, sizeof id, "%.*s", (int)strcspn(name, "."), name);
    pthread_mutex_lock(emu_lock(e));
    struct bfl *b = state(e);
    struct task *t = b ? find(b, id) : NULL;
    struct task copy;
    if (t)
        copy = *t;
    pthread_mutex_unlock(emu_lock(e));
    const char *fault = emu_fault_kind(r);
    if (!t || !copy.ready_at || time(NULL) > copy.ready_at + EXPIRY_S ||
        (fault && strcmp(fault, "expired") == 0))
        return emu_bytes(out, 403, "application/xml",
                         "<Error><Code>AuthenticationFailed</Code></Error>", 48);
    struct img *pic = emu_picture("bfl", copy.prompt, copy.seed, copy.fingerprint, copy.width,
                                  copy.height);
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    int rc;
    if (!pic || img_encode(pic, copy.png ? IMG_FMT_PNG : IMG_FMT_JPEG, 90, NULL, &enc, &err) != 0) {
        rc = emu_bytes(out, 500, "text/plain", "render failed", 13);
    } else {
        if (fault && strcmp(fault, "corrupt_image") == 0)
            enc.len = enc.len > 64 ? 64 : enc.len;
        emu_add_header(out, "x-emulator-fingerprint", copy.fingerprint);
        rc = emu_bytes(out, 200, copy.png ? "image/png" : "image/jpeg", enc.data, enc.len);
    }
    img_free(pic);
    ig_buf_free(&enc);
    return rc;
}

static int
bfl_handle(struct emu_req *r, struct emu_resp *out)
{
    if (strncmp(r->url, "/_files/", 8) == 0)
        return file(r, out);
    const char *key = emu_header(r, "x-key");
    if (emu_auth_required(r->emu) && (!key || !*key))
        return emu_json(out, 401, json_pack("{s:s}", "detail", "Not authenticated"));
    if (strcmp(r->url, "/v1/get_result") == 0 && strcmp(r->method, "GET") == 0)
        return get_result(r, out);
    if (strcmp(r->url, "/v1/credits") == 0)
        return emu_json(out, 200, json_pack("{s:f}", "credits", 1000.0));
    if (strncmp(r->url, "/v1/flux", 8) == 0 && strcmp(r->method, "POST") == 0)
        return submit(r, out, r->url + 4);
    return emu_json(out, 404, json_pack("{s:s}", "detail", "Not Found"));
}

const struct emu_vendor emu_vendor_bfl = {
    .name = "bfl",
    .handle = bfl_handle,
};
