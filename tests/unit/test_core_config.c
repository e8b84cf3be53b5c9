/* SPDX-License-Identifier: MIT */
/* test_core_config.c -- the config loader: valid configs load with their
 * values, and every kind of error is reported with its line and column. */
#include "testutil.h"
#include "core/alloc.h"
#include "core/config.h"

#include <stdio.h>
#include <string.h>

/* A valid base config; each error test replaces one marked line. */
static const char base[] =
    "backends:\n"                                          /* 1 */
    "  - name: gen\n"                                      /* 2 */
    "    adapter: openai\n"                                /* 3 */
    "    endpoint: http://127.0.0.1:9/v1\n"                /* 4 */
    "    credential: env:KEY\n"                            /* 5 */
    "    contract:\n"                                      /* 6 */
    "      classes: [generate]\n"                          /* 7 */
    "      sizes: [1024x1024]\n"                           /* 8 */
    "      grammar: natural-language\n"                    /* 9 */
    "      tier: fingerprint\n"                            /* 10 */
    "      license: {id: proprietary, flags: [commercial]}\n" /* 11 */
    "      price: {model: per-image, usd: 0.04}\n"         /* 12 */
    "  - name: up\n"                                       /* 13 */
    "    adapter: local-lanczos\n"                         /* 14 */
    "    contract:\n"                                      /* 15 */
    "      classes: [upscale]\n"                           /* 16 */
    "      scales: [2]\n"                                  /* 17 */
    "      grammar: none\n"                                /* 18 */
    "      tier: bytes\n"                                  /* 19 */
    "      license: {id: MIT, flags: [commercial]}\n"      /* 20 */
    "      price: {model: free}\n"                         /* 21 */
    "ladders:\n"                                           /* 22 */
    "  - name: g\n"                                        /* 23 */
    "    class: generate\n"                                /* 24 */
    "    rungs:\n"                                         /* 25 */
    "      - {backend: gen}\n";                            /* 26 */

/* Replaces line `line` (1-based) of base with `with` (no newline). */
static char *
edit_line(int line, const char *with)
{
    static char out[4096];
    const char *p = base;
    size_t len = 0;
    for (int l = 1; *p; l++) {
        const char *nl = strchr(p, '\n');
        size_t n = (size_t)(nl - p);
        if (l == line)
            len += (size_t)snprintf(out + len, sizeof out - len, "%s\n", with);
        else
            len += (size_t)snprintf(out + len, sizeof out - len, "%.*s\n", (int)n, p);
        p = nl + 1;
    }
    return out;
}

static struct ig_config_diags diags;

static struct ig_config *
load(const char *text)
{
    struct ig_error err = {0};
    ig_config_diags_free(&diags);
    struct ig_config *c = ig_config_load("t.yaml", text, strlen(text), &diags, &err);
    if (!c) {
        assert_string_equal(err.code, "bad_config");
        assert_true(diags.n > 0);
    }
    return c;
}

/* Asserts one diagnostic at line:col whose message contains `needle`. */
static void
expect_diag(int line, int col, const char *needle)
{
    for (size_t i = 0; i < diags.n; i++)
        if (diags.items[i].line == line && (col == 0 || diags.items[i].col == col) &&
            strstr(diags.items[i].message, needle))
            return;
    for (size_t i = 0; i < diags.n; i++)
        print_message("  got %d:%d: %s\n", diags.items[i].line, diags.items[i].col,
                      diags.items[i].message);
    fail_msg("no diagnostic at %d:%d containing '%s'", line, col, needle);
}

static void
test_base_is_valid(void **state)
{
    struct ig_config *c = load(base);
    assert_non_null(c);
    assert_int_equal(c->n_backends, 2);
    assert_string_equal(c->backends[0].name, "gen");
    assert_int_equal(c->backends[0].contract.tier, IG_TIER_FINGERPRINT);
    assert_int_equal(c->backends[0].contract.sizes[0].w, 1024);
    assert_true(c->backends[0].contract.license.flags & IG_LIC_COMMERCIAL);
    assert_int_equal(c->backends[1].contract.scales[0], 2);
    /* defaults filled in */
    assert_true(c->limits.max_pixels > 0);
    assert_int_equal(c->limits.max_json_depth, 32);
    ig_config_free(c);
}

static void
test_file_values(void **state)
{
    struct ig_error err = {0};
    struct ig_config *c = ig_config_load_file(tu_data("config/minimal.yaml"), NULL, &err);
    assert_non_null(c);
    assert_int_equal(c->limits.max_body_bytes, 8L << 20);
    assert_int_equal(c->limits.max_pixels, 4000000);
    const struct ig_tenant_cfg *t = ig_config_tenant(c, "acme");
    assert_non_null(t);
    assert_true(t->license_policy.deny_copyleft);
    assert_true(t->budget_daily_usd == 10.0);
    assert_int_equal(t->n_allowed, 2);
    /* the tenant's own ladder wins over the class default */
    assert_string_equal(ig_config_ladder(c, IG_CLASS_GENERATE, "acme")->name, "gen-acme");
    assert_string_equal(ig_config_ladder(c, IG_CLASS_GENERATE, "other")->name, "gen-default");
    assert_null(ig_config_ladder(c, IG_CLASS_EDIT, NULL));
    assert_true(ig_config_threshold(c, IG_CLASS_UPSCALE, "lr_psnr", 1.0) == 31.5);
    assert_true(ig_config_threshold(c, IG_CLASS_UPSCALE, "lr_ssim", 0.9) == 0.9);
    const struct ig_contract *k = &ig_config_backend(c, "gen")->contract;
    assert_true(ig_contract_accepts_size(k, 1536, 1024));
    assert_false(ig_contract_accepts_size(k, 1024, 1536));
    ig_config_free(c);
}

static void
test_default_config_loads(void **state)
{
    struct ig_error err = {0};
    struct ig_config *c = ig_config_load_default(NULL, &err);
    if (!c)
        fail_msg("embedded config: %s", err.message);
    for (int cls = 0; cls < IG_CLASS_COUNT; cls++)
        assert_non_null(ig_config_ladder(c, (enum ig_class)cls, NULL));
    ig_config_free(c);
}

static void
test_unknown_key(void **state)
{
    assert_null(load(edit_line(5, "    credentials: env:KEY")));
    expect_diag(5, 5, "unknown key 'credentials'");
}

static void
test_wrong_types(void **state)
{
    assert_null(load(edit_line(12, "      price: {model: per-image, usd: cheap}")));
    expect_diag(12, 38, "'usd' must be a number");
    assert_null(load(edit_line(17, "      scales: two")));
    expect_diag(17, 15, "'scales' must be a list");
    assert_null(load(edit_line(10, "      tier: golden")));
    expect_diag(10, 13, "'tier' must be one of bytes, perceptual");
    assert_null(load(edit_line(8, "      sizes: [1024by1024]")));
    expect_diag(8, 15, "WIDTHxHEIGHT");
}

static void
test_header_bytes_range(void **state)
{
    static const char *const bad[] = {"1KiB", "2MiB", "lots"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[4096];
        snprintf(text, sizeof text, "%slimits: {max_header_bytes: %s}\n", base, bad[i]);
        assert_null(load(text));
        expect_diag(27, 0, "'max_header_bytes' must be");
    }
    char text[4096];
    snprintf(text, sizeof text, "%slimits: {max_header_bytes: 64KiB}\n", base);
    struct ig_config *c = load(text);
    assert_non_null(c);
    assert_int_equal(c->limits.max_header_bytes, 64L << 10);
    ig_config_free(c);
    c = load(base);
    assert_non_null(c);
    assert_int_equal(c->limits.max_header_bytes, 16L << 10);
    ig_config_free(c);
}

static void
test_missing_contract_field(void **state)
{
    assert_null(load(edit_line(10, "      supports: [seed]")));
    expect_diag(7, 7, "missing required key 'tier'");
}

static void
test_ladder_unknown_backend(void **state)
{
    assert_null(load(edit_line(26, "      - {backend: dalle}")));
    expect_diag(26, 9, "unknown backend 'dalle'");
}

static void
test_ladder_class_mismatch(void **state)
{
    assert_null(load(edit_line(26, "      - {backend: up}")));
    expect_diag(26, 9, "does not serve it");
}

static void
test_inline_secret_is_refused_without_echo(void **state)
{
    assert_null(load(edit_line(5, "    credential: sk-secret-value-123")));
    expect_diag(2, 5, "must be a reference");
    for (size_t i = 0; i < diags.n; i++)
        assert_null(strstr(diags.items[i].message, "sk-secret"));
}

static void
test_yaml_syntax_error(void **state)
{
    assert_null(load(edit_line(9, "      grammar: [natural")));
    assert_true(diags.n >= 1);
    assert_non_null(strstr(diags.items[0].message, "YAML syntax error"));
    assert_true(diags.items[0].line >= 9);
}

static void
test_many_errors_all_reported(void **state)
{
    char text[4096];
    snprintf(text, sizeof text, "%s", edit_line(3, "    adapter: dalle"));
    char *p = strstr(text, "tier: bytes");
    memcpy(p, "tier: bytez", 11);
    assert_null(load(text));
    expect_diag(2, 5, "unknown adapter 'dalle'");
    expect_diag(19, 13, "'tier' must be one of");
}

static void
test_empty_and_garbage(void **state)
{
    assert_null(load(""));
    expect_diag(1, 1, "empty");
    assert_null(load("- just\n- a list\n"));
    expect_diag(1, 1, "must be a mapping");
    assert_null(load("\x01\x02\xff\xfe garbage"));
}

static void
test_unreadable_file(void **state)
{
    struct ig_error err = {0};
    assert_null(ig_config_load_file("/nonexistent/imagegate.yaml", NULL, &err));
    assert_string_equal(err.code, "config_unreadable");
}

/* Every allocation the loader makes may fail; each must give an error, never
 * a crash or a leak (the ASan build checks the leaks). */
static void
test_every_allocation_failure(void **state)
{
    struct ig_error err = {0};
    ig_alloc_fail_at(0);
    struct ig_config *c = ig_config_load("t.yaml", base, strlen(base), NULL, &err);
    assert_non_null(c);
    ig_config_free(c);
    unsigned long total = ig_alloc_fail_at(0);
    assert_true(total >= 2);
    for (unsigned long n = 1; n <= total; n++) {
        struct ig_config_diags d = {0};
        ig_alloc_fail_at(n);
        c = ig_config_load("t.yaml", base, strlen(base), &d, &err);
        ig_alloc_fail_at(0);
        assert_null(c);
        ig_config_diags_free(&d);
    }
}

static void
test_size_parse(void **state)
{
    (void)state;
    struct ig_size s = {0, 0};
    assert_int_equal(ig_size_parse("1024x1536", &s), 0);
    assert_int_equal(s.w, 1024);
    assert_int_equal(s.h, 1536);
    assert_int_equal(ig_size_parse("1x16384", &s), 0);
    assert_int_equal(s.h, IG_SIDE_MAX);
    /* Each of these once passed a sscanf("%dx%d") somewhere. */
    const char *bad[] = {"1024x1024junk", "1024x1024 ", " 1024x1024", "+1024x1024", "1024x+1024",
                         "1024x", "x1024", "1024", "1024X1024", "0x1024", "1024x0", "-1x5",
                         "16385x1024", "99999999999x1024", "1024x99999999999", "", "auto",
                         "1024x1024x3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.w = s.h = 7;
        assert_int_equal(ig_size_parse(bad[i], &s), -1);
        assert_int_equal(s.w, 7);   /* untouched on refusal */
    }
    /* The same parser for ratios, with its own separator and bound. */
    int a = 0, b = 0;
    assert_int_equal(ig_pair_parse("16:9", ':', 100, &a, &b), 0);
    assert_int_equal(a, 16);
    assert_int_equal(b, 9);
    assert_int_equal(ig_pair_parse("16x9", ':', 100, &a, &b), -1);
    assert_int_equal(ig_pair_parse("101:9", ':', 100, &a, &b), -1);
    assert_int_equal(ig_pair_parse("21:999999999", ':', IG_SIDE_MAX, &a, &b), -1);
    assert_int_equal(a, 16);   /* untouched on refusal */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_is_valid),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_default_config_loads),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_header_bytes_range),
        cmocka_unit_test(test_missing_contract_field),
        cmocka_unit_test(test_ladder_unknown_backend),
        cmocka_unit_test(test_ladder_class_mismatch),
        cmocka_unit_test(test_inline_secret_is_refused_without_echo),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_many_errors_all_reported),
        cmocka_unit_test(test_empty_and_garbage),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_every_allocation_failure),
        cmocka_unit_test(test_size_parse),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ig_config_diags_free(&diags);
    return rc;
}
