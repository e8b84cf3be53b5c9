/* SPDX-License-Identifier: MIT */
/* exec.c -- route_attempt -> adapter call -> route_outcome.
 *
 * Vendor adapters run on the adapters' I/O loop. Local backends are
 * CPU-bound and run on a worker of their own: one job at a time, since each
 * model already spreads one job over every core, and two at once would only
 * fight for the cores and double the memory. */
#include "route/exec.h"
#include "backends/local/local.h"
#include "core/alloc.h"
#include "route/sched.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct exec_ctx {
    struct be_loop *loop;
    const struct ig_config *cfg;
    struct img_limits img_limits;
    struct route_sched *local;        /* created with the first local job */
    int stopped;
    struct pending *calls;            /* vendor calls in flight, for cancel */
    unsigned long long next_tag;
    pthread_mutex_t mu;
};

struct pending {
    struct exec_ctx *x;
    struct be_loop *loop;             /* the loop the vendor call runs on */
    struct pending *next;             /* on x->calls while a vendor call runs */
    route_done_fn done;
    void *cookie;
    void (*save)(void *cookie, const char *json);
    /* a local job: what the worker needs, copied out of the attempt */
    const struct be_local *local;
    struct be_request req;
    void *input, *mask;
};

static void
on_save(void *ud, const char *json)
{
    struct pending *p = ud;
    if (p->save)
        p->save(p->cookie, json);
}

/* Moves a backend's result into an outcome for the engine and completes p. */
static void
finish(struct pending *p, struct be_result *r)
{
    struct route_outcome o;
    memset(&o, 0, sizeof o);
    o.ok = r->ok;
    o.err = r->err;
    o.retry_after_ms = r->retry_after_ms;
    o.vendor_charged = r->charged;
    o.cost_usd = r->cost_usd;
    /* The images move to the outcome: the engine owns them now. */
    for (int i = 0; i < r->n_images && i < ROUTE_MAX_IMAGES; i++) {
        o.images[i].data = r->images[i].data;
        o.images[i].len = r->images[i].len;
        o.images[i].size = r->images[i].size;
        memcpy(o.images[i].mime, r->images[i].mime, sizeof o.images[i].mime);
        r->images[i].data = NULL;
    }
    o.n_images = r->n_images < ROUTE_MAX_IMAGES ? r->n_images : ROUTE_MAX_IMAGES;
    r->n_images = 0;
    o.raw = r->raw;
    memset(&r->raw, 0, sizeof r->raw);
    memcpy(o.raw_type, r->raw_type, sizeof o.raw_type);
    struct ig_buf text = {0};
    if (be_provenance_json(r, &text) == 0)
        o.provenance = ig_buf_steal(&text, NULL);
    ig_buf_free(&text);
    route_done_fn done = p->done;
    void *cookie = p->cookie;
    ig_free(p->input);
    ig_free(p->mask);
    ig_free(p);
    done(cookie, &o);
}

static void
calls_remove(struct exec_ctx *x, struct pending *p)
{
    pthread_mutex_lock(&x->mu);
    for (struct pending **q = &x->calls; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    pthread_mutex_unlock(&x->mu);
}

static void
on_done(void *ud, struct be_call *c)
{
    struct pending *p = ud;
    struct exec_ctx *x = p->x;
    calls_remove(x, p);
    finish(p, &c->result);
    be_call_free(c);
}

static int
exec_can_relay(void *ud, const struct ig_backend_cfg *b)
{
    (void)ud;
    const struct be_protocol *p = be_find(b->adapter);
    return p && p->relay;
}

static void
exec_cancel(void *ud, void *cookie)
{
    struct exec_ctx *x = ud;
    pthread_mutex_lock(&x->mu);
    for (struct pending *p = x->calls; p; p = p->next)
        if (p->cookie == cookie)
            be_loop_cancel(p->loop, p->req.tag);
    pthread_mutex_unlock(&x->mu);
}

static void
run_local(void *arg)
{
    struct pending *p = arg;
    struct be_result r;
    memset(&r, 0, sizeof r);
    r.retry_after_ms = -1;
    r.cost_usd = -1;
    if (p->local->run(&p->req, &r) != 0 && !r.err.code[0])
        ig_error_set(&r.err, 500, "upstream_error", "local backend %s failed", p->local->name);
    finish(p, &r);
    be_result_clear(&r);
}

static void *
dup_bytes(const void *src, size_t len)
{
    if (!src)
        return NULL;
    void *d = ig_malloc(len ? len : 1);
    if (d)
        memcpy(d, src, len);
    return d;
}

/* The attempt's buffers live only until start returns; the worker runs
 * later, so a local job keeps copies of what it reads. */
static int
start_local(struct exec_ctx *x, struct pending *p, struct ig_error *err)
{
    p->input = dup_bytes(p->req.input, p->req.input_len);
    p->mask = dup_bytes(p->req.mask, p->req.mask_len);
    if ((p->req.input && !p->input) || (p->req.mask && !p->mask))
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    p->req.input = p->input;
    p->req.mask = p->mask;
    /* Nothing else a local backend reads outlives the attempt. */
    p->req.prompt = p->req.negative_prompt = NULL;
    p->req.quality = p->req.resume = NULL;
    p->req.vendor_params = NULL;
    p->req.job_id = NULL;
    static const char *const formats[] = {"png", "jpeg", "webp"};
    const char *fmt = NULL;
    for (size_t i = 0; p->req.output_format && i < 3; i++)
        if (strcmp(p->req.output_format, formats[i]) == 0)
            fmt = formats[i];
    p->req.output_format = fmt;
    /* Posted under the lock, so route_exec_stop cannot free the worker
     * between our looking it up and handing it the job. */
    pthread_mutex_lock(&x->mu);
    if (!x->local && !x->stopped)
        x->local = route_sched_new(1, err);
    int rc = x->local ? route_sched_post(x->local, 0, run_local, p) : -1;
    int had = x->local != NULL;
    pthread_mutex_unlock(&x->mu);
    if (rc != 0 && (x->stopped || had))
        return ig_error_set(err, 503, "unavailable", "the local worker has stopped");
    if (rc != 0)
        return -1;
    return 0;
}

static int
exec_start(void *ud, const struct route_attempt *a, route_done_fn done, void *cookie,
           struct ig_error *err)
{
    struct exec_ctx *x = ud;
    struct pending *p = ig_calloc(1, sizeof *p);
    if (!p)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    p->done = done;
    p->cookie = cookie;
    p->save = a->save_vendor;
    struct be_request req = {
        .cfg = a->backend,
        .cls = a->cls,
        .prompt = a->prompt,
        .negative_prompt = a->negative_prompt,
        .width = a->width,
        .height = a->height,
        .n = a->n,
        .scale = a->scale,
        .seed = a->seed,
        .has_seed = a->has_seed,
        .quality = a->quality,
        .output_format = a->output_format,
        .vendor_params = a->vendor_params,
        .input = a->input,
        .input_len = a->input_len,
        .mask = a->mask,
        .mask_len = a->mask_len,
        .job_id = a->job_id,
        .attempt = a->attempt,
        .deadline_ms = a->deadline_ms,
        .resume = a->vendor_resume,
        .max_body_bytes = x->cfg->limits.max_body_bytes,
        .max_json_depth = x->cfg->limits.max_json_depth,
        .img_limits = &x->img_limits,
        .relay_body = a->relay_body,
        .relay_len = a->relay_len,
        .relay_model_off = a->relay_model_off,
        .relay_model_len = a->relay_model_len,
    };
    p->local = be_find_local(a->backend->adapter);
    if (p->local) {
        p->req = req;
        if (start_local(x, p, err) != 0) {
            ig_free(p->input);
            ig_free(p->mask);
            ig_free(p);
            return -1;
        }
        return 0;
    }
    /* Registered before the start, so that a cancel racing with the start
     * still finds the call; the loop ignores a tag it does not hold. */
    p->x = x;
    /* A relay runs on the loop of the HTTP thread that took the request,
     * when that thread drives one: its answer then goes back out without
     * crossing threads. Everything else shares the adapters' own loop. */
    p->loop = a->relay_body && be_loop_current() ? be_loop_current() : x->loop;
    pthread_mutex_lock(&x->mu);
    req.tag = p->req.tag = ++x->next_tag;
    p->next = x->calls;
    x->calls = p;
    pthread_mutex_unlock(&x->mu);
    if (be_call_start(p->loop, &req, on_save, on_done, p, err) != 0) {
        calls_remove(x, p);
        ig_free(p);
        return -1;
    }
    return 0;
}

static int
exec_can_run(void *ud, const struct ig_backend_cfg *b, char *why, size_t why_size)
{
    (void)ud;
    if (be_find(b->adapter))
        return 1;
    const struct be_local *l = be_find_local(b->adapter);
    if (l)
        return l->available(b, why, why_size);
    snprintf(why, why_size, "this build has no adapter for '%s'", b->adapter);
    return 0;
}

int
route_exec_backends(struct be_loop *loop, const struct ig_config *cfg, struct route_executor *out,
                    struct ig_error *err)
{
    struct exec_ctx *x = ig_calloc(1, sizeof *x);
    if (!x)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    x->loop = loop;
    x->cfg = cfg;
    img_limits_from_config(&x->img_limits, &cfg->limits);
    pthread_mutex_init(&x->mu, NULL);
    *out = (struct route_executor){
        .ud = x, .start = exec_start, .can_run = exec_can_run, .cancel = exec_cancel,
        .can_relay = exec_can_relay};
    return 0;
}

void
route_exec_stop(struct route_executor *ex)
{
    struct exec_ctx *x = ex->ud;
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    struct route_sched *s = x->local;
    x->local = NULL;
    x->stopped = 1;
    pthread_mutex_unlock(&x->mu);
    route_sched_free(s);
}

void
route_exec_release(struct route_executor *ex)
{
    route_exec_stop(ex);
    struct exec_ctx *x = ex->ud;
    if (x)
        pthread_mutex_destroy(&x->mu);
    ig_free(ex->ud);
    ex->ud = NULL;
}
