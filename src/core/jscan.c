/* SPDX-License-Identifier: MIT */
/* jscan.c -- structural JSON scan for the relay (see jscan.h for why). */
#include "core/jscan.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

struct scan {
    const char *p, *end, *doc;
    int depth, max_depth;
    struct ig_error *err;
};

static int
bad(struct scan *s, const char *what)
{
    return ig_error_set(s->err, 400, "bad_json", "the body is not valid JSON: %s at byte %zu",
                        what, (size_t)(s->p - s->doc));
}

static void
skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* The first '"', '\\' or byte below 0x20 in [p, end), or end. Strings
 * here are mostly long base64, so this one pass is the scanner's cost:
 * sixteen bytes a compare where SSE2 is (every x86-64), a byte at a time
 * elsewhere. It replaced memchr for the quote, memchr for a backslash
 * and an eight-byte bit trick for control characters, three passes. */
static const char *
first_special(const char *p, const char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  ctl = _mm_set1_epi8(0x1f);
    while (end - p >= 64) {
        int bits[4];
        for (int k = 0; k < 4; k++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                  _mm_cmpeq_epi8(x, bslash)),
                                     _mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x));
            bits[k] = _mm_movemask_epi8(m);
        }
        if (bits[0] | bits[1] | bits[2] | bits[3]) {
            for (int k = 0; k < 4; k++)
                if (bits[k])
                    return p + 16 * k + __builtin_ctz((unsigned)bits[k]);
        }
        p += 64;
    }
#endif
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20)
            return p;
    }
    return end;
}

/* At an opening quote: moves past the closing one. */
static int
skip_string(struct scan *s)
{
    s->p++;
    for (;;) {
        const char *x = first_special(s->p, s->end);
        if (x == s->end)
            return bad(s, "unterminated string");
        if (*x == '"') {
            s->p = x + 1;
            return 0;
        }
        if ((unsigned char)*x < 0x20) {
            s->p = x;
            return bad(s, "control character in a string");
        }
        const char *c = x + 1;        /* the escaped character */
        if (c >= s->end) {
            s->p = x;
            return bad(s, "unterminated string");
        }
        if (*c == 'u') {
            for (int k = 1; k <= 4; k++)
                if (c + k >= s->end || !c[k] || !strchr("0123456789abcdefABCDEF", c[k])) {
                    s->p = c;
                    return bad(s, "bad \\u escape");
                }
            s->p = c + 5;
        } else if (!*c || !strchr("\"\\/bfnrt", *c)) {
            s->p = c;
            return bad(s, "bad escape");
        } else {
            s->p = c + 1;
        }
    }
}

static int
skip_number(struct scan *s)
{
    const char *p = s->p;
    if (p < s->end && *p == '-')
        p++;
    if (p >= s->end || *p < '0' || *p > '9')
        return bad(s, "bad number");
    if (*p == '0')
        p++;
    else
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    if (p < s->end && *p == '.') {
        p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return bad(s, "bad number");
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return bad(s, "bad number");
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    return 0;
}

static int skip_value(struct scan *s, enum ig_jtype *type);

static int
skip_container(struct scan *s, int object)
{
    if (++s->depth > s->max_depth)
        return ig_error_set(s->err, 400, "json_too_deep", "the body nests deeper than %d",
                            s->max_depth);
    char close = object ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(s);
        if (object) {
            if (s->p >= s->end || *s->p != '"')
                return bad(s, "expected a key");
            if (skip_string(s) != 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return bad(s, "expected ':'");
            s->p++;
        }
        enum ig_jtype t;
        if (skip_value(s, &t) != 0)
            return -1;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            s->depth--;
            return 0;
        }
        return bad(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int
literal(struct scan *s, const char *word, enum ig_jtype t, enum ig_jtype *type)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return bad(s, "unexpected character");
    s->p += n;
    *type = t;
    return 0;
}

static int
skip_value(struct scan *s, enum ig_jtype *type)
{
    skip_ws(s);
    if (s->p >= s->end)
        return bad(s, "unexpected end");
    switch (*s->p) {
    case '"': *type = IG_J_STRING; return skip_string(s);
    case '{': *type = IG_J_OBJECT; return skip_container(s, 1);
    case '[': *type = IG_J_ARRAY; return skip_container(s, 0);
    case 't': return literal(s, "true", IG_J_TRUE, type);
    case 'f': return literal(s, "false", IG_J_FALSE, type);
    case 'n': return literal(s, "null", IG_J_NULL, type);
    default: *type = IG_J_NUMBER; return skip_number(s);
    }
}

int
ig_jscan(const char *doc, size_t len, int max_depth, struct ig_jfield *fields, size_t n,
         struct ig_error *err)
{
    struct scan s = {.p = doc, .end = doc + len, .doc = doc,
                     .max_depth = max_depth > 0 ? max_depth : 64, .err = err};
    for (size_t i = 0; i < n; i++)
        fields[i].type = IG_J_ABSENT;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return bad(&s, "expected an object");
    s.p++;
    s.depth = 1;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            skip_ws(&s);
            if (s.p >= s.end || *s.p != '"')
                return bad(&s, "expected a key");
            const char *k = s.p + 1;
            if (skip_string(&s) != 0)
                return -1;
            size_t klen = (size_t)(s.p - 1 - k);
            skip_ws(&s);
            if (s.p >= s.end || *s.p != ':')
                return bad(&s, "expected ':'");
            s.p++;
            skip_ws(&s);
            const char *v = s.p;
            enum ig_jtype t;
            if (skip_value(&s, &t) != 0)
                return -1;
            /* A repeated key: the last one wins, as in jansson. */
            for (size_t i = 0; i < n; i++)
                if (strlen(fields[i].key) == klen && memcmp(fields[i].key, k, klen) == 0) {
                    fields[i].type = t;
                    fields[i].off = (size_t)(v - doc);
                    fields[i].len = (size_t)(s.p - v);
                }
            skip_ws(&s);
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                continue;
            }
            if (s.p < s.end && *s.p == '}') {
                s.p++;
                break;
            }
            return bad(&s, "expected ',' or '}'");
        }
    }
    skip_ws(&s);
    if (s.p != s.end)
        return bad(&s, "text after the end");
    return 0;
}

int
ig_jscan_items(const char *doc, const struct ig_jfield *array, struct ig_jfield *items,
               size_t max, size_t *n)
{
    *n = 0;
    if (array->type != IG_J_ARRAY || array->len < 2)
        return -1;
    struct ig_error err = {0};
    struct scan s = {.p = doc + array->off + 1, .end = doc + array->off + array->len - 1,
                     .doc = doc, .max_depth = 1 << 20, .err = &err};
    for (;;) {
        skip_ws(&s);
        if (s.p >= s.end)
            return 0;
        const char *v = s.p;
        enum ig_jtype t;
        if (skip_value(&s, &t) != 0)
            return -1;
        if (*n < max)
            items[*n] = (struct ig_jfield){.key = items[*n].key, .type = t,
                                           .off = (size_t)(v - doc), .len = (size_t)(s.p - v)};
        (*n)++;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',')
            s.p++;
    }
}

/* ---- Decoding the short fields a caller routes on ------------------------- */

static int
hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

size_t
ig_utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int
ig_jscan_string(const char *doc, const struct ig_jfield *f, char *out, size_t cap)
{
    if (f->type != IG_J_STRING || f->len < 2 || cap == 0)
        return -1;
    const char *p = doc + f->off + 1, *end = doc + f->off + f->len - 1;
    size_t n = 0;
    while (p < end) {
        char buf[4];
        size_t k = 1;
        if (*p != '\\') {
            buf[0] = *p++;
        } else {
            if (end - p < 2)
                return -1;
            char e = p[1];
            p += 2;
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *at = e ? strchr(from, e) : NULL;
            if (at) {
                buf[0] = to[at - from];
            } else if (e == 'u') {
                unsigned cp, lo;
                if (end - p < 4 || hex4(p, &cp) != 0)
                    return -1;
                p += 4;
                if (cp >= 0xd800 && cp < 0xdc00) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 ||
                        lo < 0xdc00 || lo >= 0xe000)
                        return -1;
                    p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if ((cp >= 0xdc00 && cp < 0xe000) || cp == 0) {
                    return -1;
                }
                k = ig_utf8_put(buf, cp);
            } else {
                return -1;
            }
        }
        if (n + k >= cap)
            return -1;
        memcpy(out + n, buf, k);
        n += k;
    }
    out[n] = '\0';
    return 0;
}

int
ig_jscan_integer(const char *doc, const struct ig_jfield *f, long long *out)
{
    if (f->type != IG_J_NUMBER || f->len == 0)
        return -1;
    const char *p = doc + f->off, *end = p + f->len;
    int neg = *p == '-';
    p += neg;
    if (p == end || end - p > 18)   /* 18 digits cannot overflow */
        return -1;
    long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;   /* a fraction or an exponent: not a whole number here */
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return 0;
}
