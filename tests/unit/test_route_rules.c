/* SPDX-License-Identifier: MIT */
/* test_route_rules.c -- pricing, licence policy, ladder planning, backoff,
 * Retry-After, token buckets, breakers and concurrency caps. */
#include "testutil.h"
#include "core/config.h"
#include "route/limit.h"
#include "route/route.h"

#include <math.h>
#include <string.h>

static struct ig_config *cfg;

static int
setup(void **state)
{
    struct ig_error err = {0};
    cfg = ig_config_load_default(NULL, &err);
    return cfg ? 0 : -1;
}

static int
teardown(void **state)
{
    ig_config_free(cfg);
    return 0;
}

static int
near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

static void
test_price(void **state)
{
    const struct ig_contract *openai = &ig_config_backend(cfg, "openai")->contract;
    assert_true(near(route_price(openai, 1024, 1024, "low", 1), 0.011));
    assert_true(near(route_price(openai, 1024, 1024, "high", 2), 0.334));
    assert_true(near(route_price(openai, 1536, 1024, "medium", 1), 0.063));
    /* Unknown quality reserves the dearest matching row. */
    assert_true(near(route_price(openai, 1024, 1024, NULL, 1), 0.167));
    const struct ig_contract *flux = &ig_config_backend(cfg, "flux-pro")->contract;
    assert_true(near(route_price(flux, 1024, 1024, NULL, 3), 0.12));   /* 4 credits x $0.01 */
    const struct ig_contract *fal = &ig_config_backend(cfg, "fal-flux-dev")->contract;
    assert_true(near(route_price(fal, 1024, 1024, NULL, 1), 0.025 * 2));  /* 1.05 MP rounds up */
    assert_true(near(route_price(fal, 512, 512, NULL, 1), 0.025));        /* at least 1 MP */
    assert_true(near(route_price(&ig_config_backend(cfg, "local-lanczos")->contract, 4096, 4096,
                                 NULL, 1), 0));
}

static void
test_license_policy(void **state)
{
    struct ig_tenant_cfg t = {.name = "strict"};
    char why[256];
    const struct ig_contract *isnet = &ig_config_backend(cfg, "local-isnet")->contract;
    assert_true(route_license_allows(&t, isnet, why, sizeof why));
    t.license_policy.deny_copyleft = 1;
    assert_false(route_license_allows(&t, isnet, why, sizeof why));
    assert_non_null(strstr(why, "copyleft"));
    assert_non_null(strstr(why, "AGPL-3.0"));
    const struct ig_contract *fal = &ig_config_backend(cfg, "fal-flux-dev")->contract;
    t.license_policy.deny_noncommercial = 1;
    assert_false(route_license_allows(&t, fal, why, sizeof why));
    assert_non_null(strstr(why, "non-commercial"));
    struct ig_tenant_cfg c = {.name = "c"};
    c.license_policy.require_commercial = 1;
    assert_false(route_license_allows(&c, fal, why, sizeof why));
    assert_true(route_license_allows(&c, &ig_config_backend(cfg, "openai")->contract, why,
                                     sizeof why));
}

/* A no-copyleft tenant sees the AGPL-packaged cutout backend refused, and
 * the ladder moves on to the next rung. */
static void
test_plan_skips_copyleft_for_strict_tenant(void **state)
{
    struct ig_tenant_cfg t = {.name = "strict"};
    t.license_policy.deny_copyleft = 1;
    struct route_need need = {.cls = IG_CLASS_REMOVE_BACKGROUND, .input_pixels = 512 * 512};
    struct route_candidate c[8];
    struct ig_error err = {0};
    int n = route_plan(cfg, &t, NULL, &need, c, 8, &err);
    assert_int_equal(n, 3);
    assert_string_equal(c[0].backend->name, "local-isnet");
    assert_false(c[0].usable);
    assert_non_null(strstr(c[0].why, "copyleft"));
    assert_true(c[1].usable);
    assert_true(c[2].usable);
    /* The default tenant has no such policy. */
    n = route_plan(cfg, ig_config_tenant(cfg, "default"), NULL, &need, c, 8, &err);
    assert_true(c[0].usable);
}

static void
test_plan_reasons(void **state)
{
    struct route_candidate c[8];
    struct ig_error err = {0};
    struct route_need up = {.cls = IG_CLASS_UPSCALE, .scale = 16, .input_pixels = 100};
    int n = route_plan(cfg, NULL, NULL, &up, c, 8, &err);
    assert_int_equal(n, 2);
    assert_false(c[0].usable);
    assert_non_null(strstr(c[0].why, "x16"));
    struct route_need big = {.cls = IG_CLASS_UPSCALE, .scale = 2, .input_pixels = 20000000};
    n = route_plan(cfg, NULL, NULL, &big, c, 8, &err);
    assert_false(c[0].usable);    /* rdn: 16 MP limit */
    assert_true(c[1].usable);     /* lanczos: 50 MP */
    /* The result's size: x8 of 4 MP is 256 MP, over both rungs' output
     * limits; x8 of 1 MP (64 MP) fits both. */
    struct route_need huge = {.cls = IG_CLASS_UPSCALE, .scale = 8, .input_pixels = 4000000};
    n = route_plan(cfg, NULL, NULL, &huge, c, 8, &err);
    assert_int_equal(n, 2);
    for (int i = 0; i < 2; i++) {
        assert_false(c[i].usable);
        if (!strstr(c[i].why, "output limit"))
            fail_msg("rung %d: %s", i, c[i].why);
    }
    huge.input_pixels = 1000000;
    n = route_plan(cfg, NULL, NULL, &huge, c, 8, &err);
    assert_true(c[0].usable && c[1].usable);
    struct route_need mask = {.cls = IG_CLASS_EDIT, .wants_mask = 1};
    n = route_plan(cfg, NULL, NULL, &mask, c, 8, &err);
    assert_true(c[0].usable);     /* openai takes a mask */
    assert_false(c[1].usable);    /* gemini does not */
    assert_non_null(strstr(c[1].why, "mask"));
    /* Named backend and named ladder. */
    struct route_need named = {.cls = IG_CLASS_GENERATE, .backend = "gemini"};
    assert_int_equal(route_plan(cfg, NULL, NULL, &named, c, 8, &err), 1);
    assert_string_equal(c[0].backend->name, "gemini");
    named.backend = "generate-default";
    assert_int_equal(route_plan(cfg, NULL, NULL, &named, c, 8, &err), 3);
    named.backend = "upscale-default";
    assert_int_equal(route_plan(cfg, NULL, NULL, &named, c, 8, &err), -1);
    assert_string_equal(err.code, "ladder_class_mismatch");
    named.backend = "dall-e-9";
    assert_int_equal(route_plan(cfg, NULL, NULL, &named, c, 8, &err), -1);
    assert_string_equal(err.code, "unknown_ladder");
}

static void
test_backoff(void **state)
{
    uint64_t rng = 42;
    for (int attempt = 1; attempt <= 10; attempt++) {
        long cap = 100L << (attempt - 1);
        if (cap > 5000)
            cap = 5000;
        for (int i = 0; i < 200; i++) {
            long d = route_backoff_ms(attempt, 100, 5000, 0, &rng);
            assert_true(d >= 0 && d <= cap);
        }
    }
    /* Jitter spreads: 200 draws are not all equal. */
    long first = route_backoff_ms(5, 100, 5000, 0, &rng), differ = 0;
    for (int i = 0; i < 200; i++)
        differ += route_backoff_ms(5, 100, 5000, 0, &rng) != first;
    assert_true(differ > 100);
    /* Retry-After is a floor. */
    assert_true(route_backoff_ms(1, 100, 5000, 7000, &rng) == 7000);
}

static void
test_retry_after(void **state)
{
    assert_int_equal(route_parse_retry_after("12", 0), 12000);
    assert_int_equal(route_parse_retry_after(" 1.5", 0), 1500);
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    assert_int_equal(route_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10000);
    assert_int_equal(route_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);
    assert_int_equal(route_parse_retry_after("soon", 0), -1);
    assert_int_equal(route_parse_retry_after("-3", 0), -1);
    assert_int_equal(route_parse_retry_after("5 minutes", 0), -1);
    assert_int_equal(route_parse_retry_after(NULL, 0), -1);
}

static void
test_bucket(void **state)
{
    struct route_bucket b;
    long wait;
    route_bucket_init(&b, 60, 0);   /* one a second, burst 60 */
    for (int i = 0; i < 60; i++)
        assert_true(route_bucket_take(&b, 1, 0, &wait));
    assert_false(route_bucket_take(&b, 1, 0, &wait));
    assert_int_equal(wait, 1000);
    assert_false(route_bucket_take(&b, 1, 500, &wait));
    assert_true(route_bucket_take(&b, 1, 1000, &wait));
    assert_false(route_bucket_take(&b, 61, 1000000, &wait));
    assert_int_equal(wait, -1);   /* never possible */
}

static void
test_breaker(void **state)
{
    struct route_breaker b;
    route_breaker_init(&b, 3, 1000);
    for (int i = 0; i < 2; i++) {
        assert_true(route_breaker_allow(&b, 0));
        route_breaker_record(&b, 0, 0);
    }
    assert_int_equal(b.state, ROUTE_BREAKER_CLOSED);
    route_breaker_record(&b, 0, 10);
    assert_int_equal(b.state, ROUTE_BREAKER_OPEN);
    assert_false(route_breaker_allow(&b, 500));
    assert_true(route_breaker_allow(&b, 1010));     /* the probe */
    assert_int_equal(b.state, ROUTE_BREAKER_HALF_OPEN);
    assert_false(route_breaker_allow(&b, 1011));    /* only one probe */
    route_breaker_record(&b, 0, 1020);              /* probe failed: open again */
    assert_int_equal(b.state, ROUTE_BREAKER_OPEN);
    assert_false(route_breaker_allow(&b, 1500));
    assert_true(route_breaker_allow(&b, 2100));
    route_breaker_record(&b, 1, 2110);
    assert_int_equal(b.state, ROUTE_BREAKER_CLOSED);
    assert_true(route_breaker_allow(&b, 2111));
    /* A success resets the consecutive count. */
    route_breaker_record(&b, 0, 0);
    route_breaker_record(&b, 0, 0);
    route_breaker_record(&b, 1, 0);
    route_breaker_record(&b, 0, 0);
    assert_int_equal(b.state, ROUTE_BREAKER_CLOSED);
}

static void
test_limits_table(void **state)
{
    struct route_limits *l = route_limits_new();
    struct route_limit_spec s = {.rpm = 10, .ipm = 4, .concurrency = 2};
    long wait;
    char why[200];
    assert_true(route_limits_admit(l, "t", &s, 2, "h", 0, &wait, why, sizeof why));
    assert_true(route_limits_admit(l, "t", &s, 1, "h", 0, &wait, why, sizeof why));
    assert_false(route_limits_admit(l, "t", &s, 1, "h", 0, &wait, why, sizeof why));
    assert_non_null(strstr(why, "in flight"));
    route_limits_release(l, "t", "h");
    /* 3 images used, 1 left: a request for 2 is refused whole, and takes no
     * request token either. */
    assert_false(route_limits_admit(l, "t", &s, 2, "h", 0, &wait, why, sizeof why));
    assert_non_null(strstr(why, "images per minute"));
    assert_true(wait > 0);
    assert_int_equal(route_limits_in_flight(l, "t"), 1);
    assert_true(route_limits_admit(l, "t", &s, 1, "h", 0, &wait, why, sizeof why));
    route_limits_release(l, "t", "h");
    route_limits_release(l, "t", "h");
    assert_int_equal(route_limits_in_flight(l, "t"), 0);
    /* Breakers by name. */
    struct route_limit_spec bs = {.breaker_threshold = 1, .breaker_cooldown_ms = 100};
    assert_true(route_limits_breaker_allow(l, "b", &bs, 0));
    route_limits_breaker_record(l, "b", 0, 0);
    assert_int_equal(route_limits_breaker_state(l, "b"), ROUTE_BREAKER_OPEN);
    assert_false(route_limits_breaker_allow(l, "b", &bs, 50));
    assert_true(route_limits_breaker_allow(l, "b", &bs, 150));
    route_limits_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_price),
        cmocka_unit_test(test_license_policy),
        cmocka_unit_test(test_plan_skips_copyleft_for_strict_tenant),
        cmocka_unit_test(test_plan_reasons),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_limits_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
