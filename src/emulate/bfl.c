/* SPDX-License-Identifier: MIT */
/* bfl.c -- the Black Forest Labs FLUX API, emulated.
 *
 * POST /v1/<model> (JSON, header x-key) answers {id, polling_url, cost,
 * input_mp, output_mp}; GET /v1/get_result?id= walks the task through
 * "Pending" (progress rising) to "Ready", "Request Moderated", "Content
 * Moderated" or "Error"; an unknown id is "Task not found". A Ready task's
 * result.sample is a signed URL on this server that expires (10 minutes by
 * default) and serves the picture in the requested output_format. Validation
 * follows the per-model field tables of the reference (FastAPI 422 bodies);
 * the concurrency limit on active tasks answers 429. Where the reference is
 * unsure (⚠) the behaviour is a knob: auth_status (403), expired_status
 * (403), sample_ttl_ms (600000), pending_polls (2), max_active (24),
 * kontext_default_format ("png" when 1, "jpeg" when 0). One knob is not
 * about the reference: picture_salt (0) changes the picture a task paints
 * without touching the fingerprint, the silent regression a CI runner must
 * tell from drift. */
#include "emulate/emulate.h"
#include "core/alloc.h"
#include "core/config.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum family { FAM_PRO11, FAM_ULTRA, FAM_LEGACY, FAM_KONTEXT, FAM_FLUX2, FAM_FILL, FAM_EXPAND };

static const struct bfl_model {
    const char *path;
    enum family fam;
    double credits;
} models[] = {
    {"flux-pro-1.1", FAM_PRO11, 4},        {"flux-pro-1.1-ultra", FAM_ULTRA, 6},
    {"flux-pro", FAM_LEGACY, 5},           {"flux-dev", FAM_LEGACY, 2.5},
    {"flux-kontext-pro", FAM_KONTEXT, 4},  {"flux-kontext-max", FAM_KONTEXT, 8},
    {"flux-2-pro", FAM_FLUX2, 3},          {"flux-2-pro-preview", FAM_FLUX2, 3},
    {"flux-2-max", FAM_FLUX2, 7},          {"flux-2-flex", FAM_FLUX2, 5},
    {"flux-2-klein-4b", FAM_FLUX2, 1.4},   {"flux-2-klein-9b", FAM_FLUX2, 1.5},
    {"flux-2-klein-9b-preview", FAM_FLUX2, 1.5},
    {"flux-pro-1.0-fill", FAM_FILL, 5},    {"flux-pro-1.0-expand", FAM_EXPAND, 5},
    {NULL, 0, 0},
};

enum task_state { T_PENDING, T_READY, T_REQUEST_MODERATED, T_CONTENT_MODERATED, T_ERROR };

struct task {
    char id[48];
    char model[32];
    char fingerprint[64];
    char *prompt;
    long long seed;
    long salt;                   /* picture_salt knob at submit */
    int width, height, png;
    int polls, pending_forever, no_image, corrupt;
    enum task_state final;
    struct img *input, *mask;
    long long ready_at_ms;       /* first reported Ready: the sample's clock starts */
    int reported;                /* a final state has been reported: no longer active */
};

#define MAX_TASKS 256

struct bfl_state {
    struct task *tasks[MAX_TASKS];
    unsigned next;
    long long seed_counter;
};

static long long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
task_free(struct task *t)
{
    if (!t)
        return;
    ig_free(t->prompt);
    img_free(t->input);
    img_free(t->mask);
    ig_free(t);
}

static void
state_free(void *p)
{
    struct bfl_state *s = p;
    if (!s)
        return;
    for (int i = 0; i < MAX_TASKS; i++)
        task_free(s->tasks[i]);
    ig_free(s);
}

/* The vendor state, created on first use (under the emulator's lock). */
static struct bfl_state *
state_of(struct emu *e)
{
    struct bfl_state *s = emu_vendor_state(e);
    if (!s && (s = ig_calloc(1, sizeof *s)))
        emu_set_vendor_state(e, s, state_free);
    return s;
}

static struct task *
find_task(struct bfl_state *s, const char *id)
{
    for (int i = 0; s && i < MAX_TASKS; i++)
        if (s->tasks[i] && strcmp(s->tasks[i]->id, id) == 0)
            return s->tasks[i];
    return NULL;
}

/* FastAPI's validation error, as BFL answers it. */
static int
invalid(struct emu_resp *out, const char *field, const char *msg)
{
    return emu_json(out, 422,
                    json_pack("{s:[{s:[s,s],s:s,s:s}]}", "detail", "loc", "body", field, "msg",
                              msg, "type", "value_error"));
}

static int
detail(struct emu_resp *out, unsigned status, const char *msg)
{
    return emu_json(out, status, json_pack("{s:s}", "detail", msg));
}

static struct img *
b64_image(const char *text)
{
    size_t len = strlen(text);
    if (strncmp(text, "data:", 5) == 0) {
        const char *comma = strchr(text, ',');
        if (!comma)
            return NULL;
        text = comma + 1;
        len = strlen(text);
    }
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
    struct img_limits lim = {.max_input_bytes = 20L << 20, .max_pixels = 20000000};
    struct ig_error err = {0};
    struct img *im = n > 0 ? img_decode(raw, (size_t)n, &lim, &err) : NULL;
    ig_free(raw);
    return im;
}

static int
int_field(json_t *body, const char *name, long lo, long hi, long def, long *out,
          struct emu_resp *resp)
{
    json_t *v = json_object_get(body, name);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    char msg[128];
    if (!json_is_integer(v)) {
        snprintf(msg, sizeof msg, "Input should be a valid integer");
        return invalid(resp, name, msg), 1;
    }
    *out = (long)json_integer_value(v);
    if (*out < lo || *out > hi) {
        snprintf(msg, sizeof msg, "Input should be between %ld and %ld", lo, hi);
        return invalid(resp, name, msg), 1;
    }
    return 0;
}

/* Width and height from an aspect ratio "W:H" at about mp megapixels. */
static int
from_aspect(const char *ar, double mp, int *w, int *h)
{
    int a, b;
    if (ig_pair_parse(ar, ':', IG_SIDE_MAX, &a, &b) != 0 || a * 9 > b * 21 || b * 9 > a * 21)
        return -1;
    double width = sqrt(mp * 1e6 * a / b);
    *w = (int)(width / 32 + 0.5) * 32;
    *h = (int)(width * b / a / 32 + 0.5) * 32;
    return 0;
}

/* ---- Submit ------------------------------------------------------------------ */

static int
submit(struct emu_req *r, struct emu_resp *out, const struct bfl_model *m)
{
    const char *ct = emu_header(r, "Content-Type");
    if (!ct || !strstr(ct, "application/json"))
        return invalid(out, "body", "Input should be a valid dictionary or object");
    json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return emu_json(out, 422,
                        json_pack("{s:[{s:[s,i],s:s,s:s}]}", "detail", "loc", "body", 0, "msg",
                                  "JSON decode error", "type", "json_invalid"));
    }
    struct task *t = ig_calloc(1, sizeof *t);
    int rc = 0;
    if (!t) {
        json_decref(body);
        return -1;
    }
    json_t *prompt = json_object_get(body, "prompt");
    if (prompt && !json_is_string(prompt) && !json_is_null(prompt)) {
        rc = invalid(out, "prompt", "Input should be a valid string");
        goto done;
    }
    if ((m->fam == FAM_KONTEXT || m->fam == FAM_FLUX2) && !json_string_value(prompt)) {
        rc = invalid(out, "prompt", "Field required");
        goto done;
    }
    t->prompt = ig_strdup(json_string_value(prompt) ? json_string_value(prompt) : "");
    json_t *seed = json_object_get(body, "seed");
    if (seed && !json_is_null(seed) && !json_is_integer(seed)) {
        rc = invalid(out, "seed", "Input should be a valid integer");
        goto done;
    }
    long w = 0, h = 0, safety;
    if (m->fam == FAM_PRO11 || m->fam == FAM_LEGACY) {
        if (int_field(body, "width", 256, 1440, 1024, &w, out) ||
            int_field(body, "height", 256, 1440, 768, &h, out)) {
            rc = 0;
            goto done;
        }
        if (w % 32 || h % 32) {
            rc = invalid(out, w % 32 ? "width" : "height", "Input should be a multiple of 32");
            goto done;
        }
    } else if (m->fam == FAM_FLUX2) {
        if (int_field(body, "width", 0, 4096, 0, &w, out) ||
            int_field(body, "height", 0, 4096, 0, &h, out))
            goto done;
        if ((w && w < 64) || (h && h < 64) || w % 16 || h % 16) {
            rc = invalid(out, w % 16 || (w && w < 64) ? "width" : "height",
                         "Input should be at least 64 and a multiple of 16");
            goto done;
        }
    }
    if (int_field(body, "safety_tolerance", 0, m->fam == FAM_FLUX2 ? 5 : 6, 2, &safety, out))
        goto done;
    const char *fmt = json_string_value(json_object_get(body, "output_format"));
    json_t *fmt_v = json_object_get(body, "output_format");
    if (fmt_v && !json_is_null(fmt_v) &&
        (!fmt || (strcmp(fmt, "jpeg") != 0 && strcmp(fmt, "png") != 0))) {
        rc = invalid(out, "output_format", "Input should be 'jpeg' or 'png'");
        goto done;
    }
    t->png = fmt ? strcmp(fmt, "png") == 0
                 : m->fam == FAM_KONTEXT ? emu_knob_int(r->emu, "kontext_default_format", 1) == 1
                                         : 0;
    const char *in_name = m->fam == FAM_FILL || m->fam == FAM_EXPAND ? "image" : "input_image";
    json_t *in = json_object_get(body, in_name);
    if (in && !json_is_null(in)) {
        if (!json_is_string(in) || !(t->input = b64_image(json_string_value(in)))) {
            rc = detail(out, 400, "Invalid input image: expected base64 of a PNG, JPEG or WebP");
            goto done;
        }
    } else if (m->fam == FAM_FILL || m->fam == FAM_EXPAND) {
        rc = invalid(out, "image", "Field required");
        goto done;
    }
    json_t *mask = json_object_get(body, "mask");
    if (m->fam == FAM_FILL && mask && !json_is_null(mask)) {
        struct img *mk = json_is_string(mask) ? b64_image(json_string_value(mask)) : NULL;
        if (!mk || mk->width != t->input->width || mk->height != t->input->height) {
            img_free(mk);
            rc = detail(out, 400, "Invalid mask: expected base64 of an image of the input's size");
            goto done;
        }
        /* BFL masks are white where to paint; the picture maker wants alpha 0 there. */
        for (size_t i = 0; i < (size_t)mk->width * (size_t)mk->height; i++)
            mk->rgba[4 * i + 3] = (uint8_t)(255 - mk->rgba[4 * i]);
        t->mask = mk;
    }
    const char *ar = json_string_value(json_object_get(body, "aspect_ratio"));
    if (t->input) {
        w = t->input->width;
        h = t->input->height;
    } else if (m->fam == FAM_ULTRA || m->fam == FAM_KONTEXT) {
        int iw, ih;
        if (from_aspect(ar ? ar : m->fam == FAM_ULTRA ? "16:9" : "1:1",
                        m->fam == FAM_ULTRA ? 4.0 : 1.0, &iw, &ih) != 0) {
            rc = invalid(out, "aspect_ratio", "Aspect ratio must be between 21:9 and 9:21");
            goto done;
        }
        w = iw;
        h = ih;
    } else if (!w || !h) {
        w = w ? w : 1024;
        h = h ? h : 1024;
    }
    t->width = (int)w;
    t->height = (int)h;

    /* Faults in BFL's own shape. */
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "rate_limit") == 0) {
        json_int_t ra = json_integer_value(json_object_get(r->fault, "retry_after"));
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)(ra > 0 ? ra : 1));
        emu_add_header(out, "Retry-After", secs);
        rc = emu_json(out, 429, json_pack("{s:s,s:s,s:I}", "error", "rate_limit_exceeded",
                                          "message", "Too many active tasks", "retry_after",
                                          ra > 0 ? ra : 1));
        goto done;
    }
    if (kind && strcmp(kind, "quota") == 0) {
        rc = detail(out, 402, "Insufficient credits");
        goto done;
    }
    if (kind && strcmp(kind, "malformed_json") == 0) {
        rc = emu_bytes(out, 200, "application/json", "{\"id\": \"", 8);
        goto done;
    }
    struct bfl_state *s;
    pthread_mutex_lock(emu_lock(r->emu));
    s = state_of(r->emu);
    int active = 0;
    for (int i = 0; s && i < MAX_TASKS; i++)
        active += s->tasks[i] && !s->tasks[i]->reported;
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!s) {
        rc = -1;
        goto done;
    }
    if (active >= emu_knob_int(r->emu, "max_active", 24)) {
        emu_add_header(out, "Retry-After", "1");
        rc = emu_json(out, 429, json_pack("{s:s,s:s,s:i}", "error", "rate_limit_exceeded",
                                          "message", "Too many active tasks", "retry_after", 1));
        goto done;
    }
    if (kind && strcmp(kind, "moderation") == 0) {
        const char *stage = json_string_value(json_object_get(r->fault, "stage"));
        t->final = stage && strcmp(stage, "request") == 0 ? T_REQUEST_MODERATED
                                                          : T_CONTENT_MODERATED;
    } else if (kind && strcmp(kind, "task_error") == 0) {
        t->final = T_ERROR;
    } else {
        t->final = T_READY;
    }
    t->no_image = kind && strcmp(kind, "no_image") == 0;
    t->corrupt = kind && strcmp(kind, "corrupt_image") == 0;
    t->pending_forever = kind && strcmp(kind, "pending_forever") == 0;
    snprintf(t->model, sizeof t->model, "%s", m->path);
    snprintf(t->fingerprint, sizeof t->fingerprint, "%s", emu_fingerprint(r->emu));
    t->salt = emu_knob_int(r->emu, "picture_salt", 0);
    emu_request_id(r->emu, "", t->id, sizeof t->id);
    /* a UUID-looking id, as BFL's */
    char uuid[48];
    snprintf(uuid, sizeof uuid, "d5ba37dc-ba09-4658-852e-%.12s", t->id);
    snprintf(t->id, sizeof t->id, "%s", uuid);
    pthread_mutex_lock(emu_lock(r->emu));
    if (seed && json_is_integer(seed))
        t->seed = json_integer_value(seed);
    else
        t->seed = 1000003LL * ++s->seed_counter % 4294967295LL;
    unsigned slot = s->next++ % MAX_TASKS;
    task_free(s->tasks[slot]);
    s->tasks[slot] = t;
    pthread_mutex_unlock(emu_lock(r->emu));
    char key[300];
    snprintf(key, sizeof key, "%.200s|%lld", t->prompt, t->seed);
    emu_count_submit(r->emu, key);
    char polling[256];
    snprintf(polling, sizeof polling, "%s/v1/get_result?id=%s", emu_base_url(r->emu), t->id);
    double out_mp = (double)t->width * t->height / 1e6;
    double in_mp = t->input ? (double)t->input->width * t->input->height / 1e6 : 0;
    json_decref(body);
    return emu_json(out, 200,
                    json_pack("{s:s,s:s,s:f,s:f,s:f}", "id", t->id, "polling_url", polling, "cost",
                              m->credits, "input_mp", in_mp, "output_mp", out_mp));
done:
    task_free(t);
    json_decref(body);
    return rc;
}

/* ---- Polling ------------------------------------------------------------------ */

static int
get_result(struct emu_req *r, struct emu_resp *out)
{
    const char *id = emu_query(r, "id");
    if (!id)
        return emu_json(out, 422,
                        json_pack("{s:[{s:[s,s],s:s,s:s}]}", "detail", "loc", "query", "id", "msg",
                                  "Field required", "type", "missing"));
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "malformed_json") == 0)
        return emu_bytes(out, 200, "application/json", "{\"status\": \"Rea", 15);
    long pending_polls = emu_knob_int(r->emu, "pending_polls", 2);
    long ttl = emu_knob_int(r->emu, "sample_ttl_ms", 600000);
    pthread_mutex_lock(emu_lock(r->emu));
    struct task *t = find_task(emu_vendor_state(r->emu), id);
    if (!t) {
        pthread_mutex_unlock(emu_lock(r->emu));
        return emu_json(out, 200, json_pack("{s:s,s:s,s:n,s:n,s:n,s:n}", "id", id, "status",
                                            "Task not found", "result", "progress", "details",
                                            "preview"));
    }
    t->polls++;
    json_t *ans;
    if (t->pending_forever || t->polls <= pending_polls) {
        double progress = t->pending_forever ? 0.5 : (double)t->polls / (double)(pending_polls + 1);
        ans = json_pack("{s:s,s:s,s:n,s:f,s:n,s:n}", "id", t->id, "status", "Pending", "result",
                        "progress", progress, "details", "preview");
    } else if (t->final == T_READY) {
        if (!t->reported)
            t->ready_at_ms = now_ms();
        t->reported = 1;
        char sample[320];
        snprintf(sample, sizeof sample, "%s/delivery/%s/sample.%s?se=%lld&sig=emu",
                 emu_base_url(r->emu), t->id, t->png ? "png" : "jpeg",
                 t->ready_at_ms + ttl);
        json_t *res = json_pack("{s:s,s:I,s:f,s:f,s:f}", "prompt", t->prompt, "seed",
                                (json_int_t)t->seed, "start_time", t->ready_at_ms / 1000.0 - 2,
                                "end_time", t->ready_at_ms / 1000.0, "duration", 2.0);
        if (!t->no_image)
            json_object_set_new(res, "sample", json_string(sample));
        ans = json_pack("{s:s,s:s,s:o,s:f,s:n,s:n}", "id", t->id, "status", "Ready", "result",
                        res, "progress", 1.0, "details", "preview");
    } else if (t->final == T_ERROR) {
        t->reported = 1;
        ans = json_pack("{s:s,s:s,s:n,s:n,s:{s:s},s:n}", "id", t->id, "status", "Error",
                        "result", "progress", "details", "error", "Internal generation error",
                        "preview");
    } else {
        t->reported = 1;
        int request = t->final == T_REQUEST_MODERATED;
        ans = json_pack("{s:s,s:s,s:n,s:n,s:{s:[s]},s:n}", "id", t->id, "status",
                        request ? "Request Moderated" : "Content Moderated", "result", "progress",
                        "details", "moderation_reasons",
                        request ? "Derivative Works Filter" : "NSFW", "preview");
    }
    char fp[64];
    snprintf(fp, sizeof fp, "%s", t->fingerprint);
    pthread_mutex_unlock(emu_lock(r->emu));
    emu_add_header(out, "x-emulator-fingerprint", fp);
    return emu_json(out, 200, ans);
}

/* ---- Delivery ----------------------------------------------------------------- */

static int
emu_text(struct emu_resp *out, unsigned status, const char *type, const char *text)
{
    return emu_bytes(out, status, type, text, strlen(text));
}

static int
delivery(struct emu_req *r, struct emu_resp *out)
{
    char id[48];
    if (sscanf(r->url, "/delivery/%47[^/]/sample.", id) != 1)
        return emu_text(out, 404, "application/xml", "<Error><Code>BlobNotFound</Code></Error>");
    const char *se = emu_query(r, "se");
    long expired_status = emu_knob_int(r->emu, "expired_status", 403);
    if (!se || atoll(se) < now_ms())
        return emu_text(out, (unsigned)expired_status, "application/xml",
                        "<Error><Code>AuthenticationFailed</Code><Message>Signed expiry time has "
                        "passed</Message></Error>");
    pthread_mutex_lock(emu_lock(r->emu));
    struct task *t = find_task(emu_vendor_state(r->emu), id);
    struct img *pic = NULL;
    int png = 0, corrupt = 0;
    if (t) {
        png = t->png;
        const char *kind = emu_fault_kind(r);
        corrupt = t->corrupt || (kind && strcmp(kind, "corrupt_image") == 0);
        pic = t->input ? emu_edit(t->input, t->mask, t->prompt, t->seed)
                       : emu_picture("bfl", t->prompt, t->seed + t->salt, t->fingerprint,
                                     t->width, t->height);
    }
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!t)
        return emu_text(out, 404, "application/xml", "<Error><Code>BlobNotFound</Code></Error>");
    const char *mime = png ? "image/png" : "image/jpeg";
    if (corrupt) {
        img_free(pic);
        return png ? emu_text(out, 200, mime, "\x89PNG\r\n\x1a\nbroken")
                   : emu_text(out, 200, mime, "\xff\xd8\xff\xe0" "broken");
    }
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    int rc = pic && img_encode(pic, png ? IMG_FMT_PNG : IMG_FMT_JPEG, 90, NULL, &enc, &err) == 0
                 ? emu_bytes(out, 200, mime, enc.data, enc.len)
                 : -1;
    img_free(pic);
    ig_buf_free(&enc);
    return rc;
}

static int
bfl_handle(struct emu_req *r, struct emu_resp *out)
{
    if (strncmp(r->url, "/delivery/", 10) == 0)
        return delivery(r, out);
    const char *key = emu_header(r, "x-key");
    if (emu_auth_required(r->emu) && (!key || !*key))
        return detail(out, (unsigned)emu_knob_int(r->emu, "auth_status", 403), "Not authenticated");
    if (strcmp(r->url, "/v1/get_result") == 0 && strcmp(r->method, "GET") == 0)
        return get_result(r, out);
    if (strcmp(r->url, "/v1/credits") == 0 && strcmp(r->method, "GET") == 0)
        return emu_json(out, 200, json_pack("{s:f}", "credits", 1000.0));
    if (strncmp(r->url, "/v1/", 4) == 0 && strcmp(r->method, "POST") == 0)
        for (int i = 0; models[i].path; i++)
            if (strcmp(r->url + 4, models[i].path) == 0)
                return submit(r, out, &models[i]);
    if (strncmp(r->url, "/v1/", 4) == 0 && strcmp(r->method, "POST") != 0)
        return detail(out, 405, "Method Not Allowed");
    return detail(out, 404, "Not Found");
}

const struct emu_vendor emu_vendor_bfl = {
    .name = "bfl",
    .handle = bfl_handle,
};
