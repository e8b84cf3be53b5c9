/* SPDX-License-Identifier: MIT */
/* json.c -- depth-limited JSON parsing, a string writer, and a compact
 * serialiser for jansson trees. */
#include "core/json.h"
#include "core/str.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
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
ig_jw_printf(struct ig_jw *w, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (w->failed)
        return;
    if (n < 0) {
        w->failed = 1;
    } else if ((size_t)n < sizeof small) {
        if (ig_buf_append(w->b, small, (size_t)n) != 0)
            w->failed = 1;
    } else {
        if (ig_buf_reserve(w->b, (size_t)n) != 0) {
            w->failed = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(w->b->data + w->b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        w->b->len += (size_t)n;
    }
}

int
ig_jw_end(const struct ig_jw *w)
{
    return w->failed ? -1 : 0;
}
