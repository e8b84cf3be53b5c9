/* SPDX-License-Identifier: MIT */
/* comfyui.c -- ComfyUI: a workflow template filled in, /prompt, /history,
 * /view.
 *
 * The graph (API format) is vendor_params.workflow, or a built-in SD 1.5
 * text-to-image graph (checkpoint = the backend's model, by default
 * v1-5-pruned-emaonly.safetensors). Any string value in it that is exactly
 * a placeholder is replaced by a typed value: "{{prompt}}",
 * "{{negative_prompt}}" (strings), "{{seed}}", "{{width}}", "{{height}}",
 * "{{batch_size}}" (integers). POST {endpoint}/prompt answers prompt_id;
 * GET /history/{id} answers {} until the prompt has run, then its outputs
 * and status; each output image is fetched from /view?filename=&subfolder=
 * &type=. A 400 from /prompt (node_errors) is invalid_request; a run whose
 * status is error is upstream_error. ComfyUI has no auth and no
 * moderation; a seed is required by the graph, so one is made when none is
 * given (and reported). */
#include "backends/backend.h"
#include "core/alloc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_workflow[] =
    "{\"4\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"{{model}}\"}},"
    "\"5\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":\"{{width}}\","
    "\"height\":\"{{height}}\",\"batch_size\":\"{{batch_size}}\"}},"
    "\"6\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"{{prompt}}\",\"clip\":[\"4\",1]}},"
    "\"7\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"{{negative_prompt}}\","
    "\"clip\":[\"4\",1]}},"
    "\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":\"{{seed}}\",\"steps\":20,\"cfg\":7,"
    "\"sampler_name\":\"euler\",\"scheduler\":\"normal\",\"denoise\":1,\"model\":[\"4\",0],"
    "\"positive\":[\"6\",0],\"negative\":[\"7\",0],\"latent_image\":[\"5\",0]}},"
    "\"8\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"3\",0],\"vae\":[\"4\",2]}},"
    "\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{\"filename_prefix\":\"ComfyUI\","
    "\"images\":[\"8\",0]}}}";

struct comfy_state {
    char *prompt_id;
    json_t *pending;         /* {filename, subfolder, type} still to fetch */
    size_t next;
    int polls;
    long long seed;
};

static void
comfy_free_state(void *v)
{
    struct comfy_state *s = v;
    if (s) {
        ig_free(s->prompt_id);
        json_decref(s->pending);
        ig_free(s);
    }
}

/* Replaces placeholder strings, recursively. */
static void
fill(json_t *node, const struct be_call *c, long long seed)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_array(node)) {
        json_array_foreach(node, i, v)
            fill(v, c, seed);
        return;
    }
    void *tmp;
    json_object_foreach_safe(node, tmp, key, v) {
        const char *s = json_string_value(v);
        if (!s) {
            fill(v, c, seed);
            continue;
        }
        json_t *with = NULL;
        if (strcmp(s, "{{prompt}}") == 0)
            with = json_string(c->req.prompt ? c->req.prompt : "");
        else if (strcmp(s, "{{negative_prompt}}") == 0)
            with = json_string(c->req.negative_prompt ? c->req.negative_prompt : "");
        else if (strcmp(s, "{{seed}}") == 0)
            with = json_integer(seed);
        else if (strcmp(s, "{{width}}") == 0)
            with = json_integer(c->req.width > 0 ? c->req.width : 512);
        else if (strcmp(s, "{{height}}") == 0)
            with = json_integer(c->req.height > 0 ? c->req.height : 512);
        else if (strcmp(s, "{{batch_size}}") == 0)
            with = json_integer(c->req.n > 0 ? c->req.n : 1);
        else if (strcmp(s, "{{model}}") == 0)
            with = json_string(c->req.cfg->model ? c->req.cfg->model
                                                 : "v1-5-pruned-emaonly.safetensors");
        if (with)
            json_object_set_new(node, key, with);
    }
}

static int
comfy_submit(struct be_call *c)
{
    if (c->req.cls != IG_CLASS_GENERATE)
        return be_fail(c, 400, "invalid_request",
                       "the ComfyUI adapter fills text-to-image workflows only"), -1;
    struct comfy_state *s = ig_calloc(1, sizeof *s);
    if (!(c->state = s))
        return -1;
    json_t *wf = json_object_get(c->req.vendor_params, "workflow");
    json_t *graph = wf ? json_deep_copy(wf) : json_loads(default_workflow, 0, NULL);
    if (!json_is_object(graph)) {
        json_decref(graph);
        return be_fail(c, 400, "invalid_request", "vendor_params.workflow is not a graph"), -1;
    }
    /* The graph needs a seed: one derived from the job when none was asked for. */
    s->seed = c->req.has_seed ? c->req.seed
                              : (long long)(c->req.job_id ? strlen(c->req.job_id) : 0) * 7919 +
                                    c->req.attempt * 104729 + 1;
    fill(graph, c, s->seed);
    json_t *body = json_pack("{s:o,s:s}", "prompt", graph, "client_id", "imagegate");
    if (be_x_start(c, "POST", "%s/prompt", c->base) != 0) {
        json_decref(body);
        return -1;
    }
    json_t *p = be_provenance(c);
    json_object_set_new(p, "model", json_string(c->req.cfg->model
                                                    ? c->req.cfg->model
                                                    : "v1-5-pruned-emaonly.safetensors"));
    json_object_set_new(p, "seed", json_integer((json_int_t)s->seed));
    if (!c->req.has_seed)
        be_note(c, "translated", "no seed asked: the graph got seed %lld", s->seed);
    return be_x_json(c, body);
}

static enum be_next
next_history(struct be_call *c)
{
    struct comfy_state *s = c->state;
    if (be_x_start(c, "GET", "%s/history/%s", c->base, s->prompt_id) != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->x.phase = BE_PHASE_POLL;
    long wait = 50L << (s->polls < 4 ? s->polls : 4);
    c->wait_ms = wait > 500 ? 500 : wait;
    s->polls++;
    return BE_WAIT;
}

static enum be_next
next_view(struct be_call *c)
{
    struct comfy_state *s = c->state;
    json_t *im = json_array_get(s->pending, s->next);
    if (!im) {
        c->result.ok = 1;
        c->result.charged = 1;
        return BE_DONE;
    }
    s->next++;
    const char *fn = json_string_value(json_object_get(im, "filename"));
    const char *sub = json_string_value(json_object_get(im, "subfolder"));
    const char *type = json_string_value(json_object_get(im, "type"));
    if (!fn)
        return be_fail(c, 502, "malformed_response", "an output image has no filename");
    char *efn = curl_easy_escape(c->easy, fn, 0);
    char *esub = curl_easy_escape(c->easy, sub ? sub : "", 0);
    char *etype = curl_easy_escape(c->easy, type ? type : "output", 0);
    int rc = efn && esub && etype
                 ? be_x_start(c, "GET", "%s/view?filename=%s&subfolder=%s&type=%s", c->base, efn,
                              esub, etype)
                 : -1;
    curl_free(efn);
    curl_free(esub);
    curl_free(etype);
    if (rc != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->x.phase = BE_PHASE_FETCH;
    return BE_SEND;
}

static enum be_next
answer(struct be_call *c, json_t *j)
{
    struct comfy_state *s = c->state;
    if (!s->prompt_id) {
        const char *id = json_string_value(json_object_get(j, "prompt_id"));
        if (!id)
            return be_fail(c, 502, "malformed_response", "/prompt answered no prompt_id");
        if (!(s->prompt_id = ig_strdup(id)))
            return be_fail(c, 500, "upstream_error", "out of memory");
        json_object_set_new(c->result.provenance, "request_id", json_string(id));
        if (c->save) {
            char saved[160];
            snprintf(saved, sizeof saved, "{\"prompt_id\":\"%.100s\"}", id);
            c->save(c->ud, saved);
        }
        return next_history(c);
    }
    json_t *entry = json_object_get(j, s->prompt_id);
    if (!entry)
        return next_history(c);   /* {}: not run yet */
    json_t *st = json_object_get(entry, "status");
    const char *status = json_string_value(json_object_get(st, "status_str"));
    json_object_set_new(c->result.provenance, "finish_reason",
                        json_string(status ? status : "unknown"));
    if (status && strcmp(status, "error") == 0) {
        const char *why = NULL;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(st, "messages"), i, m)
            if (json_string_value(json_array_get(m, 0)) &&
                strcmp(json_string_value(json_array_get(m, 0)), "execution_error") == 0)
                why = json_string_value(json_object_get(json_array_get(m, 1),
                                                        "exception_message"));
        return be_fail(c, 502, "upstream_error", "the workflow failed: %s",
                       why ? why : "no message");
    }
    const char *node;
    json_t *o;
    s->pending = json_array();
    json_object_foreach(json_object_get(entry, "outputs"), node, o) {
        size_t i;
        json_t *im;
        json_array_foreach(json_object_get(o, "images"), i, im)
            json_array_append(s->pending, im);
    }
    if (json_array_size(s->pending) == 0)
        return be_fail(c, 502, "malformed_response", "the workflow ran but saved no image");
    return next_view(c);
}

static enum be_next
comfy_poll(struct be_call *c)
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
comfy_fetch(struct be_call *c)
{
    if (c->x.status != 200)
        return be_fail(c, 502, "upstream_error", "/view answered HTTP %ld", c->x.status);
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (fp)
        json_object_set_new(c->result.provenance, "fingerprint", json_string(fp));
    if (be_take_image(c, 0, "/view's answer") != 0)
        return BE_DONE;
    return next_view(c);
}

static enum be_next
comfy_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg)
        msg = json_string_value(e);   /* older servers: "error": "no prompt" */
    char text[400];
    int n = snprintf(text, sizeof text, "%s%s%s", type ? type : "", type ? ": " : "",
                     msg ? msg : "no message");
    const char *node;
    json_t *ne;
    json_object_foreach(json_object_get(j, "node_errors"), node, ne) {
        json_t *first = json_array_get(json_object_get(ne, "errors"), 0);
        const char *m = json_string_value(json_object_get(first, "message"));
        const char *in = json_string_value(
            json_object_get(json_object_get(first, "extra_info"), "input_name"));
        if (n > 0 && (size_t)n < sizeof text)
            n += snprintf(text + n, sizeof text - (size_t)n, "; node %s (%s): %s", node,
                          in ? in : "?", m ? m : "invalid");
    }
    json_decref(j);
    return be_fail_status(c, text);
}

static int
comfy_resume(struct be_call *c, const json_t *saved)
{
    const char *id = json_string_value(json_object_get(saved, "prompt_id"));
    struct comfy_state *s = id ? ig_calloc(1, sizeof *s) : NULL;
    if (!s)
        return -1;
    c->state = s;
    if (!(s->prompt_id = ig_strdup(id)))
        return -1;
    c->result.provenance = json_pack("{s:s}", "request_id", id);
    return next_history(c) == BE_WAIT ? 0 : -1;
}

const struct be_protocol be_protocol_comfyui = {
    .name = "comfyui",
    .submit = comfy_submit,             /* submit: the filled workflow to /prompt */
    .poll = comfy_poll,                 /* poll: prompt_id, then /history until it ran */
    .fetch = comfy_fetch,               /* fetch: each output image from /view */
    .parse_error = comfy_parse_error,   /* parse_error: error + node_errors */
    .resume = comfy_resume,             /* resume: poll the saved prompt_id's history */
    .cancel = NULL,                     /* cancel: /interrupt stops whatever runs: unused */
    .free_state = comfy_free_state,     /* free_state */
};
