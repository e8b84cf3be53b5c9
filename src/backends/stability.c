/* SPDX-License-Identifier: MIT */
/* stability.c -- Stability AI REST v2beta (stable-image).
 *
 * Every request is multipart/form-data with `authorization: Bearer` and
 * `accept: image/...`: the answer is the raw image, with the seed and
 * finish-reason in headers (a JSON answer {image or result, finish_reason,
 * seed} is read too). The class picks the endpoint: generate goes to
 * generate/{core,ultra,sd3} by the configured model (sd3.5-* and sd3-*
 * models are sent to generate/sd3 with a model field), edit to
 * edit/inpaint (mask: white = repaint), remove-background to
 * edit/remove-background, upscale to upscale/fast (4x, sync) or, when the
 * model is "creative", to upscale/creative, which is async: {id}, then GET
 * /v2beta/results/{id} answers 202 while in progress and the image when
 * done. The size becomes the nearest aspect_ratio of Stability's list (a
 * note says so); there is no n (one image per request). finish-reason
 * CONTENT_FILTERED (the image came back blurred) is moderated, like a 403
 * content_moderation. Errors are {id, name, errors[]}. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stab_state {
    char *id;       /* the async job, once started */
    int polls;
};

static void
stab_free_state(void *p)
{
    struct stab_state *s = p;
    if (s) {
        ig_free(s->id);
        ig_free(s);
    }
}

static const char *
model_of(const struct be_call *c)
{
    const char *m = c->req.cfg->model;
    if (!m)
        m = json_string_value(json_object_get(c->req.vendor_params, "model"));
    return m ? m : "core";
}

static const char *
nearest_ratio(int w, int h)
{
    static const char *const ratios[] = {"21:9", "16:9", "3:2", "5:4", "1:1",
                                         "4:5", "2:3", "9:16", "9:21", NULL};
    const char *best = "1:1";
    double want = log((double)w / h), best_d = 1e9;
    for (int i = 0; ratios[i]; i++) {
        int a, b;
        sscanf(ratios[i], "%d:%d", &a, &b);
        double d = fabs(log((double)a / b) - want);
        if (d < best_d) {
            best_d = d;
            best = ratios[i];
        }
    }
    return best;
}

static int
add_text(curl_mime *m, const char *name, const char *value)
{
    curl_mimepart *p = curl_mime_addpart(m);
    return p && curl_mime_name(p, name) == CURLE_OK &&
                   curl_mime_data(p, value, CURL_ZERO_TERMINATED) == CURLE_OK
               ? 0
               : -1;
}

static int
add_file(curl_mime *m, const char *name, const void *data, size_t len)
{
    curl_mimepart *p = curl_mime_addpart(m);
    return p && curl_mime_name(p, name) == CURLE_OK &&
                   curl_mime_data(p, data, len) == CURLE_OK &&
                   curl_mime_filename(p, "image.png") == CURLE_OK
               ? 0
               : -1;
}

/* Parameters the adapter does not interpret, sent as given. */
static int
passthrough(const char *key)
{
    static const char *const keys[] = {"style_preset", "cfg_scale", "strength", "creativity",
                                       "grow_mask", "mode", NULL};
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

static int
stab_submit(struct be_call *c)
{
    const char *model = model_of(c);
    const char *path;
    int needs_image = 1, async = 0;
    switch (c->req.cls) {
    case IG_CLASS_GENERATE:
        needs_image = 0;
        path = strcmp(model, "ultra") == 0 ? "generate/ultra"
               : strncmp(model, "sd3", 3) == 0 ? "generate/sd3"
                                               : "generate/core";
        break;
    case IG_CLASS_EDIT:
        path = "edit/inpaint";
        break;
    case IG_CLASS_REMOVE_BACKGROUND:
        path = "edit/remove-background";
        break;
    case IG_CLASS_UPSCALE:
        async = strcmp(model, "creative") == 0;
        path = async ? "upscale/creative" : "upscale/fast";
        break;
    default:
        return be_fail(c, 400, "invalid_request", "Stability does not serve this class"), -1;
    }
    if (needs_image && !c->req.input)
        return be_fail(c, 400, "invalid_request", "%s needs an input image", path), -1;
    if (!(c->state = ig_calloc(1, sizeof(struct stab_state))))
        return -1;
    if (be_x_start(c, "POST", "%s/v2beta/stable-image/%s", c->base, path) != 0 ||
        be_x_credential(c, "authorization: Bearer ") != 0 ||
        be_x_header(c, "accept: image/*") != 0)
        return -1;
    curl_mime *m = curl_mime_init(c->easy);
    if (!m)
        return -1;
    c->x.mime = m;
    int rc = 0;
    int takes_prompt = c->req.cls == IG_CLASS_GENERATE || c->req.cls == IG_CLASS_EDIT || async;
    if (takes_prompt)
        rc |= add_text(m, "prompt", c->req.prompt && *c->req.prompt ? c->req.prompt : "image");
    if (takes_prompt && c->req.negative_prompt && *c->req.negative_prompt)
        rc |= add_text(m, "negative_prompt", c->req.negative_prompt);
    if (c->req.cls == IG_CLASS_GENERATE && strncmp(model, "sd3", 3) == 0)
        rc |= add_text(m, "model", model);
    if (c->req.has_seed) {
        if (c->req.seed >= 0 && c->req.seed <= 4294967294LL) {
            char seed[32];
            snprintf(seed, sizeof seed, "%lld", c->req.seed);
            rc |= add_text(m, "seed", seed);
        } else {
            be_note(c, "dropped", "seed %lld: Stability takes 0..4294967294", c->req.seed);
        }
    }
    if (c->req.cls == IG_CLASS_GENERATE && c->req.width > 0 && c->req.height > 0) {
        const char *ar = nearest_ratio(c->req.width, c->req.height);
        rc |= add_text(m, "aspect_ratio", ar);
        be_note(c, "translated", "size %dx%d sent as aspect_ratio %s", c->req.width,
                c->req.height, ar);
    } else if (c->req.width > 0 && c->req.cls != IG_CLASS_UPSCALE) {
        be_note(c, "dropped", "size %dx%d: this endpoint follows the input image", c->req.width,
                c->req.height);
    }
    if (c->req.n > 1)
        be_note(c, "dropped", "n=%d: Stability makes one image per request", c->req.n);
    if (c->req.cls == IG_CLASS_UPSCALE && c->req.scale > 0 && c->req.scale != 4 && !async)
        be_note(c, "translated", "scale %d: upscale/fast always makes 4x", c->req.scale);
    if (c->req.output_format)
        rc |= add_text(m, "output_format", strcmp(c->req.output_format, "jpg") == 0
                                               ? "jpeg"
                                               : c->req.output_format);
    if (c->req.input)
        rc |= add_file(m, "image", c->req.input, c->req.input_len);
    if (c->req.mask && c->req.cls == IG_CLASS_EDIT)
        rc |= add_file(m, "mask", c->req.mask, c->req.mask_len);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->req.vendor_params, key, v) {
        char num[64];
        if (!passthrough(key))
            continue;
        if (json_is_string(v))
            rc |= add_text(m, key, json_string_value(v));
        else if (json_is_number(v) && snprintf(num, sizeof num, "%g", json_number_value(v)) > 0)
            rc |= add_text(m, key, num);
    }
    if (!c->result.provenance)
        c->result.provenance = json_object();
    json_object_set_new(c->result.provenance, "model", json_string(model));
    json_object_set_new(c->result.provenance, "endpoint", json_string(path));
    return rc ? -1 : 0;
}

static enum be_next
poll_result(struct be_call *c)
{
    struct stab_state *s = c->state;
    if (be_x_start(c, "GET", "%s/v2beta/results/%s", c->base, s->id) != 0 ||
        be_x_credential(c, "authorization: Bearer ") != 0 ||
        be_x_header(c, "accept: image/*") != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->x.phase = BE_PHASE_POLL;
    long wait = 100L << (s->polls < 4 ? s->polls : 4);
    c->wait_ms = wait > 1000 ? 1000 : wait;
    s->polls++;
    return BE_WAIT;
}

/* The finished image: raw bytes with headers, or JSON. */
static enum be_next
finished(struct be_call *c)
{
    json_t *p = c->result.provenance;
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (fp)
        json_object_set_new(p, "fingerprint", json_string(fp));
    if (strncmp(c->x.content_type, "image/", 6) == 0) {
        const char *finish = be_answer_header(c, "finish-reason");
        const char *seed = be_answer_header(c, "seed");
        if (seed)
            json_object_set_new(p, "seed", json_integer(strtoll(seed, NULL, 10)));
        if (finish)
            json_object_set_new(p, "finish_reason", json_string(finish));
        if (finish && strcmp(finish, "CONTENT_FILTERED") == 0)
            return be_fail(c, 422, "moderated", "the image came back filtered (CONTENT_FILTERED)");
        if (finish && strcmp(finish, "ERROR") == 0)
            return be_fail(c, 502, "upstream_error", "finish-reason ERROR");
        if (be_take_image(c, 0, "the image") != 0)
            return BE_DONE;
        c->result.ok = 1;
        c->result.charged = 1;
        return BE_DONE;
    }
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    const char *b64 = json_string_value(json_object_get(j, "image"));
    if (!b64)   /* the field's name is disputed: accept both */
        b64 = json_string_value(json_object_get(j, "result"));
    const char *finish = json_string_value(json_object_get(j, "finish_reason"));
    json_t *seed = json_object_get(j, "seed");
    if (json_is_integer(seed))
        json_object_set(p, "seed", seed);
    if (finish)
        json_object_set_new(p, "finish_reason", json_string(finish));
    enum be_next r;
    struct ig_buf raw = {0};
    if (finish && strcmp(finish, "CONTENT_FILTERED") == 0)
        r = be_fail(c, 422, "moderated", "the image came back filtered (CONTENT_FILTERED)");
    else if (!b64)
        r = be_fail(c, 502, "malformed_response", "HTTP 200 with no image");
    else if (be_base64_decode(b64, &raw) != 0 || raw.len == 0)
        r = be_fail(c, 502, "malformed_response", "the image is not base64");
    else if (be_add_image(c, raw.data, raw.len, "image/png") != 0)
        r = be_fail(c, 500, "upstream_error", "out of memory");
    else {
        c->result.ok = 1;
        c->result.charged = 1;
        r = BE_DONE;
    }
    ig_buf_free(&raw);
    json_decref(j);
    return r;
}

static enum be_next
stab_poll(struct be_call *c)
{
    struct stab_state *s = c->state;
    if (c->x.phase == BE_PHASE_POLL && c->x.status == 202)
        return poll_result(c);
    if (c->x.phase == BE_PHASE_SUBMIT && strstr(c->x.content_type, "json") &&
        c->req.cls == IG_CLASS_UPSCALE && strcmp(model_of(c), "creative") == 0) {
        /* an async start: {id} */
        json_t *j = be_answer_json(c);
        if (!j)
            return BE_DONE;
        const char *id = json_string_value(json_object_get(j, "id"));
        if (!id || strlen(id) != 64) {
            json_decref(j);
            return be_fail(c, 502, "malformed_response", "the async answer has no 64-hex id");
        }
        s->id = ig_strdup(id);
        json_object_set_new(c->result.provenance, "request_id", json_string(id));
        json_decref(j);
        if (!s->id)
            return be_fail(c, 500, "upstream_error", "out of memory");
        if (c->save) {
            char saved[128];
            snprintf(saved, sizeof saved, "{\"id\":\"%s\"}", s->id);
            c->save(c->ud, saved);
        }
        return poll_result(c);
    }
    return finished(c);
}

static enum be_next
stab_fetch(struct be_call *c)
{
    /* Results come in the answer or from polling; never a download. */
    return be_fail(c, 500, "upstream_error", "Stability has no result downloads");
}

static enum be_next
stab_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *first = json_string_value(json_array_get(json_object_get(j, "errors"), 0));
    if (!first)
        first = json_string_value(json_object_get(j, "message"));
    char msg[400];
    snprintf(msg, sizeof msg, "%s%s%s", name ? name : "", name ? ": " : "", first ? first : "");
    int moderated = name && strcmp(name, "content_moderation") == 0;
    json_decref(j);
    if (moderated)
        return be_fail(c, 422, "moderated", "%s", msg);
    if (c->x.status == 404 && c->x.phase == BE_PHASE_POLL)
        return be_fail(c, 502, "upstream_error", "the async result is gone: %s", msg);
    return be_fail_status(c, msg[0] ? msg : NULL);
}

static int
stab_resume(struct be_call *c, const json_t *saved)
{
    const char *id = json_string_value(json_object_get(saved, "id"));
    struct stab_state *s = id ? ig_calloc(1, sizeof *s) : NULL;
    if (!s)
        return -1;
    c->state = s;
    if (!(s->id = ig_strdup(id)))
        return -1;
    c->result.provenance = json_pack("{s:s,s:s}", "request_id", id, "model", model_of(c));
    return poll_result(c) == BE_WAIT ? 0 : -1;
}

const struct be_protocol be_protocol_stability = {
    .name = "stability",
    .submit = stab_submit,              /* submit: multipart POST to the class's endpoint */
    .poll = stab_poll,                  /* poll: the image, or {id} then 202 until done */
    .fetch = stab_fetch,                /* fetch: never (no result URLs) */
    .parse_error = stab_parse_error,    /* parse_error: {id, name, errors[]} */
    .resume = stab_resume,              /* resume: poll the saved async id */
    .cancel = NULL,                     /* cancel: the API has none */
    .free_state = stab_free_state,      /* free_state */
};
