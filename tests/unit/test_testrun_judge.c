/* SPDX-License-Identifier: MIT */
/* test_testrun_judge.c -- judging runs and classifying cases: task checks
 * on a real output, picture checks against a baseline, and the
 * classification that tells regression, drift and flakiness apart. */
#include "testutil.h"
#include "core/alloc.h"
#include "image/image.h"
#include "tools/testrun/run.h"

#include <string.h>

static json_t *
prov(const char *fp)
{
    return json_pack("{s:s,s:s,s:{s:s,s:s}}", "backend", "b", "tier", "perceptual", "vendor",
                     "fingerprint", fp, "model", "m-1");
}

/* A run whose output is im encoded as PNG, with a baseline of base (NULL:
 * none) recorded under fingerprint base_fp. */
static void
make_run(struct tr_seed_run *run, long long seed, const struct img *im, const struct img *base,
         const char *fp, const char *base_fp)
{
    struct ig_error err = {0};
    memset(run, 0, sizeof *run);
    run->seed = seed;
    run->out.ok = 1;
    snprintf(run->out.mime, sizeof run->out.mime, "image/png");
    assert_int_equal(img_encode(im, IMG_FMT_PNG, 0, NULL, &run->out.bytes, &err), 0);
    run->out.provenance = prov(fp);
    run->out.cost_usd = 0.04;
    run->out.latency_s = 1.5;
    if (base) {
        assert_int_equal(img_encode(base, IMG_FMT_PNG, 0, NULL, &run->base.bytes, &err), 0);
        tr_sha256_hex(run->base.bytes.data, run->base.bytes.len, run->base.sha256);
        run->base.sidecar = json_pack("{s:o}", "provenance", prov(base_fp));
        run->base.present = 1;
    }
}

static struct img *
picture(int w, int h, int invert)
{
    struct img *im = img_new(w, h);
    assert_non_null(im);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im->rgba + 4 * ((size_t)y * (size_t)w + (size_t)x);
            uint8_t v = (uint8_t)((x * 255 / w) ^ ((y / 8) & 1 ? 0x40 : 0));
            p[0] = invert ? (uint8_t)(255 - v) : v;
            p[1] = (uint8_t)(y * 255 / h);
            p[2] = invert ? 30 : 200;
            p[3] = 255;
        }
    return im;
}

static void
setup_result(struct tr_result *r, struct tr_case *c, size_t n)
{
    memset(r, 0, sizeof *r);
    memset(c, 0, sizeof *c);
    c->name = "case";
    c->as.alpha = -1;
    r->c = c;
    r->backend = "b";
    r->tier = IG_TIER_PERCEPTUAL;
    r->runs = ig_calloc(n, sizeof *r->runs);
    assert_non_null(r->runs);
    r->n_runs = n;
}

static const struct tr_check *
check(const struct tr_seed_run *run, const char *name)
{
    for (int i = 0; i < run->n_checks; i++)
        if (!strcmp(run->checks[i].name, name))
            return &run->checks[i];
    fail_msg("no check '%s'", name);
    return NULL;
}

static void
task_checks(void **state)
{
    (void)state;
    struct tr_result r;
    struct tr_case c;
    setup_result(&r, &c, 1);
    c.as.width = 64;
    c.as.height = 48;
    c.as.format = "png";
    c.as.alpha = 0;
    c.as.has_cost = 1;
    c.as.cost_usd = 0.01;   /* the run cost 0.04 */
    c.as.has_latency = 1;
    c.as.latency_s = 10;
    tr_case_effective(&c, r.tier, &r.as);
    struct img *im = picture(64, 48, 0);
    make_run(&r.runs[0], 1, im, NULL, "fp_1", NULL);
    tr_judge_run(&r, &r.runs[0]);
    assert_true(check(&r.runs[0], "size")->pass);
    assert_true(check(&r.runs[0], "format")->pass);
    assert_true(check(&r.runs[0], "alpha")->pass);
    assert_true(check(&r.runs[0], "latency")->pass);
    assert_false(check(&r.runs[0], "cost")->pass);
    assert_false(r.runs[0].task_ok);
    tr_classify(&r);
    assert_int_equal(r.status, TR_FAILED);
    assert_true(r.failing);
    assert_non_null(strstr(r.message, "cost 0.04, want <= 0.01"));
    tr_result_clear(&r);
    img_free(im);
}

/* The gate and OCR checks say "unsupported" when the gateway ran neither,
 * and that fails the case: an assertion nobody evaluated never passes. */
static void
unsupported_checks_fail(void **state)
{
    (void)state;
    struct tr_result r;
    struct tr_case c;
    setup_result(&r, &c, 1);
    c.as.gate = 1;
    c.as.text = "SALE";
    tr_case_effective(&c, r.tier, &r.as);
    struct img *im = picture(32, 32, 0);
    make_run(&r.runs[0], 1, im, im, "fp_1", "fp_1");
    tr_judge_run(&r, &r.runs[0]);
    assert_true(check(&r.runs[0], "gate")->unsupported);
    assert_true(check(&r.runs[0], "text")->unsupported);
    tr_classify(&r);
    assert_int_equal(r.status, TR_FAILED);
    assert_non_null(strstr(r.message, "unsupported"));
    tr_result_clear(&r);
    img_free(im);
}

/* With the gate's report in the provenance, gate and text are read from it. */
static void
gate_report_read(void **state)
{
    (void)state;
    struct tr_result r;
    struct tr_case c;
    setup_result(&r, &c, 1);
    c.as.gate = 1;
    c.as.text = "SALE";
    tr_case_effective(&c, r.tier, &r.as);
    struct img *im = picture(32, 32, 0);
    make_run(&r.runs[0], 1, im, im, "fp_1", "fp_1");
    json_object_set_new(r.runs[0].out.provenance, "validation",
                        json_pack("[{s:b,s:[{s:s,s:f,s:f,s:b,s:s}]}]", "pass", 1, "checks",
                                  "name", "text", "score", 0.6, "bound", 0.8, "pass", 0, "note",
                                  "read 'SAIL'"));
    tr_judge_run(&r, &r.runs[0]);
    assert_true(check(&r.runs[0], "gate")->pass);
    const struct tr_check *t = check(&r.runs[0], "text");
    assert_false(t->pass || t->unsupported);
    assert_true(t->value == 0.6 && t->bound == 0.8);
    tr_classify(&r);
    assert_int_equal(r.status, TR_FAILED);
    assert_non_null(strstr(r.message, "text 0.6, want >= 0.8"));
    tr_result_clear(&r);
    img_free(im);
}

static void
picture_checks(void **state)
{
    (void)state;
    struct tr_result r;
    struct tr_case c;
    setup_result(&r, &c, 2);
    c.as.has_ssimulacra2 = 1;
    c.as.ssimulacra2 = 80;
    c.as.has_phash = 1;
    c.as.phash = 10;
    tr_case_effective(&c, r.tier, &r.as);
    struct img *a = picture(96, 96, 0), *b = picture(96, 96, 1);
    make_run(&r.runs[0], 1, a, a, "fp_1", "fp_1");
    make_run(&r.runs[1], 2, b, a, "fp_1", "fp_1");
    tr_judge_run(&r, &r.runs[0]);
    tr_judge_run(&r, &r.runs[1]);
    const struct tr_check *s0 = check(&r.runs[0], "ssimulacra2");
    assert_true(s0->pass && s0->value > 99);
    assert_true(r.runs[0].picture_ok);
    assert_false(check(&r.runs[1], "ssimulacra2")->pass);
    assert_true(check(&r.runs[0], "phash")->pass);
    assert_false(r.runs[1].picture_ok);
    assert_true(r.runs[1].task_ok);
    assert_true(r.runs[1].heatmap.len > 8);
    assert_int_equal(img_sniff(r.runs[1].heatmap.data, r.runs[1].heatmap.len), IMG_FMT_PNG);
    tr_classify(&r);
    assert_int_equal(r.status, TR_FLAKY);   /* one seed passes, one fails */
    assert_non_null(strstr(r.message, "1 of 2 seeds fail"));
    tr_result_clear(&r);
    img_free(a);
    img_free(b);
}

/* Classification from judged runs alone. */
static void
classify(void **state)
{
    (void)state;
    static const struct {
        int picture_ok[2], drifted, base, skipped, task_ok;
        enum tr_drift policy;
        enum tr_status want;
        int failing;
        const char *phrase;
    } cases[] = {
        {{1, 1}, 0, 1, 0, 1, TR_DRIFT_WARN, TR_PASS, 0, "2 seed(s) pass"},
        {{0, 0}, 0, 1, 0, 1, TR_DRIFT_WARN, TR_REGRESSION, 1, "fingerprint fp_1 unchanged"},
        {{1, 0}, 0, 1, 0, 1, TR_DRIFT_WARN, TR_FLAKY, 1, "the seed plane disagrees"},
        {{0, 0}, 1, 1, 0, 1, TR_DRIFT_WARN, TR_DRIFT, 0, "fingerprint fp_1 -> fp_2"},
        {{1, 1}, 1, 1, 0, 1, TR_DRIFT_FAIL, TR_DRIFT, 1, "(on_drift: fail)"},
        {{1, 1}, 0, 0, 0, 1, TR_DRIFT_WARN, TR_NO_BASELINE, 1, "--update-baselines"},
        {{1, 1}, 0, 1, 1, 1, TR_DRIFT_WARN, TR_SKIPPED, 1, "cost cap"},
        {{1, 1}, 1, 1, 0, 0, TR_DRIFT_WARN, TR_FAILED, 1, "seed 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tr_result r;
        struct tr_case c;
        setup_result(&r, &c, 2);
        r.on_drift = cases[i].policy;
        for (int k = 0; k < 2; k++) {
            struct tr_seed_run *run = &r.runs[k];
            run->seed = k + 1;
            run->out.ok = 1;
            run->out.provenance = prov(cases[i].drifted ? "fp_2" : "fp_1");
            run->base.present = cases[i].base;
            run->base.sidecar = json_pack("{s:o}", "provenance", prov("fp_1"));
            run->task_ok = cases[i].task_ok;
            run->picture_ok = cases[i].picture_ok[k];
            run->drifted = cases[i].drifted;
            run->skipped = cases[i].skipped && k == 1;
            if (!run->task_ok)
                snprintf(run->checks[run->n_checks++].name, 24, "size");
        }
        tr_classify(&r);
        if (r.status != cases[i].want || r.failing != cases[i].failing ||
            !strstr(r.message, cases[i].phrase))
            fail_msg("case %zu: got %s (failing %d) '%s'", i, tr_status_name(r.status),
                     r.failing, r.message);
        if (r.status == TR_DRIFT) {
            assert_string_equal(r.old_fp, "fp_1");
            assert_string_equal(r.new_fp, "fp_2");
        }
        tr_result_clear(&r);
    }
}

/* Tier none: task checks only; neither a missing baseline nor a new
 * fingerprint is held against it. */
static void
tier_none(void **state)
{
    (void)state;
    struct tr_result r;
    struct tr_case c;
    setup_result(&r, &c, 2);
    r.tier = IG_TIER_NONE;
    tr_case_effective(&c, r.tier, &r.as);
    struct img *a = picture(32, 32, 0), *b = picture(32, 32, 1);
    make_run(&r.runs[0], 1, b, a, "fp_2", "fp_1");
    make_run(&r.runs[1], 2, b, NULL, "fp_2", NULL);
    tr_judge_run(&r, &r.runs[0]);
    tr_judge_run(&r, &r.runs[1]);
    assert_false(r.runs[0].drifted);
    tr_classify(&r);
    assert_int_equal(r.status, TR_PASS);
    assert_false(r.failing);
    tr_result_clear(&r);
    img_free(a);
    img_free(b);
}

static void
totals(void **state)
{
    (void)state;
    struct tr_result res[4];
    memset(res, 0, sizeof res);
    res[0].status = TR_PASS;
    res[1].status = TR_DRIFT;
    res[2].status = TR_REGRESSION;
    res[2].failing = 1;
    res[3].status = TR_DRIFT;
    res[3].failing = 1;
    struct tr_totals t;
    tr_totals(res, 4, &t);
    assert_int_equal(t.passed, 1);
    assert_int_equal(t.failed, 1);
    assert_int_equal(t.drifted, 2);
}

int
main(void)
{
    struct ig_error err = {0};
    if (img_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(task_checks),     cmocka_unit_test(unsupported_checks_fail),
        cmocka_unit_test(gate_report_read), cmocka_unit_test(tier_none),
        cmocka_unit_test(picture_checks),  cmocka_unit_test(classify),
        cmocka_unit_test(totals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
