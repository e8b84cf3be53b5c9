/* SPDX-License-Identifier: MIT */
/* relay.c -- the relay: a request in the vendor's own dialect, sent on.
 *
 * What the relay is, and when it is taken, is in gateway.h. How it runs:
 *
 *   caller's thread   plan, breaker, limits, a job id, the adapter started
 *   adapter's loop    the vendor answers; limits released, breaker and
 *                     metrics recorded, the answer's images probed (header
 *                     only) -- the record is queued to the journal
 *   journal thread    every queued record in one store call, then each
 *                     caller's done
 *
 * The journal is group commit: one thread writes whatever has queued while
 * it wrote the last batch, so under load a call carries tens of records
 * and the store costs little per request, while an idle gateway still
 * writes each record at once. An HTTP thread that drives its own adapter
 * loop keeps its own journal instead (route_relay_own_journal): the call,
 * the record and the answer then all happen on that thread, and what one
 * pass of its loop finished is written in one store call (with SQLite, one
 * append to the store's record journal, src/store/journal.c). A relay's
 * answer never leaves before its record is written. Images are not
 * stored (the client has them in the answer); the record keeps the
 * provenance and the cost. */
#include "backends/backend.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "route/internal.h"
#include "route/limit.h"
#include "route/route.h"
#include "route/sched.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct relay {
    struct route_gateway *gw;
    const struct ig_backend_cfg *backend;
    const struct relay_head *head;        /* the backend's, from route_relay_heads */
    const struct ig_tenant_cfg *tenant;   /* NULL: a config without tenants */
    char tenant_name[64];
    int more_rungs;                   /* a later rung could serve the request */
    double price;
    long started_ms, started_wall_ms;
    int n;
    char holder[64];
    void (*done)(void *cookie, struct route_relay_result *res);
    void *cookie;
    struct route_relay_result res;
    /* the record */
    char *result, *error, *detail;
    const char *outcome;
    struct relay *next;               /* on the journal's queue */
};

/* A thread's own journal (route_relay_own_journal): records waiting for
 * its next route_relay_flush. tl_tail is set only on such a thread. */
static __thread struct relay *tl_head, **tl_tail;

struct route_journal {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct relay *head, **tail;
    int stopping;
};

void
route_relay_result_clear(struct route_relay_result *r)
{
    ig_buf_free(&r->answer);
    ig_free(r->provenance);
    memset(r, 0, sizeof *r);
}

static long
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
relay_free(struct relay *rl)
{
    route_relay_result_clear(&rl->res);
    ig_free(rl->result);
    ig_free(rl->error);
    ig_free(rl->detail);
    ig_free(rl);
}

/* ---- The journal ------------------------------------------------------------ */

static void
write_batch(struct route_gateway *gw, struct relay *batch)
{
    size_t n = 0;
    for (struct relay *rl = batch; rl; rl = rl->next)
        n++;
    struct store_record *rows = ig_calloc(n, sizeof *rows);
    struct ig_error err = {0};
    int rc = -1;
    if (rows) {
        size_t i = 0;
        for (struct relay *rl = batch; rl; rl = rl->next, i++)
            rows[i] = (struct store_record){
                .id = rl->res.job_id,
                .tenant = rl->tenant_name,
                .cls = "generate",
                .state = rl->res.ok ? STORE_SUCCEEDED : STORE_FAILED,
                .request = "{\"class\":\"generate\",\"relay\":true}",
                .result = rl->result,
                .error = rl->error,
                .backend = rl->backend->name,
                .outcome = rl->outcome,
                .detail = rl->detail,
                .usd = rl->res.ok ? rl->res.cost_usd : 0,
                .started_ms = rl->started_wall_ms,
            };
        rc = store_jobs_record(gw->store, rows, n, &err);
        ig_free(rows);
    } else {
        ig_error_set(&err, 500, "out_of_memory", "out of memory");
    }
    for (struct relay *rl = batch, *next; rl; rl = next) {
        next = rl->next;
        /* An answer whose record could not be written is not given: the
         * request fails as a whole, as a durable one would. */
        if (rc != 0 && (rl->res.ok || rl->res.fallback)) {
            ig_buf_free(&rl->res.answer);
            rl->res.ok = rl->res.fallback = 0;
            rl->res.err = err;
        }
        rl->done(rl->cookie, &rl->res);
        memset(&rl->res, 0, sizeof rl->res);
        relay_free(rl);
    }
}

static void *
journal_main(void *arg)
{
    pthread_setname_np(pthread_self(), "ig-journal");
    struct route_gateway *gw = arg;
    struct route_journal *jn = gw->journal;
    pthread_mutex_lock(&jn->mu);
    for (;;) {
        while (!jn->head && !jn->stopping)
            pthread_cond_wait(&jn->cv, &jn->mu);
        if (!jn->head)
            break;
        struct relay *batch = jn->head;
        jn->head = NULL;
        jn->tail = &jn->head;
        pthread_mutex_unlock(&jn->mu);
        write_batch(gw, batch);
        pthread_mutex_lock(&jn->mu);
    }
    pthread_mutex_unlock(&jn->mu);
    return NULL;
}

static int
journal_start(struct route_gateway *gw, struct ig_error *err)
{
    pthread_mutex_lock(&gw->mu);
    int rc = 0;
    if (!gw->journal) {
        struct route_journal *jn = ig_calloc(1, sizeof *jn);
        if (!jn) {
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
        } else {
            pthread_mutex_init(&jn->mu, NULL);
            pthread_cond_init(&jn->cv, NULL);
            jn->tail = &jn->head;
            gw->journal = jn;
            if (pthread_create(&jn->thread, NULL, journal_main, gw) != 0) {
                gw->journal = NULL;
                pthread_cond_destroy(&jn->cv);
                pthread_mutex_destroy(&jn->mu);
                ig_free(jn);
                rc = ig_error_set(err, 500, "threads", "cannot start the relay journal");
            }
        }
    }
    pthread_mutex_unlock(&gw->mu);
    return rc;
}

void
route_relay_own_journal(void)
{
    tl_head = NULL;
    tl_tail = &tl_head;
}

int
route_relay_flush(void)
{
    if (!tl_head)
        return 0;
    struct relay *list = tl_head;
    tl_head = NULL;
    tl_tail = &tl_head;
    /* One store call per gateway (a process normally has one). */
    while (list) {
        struct route_gateway *gw = list->gw;
        struct relay *batch = NULL, **bt = &batch;
        for (struct relay **p = &list; *p;) {
            struct relay *rl = *p;
            if (rl->gw == gw) {
                *p = rl->next;
                rl->next = NULL;
                *bt = rl;
                bt = &rl->next;
            } else {
                p = &rl->next;
            }
        }
        write_batch(gw, batch);
    }
    return 1;
}

static void
journal_push(struct route_gateway *gw, struct relay *rl)
{
    if (tl_tail) {
        rl->next = NULL;
        *tl_tail = rl;
        tl_tail = &rl->next;
        return;
    }
    struct ig_error err = {0};
    if (journal_start(gw, &err) != 0) {
        /* No journal thread to be had: the record is written here. */
        rl->next = NULL;
        write_batch(gw, rl);
        return;
    }
    struct route_journal *jn = gw->journal;
    pthread_mutex_lock(&jn->mu);
    rl->next = NULL;
    *jn->tail = rl;
    jn->tail = &rl->next;
    pthread_cond_signal(&jn->cv);
    pthread_mutex_unlock(&jn->mu);
}

/* What the relay writes the same for every request to a backend, written
 * once when the gateway starts (the config does not change under it). */
struct relay_head {
    char *text;                 /* the provenance's first fields: write_head */
    char license[192];          /* the X-Imagegate-License header: license_header */
};

void
route_relay_free(struct route_gateway *gw)
{
    for (size_t i = 0; gw->relay_heads && i < gw->cfg->n_backends; i++)
        ig_free(gw->relay_heads[i].text);
    ig_free(gw->relay_heads);
    gw->relay_heads = NULL;
    struct route_journal *jn = gw->journal;
    if (!jn)
        return;
    pthread_mutex_lock(&jn->mu);
    jn->stopping = 1;
    pthread_cond_signal(&jn->cv);
    pthread_mutex_unlock(&jn->mu);
    pthread_join(jn->thread, NULL);
    pthread_cond_destroy(&jn->cv);
    pthread_mutex_destroy(&jn->mu);
    ig_free(jn);
    gw->journal = NULL;
}

/* ---- The call ------------------------------------------------------------------ */

static int
vendor_fault(const char *code)
{
    return strcmp(code, "upstream_error") == 0 || strcmp(code, "timeout") == 0 ||
           strcmp(code, "malformed_response") == 0;
}

/* Rebuilds an OpenAI-shaped answer from the images, for a vendor whose
 * images had to be downloaded (the answer it sent held only URLs that
 * expire). */
static int
answer_from_images(struct route_outcome *o, struct ig_buf *out)
{
    json_t *data = json_array();
    for (int i = 0; data && i < o->n_images; i++) {
        struct ig_buf b64 = {0};
        if (be_base64_encode(o->images[i].data, o->images[i].len, &b64) != 0) {
            ig_buf_free(&b64);
            json_decref(data);
            return -1;
        }
        json_array_append_new(data, json_pack("{s:s}", "b64_json", b64.data));
        ig_buf_free(&b64);
    }
    json_t *body = data ? json_pack("{s:I,s:o}", "created", (json_int_t)time(NULL), "data", data)
                        : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int rc = text ? ig_buf_puts(out, text) : -1;
    free(text);
    return rc;
}

/* An image's whole size: a relayed PNG's data is only its head. */
static size_t
image_bytes(const struct route_image *im)
{
    return im->size ? im->size : im->len;
}

/* "id; flag,flag" for the X-Imagegate-License header. */
static void
license_header(const struct ig_contract *k, char *out, size_t size)
{
    const char *names[4];
    int n = route_license_flag_names(k, names);
    size_t len = ig_sjoin(out, size, k->license.id ? k->license.id : "unknown", ";");
    for (int i = 0; i < n; i++)
        len += ig_sjoin(out + len, size - len, i ? "," : " ", names[i]);
}

/* The start of the relay's provenance: the backend's own fields, the same
 * for every request to it. */
static void
write_head(const struct ig_backend_cfg *bk, struct ig_jw *w)
{
    const struct ig_contract *k = &bk->contract;
    const char *names[4];
    int nf = route_license_flag_names(k, names);
    ig_jw_raw(w, "{\"backend\":");
    ig_jw_str(w, bk->name);
    ig_jw_raw(w, ",\"adapter\":");
    ig_jw_str(w, bk->adapter);
    if (bk->model) {
        ig_jw_raw(w, ",\"model\":");
        ig_jw_str(w, bk->model);
    }
    ig_jw_raw(w, ",\"tier\":");
    ig_jw_str(w, ig_tier_name(k->tier));
    ig_jw_raw(w, bk->emulated ? ",\"emulated\":true,\"license\":{" : ",\"emulated\":false,\"license\":{");
    if (k->license.id) {
        ig_jw_raw(w, "\"id\":");
        ig_jw_str(w, k->license.id);
        ig_jw_raw(w, ",");
    }
    ig_jw_raw(w, "\"flags\":[");
    for (int i = 0; i < nf; i++) {
        if (i)
            ig_jw_raw(w, ",");
        ig_jw_str(w, names[i]);
    }
    ig_jw_raw(w, "]}");
}

int
route_relay_heads(struct route_gateway *gw, struct ig_error *err)
{
    size_t n = gw->cfg->n_backends;
    gw->relay_heads = ig_calloc(n ? n : 1, sizeof *gw->relay_heads);
    if (!gw->relay_heads)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct ig_backend_cfg *bk = &gw->cfg->backends[i];
        struct ig_buf b = {0};
        struct ig_jw w = {.b = &b};
        write_head(bk, &w);
        if (ig_jw_end(&w) != 0) {
            ig_buf_free(&b);
            return ig_error_set(err, 500, "out_of_memory", "out of memory");
        }
        gw->relay_heads[i].text = ig_buf_steal(&b, NULL);
        license_header(&bk->contract, gw->relay_heads[i].license,
                       sizeof gw->relay_heads[i].license);
    }
    return 0;
}

/* The backend's head; NULL for a backend that is not one of the config's
 * (plans take them from it, so never: the relay then declines). */
static const struct relay_head *
head_of(const struct route_gateway *gw, const struct ig_backend_cfg *bk)
{
    const struct ig_config *cfg = gw->cfg;
    if (!gw->relay_heads || bk < cfg->backends || bk >= cfg->backends + cfg->n_backends)
        return NULL;
    return &gw->relay_heads[bk - cfg->backends];
}

/* The relay's provenance, the same fields the engine writes for a job,
 * written as text: the relay's whole budget per request is a few tens of
 * microseconds, and building, dumping and re-parsing jansson trees was a
 * fifth of it. The adapter's part is already JSON text and goes in as it is. */
static int
provenance_text(const struct relay *rl, const struct route_outcome *o, int ok, const char *code,
                const struct ig_error *err, struct ig_buf *b)
{
    const struct ig_backend_cfg *bk = rl->backend;
    struct ig_jw w = {.b = b};
    ig_jw_raw(&w, rl->head->text);
    if (o->provenance) {
        ig_jw_raw(&w, ",\"vendor\":");
        ig_jw_raw(&w, o->provenance);
    }
    ig_jw_raw(&w, ",\"relay\":true,\"cost_usd\":");
    ig_jw_real(&w, rl->res.ok ? rl->res.cost_usd : 0.0);
    ig_jw_raw(&w, ",\"attempts\":[{\"attempt\":1,\"backend\":");
    ig_jw_str(&w, bk->name);
    ig_jw_raw(&w, ",\"outcome\":");
    ig_jw_str(&w, code);
    if (!ok) {
        ig_jw_raw(&w, ",\"message\":");
        ig_jw_str(&w, err->message);
    }
    ig_jw_raw(&w, "}]}");
    return ig_jw_end(&w);
}

/* The job's record: its outputs and provenance, or its error. */
static int
record_text(const struct relay *rl, const struct route_outcome *o, const char *prov,
            const struct ig_error *err, struct ig_buf *b)
{
    struct ig_jw w = {.b = b};
    if (rl->res.ok) {
        ig_jw_raw(&w, "{\"outputs\":[{\"mime\":");
        ig_jw_str(&w, o->images[0].mime);
        char bytes[IG_INT_TEXT];
        ig_fmt_ull(bytes, image_bytes(&o->images[0]));
        ig_jw_raw(&w, ",\"bytes\":");
        ig_jw_raw(&w, bytes);
        ig_jw_raw(&w, "}],\"provenance\":");
        ig_jw_raw(&w, prov);
        ig_jw_raw(&w, "}");
    } else {
        ig_jw_raw(&w, "{\"code\":");
        ig_jw_str(&w, err->code);
        ig_jw_raw(&w, ",\"message\":");
        ig_jw_str(&w, err->message);
        ig_jw_raw(&w, "}");
    }
    return ig_jw_end(&w);
}

static void
on_outcome(void *cookie, struct route_outcome *o)
{
    struct relay *rl = cookie;
    struct route_gateway *gw = rl->gw;
    const char *bname = rl->backend->name;
    route_release(gw, rl->tenant_name, bname, rl->holder);
    long now = route_now_ms();

    /* The output must be an image within the limits; the header says so
     * without decoding a pixel, as on the durable path with the gate off. */
    struct ig_error err = o->err;
    int ok = o->ok;
    for (int i = 0; ok && i < o->n_images; i++) {
        struct img_info info;
        size_t whole = image_bytes(&o->images[i]);
        if (gw->img_limits.max_input_bytes > 0 && (long)whole > gw->img_limits.max_input_bytes) {
            ok = 0;
            ig_error_set(&err, 413, "image_too_large", "the backend's image is %zu bytes, over %ld",
                         whole, gw->img_limits.max_input_bytes);
        } else if (img_probe(o->images[i].data, o->images[i].len, &gw->img_limits, &info,
                             &err) != 0) {
            ok = 0;
        }
    }
    if (ok && o->n_images == 0) {
        ok = 0;
        ig_error_set(&err, 502, "malformed_response", "the backend answered with no image");
    }
    char snapshot_code[48];
    ig_scopy(snapshot_code, sizeof snapshot_code, ok ? "ok" : err.code);
    char lname[128];
    ig_sjoin(lname, sizeof lname, "backend:", bname);
    route_limits_breaker_record(gw->limits, lname, ok || !vendor_fault(err.code), now);
    const char *att_labels[] = {bname, snapshot_code};
    ig_metric_add(gw->m_attempts, att_labels, 1);
    const char *lat_labels[] = {bname, "generate"};
    ig_metric_observe(gw->m_latency, lat_labels, (double)(now - rl->started_ms) / 1000.0);

    rl->res.backend = rl->backend;
    if (ok) {
        rl->res.ok = 1;
        rl->res.cost_usd = o->cost_usd >= 0 ? o->cost_usd : rl->price;
        if (rl->res.cost_usd > 0) {
            const char *cost_labels[] = {bname, rl->tenant_name};
            ig_metric_add(gw->m_cost, cost_labels, rl->res.cost_usd);
        }
        struct ig_buf *raw = &o->raw;
        if (raw->len) {
            rl->res.answer = *raw;
            memset(raw, 0, sizeof *raw);
            ig_scopy(rl->res.content_type, sizeof rl->res.content_type,
                     o->raw_type[0] ? o->raw_type : "application/json");
        } else if (answer_from_images(o, &rl->res.answer) == 0) {
            ig_scopy(rl->res.content_type, sizeof rl->res.content_type, "application/json");
        } else {
            rl->res.ok = 0;
            ig_error_set(&rl->res.err, 500, "out_of_memory", "out of memory");
        }
    } else if (rl->more_rungs || vendor_fault(err.code) || strcmp(err.code, "rate_limited") == 0) {
        /* What the engine would mend -- a retry, the next rung -- it mends. */
        rl->res.fallback = 1;
        rl->res.err = err;
    } else {
        rl->res.err = err;
    }
    ig_scopy(rl->res.license, sizeof rl->res.license, rl->head->license);
    struct ig_buf prov = {0}, rec = {0};
    int built = provenance_text(rl, o, ok, snapshot_code, &err, &prov) == 0 &&
                record_text(rl, o, prov.data, &err, &rec) == 0;
    if (built) {
        rl->res.provenance = ig_buf_steal(&prov, NULL);
        if (rl->res.ok)
            rl->result = ig_buf_steal(&rec, NULL);
        else
            rl->error = ig_buf_steal(&rec, NULL);
    }
    ig_buf_free(&prov);
    ig_buf_free(&rec);
    rl->outcome = rl->res.ok ? "ok" : rl->res.fallback ? "relay_fallback" : "failed";
    rl->detail = ok ? NULL : ig_strdup(err.message);
    const char *job_labels[] = {"generate", rl->res.ok ? "succeeded" : "failed"};
    if (!rl->res.fallback)
        ig_metric_add(gw->m_jobs, job_labels, 1);
    route_outcome_clear(o);
    journal_push(gw, rl);
}

int
route_gateway_relay(struct route_gateway *gw, const struct route_relay *rr,
                    void (*done)(void *cookie, struct route_relay_result *res), void *cookie,
                    struct ig_error *err)
{
    const struct ig_config *cfg = gw->cfg;
    if (cfg->server.relay_off || cfg->gate.enabled || !gw->exec.can_relay)
        return 0;
    const struct ig_tenant_cfg *tenant = ig_config_tenant(cfg, rr->tenant);
    const char *ladder = rr->target && ig_config_ladder_named(cfg, rr->target) ? rr->target : NULL;
    struct route_need need = {
        .cls = IG_CLASS_GENERATE,
        .width = rr->width,
        .height = rr->height,
        .n = rr->n > 0 ? rr->n : 1,
        .quality = rr->quality,
        .backend = ladder ? NULL : rr->target,
    };
    struct route_candidate cand[16];
    struct ig_error perr = {0};
    int nc = route_plan(cfg, tenant, ladder, &need, cand, 16, &perr);
    int first = -1, more = 0;
    for (int i = 0; i < nc; i++) {
        if (!cand[i].usable || !cand[i].backend)
            continue;
        if (first < 0)
            first = i;
        else
            more = 1;
    }
    if (first < 0)
        return 0;   /* the durable path says why nothing can serve it */
    const struct ig_backend_cfg *b = cand[first].backend;
    const struct relay_head *head = head_of(gw, b);
    char why[256];
    if (!head || !gw->exec.can_relay(gw->exec.ud, b) ||
        (gw->exec.can_run && !gw->exec.can_run(gw->exec.ud, b, why, sizeof why)))
        return 0;
    /* The relay reserves nothing: only where there is nothing to reserve. */
    double price = route_price(&b->contract, rr->width, rr->height, rr->quality, need.n);
    if (price > 0 && tenant && (tenant->budget_daily_usd > 0 || tenant->budget_monthly_usd > 0))
        return 0;
    long now = route_now_ms();
    char bname[128];
    ig_sjoin(bname, sizeof bname, "backend:", b->name);
    struct route_limit_spec bs = route_backend_spec(b);
    if (!route_limits_breaker_allow(gw->limits, bname, &bs, now))
        return 0;
    struct relay *rl = ig_calloc(1, sizeof *rl);
    if (!rl)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    if (store_new_id(rl->res.job_id, "job") != 0) {
        ig_free(rl);
        return ig_error_set(err, 500, "random", "no randomness for a job id");
    }
    ig_sjoin(rl->holder, sizeof rl->holder, rl->res.job_id, "/1");
    long wait_ms = 0;
    if (route_admit(gw, rr->tenant, tenant, b, need.n, rl->holder, &wait_ms, why, sizeof why) !=
        1) {
        ig_free(rl);
        return 0;   /* the engine waits its turn properly */
    }
    rl->gw = gw;
    rl->backend = b;
    rl->head = head;
    rl->tenant = tenant;
    ig_scopy(rl->tenant_name, sizeof rl->tenant_name, rr->tenant);
    rl->more_rungs = more;
    rl->price = price;
    rl->n = need.n;
    rl->started_ms = now;
    rl->started_wall_ms = wall_ms();
    rl->done = done;
    rl->cookie = cookie;
    struct route_attempt a = {
        .backend = b,
        .cls = IG_CLASS_GENERATE,
        .job_id = rl->res.job_id,
        .attempt = 1,
        .width = rr->width,
        .height = rr->height,
        .n = need.n,
        .quality = rr->quality,
        .deadline_ms = now + cfg->limits.job_timeout_ms,
        .relay_body = rr->body,
        .relay_len = rr->len,
        .relay_model_off = rr->model_off,
        .relay_model_len = rr->model_len,
    };
    if (gw->exec.start(gw->exec.ud, &a, on_outcome, rl, err) != 0) {
        route_release(gw, rr->tenant, b->name, rl->holder);
        ig_free(rl);
        return -1;
    }
    return 1;
}
