/* SPDX-License-Identifier: MIT */
/* str.c -- bounded string copies and integer text (see str.h for why). */
#include "core/str.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t
ig_scopy(char *dst, size_t size, const char *src)
{
    if (!size)
        return 0;
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

size_t
ig_sjoin(char *dst, size_t size, const char *a, const char *b)
{
    size_t n = ig_scopy(dst, size, a);
    return n + ig_scopy(dst + n, size - n, b);
}

size_t
ig_fmt_ull(char dst[IG_INT_TEXT], unsigned long long v)
{
    char t[IG_INT_TEXT];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = t[n - 1 - i];
    dst[n] = '\0';
    return n;
}

size_t
ig_fmt_ll(char dst[IG_INT_TEXT], long long v)
{
    if (v >= 0)
        return ig_fmt_ull(dst, (unsigned long long)v);
    /* The magnitude in unsigned arithmetic: -LLONG_MIN does not fit. It has
     * 19 digits at most, so the sign and it fit dst. */
    char t[IG_INT_TEXT];
    size_t n = ig_fmt_ull(t, 0ull - (unsigned long long)v);
    dst[0] = '-';
    memcpy(dst + 1, t, n + 1);
    return n + 1;
}

size_t
ig_fmt_fixed6(char dst[IG_FIXED6_TEXT], double v)
{
    /* m is v * 10^6 rounded once; below 2^40 its error is under 2^-13, so
     * when it is a whole number the exact product lies that close to it,
     * and printf's correctly rounded sixth decimal is the same digit. */
    double m = v * 1e6;
    if (!signbit(v) && m < 1099511627776.0 && m == floor(m)) {
        unsigned long long u = (unsigned long long)m;
        size_t n = ig_fmt_ull(dst, u / 1000000);
        dst[n++] = '.';
        unsigned long long frac = u % 1000000;
        for (int i = 5; i >= 0; i--, frac /= 10)
            dst[n + (size_t)i] = (char)('0' + frac % 10);
        dst[n + 6] = '\0';
        return n + 6;
    }
    int n = snprintf(dst, IG_FIXED6_TEXT, "%.6f", v);
    return n < 0 ? 0 : (size_t)n < IG_FIXED6_TEXT ? (size_t)n : IG_FIXED6_TEXT - 1;
}
