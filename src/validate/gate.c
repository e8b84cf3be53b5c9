/* SPDX-License-Identifier: MIT */
/* gate.c -- the validation gate: which checks each job class runs, and the
 * report they make together.
 *
 * The class tables are data, so adding a check is one line here and one
 * file beside this one. Every output first has to decode and be the format
 * and shape that was asked; a decode failure ends the run there, because no
 * other check can look at pixels that are not there. Everything else runs
 * even after a failure, so the report says all that is wrong at once. */
#include "validate/gate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Text and palette run for any class when the job asks for them: an
 * upscaled or edited poster must still read, and keep its brand colours. */
static const vd_check_fn any_checks[] = {vd_check_format,  vd_check_size,    vd_check_aspect,
                                         vd_check_blank,   vd_check_clipped, vd_check_noise,
                                         vd_check_text,    vd_check_palette, NULL};

static const vd_check_fn generate_checks[] = {NULL};
static const vd_check_fn edit_checks[] = {vd_check_preserve, vd_check_changed, NULL};
static const vd_check_fn upscale_checks[] = {vd_check_scale, vd_check_lr_psnr,
                                             vd_check_lr_tile_psnr, vd_check_lr_ssim, NULL};
static const vd_check_fn cutout_checks[] = {vd_check_alpha, vd_check_coverage,
                                            vd_check_halo_bleed, vd_check_cut_fg,
                                            vd_check_composite, NULL};

static const vd_check_fn *const class_checks[IG_CLASS_COUNT] = {
    [IG_CLASS_GENERATE] = generate_checks,
    [IG_CLASS_EDIT] = edit_checks,
    [IG_CLASS_UPSCALE] = upscale_checks,
    [IG_CLASS_REMOVE_BACKGROUND] = cutout_checks,
};

static int
run_list(const vd_check_fn *list, const struct vd_task *t, struct vd_report *r,
         struct ig_error *err)
{
    for (; *list; list++) {
        if (r->n >= VD_MAX_CHECKS)
            return ig_error_set(err, 500, "internal", "more than %d checks", VD_MAX_CHECKS);
        struct vd_check *c = &r->checks[r->n];
        memset(c, 0, sizeof *c);
        int rc = (*list)(t, c, err);
        if (rc < 0)
            return -1;
        if (rc == VD_SKIP)
            continue;
        r->n++;
        r->pass &= c->pass;
    }
    return 0;
}

int
vd_gate_run(const struct vd_task *t, struct vd_report *r, struct ig_error *err)
{
    memset(r, 0, sizeof *r);
    r->pass = 1;
    if ((unsigned)t->cls >= IG_CLASS_COUNT)
        return ig_error_set(err, 400, "invalid_request", "unknown job class %d", (int)t->cls);
    struct vd_check *c = &r->checks[r->n++];
    vd_check_decode(t, c, err);
    r->pass = c->pass;
    if (!c->pass)
        return 0;
    if (run_list(any_checks, t, r, err) != 0)
        return -1;
    return run_list(class_checks[t->cls], t, r, err);
}

json_t *
vd_report_json(const struct vd_report *r)
{
    json_t *checks = json_array();
    json_t *root = json_pack("{s:b,s:o}", "pass", r->pass, "checks", checks);
    if (!root)
        return NULL;
    for (int i = 0; i < r->n; i++) {
        const struct vd_check *c = &r->checks[i];
        /* JSON has no infinity: identical images give PSNR +inf, sent as a
         * large finite number so that clients can still compare it. */
        double score = isfinite(c->score) ? c->score : (c->score > 0 ? 1e9 : -1e9);
        json_t *o = json_pack("{s:s,s:f,s:f,s:b}", "name", c->name, "score", score, "bound",
                              c->bound, "pass", c->pass);
        if (!o || (c->note[0] && json_object_set_new(o, "note", json_string(c->note)) != 0) ||
            json_array_append_new(checks, o) != 0) {
            json_decref(o);
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

void
vd_report_failed(const struct vd_report *r, char *out, size_t size)
{
    size_t n = 0;
    if (size)
        out[0] = 0;
    for (int i = 0; i < r->n && n < size; i++) {
        if (r->checks[i].pass)
            continue;
        int k = snprintf(out + n, size - n, "%s%s", n ? ", " : "", r->checks[i].name);
        if (k < 0)
            break;
        n += (size_t)k;
    }
}

void
vd_task_derive(struct vd_task *t)
{
    if (!t->input || (t->want_w > 0 && t->size_exact))
        return;
    if (t->cls == IG_CLASS_UPSCALE && t->scale > 0) {
        t->want_w = t->input->width * t->scale;
        t->want_h = t->input->height * t->scale;
        t->size_exact = 1;
    } else if (t->cls == IG_CLASS_REMOVE_BACKGROUND) {
        t->want_w = t->input->width;
        t->want_h = t->input->height;
        t->size_exact = 1;
    }
}

static int
hex_digit(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

int
vd_palette_parse(const char *s, struct vd_task *t, struct ig_error *err)
{
    t->n_palette = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (t->n_palette >= VD_MAX_PALETTE)
            return ig_error_set(err, 400, "invalid_palette", "more than %d palette colours",
                                VD_MAX_PALETTE);
        int v[6];
        int ok = *p == '#';
        for (int i = 0; ok && i < 6; i++)
            ok = (v[i] = hex_digit((unsigned char)p[1 + i])) >= 0;
        if (!ok || (p[7] && p[7] != ',' && p[7] != ' '))
            return ig_error_set(err, 400, "invalid_palette",
                                "palette colours are #RRGGBB separated by commas, not '%.20s'", p);
        struct vd_rgb *c = &t->palette[t->n_palette++];
        c->r = (uint8_t)(v[0] * 16 + v[1]);
        c->g = (uint8_t)(v[2] * 16 + v[3]);
        c->b = (uint8_t)(v[4] * 16 + v[5]);
        p += 7;
    }
    if (t->n_palette == 0)
        return ig_error_set(err, 400, "invalid_palette", "the palette names no colour");
    return 0;
}
