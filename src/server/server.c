/* SPDX-License-Identifier: MIT */
/* server.c -- the daemon, one request's life, authentication, the route
 * table, and waiting for jobs without holding a thread.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers, then with each piece of the body, then once more with
 * none. Bodies are collected under max_body_bytes (a Content-Length over the
 * limit is refused before a byte is read); multipart bodies go through
 * libmicrohttpd's own form parser. A request that waits for a job (Prefer:
 * wait, the OpenAI endpoints) suspends its connection; one waiter thread
 * resumes it when the gateway reports the job finished or the wait expires,
 * so a thousand waiting clients hold no thread each. */
#include "server/internal.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "route/gateway.h"
#include "route/sched.h"
#include "store/store.h"
#include "core/str.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* ---- The route table (h2o's ordered handler list) ------------------------- */

struct route {
    const char *method;
    const char *path;       /* exact, or a prefix when it ends with '/' */
    srv_handler fn;
};

static const struct route routes[] = {
    {"GET", "/healthz", srv_api_health},
    {"GET", "/readyz", srv_api_ready},
    {"GET", "/metrics", srv_api_metrics},
    {"POST", "/v1/images/generations", srv_api_openai_generations},
    {"POST", "/v1/images/edits", srv_api_openai_edits},
    {"POST", "/v1/jobs", srv_api_jobs_create},
    {"GET", "/v1/jobs/", srv_api_jobs_get},
    {"DELETE", "/v1/jobs/", srv_api_jobs_cancel},
    {"GET", "/v1/files/", srv_api_files},
};

/* Paths that answer without a tenant key. */
static int
is_public(const char *url)
{
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
           strcmp(url, "/metrics") == 0 || strncmp(url, "/v1/files/", 10) == 0;
}

/* ---- Answers ---------------------------------------------------------------- */

static void
add_common_headers(struct srv_req *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-Id", r->id);
}

static void
observe(struct srv_req *r, unsigned status)
{
    char code[IG_INT_TEXT];
    ig_fmt_ull(code, status);
    const char *labels[] = {r->method, code};
    ig_metric_add(r->srv->m_requests, labels, 1);
    const char *l2[] = {r->method};
    long ms = route_now_ms() - r->started_ms;
    ig_metric_observe(r->srv->m_latency, l2, (double)ms / 1000.0);
    enum ig_log_level level = status >= 500 ? IG_LOG_WARN : IG_LOG_INFO;
    if (!ig_log_wants(level))
        return;
    ig_log(level, "http_request",
           json_pack("{s:s,s:s,s:s,s:i,s:I,s:s?,s:s?}", "request_id", r->id, "method", r->method,
                     "path", r->url, "status", (int)status, "ms", (json_int_t)ms, "tenant",
                     r->tenant_name[0] ? r->tenant_name : NULL, "job_id",
                     r->wait_job[0] ? r->wait_job : NULL));
}

enum MHD_Result
srv_bytes(struct srv_req *r, unsigned status, const char *mime, void *data, size_t len,
          const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data, ig_free);
    if (!resp) {
        ig_free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", mime);
    add_common_headers(r, resp);
    for (int i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    observe(r, status);
    return ret;
}

enum MHD_Result
srv_json(struct srv_req *r, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    char *copy = ig_malloc(len);
    if (!copy) {
        free(text);
        return MHD_NO;
    }
    memcpy(copy, text, len);
    free(text);
    return srv_bytes(r, status, "application/json", copy, len, NULL);
}

static json_t *
error_body(const char *code, const char *message, const char *job_id, json_t *attempts)
{
    return json_pack("{s:{s:s,s:s,s:s?,s:o}}", "error", "code", code, "message", message,
                     "job_id", job_id, "attempts", attempts ? attempts : json_array());
}

enum MHD_Result
srv_error(struct srv_req *r, const struct ig_error *e)
{
    unsigned status = e->http_status >= 400 && e->http_status < 600 ? (unsigned)e->http_status
                                                                    : 500;
    return srv_json(r, status, error_body(e->code[0] ? e->code : "internal", e->message, NULL,
                                          NULL));
}

enum MHD_Result
srv_errorf(struct srv_req *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return srv_json(r, status, error_body(code, msg, NULL, NULL));
}

enum MHD_Result
srv_job_error(struct srv_req *r, unsigned status, const char *job_id, const char *error_json)
{
    json_t *e = error_json ? json_loads(error_json, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    json_t *att = json_object_get(e, "attempts");
    json_t *body = error_body(code ? code : "job_failed", msg ? msg : "the job failed", job_id,
                              att ? json_incref(att) : NULL);
    json_decref(e);
    return srv_json(r, status, body);
}

/* ---- Request helpers ---------------------------------------------------------- */

const char *
srv_header(struct srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const struct srv_part *
srv_part(struct srv_req *r, const char *name, int nth)
{
    for (int i = 0; i < r->n_parts; i++)
        if (strcmp(r->parts[i].name, name) == 0 && nth-- == 0)
            return &r->parts[i];
    return NULL;
}

json_t *
srv_body_json(struct srv_req *r, struct ig_error *err)
{
    const char *ct = srv_header(r, "Content-Type");
    if (ct && strncmp(ct, "application/json", 16) != 0) {
        ig_error_set(err, 415, "unsupported_media_type", "send the body as application/json");
        return NULL;
    }
    if (r->body.len == 0) {
        ig_error_set(err, 400, "bad_json", "the request body is empty");
        return NULL;
    }
    return ig_json_parse(r->body.data, r->body.len, r->srv->cfg->limits.max_json_depth, err);
}

int
srv_store_input(struct srv_req *r, const void *data, size_t len, char hex[65],
                struct ig_error *err)
{
    struct img_limits lim;
    img_limits_from_config(&lim, &r->srv->cfg->limits);
    struct img_info info;
    if (img_probe(data, len, &lim, &info, err) != 0)
        return -1;
    return store_blob_put(r->srv->deps.store, data, len, hex, err);
}

/* ---- Signed file URLs ------------------------------------------------------- */

static void
file_mac(const struct srv *s, const char *hex, const char *tenant, const char *exp, char out[65])
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s\n%s\n%s", hex, tenant, exp);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), s->sign_key, sizeof s->sign_key, (const unsigned char *)msg, strlen(msg),
         mac, &n);
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

int
srv_sign_file_url(const struct srv *s, const char *hex, const char *tenant, long ttl_s, char *out,
                  size_t size)
{
    char exp[32], mac[65];
    snprintf(exp, sizeof exp, "%ld", (long)time(NULL) + ttl_s);
    file_mac(s, hex, tenant, exp, mac);
    int n = snprintf(out, size, "/v1/files/%s?tenant=%s&exp=%s&sig=%s", hex, tenant, exp, mac);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int
srv_check_file_sig(const struct srv *s, const char *hex, const char *tenant, const char *exp,
                   const char *sig)
{
    if (!hex || !tenant || !exp || !sig || strlen(sig) != 64)
        return 0;
    char *end;
    long when = strtol(exp, &end, 10);
    if (*end || when < (long)time(NULL))
        return 0;
    char mac[65];
    file_mac(s, hex, tenant, exp, mac);
    /* Constant time: a signature is not to be guessed byte by byte. */
    unsigned diff = 0;
    for (int i = 0; i < 64; i++)
        diff |= (unsigned)(mac[i] ^ sig[i]);
    return diff == 0;
}

/* ---- Authentication -------------------------------------------------------- */

static int
authenticate(struct srv_req *r, struct ig_error *err)
{
    const struct ig_config *cfg = r->srv->cfg;
    if (r->srv->open_mode) {
        r->tenant = ig_config_tenant(cfg, "default");
        if (!r->tenant && cfg->n_tenants)
            r->tenant = &cfg->tenants[0];
        ig_scopy(r->tenant_name, sizeof r->tenant_name, r->tenant ? r->tenant->name : "default");
        return 0;
    }
    const char *auth = srv_header(r, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
        return ig_error_set(err, 401, "unauthorized", "send 'Authorization: Bearer <key>'");
    const char *key = auth + 7;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL);
    static const char hexd[] = "0123456789abcdef";
    char want[7 + 65] = "sha256:";
    for (unsigned i = 0; i < n && i < 32; i++) {
        want[7 + 2 * i] = hexd[md[i] >> 4];
        want[8 + 2 * i] = hexd[md[i] & 15];
    }
    for (size_t t = 0; t < cfg->n_tenants; t++)
        for (size_t k = 0; k < cfg->tenants[t].n_key_hashes; k++)
            if (strcmp(cfg->tenants[t].key_hashes[k], want) == 0) {
                r->tenant = &cfg->tenants[t];
                ig_scopy(r->tenant_name, sizeof r->tenant_name, r->tenant->name);
                return 0;
            }
    return ig_error_set(err, 401, "unauthorized", "the API key is not valid");
}

/* ---- Waiting for jobs without a thread ----------------------------------- */

/* The gateway's listener: resumes the requests waiting for this job at once,
 * from the worker that finished it (MHD_resume_connection is thread-safe);
 * the waiter thread is left with the deadlines. */
static void
job_finished(void *ud, const char *job_id)
{
    struct srv *s = ud;
    pthread_mutex_lock(&s->wmu);
    for (struct srv_req **p = &s->waiters; *p;) {
        struct srv_req *w = *p;
        if (strcmp(w->wait_job, job_id) == 0) {
            *p = w->next_waiter;
            w->resumed = 1;
            MHD_resume_connection(w->conn);
        } else {
            p = &w->next_waiter;
        }
    }
    pthread_mutex_unlock(&s->wmu);
}

static void *
waiter_main(void *arg)
{
    pthread_setname_np(pthread_self(), "ig-waiter");
    struct srv *s = arg;
    pthread_mutex_lock(&s->wmu);
    while (!s->stopping) {
        long now = route_now_ms();
        for (struct srv_req **p = &s->waiters; *p;) {
            struct srv_req *w = *p;
            if (w->wait_until_ms <= now) {
                *p = w->next_waiter;
                w->resumed = 1;
                MHD_resume_connection(w->conn);
            } else {
                p = &w->next_waiter;
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50 * 1000000L;   /* deadlines are checked 20 times a second */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wcv, &s->wmu, &ts);
    }
    for (struct srv_req *w = s->waiters; w; w = w->next_waiter) {
        w->resumed = 1;
        MHD_resume_connection(w->conn);
    }
    s->waiters = NULL;
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

enum MHD_Result
srv_wait(struct srv_req *r, const char *job_id, long timeout_ms, srv_handler after)
{
    struct srv *s = r->srv;
    snprintf(r->wait_job, sizeof r->wait_job, "%s", job_id);
    r->after_wait = after;
    pthread_mutex_lock(&s->wmu);
    if (s->stopping) {
        /* Shutting down: answer with what there is now. */
        pthread_mutex_unlock(&s->wmu);
        return after(r, NULL);
    }
    r->waiting = 1;
    atomic_fetch_add(&s->suspended, 1);
    /* The job may have finished already; then the waiter resumes at once. */
    struct store_job sj;
    struct ig_error err = {0};
    int done = store_job_get(s->deps.store, job_id, NULL, &sj, &err) != 0 ||
               store_state_terminal(sj.state);
    if (!err.code[0])
        store_job_clear(&sj);
    r->wait_until_ms = done ? 0 : route_now_ms() + timeout_ms;
    MHD_suspend_connection(r->conn);
    r->next_waiter = s->waiters;
    s->waiters = r;
    pthread_cond_signal(&s->wcv);
    pthread_mutex_unlock(&s->wmu);
    return MHD_YES;
}

void
srv_wake(struct srv_req *r)
{
    r->resumed = 1;
    MHD_resume_connection(r->conn);
}

struct deferred {
    struct srv_req *r;
    void (*work)(struct srv_req *r);
};

static void
run_deferred(void *arg)
{
    struct deferred *d = arg;
    struct srv_req *r = d->r;
    d->work(r);
    ig_free(d);
    pthread_mutex_lock(&r->srv->wmu);
    srv_wake(r);
    pthread_mutex_unlock(&r->srv->wmu);
}

enum MHD_Result
srv_defer(struct srv_req *r, void (*work)(struct srv_req *r), srv_handler after)
{
    struct srv *s = r->srv;
    struct deferred *d = ig_malloc(sizeof *d);
    if (!d)
        return srv_errorf(r, 500, "out_of_memory", "out of memory");
    *d = (struct deferred){r, work};
    struct ig_error err = {0};
    pthread_mutex_lock(&s->wmu);
    if (!s->fetchers && !s->stopping)
        s->fetchers = route_sched_new(2, &err);
    /* Suspended before the worker can resume it: the worker waits on wmu. */
    int posted = s->fetchers && route_sched_post(s->fetchers, 0, run_deferred, d) == 0;
    if (posted) {
        r->after_wait = after;
        r->waiting = 1;
        atomic_fetch_add(&s->suspended, 1);
        MHD_suspend_connection(r->conn);
    }
    pthread_mutex_unlock(&s->wmu);
    if (!posted) {
        ig_free(d);
        if (!err.code[0])
            ig_error_set(&err, 503, "unavailable", "the server is stopping");
        return srv_error(r, &err);
    }
    return MHD_YES;
}

/* ---- One request's life ---------------------------------------------------- */

static enum MHD_Result
on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
        const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
        size_t size)
{
    struct srv_req *r = cls;
    (void)kind;
    (void)transfer_encoding;
    struct srv_part *p = r->n_parts ? &r->parts[r->n_parts - 1] : NULL;
    /* A new part starts at offset 0 (or when the field name changes). */
    if (!p || off == 0 || strcmp(p->name, key) != 0) {
        if (r->n_parts >= SRV_MAX_PARTS) {
            r->too_many_parts = 1;
            return MHD_YES;
        }
        if (!r->parts && !(r->parts = ig_calloc(SRV_MAX_PARTS, sizeof *r->parts)))
            return MHD_NO;
        p = &r->parts[r->n_parts++];
        ig_scopy(p->name, sizeof p->name, key);
        ig_scopy(p->filename, sizeof p->filename, filename ? filename : "");
        ig_scopy(p->type, sizeof p->type, content_type ? content_type : "");
    }
    if (size && ig_buf_append(&p->data, data, size) != 0)
        return MHD_NO;
    return MHD_YES;
}

static void
req_free(struct srv_req *r)
{
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    for (int i = 0; i < r->n_parts; i++)
        ig_buf_free(&r->parts[i].data);
    ig_free(r->parts);
    ig_buf_free(&r->body);
    route_relay_result_clear(&r->relay);
    json_decref(r->deferred_body);
    pthread_mutex_destroy(&r->relay_mu);
    ig_free(r);
}

void
srv_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct srv_req *r = *req_cls;
    if (!r)
        return;
    /* Resumed after its client had gone: libmicrohttpd closes such a
     * connection without calling the handler again, so the count of
     * suspended connections, which srv_stop waits on, drops here. */
    if (r->waiting)
        atomic_fetch_sub(&r->srv->suspended, 1);
    req_free(r);
    *req_cls = NULL;
}

static enum MHD_Result
dispatch(struct srv_req *r)
{
    if (r->body_too_large)
        return srv_errorf(r, 413, "body_too_large", "the request body is over %ld bytes",
                          r->srv->cfg->limits.max_body_bytes);
    if (r->too_many_parts)
        return srv_errorf(r, 400, "too_many_parts", "more than %d form fields", SRV_MAX_PARTS);
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *rt = &routes[i];
        size_t n = strlen(rt->path);
        int prefix = rt->path[n - 1] == '/';
        int match = prefix ? strncmp(r->url, rt->path, n) == 0 && r->url[n]
                           : strcmp(r->url, rt->path) == 0;
        if (!match)
            continue;
        path_known = 1;
        if (strcmp(r->method, rt->method) != 0 &&
            !(strcmp(r->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0))
            continue;
        if (!is_public(r->url)) {
            struct ig_error err = {0};
            if (authenticate(r, &err) != 0)
                return srv_error(r, &err);
            if (!r->srv->deps.gw)
                return srv_errorf(r, 503, "gateway_unavailable",
                                  "this server runs without a job engine");
        }
        return rt->fn(r, prefix ? r->url + n : NULL);
    }
    if (path_known)
        return srv_errorf(r, 405, "method_not_allowed", "%s is not allowed on %.200s", r->method,
                          r->url);
    return srv_errorf(r, 404, "not_found", "no route for %s %.200s", r->method, r->url);
}

enum MHD_Result
srv_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct srv *s = cls;
    (void)version;
    struct srv_req *r = *req_cls;
    if (!r) {
        r = ig_calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        pthread_mutex_init(&r->relay_mu, NULL);
        r->srv = s;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->started_ms = route_now_ms();
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && strlen(rid) < sizeof r->id && strspn(rid, "abcdefghijklmnopqrstuvwxyz"
                                                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                            "0123456789-_.") == strlen(rid))
            ig_scopy(r->id, sizeof r->id, rid);
        else
            store_new_id(r->id, "req");
        *req_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoll(cl, NULL, 10) > s->cfg->limits.max_body_bytes)
            r->body_too_large = 1;
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0)
            r->pp = MHD_create_post_processor(conn, 65536, on_part, r);
        return MHD_YES;
    }
    if (r->resumed) {
        r->resumed = 0;
        r->waiting = 0;
        atomic_fetch_sub(&s->suspended, 1);
        return r->after_wait(r, NULL);
    }
    if (*upload_size) {
        if (!r->body_too_large) {
            if (r->body.len + *upload_size > (size_t)s->cfg->limits.max_body_bytes) {
                /* Keep reading (and dropping) so the client gets the 413. */
                r->body_too_large = 1;
                ig_buf_free(&r->body);
            } else if (r->pp) {
                r->body.len += *upload_size;   /* counted, not kept: the parts hold it */
                if (MHD_post_process(r->pp, upload_data, *upload_size) != MHD_YES)
                    return MHD_NO;
            } else {
                /* The announced length is allocated once: a large body is
                 * then copied once, not once per doubling. */
                const char *cl = r->body.cap ? NULL
                                 : MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                               "Content-Length");
                long long want = cl ? strtoll(cl, NULL, 10) : 0;
                if (want > 0 && want <= s->cfg->limits.max_body_bytes &&
                    ig_buf_reserve(&r->body, (size_t)want) != 0)
                    return MHD_NO;
                if (ig_buf_append(&r->body, upload_data, *upload_size) != 0)
                    return MHD_NO;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->pp)
        r->body.len = 0;
    return dispatch(r);
}

/* ---- Lifecycle ------------------------------------------------------------ */

int
srv_parse_listen(const char *listen, char *host, size_t host_size, int *port,
                 struct ig_error *err)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen;
    if (!colon)
        return ig_error_set(err, 400, "bad_listen", "listen address '%s' must be HOST:PORT",
                            listen);
    hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return ig_error_set(err, 400, "bad_listen", "port in '%s' must be 0..65535", listen);
    if (hlen == 0) {
        h = "127.0.0.1";
        hlen = strlen(h);
    }
    if (hlen >= host_size)
        return ig_error_set(err, 400, "bad_listen", "host in '%s' is too long", listen);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static int
any_tenant_keys(const struct ig_config *cfg)
{
    for (size_t i = 0; i < cfg->n_tenants; i++)
        if (cfg->tenants[i].n_key_hashes)
            return 1;
    return 0;
}

struct srv *
srv_start(const struct ig_config *cfg, const struct srv_deps *deps, const char *listen_override,
          struct ig_error *err)
{
    const char *listen = listen_override ? listen_override
                         : cfg->server.listen ? cfg->server.listen : "127.0.0.1:8080";
    char host[256];
    int port;
    if (srv_parse_listen(listen, host, sizeof host, &port, err) != 0)
        return NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sslen;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        sslen = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        sslen = sizeof *v6;
    } else {
        ig_error_set(err, 400, "bad_listen", "listen host '%s' must be an IP address", host);
        return NULL;
    }
    struct srv *s = ig_calloc(1, sizeof *s);
    if (!s) {
        ig_error_set(err, 500, "out_of_memory", "out of memory starting the server");
        return NULL;
    }
    s->listen_fd = -1;
    s->cfg = cfg;
    s->deps = *deps;
    s->open_mode = !any_tenant_keys(cfg);
    if (deps->signing_key)
        EVP_Digest(deps->signing_key, strlen(deps->signing_key), s->sign_key, NULL, EVP_sha256(),
                   NULL);
    else if (RAND_bytes(s->sign_key, sizeof s->sign_key) != 1) {
        ig_free(s);
        ig_error_set(err, 500, "random", "no randomness for the signing key");
        return NULL;
    }
    static const char *const method_code[] = {"method", "code", NULL};
    static const char *const method_only[] = {"method", NULL};
    s->m_requests = ig_metric_declare(deps->metrics, "imagegate_http_requests_total",
                                      "HTTP requests by method and status", IG_COUNTER,
                                      method_code, NULL, 0);
    s->m_latency = ig_metric_declare(deps->metrics, "imagegate_http_request_seconds",
                                     "Time to answer an HTTP request", IG_HISTOGRAM, method_only,
                                     NULL, 0);
    static const char *const thread_only[] = {"thread", NULL};
    s->m_connections = ig_metric_declare(deps->metrics, "imagegate_http_connections",
                                         "Open client connections per HTTP thread", IG_GAUGE,
                                         thread_only, NULL, 0);
    pthread_mutex_init(&s->wmu, NULL);
    atomic_init(&s->suspended, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wcv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->waiter_thread, NULL, waiter_main, s) != 0) {
        ig_free(s);
        ig_error_set(err, 500, "threads", "cannot start the waiter thread");
        return NULL;
    }
    if (deps->gw)
        route_gateway_set_listener(deps->gw, job_finished, s);
    unsigned threads = cfg->server.threads > 0 ? (unsigned)cfg->server.threads : 2;
    snprintf(s->address, sizeof s->address, "%s", listen);
    if (srv_threads_start(s, (struct sockaddr *)&ss, sslen, threads, err) != 0) {
        srv_stop(s);
        return NULL;
    }
    int bound = port;
    if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sslen) == 0)
        bound = ntohs(ss.ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port);
    snprintf(s->address, sizeof s->address, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, bound);
    return s;
}

const char *
srv_address(const struct srv *s)
{
    return s->address;
}

void
srv_stop(struct srv *s)
{
    if (!s)
        return;
    if (s->deps.gw)
        route_gateway_set_listener(s->deps.gw, NULL, NULL);
    pthread_mutex_lock(&s->wmu);
    s->stopping = 1;
    pthread_cond_signal(&s->wcv);
    pthread_mutex_unlock(&s->wmu);
    pthread_join(s->waiter_thread, NULL);
    /* libmicrohttpd must not be stopped with connections still suspended:
     * wait for the resumed ones to be answered. */
    for (int i = 0; i < 500; i++) {
        int left = atomic_load(&s->suspended);
        if (!left)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* Deferred work already posted finishes (and resumes its connection)
     * while the HTTP threads still run. */
    pthread_mutex_lock(&s->wmu);
    struct route_sched *fetchers = s->fetchers;
    s->fetchers = NULL;
    pthread_mutex_unlock(&s->wmu);
    route_sched_free(fetchers);
    srv_threads_stop(s);
    pthread_cond_destroy(&s->wcv);
    pthread_mutex_destroy(&s->wmu);
    ig_free(s);
}
