/* SPDX-License-Identifier: MIT */
/* exec.c -- route_attempt -> adapter call -> route_outcome. */
#include "route/exec.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct exec_ctx {
    struct be_loop *loop;
    const struct ig_config *cfg;
};

struct pending {
    route_done_fn done;
    void *cookie;
    void (*save)(void *cookie, const char *json);
};

static void
on_save(void *ud, const char *json)
{
    struct pending *p = ud;
    if (p->save)
        p->save(p->cookie, json);
}

static void
on_done(void *ud, struct be_call *c)
{
    struct pending *p = ud;
    struct route_outcome o;
    memset(&o, 0, sizeof o);
    struct be_result *r = &c->result;
    o.ok = r->ok;
    o.err = r->err;
    o.retry_after_ms = r->retry_after_ms;
    o.vendor_charged = r->charged;
    o.cost_usd = r->cost_usd;
    /* The images move to the outcome: the engine owns them now. */
    for (int i = 0; i < r->n_images && i < ROUTE_MAX_IMAGES; i++) {
        o.images[i].data = r->images[i].data;
        o.images[i].len = r->images[i].len;
        memcpy(o.images[i].mime, r->images[i].mime, sizeof o.images[i].mime);
        r->images[i].data = NULL;
    }
    o.n_images = r->n_images < ROUTE_MAX_IMAGES ? r->n_images : ROUTE_MAX_IMAGES;
    r->n_images = 0;
    if (r->provenance) {
        char *text = json_dumps(r->provenance, JSON_COMPACT);
        o.provenance = text ? ig_strdup(text) : NULL;
        free(text);
    }
    route_done_fn done = p->done;
    void *cookie = p->cookie;
    ig_free(p);
    be_call_free(c);
    done(cookie, &o);
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
    };
    if (be_call_start(x->loop, &req, on_save, on_done, p, err) != 0) {
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
    *out = (struct route_executor){.ud = x, .start = exec_start, .can_run = exec_can_run};
    return 0;
}

void
route_exec_release(struct route_executor *ex)
{
    ig_free(ex->ud);
    ex->ud = NULL;
}
