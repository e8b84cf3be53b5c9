/* SPDX-License-Identifier: MIT */
/* judge.c -- judging runs and classifying cases (see run.h).
 *
 * Two kinds of check. Task checks (size, format, alpha, palette, cost,
 * latency, the gateway's gate and its OCR) look at the new output alone and
 * fail a case whatever its history. Picture checks (exact hash,
 * SSIMULACRA2, SSIM, pHash, CIEDE2000) compare it with its baseline; their
 * failure means something only next to the provenance: under the
 * baseline's fingerprint and build it is a regression, under a new one it
 * is drift, and a seed plane that half passes is flaky. The metrics come
 * from validate/metric.h, the same units the gate uses. */
#include "tools/testrun/run.h"
#include "core/alloc.h"
#include "image/image.h"
#include "validate/metric.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
tr_status_name(enum tr_status s)
{
    static const char *const names[] = {"pass",  "failed",      "regression", "drift",
                                        "flaky", "no-baseline", "skipped"};
    return s <= TR_SKIPPED ? names[s] : "?";
}

void
tr_result_clear(struct tr_result *r)
{
    for (size_t i = 0; i < r->n_runs; i++) {
        tr_output_clear(&r->runs[i].out);
        tr_baseline_clear(&r->runs[i].base);
        ig_buf_free(&r->runs[i].heatmap);
    }
    ig_free(r->runs);
    r->runs = NULL;
    r->n_runs = 0;
}

static struct tr_check *
add(struct tr_seed_run *run, const char *name)
{
    if (run->n_checks >= TR_MAX_CHECKS)
        return NULL;
    struct tr_check *c = &run->checks[run->n_checks++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

/* A numeric check: value op bound. */
static void
num(struct tr_seed_run *run, const char *name, double value, const char *op, double bound,
    int perceptual)
{
    struct tr_check *c = add(run, name);
    if (!c)
        return;
    c->has_value = 1;
    c->value = value;
    c->bound = bound;
    c->perceptual = perceptual;
    snprintf(c->op, sizeof c->op, "%s", op);
    c->pass = op[0] == '>' ? value >= bound : op[0] == '<' ? value <= bound : value == bound;
}

static void note(struct tr_seed_run *run, const char *name, int pass, int perceptual,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
note(struct tr_seed_run *run, const char *name, int pass, int perceptual, const char *fmt, ...)
{
    struct tr_check *c = add(run, name);
    if (!c)
        return;
    c->pass = pass;
    c->perceptual = perceptual;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
}

static void
unsupported(struct tr_seed_run *run, const char *name, const char *why)
{
    struct tr_check *c = add(run, name);
    if (!c)
        return;
    c->unsupported = 1;
    snprintf(c->detail, sizeof c->detail, "unsupported: %s", why);
}

/* The gate's reports in a job's provenance (docs/gate.md): one per output,
 * {"pass", "checks": [{"name", "score", "bound", "pass", "note"}]}; NULL
 * when the gateway ran no gate. */
static json_t *
gate_reports(const json_t *prov)
{
    json_t *v = json_object_get(prov, "validation");
    return json_is_array(v) && json_array_size(v) ? v : NULL;
}

static void
check_gate(const struct tr_assert *as, const struct tr_output *o, struct tr_seed_run *run)
{
    json_t *reports = gate_reports(o->provenance);
    if (as->gate && !reports) {
        unsupported(run, "gate", "the gateway reported no validation gate for this job");
    } else if (as->gate) {
        int pass = 1;
        size_t i;
        json_t *r;
        json_array_foreach(reports, i, r)
            pass &= !json_is_false(json_object_get(r, "pass"));
        note(run, "gate", pass, 0, "%s", pass ? "the gate passed" : "the gate refused");
    }
    if (!as->text)
        return;
    const json_t *found = NULL;
    size_t i, k;
    json_t *r, *c;
    json_array_foreach(reports, i, r)
        json_array_foreach(json_object_get(r, "checks"), k, c)
            if (json_is_string(json_object_get(c, "name")) &&
                !strcmp(json_string_value(json_object_get(c, "name")), "text"))
                found = c;
    if (!found) {
        unsupported(run, "text", "the gateway's gate ran no OCR text check");
        return;
    }
    const char *n = json_string_value(json_object_get(found, "note"));
    struct tr_check *t = add(run, "text");
    if (!t)
        return;
    t->has_value = 1;
    t->value = json_number_value(json_object_get(found, "score"));
    t->bound = json_number_value(json_object_get(found, "bound"));
    snprintf(t->op, sizeof t->op, ">=");
    t->pass = json_is_true(json_object_get(found, "pass"));
    snprintf(t->detail, sizeof t->detail, "\"%s\": %s", as->text, n ? n : "");
}

static int
has_transparency(const struct img *im)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    for (size_t i = 0; i < n; i++)
        if (im->rgba[4 * i + 3] < 255)
            return 1;
    return 0;
}

/* The closest any pixel comes to a colour, in CIEDE2000 (sampled: at most
 * about 64k pixels are looked at). */
static double
closest(const struct img *im, unsigned rgb)
{
    double want[3], lab[3], best = INFINITY;
    vd_srgb_to_lab((uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb, want);
    size_t n = (size_t)im->width * (size_t)im->height, step = n / 65536 + 1;
    for (size_t i = 0; i < n; i += step) {
        const uint8_t *p = im->rgba + 4 * i;
        vd_srgb_to_lab(p[0], p[1], p[2], lab);
        double d = vd_ciede2000(want, lab);
        if (d < best)
            best = d;
    }
    return best;
}

static void
task_checks(const struct tr_assert *as, const struct tr_output *o, const struct img *im,
            struct tr_seed_run *run)
{
    if (as->width)
        note(run, "size", im->width == as->width && im->height == as->height, 0,
             "%dx%d (want %dx%d)", im->width, im->height, as->width, as->height);
    if (as->format) {
        enum img_format want = IMG_FMT_UNKNOWN;
        img_format_parse(as->format, &want);
        enum img_format got = img_sniff(o->bytes.data, o->bytes.len);
        note(run, "format", got == want, 0, "%s (want %s)", img_format_name(got),
             img_format_name(want));
    }
    if (as->alpha >= 0) {
        int t = has_transparency(im);
        note(run, "alpha", t == as->alpha, 0, "%s (want %s)", t ? "transparent" : "opaque",
             as->alpha ? "transparent" : "opaque");
    }
    for (size_t i = 0; i < as->n_palette; i++) {
        unsigned rgb = 0;
        sscanf(as->palette[i], "#%6x", &rgb);
        char name[24];
        snprintf(name, sizeof name, "palette %s", as->palette[i]);
        num(run, name, closest(im, rgb), "<=", as->palette_deltae, 0);
    }
    if (as->has_cost)
        num(run, "cost", o->cost_usd, "<=", as->cost_usd, 0);
    if (as->has_latency)
        num(run, "latency", o->latency_s, "<=", as->latency_s, 0);
    check_gate(as, o, run);
}

static void
picture_checks(const struct tr_assert *as, const struct img *a, const struct img *b,
               struct tr_seed_run *run)
{
    struct ig_error err = {0};
    if (a->width != b->width || a->height != b->height) {
        note(run, "picture size", 0, 1, "%dx%d, the baseline is %dx%d", b->width, b->height,
             a->width, a->height);
        return;
    }
    double v, p95;
    if (as->has_ssimulacra2) {
        if (vd_ssimulacra2(a, b, &v, &err) == 0)
            num(run, "ssimulacra2", v, ">=", as->ssimulacra2, 1);
        else
            note(run, "ssimulacra2", 0, 1, "%s", err.message);
    }
    if (as->has_ssim) {
        if (vd_ssim(a, b, VD_SSIM_LUMA, NULL, &v, &err) == 0)
            num(run, "ssim", v, ">=", as->ssim, 1);
        else
            note(run, "ssim", 0, 1, "%s", err.message);
    }
    if (as->has_phash) {
        struct vd_hash ha, hb;
        if (vd_hash(a, VD_HASH_PHASH, &ha, &err) == 0 && vd_hash(b, VD_HASH_PHASH, &hb, &err) == 0)
            num(run, "phash", vd_hash_distance(&ha, &hb), "<=", as->phash, 1);
        else
            note(run, "phash", 0, 1, "%s", err.message);
    }
    if (as->has_deltae) {
        if (vd_deltae(a, b, NULL, &v, &p95, &err) == 0)
            num(run, "deltae", v, "<=", as->deltae, 1);
        else
            note(run, "deltae", 0, 1, "%s", err.message);
    }
    struct img *heat = vd_heatmap(a, b, &err);
    if (heat && img_encode(heat, IMG_FMT_PNG, 0, NULL, &run->heatmap, &err) != 0)
        ig_buf_free(&run->heatmap);
    img_free(heat);
}

void
tr_judge_run(const struct tr_result *r, struct tr_seed_run *run)
{
    const struct tr_assert *as = &r->as;
    const struct tr_output *o = &run->out;
    run->task_ok = run->picture_ok = 1;
    if (run->skipped) {
        run->task_ok = 0;
        return;
    }
    if (!o->ok) {
        note(run, "job", 0, 0, "%s", o->error);
        run->task_ok = 0;
        return;
    }
    struct ig_error err = {0};
    struct img *im = img_decode(o->bytes.data, o->bytes.len, NULL, &err);
    if (!im) {
        note(run, "decode", 0, 0, "the output does not decode: %s", err.message);
        run->task_ok = 0;
        return;
    }
    task_checks(as, o, im, run);
    const struct tr_baseline *b = &run->base;
    if (b->present) {
        const json_t *old = json_object_get(b->sidecar, "provenance");
        /* Tier none: no seed steers the picture, so its history means nothing;
         * the baseline is only shown beside it in the report. */
        run->drifted = r->tier != IG_TIER_NONE &&
                       (strcmp(tr_prov_fingerprint(old), tr_prov_fingerprint(o->provenance)) ||
                        strcmp(tr_prov_build(old), tr_prov_build(o->provenance)));
        if (as->has_bytes && as->bytes) {
            char sha[65];
            tr_sha256_hex(o->bytes.data, o->bytes.len, sha);
            note(run, "bytes", strcmp(sha, b->sha256) == 0, 1, "sha256 %.16s (baseline %.16s)",
                 sha, b->sha256);
        }
        struct img *base = img_decode(b->bytes.data, b->bytes.len, NULL, &err);
        if (base)
            picture_checks(as, base, im, run);
        else
            note(run, "baseline", 0, 1, "the baseline does not decode: %s", err.message);
        img_free(base);
    }
    img_free(im);
    for (int i = 0; i < run->n_checks; i++) {
        const struct tr_check *c = &run->checks[i];
        if (c->perceptual && !c->pass)
            run->picture_ok = 0;
        else if (!c->perceptual && (!c->pass || c->unsupported))
            run->task_ok = 0;
    }
}

static const struct tr_check *
first_failed(const struct tr_seed_run *run)
{
    for (int i = 0; i < run->n_checks; i++)
        if (!run->checks[i].pass || run->checks[i].unsupported)
            return &run->checks[i];
    return NULL;
}

static void
describe(char *out, size_t size, long long seed, const struct tr_check *c)
{
    if (!c)
        snprintf(out, size, "seed %lld: a check failed", seed);
    else if (c->has_value)
        snprintf(out, size, "seed %lld: %s %.4g, want %s %.4g", seed, c->name, c->value, c->op,
                 c->bound);
    else
        snprintf(out, size, "seed %lld: %s: %s", seed, c->name, c->detail);
}

void
tr_classify(struct tr_result *r)
{
    size_t skipped = 0, no_base = 0, bad_picture = 0;
    const struct tr_seed_run *task_fail = NULL, *drift = NULL, *pic_fail = NULL;
    for (size_t i = 0; i < r->n_runs; i++) {
        const struct tr_seed_run *run = &r->runs[i];
        if (run->skipped)
            skipped++;
        else if (!run->task_ok && !task_fail)
            task_fail = run;
        else if (run->task_ok && !run->base.present && r->tier != IG_TIER_NONE)
            no_base++;
        else if (run->drifted && !drift)
            drift = run;
        if (!run->skipped && run->task_ok && run->base.present && !run->picture_ok) {
            bad_picture++;
            if (!pic_fail)
                pic_fail = run;
        }
    }
    r->failing = 1;
    if (skipped) {
        r->status = TR_SKIPPED;
        snprintf(r->message, sizeof r->message, "not run: the run's cost cap was reached");
    } else if (task_fail) {
        r->status = TR_FAILED;
        describe(r->message, sizeof r->message, task_fail->seed, first_failed(task_fail));
    } else if (no_base) {
        r->status = TR_NO_BASELINE;
        snprintf(r->message, sizeof r->message,
                 "no baseline for %zu seed(s); record them with --update-baselines", no_base);
    } else if (drift) {
        const json_t *old = json_object_get(drift->base.sidecar, "provenance");
        snprintf(r->old_fp, sizeof r->old_fp, "%s", tr_prov_fingerprint(old));
        snprintf(r->new_fp, sizeof r->new_fp, "%s", tr_prov_fingerprint(drift->out.provenance));
        snprintf(r->old_build, sizeof r->old_build, "%s", tr_prov_build(old));
        snprintf(r->new_build, sizeof r->new_build, "%s", tr_prov_build(drift->out.provenance));
        r->status = TR_DRIFT;
        r->failing = r->on_drift == TR_DRIFT_FAIL;
        const char *o_fp = r->old_fp[0] ? r->old_fp : "none";
        const char *n_fp = r->new_fp[0] ? r->new_fp : "none";
        const char *o_b = r->old_build[0] ? r->old_build : "none";
        const char *n_b = r->new_build[0] ? r->new_build : "none";
        if (strcmp(o_b, n_b))
            snprintf(r->message, sizeof r->message,
                     "fingerprint %s -> %s, build %s -> %s (on_drift: %s)", o_fp, n_fp, o_b, n_b,
                     tr_drift_name(r->on_drift));
        else
            snprintf(r->message, sizeof r->message,
                     "fingerprint %s -> %s, build %s unchanged (on_drift: %s)", o_fp, n_fp, o_b,
                     tr_drift_name(r->on_drift));
    } else if (bad_picture == 0) {
        r->status = TR_PASS;
        r->failing = 0;
        snprintf(r->message, sizeof r->message, "%zu seed(s) pass", r->n_runs);
    } else {
        char what[400];
        describe(what, sizeof what, pic_fail->seed, first_failed(pic_fail));
        r->status = bad_picture == r->n_runs ? TR_REGRESSION : TR_FLAKY;
        snprintf(r->message, sizeof r->message, "%s%s (fingerprint %s unchanged)",
                 r->status == TR_FLAKY ? "the seed plane disagrees: " : "", what,
                 tr_prov_fingerprint(pic_fail->out.provenance)[0]
                     ? tr_prov_fingerprint(pic_fail->out.provenance)
                     : "none");
        if (r->status == TR_FLAKY) {
            size_t len = strlen(r->message);
            snprintf(r->message + len, sizeof r->message - len, "; %zu of %zu seeds fail",
                     bad_picture, r->n_runs);
        }
    }
}
