/* SPDX-License-Identifier: MIT */
/* client.c -- the suite's gateway: in-process or over HTTP (see run.h).
 *
 * In-process, the gateway is the one 'imagegate serve' runs (tool_stack),
 * without its HTTP server, on a throw-away job store: a test run leaves no
 * state behind and never sees an earlier run's jobs. Over HTTP it speaks
 * the native job API (docs/api.md) with Prefer: wait, and reads the output
 * from /result. Either way a run ends with the output's bytes and the
 * job's provenance, so the judge does not know which gateway it had. */
#include "tools/testrun/run.h"
#include "core/alloc.h"
#include "core/secret.h"
#include "route/exec.h"
#include "tools/stack.h"
#include "tools/tool.h"

#include <curl/curl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct tr_gateway {
    const struct tr_suite *suite;
    struct ig_config *cfg;         /* in-process */
    struct tool_stack stack;
    int started;
    char data_dir[256];
    char *api_key;                 /* over HTTP */
};

void
tr_output_clear(struct tr_output *o)
{
    ig_buf_free(&o->bytes);
    json_decref(o->provenance);
    memset(o, 0, sizeof *o);
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct tr_gateway *
tr_gateway_open(const struct tr_suite *s, struct ig_error *err)
{
    struct tr_gateway *g = ig_calloc(1, sizeof *g);
    if (!g) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    g->suite = s;
    if (s->url) {
        if (s->api_key && ig_resolve_ref(s->api_key, &g->api_key, err) != 0) {
            ig_error_prefix(err, "%s:%d:%d: gateway.api_key: ", s->path, s->gateway_line,
                            s->gateway_col);
            ig_free(g);
            return NULL;
        }
        /* Unreachable is a broken suite, not a failed case: ask once. */
        char url[2048];
        snprintf(url, sizeof url, "%s/healthz", s->url);
        CURL *h = curl_easy_init();
        CURLcode rc = CURLE_FAILED_INIT;
        if (h) {
            curl_easy_setopt(h, CURLOPT_URL, url);
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
            curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
            rc = curl_easy_perform(h);
            curl_easy_cleanup(h);
        }
        if (rc != CURLE_OK) {
            ig_error_set(err, 503, "gateway_unreachable", "%s:%d:%d: gateway %s is unreachable: %s",
                         s->path, s->gateway_line, s->gateway_col, s->url,
                         curl_easy_strerror(rc));
            tr_gateway_close(g);
            return NULL;
        }
        return g;
    }
    struct ig_config_diags diags = {0};
    g->cfg = ig_config_load_file(s->config, &diags, err);
    ig_config_diags_free(&diags);
    if (!g->cfg) {
        ig_error_prefix(err, "%s:%d:%d: gateway config: ", s->path, s->gateway_line,
                        s->gateway_col);
        tr_gateway_close(g);
        return NULL;
    }
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(g->data_dir, sizeof g->data_dir, "%s/imagegate-test-XXXXXX", tmp);
    if (!mkdtemp(g->data_dir)) {
        ig_error_set(err, 500, "io_error", "cannot make a job store folder under %s", tmp);
        g->data_dir[0] = '\0';
        tr_gateway_close(g);
        return NULL;
    }
    g->cfg->server.data_dir = g->data_dir;
    g->cfg->store.url = NULL;
    g->cfg->store.blob_dir = NULL;
    if (g->cfg->server.log_level < 3)
        g->cfg->server.log_level = 3;   /* the report speaks; the gateway's logs would drown it */
    if (tool_stack_start(&g->stack, g->cfg, 0, NULL, err) != 0) {
        ig_error_prefix(err, "%s:%d:%d: starting the gateway of %s: ", s->path, s->gateway_line,
                        s->gateway_col, s->config);
        tr_gateway_close(g);
        return NULL;
    }
    g->started = 1;
    return g;
}

const struct ig_config *
tr_gateway_config(const struct tr_gateway *g)
{
    return g->cfg;
}

void
tr_gateway_close(struct tr_gateway *g)
{
    if (!g)
        return;
    if (g->started)
        tool_stack_stop(&g->stack);
    if (g->data_dir[0])
        nftw(g->data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ig_config_free(g->cfg);
    ig_free(g->api_key);
    ig_free(g);
}

/* The job for one run: the case's request, the backend, the seed (inside
 * the spec when there is one, since the spec's seed is what renders). */
static json_t *
build_request(const struct tr_case *c, const char *backend, long long seed)
{
    json_t *req = json_deep_copy(c->request);
    if (!req || json_object_set_new(req, "backend", json_string(backend)) != 0) {
        json_decref(req);
        return NULL;
    }
    json_t *spec = json_object_get(req, "spec");
    if (json_object_set_new(spec ? spec : req, "seed", json_integer(seed)) != 0) {
        json_decref(req);
        return NULL;
    }
    /* The text assertion is the gate's OCR check (docs/gate.md): asked for
     * in the job, read back from its validation report. */
    if (c->as.text && json_object_set_new(req, "checks",
                                          json_pack("{s:s}", "expect_text", c->as.text)) != 0) {
        json_decref(req);
        return NULL;
    }
    return req;
}

static void
set_failure(struct tr_output *o, const char *text)
{
    json_t *e = text ? json_loads(text, 0, NULL) : NULL;
    json_t *inner = json_object_get(e, "error");
    json_t *err = inner ? inner : e;
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    size_t n = (size_t)snprintf(o->error, sizeof o->error, "job failed: %s%s%s",
                                msg ? msg : text ? text : "no error recorded", code ? " [" : "",
                                code ? code : "");
    if (code && n < sizeof o->error)
        snprintf(o->error + n, sizeof o->error - n, "]");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(err, "attempts"), i, a) {
        n = strlen(o->error);
        const char *m = json_string_value(json_object_get(a, "message"));
        if (n < sizeof o->error)
            snprintf(o->error + n, sizeof o->error - n, "; %s: %s%s%s",
                     json_string_value(json_object_get(a, "backend")),
                     json_string_value(json_object_get(a, "outcome")), m ? " " : "", m ? m : "");
    }
    json_decref(e);
}

/* Takes the provenance and the first output's bytes from a job's result. */
static int
take_result(struct tr_output *o, json_t *view, const char *mime)
{
    json_t *prov = json_object_get(view, "provenance");
    json_t *out = json_array_get(json_object_get(view, "outputs"), 0);
    if (!prov || !out) {
        snprintf(o->error, sizeof o->error, "the job succeeded without an output");
        return -1;
    }
    o->provenance = json_incref(prov);
    json_t *c = json_object_get(prov, "cost_usd");
    o->cost_usd = json_is_number(c) ? json_number_value(c) : 0;
    const char *m = json_string_value(json_object_get(out, "mime"));
    snprintf(o->mime, sizeof o->mime, "%s", m ? m : mime ? mime : "application/octet-stream");
    return 0;
}

static int
run_inprocess(struct tr_gateway *g, const struct tr_case *c, json_t *req, struct tr_output *o)
{
    struct ig_error err = {0};
    const char *files[2] = {c->input, c->mask}, *keys[2] = {"input", "mask"};
    for (int i = 0; i < 2; i++) {
        if (!files[i])
            continue;
        char *data, hex[65];
        size_t len;
        int rc = tool_read_file(files[i], 64u << 20, &data, &len, &err);
        if (rc == 0) {
            rc = store_blob_put(g->stack.store, data, len, hex, &err);
            ig_free(data);
        }
        if (rc != 0) {
            snprintf(o->error, sizeof o->error, "%s: %s", keys[i], err.message);
            return -1;
        }
        json_object_set_new(req, keys[i], json_string(hex));
    }
    char id[40];
    double t0 = now_s();
    if (route_gateway_submit(g->stack.gw, g->suite->tenant ? g->suite->tenant : "default", req,
                             NULL, id, &err) < 0) {
        snprintf(o->error, sizeof o->error, "the gateway refused the job: %s [%s]", err.message,
                 err.code);
        return 0;
    }
    if (route_gateway_wait(g->stack.gw, id, g->suite->timeout_ms) != 1) {
        snprintf(o->error, sizeof o->error, "job %s did not finish within %ld s", id,
                 g->suite->timeout_ms / 1000);
        return 0;
    }
    o->latency_s = now_s() - t0;
    struct store_job sj;
    if (store_job_get(g->stack.store, id, NULL, &sj, &err) != 0) {
        snprintf(o->error, sizeof o->error, "reading job %s: %s", id, err.message);
        return -1;
    }
    if (sj.state != STORE_SUCCEEDED) {
        set_failure(o, sj.error);
        store_job_clear(&sj);
        return 0;
    }
    json_t *result = sj.result ? json_loads(sj.result, 0, NULL) : NULL;
    store_job_clear(&sj);
    const char *hex = json_string_value(
        json_object_get(json_array_get(json_object_get(result, "outputs"), 0), "file"));
    int rc = take_result(o, result, NULL);
    if (rc == 0 && (!hex || store_blob_get(g->stack.store, hex, &o->bytes, &err) != 0)) {
        snprintf(o->error, sizeof o->error, "reading the output of job %s: %s", id,
                 err.message);
        rc = -1;
    }
    json_decref(result);
    o->ok = rc == 0;
    return 0;
}

/* ---- Over HTTP -------------------------------------------------------------- */

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
    return ig_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    size_t len = size * n;
    if (len > 13 && strncasecmp(p, "content-type:", 13) == 0) {
        char *mime = ud;
        size_t k = 13;
        while (k < len && p[k] == ' ')
            k++;
        size_t e = k;
        while (e < len && p[e] != '\r' && p[e] != '\n' && p[e] != ';')
            e++;
        snprintf(mime, 32, "%.*s", (int)(e - k), p + k);
    }
    return len;
}

static long
http(struct tr_gateway *g, const char *method, const char *path, const char *body,
     long wait_s, struct ig_buf *out, char mime[32], char *error, size_t error_size)
{
    char url[2048], auth[600], prefer[64];
    snprintf(url, sizeof url, "%s%s", g->suite->url, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    if (!h)
        return -1;
    if (g->api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", g->api_key);
        hdr = curl_slist_append(hdr, auth);
    }
    if (wait_s > 0) {
        snprintf(prefer, sizeof prefer, "Prefer: wait=%ld", wait_s);
        hdr = curl_slist_append(hdr, prefer);
    }
    if (body)
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, mime);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, wait_s + 30);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long status = -1;
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(error, error_size, "%s %.300s: %s", method, url, curl_easy_strerror(rc));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

static int
add_b64(json_t *req, const char *key, const char *path, struct tr_output *o)
{
    struct ig_error err = {0};
    char *data;
    size_t len;
    if (tool_read_file(path, 64u << 20, &data, &len, &err) != 0) {
        snprintf(o->error, sizeof o->error, "%s: %s", key, err.message);
        return -1;
    }
    char *b64 = ig_malloc(len / 3 * 4 + 8);
    if (!b64) {
        ig_free(data);
        snprintf(o->error, sizeof o->error, "out of memory");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)data, (int)len);
    ig_free(data);
    int rc = json_object_set_new(req, key, json_pack("{s:s}", "b64", b64));
    ig_free(b64);
    return rc;
}

static int
run_http(struct tr_gateway *g, const struct tr_case *c, json_t *req, struct tr_output *o)
{
    if ((c->input && add_b64(req, "input", c->input, o) != 0) ||
        (c->mask && add_b64(req, "mask", c->mask, o) != 0))
        return -1;
    char *body = json_dumps(req, JSON_COMPACT);
    if (!body) {
        snprintf(o->error, sizeof o->error, "out of memory");
        return -1;
    }
    struct ig_buf ans = {0};
    char mime[32] = "", path[128];
    long wait = g->suite->timeout_ms / 1000;
    double t0 = now_s();
    long st = http(g, "POST", "/v1/jobs", body, wait, &ans, mime, o->error, sizeof o->error);
    free(body);
    json_t *view = st > 0 ? json_loadb(ans.data ? ans.data : "", ans.len, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(view, "id"));
    /* A long job outlives one Prefer: wait; ask again until it ends. */
    while (st == 202 && id && now_s() - t0 < wait) {
        snprintf(path, sizeof path, "/v1/jobs/%s", id);
        ig_buf_reset(&ans);
        json_decref(view);
        st = http(g, "GET", path, NULL, wait, &ans, mime, o->error, sizeof o->error);
        view = st > 0 ? json_loadb(ans.data ? ans.data : "", ans.len, 0, NULL) : NULL;
        id = json_string_value(json_object_get(view, "id"));
    }
    o->latency_s = now_s() - t0;
    int rc = 0;
    if (st < 0) {
        rc = -1;
    } else if (st == 202) {
        snprintf(o->error, sizeof o->error, "job %s did not finish within %ld s", id, wait);
    } else if (st != 200 || !view) {
        char *text = json_dumps(view, JSON_COMPACT);
        set_failure(o, text ? text : ans.data);
        free(text);
    } else if (!json_string_value(json_object_get(view, "state")) ||
               strcmp(json_string_value(json_object_get(view, "state")), "succeeded")) {
        char *text = json_dumps(json_object_get(view, "error"), JSON_COMPACT);
        set_failure(o, text);
        free(text);
    } else if (take_result(o, view, NULL) == 0) {
        snprintf(path, sizeof path, "/v1/jobs/%s/result", id);
        st = http(g, "GET", path, NULL, 0, &o->bytes, mime, o->error, sizeof o->error);
        if (st == 200)
            o->ok = 1;
        else if (st > 0)
            snprintf(o->error, sizeof o->error, "GET %s answered HTTP %ld", path, st);
    }
    json_decref(view);
    ig_buf_free(&ans);
    return rc;
}

int
tr_gateway_run(struct tr_gateway *g, const struct tr_case *c, const char *backend,
               long long seed, struct tr_output *o)
{
    memset(o, 0, sizeof *o);
    json_t *req = build_request(c, backend, seed);
    if (!req) {
        snprintf(o->error, sizeof o->error, "out of memory");
        return -1;
    }
    int rc = g->cfg ? run_inprocess(g, c, req, o) : run_http(g, c, req, o);
    json_decref(req);
    return rc;
}
