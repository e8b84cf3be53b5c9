/* SPDX-License-Identifier: MIT */
/* test_testrun_suite.c -- the test suite loader: a valid suite loads with
 * its defaults folded into each case, every kind of mistake is reported at
 * its line and column, and each reproducibility tier gets its default
 * assertions. */
#include "testutil.h"
#include "core/alloc.h"
#include "tools/testrun/suite.h"

#include <stdio.h>
#include <string.h>

static const char base[] =
    "version: 1\n"                                    /* 1 */
    "gateway: {config: gw.yaml}\n"                    /* 2 */
    "baselines: base\n"                               /* 3 */
    "on_drift: rebaseline\n"                          /* 4 */
    "max_cost_usd: 2.5\n"                             /* 5 */
    "defaults:\n"                                     /* 6 */
    "  backends: [openai, flux]\n"                    /* 7 */
    "  seeds: 3\n"                                    /* 8 */
    "  assert: {cost: 0.2}\n"                         /* 9 */
    "cases:\n"                                        /* 10 */
    "  - name: fox\n"                                 /* 11 */
    "    spec: {subject: a fox, seed: 4}\n"           /* 12 */
    "    assert: {ssimulacra2: 70, phash: 9}\n"       /* 13 */
    "  - name: kite\n"                                /* 14 */
    "    prompt: a kite\n"                            /* 15 */
    "    size: 256x256\n"                             /* 16 */
    "    backends: [flux]\n"                          /* 17 */
    "    seeds: [11, 12]\n"                           /* 18 */
    "    on_drift: fail\n";                           /* 19 */

/* Loads base with line `line` replaced by `with` (NULL: as it is). */
static struct tr_suite *
load(int line, const char *with, struct ig_config_diags *d, struct ig_error *err)
{
    char text[4096] = "";
    const char *p = base;
    for (int n = 1; *p; n++) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p) + 1;
        if (n == line && with)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s\n", with);
        else
            snprintf(text + strlen(text), sizeof text - strlen(text), "%.*s", (int)len, p);
        p += len;
    }
    return tr_suite_load("dir/suite.yaml", text, strlen(text), d, err);
}

static void
valid_suite(void **state)
{
    (void)state;
    struct ig_config_diags d = {0};
    struct ig_error err = {0};
    struct tr_suite *s = load(0, NULL, &d, &err);
    assert_non_null(s);
    assert_string_equal(s->config, "dir/gw.yaml");
    assert_string_equal(s->baselines, "dir/base");
    assert_int_equal(s->on_drift, TR_DRIFT_REBASELINE);
    assert_true(s->max_cost_usd == 2.5);
    assert_int_equal(s->n_cases, 2);
    const struct tr_case *fox = &s->cases[0], *kite = &s->cases[1];
    assert_int_equal(fox->n_backends, 2);
    assert_int_equal(fox->n_seeds, 3);
    assert_true(fox->seeds[2] == 3);
    assert_true(fox->as.has_cost && fox->as.cost_usd == 0.2);
    assert_true(fox->as.has_ssimulacra2 && fox->as.ssimulacra2 == 70);
    assert_int_equal(fox->as.phash, 9);
    assert_string_equal(json_string_value(json_object_get(fox->request, "class")), "generate");
    json_t *spec = json_object_get(fox->request, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "subject")), "a fox");
    assert_int_equal(json_integer_value(json_object_get(spec, "seed")), 4);
    assert_int_equal(kite->n_backends, 1);
    assert_string_equal(kite->backends[0], "flux");
    assert_int_equal(kite->backend_line[0], 17);
    assert_int_equal(kite->n_seeds, 2);
    assert_true(kite->seeds[1] == 12);
    assert_true(kite->has_on_drift && kite->on_drift == TR_DRIFT_FAIL);
    assert_string_equal(json_string_value(json_object_get(kite->request, "size")), "256x256");
    assert_int_equal(d.n, 0);
    tr_suite_free(s);
    ig_config_diags_free(&d);
}

/* Each mistake, the line and column it is reported at, and a phrase. */
static void
errors_have_positions(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *with;
        int at_line, at_col;
        const char *phrase;
    } cases[] = {
        {4, "on_drift: maybe", 4, 11, "'on_drift' must be one of fail, warn, rebaseline"},
        {5, "max_kost: 1", 5, 1, "unknown key 'max_kost' in the suite"},
        {13, "    assert: {ssimulacra2: high}", 13, 27, "'ssimulacra2' must be a number"},
        {13, "    assert: {ssimulacra: 80}", 13, 14, "unknown key 'ssimulacra'"},
        {13, "    assert: {size: big}", 13, 20, "'size' must be WIDTHxHEIGHT"},
        {13, "    assert: {palette: [red]}", 13, 23, "palette colour 'red' must be #rrggbb"},
        {18, "    seeds: []", 18, 12, "'seeds' must be a count or a non-empty list"},
        {14, "  - name: fox", 14, 5, "case 'fox' is declared twice (first at line 11)"},
        {14, "  - name: a/b", 14, 11, "may use only letters"},
        {15, "    class: paint", 14, 5, "'class' must be generate, edit, upscale"},
        {15, "    class: upscale", 14, 5, "a upscale job needs an 'input' image"},
        {12, "    spec: {subject: a fox, medium: oil}", 12, 11, "medium"},
        {12, "    spec: missing.yaml", 12, 11, "spec file:"},
        {2, "gateway: {config: a.yaml, url: http://x}", 2, 10, "exactly one of 'config'"},
        {2, "gateway: {url: http://x, api_key: sk-live}", 2, 35, "must be a reference"},
        {3, "baselines: [a]", 3, 12, "'baselines' must be a non-empty string"},
        {19, "    on_drift: fail\n  - name: x", 20, 5, "a generate job needs 'spec' or 'prompt'"},
        {1, "version: [", 3, 1, "YAML syntax error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ig_config_diags d = {0};
        struct ig_error err = {0};
        struct tr_suite *s = load(cases[i].line, cases[i].with, &d, &err);
        if (s || d.n == 0)
            fail_msg("case %zu (%s) loaded", i, cases[i].with);
        int found = 0;
        for (size_t k = 0; k < d.n; k++)
            if (d.items[k].line == cases[i].at_line && d.items[k].col == cases[i].at_col &&
                strstr(d.items[k].message, cases[i].phrase))
                found = 1;
        if (!found)
            fail_msg("case %zu (%s): want %d:%d '%s', got %d:%d '%s'", i, cases[i].with,
                     cases[i].at_line, cases[i].at_col, cases[i].phrase, d.items[0].line,
                     d.items[0].col, d.items[0].message);
        assert_string_equal(err.code, "bad_suite");
        assert_non_null(strstr(err.message, "dir/suite.yaml:"));
        ig_config_diags_free(&d);
    }
}

static void
tier_defaults(void **state)
{
    (void)state;
    struct ig_config_diags d = {0};
    struct ig_error err = {0};
    struct tr_suite *s = load(0, NULL, &d, &err);
    assert_non_null(s);
    struct tr_assert a;
    const struct tr_case *kite = &s->cases[1];   /* no picture bounds of its own */
    tr_case_effective(kite, IG_TIER_BYTES, &a);
    assert_true(a.has_bytes && a.bytes && !a.has_ssimulacra2);
    tr_case_effective(kite, IG_TIER_PERCEPTUAL, &a);
    assert_true(a.has_ssimulacra2 && a.ssimulacra2 == 80 && !a.has_bytes);
    tr_case_effective(kite, IG_TIER_FINGERPRINT, &a);
    assert_true(a.has_ssimulacra2 && a.ssimulacra2 == 80);
    tr_case_effective(kite, IG_TIER_NONE, &a);
    assert_false(a.has_ssimulacra2 || a.has_bytes);
    assert_true(a.has_cost);   /* task checks stay */
    const struct tr_case *fox = &s->cases[0];    /* its own bounds win */
    tr_case_effective(fox, IG_TIER_PERCEPTUAL, &a);
    assert_true(a.ssimulacra2 == 70 && a.has_phash);
    tr_suite_free(s);
    ig_config_diags_free(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_suite),
        cmocka_unit_test(errors_have_positions),
        cmocka_unit_test(tier_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
