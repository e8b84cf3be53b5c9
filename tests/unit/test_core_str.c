/* SPDX-License-Identifier: MIT */
/* test_core_str.c -- the bounded copies, integer and fixed-point text of
 * core/str.c, held against what snprintf gives for the same call. */
#include "testutil.h"
#include "core/str.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void
test_copies_cut_like_snprintf(void **state)
{
    (void)state;
    const char *srcs[] = {"", "a", "backend:", "exactly-nine", "a longer string than any buffer"};
    for (size_t k = 0; k < sizeof srcs / sizeof srcs[0]; k++)
        for (size_t size = 1; size <= 16; size++) {
            char got[16], want[16];
            memset(got, 'x', sizeof got);
            size_t n = ig_scopy(got, size, srcs[k]);
            snprintf(want, size, "%s", srcs[k]);
            assert_string_equal(got, want);
            assert_int_equal(n, strlen(want));
            /* nothing past the terminator is touched */
            for (size_t i = n + 1; i < sizeof got; i++)
                assert_int_equal(got[i], 'x');

            char a[16], b[16];
            size_t m = ig_sjoin(a, size, "tenant:", srcs[k]);
            snprintf(b, size, "tenant:%s", srcs[k]);
            assert_string_equal(a, b);
            assert_int_equal(m, strlen(b));
        }
    char untouched = 'x';
    assert_int_equal(ig_scopy(&untouched, 0, "abc"), 0);
    assert_int_equal(untouched, 'x');
}

static void
test_integers_like_printf(void **state)
{
    (void)state;
    const long long s[] = {0, 1, -1, 9, 10, -10, 1234567890123LL, LLONG_MAX, LLONG_MIN,
                           LLONG_MIN + 1};
    for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
        char got[IG_INT_TEXT], want[32];
        size_t n = ig_fmt_ll(got, s[k]);
        snprintf(want, sizeof want, "%lld", s[k]);
        assert_string_equal(got, want);
        assert_int_equal(n, strlen(want));
    }
    const unsigned long long u[] = {0, 7, 100, ULLONG_MAX, ULLONG_MAX / 10};
    for (size_t k = 0; k < sizeof u / sizeof u[0]; k++) {
        char got[IG_INT_TEXT], want[32];
        size_t n = ig_fmt_ull(got, u[k]);
        snprintf(want, sizeof want, "%llu", u[k]);
        assert_string_equal(got, want);
        assert_int_equal(n, strlen(want));
    }
}

static void
expect_fixed6(double v)
{
    char got[IG_FIXED6_TEXT], want[IG_FIXED6_TEXT];
    size_t n = ig_fmt_fixed6(got, v);
    snprintf(want, sizeof want, "%.6f", v);
    if (strcmp(got, want) != 0 || n != strlen(want))
        fail_msg("%.17g: \"%s\" (%zu), printf \"%s\"", v, got, n, want);
}

/* Six decimals as printf writes them: its edges (halves of a millionth,
 * which printf rounds by the double's exact value; the 2^40 millionths
 * where the fast path ends; signs, -0, infinities, NaN), then a million
 * prices as money is written (whole millionths) and a million doubles
 * of every magnitude. */
static void
test_fixed6_like_printf(void **state)
{
    (void)state;
    const double edge[] = {0,          -0.0,          0.1,          0.0000005,    0.0000015,
                           0.0000025,  1e-7,          0.9999995,    0.12345649999, 1.5,
                           2.675,      1099511.627775, 1099511.627776, 1099511.627777,
                           1e15,       1e300,         -0.1,         -1e-9,        HUGE_VAL,
                           -HUGE_VAL,  NAN,           DBL_MIN,      DBL_MAX,      4.35};
    for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++)
        expect_fixed6(edge[k]);
    unsigned long long x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        expect_fixed6((double)(x % 2000000000000ull) / 1e6);
        double m = (double)(x >> 11) * 0x1p-53 * pow(10, (double)(x % 17) - 8);
        expect_fixed6(x & 1 ? -m : m);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_cut_like_snprintf),
        cmocka_unit_test(test_integers_like_printf),
        cmocka_unit_test(test_fixed6_like_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
