/* SPDX-License-Identifier: MIT */
/* lanczos.c -- the classic preserve upscaler: Lanczos3 through libvips.
 *
 * No model, no state: it is the rung under the RDN models, always
 * available, and its output is a pure function of the input bytes (tier
 * `bytes`). */
#include "backends/local/local.h"
#include <time.h>

#include <stdio.h>

static int
lanczos_available(const struct ig_backend_cfg *cfg, char *why, size_t why_size)
{
    (void)cfg;
    (void)why;
    (void)why_size;
    return 1;
}

static int
lanczos_run(const struct be_request *req, struct be_result *res)
{
    int scale = be_local_scale(req, res);
    if (scale <= 0)
        return -1;
    struct img *in = be_local_upscale_input(req, scale, res);
    if (!in)
        return -1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct img *out = img_resize(in, in->width * scale, in->height * scale, "lanczos3", &res->err);
    img_free(in);
    if (!out) {
        res->ok = 0;
        return -1;
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    json_t *prov = json_pack("{s:s,s:i,s:{s:f}}", "kernel", "lanczos3", "scale", scale, "timings",
                             "resize_ms", ms);
    int rc = be_local_output(req, res, out, prov);
    img_free(out);
    return rc;
}

const struct be_local be_local_lanczos = {
    .name = "local-lanczos",
    .available = lanczos_available,
    .run = lanczos_run,
};
