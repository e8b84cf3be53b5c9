/* SPDX-License-Identifier: MIT */
/* check.c -- what every check shares: its bound from the config, the way it
 * fills its result, and the luma most of them measure on.
 *
 * Kept apart from the gate's tables so that a check (and its test) links
 * only what it uses. */
#include "validate/gate.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const vd_bound_names[] = {
    "format",   "size",         "aspect",     "blank",      "blank_min_stddev",
    "clipped",  "noise",        "noise_hf_share", "text",   "palette",
    "preserve", "changed",      "changed_area",   "lr_psnr", "lr_tile_psnr",
    "lr_ssim",  "coverage",     "coverage_max",   "halo_bleed", "cut_fg",
    "composite", NULL};

double
vd_bound(const struct vd_task *t, const char *name, double dflt)
{
    /* A bound outside the list could never be set from a config, since the
     * config refuses names it does not know: that is a bug here, and the
     * checks' tests run every bound. */
    size_t i = 0;
    while (vd_bound_names[i] && strcmp(vd_bound_names[i], name) != 0)
        i++;
    if (!vd_bound_names[i])
        abort();
    return ig_config_threshold(t->cfg, t->cls, name, dflt);
}

int
vd_result(struct vd_check *out, const char *name, double score, double bound, int pass,
          const char *fmt, ...)
{
    out->name = name;
    out->score = score;
    out->bound = bound;
    out->pass = pass;
    out->note[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->note, sizeof out->note, fmt, ap);
        va_end(ap);
    }
    return 0;
}

uint8_t *
vd_luma(const struct img *im)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    uint8_t *y = ig_malloc(n ? n : 1);
    if (!y)
        return NULL;
    const uint8_t *p = im->rgba;
    for (size_t i = 0; i < n; i++, p += 4)
        y[i] = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
    return y;
}
