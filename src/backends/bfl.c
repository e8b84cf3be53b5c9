/* SPDX-License-Identifier: MIT */
/* bfl.c -- Black Forest Labs FLUX: submit, poll polling_url, download.
 *
 * POST {endpoint}/v1/{model} with JSON (header x-key) answers {id,
 * polling_url, cost}. The polling_url is always the one polled (it may name
 * another regional host, so it goes through the URL guard like any URL a
 * vendor gives). GET polling_url answers a status: "Pending" (and the newer
 * "Queued", "Reasoning", "Generating") waits; "Ready" carries
 * result.sample, a signed URL that expires in minutes, so it is downloaded
 * at once; "Request Moderated" and "Content Moderated" are moderated (not
 * billed); "Error", "Failed" and "Task not found" are upstream errors. The
 * API takes no negative prompt and makes one image per task: both are
 * noted. Kontext and Ultra take an aspect ratio instead of a size: the size
 * is translated. Edits go to Kontext (input_image) or, with a mask, to Fill
 * (image + mask, white where to paint). Errors: FastAPI bodies
 * ({"detail": "..."} or {"detail": [{"loc","msg"}]}); 402 is quota, 429 the
 * active-task limit. BFL has no cancel endpoint. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bfl_state {
    char *id;
    char *polling_url;
    int polls;
};

static void
bfl_free_state(void *p)
{
    struct bfl_state *s = p;
    if (!s)
        return;
    ig_free(s->id);
    ig_free(s->polling_url);
    ig_free(s);
}

static int
starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *
model_of(const struct be_call *c)
{
    const char *m = c->req.cfg->model;
    if (!m)
        m = json_string_value(json_object_get(c->req.vendor_params, "model"));
    if (c->req.cls == IG_CLASS_EDIT) {
        if (c->req.mask)
            return m && strstr(m, "fill") ? m : "flux-pro-1.0-fill";
        return m && (starts(m, "flux-kontext") || starts(m, "flux-2")) ? m : "flux-kontext-pro";
    }
    return m ? m : "flux-pro-1.1";
}

static int
gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Parameters the adapter does not interpret, sent as given. */
static int
passthrough(const char *key)
{
    static const char *const keys[] = {"safety_tolerance", "prompt_upsampling", "raw", "guidance",
                                       "steps", "image_prompt_strength", "interval", "top",
                                       "bottom", "left", "right", NULL};
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

static int
put_b64(json_t *body, const char *name, const void *data, size_t len)
{
    struct ig_buf b = {0};
    int rc = be_base64_encode(data, len, &b) == 0 &&
                     json_object_set_new(body, name, json_stringn(b.data, b.len)) == 0
                 ? 0
                 : -1;
    ig_buf_free(&b);
    return rc;
}

static int
bfl_submit(struct be_call *c)
{
    if (c->req.cls != IG_CLASS_GENERATE && c->req.cls != IG_CLASS_EDIT)
        return be_fail(c, 400, "invalid_request", "BFL FLUX serves generate and edit only"), -1;
    if (c->req.cls == IG_CLASS_EDIT && !c->req.input)
        return be_fail(c, 400, "invalid_request", "an edit needs an input image"), -1;
    c->state = ig_calloc(1, sizeof(struct bfl_state));
    if (!c->state)
        return -1;
    const char *model = model_of(c);
    int fill = strstr(model, "fill") != NULL || strstr(model, "expand") != NULL;
    int by_aspect = starts(model, "flux-kontext") || strstr(model, "ultra") != NULL;
    json_t *body = json_pack("{s:s}", "prompt", c->req.prompt ? c->req.prompt : "");
    if (!body)
        return -1;
    if (c->req.has_seed)
        json_object_set_new(body, "seed", json_integer(c->req.seed));
    if (c->req.negative_prompt && *c->req.negative_prompt)
        be_note(c, "dropped", "negative prompt: BFL FLUX takes none");
    if (c->req.n > 1)
        be_note(c, "dropped", "n=%d: BFL FLUX makes one image per task", c->req.n);
    if (c->req.width > 0 && c->req.height > 0) {
        if (fill || c->req.input) {
            be_note(c, "dropped", "size %dx%d: this model follows the input image",
                    c->req.width, c->req.height);
        } else if (by_aspect) {
            int g = gcd(c->req.width, c->req.height);
            char ar[32];
            snprintf(ar, sizeof ar, "%d:%d", c->req.width / g, c->req.height / g);
            json_object_set_new(body, "aspect_ratio", json_string(ar));
            be_note(c, "translated", "size %dx%d sent as aspect_ratio %s", c->req.width,
                    c->req.height, ar);
        } else {
            json_object_set_new(body, "width", json_integer(c->req.width));
            json_object_set_new(body, "height", json_integer(c->req.height));
        }
    }
    if (c->req.output_format) {
        const char *f = c->req.output_format;
        const char *sent = strcmp(f, "png") == 0 ? "png" : "jpeg";
        if (strcmp(f, "png") != 0 && strcmp(f, "jpeg") != 0 && strcmp(f, "jpg") != 0)
            be_note(c, "translated", "output_format %s sent as %s", f, sent);
        json_object_set_new(body, "output_format", json_string(sent));
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->req.vendor_params, key, v)
        if (passthrough(key))
            json_object_set(body, key, v);
    if (c->req.input &&
        (put_b64(body, fill ? "image" : "input_image", c->req.input, c->req.input_len) != 0 ||
         (fill && c->req.mask && put_b64(body, "mask", c->req.mask, c->req.mask_len) != 0))) {
        json_decref(body);
        return -1;
    }
    if (be_x_start(c, "POST", "%s/v1/%s", c->base, model) != 0 ||
        be_x_credential(c, "x-key: ") != 0 ||
        be_x_header(c, "accept: application/json") != 0) {
        json_decref(body);
        return -1;
    }
    if (!c->result.provenance)
        c->result.provenance = json_object();
    json_object_set_new(c->result.provenance, "model", json_string(model));
    return be_x_json(c, body);
}

/* The next poll, after a wait that doubles from 50 ms up to the 500 ms BFL
 * suggests (a task is often ready within the first second). */
static enum be_next
next_poll(struct be_call *c)
{
    struct bfl_state *s = c->state;
    if (be_x_start(c, "GET", "%s", s->polling_url) != 0 ||
        be_x_credential(c, "x-key: ") != 0 ||
        be_x_header(c, "accept: application/json") != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->x.phase = BE_PHASE_POLL;
    c->x.untrusted_url = 1;
    long wait = 50L << (s->polls < 4 ? s->polls : 4);
    c->wait_ms = wait > 500 ? 500 : wait;
    s->polls++;
    return BE_WAIT;
}

static enum be_next
submitted(struct be_call *c, json_t *j)
{
    struct bfl_state *s = c->state;
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *url = json_string_value(json_object_get(j, "polling_url"));
    if (!id || !*id)
        return be_fail(c, 502, "malformed_response", "the submit answer has no task id");
    s->id = ig_strdup(id);
    if (url) {
        s->polling_url = ig_strdup(url);
    } else {
        size_t n = strlen(c->base) + strlen(id) + 32;
        if ((s->polling_url = ig_malloc(n)))
            snprintf(s->polling_url, n, "%s/v1/get_result?id=%s", c->base, id);
    }
    if (!s->id || !s->polling_url)
        return be_fail(c, 500, "upstream_error", "out of memory");
    json_t *p = c->result.provenance;
    json_object_set_new(p, "request_id", json_string(id));
    json_t *cost = json_object_get(j, "cost");
    if (json_is_number(cost)) {
        json_object_set_new(p, "credits", json_real(json_number_value(cost)));
        c->result.cost_usd = json_number_value(cost) * 0.01;   /* 1 credit = $0.01 */
    }
    if (c->save) {
        json_t *saved = json_pack("{s:s,s:s}", "id", s->id, "polling_url", s->polling_url);
        char *text = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
        if (text)
            c->save(c->ud, text);
        free(text);
        json_decref(saved);
    }
    return next_poll(c);
}

static enum be_next
polled(struct be_call *c, json_t *j)
{
    const char *status = json_string_value(json_object_get(j, "status"));
    json_t *details = json_object_get(j, "details");
    char *why = details && !json_is_null(details) ? json_dumps(details, JSON_COMPACT) : NULL;
    enum be_next r;
    if (!status) {
        r = be_fail(c, 502, "malformed_response", "the poll answer has no status");
    } else if (strcmp(status, "Pending") == 0 || strcmp(status, "Queued") == 0 ||
               strcmp(status, "Reasoning") == 0 || strcmp(status, "Generating") == 0) {
        r = next_poll(c);
    } else if (strcmp(status, "Ready") == 0) {
        json_t *res = json_object_get(j, "result");
        const char *sample = json_string_value(json_object_get(res, "sample"));
        json_t *seed = json_object_get(res, "seed");
        json_t *p = c->result.provenance;
        json_object_set_new(p, "finish_reason", json_string("Ready"));
        if (json_is_integer(seed))
            json_object_set(p, "seed", seed);
        else if (c->req.has_seed)
            json_object_set_new(p, "seed", json_integer(c->req.seed));
        const char *fp = be_answer_header(c, "x-emulator-fingerprint");
        if (fp)
            json_object_set_new(p, "fingerprint", json_string(fp));
        c->result.charged = 1;
        if (!sample) {
            r = be_fail(c, 502, "malformed_response", "status Ready with no result.sample");
        } else if (be_x_start(c, "GET", "%s", sample) != 0) {
            r = be_fail(c, 500, "upstream_error", "out of memory");
        } else {
            /* At once: the signed URL expires in minutes. */
            c->x.phase = BE_PHASE_FETCH;
            c->x.untrusted_url = 1;
            r = BE_SEND;
        }
    } else if (strcmp(status, "Request Moderated") == 0 ||
               strcmp(status, "Content Moderated") == 0) {
        json_object_set_new(c->result.provenance, "finish_reason", json_string(status));
        r = be_fail(c, 422, "moderated", "%s %s", status, why ? why : "");
    } else if (strcmp(status, "Task not found") == 0) {
        r = be_fail(c, 502, "upstream_error", "the task is gone (Task not found)");
    } else if (strcmp(status, "Error") == 0 || strcmp(status, "Failed") == 0) {
        r = be_fail(c, 502, "upstream_error", "the task failed: %s", why ? why : status);
    } else {
        r = be_fail(c, 502, "malformed_response", "unknown task status '%.60s'", status);
    }
    free(why);
    return r;
}

static enum be_next
bfl_poll(struct be_call *c)
{
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    enum be_next r = json_is_object(j) ? c->x.phase == BE_PHASE_SUBMIT ? submitted(c, j)
                                                                       : polled(c, j)
                                       : be_fail(c, 502, "malformed_response",
                                                 "the answer is not a JSON object");
    json_decref(j);
    return r;
}

static enum be_next
bfl_fetch(struct be_call *c)
{
    if (c->x.status == 403 || c->x.status == 404 || c->x.status == 410)
        return be_fail(c, 502, "upstream_error",
                       "the result URL answered HTTP %ld: it expired before the download",
                       c->x.status);
    if (c->x.status != 200)
        return be_fail(c, 502, "upstream_error", "downloading the result: HTTP %ld", c->x.status);
    if (be_take_image(c, 1, "the result") != 0)
        return BE_DONE;
    c->result.ok = 1;
    return BE_DONE;
}

static enum be_next
bfl_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    json_t *d = json_object_get(j, "detail");
    char msg[300] = "";
    if (json_is_string(d)) {
        snprintf(msg, sizeof msg, "%s", json_string_value(d));
    } else if (json_is_array(d)) {
        json_t *first = json_array_get(d, 0);
        json_t *loc = json_object_get(first, "loc");
        snprintf(msg, sizeof msg, "%s: %s",
                 json_string_value(json_array_get(loc, json_array_size(loc) - 1))
                     ? json_string_value(json_array_get(loc, json_array_size(loc) - 1))
                     : "body",
                 json_string_value(json_object_get(first, "msg"))
                     ? json_string_value(json_object_get(first, "msg"))
                     : "invalid");
    } else if (json_is_string(json_object_get(j, "message"))) {
        snprintf(msg, sizeof msg, "%s", json_string_value(json_object_get(j, "message")));
    }
    json_decref(j);
    if (c->x.status == 402)
        return be_fail(c, 402, "quota", "insufficient credits: %s", msg[0] ? msg : "HTTP 402");
    return be_fail_status(c, msg[0] ? msg : NULL);
}

static int
bfl_resume(struct be_call *c, const json_t *saved)
{
    const char *id = json_string_value(json_object_get(saved, "id"));
    const char *url = json_string_value(json_object_get(saved, "polling_url"));
    if (!id || !url)
        return -1;
    struct bfl_state *s = ig_calloc(1, sizeof *s);
    if (!s)
        return -1;
    c->state = s;
    s->id = ig_strdup(id);
    s->polling_url = ig_strdup(url);
    if (!s->id || !s->polling_url)
        return -1;
    c->result.provenance = json_pack("{s:s,s:s}", "request_id", id, "model", model_of(c));
    /* The loop sends a call's first exchange at once: a resumed job has
     * waited long enough already. */
    return next_poll(c) == BE_WAIT ? 0 : -1;
}

const struct be_protocol be_protocol_bfl = {
    .name = "bfl",
    .submit = bfl_submit,               /* submit: POST /v1/{model} */
    .poll = bfl_poll,                   /* poll: the submit answer, then get_result states */
    .fetch = bfl_fetch,                 /* fetch: result.sample, at once (it expires) */
    .parse_error = bfl_parse_error,     /* parse_error: FastAPI detail bodies */
    .resume = bfl_resume,               /* resume: poll the saved polling_url */
    .cancel = NULL,                     /* cancel: BFL has no cancel endpoint */
    .free_state = bfl_free_state,       /* free_state */
};
