/* SPDX-License-Identifier: MIT */
/* json.c -- depth-limited JSON parsing, and a string writer. */
#include "core/json.h"

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

int
ig_json_put_string(struct ig_buf *b, const char *s)
{
    if (!s)
        return ig_buf_append(b, "null", 4);
    static const char hexd[] = "0123456789abcdef";
    if (ig_buf_reserve(b, strlen(s) + 2) != 0 || ig_buf_append(b, "\"", 1) != 0)
        return -1;
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (ig_buf_append(b, run, (size_t)(p - run)) != 0)
            return -1;
        if (!c)
            break;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t n = 2;
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
            n = 6;
        }
        if (ig_buf_append(b, esc, n) != 0)
            return -1;
        run = p + 1;
    }
    return ig_buf_append(b, "\"", 1);
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
