/* SPDX-License-Identifier: MIT */
/* str.h -- bounded string copies and integer text, for hot paths.
 *
 * glibc's snprintf parses its format and sets up a string FILE on every
 * call: 500-700 instructions for a "%s" or a "%d". A relayed request made
 * a few dozen such calls (labels, copies into fixed fields, numbers in
 * JSON), 6 % of its instructions, where these take a strlen and a memcpy. */
#ifndef IG_CORE_STR_H
#define IG_CORE_STR_H

#include <stddef.h>

/* Copies src into dst[size], cut to fit and NUL-terminated (size > 0), as
 * snprintf(dst, size, "%s", src) does; gives the length written, not the
 * length src had. */
size_t ig_scopy(char *dst, size_t size, const char *src);
/* a then b, the same way. */
size_t ig_sjoin(char *dst, size_t size, const char *a, const char *b);

/* v in decimal, NUL-terminated, into dst (IG_INT_TEXT bytes hold any);
 * gives its length. */
#define IG_INT_TEXT 21
size_t ig_fmt_ll(char dst[IG_INT_TEXT], long long v);
size_t ig_fmt_ull(char dst[IG_INT_TEXT], unsigned long long v);

/* v with six decimals, the same text as snprintf(dst, IG_FIXED6_TEXT,
 * "%.6f", v) -- which it calls for a value whose millionths are not a
 * whole number below 2^40 (a price past a million dollars, a negative or
 * non-finite one); gives its length. */
#define IG_FIXED6_TEXT 32
size_t ig_fmt_fixed6(char dst[IG_FIXED6_TEXT], double v);

#endif
