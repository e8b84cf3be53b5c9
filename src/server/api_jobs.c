/* SPDX-License-Identifier: MIT */
/* api_jobs.c -- the native job API: POST /v1/jobs, GET /v1/jobs/{id},
 * GET /v1/jobs/{id}/result, DELETE /v1/jobs/{id}.
 *
 * A job body is checked field by field against a table of what the API
 * takes; inline images are probed under the limits and stored as blobs, and
 * the job the gateway runs refers to them by id. The normalised job is what
 * the store keeps, so a job resumed after a restart is the job accepted. */
#include "server/internal.h"
#include "core/alloc.h"
#include "backends/backend.h"
#include "backends/urlguard.h"
#include "lora/lora.h"
#include "route/gateway.h"
#include "store/store.h"
#include "validate/gate.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* The fields a job takes, with their JSON types (what a client may send). */
static const struct {
    const char *name;
    json_type type;
} job_fields[] = {
    {"class", JSON_STRING},        {"prompt", JSON_STRING},      {"spec", JSON_OBJECT},
    {"negative_prompt", JSON_STRING}, {"size", JSON_STRING},     {"n", JSON_INTEGER},
    {"seed", JSON_INTEGER},        {"quality", JSON_STRING},     {"output_format", JSON_STRING},
    {"scale", JSON_INTEGER},       {"ladder", JSON_STRING},      {"backend", JSON_STRING},
    {"transparent", JSON_TRUE},    {"input", JSON_OBJECT},       {"mask", JSON_OBJECT},
    {"checks", JSON_OBJECT},       {"vendor_params", JSON_OBJECT}, {"webhook", JSON_OBJECT},
    {"lora", JSON_OBJECT},
};

static int
type_ok(const json_t *v, json_type want)
{
    if (want == JSON_TRUE)
        return json_is_boolean(v);
    if (want == JSON_INTEGER)
        return json_is_integer(v) || json_is_null(v);
    return json_typeof(v) == want;
}

static const char *
type_name(json_type t)
{
    switch (t) {
    case JSON_STRING: return "a string";
    case JSON_OBJECT: return "an object";
    case JSON_INTEGER: return "an integer";
    case JSON_TRUE: return "true or false";
    default: return "another type";
    }
}

/* {"b64": "..."} or {"file": "<id>"}: stores the image, sets out to its id. */
static int
take_image(struct srv_req *r, const char *field, const json_t *v, char hex[65],
           struct ig_error *err)
{
    const char *b64 = json_string_value(json_object_get(v, "b64"));
    const char *file = json_string_value(json_object_get(v, "file"));
    const char *url = json_string_value(json_object_get(v, "url"));
    if (url) {
        /* Through the one SSRF guard: scheme, every resolved address, and
         * every redirect hop checked; the answer capped like an upload. */
        const struct ig_fetch_cfg *fc = &r->srv->cfg->fetch;
        const struct be_urlguard g = {fc->allow_http, fc->allow_loopback, fc->allow_private};
        const struct be_fetch f = {.max_bytes = r->srv->cfg->limits.max_input_bytes,
                                   .timeout_ms = fc->timeout_ms};
        struct ig_buf got = {0};
        long status = 0;
        int rc = be_fetch_url(url, &g, &f, &status, &got, NULL, 0, err);
        if (rc == 0 && status != 200)
            rc = ig_error_set(err, 400, "fetch_failed", "fetching '%s.url' answered HTTP %ld",
                              field, status);
        if (rc == 0)
            rc = srv_store_input(r, got.data, got.len, hex, err);
        ig_buf_free(&got);
        if (rc != 0)
            ig_error_prefix(err, "'%s.url': ", field);
        return rc;
    }
    if (file) {
        struct ig_buf b = {0};
        int rc = store_blob_get(r->srv->deps.store, file, &b, err);
        ig_buf_free(&b);
        if (rc != 0)
            return ig_error_set(err, 400, "invalid_request", "'%s.file' names no stored file",
                                field);
        snprintf(hex, 65, "%s", file);
        return 0;
    }
    if (!b64)
        return ig_error_set(err, 400, "invalid_request", "'%s' needs 'b64', 'url' or 'file'",
                            field);
    /* data: URLs are accepted as they come from browsers. */
    const char *comma = strncmp(b64, "data:", 5) == 0 ? strchr(b64, ',') : NULL;
    if (comma)
        b64 = comma + 1;
    size_t len = strlen(b64);
    unsigned char *raw = ig_malloc(len / 4 * 3 + 3);
    if (!raw)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0 || len % 4) {
        ig_free(raw);
        return ig_error_set(err, 400, "invalid_request", "'%s.b64' is not valid base64", field);
    }
    while (len && b64[len - 1] == '=') {   /* DecodeBlock counts the padding */
        len--;
        n--;
    }
    int rc = srv_store_input(r, raw, (size_t)n, hex, err);
    ig_free(raw);
    if (rc != 0)
        ig_error_prefix(err, "'%s': ", field);
    return rc;
}

/* {"b64": "..."} or {"file": "<id>"}, plus an optional "scale": a
 * safetensors LoRA, parsed with the container checks before it is kept. */
static int
take_lora(struct srv_req *r, const json_t *v, char hex[65], struct ig_error *err)
{
    const char *b64 = json_string_value(json_object_get(v, "b64"));
    const char *file = json_string_value(json_object_get(v, "file"));
    json_t *scale = json_object_get(v, "scale");
    if (scale && (!json_is_number(scale) || json_number_value(scale) < -4 ||
                  json_number_value(scale) > 4))
        return ig_error_set(err, 400, "invalid_request", "'lora.scale' must be a number in -4..4");
    struct ig_buf raw = {0};
    int rc;
    if (file)
        rc = store_blob_get(r->srv->deps.store, file, &raw, err);
    else if (b64)
        rc = be_base64_decode(b64, &raw) == 0
                 ? 0
                 : ig_error_set(err, 400, "invalid_request", "'lora.b64' is not valid base64");
    else
        rc = ig_error_set(err, 400, "invalid_request", "'lora' needs 'b64' or 'file'");
    struct lora_st st;
    memset(&st, 0, sizeof st);
    if (rc == 0 && (rc = lora_st_parse(raw.data, raw.len, NULL, &st, err)) != 0)
        ig_error_prefix(err, "'lora': ");
    lora_st_free(&st);
    if (rc == 0 && !file)
        rc = store_blob_put(r->srv->deps.store, raw.data, raw.len, hex, err);
    else if (rc == 0)
        snprintf(hex, 65, "%s", file);
    ig_buf_free(&raw);
    return rc;
}

/* {"url": "..."}: a URL the guard lets through, for a tenant that has a key
 * to sign deliveries with. The address is checked again at delivery. */
static int
check_webhook(struct srv_req *r, const json_t *hook, struct ig_error *err)
{
    const char *url = json_string_value(json_object_get(hook, "url"));
    if (!url || json_object_size(hook) != 1)
        return ig_error_set(err, 400, "invalid_request",
                            "'webhook' takes exactly {\"url\": \"...\"}");
    if (!r->tenant || !r->tenant->webhook_secret)
        return ig_error_set(err, 400, "invalid_request",
                            "tenant %s has no webhook_secret configured to sign webhooks with",
                            r->tenant_name);
    const struct ig_fetch_cfg *fc = &r->srv->cfg->fetch;
    const struct be_urlguard g = {fc->allow_http, fc->allow_loopback, fc->allow_private};
    char *pin = NULL;
    int rc = be_url_check(url, &g, &pin, err);
    ig_free(pin);
    if (rc != 0)
        ig_error_prefix(err, "'webhook.url': ");
    return rc;
}

/* Builds the normalised job from the client's body. */
static json_t *
normalise(struct srv_req *r, json_t *body, struct ig_error *err)
{
    if (!json_is_object(body)) {
        ig_error_set(err, 400, "invalid_request", "the job must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        size_t i, n = sizeof job_fields / sizeof job_fields[0];
        for (i = 0; i < n && strcmp(job_fields[i].name, key) != 0; i++)
            ;
        if (i == n) {
            ig_error_set(err, 400, "invalid_request", "unknown field '%.60s'", key);
            return NULL;
        }
        if (!type_ok(v, job_fields[i].type)) {
            ig_error_set(err, 400, "invalid_request", "'%s' must be %s", key,
                         type_name(job_fields[i].type));
            return NULL;
        }
    }
    /* The gate's own expectations (docs/gate.md): refused now, not after
     * every rung has run. */
    struct vd_task scratch;
    memset(&scratch, 0, sizeof scratch);
    if (vd_task_checks(json_object_get(body, "checks"), &scratch, err) != 0)
        return NULL;
    json_t *job = json_deep_copy(body);
    if (!job) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    json_t *hook = json_object_get(body, "webhook");
    if (hook && check_webhook(r, hook, err) != 0) {
        json_decref(job);
        return NULL;
    }
    json_t *lora = json_object_get(body, "lora");
    if (lora) {
        char hex[65];
        if (take_lora(r, lora, hex, err) != 0) {
            json_decref(job);
            return NULL;
        }
        json_t *copy = json_deep_copy(lora);
        json_object_del(copy, "b64");
        json_object_set_new(copy, "file", json_string(hex));
        json_object_set_new(job, "lora", copy);
    }
    const char *images[] = {"input", "mask"};
    for (int i = 0; i < 2; i++) {
        json_t *im = json_object_get(body, images[i]);
        if (!im)
            continue;
        char hex[65];
        if (take_image(r, images[i], im, hex, err) != 0) {
            json_decref(job);
            return NULL;
        }
        json_object_set_new(job, images[i], json_string(hex));
    }
    return job;
}

static const char *
str_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static long
prefer_wait_ms(struct srv_req *r)
{
    const char *p = srv_header(r, "Prefer");
    const char *w = p ? strstr(p, "wait=") : NULL;
    if (!w)
        return 0;
    long s = strtol(w + 5, NULL, 10);
    long cap = r->srv->cfg->limits.job_timeout_ms;
    return s <= 0 ? 0 : s * 1000 > cap ? cap : s * 1000;
}

json_t *
srv_job_view(struct srv_req *r, const char *job_id, int *state, struct ig_error *err)
{
    struct store_job sj;
    if (store_job_get(r->srv->deps.store, job_id, r->tenant_name, &sj, err) != 0)
        return NULL;
    json_t *result = sj.result ? json_loads(sj.result, 0, NULL) : NULL;
    json_t *error = sj.error ? json_loads(sj.error, 0, NULL) : NULL;
    json_t *outputs = json_array();
    json_t *outs = json_object_get(result, "outputs");
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o) {
        char url[512];
        json_t *copy = json_deep_copy(o);
        if (copy && srv_sign_file_url(r->srv, json_string_value(json_object_get(o, "file")),
                                      r->tenant_name, 3600, url, sizeof url) == 0)
            json_object_set_new(copy, "url", json_string(url));
        json_array_append_new(outputs, copy);
    }
    json_t *prov = json_object_get(result, "provenance");
    json_t *attempts = prov ? json_object_get(prov, "attempts") : json_object_get(error, "attempts");
    json_t *view = json_pack("{s:s,s:s,s:s,s:I,s:I,s:i,s:o,s:o,s:O?,s:O?}", "id", sj.id, "class",
                             sj.cls, "state", store_state_name(sj.state), "created_ms",
                             (json_int_t)sj.created_ms, "updated_ms", (json_int_t)sj.updated_ms,
                             "attempt_count", sj.attempts, "attempts",
                             attempts ? json_incref(attempts) : json_array(), "outputs", outputs,
                             "provenance", prov, "error", error);
    /* An attempt under way shows as running before the store knows it. */
    if (sj.state == STORE_QUEUED && r->srv->deps.gw && route_gateway_running(r->srv->deps.gw, sj.id)) {
        sj.state = STORE_RUNNING;
        if (view)
            json_object_set_new(view, "state", json_string(store_state_name(sj.state)));
    }
    *state = sj.state;
    json_decref(result);
    json_decref(error);
    store_job_clear(&sj);
    if (!view)
        ig_error_set(err, 500, "out_of_memory", "out of memory");
    return view;
}

/* Answers with the job's view: 200 once terminal, 202 while it runs. */
static enum MHD_Result
answer_job(struct srv_req *r, const char *unused)
{
    (void)unused;
    struct ig_error err = {0};
    int state;
    json_t *view = srv_job_view(r, r->wait_job, &state, &err);
    if (!view)
        return srv_error(r, &err);
    return srv_json(r, store_state_terminal(state) ? 200 : 202, view);
}

/* Makes the job from its parsed body (which it takes); 0 with the job's id
 * in r->wait_job. */
static int
create_job(struct srv_req *r, json_t *body, struct ig_error *err)
{
    json_t *job = normalise(r, body, err);
    json_decref(body);
    if (!job)
        return -1;
    const char *idem = srv_header(r, "Idempotency-Key");
    if (idem && (strlen(idem) == 0 || strlen(idem) > 255)) {
        json_decref(job);
        return ig_error_set(err, 400, "invalid_request", "Idempotency-Key must be 1..255 bytes");
    }
    char id[40];
    int rc = route_gateway_submit(r->srv->deps.gw, r->tenant_name, job, idem, id, err);
    json_decref(job);
    if (rc < 0)
        return -1;
    snprintf(r->wait_job, sizeof r->wait_job, "%s", id);
    return 0;
}

static enum MHD_Result
answer_created(struct srv_req *r, const char *unused)
{
    (void)unused;
    if (r->deferred_err.code[0])
        return srv_error(r, &r->deferred_err);
    long wait = prefer_wait_ms(r);
    char id[sizeof r->wait_job];
    snprintf(id, sizeof id, "%s", r->wait_job);   /* srv_wait writes r->wait_job */
    if (wait > 0)
        return srv_wait(r, id, wait, answer_job);
    return answer_job(r, NULL);
}

/* On a fetch worker, the connection suspended: the URL inputs are fetched
 * there, not on the HTTP thread, whose other connections and relays would
 * wait out the download. */
static void
create_deferred(struct srv_req *r)
{
    json_t *body = r->deferred_body;
    r->deferred_body = NULL;
    create_job(r, body, &r->deferred_err);
}

static int
has_url_input(const json_t *body)
{
    return json_object_get(json_object_get(body, "input"), "url") ||
           json_object_get(json_object_get(body, "mask"), "url");
}

enum MHD_Result
srv_api_jobs_create(struct srv_req *r, const char *tail)
{
    struct ig_error err = {0};
    json_t *body = srv_body_json(r, &err);
    if (!body)
        return srv_error(r, &err);
    if (json_is_object(body) && has_url_input(body)) {
        r->deferred_body = body;
        return srv_defer(r, create_deferred, answer_created);
    }
    if (create_job(r, body, &err) != 0)
        return srv_error(r, &err);
    return answer_created(r, NULL);
}

enum MHD_Result
srv_api_jobs_get(struct srv_req *r, const char *tail)
{
    char id[40];
    const char *slash = strchr(tail, '/');
    size_t n = slash ? (size_t)(slash - tail) : strlen(tail);
    if (n == 0 || n >= sizeof id)
        return srv_errorf(r, 404, "not_found", "no such job");
    memcpy(id, tail, n);
    id[n] = '\0';
    if (!slash) {
        snprintf(r->wait_job, sizeof r->wait_job, "%s", id);
        long wait = prefer_wait_ms(r);
        return wait > 0 ? srv_wait(r, id, wait, answer_job) : answer_job(r, NULL);
    }
    if (strcmp(slash, "/result") != 0)
        return srv_errorf(r, 404, "not_found", "no route for GET %.200s", r->url);

    struct ig_error err = {0};
    int state;
    json_t *view = srv_job_view(r, id, &state, &err);
    if (!view)
        return srv_error(r, &err);
    if (state == STORE_FAILED || state == STORE_CANCELLED) {
        char *etext = json_dumps(json_object_get(view, "error"), JSON_COMPACT);
        enum MHD_Result ret = srv_job_error(r, state == STORE_FAILED ? 502 : 409, id, etext);
        free(etext);
        json_decref(view);
        return ret;
    }
    if (!store_state_terminal(state)) {
        json_decref(view);
        return srv_errorf(r, 409, "job_not_finished", "job %s is still %s", id,
                          store_state_name(state));
    }
    const char *q = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "index");
    size_t index = q ? strtoul(q, NULL, 10) : 0;
    json_t *out = json_array_get(json_object_get(view, "outputs"), index);
    const char *hex = json_string_value(json_object_get(out, "file"));
    struct ig_buf b = {0};
    if (!hex || store_blob_get(r->srv->deps.store, hex, &b, &err) != 0) {
        ig_buf_free(&b);
        json_decref(view);
        return srv_errorf(r, 404, "not_found", "job %s has no output %zu", id, index);
    }
    json_t *prov = json_object_get(view, "provenance");
    json_t *lic = json_object_get(prov, "license");
    char flags[128] = "";
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(lic, "flags"), i, f)
        snprintf(flags + strlen(flags), sizeof flags - strlen(flags), "%s%s", i ? "," : "",
                 json_string_value(f));
    char license[256];
    snprintf(license, sizeof license, "%s; %s",
             str_or(json_string_value(json_object_get(lic, "id")), "unknown"), flags);
    const char *headers[] = {
        "X-Imagegate-Job", id,
        "X-Imagegate-Backend", str_or(json_string_value(json_object_get(prov, "backend")), ""),
        "X-Imagegate-Tier", str_or(json_string_value(json_object_get(prov, "tier")), ""),
        "X-Imagegate-License", license,
        NULL};
    const char *mime = json_string_value(json_object_get(out, "mime"));
    char mime_copy[64];
    snprintf(mime_copy, sizeof mime_copy, "%s", mime ? mime : "application/octet-stream");
    size_t len;
    char *data = ig_buf_steal(&b, &len);
    enum MHD_Result ret = srv_bytes(r, 200, mime_copy, data, len, headers);
    json_decref(view);
    return ret;
}

enum MHD_Result
srv_api_jobs_cancel(struct srv_req *r, const char *tail)
{
    struct ig_error err = {0};
    if (strchr(tail, '/'))
        return srv_errorf(r, 404, "not_found", "no route for DELETE %.200s", r->url);
    if (route_gateway_cancel(r->srv->deps.gw, tail, r->tenant_name, &err) != 0)
        return srv_error(r, &err);
    snprintf(r->wait_job, sizeof r->wait_job, "%s", tail);
    return answer_job(r, NULL);
}
