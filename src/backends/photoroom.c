/* SPDX-License-Identifier: MIT */
/* photoroom.c -- Photoroom: v1 segment (remove background) or v2 edit.
 *
 * With model "edit" the call goes to POST {endpoint}/v2/edit (multipart
 * imageFile, removeBackground=true, export.format; vendor_params with
 * dotted names such as background.color or outputSize are sent as
 * given); otherwise to POST {endpoint}/v1/segment (multipart image_file,
 * format; vendor_params size, channels, bg_color, crop, despill). Header
 * x-api-key. The answer is the image itself; x-uncertainty-score and v2's
 * pr-unsupported-attributes (parameters the vendor ignored) go to
 * provenance. Errors: v1 {detail, type}, v2 {"error":{message or
 * detail}}; 402 quota, 403 auth, 429 rate_limited. */
#include "backends/backend.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
is_v2(const struct be_call *c)
{
    return c->req.cfg->model && strcmp(c->req.cfg->model, "edit") == 0;
}

static int
pr_submit(struct be_call *c)
{
    if (c->req.cls != IG_CLASS_REMOVE_BACKGROUND)
        return be_fail(c, 400, "invalid_request", "Photoroom serves remove-background here"), -1;
    if (!c->req.input)
        return be_fail(c, 400, "invalid_request", "remove-background needs an input image"), -1;
    int v2 = is_v2(c);
    if (be_x_start(c, "POST", "%s/%s", c->base, v2 ? "v2/edit" : "v1/segment") != 0 ||
        be_x_credential(c, "x-api-key: ") != 0 ||
        be_x_header(c, "accept: image/*") != 0)
        return -1;
    curl_mime *m = curl_mime_init(c->easy);
    if (!m)
        return -1;
    c->x.mime = m;
    const char *fmt = c->req.output_format ? c->req.output_format : "png";
    if (!v2 && strcmp(fmt, "jpeg") == 0)
        fmt = "jpg";
    curl_mimepart *p = curl_mime_addpart(m);
    int rc = !p || curl_mime_name(p, v2 ? "imageFile" : "image_file") != CURLE_OK ||
             curl_mime_data(p, c->req.input, c->req.input_len) != CURLE_OK ||
             curl_mime_filename(p, "image.png") != CURLE_OK ||
             add_text(m, v2 ? "export.format" : "format", fmt) != 0 ||
             (v2 && add_text(m, "removeBackground", "true") != 0);
    static const char *const v1_keys[] = {"size", "channels", "bg_color", "crop", "despill", NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->req.vendor_params, key, v) {
        int ok = v2 ? strchr(key, '.') != NULL || strcmp(key, "outputSize") == 0 ||
                          strcmp(key, "padding") == 0 || strcmp(key, "margin") == 0
                    : 0;
        for (int i = 0; !v2 && v1_keys[i]; i++)
            ok |= strcmp(v1_keys[i], key) == 0;
        if (rc || !ok)
            continue;
        if (json_is_string(v))
            rc = add_text(m, key, json_string_value(v));
        else if (json_is_boolean(v))
            rc = add_text(m, key, json_is_true(v) ? "true" : "false");
    }
    json_object_set_new(be_provenance(c), "model",
                        json_string(v2 ? "photoroom-v2-edit" : "photoroom-v1-segment"));
    return rc ? -1 : 0;
}

static enum be_next
pr_poll(struct be_call *c)
{
    json_t *p = c->result.provenance;
    const char *u = be_answer_header(c, "x-uncertainty-score");
    const char *un = be_answer_header(c, "pr-unsupported-attributes");
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (u)
        json_object_set_new(p, "uncertainty", json_real(strtod(u, NULL)));
    if (un)
        be_note(c, "dropped", "the vendor ignored: %s", un);
    if (fp)
        json_object_set_new(p, "fingerprint", json_string(fp));
    json_object_set_new(p, "finish_reason", json_string("done"));
    return be_answer_is_image(c);
}

static enum be_next
pr_fetch(struct be_call *c)
{
    /* The cutout is the answer itself; there is never a download. */
    return be_fail(c, 500, "upstream_error", "Photoroom has no result downloads");
}

static enum be_next
pr_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(e, "detail"));
    if (!msg)
        msg = json_string_value(json_object_get(j, "detail"));
    char text[300];
    snprintf(text, sizeof text, "%s", msg ? msg : "no message");
    json_decref(j);
    if (c->x.status == 402)
        return be_fail(c, 402, "quota", "%s", text);
    return be_fail_status(c, text);
}

const struct be_protocol be_protocol_photoroom = {
    .name = "photoroom",
    .submit = pr_submit,                /* submit: multipart v1/segment or v2/edit */
    .poll = pr_poll,                    /* poll: the synchronous answer, raw bytes */
    .fetch = pr_fetch,                  /* fetch: never */
    .parse_error = pr_parse_error,      /* parse_error: v1 detail or v2 error bodies */
    .resume = NULL,                     /* resume: synchronous API */
    .cancel = NULL,                     /* cancel: synchronous API */
    .free_state = NULL,                 /* free_state: no state */
};
