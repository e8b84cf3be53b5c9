/* SPDX-License-Identifier: MIT */
/* size.c -- the output has the dimensions, or at least the aspect, asked.
 *
 * Backends snap a requested size to what their contract allows, so the
 * gateway usually knows only the aspect for sure; an exact size is checked
 * only when the task says it is exact (an upscale's input x scale, or the
 * CLI's --size). Aspect is compared as a relative error of width/height,
 * so 1024x1024 for 1:1 and 1344x768 for 16:9 (1.75 vs 1.78) both pass the
 * default 2 %. */
#include "validate/gate.h"

#include <math.h>

int
vd_check_size(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (!t->size_exact || t->want_w <= 0 || t->want_h <= 0)
        return VD_SKIP;
    double dw = fabs((double)t->output->width - t->want_w) / t->want_w;
    double dh = fabs((double)t->output->height - t->want_h) / t->want_h;
    double score = dw > dh ? dw : dh;
    double bound = vd_bound(t, "size", 0.0);
    return vd_result(out, "size", score, bound, score <= bound, "%dx%d, asked %dx%d",
                     t->output->width, t->output->height, t->want_w, t->want_h);
}

int
vd_check_aspect(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (t->want_w <= 0 || t->want_h <= 0)
        return VD_SKIP;
    double got = (double)t->output->width / t->output->height;
    double want = (double)t->want_w / t->want_h;
    double score = fabs(got - want) / want;
    double bound = vd_bound(t, "aspect", 0.02);
    return vd_result(out, "aspect", score, bound, score <= bound, "%.4f, asked %.4f", got, want);
}
