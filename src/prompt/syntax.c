/* SPDX-License-Identifier: MIT */
/* syntax.c -- recognise and remove other grammars' syntax in free text.
 *
 * A spec's strings are meant as plain words, but users paste what they
 * know: `(red:1.3)`, `((masterpiece))`, `<lora:x:0.8>`, `--ar 16:9`,
 * `ship::2`. A natural-language model reads those literally and a
 * Midjourney prompt would take a pasted flag as its own, so the renderers
 * pass user text through prompt_put_plain, and lint uses the detectors. */
#include "prompt/internal.h"

#include <ctype.h>
#include <string.h>

static const char *const mj_flags[] = {
    "ar", "aspect", "no", "seed", "v", "version", "stylize", "s", "chaos", "c", "sref", "sw",
    "oref", "ow", "cref", "cw", "iw", "q", "quality", "style", "raw", "tile", "weird", "w",
    "niji", "exp", "draft", "stop", "p", "sv", "relax", "fast", "turbo", NULL};
static const char *const mj_value_flags[] = {
    "ar", "aspect", "no", "seed", "v", "version", "stylize", "s", "chaos", "c", "sref", "sw",
    "oref", "ow", "cref", "cw", "iw", "q", "quality", "style", "weird", "w", "niji", "exp",
    "stop", "sv", NULL};

/* Length of a Midjourney flag name at s (after "--"), 0 if none. */
static size_t
flag_at(const char *s, int *takes_value)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (!n || (s[n] && !isspace((unsigned char)s[n]) && !isdigit((unsigned char)s[n])))
        return 0;
    for (int i = 0; mj_flags[i]; i++)
        if (strlen(mj_flags[i]) == n && strncmp(s, mj_flags[i], n) == 0) {
            *takes_value = 0;
            for (int j = 0; mj_value_flags[j]; j++)
                if (strcmp(mj_value_flags[j], mj_flags[i]) == 0)
                    *takes_value = 1;
            return n;
        }
    return 0;
}

static int
word_start(const char *text, const char *p)
{
    return p == text || isspace((unsigned char)p[-1]) || p[-1] == ',';
}

int
prompt_has_flags(const char *text)
{
    for (const char *p = strstr(text, "--"); p; p = strstr(p + 1, "--")) {
        int v;
        if (word_start(text, p) && flag_at(p + 2, &v))
            return 1;
    }
    return 0;
}

/* ":1.3)" at p: the end of a weighted group. Returns its length or 0. */
static size_t
weight_tail(const char *p)
{
    if (*p != ':')
        return 0;
    const char *q = p + 1;
    while (*q == ' ')
        q++;
    if (*q == '+' || *q == '-')
        q++;
    const char *d = q;
    while (isdigit((unsigned char)*q) || *q == '.')
        q++;
    if (q == d || (q == d + 1 && *d == '.'))
        return 0;
    while (*q == ' ')
        q++;
    return *q == ')' ? (size_t)(q - p + 1) : 0;
}

int
prompt_has_weight_syntax(const char *text)
{
    if (strstr(text, "((") || strstr(text, "))") || strstr(text, "[[") || strstr(text, "<lora:") ||
        strstr(text, "<hypernet:") || strstr(text, "embedding:"))
        return 1;
    const char *open = NULL;
    for (const char *p = text; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '(')
            open = p;
        else if (*p == ')')
            open = NULL;
        else if (open && weight_tail(p))
            return 1;
    }
    return 0;
}

/* Finds the ')' matching the '(' at open, or NULL. */
static const char *
match_paren(const char *open)
{
    int depth = 0;
    for (const char *p = open; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            return p;
    }
    return NULL;
}

/* nested: inside an emphasis group, where every group is emphasis too. */
static int
put_plain_n(struct ig_buf *b, const char *s, size_t n, int *changed, int nested)
{
    const char *end = s + n;
    for (const char *p = s; p < end; p++) {
        if (*p == '\\' && p + 1 < end && strchr("()[]\\", p[1])) {
            if (ig_buf_append(b, p + 1, 1) != 0)
                return -1;
            p++;
            *changed = 1;
            continue;
        }
        if (*p == '(') {
            const char *close = match_paren(p);
            if (close && close < end) {
                /* Weighted or doubled: keep the words, drop the syntax. */
                const char *inner = p + 1, *inner_end = close;
                const char *colon = NULL;
                for (const char *q = inner; q < close; q++)
                    if (*q == ':' && weight_tail(q) && q + weight_tail(q) - 1 == close)
                        colon = q;
                int weighted = nested || colon != NULL || *inner == '(';
                if (colon)
                    inner_end = colon;
                if (weighted) {
                    *changed = 1;
                    if (put_plain_n(b, inner, (size_t)(inner_end - inner), changed, 1) != 0)
                        return -1;
                    p = close;
                    continue;
                }
            }
        }
        /* A single [x] may be plain text; doubled brackets never are. */
        if ((*p == '[' || *p == ']') &&
            ((p + 1 < end && p[1] == *p) || (p > s && p[-1] == *p))) {
            *changed = 1;
            continue;
        }
        if (*p == '<' && (strncmp(p, "<lora:", 6) == 0 || strncmp(p, "<hypernet:", 10) == 0)) {
            const char *gt = memchr(p, '>', (size_t)(end - p));
            if (gt) {
                *changed = 1;
                p = gt;
                continue;
            }
        }
        if (*p == ':' && p + 1 < end && p[1] == ':') {
            const char *q = p + 2;
            while (q < end && (*q == '-' || *q == '.' || isdigit((unsigned char)*q)))
                q++;
            *changed = 1;
            p = q - 1;
            continue;
        }
        int takes;
        size_t fl;
        if (*p == '-' && p + 1 < end && p[1] == '-' && word_start(s, p) &&
            (fl = flag_at(p + 2, &takes)) != 0) {
            const char *q = p + 2 + fl;
            if (takes) {
                while (q < end && isspace((unsigned char)*q))
                    q++;
                while (q < end && !isspace((unsigned char)*q))
                    q++;
            }
            *changed = 1;
            p = q - 1;
            continue;
        }
        if (ig_buf_append(b, p, 1) != 0)
            return -1;
    }
    return 0;
}

int
prompt_put_plain(struct ig_buf *b, const char *src)
{
    int changed = 0;
    size_t start = b->len;
    if (put_plain_n(b, src, strlen(src), &changed, 0) != 0)
        return -1;
    /* Squeeze the spaces that removed syntax leaves behind. */
    size_t w = start;
    for (size_t r = start; r < b->len; r++) {
        if (b->data[r] == ' ' && (w == start || b->data[w - 1] == ' '))
            continue;
        b->data[w++] = b->data[r];
    }
    while (w > start && b->data[w - 1] == ' ')
        w--;
    b->len = w;
    if (b->data)
        b->data[w] = '\0';
    return changed;
}
