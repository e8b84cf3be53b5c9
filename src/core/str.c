/* SPDX-License-Identifier: MIT */
/* str.c -- bounded string copies and integer text (see str.h for why). */
#include "core/str.h"

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
