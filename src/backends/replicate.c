/* SPDX-License-Identifier: MIT */
/* replicate.c -- Replicate predictions: create with Prefer: wait, then poll.
 *
 * The model "owner/name" is run with POST {endpoint}/v1/models/{owner}/
 * {name}/predictions; "owner/name:version" (or a bare 64-hex version) with
 * POST /v1/predictions and the version in the body. The input carries the
 * prompt, seed, width and height, output_format and, for n > 1,
 * num_outputs (these are the usual image-model names; the rest of a
 * model's input comes from vendor_params.input as given). `Prefer: wait`
 * asks the API to hold the answer until the prediction is done; when the
 * wait window ends first the answer is "starting" or "processing" and
 * urls.get is polled (through the URL guard: the vendor gave it) until
 * succeeded, failed or canceled. Outputs are a URI or a list of them: data:
 * URIs are decoded, http(s) ones downloaded at once (they expire). A failed
 * prediction whose error mentions NSFW or safety is moderated, other
 * failures upstream errors. Errors are RFC 7807 problem+json. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rep_state {
    char *get;              /* urls.get */
    json_t *pending;        /* output URLs still to download */
    size_t next;
    int polls;
};

static void
rep_free_state(void *v)
{
    struct rep_state *s = v;
    if (s) {
        ig_free(s->get);
        json_decref(s->pending);
        ig_free(s);
    }
}

static int
is_version(const char *s)
{
    size_t n = 0;
    while (s[n] && isxdigit((unsigned char)s[n]))
        n++;
    return n == 64 && s[n] == '\0';
}

static int
rep_submit(struct be_call *c)
{
    if (c->req.cls != IG_CLASS_GENERATE)
        return be_fail(c, 400, "invalid_request",
                       "the Replicate adapter runs text-to-image models only"), -1;
    const char *model = c->req.cfg->model;
    if (!model)
        return be_fail(c, 400, "invalid_request", "a Replicate backend needs a model"), -1;
    if (!(c->state = ig_calloc(1, sizeof(struct rep_state))))
        return -1;
    json_t *input = json_deep_copy(json_object_get(c->req.vendor_params, "input"));
    if (!input)
        input = json_object();
    json_object_set_new(input, "prompt", json_string(c->req.prompt ? c->req.prompt : ""));
    if (c->req.has_seed)
        json_object_set_new(input, "seed", json_integer(c->req.seed));
    if (c->req.width > 0 && c->req.height > 0) {
        json_object_set_new(input, "width", json_integer(c->req.width));
        json_object_set_new(input, "height", json_integer(c->req.height));
    }
    if (c->req.n > 1)
        json_object_set_new(input, "num_outputs", json_integer(c->req.n));
    if (c->req.output_format)
        json_object_set_new(input, "output_format", json_string(c->req.output_format));
    if (c->req.negative_prompt && *c->req.negative_prompt)
        json_object_set_new(input, "negative_prompt", json_string(c->req.negative_prompt));
    json_t *body = json_pack("{s:o}", "input", input);
    const char *colon = strchr(model, ':');
    int rc;
    if (colon || is_version(model)) {
        json_object_set_new(body, "version", json_string(colon ? colon + 1 : model));
        rc = be_x_start(c, "POST", "%s/v1/predictions", c->base);
    } else {
        rc = be_x_start(c, "POST", "%s/v1/models/%s/predictions", c->base, model);
    }
    if (rc != 0 ||
        be_x_credential(c, "Authorization: Bearer ") != 0 ||
        be_x_header(c, "Prefer: wait") != 0) {
        json_decref(body);
        return -1;
    }
    if (!c->result.provenance)
        c->result.provenance = json_object();
    json_object_set_new(c->result.provenance, "model", json_string(model));
    return be_x_json(c, body);
}

static enum be_next
next_download(struct be_call *c)
{
    struct rep_state *s = c->state;
    enum be_next next = be_download_next(c, s->pending, &s->next);
    if (next == BE_DONE && c->result.ok)
        c->result.charged = 1;   /* every output came: the prediction is billed */
    return next;
}

static enum be_next
next_poll(struct be_call *c)
{
    struct rep_state *s = c->state;
    if (be_x_start(c, "GET", "%s", s->get) != 0 ||
        be_x_credential(c, "Authorization: Bearer ") != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->x.phase = BE_PHASE_POLL;
    c->x.untrusted_url = 1;
    long wait = 50L << (s->polls < 4 ? s->polls : 4);
    c->wait_ms = wait > 500 ? 500 : wait;
    s->polls++;
    return BE_WAIT;
}

static enum be_next
take_output(struct be_call *c, json_t *output)
{
    struct rep_state *s = c->state;
    json_t *list = json_is_string(output) ? json_pack("[O]", output) : json_incref(output);
    size_t i;
    json_t *o;
    struct ig_buf raw = {0};
    enum be_next r = BE_DONE;
    json_array_foreach(list, i, o) {
        const char *uri = json_string_value(o);
        if (!uri) {
            r = be_fail(c, 502, "malformed_response", "output[%zu] is not a URI", i);
            break;
        }
        if (strncmp(uri, "data:", 5) == 0) {
            char mime[32] = "image/png";
            sscanf(uri + 5, "%31[^;,]", mime);
            if (be_base64_decode(uri, &raw) != 0 || raw.len == 0) {
                r = be_fail(c, 502, "malformed_response", "output[%zu] is a bad data: URI", i);
                break;
            }
            if (be_add_image(c, raw.data, raw.len, mime) != 0) {
                r = be_fail(c, 500, "upstream_error", "out of memory");
                break;
            }
        } else {
            if (!s->pending)
                s->pending = json_array();
            json_array_append_new(s->pending, json_string(uri));
        }
    }
    ig_buf_free(&raw);
    size_t n = json_array_size(list);
    json_decref(list);
    if (c->result.err.code[0])
        return r;
    if (n == 0)
        return be_fail(c, 502, "malformed_response", "succeeded with no output");
    return next_download(c);
}

static int
contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

static enum be_next
prediction(struct be_call *c, json_t *j)
{
    struct rep_state *s = c->state;
    json_t *p = c->result.provenance;
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *get = json_string_value(json_object_get(json_object_get(j, "urls"), "get"));
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (!id || !status)
        return be_fail(c, 502, "malformed_response", "the prediction has no id or status");
    json_object_set_new(p, "request_id", json_string(id));
    if (fp)
        json_object_set_new(p, "fingerprint", json_string(fp));
    json_t *seed = json_object_get(json_object_get(j, "input"), "seed");
    if (json_is_integer(seed))
        json_object_set(p, "seed", seed);
    if (json_object_get(j, "metrics"))
        json_object_set(p, "usage", json_object_get(j, "metrics"));
    if (get && !s->get) {
        if (!(s->get = ig_strdup(get)))
            return be_fail(c, 500, "upstream_error", "out of memory");
        if (c->save) {
            json_t *saved = json_pack("{s:s,s:s}", "id", id, "get", get);
            char *text = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
            if (text)
                c->save(c->ud, text);
            free(text);
            json_decref(saved);
        }
    }
    if (strcmp(status, "starting") == 0 || strcmp(status, "processing") == 0) {
        if (!s->get)
            return be_fail(c, 502, "malformed_response", "a running prediction without urls.get");
        return next_poll(c);
    }
    json_object_set_new(p, "finish_reason", json_string(status));
    if (strcmp(status, "succeeded") == 0)
        return take_output(c, json_object_get(j, "output"));
    const char *err = json_string_value(json_object_get(j, "error"));
    if (strcmp(status, "failed") == 0 && err &&
        (contains_ci(err, "nsfw") || contains_ci(err, "safety")))
        return be_fail(c, 422, "moderated", "%s", err);
    return be_fail(c, 502, "upstream_error", "the prediction %s: %s", status,
                   err ? err : "no error given");
}

static enum be_next
rep_poll(struct be_call *c)
{
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    enum be_next r = json_is_object(j) ? prediction(c, j)
                                       : be_fail(c, 502, "malformed_response",
                                                 "the answer is not a JSON object");
    json_decref(j);
    return r;
}

static enum be_next
rep_fetch(struct be_call *c)
{
    if (c->x.status != 200)
        return be_fail(c, 502, "upstream_error",
                       "downloading the output: HTTP %ld (it may have expired)", c->x.status);
    if (be_take_image(c, 1, "the output") != 0)
        return BE_DONE;
    return next_download(c);
}

static enum be_next
rep_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    const char *title = json_string_value(json_object_get(j, "title"));
    const char *detail = json_string_value(json_object_get(j, "detail"));
    char msg[400];
    snprintf(msg, sizeof msg, "%s%s%s", title ? title : "", title && detail ? ": " : "",
             detail ? detail : "");
    json_decref(j);
    if (c->x.status == 402)
        return be_fail(c, 402, "quota", "%s", msg);
    if (c->x.status == 404 && c->x.phase == BE_PHASE_POLL)
        return be_fail(c, 502, "upstream_error", "the prediction is gone: %s", msg);
    return be_fail_status(c, msg[0] ? msg : NULL);
}

static int
rep_resume(struct be_call *c, const json_t *saved)
{
    const char *get = json_string_value(json_object_get(saved, "get"));
    const char *id = json_string_value(json_object_get(saved, "id"));
    struct rep_state *s = get && id ? ig_calloc(1, sizeof *s) : NULL;
    if (!s)
        return -1;
    c->state = s;
    if (!(s->get = ig_strdup(get)))
        return -1;
    c->result.provenance = json_pack("{s:s,s:s?}", "request_id", id, "model", c->req.cfg->model);
    return next_poll(c) == BE_WAIT ? 0 : -1;
}

/* POST urls.get + "/cancel" (the urls.cancel the API gives is exactly
 * that). Nothing to cancel before the prediction has an id. */
static int
rep_cancel(struct be_call *c)
{
    struct rep_state *s = c->state;
    if (!s || !s->get)
        return -1;
    if (be_x_start(c, "POST", "%s/cancel", s->get) != 0 ||
        be_x_credential(c, "Authorization: Bearer ") != 0)
        return -1;
    c->x.untrusted_url = 1;
    return 0;
}

const struct be_protocol be_protocol_replicate = {
    .name = "replicate",
    .submit = rep_submit,               /* submit: create with Prefer: wait */
    .poll = rep_poll,                   /* poll: the prediction, until terminal */
    .fetch = rep_fetch,                 /* fetch: an output URL, at once (it expires) */
    .parse_error = rep_parse_error,     /* parse_error: RFC 7807 problem+json */
    .resume = rep_resume,               /* resume: poll the saved urls.get */
    .cancel = rep_cancel,               /* cancel: POST .../cancel */
    .free_state = rep_free_state,       /* free_state */
};
