/* SPDX-License-Identifier: MIT */
/* gate.h -- the validation gate: the checks an output must pass before it is
 * served, chosen by job class.
 *
 * libvips style: every check is one small unit of one shape, vd_check_NAME
 * (task, out, err). A check reads what it needs from the task, measures one
 * score, compares it with its bound (the config's validation.CLASS.NAME, or
 * the default from METRICS.md) and says pass or fail with a short note. It
 * returns 0 when it ran, VD_SKIP when the task does not ask for it (no
 * expected text, no input to compare with), -1 with err when it could not
 * measure at all (out of memory, OCR data missing). The gate runs the table
 * of checks for the class and keeps every result, so a failure names which
 * check failed and by how much. */
#ifndef IG_VALIDATE_GATE_H
#define IG_VALIDATE_GATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "image/image.h"

#define VD_SKIP 1
#define VD_MAX_CHECKS 24
#define VD_MAX_PALETTE 16

struct vd_rgb {
    uint8_t r, g, b;
};

/* What one output is judged against. Everything but cls and output is
 * optional; a check whose inputs are missing is skipped. */
struct vd_task {
    enum ig_class cls;
    const struct ig_config *cfg;       /* bounds; NULL: the defaults */
    const struct img *output;          /* NULL when it did not decode */
    const char *decode_error;          /* why it did not */
    enum img_format format;            /* the output's encoded format, when known */
    enum img_format want_format;       /* IMG_FMT_UNKNOWN: any */
    int want_w, want_h;                /* 0: any */
    int size_exact;                    /* want_w x want_h exactly; else the aspect only */
    int scale;                         /* upscale factor asked; 0: taken from the sizes */
    const struct img *input;           /* edit, upscale, remove-background */
    const struct img *mask;            /* edit: white (or opaque) = the region to change */
    const char *expect_text;           /* generate: text the picture must show */
    struct vd_rgb palette[VD_MAX_PALETTE];
    size_t n_palette;                  /* generate: brand colours */
};

struct vd_check {
    const char *name;                  /* static: "noise", "lr_psnr" */
    double score, bound;
    int pass;
    char note[160];
};

typedef int (*vd_check_fn)(const struct vd_task *t, struct vd_check *out, struct ig_error *err);

struct vd_report {
    struct vd_check checks[VD_MAX_CHECKS];
    int n;
    int pass;
};

/* ---- The gate --------------------------------------------------------------- */

/* Runs every check of the task's class. 0 with the report (pass or not), or
 * -1 when a check could not measure. */
int vd_gate_run(const struct vd_task *t, struct vd_report *r, struct ig_error *err);
/* {"pass":bool,"checks":[{"name","score","bound","pass","note"}]}; NULL on OOM. */
json_t *vd_report_json(const struct vd_report *r);
/* "noise, clipped": the failed checks' names, for an attempt's message. */
void vd_report_failed(const struct vd_report *r, char *out, size_t size);

/* Fills in what the input implies when nothing else was asked: an
 * upscale with a scale is input x scale, a cutout the input's size, both
 * exactly. */
void vd_task_derive(struct vd_task *t);
/* "#RRGGBB,#RRGGBB" into t->palette. -1 with err (invalid_palette). */
int vd_palette_parse(const char *s, struct vd_task *t, struct ig_error *err);

/* A job's "checks" object (expect_text, palette) into the task; unknown
 * fields and bad values are refused (invalid_request, invalid_palette), so
 * the server can refuse them before a job runs. NULL checks: nothing. */
int vd_task_checks(const json_t *checks, struct vd_task *t, struct ig_error *err);
/* The gateway's validate hook (struct route_hooks.validate): builds the task
 * from the job request (size, scale, output_format, checks.expect_text,
 * checks.palette) and runs the gate. A failed gate answers 0 with *pass 0 and
 * err naming the failed checks (code validation_failed). */
int vd_gate_job(void *ud, const struct ig_config *cfg, enum ig_class cls, const json_t *request,
                const struct img *output, const struct img *input, const struct img *mask,
                json_t **report, int *pass, struct ig_error *err);

/* ---- Shared by the checks --------------------------------------------------- */

/* The configured bound for a check of the task's class, or dflt. */
double vd_bound(const struct vd_task *t, const char *name, double dflt);
/* Every name vd_bound is asked for (NULL-terminated): what a config's
 * validation section may set (ig_config_known_checks). */
extern const char *const vd_bound_names[];
/* Fills out and returns 0: the usual ending of a check. */
int vd_result(struct vd_check *out, const char *name, double score, double bound, int pass,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* BT.601 luma of every pixel, alpha ignored; ig_malloc'd, NULL on OOM. */
uint8_t *vd_luma(const struct img *im);

/* ---- The checks --------------------------------------------------------------- */

/* format.c, size.c: any output */
int vd_check_decode(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_format(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_size(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_aspect(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
/* collapse.c: METRICS.md section 7 */
int vd_check_blank(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_clipped(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_noise(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
/* ocr.c, palette.c: generate */
int vd_check_text(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_palette(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
/* edit.c */
int vd_check_preserve(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_changed(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
/* upscale.c: METRICS.md section 6 */
int vd_check_scale(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_lr_psnr(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_lr_tile_psnr(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_lr_ssim(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
/* cutout.c: METRICS.md section 5 */
int vd_check_alpha(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_coverage(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_halo_bleed(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_cut_fg(const struct vd_task *t, struct vd_check *out, struct ig_error *err);
int vd_check_composite(const struct vd_task *t, struct vd_check *out, struct ig_error *err);

#endif
