/* SPDX-License-Identifier: MIT */
/* weight.c -- the weight-syntax renderer (SD 1.5 / SDXL behind AUTOMATIC1111
 * or ComfyUI).
 *
 * The spec becomes a list of tags (medium, subject, details, must_include,
 * composition, style, text, palette), joined by ", "; must_avoid becomes
 * the negative prompt. Emphasis levels are final weights, 1.1^level,
 * written `(term:w)`. A term inside another emphasised tag is nested, and
 * here the dialects differ: A1111 multiplies a group's weight into
 * everything inside it, ComfyUI's inner weight replaces the outer one, so
 * the inner number written is target/outer for A1111 and target for
 * ComfyUI. Literal brackets are escaped as each dialect's parser wants:
 * A1111 escapes ( ) [ ] and backslash, and its AND/BREAK keywords are
 * lower-cased so they stay words; ComfyUI escapes only ( ). The positive
 * prompt is counted in CLIP tokens against the 75-token window. */
#include "prompt/internal.h"
#include "core/alloc.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_TAGS 256

struct tag {
    char  *text;          /* plain words, arena-owned */
    double weight;        /* 1 = none */
    size_t in_off, in_len;   /* an emphasised term inside, in_len 0 = none */
    double in_weight;
};

/* neg: the negative prompt, where A1111 has no AND (it skips the
 * composable-diffusion path) but still has BREAK. */
static int
put_escaped_as(struct ig_buf *b, const char *s, size_t n, enum prompt_dialect d, int neg)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int esc = ch == '(' || ch == ')' ||
                  (d == PROMPT_DIALECT_A1111 && (ch == '[' || ch == ']' || ch == '\\'));
        if (esc && ig_buf_append(b, "\\", 1) != 0)
            return -1;
        /* A1111 reads AND and BREAK as operators; as words they stay lower-case. */
        if (d == PROMPT_DIALECT_A1111 && (i == 0 || !isalnum((unsigned char)s[i - 1]))) {
            size_t kw = !neg && strncmp(s + i, "AND", 3) == 0 && i + 3 <= n ? 3
                      : strncmp(s + i, "BREAK", 5) == 0 && i + 5 <= n ? 5 : 0;
            if (kw && (i + kw == n || !isalnum((unsigned char)s[i + kw]))) {
                for (size_t j = 0; j < kw; j++) {
                    char lc = (char)tolower((unsigned char)s[i + j]);
                    if (ig_buf_append(b, &lc, 1) != 0)
                        return -1;
                }
                i += kw - 1;
                continue;
            }
        }
        if (ig_buf_append(b, &ch, 1) != 0)
            return -1;
    }
    return 0;
}

static int
put_escaped(struct ig_buf *b, const char *s, size_t n, enum prompt_dialect d)
{
    return put_escaped_as(b, s, n, d, 0);
}

static void
fmt_weight(char *out, size_t size, double w)
{
    snprintf(out, size, "%.2f", w);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.')
        out[--n] = '\0';
}

struct wctx {
    struct rctx *c;
    struct tag tags[MAX_TAGS];
    size_t n;
    struct ig_buf tmp;
};

/* Adds a tag made plain: pasted weight syntax is removed and noted. */
static void
add_tag(struct wctx *w, const char *prefix, const char *s, const char *suffix)
{
    if (w->n >= MAX_TAGS)
        return;
    ig_buf_reset(&w->tmp);
    if (prefix && ig_buf_puts(&w->tmp, prefix) != 0) {
        w->c->oom = 1;
        return;
    }
    int changed = prompt_put_plain(&w->tmp, s);
    if (changed < 0 || (suffix && ig_buf_puts(&w->tmp, suffix) != 0)) {
        w->c->oom = 1;
        return;
    }
    if (changed)
        prompt_note(w->c, PROMPT_NOTE_TRANSLATED,
                    "syntax in '%s' removed: spec text is plain words; use 'emphasis' for "
                    "weights", s);
    if (!w->tmp.len)
        return;
    struct tag *t = &w->tags[w->n++];
    memset(t, 0, sizeof *t);
    t->text = prompt_keep(w->c, &w->tmp);
    t->weight = 1.0;
}

static void
apply_emphasis(struct wctx *w)
{
    const struct prompt_spec *s = w->c->spec;
    for (size_t e = 0; e < s->n_emphasis; e++) {
        const char *term = s->emphasis[e].term;
        double target = pow(1.1, s->emphasis[e].level);
        size_t tl = strlen(term);
        int placed = 0;
        for (size_t i = 0; i < w->n && !placed; i++)
            if (w->tags[i].text && strcasecmp(w->tags[i].text, term) == 0) {
                w->tags[i].weight = target;
                placed = 1;
            }
        for (size_t i = 0; i < w->n && !placed; i++) {
            struct tag *t = &w->tags[i];
            const char *at = t->text ? strcasestr(t->text, term) : NULL;
            if (at && !t->in_len) {
                t->in_off = (size_t)(at - t->text);
                t->in_len = tl;
                t->in_weight = target;
                placed = 1;
            }
        }
        if (!placed && w->n < MAX_TAGS) {
            add_tag(w, NULL, term, NULL);
            if (w->n && w->tags[w->n - 1].text && strcmp(w->tags[w->n - 1].text, term) == 0)
                w->tags[w->n - 1].weight = target;
        }
    }
}

static int
put_tag(struct ig_buf *b, const struct tag *t, enum prompt_dialect d)
{
    char wbuf[32];
    if (t->weight != 1.0 && ig_buf_puts(b, "(") != 0)
        return -1;
    if (!t->in_len) {
        if (put_escaped(b, t->text, strlen(t->text), d) != 0)
            return -1;
    } else {
        /* A1111 multiplies the enclosing weight in; ComfyUI replaces it. */
        double inner = d == PROMPT_DIALECT_A1111 ? t->in_weight / t->weight : t->in_weight;
        fmt_weight(wbuf, sizeof wbuf, inner);
        if (put_escaped(b, t->text, t->in_off, d) != 0 || ig_buf_puts(b, "(") != 0 ||
            put_escaped(b, t->text + t->in_off, t->in_len, d) != 0 ||
            ig_buf_printf(b, ":%s)", wbuf) != 0 ||
            put_escaped(b, t->text + t->in_off + t->in_len,
                        strlen(t->text + t->in_off + t->in_len), d) != 0)
            return -1;
    }
    if (t->weight != 1.0) {
        fmt_weight(wbuf, sizeof wbuf, t->weight);
        if (ig_buf_printf(b, ":%s)", wbuf) != 0)
            return -1;
    }
    return 0;
}

int
prompt_render_weight(struct rctx *c)
{
    const struct prompt_spec *s = c->spec;
    struct wctx *w = ig_calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->c = c;
    if (s->medium == PROMPT_MEDIUM_PHOTO)
        add_tag(w, NULL, "photograph, photorealistic", NULL);
    else if (s->medium == PROMPT_MEDIUM_ILLUSTRATION)
        add_tag(w, NULL, "illustration", NULL);
    else if (s->medium == PROMPT_MEDIUM_CUTOUT)
        add_tag(w, NULL, c->out->params.transparent ? "product cutout, transparent background"
                                                    : "product photo, isolated on plain white "
                                                      "background", NULL);
    add_tag(w, NULL, s->subject, NULL);
    for (size_t i = 0; i < s->n_details; i++)
        add_tag(w, NULL, s->details[i], NULL);
    for (size_t i = 0; i < s->n_must_include; i++)
        add_tag(w, NULL, s->must_include[i], NULL);
    if (s->composition)
        add_tag(w, NULL, s->composition, NULL);
    if (s->style)
        add_tag(w, NULL, s->style, NULL);
    for (size_t i = 0; i < s->n_text; i++)
        add_tag(w, "text \"", s->text[i], "\"");
    if (s->n_text)
        prompt_note(c, PROMPT_NOTE_WARNING,
                    "literal text: CLIP-era models spell poorly; expect to fix the lettering");
    for (size_t i = 0; i < s->n_palette; i++)
        add_tag(w, "color ", s->palette[i], NULL);
    if (s->n_palette)
        prompt_note(c, PROMPT_NOTE_WARNING,
                    "palette: CLIP reads hex codes as text; colours are a hint at best");
    apply_emphasis(w);

    struct ig_buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < w->n && rc == 0; i++)
        rc = (i && ig_buf_puts(&b, ", ") != 0) || put_tag(&b, &w->tags[i], c->dialect) != 0;
    if (rc == 0)
        c->out->prompt = prompt_keep(c, &b);

    if (rc == 0 && s->n_must_avoid) {
        if (c->be->contract.caps & IG_CAP_NEGATIVE_PROMPT) {
            for (size_t i = 0; i < s->n_must_avoid && rc == 0; i++) {
                ig_buf_reset(&w->tmp);
                int changed = prompt_put_plain(&w->tmp, s->must_avoid[i]);
                if (changed > 0)
                    prompt_note(c, PROMPT_NOTE_TRANSLATED,
                                "syntax in must_avoid '%s' removed: spec text is plain words",
                                s->must_avoid[i]);
                rc = changed < 0 ||
                     (i && ig_buf_puts(&b, ", ") != 0) ||
                     put_escaped_as(&b, w->tmp.data ? w->tmp.data : "", w->tmp.len, c->dialect, 1);
            }
            if (rc == 0)
                c->out->negative_prompt = prompt_keep(c, &b);
        } else {
            for (size_t i = 0; i < s->n_must_avoid; i++)
                prompt_note(c, PROMPT_NOTE_DROPPED,
                            "must_avoid '%s' dropped: %s takes no negative prompt",
                            s->must_avoid[i], c->be->name);
        }
    }
    if (rc == 0 && c->out->prompt) {
        int exact;
        int n = prompt_clip_count_weighted(c->out->prompt, c->opt->clip_vocab, &exact);
        c->out->clip_tokens = n;
        c->out->clip_exact = exact;
        if (n > 75)
            prompt_note(c, PROMPT_NOTE_WARNING,
                        "the prompt is %d CLIP tokens (%s), past the 75-token window: %s", n,
                        exact ? "counted with CLIP's BPE" : "an estimate; CLIP's vocabulary "
                                                            "was not found",
                        c->dialect == PROMPT_DIALECT_COMFYUI
                            ? "ComfyUI encodes it in 77-token batches, so later terms weigh less"
                            : "A1111 splits it into 75-token chunks, so later terms weigh less");
    }
    ig_buf_free(&b);
    ig_buf_free(&w->tmp);
    ig_free(w);
    return rc ? -1 : 0;
}
