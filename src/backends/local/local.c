/* SPDX-License-Identifier: MIT */
/* local.c -- the table of local backends and what they share. */
#include "backends/local/local.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct be_local *const locals[] = {
    &be_local_lanczos,
    &be_local_isnet,
    &be_local_rdn,
};

const struct be_local *
be_find_local(const char *adapter)
{
    if (!adapter)
        return NULL;
    for (size_t i = 0; i < sizeof locals / sizeof locals[0]; i++)
        if (strcmp(locals[i]->name, adapter) == 0)
            return locals[i];
    return NULL;
}

void
be_local_shutdown(void)
{
    for (size_t i = 0; i < sizeof locals / sizeof locals[0]; i++)
        if (locals[i]->shutdown)
            locals[i]->shutdown();
}

int
be_local_fail(struct be_result *res, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof res->err.message];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    res->ok = 0;
    ig_error_set(&res->err, status, code, "%s", msg);
    return -1;
}

struct img *
be_local_input(const struct be_request *req, struct be_result *res)
{
    if (!req->input || req->input_len == 0) {
        be_local_fail(res, 400, "invalid_request", "this job needs an input image");
        return NULL;
    }
    struct img *im = img_decode(req->input, req->input_len, req->img_limits, &res->err);
    if (!im)
        res->ok = 0;
    return im;
}

struct img *
be_local_upscale_input(const struct be_request *req, int scale, struct be_result *res)
{
    const struct ig_contract *k = &req->cfg->contract;
    struct img_limits lim = req->img_limits ? *req->img_limits : (struct img_limits){0};
    if (k->max_pixels > 0 && (lim.max_pixels <= 0 || lim.max_pixels > k->max_pixels))
        lim.max_pixels = k->max_pixels;
    if (k->max_output_pixels > 0 && req->input && req->input_len) {
        struct img_info info;
        struct ig_error perr = {0};
        long s2 = (long)scale * scale;
        if (img_probe(req->input, req->input_len, &lim, &info, &perr) == 0 &&
            (long)info.width * info.height > k->max_output_pixels / s2) {
            be_local_fail(res, 413, "output_too_large",
                          "x%d of %dx%d is %ld pixels; backend %s makes at most %ld", scale,
                          info.width, info.height, (long)info.width * info.height * s2,
                          req->cfg->name, k->max_output_pixels);
            return NULL;
        }
    }
    struct be_request r2 = *req;
    r2.img_limits = &lim;
    return be_local_input(&r2, res);
}

int
be_local_output(const struct be_request *req, struct be_result *res, const struct img *out,
                json_t *prov)
{
    enum img_format fmt = IMG_FMT_PNG;
    if (req->output_format && req->output_format[0] &&
        img_format_parse(req->output_format, &fmt) != 0) {
        json_decref(prov);
        return be_local_fail(res, 400, "invalid_request", "unknown output format '%s'",
                             req->output_format);
    }
    struct ig_buf enc = {0};
    if (img_encode(out, fmt, 0, NULL, &enc, &res->err) != 0) {
        json_decref(prov);
        ig_buf_free(&enc);
        res->ok = 0;
        return -1;
    }
    int rc = be_result_add_image(res, enc.data, enc.len, img_format_mime(fmt));
    ig_buf_free(&enc);
    if (rc != 0) {
        json_decref(prov);
        return be_local_fail(res, 500, "out_of_memory", "out of memory");
    }
    json_decref(res->provenance);
    res->provenance = prov;
    res->charged = 0;
    res->cost_usd = 0;
    res->ok = 1;
    return 0;
}

int
be_local_scale(const struct be_request *req, struct be_result *res)
{
    const struct ig_contract *k = &req->cfg->contract;
    if (req->scale <= 0)
        return k->n_scales ? k->scales[0] : 2;
    for (size_t i = 0; i < k->n_scales; i++)
        if (k->scales[i] == req->scale)
            return req->scale;
    be_local_fail(res, 400, "invalid_request", "backend %s has no x%d scale", req->cfg->name,
                  req->scale);
    return 0;
}

int
be_local_find(const char *rel, char *out, size_t size)
{
    int n = snprintf(out, size, "%s", rel);
    if (n < 0 || (size_t)n >= size)
        return -1;
    if (rel[0] == '/' || access(out, F_OK) == 0)
        return 0;
    const char *home = getenv("IMAGEGATE_HOME");
    if (home && home[0]) {
        n = snprintf(out, size, "%s/%s", home, rel);
        if (n > 0 && (size_t)n < size && access(out, F_OK) == 0)
            return 0;
    }
    /* The binary in build/ of a checkout: .deps is one folder up. */
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            n = snprintf(out, size, "%s/../%s", exe, rel);
            if (n > 0 && (size_t)n < size && access(out, F_OK) == 0)
                return 0;
        }
    }
    n = snprintf(out, size, "%s", rel);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
be_local_path(const struct ig_backend_cfg *cfg, const char *rel, char *out, size_t size)
{
    char joined[4096];
    const char *dir = cfg->model_path ? cfg->model_path : ".";
    int n = snprintf(joined, sizeof joined, "%s%s%s", dir, rel && rel[0] ? "/" : "",
                     rel ? rel : "");
    if (n < 0 || (size_t)n >= sizeof joined)
        return -1;
    return be_local_find(joined, out, size);
}
