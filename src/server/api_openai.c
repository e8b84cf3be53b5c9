/* SPDX-License-Identifier: MIT */
/* api_openai.c -- the OpenAI-compatible image endpoints.
 *
 * POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart)
 * take OpenAI's fields and answer in OpenAI's ImagesResponse shape, so the
 * official SDKs work by changing only base_url. `model` names a backend or a
 * ladder of the config (or a backend's model name); OpenAI parameters the
 * gateway does not interpret itself (background, moderation,
 * output_compression, style, input_fidelity, user) are passed on to the
 * adapter in vendor_params, never dropped. The request waits for the job,
 * as OpenAI's own endpoints do. */
#include "server/internal.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/str.h"
#include "route/gateway.h"
#include "store/store.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jscan.h"

/* Fields the gateway maps onto the job itself. */
static const char *const mapped[] = {"prompt", "model", "n", "size", "quality", "output_format",
                                     "response_format", "seed", NULL};

static int
is_mapped(const char *key)
{
    for (int i = 0; mapped[i]; i++)
        if (strcmp(mapped[i], key) == 0)
            return 1;
    return 0;
}

/* model -> a backend or ladder name the router knows, or NULL (default ladder). */
static const char *
route_target(const struct ig_config *cfg, const char *model)
{
    if (!model)
        return NULL;
    if (ig_config_backend(cfg, model) || ig_config_ladder_named(cfg, model))
        return model;
    for (size_t i = 0; i < cfg->n_backends; i++)
        if (cfg->backends[i].model && strcmp(cfg->backends[i].model, model) == 0)
            return cfg->backends[i].name;
    return NULL;
}

/* Adds one OpenAI field (as its JSON value) to the job or to vendor_params. */
static int
map_field(const struct ig_config *cfg, json_t *job, json_t *vendor, const char *key, json_t *v,
          struct ig_error *err)
{
    if (strcmp(key, "stream") == 0 && json_is_true(v))
        return ig_error_set(err, 400, "invalid_request",
                            "'stream' is not supported by this gateway; omit it");
    if (!is_mapped(key)) {
        json_object_set(vendor, key, v);
        if (strcmp(key, "background") == 0)
            json_object_set_new(job, "transparent",
                                json_boolean(strcmp(json_string_value(v) ? json_string_value(v)
                                                                         : "", "transparent") == 0));
        return 0;
    }
    if (strcmp(key, "model") == 0) {
        const char *target = route_target(cfg, json_string_value(v));
        if (target)
            json_object_set_new(job, "backend", json_string(target));
        json_object_set(vendor, "model", v);
        return 0;
    }
    if (strcmp(key, "response_format") == 0)
        return 0;   /* answered here, not by the backend */
    if (strcmp(key, "size") == 0 && json_is_string(v) &&
        strcmp(json_string_value(v), "auto") == 0)
        return 0;
    json_object_set(job, key, v);
    return 0;
}

static json_t *
new_job(const char *cls)
{
    return json_pack("{s:s,s:{}}", "class", cls, "vendor_params");
}

/* ---- The answer ------------------------------------------------------------ */

static char *
base64(const void *data, size_t len)
{
    char *out = ig_malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static enum MHD_Result
answer_images(struct srv_req *r, const char *unused)
{
    (void)unused;
    struct ig_error err = {0};
    int state;
    json_t *view = srv_job_view(r, r->wait_job, &state, &err);
    if (!view)
        return srv_error(r, &err);
    if (!store_state_terminal(state)) {
        json_decref(view);
        return srv_job_error(r, 504, r->wait_job,
                             "{\"code\":\"timeout\",\"message\":\"the job did not finish in "
                             "time; poll GET /v1/jobs/{id}\"}");
    }
    if (state != STORE_SUCCEEDED) {
        char *etext = json_dumps(json_object_get(view, "error"), JSON_COMPACT);
        enum MHD_Result ret = srv_job_error(r, state == STORE_CANCELLED ? 409 : 502, r->wait_job,
                                            etext);
        free(etext);
        json_decref(view);
        return ret;
    }
    int want_url = 0;
    const struct srv_part *rf = srv_part(r, "response_format", 0);
    json_t *req = NULL;
    if (rf)
        want_url = rf->data.len == 3 && memcmp(rf->data.data, "url", 3) == 0;
    else if (r->body.len && (req = json_loadb(r->body.data, r->body.len, 0, NULL)))
        want_url = json_string_value(json_object_get(req, "response_format")) &&
                   strcmp(json_string_value(json_object_get(req, "response_format")), "url") == 0;
    json_decref(req);

    json_t *data = json_array();
    size_t i;
    json_t *o;
    const char *host = srv_header(r, "Host");
    json_array_foreach(json_object_get(view, "outputs"), i, o) {
        if (want_url) {
            char url[800];
            snprintf(url, sizeof url, "http://%s%s", host ? host : srv_address(r->srv),
                     json_string_value(json_object_get(o, "url")));
            json_array_append_new(data, json_pack("{s:s}", "url", url));
            continue;
        }
        struct ig_buf b = {0};
        if (store_blob_get(r->srv->deps.store, json_string_value(json_object_get(o, "file")), &b,
                           &err) != 0) {
            ig_buf_free(&b);
            json_decref(data);
            json_decref(view);
            return srv_error(r, &err);
        }
        char *b64 = base64(b.data, b.len);
        ig_buf_free(&b);
        if (!b64) {
            json_decref(data);
            json_decref(view);
            return srv_errorf(r, 500, "out_of_memory", "out of memory");
        }
        json_array_append_new(data, json_pack("{s:s}", "b64_json", b64));
        ig_free(b64);
    }
    json_t *first = json_array_get(json_object_get(view, "outputs"), 0);
    char size[32] = "";
    if (first)
        snprintf(size, sizeof size, "%dx%d",
                 (int)json_integer_value(json_object_get(first, "width")),
                 (int)json_integer_value(json_object_get(first, "height")));
    const char *mime = json_string_value(json_object_get(first, "mime"));
    const char *ofmt = mime && strchr(mime, '/') ? strchr(mime, '/') + 1 : "png";
    json_t *prov = json_object_get(view, "provenance");
    json_t *usage = json_object_get(json_object_get(prov, "vendor"), "usage");
    json_t *body = json_pack("{s:I,s:o,s:s,s:s,s:O?,s:O?}", "created", (json_int_t)time(NULL),
                             "data", data, "size", size, "output_format", ofmt, "usage", usage,
                             "imagegate", prov);
    json_decref(view);
    if (!body)
        return srv_errorf(r, 500, "out_of_memory", "out of memory");
    return srv_json(r, 200, body);
}

static enum MHD_Result
submit_and_wait(struct srv_req *r, json_t *job)
{
    struct ig_error err = {0};
    char id[40];
    int rc = route_gateway_submit(r->srv->deps.gw, r->tenant_name, job,
                                  srv_header(r, "Idempotency-Key"), id, &err);
    json_decref(job);
    if (rc < 0)
        return srv_error(r, &err);
    return srv_wait(r, id, r->srv->cfg->limits.job_timeout_ms, answer_images);
}

/* ---- The relay (route/gateway.h says when and why) ------------------------ */

static enum MHD_Result generate_durably(struct srv_req *r);

static enum MHD_Result
answer_relay(struct srv_req *r, const char *unused)
{
    (void)unused;
    struct route_relay_result *res = &r->relay;
    if (res->fallback)
        return generate_durably(r);
    if (!res->ok) {
        json_t *attempts = NULL;
        json_t *prov = res->provenance ? json_loads(res->provenance, 0, NULL) : NULL;
        attempts = json_object_get(prov, "attempts");
        json_t *e = json_pack("{s:s,s:s,s:O?}", "code", res->err.code, "message",
                              res->err.message, "attempts", attempts);
        char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        json_decref(prov);
        enum MHD_Result ret =
            srv_job_error(r, res->err.http_status ? (unsigned)res->err.http_status : 502,
                          res->job_id, text ? text : "{}");
        free(text);
        return ret;
    }
    const struct ig_backend_cfg *b = res->backend;
    char cost[IG_FIXED6_TEXT];
    ig_fmt_fixed6(cost, res->cost_usd);
    const char *headers[] = {
        "X-Imagegate-Job", res->job_id,
        "X-Imagegate-Backend", b->name,
        "X-Imagegate-Tier", ig_tier_name(b->contract.tier),
        "X-Imagegate-License", res->license,
        "X-Imagegate-Cost-Usd", cost,
        "X-Imagegate-Relay", "1",
        NULL};
    size_t len;
    char *data = ig_buf_steal(&res->answer, &len);
    return srv_bytes(r, 200, res->content_type, data, len, headers);
}

static void
relay_done(void *cookie, struct route_relay_result *res)
{
    struct srv_req *r = cookie;
    pthread_mutex_lock(&r->relay_mu);
    r->relay = *res;
    int suspended = r->relay_state == 1 && r->waiting;
    r->relay_state = 2;
    if (suspended)
        srv_wake(r);
    pthread_mutex_unlock(&r->relay_mu);
}

/* 1: the relay has the request (answered, or to be); 0: not for the relay. */
static int
try_relay(struct srv_req *r, enum MHD_Result *ret)
{
    const struct ig_config *cfg = r->srv->cfg;
    if (cfg->server.relay_off || cfg->gate.enabled || srv_header(r, "Idempotency-Key") ||
        !r->body.len)
        return 0;
    const char *ct = srv_header(r, "Content-Type");
    if (ct && strncmp(ct, "application/json", 16) != 0)
        return 0;
    struct ig_jfield f[] = {{.key = "model"}, {.key = "prompt"}, {.key = "n"},
                            {.key = "size"}, {.key = "quality"}, {.key = "response_format"},
                            {.key = "stream"}};
    struct ig_error err = {0};
    if (ig_jscan(r->body.data, r->body.len, cfg->limits.max_json_depth, f, 7, &err) != 0)
        return 0;   /* the durable path gives the parser's own error */
    if (f[1].type != IG_J_STRING || f[6].type == IG_J_TRUE)
        return 0;
    /* The small fields are decoded properly; the big ones are never touched.
     * A field of the wrong type, or too long to route on, sends the request
     * the durable way, whose parser gives the proper error. */
    struct route_relay rr = {.tenant = r->tenant_name, .body = r->body.data, .len = r->body.len};
    char model[512], size[64], quality[64], rf[64];
    long long n = 1;
    const char *doc = r->body.data;
    int eligible =
        (f[0].type == IG_J_ABSENT || ig_jscan_string(doc, &f[0], model, sizeof model) == 0) &&
        (f[3].type == IG_J_ABSENT || ig_jscan_string(doc, &f[3], size, sizeof size) == 0) &&
        (f[4].type == IG_J_ABSENT || ig_jscan_string(doc, &f[4], quality, sizeof quality) == 0) &&
        (f[2].type == IG_J_ABSENT || ig_jscan_integer(doc, &f[2], &n) == 0) &&
        (f[5].type == IG_J_ABSENT || (ig_jscan_string(doc, &f[5], rf, sizeof rf) == 0 &&
                                      strcmp(rf, "url") != 0));
    const char *sz = f[3].type == IG_J_ABSENT ? NULL : size;
    struct ig_size wh;
    /* A size the durable path would refuse goes there, for its error. */
    if (eligible && sz && strcmp(sz, "auto") != 0) {
        if (ig_size_parse(sz, &wh) == 0) {
            rr.width = wh.w;
            rr.height = wh.h;
        } else {
            eligible = 0;
        }
    }
    rr.n = n >= 1 && n <= 10 ? (int)n : 0;
    rr.quality = f[4].type == IG_J_ABSENT ? NULL : quality;
    rr.target = route_target(cfg, f[0].type == IG_J_ABSENT ? NULL : model);
    rr.model_off = f[0].type == IG_J_ABSENT ? 0 : f[0].off;
    rr.model_len = f[0].type == IG_J_ABSENT ? 0 : f[0].len;
    int rc = 0;
    if (eligible && rr.n >= 1 && rr.n <= 10) {
        pthread_mutex_lock(&r->relay_mu);
        r->relay_state = 1;
        pthread_mutex_unlock(&r->relay_mu);
        rc = route_gateway_relay(r->srv->deps.gw, &rr, relay_done, r, &err);
        if (rc < 0) {
            *ret = srv_error(r, &err);
            rc = 1;
        } else if (rc == 1) {
            /* The answer may already be here; otherwise wait for it. */
            pthread_mutex_lock(&r->relay_mu);
            int ready = r->relay_state == 2;
            if (!ready) {
                r->after_wait = answer_relay;
                r->waiting = 1;
                atomic_fetch_add(&r->srv->suspended, 1);
                MHD_suspend_connection(r->conn);
            }
            pthread_mutex_unlock(&r->relay_mu);
            *ret = ready ? answer_relay(r, NULL) : MHD_YES;
        } else {
            pthread_mutex_lock(&r->relay_mu);
            r->relay_state = 0;
            pthread_mutex_unlock(&r->relay_mu);
        }
    }
    return rc;
}

/* ---- Endpoints -------------------------------------------------------------- */

enum MHD_Result
srv_api_openai_generations(struct srv_req *r, const char *tail)
{
    enum MHD_Result ret;
    if (try_relay(r, &ret))
        return ret;
    return generate_durably(r);
}

static enum MHD_Result
generate_durably(struct srv_req *r)
{
    struct ig_error err = {0};
    json_t *body = srv_body_json(r, &err);
    if (!body)
        return srv_error(r, &err);
    if (!json_is_object(body) || !json_is_string(json_object_get(body, "prompt"))) {
        json_decref(body);
        return srv_errorf(r, 400, "invalid_request", "'prompt' is required and must be a string");
    }
    json_t *job = new_job("generate");
    json_t *vendor = json_object_get(job, "vendor_params");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (map_field(r->srv->cfg, job, vendor, key, v, &err) != 0) {
            json_decref(job);
            json_decref(body);
            return srv_error(r, &err);
        }
    }
    json_decref(body);
    return submit_and_wait(r, job);
}

static json_t *
part_value(const struct srv_part *p)
{
    /* Multipart sends numbers as text; keep them numbers for the job. */
    char *end;
    if (p->data.len && p->data.len < 20) {
        long long v = strtoll(p->data.data, &end, 10);
        if (*end == '\0')
            return json_integer(v);
    }
    return json_stringn(p->data.data ? p->data.data : "", p->data.len);
}

enum MHD_Result
srv_api_openai_edits(struct srv_req *r, const char *tail)
{
    struct ig_error err = {0};
    const char *ct = srv_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return srv_errorf(r, 415, "unsupported_media_type",
                          "send edits as multipart/form-data with 'image' and 'prompt'");
    const struct srv_part *image = srv_part(r, "image", 0);
    if (!image)
        image = srv_part(r, "image[]", 0);
    const struct srv_part *prompt = srv_part(r, "prompt", 0);
    if (!image || !image->data.len)
        return srv_errorf(r, 400, "invalid_request", "an 'image' file is required");
    if (!prompt || !prompt->data.len)
        return srv_errorf(r, 400, "invalid_request", "'prompt' is required");
    json_t *job = new_job("edit");
    json_t *vendor = json_object_get(job, "vendor_params");
    char hex[65];
    if (srv_store_input(r, image->data.data, image->data.len, hex, &err) != 0) {
        json_decref(job);
        ig_error_prefix(&err, "'image': ");
        return srv_error(r, &err);
    }
    json_object_set_new(job, "input", json_string(hex));
    const struct srv_part *mask = srv_part(r, "mask", 0);
    if (mask && mask->data.len) {
        if (srv_store_input(r, mask->data.data, mask->data.len, hex, &err) != 0) {
            json_decref(job);
            ig_error_prefix(&err, "'mask': ");
            return srv_error(r, &err);
        }
        json_object_set_new(job, "mask", json_string(hex));
    }
    /* Further images are references; they travel to the adapter by id. */
    json_t *refs = json_array();
    for (int k = 1; refs && srv_part(r, "image[]", k); k++) {
        const struct srv_part *p = srv_part(r, "image[]", k);
        if (srv_store_input(r, p->data.data, p->data.len, hex, &err) != 0) {
            json_decref(refs);
            json_decref(job);
            return srv_error(r, &err);
        }
        json_array_append_new(refs, json_string(hex));
    }
    if (json_array_size(refs))
        json_object_set_new(vendor, "reference_images", refs);
    else
        json_decref(refs);
    for (int i = 0; i < r->n_parts; i++) {
        const struct srv_part *p = &r->parts[i];
        if (strcmp(p->name, "image") == 0 || strcmp(p->name, "image[]") == 0 ||
            strcmp(p->name, "mask") == 0)
            continue;
        json_t *v = strcmp(p->name, "prompt") == 0 ? json_stringn(p->data.data, p->data.len)
                                                   : part_value(p);
        int rc = v ? map_field(r->srv->cfg, job, vendor, p->name, v, &err) : -1;
        json_decref(v);
        if (rc != 0) {
            json_decref(job);
            return err.code[0] ? srv_error(r, &err)
                               : srv_errorf(r, 400, "invalid_request", "bad field '%s'", p->name);
        }
    }
    return submit_and_wait(r, job);
}
