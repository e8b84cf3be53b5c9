/* SPDX-License-Identifier: MIT */
/* bfl.c -- Black Forest Labs FLUX: submit, poll polling_url, download the
 * result at once.
 *
 * POST {endpoint}/v1/{model} with x-key answers {id, polling_url, cost}; the
 * adapter saves {id, polling_url} as vendor state at once, so that a gateway
 * that dies here re-polls the same task after a restart instead of paying for
 * a second one. GET polling_url answers a status: Pending (poll again),
 * Ready (result.sample is a signed URL valid 10 minutes: downloaded in the
 * same breath), Request Moderated / Content Moderated (moderated, not
 * charged), Error, Task not found. cost is in credits of $0.01. BFL takes a
 * seed but no negative prompt and one image per task. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum bfl_phase { BFL_SUBMIT, BFL_POLL, BFL_FETCH };

struct bfl_state {
    enum bfl_phase phase;
    char *id, *polling_url;
    json_t *result;
};

static void
bfl_free_state(void *p)
{
    struct bfl_state *s = p;
    if (!s)
        return;
    ig_free(s->id);
    ig_free(s->polling_url);
    json_decref(s->result);
    ig_free(s);
}

static int
start_poll(struct be_call *c)
{
    struct bfl_state *s = c->state;
    s->phase = BFL_POLL;
    if (be_x_start(c, "GET", "%s", s->polling_url) != 0 ||
        be_x_header(c, "x-key: %s", c->credential ? c->credential : "") != 0 ||
        be_x_header(c, "accept: application/json") != 0)
        return -1;
    c->x.untrusted_url = 1;   /* BFL may route the poll to another regional host */
    return 0;
}

static int
bfl_submit(struct be_call *c)
{
    struct bfl_state *s = ig_calloc(1, sizeof *s);
    if (!s)
        return -1;
    c->state = s;
    if (c->req.negative_prompt && *c->req.negative_prompt)
        be_note(c, "dropped", "negative prompt: BFL takes none");
    if (c->req.n > 1)
        be_note(c, "translated", "n=%d: BFL makes one image per task; the gateway asks again",
                c->req.n);
    const char *model = c->req.cfg->model ? c->req.cfg->model : "flux-pro-1.1";
    json_t *body = json_pack("{s:s}", "prompt", c->req.prompt ? c->req.prompt : "");
    if (!body)
        return -1;
    if (c->req.width > 0 && c->req.height > 0) {
        json_object_set_new(body, "width", json_integer(c->req.width));
        json_object_set_new(body, "height", json_integer(c->req.height));
    }
    if (c->req.has_seed)
        json_object_set_new(body, "seed", json_integer(c->req.seed));
    json_object_set_new(body, "output_format",
                        json_string(c->req.output_format && strcmp(c->req.output_format, "jpeg") == 0
                                        ? "jpeg" : "png"));
    if (c->req.input) {
        struct ig_buf b64 = {0};
        if (be_base64_encode(c->req.input, c->req.input_len, &b64) != 0) {
            json_decref(body);
            return -1;
        }
        json_object_set_new(body, "input_image", json_string(b64.data));
        ig_buf_free(&b64);
    }
    static const char *const pass[] = {"prompt_upsampling", "safety_tolerance", "raw",
                                       "aspect_ratio", "guidance", "steps", NULL};
    for (int i = 0; pass[i]; i++) {
        json_t *v = json_object_get(c->req.vendor_params, pass[i]);
        if (v)
            json_object_set(body, pass[i], v);
    }
    if (be_x_start(c, "POST", "%s/v1/%s", c->base, model) != 0 ||
        be_x_header(c, "x-key: %s", c->credential ? c->credential : "") != 0 ||
        be_x_header(c, "accept: application/json") != 0) {
        json_decref(body);
        return -1;
    }
    return be_x_json(c, body);
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
    be_note(c, "resumed", "re-polling BFL task %s saved before a restart", id);
    return start_poll(c);
}

static enum be_next
submit_answer(struct be_call *c)
{
    struct bfl_state *s = c->state;
    if (c->x.status != 200) {
        json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
        json_t *detail = json_object_get(j, "detail");
        char msg[300];
        snprintf(msg, sizeof msg, "%s",
                 json_is_string(detail)                        ? json_string_value(detail)
                 : json_is_array(detail) && json_array_size(detail)
                     ? json_string_value(json_object_get(json_array_get(detail, 0), "msg"))
                     : "no detail");
        json_decref(j);
        return be_fail_status(c, msg);
    }
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *url = json_string_value(json_object_get(j, "polling_url"));
    json_t *cost = json_object_get(j, "cost");
    if (!id) {
        json_decref(j);
        return be_fail(c, 502, "malformed_response", "the submit answer has no task id");
    }
    s->id = ig_strdup(id);
    s->polling_url = url ? ig_strdup(url) : NULL;
    if (!s->polling_url) {
        /* The documented fallback when polling_url is absent. */
        size_t n = strlen(c->base) + strlen(id) + 32;
        s->polling_url = ig_malloc(n);
        if (s->polling_url)
            snprintf(s->polling_url, n, "%s/v1/get_result?id=%s", c->base, id);
    }
    if (json_is_number(cost))
        c->result.cost_usd = json_number_value(cost) * 0.01;
    json_decref(j);
    if (!s->id || !s->polling_url)
        return be_fail(c, 500, "upstream_error", "out of memory");
    /* Saved before the first poll: from here a restart re-polls. */
    json_t *saved = json_pack("{s:s,s:s}", "id", s->id, "polling_url", s->polling_url);
    char *text = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
    json_decref(saved);
    if (text && c->save)
        c->save(c->ud, text);
    free(text);
    if (start_poll(c) != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->wait_ms = 300;
    return BE_WAIT;
}

static enum be_next
poll_answer(struct be_call *c)
{
    struct bfl_state *s = c->state;
    if (c->x.status == 404)
        return be_fail(c, 502, "upstream_error", "BFL task %s not found", s->id);
    if (c->x.status != 200)
        return be_fail_status(c, "polling failed");
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    const char *status = json_string_value(json_object_get(j, "status"));
    enum be_next next;
    if (!status) {
        next = be_fail(c, 502, "malformed_response", "the poll answer has no status");
    } else if (strcmp(status, "Pending") == 0) {
        next = start_poll(c) == 0 ? (c->wait_ms = 500, BE_WAIT)
                                  : be_fail(c, 500, "upstream_error", "out of memory");
    } else if (strcmp(status, "Ready") == 0) {
        const char *sample = json_string_value(json_object_get(json_object_get(j, "result"), "sample"));
        if (!sample) {
            next = be_fail(c, 502, "malformed_response", "Ready without result.sample");
        } else {
            s->result = json_incref(json_object_get(j, "result"));
            s->phase = BFL_FETCH;
            /* The signed URL expires in minutes: fetched now, not later. */
            if (be_x_start(c, "GET", "%s", sample) != 0) {
                next = be_fail(c, 500, "upstream_error", "out of memory");
            } else {
                c->x.untrusted_url = 1;
                next = BE_SEND;
            }
        }
    } else if (strcmp(status, "Request Moderated") == 0 || strcmp(status, "Content Moderated") == 0) {
        json_t *details = json_object_get(j, "details");
        char *d = details ? json_dumps(details, JSON_COMPACT) : NULL;
        c->result.cost_usd = 0;   /* moderated tasks are not charged */
        next = be_fail(c, 422, "moderated", "%s%s%s", status, d ? ": " : "", d ? d : "");
        free(d);
    } else if (strcmp(status, "Task not found") == 0) {
        next = be_fail(c, 502, "upstream_error", "BFL lost task %s", s->id);
    } else {
        next = be_fail(c, 502, "upstream_error", "BFL task %s ended with status %s", s->id, status);
    }
    json_decref(j);
    return next;
}

static enum be_next
fetch_answer(struct be_call *c)
{
    struct bfl_state *s = c->state;
    if (c->x.status != 200)
        return be_fail(c, 502, "upstream_error", "downloading result.sample: HTTP %ld",
                       c->x.status);
    const char *mime = strncmp(c->x.content_type, "image/", 6) == 0 ? c->x.content_type : "image/png";
    char m[32];
    snprintf(m, sizeof m, "%.*s", (int)strcspn(mime, ";"), mime);
    if (be_add_image(c, c->x.answer.data, c->x.answer.len, m) != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    if (!c->result.provenance)
        c->result.provenance = json_object();
    json_t *p = c->result.provenance;
    json_object_set_new(p, "request_id", json_string(s->id));
    json_object_set_new(p, "model", json_string(c->req.cfg->model ? c->req.cfg->model : "flux-pro-1.1"));
    json_t *seed = json_object_get(s->result, "seed");
    if (json_is_integer(seed))
        json_object_set(p, "seed", seed);
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (fp)
        json_object_set_new(p, "fingerprint", json_string(fp));
    if (c->result.cost_usd >= 0)
        json_object_set_new(p, "credits", json_real(c->result.cost_usd * 100));
    c->result.charged = 1;
    c->result.ok = 1;
    return BE_DONE;
}

static enum be_next
bfl_answer(struct be_call *c)
{
    struct bfl_state *s = c->state;
    switch (s->phase) {
    case BFL_SUBMIT: return submit_answer(c);
    case BFL_POLL: return poll_answer(c);
    case BFL_FETCH: return fetch_answer(c);
    }
    return be_fail(c, 500, "upstream_error", "bad state");
}

const struct be_protocol be_protocol_bfl = {
    .name = "bfl",
    .submit = bfl_submit,          /* submit: POST /v1/{model} */
    .answer = bfl_answer,          /* answer: submit -> poll -> fetch */
    .resume = bfl_resume,          /* resume: poll the saved polling_url */
    .cancel = NULL,                /* cancel: BFL has no cancel endpoint */
    .free_state = bfl_free_state,  /* free_state */
};
