/* SPDX-License-Identifier: MIT */
/* test_core_str.c -- the bounded copies and integer text of core/str.c,
 * held against what snprintf gives for the same call. */
#include "testutil.h"
#include "core/str.h"

#include <limits.h>
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_cut_like_snprintf),
        cmocka_unit_test(test_integers_like_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
