/* SPDX-License-Identifier: MIT */
/* a1111.c -- AUTOMATIC1111 stable-diffusion-webui (--api).
 *
 * Synchronous JSON: generate is POST {endpoint}/sdapi/v1/txt2img, edit is
 * /sdapi/v1/img2img (init_images and mask as base64, white = repaint;
 * denoising_strength from vendor_params, 0.75 by default), upscale is
 * /sdapi/v1/extra-single-image (upscaling_resize = the scale, 2 by default;
 * upscaler_1 from vendor_params.upscaler, Lanczos by default). seed -1 asks
 * for a random one; n images are one batch (batch_size). Answers carry
 * images[] (base64 PNG without a data: prefix) and info, a JSON string
 * whose seed, sd_model_name and sd_model_hash (the build) go to provenance.
 * A credential, when configured, is "user:pass" for --api-auth (HTTP
 * Basic). Errors: FastAPI 422 detail lists, or the API middleware's {error,
 * detail, errors}. The webui has no moderation. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
put_b64(json_t *o, const char *name, const void *data, size_t len, int in_array)
{
    struct ig_buf b = {0};
    int rc = -1;
    if (be_base64_encode(data, len, &b) == 0) {
        json_t *s = json_stringn(b.data, b.len);
        rc = in_array ? json_object_set_new(o, name, json_pack("[o]", s))
                      : json_object_set_new(o, name, s);
    }
    ig_buf_free(&b);
    return rc;
}

/* Parameters the adapter does not interpret, sent as given. */
static int
passthrough(const char *key)
{
    static const char *const keys[] = {"sampler_name", "scheduler", "steps", "cfg_scale",
                                       "styles", "restore_faces", "tiling", "override_settings",
                                       "enable_hr", "hr_scale", "hr_upscaler", "mask_blur",
                                       "inpainting_fill", "inpaint_full_res", "resize_mode",
                                       "alwayson_scripts", NULL};
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

static int
a1111_submit(struct be_call *c)
{
    const json_t *vp = c->req.vendor_params;
    json_t *body = json_object();
    const char *path;
    if (!body)
        return -1;
    if (c->req.cls == IG_CLASS_UPSCALE) {
        if (!c->req.input) {
            json_decref(body);
            return be_fail(c, 400, "invalid_request", "an upscale needs an input image"), -1;
        }
        path = "extra-single-image";
        const char *up = json_string_value(json_object_get(vp, "upscaler"));
        put_b64(body, "image", c->req.input, c->req.input_len, 0);
        json_object_set_new(body, "resize_mode", json_integer(0));
        json_object_set_new(body, "upscaling_resize",
                            json_integer(c->req.scale > 0 ? c->req.scale : 2));
        json_object_set_new(body, "upscaler_1", json_string(up ? up : "Lanczos"));
    } else if (c->req.cls == IG_CLASS_GENERATE || c->req.cls == IG_CLASS_EDIT) {
        int edit = c->req.cls == IG_CLASS_EDIT;
        if (edit && !c->req.input) {
            json_decref(body);
            return be_fail(c, 400, "invalid_request", "an edit needs an input image"), -1;
        }
        path = edit ? "img2img" : "txt2img";
        json_object_set_new(body, "prompt", json_string(c->req.prompt ? c->req.prompt : ""));
        if (c->req.negative_prompt)
            json_object_set_new(body, "negative_prompt", json_string(c->req.negative_prompt));
        json_object_set_new(body, "seed", json_integer(c->req.has_seed ? c->req.seed : -1));
        json_object_set_new(body, "batch_size", json_integer(c->req.n > 0 ? c->req.n : 1));
        if (c->req.width > 0 && c->req.height > 0) {
            json_object_set_new(body, "width", json_integer(c->req.width));
            json_object_set_new(body, "height", json_integer(c->req.height));
        }
        if (edit) {
            json_t *ds = json_object_get(vp, "denoising_strength");
            put_b64(body, "init_images", c->req.input, c->req.input_len, 1);
            if (c->req.mask)
                put_b64(body, "mask", c->req.mask, c->req.mask_len, 0);
            json_object_set_new(body, "denoising_strength",
                                json_real(json_is_number(ds) ? json_number_value(ds) : 0.75));
        }
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)vp, key, v)
            if (passthrough(key))
                json_object_set(body, key, v);
    } else {
        json_decref(body);
        return be_fail(c, 400, "invalid_request", "the webui does not remove backgrounds"), -1;
    }
    if (c->req.output_format && strcmp(c->req.output_format, "png") != 0)
        be_note(c, "dropped", "output_format %s: the webui answers in its samples_format (png)",
                c->req.output_format);
    if (be_x_start(c, "POST", "%s/sdapi/v1/%s", c->base, path) != 0) {
        json_decref(body);
        return -1;
    }
    if (c->credential && strchr(c->credential, ':')) {
        struct ig_buf b = {0};
        int rc = be_base64_encode(c->credential, strlen(c->credential), &b) == 0
                     ? be_x_header(c, "Authorization: Basic %.*s", (int)b.len, b.data)
                     : -1;
        ig_buf_free(&b);
        if (rc != 0) {
            json_decref(body);
            return -1;
        }
    }
    json_object_set_new(be_provenance(c), "endpoint", json_string(path));
    return be_x_json(c, body);
}

static enum be_next
read_answer(struct be_call *c, json_t *j)
{
    json_t *p = c->result.provenance;
    json_t *list = json_object_get(j, "images");
    if (!list && json_is_string(json_object_get(j, "image")))
        list = json_pack("[O]", json_object_get(j, "image"));
    else
        json_incref(list);
    const char *info_s = json_string_value(json_object_get(j, "info"));
    json_t *info = info_s ? json_loads(info_s, 0, NULL) : NULL;
    if (info) {
        json_t *seed = json_object_get(info, "seed");
        if (json_is_integer(seed))
            json_object_set(p, "seed", seed);
        const char *model = json_string_value(json_object_get(info, "sd_model_name"));
        const char *hash = json_string_value(json_object_get(info, "sd_model_hash"));
        if (model)
            json_object_set_new(p, "model", json_string(model));
        if (hash)
            json_object_set_new(p, "fingerprint", json_string(hash));
        json_decref(info);
    }
    const char *pt = be_answer_header(c, "X-Process-Time");
    if (pt)
        json_object_set_new(p, "process_time_s", json_real(strtod(pt, NULL)));
    json_object_set_new(p, "finish_reason", json_string("done"));
    size_t i;
    json_t *b;
    struct ig_buf raw = {0};
    enum be_next r = BE_DONE;
    json_array_foreach(list, i, b) {
        const char *s = json_string_value(b);
        if (!s || be_base64_decode(s, &raw) != 0 || raw.len == 0) {
            r = be_fail(c, 502, "malformed_response", "images[%zu] is not base64", i);
            break;
        }
        if (be_add_image(c, raw.data, raw.len, "image/png") != 0) {
            r = be_fail(c, 500, "upstream_error", "out of memory");
            break;
        }
    }
    ig_buf_free(&raw);
    json_decref(list);
    if (c->result.err.code[0])
        return r;
    if (c->result.n_images == 0)
        return be_fail(c, 502, "malformed_response", "HTTP 200 with no image");
    c->result.ok = 1;
    c->result.charged = 1;
    return BE_DONE;
}

static enum be_next
a1111_poll(struct be_call *c)
{
    json_t *j = be_answer_json(c);
    if (!j)
        return BE_DONE;
    enum be_next r = json_is_object(j) ? read_answer(c, j)
                                       : be_fail(c, 502, "malformed_response",
                                                 "the answer is not a JSON object");
    json_decref(j);
    return r;
}

static enum be_next
a1111_fetch(struct be_call *c)
{
    /* Images come inline; there is never a download. */
    return be_fail(c, 500, "upstream_error", "the webui has no result downloads");
}

static enum be_next
a1111_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    json_t *d = json_object_get(j, "detail");
    const char *errors = json_string_value(json_object_get(j, "errors"));
    char msg[300] = "";
    if (json_is_string(d) && *json_string_value(d))
        snprintf(msg, sizeof msg, "%s", json_string_value(d));
    else if (json_is_array(d)) {
        json_t *first = json_array_get(d, 0), *loc = json_object_get(first, "loc");
        const char *field = json_string_value(json_array_get(loc, json_array_size(loc) - 1));
        const char *m = json_string_value(json_object_get(first, "msg"));
        snprintf(msg, sizeof msg, "%s: %s", field ? field : "body", m ? m : "invalid");
    } else if (errors)
        snprintf(msg, sizeof msg, "%s", errors);
    int bad_image = errors && strstr(errors, "Invalid encoded image");
    json_decref(j);
    if (bad_image)   /* a 500 at the webui, but the input's fault */
        return be_fail(c, 400, "invalid_request", "%s", msg);
    return be_fail_status(c, msg[0] ? msg : NULL);
}

const struct be_protocol be_protocol_a1111 = {
    .name = "a1111",
    .submit = a1111_submit,             /* submit: txt2img, img2img or extra-single-image */
    .poll = a1111_poll,                 /* poll: the synchronous answer */
    .fetch = a1111_fetch,               /* fetch: never (images are inline) */
    .parse_error = a1111_parse_error,   /* parse_error: FastAPI or middleware bodies */
    .resume = NULL,                     /* resume: synchronous API */
    .cancel = NULL,                     /* cancel: /sdapi/v1/interrupt stops every job: unused */
    .free_state = NULL,                 /* free_state: no state */
};
