/* SPDX-License-Identifier: MIT */
/* gateway.c -- the job engine (see gateway.h for the path of a job).
 *
 * A job in memory is a small struct that one task at a time owns: the
 * scheduler runs job_step, the adapter's completion posts job_after_attempt,
 * and so on, so a job is never touched by two threads at once and needs no
 * lock of its own. The only shared state is the table of active jobs (for
 * cancel and wait), guarded by the gateway's mutex. */
#include "route/gateway.h"
#include "route/internal.h"
#include "core/alloc.h"
#include "backends/urlguard.h"
#include "core/log.h"
#include "core/secret.h"
#include "lora/lora.h"
#include "route/limit.h"
#include "route/route.h"
#include "route/sched.h"
#include "core/str.h"

#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CANDIDATES 16
/* A replica holds its jobs for LEASE_MS and renews every LEASE_MS / 3; a
 * replica that dies loses them to another within LEASE_MS. */
#define LEASE_MS 15000L


struct job {
    struct job *next;
    struct route_gateway *gw;
    char id[40];
    char tenant_name[64];
    const struct ig_tenant_cfg *tenant;
    json_t *req;
    enum ig_class cls;

    struct route_candidate cand[MAX_CANDIDATES];
    int n_cand, rung;
    int retries_used, reseeds_used;
    int attempt_no;
    long deadline_ms, started_ms, attempt_started_ms;
    long long seed;
    int has_seed;

    struct ig_buf input, mask;
    struct img *input_img, *mask_img;

    long long reservation;        /* 0: none held */
    double reserved_usd;
    int holds_limits;
    struct route_render render;
    struct route_outcome outcome;
    json_t *attempts;             /* one object per attempt or skipped rung */
    /* The last attempt, when it is written with the job's end (one transaction). */
    struct store_attempt_end final;
    char *final_detail;
    int has_final;
    const char *resume;           /* vendor JSON to resume with, on recovery */
    char *resume_buf;
    atomic_int cancelled;
    atomic_int running;           /* an attempt has started */
};

/* ---- Small helpers ------------------------------------------------------- */

void
route_outcome_clear(struct route_outcome *o)
{
    for (int i = 0; i < o->n_images; i++)
        ig_free(o->images[i].data);
    ig_free(o->provenance);
    ig_buf_free(&o->raw);
    memset(o, 0, sizeof *o);
    o->retry_after_ms = -1;
}

static void
render_clear(struct route_render *r)
{
    ig_free(r->prompt);
    ig_free(r->negative_prompt);
    json_decref(r->params);
    json_decref(r->notes);
    memset(r, 0, sizeof *r);
}

static const char *
jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int
parse_size_field(const json_t *req, int *w, int *h, struct ig_error *err)
{
    const char *size = jstr(req, "size");
    *w = *h = 0;
    struct ig_size wh;
    if (size && strcmp(size, "auto") != 0) {
        if (ig_size_parse(size, &wh) != 0)
            return ig_error_set(err, 400, "invalid_request",
                                "'size' must be WIDTHxHEIGHT (up to %d), not '%.40s'", IG_SIDE_MAX,
                                size);
        *w = wh.w;
        *h = wh.h;
    }
    return 0;
}

int
route_request_class(const json_t *request, enum ig_class *cls, struct ig_error *err)
{
    const char *c = jstr(request, "class");
    if (!c)
        return ig_error_set(err, 400, "invalid_request",
                            "'class' is required: generate, edit, upscale or remove-background");
    if (ig_class_parse(c, cls) != 0)
        return ig_error_set(err, 400, "invalid_request",
                            "unknown class '%.40s': generate, edit, upscale or remove-background", c);
    return 0;
}

/* Checks a request before it is accepted: a bad request is refused at once
 * with 400, never accepted and failed later. */
static int
validate_request(struct route_gateway *gw, const json_t *req, struct ig_error *err)
{
    enum ig_class cls;
    if (!json_is_object(req))
        return ig_error_set(err, 400, "invalid_request", "the job must be a JSON object");
    if (route_request_class(req, &cls, err) != 0)
        return -1;
    const char *prompt = jstr(req, "prompt");
    int has_spec = json_is_object(json_object_get(req, "spec"));
    if ((cls == IG_CLASS_GENERATE || cls == IG_CLASS_EDIT) && !has_spec &&
        (!prompt || !*prompt))
        return ig_error_set(err, 400, "invalid_request", "a %s job needs a 'prompt' or a 'spec'",
                            ig_class_name(cls));
    if (prompt && strlen(prompt) > 100000)
        return ig_error_set(err, 400, "invalid_request", "'prompt' is longer than 100000 bytes");
    if (cls != IG_CLASS_GENERATE && !jstr(req, "input"))
        return ig_error_set(err, 400, "invalid_request", "a %s job needs an input image",
                            ig_class_name(cls));
    json_t *n = json_object_get(req, "n");
    if (n && (!json_is_integer(n) || json_integer_value(n) < 1 ||
              json_integer_value(n) > ROUTE_MAX_IMAGES))
        return ig_error_set(err, 400, "invalid_request", "'n' must be an integer from 1 to %d",
                            ROUTE_MAX_IMAGES);
    json_t *scale = json_object_get(req, "scale");
    if (scale && (!json_is_integer(scale) || json_integer_value(scale) < 1 ||
                  json_integer_value(scale) > 16))
        return ig_error_set(err, 400, "invalid_request", "'scale' must be an integer from 1 to 16");
    json_t *seed = json_object_get(req, "seed");
    if (seed && !json_is_null(seed) && !json_is_integer(seed))
        return ig_error_set(err, 400, "invalid_request", "'seed' must be an integer");
    int w, h;
    if (parse_size_field(req, &w, &h, err) != 0)
        return -1;
    const char *refs[] = {"input", "mask"};
    for (int i = 0; i < 2; i++) {
        const char *hex = jstr(req, refs[i]);
        struct ig_buf probe = {0};
        if (hex && store_blob_get(gw->store, hex, &probe, err) != 0) {
            ig_buf_free(&probe);
            return ig_error_set(err, 400, "invalid_request", "'%s' names no stored image",
                                refs[i]);
        }
        ig_buf_free(&probe);
    }
    return 0;
}

static void
job_free(struct job *j)
{
    if (!j)
        return;
    json_decref(j->req);
    json_decref(j->attempts);
    ig_buf_free(&j->input);
    ig_buf_free(&j->mask);
    img_free(j->input_img);
    img_free(j->mask_img);
    render_clear(&j->render);
    route_outcome_clear(&j->outcome);
    ig_free(j->resume_buf);
    ig_free(j->final_detail);
    ig_free(j);
}

static void
active_remove(struct route_gateway *gw, struct job *j)
{
    pthread_mutex_lock(&gw->mu);
    for (struct job **p = &gw->active; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            gw->n_active--;
            break;
        }
    ig_metric_set(gw->m_active, NULL, gw->n_active);
    pthread_cond_broadcast(&gw->done_cv);
    pthread_mutex_unlock(&gw->mu);
}

static const char *
backend_name(const struct job *j)
{
    return j->rung < j->n_cand && j->cand[j->rung].backend ? j->cand[j->rung].backend->name
                                                          : "none";
}

/* Appends the attempt to the job's list; returns its JSON text for the store
 * (NULL when out of memory). */
static char *
attempt_entry(struct job *j, const char *outcome, const char *message, json_t *extra)
{
    json_t *a = json_pack("{s:i,s:s,s:s,s:s?}", "attempt", j->attempt_no, "backend",
                          backend_name(j), "outcome", outcome, "message", message);
    if (!a) {
        json_decref(extra);
        return NULL;
    }
    if (extra)
        json_object_update_missing(a, extra);
    json_decref(extra);
    char *text = json_dumps(a, JSON_COMPACT);
    json_array_append_new(j->attempts, a);
    const char *labels[] = {backend_name(j), outcome};
    ig_metric_add(j->gw->m_attempts, labels, 1);
    return text;
}

static void
store_failed(struct job *j, const struct ig_error *err)
{
    ig_log(IG_LOG_ERROR, "store_failed",
           json_pack("{s:s,s:s}", "job_id", j->id, "error", err->message));
}

/* A rung skipped without a call: only its row is written. */
static void
attempt_record(struct job *j, const char *outcome, const char *message, json_t *extra)
{
    char *text = attempt_entry(j, outcome, message, extra);
    struct ig_error err = {0};
    if (text && store_attempt_add(j->gw->store, j->id, j->attempt_no, backend_name(j), outcome,
                                  text, &err) != 0)
        store_failed(j, &err);
    free(text);
}

/* The end of a call: its row and its charge (committed when the vendor
 * billed it, released otherwise) in one transaction, or, with at_finish,
 * together with the job's end. */
static void
attempt_end(struct job *j, const char *outcome, const char *message, json_t *extra, int charged,
            double actual_usd, int at_finish)
{
    char *text = attempt_entry(j, outcome, message, extra);
    struct store_attempt_end e = {
        .job_id = j->id,
        .n = j->attempt_no,
        .backend = backend_name(j),
        .outcome = outcome,
        .detail = text,
        .reservation = j->reservation,
        .settle = !j->reservation ? STORE_SETTLE_NONE
                  : charged       ? STORE_SETTLE_COMMIT
                                  : STORE_SETTLE_RELEASE,
        .usd = actual_usd >= 0 ? actual_usd : j->reserved_usd,
    };
    if (e.settle == STORE_SETTLE_COMMIT) {
        const char *labels[] = {backend_name(j), j->tenant_name};
        ig_metric_add(j->gw->m_cost, labels, e.usd);
    }
    j->reservation = 0;
    if (at_finish && text) {
        /* backend and outcome point at strings that outlive the job. */
        j->final = e;
        j->final_detail = text;
        j->has_final = 1;
        return;
    }
    struct ig_error err = {0};
    if (text && store_attempt_end(j->gw->store, &e, &err) != 0)
        store_failed(j, &err);
    free(text);
}

/* ---- Webhooks ------------------------------------------------------------- */

struct delivery {
    struct route_gateway *gw;
    char *url, *body, *secret_ref;
    char job_id[40];
    int tries;
};

static void
delivery_free(struct delivery *d)
{
    ig_free(d->url);
    ig_free(d->body);
    ig_free(d->secret_ref);
    ig_free(d);
}

/* POSTs the job's end to the tenant's URL, signed the way Stripe signs:
 * X-Imagegate-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">.
 * Retried three times (1 s, 4 s) on errors and non-2xx answers. */
static void
deliver(void *arg)
{
    struct delivery *d = arg;
    struct route_gateway *gw = d->gw;
    struct ig_error err = {0};
    char *secret = NULL;
    if (ig_resolve_ref(d->secret_ref, &secret, &err) != 0) {
        ig_log(IG_LOG_ERROR, "webhook_failed",
               json_pack("{s:s,s:s}", "job_id", d->job_id, "error", err.message));
        delivery_free(d);
        return;
    }
    char t[32];
    snprintf(t, sizeof t, "%ld", (long)time(NULL));
    size_t blen = strlen(d->body);
    struct ig_buf signed_part = {0};
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    char sig[200] = "X-Imagegate-Signature: t=";
    if (ig_buf_printf(&signed_part, "%s.", t) == 0 && ig_buf_append(&signed_part, d->body, blen) == 0 &&
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)signed_part.data,
             signed_part.len, mac, &mlen)) {
        size_t n = strlen(sig);
        n += (size_t)snprintf(sig + n, sizeof sig - n, "%s,v1=", t);
        for (unsigned i = 0; i < mlen && n + 2 < sizeof sig; i++, n += 2)
            snprintf(sig + n, sizeof sig - n, "%02x", mac[i]);
    }
    ig_buf_free(&signed_part);
    ig_free(secret);
    const struct ig_fetch_cfg *fc = &gw->cfg->fetch;
    const struct be_urlguard g = {fc->allow_http, fc->allow_loopback, fc->allow_private};
    const char *headers[] = {"Content-Type: application/json", sig, NULL};
    const struct be_fetch f = {.method = "POST", .body = d->body, .body_len = blen,
                               .headers = headers, .max_bytes = 65536,
                               .timeout_ms = fc->timeout_ms, .max_redirects = 1};
    struct ig_buf answer = {0};
    long status = 0;
    int ok = be_fetch_url(d->url, &g, &f, &status, &answer, NULL, 0, &err) == 0 &&
             status >= 200 && status < 300;
    ig_buf_free(&answer);
    const char *labels[] = {ok ? "delivered" : "failed"};
    ig_metric_add(gw->m_webhooks, labels, 1);
    if (!ok && ++d->tries < 3 &&
        route_sched_post(gw->sched, d->tries == 1 ? 1000 : 4000, deliver, d) == 0)
        return;
    ig_log(ok ? IG_LOG_INFO : IG_LOG_WARN, ok ? "webhook_delivered" : "webhook_failed",
           json_pack("{s:s,s:i,s:I,s:s?}", "job_id", d->job_id, "tries", d->tries + !ok,
                     "status", (json_int_t)status, "error", ok ? NULL : err.message));
    delivery_free(d);
}

static void
webhook_schedule(struct job *j, enum store_state state, const char *result, const char *error)
{
    const char *url = json_string_value(json_object_get(json_object_get(j->req, "webhook"), "url"));
    if (!url || !j->tenant || !j->tenant->webhook_secret)
        return;
    json_t *body = json_pack("{s:s,s:s,s:s,s:o?,s:o?}", "id", j->id, "class",
                             ig_class_name(j->cls), "state", store_state_name(state), "result",
                             result ? json_loads(result, 0, NULL) : NULL, "error",
                             error ? json_loads(error, 0, NULL) : NULL);
    struct delivery *d = ig_calloc(1, sizeof *d);
    if (body && d) {
        d->gw = j->gw;
        d->url = ig_strdup(url);
        d->body = json_dumps(body, JSON_COMPACT);
        d->secret_ref = ig_strdup(j->tenant->webhook_secret);
        snprintf(d->job_id, sizeof d->job_id, "%s", j->id);
    }
    json_decref(body);
    if (!d || !d->url || !d->body || !d->secret_ref ||
        route_sched_post(j->gw->sched, 0, deliver, d) != 0) {
        if (d)
            delivery_free(d);
        ig_log(IG_LOG_ERROR, "webhook_failed",
               json_pack("{s:s,s:s}", "job_id", j->id, "error", "out of memory"));
    }
}

/* ---- Finishing ----------------------------------------------------------- */

static void
job_finish(struct job *j, enum store_state state, json_t *result, const struct ig_error *e)
{
    struct route_gateway *gw = j->gw;
    char *rtext = NULL, *etext = NULL;
    if (result)
        rtext = json_dumps(result, JSON_COMPACT);
    if (e) {
        json_t *eo = json_pack("{s:s,s:s,s:s,s:O}", "code", e->code, "message", e->message,
                               "job_id", j->id, "attempts", j->attempts);
        etext = eo ? json_dumps(eo, JSON_COMPACT) : NULL;
        json_decref(eo);
    }
    struct ig_error err = {0};
    if (j->has_final) {
        j->final.finish = 1;
        j->final.state = state;
        j->final.result = rtext;
        j->final.error = etext;
        if (store_attempt_end(gw->store, &j->final, &err) != 0)
            store_failed(j, &err);
    } else if (store_job_update(gw->store, j->id, state, rtext, etext, &err) < 0) {
        store_failed(j, &err);
    }
    webhook_schedule(j, state, rtext, etext);
    free(rtext);
    free(etext);
    json_decref(result);
    const char *labels[] = {ig_class_name(j->cls), store_state_name(state)};
    ig_metric_add(gw->m_jobs, labels, 1);
    ig_log(IG_LOG_INFO, "job_finished",
           json_pack("{s:s,s:s,s:s,s:i,s:s?}", "job_id", j->id, "tenant", j->tenant_name,
                     "state", store_state_name(state), "attempts", j->attempt_no, "error",
                     e ? e->code : NULL));
    if (gw->listener)
        gw->listener(gw->listener_ud, j->id);
    active_remove(gw, j);
    job_free(j);
}

static void
job_fail(struct job *j, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
job_fail(struct job *j, int status, const char *code, const char *fmt, ...)
{
    struct ig_error e = {0};
    char msg[sizeof e.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ig_error_set(&e, status, code, "%s", msg);
    job_finish(j, STORE_FAILED, NULL, &e);
}

/* ---- Budget and limits ---------------------------------------------------- */

static void
budget_settle(struct job *j, int charged, double actual)
{
    if (!j->reservation)
        return;
    struct ig_error err = {0};
    int rc;
    if (charged) {
        double usd = actual >= 0 ? actual : j->reserved_usd;
        rc = store_budget_commit(j->gw->store, j->reservation, usd, &err);
        const char *labels[] = {backend_name(j), j->tenant_name};
        ig_metric_add(j->gw->m_cost, labels, usd);
    } else {
        rc = store_budget_release(j->gw->store, j->reservation, &err);
    }
    if (rc != 0)
        ig_log(IG_LOG_ERROR, "ledger_failed",
               json_pack("{s:s,s:s}", "job_id", j->id, "error", err.message));
    j->reservation = 0;
}

struct route_limit_spec
route_backend_spec(const struct ig_backend_cfg *b)
{
    return (struct route_limit_spec){
        .rpm = b->contract.limits.rpm,
        .ipm = b->contract.limits.ipm,
        .concurrency = b->contract.limits.concurrency,
        .breaker_threshold = 5,
        .breaker_cooldown_ms = 30000,
    };
}

int
route_admit(struct route_gateway *gw, const char *tenant_name, const struct ig_tenant_cfg *t,
            const struct ig_backend_cfg *b, int n, const char *holder, long *wait_ms, char *why,
            size_t why_size)
{
    char bname[128], tname[128];
    ig_sjoin(bname, sizeof bname, "backend:", b->name);
    ig_sjoin(tname, sizeof tname, "tenant:", tenant_name);
    struct route_limit_spec bs = route_backend_spec(b);
    struct route_limit_spec ts = {0};
    if (t)
        ts = (struct route_limit_spec){.rpm = t->rpm, .ipm = t->ipm, .concurrency = t->concurrency};
    long now = route_now_ms();
    int rc = route_limits_admit(gw->limits, tname, &ts, n, holder, now, wait_ms, why, why_size);
    if (rc != 1)
        return rc;
    rc = route_limits_admit(gw->limits, bname, &bs, n, holder, now, wait_ms, why, why_size);
    if (rc != 1)
        route_limits_release(gw->limits, tname, holder);
    return rc;
}

void
route_release(struct route_gateway *gw, const char *tenant_name, const char *backend,
              const char *holder)
{
    char name[128];
    ig_sjoin(name, sizeof name, "backend:", backend);
    route_limits_release(gw->limits, name, holder);
    ig_sjoin(name, sizeof name, "tenant:", tenant_name);
    route_limits_release(gw->limits, name, holder);
}

static void
limits_release(struct job *j)
{
    if (!j->holds_limits)
        return;
    char holder[64];
    snprintf(holder, sizeof holder, "%s/%d", j->id, j->attempt_no);
    route_release(j->gw, j->tenant_name, backend_name(j), holder);
    j->holds_limits = 0;
}

static int
limits_admit(struct job *j, const struct ig_backend_cfg *b, int n, long *wait_ms, char *why,
             size_t why_size)
{
    /* The holder names the attempt about to start (attempt_no + 1). */
    char holder[64];
    snprintf(holder, sizeof holder, "%s/%d", j->id, j->attempt_no + 1);
    int rc = route_admit(j->gw, j->tenant_name, j->tenant, b, n, holder, wait_ms, why, why_size);
    if (rc == 1)
        j->holds_limits = 1;
    return rc;
}

/* ---- The ladder ------------------------------------------------------------ */

static void job_step(void *arg);
static void job_after_attempt(void *arg);

static void
post(struct job *j, long delay_ms, void (*fn)(void *))
{
    if (route_sched_post(j->gw->sched, delay_ms, fn, j) != 0) {
        /* Only when shutting down: the job stays queued or running in the
         * store and the next process resumes it. */
        active_remove(j->gw, j);
        job_free(j);
    }
}

static void
next_rung(struct job *j, const char *why)
{
    if (j->rung + 1 < j->n_cand) {
        const char *labels[] = {backend_name(j), why};
        ig_metric_add(j->gw->m_fallbacks, labels, 1);
    }
    j->rung++;
    j->retries_used = 0;
    j->reseeds_used = 0;
    post(j, 0, job_step);
}

static void
save_vendor(void *cookie, const char *vendor_json)
{
    struct job *j = cookie;
    json_t *v = json_loads(vendor_json, 0, NULL);
    json_t *o = json_pack("{s:s,s:i,s:i,s:I,s:f,s:o?}", "backend", backend_name(j), "rung",
                          j->rung, "attempt", j->attempt_no, "reservation",
                          (json_int_t)j->reservation, "reserved_usd", j->reserved_usd, "vendor",
                          v);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    struct ig_error err = {0};
    if (!text || store_job_set_vendor(j->gw->store, j->id, text, &err) != 0)
        ig_log(IG_LOG_ERROR, "store_failed", json_pack("{s:s,s:s}", "job_id", j->id, "error",
                                                       text ? err.message : "out of memory"));
    free(text);
    json_decref(o);
}

static void
on_done(void *cookie, struct route_outcome *o)
{
    struct job *j = cookie;
    j->outcome = *o;
    memset(o, 0, sizeof *o);
    post(j, 0, job_after_attempt);
}

static int
retryable(const char *code)
{
    return strcmp(code, "rate_limited") == 0 || strcmp(code, "upstream_error") == 0 ||
           strcmp(code, "timeout") == 0 || strcmp(code, "malformed_response") == 0;
}

static void
job_step(void *arg)
{
    struct job *j = arg;
    struct route_gateway *gw = j->gw;
    if (atomic_load(&j->cancelled)) {
        job_finish(j, STORE_CANCELLED, NULL, NULL);
        return;
    }
    long now = route_now_ms();
    if (now >= j->deadline_ms) {
        job_fail(j, 504, "timeout", "the job passed its deadline after %d attempts",
                 j->attempt_no);
        return;
    }
    if (j->attempt_no >= gw->cfg->limits.max_attempts) {
        job_fail(j, 502, "attempts_exhausted", "no rung succeeded within %d attempts",
                 gw->cfg->limits.max_attempts);
        return;
    }
    if (j->rung >= j->n_cand) {
        job_fail(j, 502, "no_rung_succeeded", "every rung of the ladder failed or was skipped");
        return;
    }
    struct route_candidate *c = &j->cand[j->rung];
    if (!c->usable) {
        attempt_record(j, "skipped", c->why[0] ? c->why : "unknown backend", NULL);
        next_rung(j, "skipped");
        return;
    }
    const struct ig_backend_cfg *b = c->backend;
    struct route_limit_spec bs = route_backend_spec(b);
    char bname[128];
    snprintf(bname, sizeof bname, "backend:%s", b->name);
    if (!j->resume && !route_limits_breaker_allow(gw->limits, bname, &bs, now)) {
        attempt_record(j, "skipped", "circuit breaker open", NULL);
        next_rung(j, "breaker_open");
        return;
    }

    /* Render first: the rendered size decides the price. */
    struct ig_error err = {0};
    render_clear(&j->render);
    if (gw->hooks.render) {
        if (gw->hooks.render(gw->hooks.ud, b, j->req, &j->render, &err) != 0) {
            attempt_record(j, "skipped", err.message, NULL);
            next_rung(j, "render_failed");
            return;
        }
    } else {
        const char *p = jstr(j->req, "prompt"), *neg = jstr(j->req, "negative_prompt");
        j->render.prompt = p ? ig_strdup(p) : NULL;
        j->render.negative_prompt = neg ? ig_strdup(neg) : NULL;
        parse_size_field(j->req, &j->render.width, &j->render.height, &err);
    }
    if (j->has_seed && !j->render.has_seed && (b->contract.caps & IG_CAP_SEED)) {
        j->render.seed = j->seed;
        j->render.has_seed = 1;
    }

    int n = (int)json_integer_value(json_object_get(j->req, "n"));
    if (n < 1)
        n = 1;
    if (!j->resume) {
        int w = j->render.width ? j->render.width : 1024;
        int h = j->render.height ? j->render.height : 1024;
        if (j->input_img && j->cls != IG_CLASS_GENERATE) {
            int scale = (int)json_integer_value(json_object_get(j->req, "scale"));
            w = j->input_img->width * (j->cls == IG_CLASS_UPSCALE && scale > 0 ? scale : 1);
            h = j->input_img->height * (j->cls == IG_CLASS_UPSCALE && scale > 0 ? scale : 1);
        }
        j->reserved_usd = route_price(&b->contract, w, h, jstr(j->req, "quality"), n);
        if (j->reserved_usd > 0) {
            double day = j->tenant ? j->tenant->budget_daily_usd : 0;
            double month = j->tenant ? j->tenant->budget_monthly_usd : 0;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long wall = (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
            if (store_budget_reserve(gw->store, j->tenant_name, j->id, j->attempt_no + 1,
                                     j->reserved_usd, day, month, wall, &j->reservation,
                                     &err) != 0) {
                attempt_record(j, "skipped", err.message, NULL);
                next_rung(j, "budget");
                return;
            }
        }
        long wait = 0;
        char why[256];
        int admitted = limits_admit(j, b, n, &wait, why, sizeof why);
        if (admitted != 1) {
            budget_settle(j, 0, 0);
            if (admitted < 0)
                wait = 500;   /* the shared limits are unreachable: try again shortly */
            if (wait >= 0 && now + wait < j->deadline_ms) {
                post(j, wait > 0 ? wait : 50, job_step);
                return;
            }
            attempt_record(j, "skipped", why, NULL);
            next_rung(j, "rate_limited");
            return;
        }
    }

    j->attempt_no++;
    j->attempt_started_ms = now;
    struct route_attempt a = {
        .backend = b,
        .cls = j->cls,
        .job_id = j->id,
        .attempt = j->attempt_no,
        .prompt = j->render.prompt,
        .negative_prompt = j->render.negative_prompt,
        .width = j->render.width,
        .height = j->render.height,
        .n = n,
        .scale = (int)json_integer_value(json_object_get(j->req, "scale")),
        .seed = j->render.seed,
        .has_seed = j->render.has_seed,
        .quality = jstr(j->req, "quality"),
        .output_format = jstr(j->req, "output_format"),
        .params = j->render.params,
        .vendor_params = json_object_get(j->req, "vendor_params"),
        .input = j->input.len ? j->input.data : NULL,
        .input_len = j->input.len,
        .mask = j->mask.len ? j->mask.data : NULL,
        .mask_len = j->mask.len,
        .deadline_ms = j->deadline_ms,
        .vendor_resume = j->resume,
        .save_vendor = save_vendor,
        .cookie = j,
    };
    /* Durably "an attempt is at the vendor" before it is: after a crash, a
     * job caught in this state is not sent again (it may have run), unless
     * the adapter saved an async vendor job to re-poll. */
    if (store_job_update(gw->store, j->id, STORE_RUNNING, NULL, NULL, &err) < 0)
        store_failed(j, &err);
    atomic_store(&j->running, 1);
    route_outcome_clear(&j->outcome);
    j->resume = NULL;
    if (gw->exec.start(gw->exec.ud, &a, on_done, j, &err) != 0) {
        j->outcome.ok = 0;
        j->outcome.err = err;
        post(j, 0, job_after_attempt);
    }
}

static json_t *
output_entry(struct job *j, const struct route_image *im, int width, int height,
             struct ig_error *err)
{
    char hex[65];
    if (store_blob_put(j->gw->store, im->data, im->len, hex, err) != 0)
        return NULL;
    return json_pack("{s:s,s:s,s:i,s:i,s:I}", "file", hex, "mime", im->mime, "width", width,
                     "height", height, "bytes", (json_int_t)im->len);
}

int
route_license_flag_names(const struct ig_contract *k, const char *names[4])
{
    static const char *const lic[] = {"commercial", "attribution", "copyleft", "noncommercial"};
    int n = 0;
    for (int i = 0; i < 4; i++)
        if (k->license.flags & (1u << i))
            names[n++] = lic[i];
    return n;
}

json_t *
route_license_flags(const struct ig_contract *k)
{
    json_t *flags = json_array();
    const char *names[4];
    int n = route_license_flag_names(k, names);
    for (int i = 0; flags && i < n; i++)
        json_array_append_new(flags, json_string(names[i]));
    return flags;
}

static json_t *
provenance(struct job *j, json_t *scores)
{
    const struct ig_backend_cfg *b = j->cand[j->rung].backend;
    const struct ig_contract *k = &b->contract;
    json_t *flags = route_license_flags(k);
    json_t *adapter = j->outcome.provenance ? json_loads(j->outcome.provenance, 0, NULL) : NULL;
    json_t *p = json_pack("{s:s,s:s,s:s?,s:s,s:b,s:{s:s,s:o},s:s?,s:s?,s:O?,s:o?,s:O?,s:O,s:f}",
                          "backend", b->name, "adapter", b->adapter, "model", b->model, "tier",
                          ig_tier_name(k->tier), "emulated", b->emulated, "license", "id",
                          k->license.id ? k->license.id : "unknown", "flags", flags,
                          "prompt", j->render.prompt, "negative_prompt",
                          j->render.negative_prompt, "notes", j->render.notes, "vendor", adapter,
                          "validation", scores, "attempts", j->attempts, "cost_usd",
                          j->outcome.cost_usd >= 0 ? j->outcome.cost_usd : j->reserved_usd);
    if (p && j->render.has_seed)
        json_object_set_new(p, "seed", json_integer(j->render.seed));
    return p;
}

static void
job_after_attempt(void *arg)
{
    struct job *j = arg;
    struct route_gateway *gw = j->gw;
    struct route_outcome *o = &j->outcome;
    const struct ig_backend_cfg *b = j->cand[j->rung].backend;
    long now = route_now_ms();
    double secs = (double)(now - j->attempt_started_ms) / 1000.0;
    const char *lat_labels[] = {b->name, ig_class_name(j->cls)};
    ig_metric_observe(gw->m_latency, lat_labels, secs);
    limits_release(j);
    char bname[128];
    snprintf(bname, sizeof bname, "backend:%s", b->name);

    const char *blabel[] = {b->name};
    if (!o->ok) {
        int transport = retryable(o->err.code);
        route_limits_breaker_record(gw->limits, bname, !transport, now);
        ig_metric_set(gw->m_breaker, blabel, route_limits_breaker_state(gw->limits, bname));
        attempt_end(j, o->err.code[0] ? o->err.code : "upstream_error", o->err.message,
                    o->retry_after_ms >= 0
                        ? json_pack("{s:I}", "retry_after_ms", (json_int_t)o->retry_after_ms)
                        : NULL,
                    o->vendor_charged, o->cost_usd, 0);
        if (atomic_load(&j->cancelled)) {
            job_finish(j, STORE_CANCELLED, NULL, NULL);
            return;
        }
        const struct ig_rung *rung = j->cand[j->rung].rung;
        /* A backend named directly has no rung: it gets one transport retry. */
        int retries = rung ? rung->retries : 1;
        if (transport && j->retries_used < retries) {
            j->retries_used++;
            pthread_mutex_lock(&gw->mu);
            long delay = route_backoff_ms(j->retries_used, 200, 10000, o->retry_after_ms,
                                          &gw->rng);
            pthread_mutex_unlock(&gw->mu);
            if (now + delay < j->deadline_ms) {
                post(j, delay, job_step);
                return;
            }
        }
        next_rung(j, o->err.code[0] ? o->err.code : "upstream_error");
        return;
    }
    route_limits_breaker_record(gw->limits, bname, 1, now);
    ig_metric_set(gw->m_breaker, blabel, ROUTE_BREAKER_CLOSED);

    /* Decode every output under the limits, then judge it. */
    struct ig_error err = {0};
    json_t *outputs = json_array(), *scores = json_array();
    int pass = o->n_images > 0;
    if (o->n_images == 0)
        ig_error_set(&err, 502, "malformed_response", "the backend answered with no image");
    for (int i = 0; i < o->n_images && pass; i++) {
        struct img *out = NULL;
        struct img_info info;
        if (!gw->cfg->gate.enabled) {
            /* No gate: the output must still be an image within the limits,
             * which its header tells without decoding the pixels. */
            if (img_probe(o->images[i].data, o->images[i].len, &gw->img_limits, &info, &err) != 0) {
                pass = 0;
                break;
            }
        } else {
            out = img_decode(o->images[i].data, o->images[i].len, &gw->img_limits, &err);
            if (!out) {
                pass = 0;
                break;
            }
            info = out->info;
            json_t *report = NULL;
            int ok = 1;
            if (gw->hooks.validate &&
                gw->hooks.validate(gw->hooks.ud, gw->cfg, j->cls, j->req, out, j->input_img,
                                   j->mask_img, &report, &ok, &err) != 0)
                ok = 0;
            img_free(out);
            if (!ok) {
                pass = 0;
                if (!err.code[0])
                    ig_error_set(&err, 502, "validation_failed", "output %d failed validation", i);
                /* Counted per check that failed, so a dashboard shows which
                 * way a backend goes wrong. */
                int counted = 0;
                size_t k;
                json_t *c;
                json_array_foreach(json_object_get(report, "checks"), k, c) {
                    const char *name = json_string_value(json_object_get(c, "name"));
                    if (!name || json_is_true(json_object_get(c, "pass")))
                        continue;
                    const char *labels[] = {b->name, ig_class_name(j->cls), name};
                    ig_metric_add(gw->m_validation, labels, 1);
                    counted = 1;
                }
                if (!counted) {
                    const char *labels[] = {b->name, ig_class_name(j->cls), err.code};
                    ig_metric_add(gw->m_validation, labels, 1);
                }
            }
            if (report)
                json_array_append_new(scores, report);
            if (!ok)
                break;
        }
        json_t *entry = output_entry(j, &o->images[i], info.width, info.height, &err);
        if (!entry)
            pass = 0;
        else
            json_array_append_new(outputs, entry);
    }
    if (!pass) {
        /* The vendor made the image, so the vendor is paid for it. */
        attempt_end(j, err.code[0] ? err.code : "validation_failed", err.message,
                    json_pack("{s:O}", "validation", scores), 1, o->cost_usd, 0);
        json_decref(outputs);
        json_decref(scores);
        if (atomic_load(&j->cancelled)) {
            job_finish(j, STORE_CANCELLED, NULL, NULL);
            return;
        }
        const struct ig_rung *rung = j->cand[j->rung].rung;
        if (rung && j->reseeds_used < rung->reseeds) {
            j->reseeds_used++;
            /* A new seed: the same rung may well pass with another sample. */
            pthread_mutex_lock(&gw->mu);
            j->seed = (long long)(route_backoff_ms(1, 1L << 30, 1L << 30, 0, &gw->rng) & 0x7fffffff);
            pthread_mutex_unlock(&gw->mu);
            j->has_seed = 1;
            post(j, 0, job_step);
            return;
        }
        next_rung(j, "validation_failed");
        return;
    }
    attempt_end(j, "ok", NULL, NULL, 1, o->cost_usd, 1);
    json_t *prov = provenance(j, scores);
    json_t *result = json_pack("{s:s,s:s,s:o,s:o}", "job_id", j->id, "class",
                               ig_class_name(j->cls), "outputs", outputs, "provenance", prov);
    json_decref(scores);
    job_finish(j, STORE_SUCCEEDED, result, NULL);
}

/* ---- Starting jobs ------------------------------------------------------- */

/* A job naming a LoRA adapter runs only where the adapter's base model is
 * served: the file is inspected once, and every other rung is skipped with
 * the reason ("trained on FLUX.1 [dev]; this backend runs FLUX.2 [dev];
 * retrain") instead of failing later as gray noise. */
static int
lora_filter(struct job *j, struct ig_error *err)
{
    const char *hex = jstr(json_object_get(j->req, "lora"), "file");
    if (!hex)
        return 0;
    struct ig_buf file = {0};
    struct lora_st st;
    struct lora_info info;
    memset(&st, 0, sizeof st);
    memset(&info, 0, sizeof info);
    int rc = store_blob_get(j->gw->store, hex, &file, err);
    if (rc == 0)
        rc = lora_st_parse(file.data, file.len, NULL, &st, err);
    if (rc == 0 && (rc = lora_inspect(&st, &info, err)) == 0) {
        for (int i = 0; i < j->n_cand; i++) {
            struct route_candidate *c = &j->cand[i];
            if (!c->usable || !c->backend)
                continue;
            const char *base = c->backend->contract.base_model;
            if (!base) {
                snprintf(c->why, sizeof c->why,
                         "declares no base model, and the job brings a %s LoRA",
                         lora_arch_name(info.arch));
                c->usable = 0;
            } else if (!lora_fits_backend(&info, base, c->why, sizeof c->why)) {
                c->usable = 0;
            }
        }
        lora_info_free(&info);
    }
    lora_st_free(&st);
    ig_buf_free(&file);
    return rc;
}

static struct job *
job_new(struct route_gateway *gw, const char *id, const char *tenant, json_t *req,
        struct ig_error *err)
{
    struct job *j = ig_calloc(1, sizeof *j);
    if (!j) {
        ig_error_set(err, 500, "out_of_memory", "out of memory starting a job");
        return NULL;
    }
    j->gw = gw;
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->tenant_name, sizeof j->tenant_name, "%s", tenant);
    j->tenant = ig_config_tenant(gw->cfg, tenant);
    j->req = json_incref(req);
    j->attempts = json_array();
    route_outcome_clear(&j->outcome);
    j->started_ms = route_now_ms();
    j->deadline_ms = j->started_ms + gw->cfg->limits.job_timeout_ms;
    if (!j->attempts || route_request_class(req, &j->cls, err) != 0)
        goto fail;
    json_t *seed = json_object_get(req, "seed");
    if (json_is_integer(seed)) {
        j->seed = json_integer_value(seed);
        j->has_seed = 1;
    }
    const char *in = jstr(req, "input"), *mask = jstr(req, "mask");
    if (in) {
        if (store_blob_get(gw->store, in, &j->input, err) != 0)
            goto fail;
        j->input_img = img_decode(j->input.data, j->input.len, &gw->img_limits, err);
        if (!j->input_img)
            goto fail;
    }
    if (mask) {
        if (store_blob_get(gw->store, mask, &j->mask, err) != 0)
            goto fail;
        j->mask_img = img_decode(j->mask.data, j->mask.len, &gw->img_limits, err);
        if (!j->mask_img)
            goto fail;
    }
    int w = 0, h = 0;
    parse_size_field(req, &w, &h, err);
    json_t *scale = json_object_get(req, "scale");
    struct route_need need = {
        .cls = j->cls,
        .width = w,
        .height = h,
        .n = (int)json_integer_value(json_object_get(req, "n")),
        .scale = scale ? (int)json_integer_value(scale) : (j->cls == IG_CLASS_UPSCALE ? 2 : 0),
        .quality = jstr(req, "quality"),
        .wants_seed = j->has_seed,
        .wants_negative = jstr(req, "negative_prompt") != NULL,
        .wants_mask = mask != NULL,
        .wants_transparency = json_is_true(json_object_get(req, "transparent")),
        .input_pixels = j->input_img ? (long)j->input_img->width * j->input_img->height : 0,
        .backend = jstr(req, "backend"),
    };
    if (j->cls == IG_CLASS_UPSCALE && !scale)
        json_object_set_new(j->req, "scale", json_integer(need.scale));
    j->n_cand = route_plan(gw->cfg, j->tenant, jstr(req, "ladder"), &need, j->cand,
                           MAX_CANDIDATES, err);
    if (j->n_cand < 0 || lora_filter(j, err) != 0)
        goto fail;
    for (int i = 0; gw->exec.can_run && i < j->n_cand; i++)
        if (j->cand[i].usable && j->cand[i].backend &&
            !gw->exec.can_run(gw->exec.ud, j->cand[i].backend, j->cand[i].why,
                              sizeof j->cand[i].why))
            j->cand[i].usable = 0;
    return j;
fail:
    job_free(j);
    return NULL;
}

static void
active_add(struct route_gateway *gw, struct job *j)
{
    pthread_mutex_lock(&gw->mu);
    j->next = gw->active;
    gw->active = j;
    gw->n_active++;
    ig_metric_set(gw->m_active, NULL, gw->n_active);
    pthread_mutex_unlock(&gw->mu);
}

int
route_gateway_submit(struct route_gateway *gw, const char *tenant, const json_t *request,
                     const char *idem_key, char job_id[40], struct ig_error *err)
{
    if (validate_request(gw, request, err) != 0)
        return -1;
    char *text = json_dumps(request, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    /* The hash of the canonical request tells a retried request from a
     * different one under the same Idempotency-Key. */
    unsigned long long h = 1469598103934665603ull;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", h);
    struct store_job sj = {0};
    snprintf(sj.tenant, sizeof sj.tenant, "%s", tenant);
    enum ig_class cls;
    route_request_class(request, &cls, err);
    snprintf(sj.cls, sizeof sj.cls, "%s", ig_class_name(cls));
    sj.request = text;
    sj.state = STORE_QUEUED;
    snprintf(sj.owner, sizeof sj.owner, "%s", gw->owner);
    sj.lease_ms = LEASE_MS;
    int rc = store_job_create(gw->store, &sj, idem_key, hash, err);
    free(text);
    if (rc < 0)
        return -1;
    snprintf(job_id, 40, "%s", sj.id);
    if (rc == 1)
        return 1;
    json_t *req = json_deep_copy(request);
    struct job *j = req ? job_new(gw, sj.id, tenant, req, err) : NULL;
    json_decref(req);
    if (!j) {
        struct ig_error e2 = *err;
        json_t *eo = json_pack("{s:s,s:s,s:s}", "code", e2.code, "message", e2.message,
                               "job_id", sj.id);
        char *etext = eo ? json_dumps(eo, JSON_COMPACT) : NULL;
        store_job_update(gw->store, sj.id, STORE_FAILED, NULL, etext, &e2);
        free(etext);
        json_decref(eo);
        return -1;
    }
    const char *labels[] = {ig_class_name(j->cls), "accepted"};
    ig_metric_add(gw->m_jobs, labels, 1);
    active_add(gw, j);
    post(j, 0, job_step);
    return 0;
}

static int
job_state(struct route_gateway *gw, const char *id)
{
    struct store_job sj;
    struct ig_error err = {0};
    if (store_job_get(gw->store, id, NULL, &sj, &err) != 0)
        return -1;
    int s = sj.state;
    store_job_clear(&sj);
    return s;
}

int
route_gateway_wait(struct route_gateway *gw, const char *job_id, long timeout_ms)
{
    long until = route_now_ms() + timeout_ms;
    pthread_mutex_lock(&gw->mu);
    for (;;) {
        pthread_mutex_unlock(&gw->mu);
        int s = job_state(gw, job_id);
        pthread_mutex_lock(&gw->mu);
        if (s < 0 || store_state_terminal((enum store_state)s)) {
            pthread_mutex_unlock(&gw->mu);
            return s >= 0;
        }
        long left = until - route_now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long step = left < 100 ? left : 100;   /* re-check the store at least 10 times a second */
        ts.tv_sec += step / 1000;
        ts.tv_nsec += (step % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&gw->done_cv, &gw->mu, &ts);
    }
    pthread_mutex_unlock(&gw->mu);
    return 0;
}

int
route_gateway_cancel(struct route_gateway *gw, const char *job_id, const char *tenant,
                     struct ig_error *err)
{
    struct store_job sj;
    if (store_job_get(gw->store, job_id, tenant, &sj, err) != 0)
        return -1;
    int terminal = store_state_terminal(sj.state);
    store_job_clear(&sj);
    if (terminal)
        return ig_error_set(err, 409, "job_finished", "job %s has already finished", job_id);
    pthread_mutex_lock(&gw->mu);
    for (struct job *j = gw->active; j; j = j->next)
        if (strcmp(j->id, job_id) == 0) {
            atomic_store(&j->cancelled, 1);
            /* Stops the vendor call in flight (and the vendor's job, where
             * it has a cancel), so nothing runs on for a job nobody wants. */
            if (gw->exec.cancel)
                gw->exec.cancel(gw->exec.ud, j);
        }
    pthread_mutex_unlock(&gw->mu);
    /* Terminal in the store at once; the attempt in flight, if any, is
     * settled (and charged if the vendor charged) when it returns. */
    if (store_job_update(gw->store, job_id, STORE_CANCELLED, NULL, NULL, err) < 0)
        return -1;
    if (gw->listener)
        gw->listener(gw->listener_ud, job_id);
    pthread_mutex_lock(&gw->mu);
    pthread_cond_broadcast(&gw->done_cv);
    pthread_mutex_unlock(&gw->mu);
    return 0;
}

void
route_gateway_set_limits(struct route_gateway *gw, struct route_limits *limits)
{
    route_limits_free(gw->limits);
    gw->limits = limits;
}

void
route_gateway_set_listener(struct route_gateway *gw, void (*fn)(void *ud, const char *job_id),
                           void *ud)
{
    gw->listener = fn;
    gw->listener_ud = ud;
}

struct recover_ctx {
    struct route_gateway *gw;
    int resumed, failed;
};

static void
recover_one(const struct store_job *sj, void *ud)
{
    struct recover_ctx *rc = ud;
    struct ig_error err = {0};
    json_t *req = sj->request ? json_loads(sj->request, 0, NULL) : NULL;
    struct job *j = req ? job_new(rc->gw, sj->id, sj->tenant, req, &err) : NULL;
    json_decref(req);
    if (!j) {
        rc->failed++;
        return;
    }
    j->attempt_no = sj->attempts;
    json_t *vendor = sj->vendor ? json_loads(sj->vendor, 0, NULL) : NULL;
    if (sj->state == STORE_RUNNING && !vendor) {
        /* A synchronous call was at the vendor when the process died: the
         * vendor may have run it and charged for it, and nothing can fetch
         * its answer. It is charged, and not run a second time. */
        struct ig_error err3 = {0};
        if (store_budget_close_job(rc->gw->store, sj->id, 0, &err3) != 0)
            ig_log(IG_LOG_ERROR, "ledger_failed",
                   json_pack("{s:s,s:s}", "job_id", sj->id, "error", err3.message));
        active_add(rc->gw, j);
        j->attempt_no++;
        attempt_record(j, "lost_in_crash",
                       "the gateway stopped while this attempt was at the vendor", NULL);
        rc->failed++;
        job_fail(j, 502, "lost_in_crash",
                 "the gateway stopped while the vendor was working on this job; it is not sent "
                 "again, since the vendor may have run it");
        return;
    }
    if (vendor) {
        /* Resume the same rung with the vendor's own job id, and keep the
         * reservation made before the crash rather than reserving again. */
        j->rung = (int)json_integer_value(json_object_get(vendor, "rung"));
        j->reservation = json_integer_value(json_object_get(vendor, "reservation"));
        j->reserved_usd = json_real_value(json_object_get(vendor, "reserved_usd"));
        json_t *v = json_object_get(vendor, "vendor");
        j->resume_buf = v ? json_dumps(v, JSON_COMPACT) : NULL;
        j->resume = j->resume_buf;
        if (j->rung < 0 || j->rung >= j->n_cand)
            j->rung = 0;
        json_decref(vendor);
    }
    struct ig_error err2 = {0};
    if (store_budget_close_job(rc->gw->store, sj->id, j->reservation, &err2) != 0)
        ig_log(IG_LOG_ERROR, "ledger_failed",
               json_pack("{s:s,s:s}", "job_id", sj->id, "error", err2.message));
    active_add(rc->gw, j);
    rc->resumed++;
    post(j, 0, job_step);
}

struct collected {
    struct store_job *items;
    size_t n, cap;
};

static void
collect(const struct store_job *sj, void *ud)
{
    struct collected *c = ud;
    void *items = c->items;
    if (ig_grow(&items, &c->cap, c->n + 1, sizeof *c->items) != 0)
        return;
    c->items = items;
    struct store_job *d = &c->items[c->n];
    *d = *sj;
    d->request = sj->request ? ig_strdup(sj->request) : NULL;
    d->vendor = sj->vendor ? ig_strdup(sj->vendor) : NULL;
    d->result = d->error = NULL;
    c->n++;
}

/* Jobs already in memory here are not claimed twice. */
static int
is_active(struct route_gateway *gw, const char *id)
{
    int found = 0;
    pthread_mutex_lock(&gw->mu);
    for (struct job *j = gw->active; j && !found; j = j->next)
        found = strcmp(j->id, id) == 0;
    pthread_mutex_unlock(&gw->mu);
    return found;
}

static int
claim(struct route_gateway *gw, int force, struct ig_error *err)
{
    struct recover_ctx rc = {.gw = gw};
    /* Collect first: the store calls back under its lock, and starting a job
     * writes to the store. */
    struct collected c = {0};
    if (store_jobs_claim(gw->store, gw->owner, LEASE_MS, force, collect, &c, err) != 0)
        return -1;
    for (size_t i = 0; i < c.n; i++) {
        if (!is_active(gw, c.items[i].id))
            recover_one(&c.items[i], &rc);
        store_job_clear(&c.items[i]);
    }
    ig_free(c.items);
    if (rc.resumed || rc.failed)
        ig_log(IG_LOG_INFO, "jobs_claimed",
               json_pack("{s:s,s:i,s:i}", "owner", gw->owner, "resumed", rc.resumed, "failed",
                         rc.failed));
    return rc.resumed;
}

/* Every LEASE_MS / 3: renew this replica's leases, and take over the jobs of
 * replicas whose leases ran out. */
/* Sets the remaining-budget gauge of every tenant with a ceiling, from the
 * ledger (what every replica committed or reserved). */
static void
budget_gauges(struct route_gateway *gw)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    long day_ms = (long)timegm(&tm) * 1000;
    tm.tm_mday = 1;
    long month_ms = (long)timegm(&tm) * 1000;
    for (size_t i = 0; i < gw->cfg->n_tenants; i++) {
        const struct ig_tenant_cfg *t = &gw->cfg->tenants[i];
        const struct {
            const char *period;
            double cap;
            long since;
        } p[] = {{"day", t->budget_daily_usd, day_ms}, {"month", t->budget_monthly_usd, month_ms}};
        for (int k = 0; k < 2; k++) {
            double spent = 0;
            struct ig_error err = {0};
            if (p[k].cap <= 0 || store_budget_spent(gw->store, t->name, p[k].since, &spent, &err) != 0)
                continue;
            const char *labels[] = {t->name, p[k].period};
            ig_metric_set(gw->m_budget, labels, p[k].cap - spent);
        }
    }
}

static void
lease_tick(void *arg)
{
    struct route_gateway *gw = arg;
    struct ig_error err = {0};
    budget_gauges(gw);
    if (store_lease_renew(gw->store, gw->owner, LEASE_MS, &err) != 0)
        ig_log(IG_LOG_WARN, "lease_renew_failed", json_pack("{s:s}", "error", err.message));
    else if (strcmp(store_kind(gw->store), "sqlite") != 0 && claim(gw, 0, &err) < 0)
        ig_log(IG_LOG_WARN, "claim_failed", json_pack("{s:s}", "error", err.message));
    route_sched_post(gw->sched, LEASE_MS / 3, lease_tick, gw);
}

int
route_gateway_recover(struct route_gateway *gw, struct ig_error *err)
{
    /* A SQLite store has one process: every unfinished job is ours now. A
     * shared store hands over only jobs whose owner stopped renewing. */
    int force = strcmp(store_kind(gw->store), "sqlite") == 0;
    int n = claim(gw, force, err);
    if (n >= 0 && !gw->lease_ticking) {
        gw->lease_ticking = 1;
        budget_gauges(gw);
        route_sched_post(gw->sched, LEASE_MS / 3, lease_tick, gw);
    }
    return n;
}

int
route_gateway_running(struct route_gateway *gw, const char *job_id)
{
    int running = 0;
    pthread_mutex_lock(&gw->mu);
    for (struct job *j = gw->active; j && !running; j = j->next)
        running = strcmp(j->id, job_id) == 0 && atomic_load(&j->running);
    pthread_mutex_unlock(&gw->mu);
    return running;
}

int
route_gateway_active(struct route_gateway *gw)
{
    pthread_mutex_lock(&gw->mu);
    int n = gw->n_active;
    pthread_mutex_unlock(&gw->mu);
    return n;
}

/* ---- Lifecycle ------------------------------------------------------------ */

static void
declare_metrics(struct route_gateway *gw, struct ig_metrics *m)
{
    static const char *const class_state[] = {"class", "state", NULL};
    static const char *const backend_outcome[] = {"backend", "outcome", NULL};
    static const char *const backend_class[] = {"backend", "class", NULL};
    static const char *const backend_reason[] = {"backend", "reason", NULL};
    static const char *const backend_tenant[] = {"backend", "tenant", NULL};
    gw->m_jobs = ig_metric_declare(m, "imagegate_jobs_total", "Jobs by class and final state",
                                   IG_COUNTER, class_state, NULL, 0);
    gw->m_attempts = ig_metric_declare(m, "imagegate_attempts_total",
                                       "Attempts by backend and outcome", IG_COUNTER,
                                       backend_outcome, NULL, 0);
    gw->m_latency = ig_metric_declare(m, "imagegate_attempt_seconds",
                                      "Latency of backend attempts", IG_HISTOGRAM, backend_class,
                                      NULL, 0);
    static const char *const backend_class_check[] = {"backend", "class", "check", NULL};
    gw->m_validation = ig_metric_declare(m, "imagegate_validation_failures_total",
                                         "Checks the validation gate failed, per output refused",
                                         IG_COUNTER, backend_class_check, NULL, 0);
    gw->m_fallbacks = ig_metric_declare(m, "imagegate_fallbacks_total",
                                        "Moves to the next rung, by the rung left and why",
                                        IG_COUNTER, backend_reason, NULL, 0);
    gw->m_cost = ig_metric_declare(m, "imagegate_cost_usd_total", "Committed spend in USD",
                                   IG_COUNTER, backend_tenant, NULL, 0);
    static const char *const tenant_period[] = {"tenant", "period", NULL};
    gw->m_budget = ig_metric_declare(m, "imagegate_budget_remaining_usd",
                                     "Budget left under each tenant's ceiling (every replica's "
                                     "spend), refreshed every few seconds",
                                     IG_GAUGE, tenant_period, NULL, 0);
    gw->m_active = ig_metric_declare(m, "imagegate_jobs_active", "Jobs in memory", IG_GAUGE,
                                     NULL, NULL, 0);
    static const char *const backend_only[] = {"backend", NULL};
    gw->m_breaker = ig_metric_declare(m, "imagegate_breaker_state",
                                      "Circuit breaker per backend: 0 closed, 1 open, 2 half-open",
                                      IG_GAUGE, backend_only, NULL, 0);
    static const char *const outcome[] = {"outcome", NULL};
    gw->m_webhooks = ig_metric_declare(m, "imagegate_webhooks_total", "Webhook deliveries",
                                       IG_COUNTER, outcome, NULL, 0);
}

struct route_gateway *
route_gateway_new(const struct ig_config *cfg, struct store *st, struct ig_metrics *metrics,
                  const struct route_executor *exec, const struct route_hooks *hooks,
                  int threads, struct ig_error *err)
{
    struct route_gateway *gw = ig_calloc(1, sizeof *gw);
    if (!gw) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    if (store_new_id(gw->owner, "gw") != 0) {
        ig_error_set(err, 500, "random", "no randomness for a replica id");
        ig_free(gw);
        return NULL;
    }
    gw->cfg = cfg;
    gw->store = st;
    gw->exec = *exec;
    if (hooks)
        gw->hooks = *hooks;
    img_limits_from_config(&gw->img_limits, &cfg->limits);
    pthread_mutex_init(&gw->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&gw->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gw->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)gw;
    declare_metrics(gw, metrics);
    gw->limits = route_limits_new();
    gw->sched = gw->limits ? route_sched_new(threads, err) : NULL;
    if (!gw->sched) {
        if (!gw->limits)
            ig_error_set(err, 500, "out_of_memory", "out of memory");
        route_gateway_free(gw);
        return NULL;
    }
    if (route_relay_heads(gw, err) != 0) {
        route_gateway_free(gw);
        return NULL;
    }
    return gw;
}

void
route_gateway_free(struct route_gateway *gw)
{
    if (!gw)
        return;
    route_relay_free(gw);
    route_sched_free(gw->sched);
    /* Jobs still in memory are queued or running in the store; the next
     * process resumes them. */
    for (struct job *j = gw->active, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    route_limits_free(gw->limits);
    pthread_cond_destroy(&gw->done_cv);
    pthread_mutex_destroy(&gw->mu);
    ig_free(gw);
}
