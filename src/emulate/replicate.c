/* SPDX-License-Identifier: MIT */
/* replicate.c -- the Replicate predictions API, emulated.
 *
 * POST /v1/models/{owner}/{name}/predictions (or /v1/predictions with a
 * 64-hex version) with Bearer auth and {input:{prompt, seed, width,
 * height, output_format, num_outputs}} answers 201 with a prediction
 * object; status goes starting -> processing -> succeeded | failed |
 * canceled over the polls of GET /v1/predictions/{id}; POST .../cancel
 * cancels. With `Prefer: wait` the answer waits for the result (the
 * pictures are quick) and says so in Preference-Applied. Outputs are URLs
 * on this server (/files/{id}/out-N.ext) that expire. Errors are RFC 7807
 * problem+json. Knobs (⚠): pending_polls (2), wait_completes (1: a
 * Prefer: wait answer is final; 0: it comes back "processing", the wait
 * window having ended first), data_uri_outputs (0; 1: a Prefer: wait answer
 * carries data: URIs, as a 2024 cassette shows), output_ttl_ms (3600000). */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PREDS 128

enum pstate { P_STARTING, P_PROCESSING, P_SUCCEEDED, P_FAILED, P_CANCELED };

struct pred {
    char id[32];
    char model[96];
    char fingerprint[64];
    char *prompt;
    long long seed;
    int w, h, n, png;
    int polls, forever, no_image, corrupt;
    enum pstate final, now;
    const char *error;
    long long done_ms;
};

struct rep_state {
    struct pred *preds[MAX_PREDS];
    unsigned next;
};

static long long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pred_free(struct pred *p)
{
    if (p) {
        ig_free(p->prompt);
        ig_free(p);
    }
}

static void
state_free(void *v)
{
    struct rep_state *s = v;
    if (!s)
        return;
    for (int i = 0; i < MAX_PREDS; i++)
        pred_free(s->preds[i]);
    ig_free(s);
}

static int
problem(struct emu_resp *out, unsigned status, const char *title, const char *detail)
{
    int rc = emu_json(out, status, json_pack("{s:s,s:s,s:i}", "title", title, "detail", detail,
                                             "status", (int)status));
    snprintf(out->content_type, sizeof out->content_type, "application/problem+json");
    return rc;
}

static const char *
status_name(enum pstate s)
{
    static const char *const names[] = {"starting", "processing", "succeeded", "failed",
                                        "canceled"};
    return names[s];
}

static struct img *
render(const struct pred *p, int i)
{
    return emu_picture("replicate", p->prompt, p->seed + i, p->fingerprint, p->w, p->h);
}

static json_t *
data_uri(const struct pred *p, int i)
{
    struct img *im = render(p, i);
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    json_t *v = NULL;
    if (im && img_encode(im, p->png ? IMG_FMT_PNG : IMG_FMT_WEBP, 90, NULL, &enc, &err) == 0) {
        size_t cap = 4 * ((enc.len + 2) / 3) + 64;
        char *s = ig_malloc(cap);
        if (s) {
            int n = snprintf(s, cap, "data:image/%s;base64,", p->png ? "png" : "webp");
            EVP_EncodeBlock((unsigned char *)s + n, (unsigned char *)enc.data, (int)enc.len);
            v = json_string(s);
            ig_free(s);
        }
    }
    img_free(im);
    ig_buf_free(&enc);
    return v;
}

/* The prediction object as the API shows it (called with the lock held). */
static json_t *
object(struct emu *e, const struct pred *p, int data_uris, long ttl)
{
    char get[256], cancel[280];
    snprintf(get, sizeof get, "%s/v1/predictions/%s", emu_base_url(e), p->id);
    snprintf(cancel, sizeof cancel, "%s/cancel", get);
    json_t *o = json_pack("{s:s,s:s,s:{s:s,s:I},s:s,s:n,s:s,s:{s:s,s:s}}", "id", p->id, "model",
                          p->model, "input", "prompt", p->prompt, "seed", (json_int_t)p->seed,
                          "logs", "", "error", "status", status_name(p->now), "urls", "get", get,
                          "cancel", cancel);
    json_t *output = json_null();
    if (p->now == P_SUCCEEDED && !p->no_image) {
        output = json_array();
        for (int i = 0; i < p->n; i++) {
            char url[300];
            snprintf(url, sizeof url, "%s/files/%s/out-%d.%s?exp=%lld", emu_base_url(e), p->id, i,
                     p->png ? "png" : "webp", p->done_ms + ttl);
            json_array_append_new(output, data_uris ? data_uri(p, i) : json_string(url));
        }
        json_object_set_new(o, "metrics", json_pack("{s:f,s:f}", "predict_time", 1.2,
                                                     "total_time", 1.5));
    }
    if (p->now == P_FAILED)
        json_object_set_new(o, "error", json_string(p->error));
    json_object_set_new(o, "output", output);
    return o;
}

static void
advance(struct pred *p, long pending)
{
    if (p->now >= P_SUCCEEDED)
        return;
    p->polls++;
    if (p->forever || p->polls <= pending) {
        p->now = p->polls > 1 ? P_PROCESSING : P_STARTING;
        return;
    }
    p->now = p->final;
    p->done_ms = now_ms();
}

static int
create(struct emu_req *r, struct emu_resp *out, const char *model)
{
    json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    json_t *in = json_object_get(body, "input");
    int rc;
    if (!json_is_object(in)) {
        rc = problem(out, 422, "Invalid input", "input: Input is required");
        goto done;
    }
    const char *prompt = json_string_value(json_object_get(in, "prompt"));
    if (!prompt) {
        rc = problem(out, 422, "Input validation failed", "- input: prompt is required");
        goto done;
    }
    json_t *wv = json_object_get(in, "width"), *hv = json_object_get(in, "height");
    json_t *nv = json_object_get(in, "num_outputs");
    int w = wv ? (int)json_integer_value(wv) : 1024, h = hv ? (int)json_integer_value(hv) : 1024;
    int n = nv ? (int)json_integer_value(nv) : 1;
    if (w < 256 || w > 1440 || h < 256 || h > 1440) {
        rc = problem(out, 422, "Input validation failed",
                     "- input.width: Must be between 256 and 1440 (height too)");
        goto done;
    }
    if (n < 1 || n > 4) {
        rc = problem(out, 422, "Input validation failed",
                     "- input.num_outputs: Must be between 1 and 4");
        goto done;
    }
    const char *fmt = json_string_value(json_object_get(in, "output_format"));
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "rate_limit") == 0) {
        json_int_t ra = json_integer_value(json_object_get(r->fault, "retry_after"));
        char secs[24], detail[96];
        snprintf(secs, sizeof secs, "%lld", (long long)(ra > 0 ? ra : 1));
        snprintf(detail, sizeof detail, "Request was throttled. Expected available in %s second.",
                 secs);
        emu_add_header(out, "Retry-After", secs);
        rc = emu_json(out, 429, json_pack("{s:s}", "detail", detail));
        goto done;
    }
    if (kind && strcmp(kind, "quota") == 0) {
        rc = problem(out, 402, "Payment required",
                     "You have insufficient credit to run this model.");
        goto done;
    }
    if (kind && strcmp(kind, "malformed_json") == 0) {
        rc = emu_bytes(out, 201, "application/json", "{\"id\":\"", 7);
        goto done;
    }
    struct pred *p = ig_calloc(1, sizeof *p);
    if (!p || !(p->prompt = ig_strdup(prompt))) {
        pred_free(p);
        rc = -1;
        goto done;
    }
    json_t *sv = json_object_get(in, "seed");
    p->seed = json_is_integer(sv) ? json_integer_value(sv) : (long long)strlen(prompt) * 31337;
    p->w = w;
    p->h = h;
    p->n = n;
    p->png = !fmt || strcmp(fmt, "webp") != 0;
    p->final = P_SUCCEEDED;
    if (kind && strcmp(kind, "moderation") == 0) {
        p->final = P_FAILED;
        p->error = "NSFW content detected. Try running it again, or try a different prompt.";
    } else if (kind && strcmp(kind, "task_error") == 0) {
        p->final = P_FAILED;
        p->error = "CUDA out of memory";
    }
    p->forever = kind && strcmp(kind, "pending_forever") == 0;
    p->no_image = kind && strcmp(kind, "no_image") == 0;
    p->corrupt = kind && strcmp(kind, "corrupt_image") == 0;
    snprintf(p->model, sizeof p->model, "%s", model);
    snprintf(p->fingerprint, sizeof p->fingerprint, "%s", emu_fingerprint(r->emu));
    char rid[32];
    emu_request_id(r->emu, "", rid, sizeof rid);
    snprintf(p->id, sizeof p->id, "wm41d8f%.20s", rid);
    char key[300];
    snprintf(key, sizeof key, "%.200s|%lld", p->prompt, p->seed);
    emu_count_submit(r->emu, key);
    const char *prefer = emu_header(r, "Prefer");
    int wait = prefer && strncmp(prefer, "wait", 4) == 0;
    int completes = emu_knob_int(r->emu, "wait_completes", 1) == 1;
    int data_uris = wait && emu_knob_int(r->emu, "data_uri_outputs", 0) == 1;
    long ttl = emu_knob_int(r->emu, "output_ttl_ms", 3600000);
    pthread_mutex_lock(emu_lock(r->emu));
    struct rep_state *s = emu_vendor_state(r->emu);
    if (!s && (s = ig_calloc(1, sizeof *s)))
        emu_set_vendor_state(r->emu, s, state_free);
    if (!s) {
        pthread_mutex_unlock(emu_lock(r->emu));
        pred_free(p);
        rc = -1;
        goto done;
    }
    unsigned slot = s->next++ % MAX_PREDS;
    pred_free(s->preds[slot]);
    s->preds[slot] = p;
    if (wait && completes && !p->forever) {
        p->now = p->final;
        p->done_ms = now_ms();
    } else {
        p->now = wait ? P_PROCESSING : P_STARTING;
    }
    json_t *o = object(r->emu, p, data_uris, ttl);
    pthread_mutex_unlock(emu_lock(r->emu));
    if (wait) {
        char applied[40];
        snprintf(applied, sizeof applied, "%s", prefer);
        emu_add_header(out, "Preference-Applied", applied);
    }
    emu_add_header(out, "x-emulator-fingerprint", p->fingerprint);
    rc = emu_json(out, 201, o);
done:
    json_decref(body);
    return rc;
}

static struct pred *
find(struct emu *e, const char *id)
{
    struct rep_state *s = emu_vendor_state(e);
    for (int i = 0; s && i < MAX_PREDS; i++)
        if (s->preds[i] && strcmp(s->preds[i]->id, id) == 0)
            return s->preds[i];
    return NULL;
}

static int
get_or_cancel(struct emu_req *r, struct emu_resp *out, const char *rest)
{
    char id[32];
    int cancel = 0;
    size_t n = strcspn(rest, "/");
    if (n == 0 || n >= sizeof id)
        return problem(out, 404, "Not found", "The requested resource could not be found.");
    memcpy(id, rest, n);
    id[n] = '\0';
    if (rest[n]) {
        if (strcmp(rest + n, "/cancel") != 0 || strcmp(r->method, "POST") != 0)
            return problem(out, 404, "Not found", "The requested resource could not be found.");
        cancel = 1;
    }
    if (emu_fault_kind(r) && strcmp(emu_fault_kind(r), "malformed_json") == 0)
        return emu_bytes(out, 200, "application/json", "{\"status\":\"succ", 15);
    long pending = emu_knob_int(r->emu, "pending_polls", 2);
    long ttl = emu_knob_int(r->emu, "output_ttl_ms", 3600000);
    pthread_mutex_lock(emu_lock(r->emu));
    struct pred *p = find(r->emu, id);
    json_t *o = NULL;
    char fp[64] = "";
    if (p) {
        if (cancel && p->now < P_SUCCEEDED) {
            p->now = P_CANCELED;
            p->done_ms = now_ms();
        } else if (!cancel) {
            advance(p, pending);
        }
        o = object(r->emu, p, 0, ttl);
        snprintf(fp, sizeof fp, "%s", p->fingerprint);
    }
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!p)
        return problem(out, 404, "Not found", "The requested resource could not be found.");
    emu_add_header(out, "x-emulator-fingerprint", fp);
    return emu_json(out, 200, o);
}

static int
file(struct emu_req *r, struct emu_resp *out)
{
    char id[32];
    int i;
    if (sscanf(r->url, "/files/%31[^/]/out-%d.", id, &i) != 2)
        return problem(out, 404, "Not found", "no such file");
    const char *exp = emu_query(r, "exp");
    if (!exp || atoll(exp) < now_ms())
        return problem(out, 404, "Not found", "the file has expired");
    pthread_mutex_lock(emu_lock(r->emu));
    struct pred *p = find(r->emu, id);
    struct img *im = p && i >= 0 && i < p->n ? render(p, i) : NULL;
    int png = p && p->png, corrupt = p && p->corrupt;
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!im)
        return problem(out, 404, "Not found", "no such file");
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    int rc;
    if (corrupt)
        rc = emu_bytes(out, 200, png ? "image/png" : "image/webp", "RIFF....WEBPbroken", 18);
    else
        rc = img_encode(im, png ? IMG_FMT_PNG : IMG_FMT_WEBP, 90, NULL, &enc, &err) == 0
                 ? emu_bytes(out, 200, png ? "image/png" : "image/webp", enc.data, enc.len)
                 : -1;
    img_free(im);
    ig_buf_free(&enc);
    return rc;
}

static int
replicate_handle(struct emu_req *r, struct emu_resp *out)
{
    if (strncmp(r->url, "/files/", 7) == 0)
        return file(r, out);
    const char *auth = emu_header(r, "Authorization");
    if (emu_auth_required(r->emu) && (!auth || strncmp(auth, "Bearer ", 7) != 0 || !auth[7]))
        return problem(out, 401, "Unauthenticated",
                       "You did not pass a valid authentication token");
    if (strncmp(r->url, "/v1/predictions/", 16) == 0)
        return get_or_cancel(r, out, r->url + 16);
    if (strcmp(r->url, "/v1/predictions") == 0 && strcmp(r->method, "POST") == 0) {
        json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
        const char *version = json_string_value(json_object_get(body, "version"));
        char model[96];
        snprintf(model, sizeof model, "%s", version ? version : "");
        json_decref(body);
        if (strlen(model) != 64)
            return problem(out, 422, "Invalid version",
                           "version: must be a 64-character version id");
        return create(r, out, model);
    }
    const char *pre = "/v1/models/";
    if (strncmp(r->url, pre, strlen(pre)) == 0 && strcmp(r->method, "POST") == 0) {
        const char *m = r->url + strlen(pre);
        const char *tail = strstr(m, "/predictions");
        if (tail && strcmp(tail, "/predictions") == 0 && memchr(m, '/', (size_t)(tail - m))) {
            char model[96];
            snprintf(model, sizeof model, "%.*s", (int)(tail - m), m);
            return create(r, out, model);
        }
    }
    return problem(out, 404, "Not found", "The requested resource could not be found.");
}

const struct emu_vendor emu_vendor_replicate = {
    .name = "replicate",
    .handle = replicate_handle,
};
