/* SPDX-License-Identifier: MIT */
/* flag.c -- the parameter-flag renderer (Midjourney V6 / V6.1 / V7).
 *
 * The prompt is image prompts (composition references) first, then one
 * natural phrase, then parameters: --ar, --no, --seed, --sref/--sw,
 * --oref/--ow (V7) or --cref/--cw (V6), --iw, --v, --style raw, --stylize,
 * --chaos, each kept inside its documented range (a spec weight outside it
 * is clamped, with a note). User text can never smuggle a parameter in:
 * pasted flags and '::' weights are removed and a leftover leading "--"
 * is dropped. Emphasis is not emitted: '::' multi-prompt weights are not
 * confirmed for V7 (PROMPTS.md), so the term order carries it instead. */
#include "prompt/internal.h"
#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

static double
mj_version(const struct rctx *c)
{
    if (c->opt->mj_version)
        return c->opt->mj_version;
    const char *m = c->be->model ? c->be->model : "";
    if (strstr(m, "6.1"))
        return 6.1;
    if (strstr(m, "v6") || strstr(m, "-6"))
        return 6;
    return 7;
}

/* Appends ", " + text made safe for a Midjourney prompt. */
static int
put_phrase(struct rctx *c, struct ig_buf *b, const char *pre, const char *text, const char *post)
{
    struct ig_buf t = {0};
    int changed = prompt_put_plain(&t, text);
    if (changed < 0) {
        ig_buf_free(&t);
        return -1;
    }
    if (changed)
        prompt_note(c, PROMPT_NOTE_TRANSLATED,
                    "syntax in '%s' removed: Midjourney would read it as its own parameters",
                    text);
    int rc = 0;
    if (t.len) {
        rc |= b->len ? ig_buf_puts(b, ", ") : 0;
        rc |= pre ? ig_buf_puts(b, pre) : 0;
        for (size_t i = 0; i < t.len && rc == 0; i++) {
            if (t.data[i] == '-' && i + 1 < t.len && t.data[i + 1] == '-') {
                while (i + 1 < t.len && t.data[i + 1] == '-')
                    i++;
                continue;
            }
            rc |= ig_buf_append(b, &t.data[i], 1);
        }
        rc |= post ? ig_buf_puts(b, post) : 0;
    }
    ig_buf_free(&t);
    return rc ? -1 : 0;
}

static int
clamp_note(struct rctx *c, const char *flag, int v, int lo, int hi)
{
    if (v < lo || v > hi) {
        int to = v < lo ? lo : hi;
        prompt_note(c, PROMPT_NOTE_TRANSLATED, "%s %d is outside %d..%d; sent %d", flag, v, lo,
                    hi, to);
        return to;
    }
    return v;
}

int
prompt_render_flag(struct rctx *c)
{
    const struct prompt_spec *s = c->spec;
    struct prompt_params *p = &c->out->params;
    double v = mj_version(c);
    struct ig_buf b = {0}, flags = {0};
    int rc = 0;

    /* Image prompts lead; their weight is --iw (V7 0..3, V6 0..2). */
    int iw = -1;
    size_t n_refs = p->n_refs;   /* 0 unless the contract takes references */
    for (size_t i = 0; i < n_refs; i++)
        if (s->refs[i].role == PROMPT_REF_COMPOSITION) {
            rc |= ig_buf_printf(&b, "%s ", s->refs[i].url);
            if (s->refs[i].weight)
                iw = s->refs[i].weight;
        }
    struct ig_buf phrase = {0};
    static const char *const medium[] = {NULL, "photograph of ", "illustration of ",
                                         "product cutout of "};
    rc |= put_phrase(c, &phrase, medium[s->medium], s->subject, NULL);
    for (size_t i = 0; i < s->n_details && rc == 0; i++)
        rc |= put_phrase(c, &phrase, NULL, s->details[i], NULL);
    for (size_t i = 0; i < s->n_must_include && rc == 0; i++)
        rc |= put_phrase(c, &phrase, NULL, s->must_include[i], NULL);
    if (s->composition)
        rc |= put_phrase(c, &phrase, NULL, s->composition, NULL);
    if (s->style)
        rc |= put_phrase(c, &phrase, NULL, s->style, NULL);
    for (size_t i = 0; i < s->n_text && rc == 0; i++)
        rc |= put_phrase(c, &phrase, "the text \"", s->text[i], "\"");
    for (size_t i = 0; i < s->n_palette && rc == 0; i++)
        rc |= put_phrase(c, &phrase, i ? NULL : "colour palette ", s->palette[i], NULL);
    if (s->medium == PROMPT_MEDIUM_CUTOUT)
        rc |= ig_buf_puts(&phrase, ", isolated on a plain white background");
    rc |= phrase.len ? ig_buf_append(&b, phrase.data, phrase.len) : 0;
    ig_buf_free(&phrase);

    for (size_t i = 0; i < s->n_emphasis; i++)
        prompt_note(c, PROMPT_NOTE_DROPPED,
                    "emphasis on '%s' dropped: '::' weights are not confirmed for Midjourney %g; "
                    "put the term early instead", s->emphasis[i].term, v);

    if (p->aspect[0])
        rc |= ig_buf_printf(&flags, " --ar %s", p->aspect);
    if (s->n_must_avoid) {
        size_t sent = 0;
        for (size_t i = 0; i < s->n_must_avoid && rc == 0; i++) {
            struct ig_buf t = {0};
            int changed = prompt_put_plain(&t, s->must_avoid[i]);
            if (changed < 0)
                rc = -1;
            else if (changed)
                prompt_note(c, PROMPT_NOTE_TRANSLATED,
                            "syntax in must_avoid '%s' removed: Midjourney would read it as "
                            "its own parameters%s", s->must_avoid[i],
                            t.len ? "" : "; nothing was left to send");
            /* A comma would split the term in two. */
            size_t w = 0;
            for (size_t k = 0; k < t.len; k++)
                if (t.data[k] != ',')
                    t.data[w++] = t.data[k];
            if (w != t.len && !changed)
                prompt_note(c, PROMPT_NOTE_TRANSLATED,
                            "must_avoid '%s' sent without its commas: --no splits on them",
                            s->must_avoid[i]);
            t.len = w;
            if (t.len) {
                rc |= ig_buf_puts(&flags, sent++ ? ", " : " --no ");
                rc |= ig_buf_append(&flags, t.data, t.len);
            }
            ig_buf_free(&t);
        }
    }
    if (p->has_seed)
        rc |= ig_buf_printf(&flags, " --seed %llu", p->seed);

    int sw = -1, ow = -1;
    size_t n_oref = 0;
    for (size_t i = 0; i < n_refs; i++) {
        const struct prompt_ref *r = &s->refs[i];
        if (r->role == PROMPT_REF_STYLE) {
            rc |= ig_buf_printf(&flags, " --sref %s", r->url);
            if (r->weight)
                sw = r->weight;
        } else if (r->role == PROMPT_REF_SUBJECT) {
            if (n_oref++) {
                prompt_note(c, PROMPT_NOTE_DROPPED,
                            "subject reference %s dropped: Midjourney takes one %s", r->url,
                            v >= 7 ? "--oref" : "--cref");
                continue;
            }
            rc |= ig_buf_printf(&flags, " --%s %s", v >= 7 ? "oref" : "cref", r->url);
            if (r->weight)
                ow = r->weight;
        }
    }
    if (sw >= 0)
        rc |= ig_buf_printf(&flags, " --sw %d", clamp_note(c, "--sw", sw, 0, 1000));
    if (ow >= 0) {
        if (v >= 7)
            rc |= ig_buf_printf(&flags, " --ow %d", clamp_note(c, "--ow", ow, 1, 1000));
        else
            rc |= ig_buf_printf(&flags, " --cw %d", clamp_note(c, "--cw", ow, 0, 100));
    }
    if (iw >= 0) {
        /* Spec weights are on a 100 = default scale; --iw's default is 1. */
        double x = iw / 100.0, hi = v >= 7 ? 3.0 : 2.0;
        if (x > hi) {
            prompt_note(c, PROMPT_NOTE_TRANSLATED, "image weight %d -> --iw %g (the maximum)", iw,
                        hi);
            x = hi;
        }
        rc |= ig_buf_printf(&flags, " --iw %g", x);
    }
    rc |= ig_buf_printf(&flags, " --v %g", v);
    if (c->opt->raw)
        rc |= ig_buf_puts(&flags, " --style raw");
    if (c->opt->stylize >= 0)
        rc |= ig_buf_printf(&flags, " --stylize %d", c->opt->stylize);
    if (c->opt->chaos >= 0)
        rc |= ig_buf_printf(&flags, " --chaos %d", c->opt->chaos);
    rc |= ig_buf_append(&b, flags.data, flags.len);
    if (rc == 0)
        c->out->prompt = prompt_keep(c, &b);
    if (s->n_must_avoid)
        prompt_note(c, PROMPT_NOTE_TRANSLATED,
                    "must_avoid sent as --no (Midjourney weighs those terms -0.5)");
    ig_buf_free(&b);
    ig_buf_free(&flags);
    return rc ? -1 : 0;
}
