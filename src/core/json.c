/* SPDX-License-Identifier: MIT */
/* json.c -- depth-limited JSON parsing, a string writer, a compact
 * serialiser for jansson trees and a builder of them from scanned text.
 *
 * jansson stays the JSON library; these do by hand only what it does
 * slowly on the relay's path, where a request has a few tens of
 * microseconds: json_dumps checks for cycles with a "%p" hash-table key per
 * container, json_loadb reads through a callback per byte. The jscan fuzz
 * target holds each against jansson: the same bytes, the same tree. */
#include "core/json.h"
#include "core/alloc.h"
#include "core/jscan.h"
#include "core/str.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
ig_json_depth(const char *text, size_t len)
{
    int depth = 0, max = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

json_t *
ig_json_parse(const char *text, size_t len, int max_depth, struct ig_error *err)
{
    if (max_depth > 0 && ig_json_depth(text, len) > max_depth) {
        ig_error_set(err, 400, "json_too_deep", "JSON nested deeper than %d levels", max_depth);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        ig_error_set(err, 400, "bad_json", "malformed JSON at line %d, column %d: %s", je.line,
                     je.column, je.text);
    return v;
}

/* s[0..n) as a string literal, escaped as jansson escapes it (ig_json_dump
 * promises the same bytes as json_dumps): the two mandatory escapes, the
 * short forms for five controls, \u00XX in capitals for the others. */
static int
put_stringn(struct ig_buf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    if (ig_buf_reserve(b, n + 2) != 0)
        return -1;
    const char *end = s + n, *p = s;
    while (p < end && (unsigned char)*p >= 0x20 && *p != '"' && *p != '\\')
        p++;
    if (p == end) {   /* nothing to escape, the common case: one copy */
        char *o = b->data + b->len;
        o[0] = '"';
        memcpy(o + 1, s, n);
        o[n + 1] = '"';
        b->len += n + 2;
        b->data[b->len] = '\0';
        return 0;
    }
    if (ig_buf_append(b, "\"", 1) != 0)
        return -1;
    const char *run = s;
    for (; p < end; p++) {   /* what came before p needs no escape */
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (ig_buf_append(b, run, (size_t)(p - run)) != 0)
            return -1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '"': case '\\': break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            k = 6;
        }
        if (ig_buf_append(b, esc, k) != 0)
            return -1;
        run = p + 1;
    }
    if (ig_buf_append(b, run, (size_t)(end - run)) != 0)
        return -1;
    return ig_buf_append(b, "\"", 1);
}

int
ig_json_put_string(struct ig_buf *b, const char *s)
{
    return s ? put_stringn(b, s, strlen(s)) : ig_buf_append(b, "null", 4);
}

/* A real as jansson writes one (jsonp_dtostr): 17 significant digits, a
 * ".0" when that reads as an integer, no '+' or leading zeros in the
 * exponent. */
static int
put_real(struct ig_buf *b, double v)
{
    char t[40];
    /* A whole number below 2^53 (a price of 0, most often): "%.17g" writes
     * its digits as %lld would, and the ".0" follows. -0 keeps its sign
     * through snprintf. */
    if (v == floor(v) && fabs(v) < 9007199254740992.0 && !(v == 0 && signbit(v))) {
        size_t k = ig_fmt_ll(t, (long long)v);
        memcpy(t + k, ".0", 2);
        return ig_buf_append(b, t, k + 2);
    }
    int n = snprintf(t, sizeof t - 3, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof t - 3 || !isfinite(v))
        return -1;
    if (!strchr(t, '.') && !strchr(t, 'e')) {
        memcpy(t + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(t, 'e');
    if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            to = ++from;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(t);
    }
    return ig_buf_append(b, t, (size_t)n);
}

static int
dump(const json_t *v, struct ig_buf *b, int depth)
{
    if (depth > IG_JSON_DUMP_DEPTH)
        return -1;
    char t[IG_INT_TEXT];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (ig_buf_append(b, "{", 1) != 0)
            return -1;
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it), first = 0) {
            const char *key = json_object_iter_key(it);
            if ((!first && ig_buf_append(b, ",", 1) != 0) ||
                put_stringn(b, key, json_object_iter_key_len(it)) != 0 ||
                ig_buf_append(b, ":", 1) != 0 ||
                dump(json_object_iter_value(it), b, depth + 1) != 0)
                return -1;
        }
        return ig_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        if (ig_buf_append(b, "[", 1) != 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i && ig_buf_append(b, ",", 1) != 0) ||
                dump(json_array_get(v, i), b, depth + 1) != 0)
                return -1;
        return ig_buf_append(b, "]", 1);
    }
    case JSON_STRING:
        return put_stringn(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return ig_buf_append(b, t, ig_fmt_ll(t, json_integer_value(v)));
    case JSON_REAL:
        return put_real(b, json_real_value(v));
    case JSON_TRUE:
        return ig_buf_append(b, "true", 4);
    case JSON_FALSE:
        return ig_buf_append(b, "false", 5);
    case JSON_NULL:
        return ig_buf_append(b, "null", 4);
    }
    return -1;
}

int
ig_json_dump(const json_t *v, struct ig_buf *b)
{
    size_t was = b->len;
    if (v && dump(v, b, 0) == 0)
        return 0;
    b->len = was;
    if (b->data)
        b->data[was] = '\0';
    return -1;
}

void
ig_jw_raw(struct ig_jw *w, const char *text)
{
    if (!w->failed && ig_buf_puts(w->b, text) != 0)
        w->failed = 1;
}

void
ig_jw_str(struct ig_jw *w, const char *s)
{
    if (!w->failed && ig_json_put_string(w->b, s) != 0)
        w->failed = 1;
}

void
ig_jw_real(struct ig_jw *w, double v)
{
    if (!w->failed && (isfinite(v) ? put_real(w->b, v) : ig_buf_append(w->b, "null", 4)) != 0)
        w->failed = 1;
}

int
ig_jw_end(const struct ig_jw *w)
{
    return w->failed ? -1 : 0;
}

/* ---- Trees and text from text jscan accepted -------------------------------- */

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* The closing quote of the string whose contents start at q; end when
 * there is none before it. */
static const char *
string_close(const char *q, const char *end)
{
    while (q < end && *q != '"')
        q += *q == '\\' && end - q > 1 ? 2 : 1;
    return q;
}

/* The string literal at p (its opening quote) decoded into a new buffer:
 * *len is its length, *after the byte after its closing quote. NULL when it
 * is not a string jansson would take (an escape a C string cannot hold) or
 * out of memory. */
static char *
literal(const char *doc, const char *p, const char *end, const char **after, size_t *len)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *q = string_close(p + 1, end);
    if (q >= end)
        return NULL;
    struct ig_jfield f = {.type = IG_J_STRING, .off = (size_t)(p - doc),
                          .len = (size_t)(q + 1 - p)};
    char *out = ig_malloc(f.len);
    if (!out || ig_jscan_string(doc, &f, out, f.len) != 0) {
        ig_free(out);
        return NULL;
    }
    *len = strlen(out);
    *after = q + 1;
    return out;
}

/* A number as jansson reads one: an integer unless it has a fraction or an
 * exponent, and refused when it does not fit (an integer past long long, a
 * real past double). */
static json_t *
number(const char *p, const char *end, const char **after)
{
    const char *q = p;
    int real = 0;
    for (; q < end && *q && strchr("+-0123456789.eE", *q); q++)
        if (*q == '.' || *q == 'e' || *q == 'E')
            real = 1;
    char t[64];
    size_t n = (size_t)(q - p);
    if (n == 0 || n >= sizeof t)
        return NULL;   /* jscan's numbers are short; a long one goes the slow way */
    memcpy(t, p, n);
    t[n] = '\0';
    char *stop;
    errno = 0;
    *after = q;
    if (real) {
        double d = strtod(t, &stop);
        return *stop || !isfinite(d) ? NULL : json_real(d);
    }
    long long v = strtoll(t, &stop, 10);
    return *stop || errno == ERANGE ? NULL : json_integer(v);
}

static json_t *
build(const char *doc, const char *p, const char *end, const char **after, int depth)
{
    p = skip_ws(p, end);
    if (p >= end || depth > IG_JSON_DUMP_DEPTH)
        return NULL;
    size_t len;
    if (*p == '"') {
        char *s = literal(doc, p, end, after, &len);
        json_t *v = s ? json_stringn(s, len) : NULL;   /* checks the UTF-8 */
        ig_free(s);
        return v;
    }
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        char close = obj ? '}' : ']';
        json_t *c = obj ? json_object() : json_array();
        p = skip_ws(p + 1, end);
        if (c && p < end && *p == close) {
            *after = p + 1;
            return c;
        }
        while (c) {
            char *key = NULL;
            if (obj) {
                key = literal(doc, p, end, &p, &len);
                p = key ? skip_ws(p, end) : end;
                if (p >= end || *p != ':') {
                    ig_free(key);
                    break;
                }
                p++;
            }
            json_t *v = build(doc, p, end, &p, depth + 1);
            int rc = !v  ? -1
                     : obj ? json_object_setn_new(c, key, len, v)
                           : json_array_append_new(c, v);
            ig_free(key);
            p = skip_ws(p, end);
            if (rc != 0 || p >= end)
                break;
            if (*p == close) {
                *after = p + 1;
                return c;
            }
            if (*p != ',')
                break;
            p = skip_ws(p + 1, end);
        }
        json_decref(c);
        return NULL;
    }
    static const struct { const char *text; size_t len; } lit[] = {
        {"true", 4}, {"false", 5}, {"null", 4}};
    for (int i = 0; i < 3; i++)
        if ((size_t)(end - p) >= lit[i].len && memcmp(p, lit[i].text, lit[i].len) == 0) {
            *after = p + lit[i].len;
            return i == 0 ? json_true() : i == 1 ? json_false() : json_null();
        }
    return number(p, end, after);
}

json_t *
ig_json_walk(const char *text, size_t len)
{
    const char *end = text + len, *after = NULL;
    json_t *v = build(text, text, end, &after, 0);
    if (v && skip_ws(after, end) != end) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

json_t *
ig_json_from_scanned(const char *text, size_t len)
{
    json_t *v = ig_json_walk(text, len);
    return v ? v : json_loadb(text, len, JSON_DECODE_ANY, NULL);
}

int
ig_json_compact(struct ig_buf *b, const char *text, size_t len)
{
    if (ig_buf_reserve(b, len) != 0)
        return -1;
    char *out = b->data + b->len;
    size_t n = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        if (*p == '"') {
            const char *q = string_close(p + 1, end);
            const char *stop = q < end ? q + 1 : end;
            memcpy(out + n, p, (size_t)(stop - p));
            n += (size_t)(stop - p);
            p = stop;
        } else {
            if (!is_ws(*p))
                out[n++] = *p;
            p++;
        }
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}
