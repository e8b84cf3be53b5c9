/* SPDX-License-Identifier: MIT */
/* removebg.c -- remove.bg: POST /v1.0/removebg, the cutout as raw bytes.
 *
 * Multipart with image_file, size (vendor_params.size, default "full": the
 * vendor's own default, preview, is a 0.25 MP thumbnail), format png (the
 * alpha is the point), header X-Api-Key. The answer is the image with
 * X-Credits-Charged, X-Type, X-Width and X-Height, recorded in provenance.
 * Errors are {"errors":[{title, code}]}: 400 invalid_request, 402 quota,
 * 403 auth, 429 rate_limited with Retry-After. Synchronous: nothing to
 * poll, resume or cancel. */
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

/* Parameters the adapter does not interpret, sent as given. */
static int
passthrough(const char *key)
{
    static const char *const keys[] = {"type", "type_level", "channels", "bg_color", "crop",
                                       "crop_margin", "roi", "scale", "position",
                                       "semitransparency", "add_shadow", NULL};
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

static int
rb_submit(struct be_call *c)
{
    if (c->req.cls != IG_CLASS_REMOVE_BACKGROUND)
        return be_fail(c, 400, "invalid_request", "remove.bg serves remove-background only"), -1;
    if (!c->req.input)
        return be_fail(c, 400, "invalid_request", "remove-background needs an input image"), -1;
    const char *v1 = strstr(c->base, "/v1.0");
    if (be_x_start(c, "POST", "%s%s/removebg", c->base, v1 && v1[5] == '\0' ? "" : "/v1.0") != 0 ||
        be_x_credential(c, "X-Api-Key: ") != 0 ||
        be_x_header(c, "accept: image/*") != 0)
        return -1;
    curl_mime *m = curl_mime_init(c->easy);
    if (!m)
        return -1;
    c->x.mime = m;
    curl_mimepart *p = curl_mime_addpart(m);
    const char *size = json_string_value(json_object_get(c->req.vendor_params, "size"));
    const char *fmt = c->req.output_format ? c->req.output_format : "png";
    if (strcmp(fmt, "jpeg") == 0)
        fmt = "jpg";
    int rc = !p || curl_mime_name(p, "image_file") != CURLE_OK ||
             curl_mime_data(p, c->req.input, c->req.input_len) != CURLE_OK ||
             curl_mime_filename(p, "image.png") != CURLE_OK ||
             add_text(m, "size", size ? size : "full") != 0 || add_text(m, "format", fmt) != 0;
    if (strcmp(fmt, "jpg") == 0)
        be_note(c, "translated", "a JPEG output has no alpha: the background is flattened");
    if (c->req.width > 0)
        be_note(c, "dropped", "size %dx%d: the cutout keeps the input's size", c->req.width,
                c->req.height);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->req.vendor_params, key, v) {
        if (rc || !passthrough(key))
            continue;
        if (json_is_string(v))
            rc = add_text(m, key, json_string_value(v));
        else if (json_is_boolean(v))
            rc = add_text(m, key, json_is_true(v) ? "true" : "false");
    }
    json_object_set_new(be_provenance(c), "model", json_string("remove.bg"));
    return rc ? -1 : 0;
}

static enum be_next
rb_poll(struct be_call *c)
{
    json_t *p = c->result.provenance;
    const char *credits = be_answer_header(c, "X-Credits-Charged");
    const char *type = be_answer_header(c, "X-Type");
    const char *fp = be_answer_header(c, "x-emulator-fingerprint");
    if (credits)
        json_object_set_new(p, "credits", json_real(strtod(credits, NULL)));
    if (type)
        json_object_set_new(p, "foreground_type", json_string(type));
    if (fp)
        json_object_set_new(p, "fingerprint", json_string(fp));
    json_object_set_new(p, "finish_reason", json_string("done"));
    return be_answer_is_image(c);
}

static enum be_next
rb_fetch(struct be_call *c)
{
    /* The cutout is the answer itself; there is never a download. */
    return be_fail(c, 500, "upstream_error", "remove.bg has no result downloads");
}

static enum be_next
rb_parse_error(struct be_call *c)
{
    json_t *j = json_loadb(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len, 0, NULL);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    const char *title = json_string_value(json_object_get(e, "title"));
    const char *code = json_string_value(json_object_get(e, "code"));
    char msg[400];
    snprintf(msg, sizeof msg, "%s%s%s", code ? code : "", code ? ": " : "",
             title ? title : "no message");
    json_decref(j);
    if (c->x.status == 402)
        return be_fail(c, 402, "quota", "%s", msg);
    return be_fail_status(c, msg);
}

const struct be_protocol be_protocol_removebg = {
    .name = "removebg",
    .submit = rb_submit,                /* submit: multipart POST /v1.0/removebg */
    .poll = rb_poll,                    /* poll: the synchronous answer, raw bytes */
    .fetch = rb_fetch,                  /* fetch: never */
    .parse_error = rb_parse_error,      /* parse_error: {"errors":[{title, code}]} */
    .resume = NULL,                     /* resume: synchronous API */
    .cancel = NULL,                     /* cancel: synchronous API */
    .free_state = NULL,                 /* free_state: no state */
};
