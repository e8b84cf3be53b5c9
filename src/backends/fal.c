/* SPDX-License-Identifier: MIT */
/* fal.c -- fal.ai queue: submit, status, result.
 *
 * POST {endpoint}/{model} (e.g. fal-ai/flux/dev) with `Authorization: Key`
 * and the model's JSON input answers {request_id, status_url,
 * response_url}; status_url answers 202 while IN_QUEUE or IN_PROGRESS and
 * 200 once COMPLETED; then response_url gives the output {images:[{url,
 * content_type}], seed, has_nsfw_concepts}. Image URLs are downloaded at
 * once (data: URIs, from sync_mode, are decoded). The URLs fal hands out go
 * through the URL guard. The input uses flux/dev's names: prompt,
 * image_size {width, height}, seed, num_images, output_format (jpeg|png;
 * webp is sent as png, noted); other fields come from vendor_params as
 * given. A flagged has_nsfw_concepts is moderated (fal returns such images
 * blacked out). Errors: FastAPI detail bodies; a 504 marked
 * x-fal-request-timeout-type: user is timeout. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fal_state {
    char *status_url, *response_url;
    int fetching_result;     /* the next answer is the output, not a status */
    json_t *pending;         /* image URLs to download */
    size_t next;
    int polls;
};

static void
fal_free_state(void *v)
{
    struct fal_state *s = v;
    if (s) {
        ig_free(s->status_url);
        ig_free(s->response_url);
        json_decref(s->pending);
        ig_free(s);
    }
}

static const char *
model_of(const struct be_call *c)
{
    return c->req.cfg->model ? c->req.cfg->model : "fal-ai/flux/dev";
}

static int
fal_submit(struct be_call *c)
{
    if (c->req.cls != IG_CLASS_GENERATE)
        return be_fail(c, 400, "invalid_request", "the fal adapter runs text-to-image models"), -1;
    if (!(c->state = ig_calloc(1, sizeof(struct fal_state))))
        return -1;
    json_t *body = json_deep_copy(c->req.vendor_params);
    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();
    }
    json_object_del(body, "model");
    json_object_set_new(body, "prompt", json_string(c->req.prompt ? c->req.prompt : ""));
    if (c->req.width > 0 && c->req.height > 0)
        json_object_set_new(body, "image_size", json_pack("{s:i,s:i}", "width", c->req.width,
                                                          "height", c->req.height));
    if (c->req.has_seed)
        json_object_set_new(body, "seed", json_integer(c->req.seed));
    if (c->req.n > 1)
        json_object_set_new(body, "num_images", json_integer(c->req.n));
    if (c->req.output_format) {
        const char *f = c->req.output_format;
        const char *sent = strcmp(f, "jpeg") == 0 || strcmp(f, "jpg") == 0 ? "jpeg" : "png";
        if (strcmp(f, sent) != 0 && strcmp(f, "jpg") != 0)
            be_note(c, "translated", "output_format %s sent as %s", f, sent);
        json_object_set_new(body, "output_format", json_string(sent));
    }
    if (c->req.negative_prompt && *c->req.negative_prompt &&
        !json_object_get(body, "negative_prompt"))
        be_note(c, "dropped", "negative prompt: fal's flux models take none "
                              "(set vendor_params.negative_prompt for a model that does)");
    if (be_x_start(c, "POST", "%s/%s", c->base, model_of(c)) != 0 ||
        be_x_credential(c, "Authorization: Key ") != 0) {
        json_decref(body);
        return -1;
    }
    json_object_set_new(be_provenance(c), "model", json_string(model_of(c)));
    return be_x_json(c, body);
}

static enum be_next
get(struct be_call *c, const char *url, long wait_ms)
{
    if (be_x_start(c, "GET", "%s", url) != 0 ||
        be_x_credential(c, "Authorization: Key ") != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->x.phase = BE_PHASE_POLL;
    c->x.untrusted_url = 1;
    c->wait_ms = wait_ms;
    return wait_ms > 0 ? BE_WAIT : BE_SEND;
}

static enum be_next
next_status(struct be_call *c)
{
    struct fal_state *s = c->state;
    long wait = 50L << (s->polls < 4 ? s->polls : 4);
    s->polls++;
    return get(c, s->status_url, wait > 500 ? 500 : wait);
}

static enum be_next
next_download(struct be_call *c)
{
    struct fal_state *s = c->state;
    enum be_next next = be_download_next(c, s->pending, &s->next);
    if (next == BE_DONE && c->result.ok)
        c->result.charged = 1;   /* every output came: the prediction is billed */
    return next;
}

static enum be_next
output(struct be_call *c, json_t *j)
{
    struct fal_state *s = c->state;
    json_t *p = c->result.provenance;
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (fp)
        json_object_set_new(p, "fingerprint", json_string(fp));
    if (json_is_integer(json_object_get(j, "seed")))
        json_object_set(p, "seed", json_object_get(j, "seed"));
    if (json_object_get(j, "timings"))
        json_object_set(p, "usage", json_object_get(j, "timings"));
    size_t i;
    json_t *flag;
    json_array_foreach(json_object_get(j, "has_nsfw_concepts"), i, flag)
        if (json_is_true(flag)) {
            json_object_set_new(p, "finish_reason", json_string("nsfw"));
            return be_fail(c, 422, "moderated", "image %zu was flagged (has_nsfw_concepts)", i);
        }
    json_object_set_new(p, "finish_reason", json_string("COMPLETED"));
    json_t *images = json_object_get(j, "images"), *im;
    if (!json_is_array(images) || json_array_size(images) == 0)
        return be_fail(c, 502, "malformed_response", "COMPLETED with no images");
    struct ig_buf raw = {0};
    json_array_foreach(images, i, im) {
        const char *url = json_string_value(json_object_get(im, "url"));
        const char *ct = json_string_value(json_object_get(im, "content_type"));
        if (!url) {
            ig_buf_free(&raw);
            return be_fail(c, 502, "malformed_response", "images[%zu] has no url", i);
        }
        if (strncmp(url, "data:", 5) == 0) {
            if (be_base64_decode(url, &raw) != 0 || raw.len == 0 ||
                be_add_image(c, raw.data, raw.len, ct ? ct : "image/png") != 0) {
                ig_buf_free(&raw);
                return be_fail(c, 502, "malformed_response", "images[%zu] is a bad data: URI",
                               i);
            }
        } else {
            if (!s->pending)
                s->pending = json_array();
            json_array_append_new(s->pending, json_string(url));
        }
    }
    ig_buf_free(&raw);
    return next_download(c);
}

static enum be_next
answer(struct be_call *c, json_t *j)
{
    struct fal_state *s = c->state;
    if (s->fetching_result)
        return output(c, j);
    if (!s->status_url) {
        const char *id = json_string_value(json_object_get(j, "request_id"));
        const char *su = json_string_value(json_object_get(j, "status_url"));
        const char *ru = json_string_value(json_object_get(j, "response_url"));
        if (!id || !su || !ru)
            return be_fail(c, 502, "malformed_response",
                           "the queue answer lacks request_id, status_url or response_url");
        s->status_url = ig_strdup(su);
        s->response_url = ig_strdup(ru);
        if (!s->status_url || !s->response_url)
            return be_fail(c, 500, "upstream_error", "out of memory");
        json_object_set_new(c->result.provenance, "request_id", json_string(id));
        if (c->save) {
            json_t *saved = json_pack("{s:s,s:s,s:s}", "id", id, "status_url", su,
                                      "response_url", ru);
            char *text = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
            if (text)
                c->save(c->ud, text);
            free(text);
            json_decref(saved);
        }
        return next_status(c);
    }
    const char *status = json_string_value(json_object_get(j, "status"));
    if (!status)
        return be_fail(c, 502, "malformed_response", "the status answer has no status");
    if (strcmp(status, "IN_QUEUE") == 0 || strcmp(status, "IN_PROGRESS") == 0)
        return next_status(c);
    if (strcmp(status, "COMPLETED") != 0)
        return be_fail(c, 502, "malformed_response", "unknown status '%.40s'", status);
    if (json_object_get(j, "metrics"))
        json_object_set(c->result.provenance, "metrics", json_object_get(j, "metrics"));
    s->fetching_result = 1;
    return get(c, s->response_url, 0);
}

static enum be_next
fal_poll(struct be_call *c)
{
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    enum be_next r = json_is_object(j) ? answer(c, j)
                                       : be_fail(c, 502, "malformed_response",
                                                 "the answer is not a JSON object");
    json_decref(j);
    return r;
}

static enum be_next
fal_fetch(struct be_call *c)
{
    if (c->x.status != 200)
        return be_fail(c, 502, "upstream_error", "downloading the image: HTTP %ld", c->x.status);
    if (be_take_image(c, 0, "the image") != 0)
        return BE_DONE;
    return next_download(c);
}

static enum be_next
fal_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    json_t *d = json_object_get(j, "detail");
    char msg[300] = "";
    if (json_is_string(d))
        snprintf(msg, sizeof msg, "%s", json_string_value(d));
    else if (json_is_array(d)) {
        json_t *first = json_array_get(d, 0), *loc = json_object_get(first, "loc");
        const char *field = json_string_value(json_array_get(loc, json_array_size(loc) - 1));
        const char *m = json_string_value(json_object_get(first, "msg"));
        snprintf(msg, sizeof msg, "%s: %s", field ? field : "body", m ? m : "invalid");
    } else if (json_is_string(json_object_get(j, "message")))
        snprintf(msg, sizeof msg, "%s", json_string_value(json_object_get(j, "message")));
    json_decref(j);
    const char *tt = be_answer_header(c, "x-fal-request-timeout-type");
    if (c->x.status == 504 && tt && strcmp(tt, "user") == 0)
        return be_fail(c, 504, "timeout", "the request timeout set at submit passed");
    struct fal_state *s = c->state;
    if (s && s->fetching_result && c->x.status >= 500)
        return be_fail(c, 502, "upstream_error", "the run failed: %s", msg);
    return be_fail_status(c, msg[0] ? msg : NULL);
}

static int
fal_resume(struct be_call *c, const json_t *saved)
{
    const char *su = json_string_value(json_object_get(saved, "status_url"));
    const char *ru = json_string_value(json_object_get(saved, "response_url"));
    const char *id = json_string_value(json_object_get(saved, "id"));
    struct fal_state *s = su && ru && id ? ig_calloc(1, sizeof *s) : NULL;
    if (!s)
        return -1;
    c->state = s;
    if (!(s->status_url = ig_strdup(su)) || !(s->response_url = ig_strdup(ru)))
        return -1;
    c->result.provenance = json_pack("{s:s,s:s}", "request_id", id, "model", model_of(c));
    return next_status(c) == BE_WAIT ? 0 : -1;
}

/* PUT .../requests/{id}/cancel: the status URL with its last segment
 * replaced, as the queue's cancel_url is. Nothing to cancel before the
 * queue has answered with a request. */
static int
fal_cancel(struct be_call *c)
{
    struct fal_state *s = c->state;
    const char *slash = s && s->status_url ? strrchr(s->status_url, '/') : NULL;
    if (!slash || strcmp(slash, "/status") != 0)
        return -1;
    if (be_x_start(c, "PUT", "%.*s/cancel", (int)(slash - s->status_url), s->status_url) != 0 ||
        be_x_credential(c, "Authorization: Key ") != 0)
        return -1;
    c->x.untrusted_url = 1;
    return 0;
}

const struct be_protocol be_protocol_fal = {
    .name = "fal",
    .submit = fal_submit,               /* submit: POST to the queue */
    .poll = fal_poll,                   /* poll: queue answer, statuses, then the output */
    .fetch = fal_fetch,                 /* fetch: images[].url, at once */
    .parse_error = fal_parse_error,     /* parse_error: FastAPI detail bodies */
    .resume = fal_resume,               /* resume: poll the saved status_url */
    .cancel = fal_cancel,               /* cancel: PUT .../cancel */
    .free_state = fal_free_state,       /* free_state */
};
