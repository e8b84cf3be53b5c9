/* SPDX-License-Identifier: MIT */
/* comfyui.c -- the ComfyUI HTTP API, emulated.
 *
 * POST /prompt (or /api/prompt) with {"prompt": graph} in API format
 * (links are [node id, output index]) validates the graph the way the
 * server does: unknown class types (invalid_prompt), no SaveImage
 * (prompt_no_outputs), missing required inputs, links to missing nodes and
 * unknown checkpoints (prompt_outputs_failed_validation with node_errors);
 * it answers {prompt_id, number, node_errors}. GET /history/{id} answers
 * {} until the prompt has run (the pending_polls knob, 2), then the entry
 * with outputs.{node}.images [{filename, subfolder, type}] and status;
 * GET /view?filename=&subfolder=&type=output serves the PNG. The picture
 * follows the graph: the positive CLIPTextEncode text, the KSampler seed,
 * the EmptyLatentImage size and batch. No auth (ComfyUI has none). */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 64

static const char *const classes[] = {"CheckpointLoaderSimple", "CLIPTextEncode",
                                      "EmptyLatentImage", "KSampler", "VAEDecode", "SaveImage",
                                      "LoadImage", "VAEEncode", NULL};
static const char *const checkpoints[] = {"v1-5-pruned-emaonly.safetensors",
                                          "sd_xl_base_1.0.safetensors", NULL};

struct run {
    char id[48];
    char fingerprint[64];
    char *prompt;
    long long seed;
    int w, h, batch, polls, failed;
    char save_node[16];
};

struct comfy_state {
    struct run *runs[MAX_RUNS];
    unsigned next, number;
};

static void
run_free(struct run *r)
{
    if (r) {
        ig_free(r->prompt);
        ig_free(r);
    }
}

static void
state_free(void *v)
{
    struct comfy_state *s = v;
    if (!s)
        return;
    for (int i = 0; i < MAX_RUNS; i++)
        run_free(s->runs[i]);
    ig_free(s);
}

static int
listed(const char *const *list, const char *v)
{
    for (int i = 0; v && list[i]; i++)
        if (strcmp(list[i], v) == 0)
            return 1;
    return 0;
}

static int
graph_error(struct emu_resp *out, const char *type, const char *message, json_t *node_errors)
{
    return emu_json(out, 400, json_pack("{s:{s:s,s:s,s:s,s:{}},s:o}", "error", "type", type,
                                        "message", message, "details", "", "extra_info",
                                        "node_errors", node_errors ? node_errors : json_object()));
}

static int
node_error(struct emu_resp *out, const char *node, const char *cls, const char *type,
           const char *message, const char *input)
{
    json_t *ne = json_pack("{s:{s:[{s:s,s:s,s:s,s:{s:s}}],s:[],s:s}}", node, "errors", "type",
                           type, "message", message, "details", input, "extra_info",
                           "input_name", input, "dependent_outputs", "class_type", cls);
    return graph_error(out, "prompt_outputs_failed_validation", "Prompt outputs failed validation",
                       ne);
}

/* The node a link input points to, or NULL. */
static json_t *
linked(json_t *graph, json_t *inputs, const char *name)
{
    json_t *l = json_object_get(inputs, name);
    return json_is_array(l) ? json_object_get(graph, json_string_value(json_array_get(l, 0)))
                            : NULL;
}

static int
submit(struct emu_req *r, struct emu_resp *out)
{
    json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    json_t *graph = json_object_get(body, "prompt");
    int rc;
    if (!json_is_object(graph)) {
        rc = graph_error(out, "no_prompt", "No prompt provided", NULL);
        goto done;
    }
    const char *id;
    json_t *node, *ks = NULL, *save = NULL;
    const char *save_id = NULL;
    json_object_foreach(graph, id, node) {
        const char *cls = json_string_value(json_object_get(node, "class_type"));
        json_t *inputs = json_object_get(node, "inputs");
        if (!listed(classes, cls)) {
            char msg[200];
            snprintf(msg, sizeof msg, "Cannot execute because node %.60s does not exist.",
                     cls ? cls : "(none)");
            rc = graph_error(out, "invalid_prompt", msg, NULL);
            goto done;
        }
        const char *k;
        json_t *v;
        json_object_foreach(inputs, k, v)
            if (json_is_array(v) && !json_object_get(graph, json_string_value(json_array_get(v, 0)))) {
                rc = node_error(out, id, cls, "bad_linked_input",
                                "Bad linked input, must be a length-2 list of [string, int]", k);
                goto done;
            }
        if (strcmp(cls, "CheckpointLoaderSimple") == 0 &&
            !listed(checkpoints, json_string_value(json_object_get(inputs, "ckpt_name")))) {
            rc = node_error(out, id, cls, "value_not_in_list", "Value not in list", "ckpt_name");
            goto done;
        }
        if (strcmp(cls, "KSampler") == 0) {
            static const char *const req[] = {"seed", "steps", "cfg", "sampler_name", "scheduler",
                                              "denoise", "model", "positive", "negative",
                                              "latent_image", NULL};
            for (int i = 0; req[i]; i++)
                if (!json_object_get(inputs, req[i])) {
                    rc = node_error(out, id, cls, "required_input_missing",
                                    "Required input is missing", req[i]);
                    goto done;
                }
            ks = node;
        }
        if (strcmp(cls, "SaveImage") == 0) {
            save = node;
            save_id = id;
        }
    }
    if (!save || !ks) {
        rc = graph_error(out, "prompt_no_outputs", "Prompt has no outputs", NULL);
        goto done;
    }
    json_t *ki = json_object_get(ks, "inputs");
    json_t *pos = linked(graph, ki, "positive"), *lat = linked(graph, ki, "latent_image");
    json_t *li = json_object_get(lat, "inputs");
    const char *text = json_string_value(json_object_get(json_object_get(pos, "inputs"), "text"));
    json_t *wv = json_object_get(li, "width"), *hv = json_object_get(li, "height");
    if (!json_is_integer(wv) || !json_is_integer(hv) || json_integer_value(wv) < 16 ||
        json_integer_value(hv) < 16 || json_integer_value(wv) > 8192 ||
        json_integer_value(hv) > 8192) {
        rc = node_error(out, "latent", "EmptyLatentImage", "invalid_input_type",
                        "width and height must be integers from 16 to 8192", "width");
        goto done;
    }
    struct run *run = ig_calloc(1, sizeof *run);
    if (!run || !(run->prompt = ig_strdup(text ? text : ""))) {
        run_free(run);
        rc = -1;
        goto done;
    }
    run->seed = json_integer_value(json_object_get(ki, "seed"));
    run->w = (int)json_integer_value(wv) / 8 * 8;
    run->h = (int)json_integer_value(hv) / 8 * 8;
    json_t *bv = json_object_get(li, "batch_size");
    run->batch = bv ? (int)json_integer_value(bv) : 1;
    if (run->batch < 1 || run->batch > 8)
        run->batch = 1;
    const char *kind = emu_fault_kind(r);
    run->failed = kind && strcmp(kind, "task_error") == 0;
    snprintf(run->save_node, sizeof run->save_node, "%s", save_id);
    snprintf(run->fingerprint, sizeof run->fingerprint, "%s", emu_fingerprint(r->emu));
    char rid[32];
    emu_request_id(r->emu, "", rid, sizeof rid);
    snprintf(run->id, sizeof run->id, "5c0f3a1e-%.20s", rid);
    char key[300];
    snprintf(key, sizeof key, "%.200s|%lld", run->prompt, run->seed);
    emu_count_submit(r->emu, key);
    pthread_mutex_lock(emu_lock(r->emu));
    struct comfy_state *s = emu_vendor_state(r->emu);
    if (!s && (s = ig_calloc(1, sizeof *s)))
        emu_set_vendor_state(r->emu, s, state_free);
    unsigned number = 0;
    if (s) {
        unsigned slot = s->next++ % MAX_RUNS;
        run_free(s->runs[slot]);
        s->runs[slot] = run;
        number = s->number++;
    }
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!s) {
        run_free(run);
        rc = -1;
        goto done;
    }
    rc = emu_json(out, 200, json_pack("{s:s,s:i,s:{}}", "prompt_id", run->id, "number",
                                      (int)number, "node_errors"));
done:
    json_decref(body);
    return rc;
}

static struct run *
find(struct emu *e, const char *id)
{
    struct comfy_state *s = emu_vendor_state(e);
    for (int i = 0; s && i < MAX_RUNS; i++)
        if (s->runs[i] && strcmp(s->runs[i]->id, id) == 0)
            return s->runs[i];
    return NULL;
}

static int
history(struct emu_req *r, struct emu_resp *out, const char *id)
{
    long pending = emu_knob_int(r->emu, "pending_polls", 2);
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "malformed_json") == 0)
        return emu_bytes(out, 200, "application/json", "{\"outputs\":", 11);
    pthread_mutex_lock(emu_lock(r->emu));
    struct run *run = find(r->emu, id);
    json_t *ans = json_object();
    if (run && ++run->polls > pending) {
        json_t *images = json_array();
        for (int i = 0; i < run->batch && !(kind && strcmp(kind, "no_image") == 0); i++) {
            char fname[96];
            snprintf(fname, sizeof fname, "ComfyUI_%s_%05d_.png", run->id, i + 1);
            json_array_append_new(images, json_pack("{s:s,s:s,s:s}", "filename", fname,
                                                    "subfolder", "", "type", "output"));
        }
        json_t *outputs = json_object();
        if (!run->failed)
            json_object_set_new(outputs, run->save_node, json_pack("{s:o}", "images", images));
        else
            json_decref(images);
        json_t *msgs = run->failed
                           ? json_pack("[[s,{s:s}],[s,{s:s,s:s}]]", "execution_start",
                                       "prompt_id", run->id, "execution_error", "prompt_id",
                                       run->id, "exception_message",
                                       "CUDA out of memory. Tried to allocate 2.00 GiB")
                           : json_pack("[[s,{s:s}],[s,{s:s}]]", "execution_start", "prompt_id",
                                       run->id, "execution_success", "prompt_id", run->id);
        json_object_set_new(ans, run->id,
                            json_pack("{s:o,s:{s:s,s:b,s:o}}", "outputs", outputs, "status",
                                      "status_str", run->failed ? "error" : "success",
                                      "completed", !run->failed, "messages", msgs));
    }
    pthread_mutex_unlock(emu_lock(r->emu));
    return emu_json(out, 200, ans);
}

static int
view(struct emu_req *r, struct emu_resp *out)
{
    const char *fname = emu_query(r, "filename"), *type = emu_query(r, "type");
    const char *sub = emu_query(r, "subfolder");
    if (!fname || strstr(fname, "..") || strchr(fname, '/') || (sub && strstr(sub, "..")))
        return emu_bytes(out, 400, "text/plain", "Invalid filename", 16);
    if (type && strcmp(type, "output") != 0)
        return emu_bytes(out, 404, "text/plain", "Not found", 9);
    char id[48];
    int n;
    if (sscanf(fname, "ComfyUI_%47[^_]_%d_.png", id, &n) != 2)
        return emu_bytes(out, 404, "text/plain", "Not found", 9);
    pthread_mutex_lock(emu_lock(r->emu));
    struct run *run = find(r->emu, id);
    struct img *im = run && n >= 1 && n <= run->batch
                         ? emu_picture("comfyui", run->prompt, run->seed + n - 1,
                                       run->fingerprint, run->w, run->h)
                         : NULL;
    pthread_mutex_unlock(emu_lock(r->emu));
    if (!im)
        return emu_bytes(out, 404, "text/plain", "Not found", 9);
    const char *kind = emu_fault_kind(r);
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    int rc;
    if (kind && strcmp(kind, "corrupt_image") == 0)
        rc = emu_bytes(out, 200, "image/png", "\x89PNG\r\n\x1a\n-broken-", 16);
    else
        rc = img_encode(im, IMG_FMT_PNG, 0, NULL, &enc, &err) == 0
                 ? emu_bytes(out, 200, "image/png", enc.data, enc.len)
                 : -1;
    char disp[160];
    snprintf(disp, sizeof disp, "filename=\"%.100s\"", fname);
    emu_add_header(out, "Content-Disposition", disp);
    emu_add_header(out, "x-emulator-fingerprint", emu_fingerprint(r->emu));
    img_free(im);
    ig_buf_free(&enc);
    return rc;
}

static int
comfyui_handle(struct emu_req *r, struct emu_resp *out)
{
    const char *url = strncmp(r->url, "/api/", 5) == 0 ? r->url + 4 : r->url;
    if (strcmp(url, "/prompt") == 0 && strcmp(r->method, "POST") == 0)
        return submit(r, out);
    if (strncmp(url, "/history/", 9) == 0)
        return history(r, out, url + 9);
    if (strcmp(url, "/view") == 0)
        return view(r, out);
    if (strcmp(url, "/system_stats") == 0)
        return emu_json(out, 200, json_pack("{s:{s:s,s:s}}", "system", "comfyui_version",
                                            "0.3.40", "os", "posix"));
    return emu_bytes(out, 404, "text/plain", "404: Not Found", 14);
}

const struct emu_vendor emu_vendor_comfyui = {
    .name = "comfyui",
    .handle = comfyui_handle,
};
