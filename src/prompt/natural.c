/* SPDX-License-Identifier: MIT */
/* natural.c -- the natural-language renderer (FLUX.1, FLUX.2, GPT Image,
 * Gemini, SD 3.5 and any other prose model).
 *
 * Prose families get grammatical sentences in the order BFL recommends
 * (subject, action and details, style, context), with emphasis said in
 * words right after the subject, since word order is what these models
 * weigh. GPT Image gets OpenAI's labelled sections (Scene, Subject,
 * Details, Style, Text, Constraints), where exclusions are written as prose
 * constraints. A model with a negative-prompt field gets must_avoid there;
 * one without gets each term rephrased as what should be seen instead
 * (Gemini's and BFL's advice), or dropped when no positive phrasing is
 * known, with a note either way. FLUX.2 can instead get BFL's structured
 * JSON prompt. No weight syntax or flag ever reaches these models: spec
 * text passes through prompt_put_plain first. */
#include "prompt/internal.h"
#include "core/alloc.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>

/* must_avoid term (substring) -> what to describe instead. */
static const struct { const char *term, *positive; } positives[] = {
    {"blur", "tack-sharp focus throughout"},
    {"watermark", "clean, unbranded surfaces"},
    {"logo", "clean, unbranded surfaces"},
    {"signature", "a clean, unsigned finish"},
    {"lettering", "purely pictorial content"},
    {"text", "purely pictorial content"},
    {"words", "purely pictorial content"},
    {"people", "an empty, unpopulated setting"},
    {"person", "an empty, unpopulated setting"},
    {"crowd", "an empty, unpopulated setting"},
    {"car", "empty, car-free streets"},
    {"traffic", "empty, car-free streets"},
    {"cloud", "a clear, cloudless sky"},
    {"noise", "clean, smooth detail"},
    {"grain", "clean, smooth detail"},
    {"low quality", "high-resolution, finely rendered detail"},
    {"lowres", "high-resolution, finely rendered detail"},
    {"artifact", "high-resolution, finely rendered detail"},
    {"deformed", "anatomically correct figures with natural hands"},
    {"extra fingers", "anatomically correct figures with natural hands"},
    {"bad anatomy", "anatomically correct figures with natural hands"},
    {"clutter", "a clean, minimal background"},
    {"underexposed", "bright, well-exposed lighting"},
    {"dark", "bright, well-exposed lighting"},
    {"overexposed", "balanced, natural exposure"},
    {"cartoon", "a realistic rendering"},
    {"border", "a full-bleed composition"},
    {"frame", "a full-bleed composition"},
    {"shadow", "soft, even lighting"},
};

static const char *
positive_for(const char *term)
{
    for (size_t i = 0; i < sizeof positives / sizeof positives[0]; i++)
        if (strcasestr(term, positives[i].term))
            return positives[i].positive;
    return NULL;
}

struct nctx {
    struct rctx *c;
    struct ig_buf b;
    int rc;
};

/* Appends user text with foreign syntax removed (and noted). */
static void
put_user(struct nctx *n, const char *text)
{
    int changed = prompt_put_plain(&n->b, text);
    if (changed < 0)
        n->rc = -1;
    else if (changed)
        prompt_note(n->c, PROMPT_NOTE_TRANSLATED,
                    "weight syntax or flags in '%s' removed: %s reads prose only", text,
                    n->c->be->name);
}

static void
puts_(struct nctx *n, const char *s)
{
    if (ig_buf_puts(&n->b, s) != 0)
        n->rc = -1;
}

/* Ends the sentence begun at start: capital first letter, a full stop. */
static void
end_sentence(struct nctx *n, size_t start)
{
    if (n->b.len <= start)
        return;
    n->b.data[start] = (char)toupper((unsigned char)n->b.data[start]);
    char last = n->b.data[n->b.len - 1];
    if (last != '.' && last != '!' && last != '?' && last != '"')
        puts_(n, ".");
    else if (last == '"')
        puts_(n, ".");
}

static void
new_sentence(struct nctx *n, size_t *start)
{
    if (n->b.len)
        puts_(n, n->c->fam == FAM_GPT_IMAGE ? "\n" : " ");
    *start = n->b.len;
}

/* "a, b and c" */
static void
put_list(struct nctx *n, char *const *items, size_t count, const char *quote)
{
    for (size_t i = 0; i < count; i++) {
        if (i)
            puts_(n, i + 1 == count ? " and " : ", ");
        puts_(n, quote);
        put_user(n, items[i]);
        puts_(n, quote);
    }
}

/* The rephrasings for must_avoid, de-duplicated; returns how many. */
static size_t
positive_list(struct nctx *n, const char **out, size_t max)
{
    const struct prompt_spec *s = n->c->spec;
    size_t k = 0;
    for (size_t i = 0; i < s->n_must_avoid; i++) {
        const char *pos = positive_for(s->must_avoid[i]);
        if (!pos) {
            prompt_note(n->c, PROMPT_NOTE_DROPPED,
                        "must_avoid '%s' dropped: %s has no negative prompt and naming it "
                        "would invite it; describe what should be there instead",
                        s->must_avoid[i], n->c->be->name);
            continue;
        }
        prompt_note(n->c, PROMPT_NOTE_TRANSLATED,
                    "must_avoid '%s' rewritten as '%s': %s has no negative prompt",
                    s->must_avoid[i], pos, n->c->be->name);
        int dup = 0;
        for (size_t j = 0; j < k; j++)
            dup |= strcmp(out[j], pos) == 0;
        if (!dup && k < max)
            out[k++] = pos;
    }
    return k;
}

static void
put_subject(struct nctx *n)
{
    const struct prompt_spec *s = n->c->spec;
    static const char *const lead[] = {"", "a photograph of ", "an illustration of ",
                                       "a product cutout of "};
    puts_(n, lead[s->medium]);
    put_user(n, s->subject);
    if (s->medium == PROMPT_MEDIUM_CUTOUT)
        puts_(n, n->c->out->params.transparent ? ", isolated on a transparent background"
                                               : ", isolated on a plain white background");
    if (s->n_details) {
        puts_(n, ", ");
        put_list(n, s->details, s->n_details, "");
    }
}

/* "the red scarf" unless the term brings its own article. */
static void
put_term(struct nctx *n, const char *term)
{
    if (strncasecmp(term, "a ", 2) && strncasecmp(term, "an ", 3) && strncasecmp(term, "the ", 4))
        puts_(n, "the ");
    put_user(n, term);
}

static void
put_emphasis_side(struct nctx *n, size_t *start, int sign, const char *verb, const char *tail)
{
    const struct prompt_spec *s = n->c->spec;
    int count = 0, k = 0;
    for (size_t i = 0; i < s->n_emphasis; i++)
        count += sign * s->emphasis[i].level > 0;
    if (!count)
        return;
    new_sentence(n, start);
    puts_(n, verb);
    for (size_t i = 0; i < s->n_emphasis; i++)
        if (sign * s->emphasis[i].level > 0) {
            if (k++)
                puts_(n, k == count ? " and " : ", ");
            put_term(n, s->emphasis[i].term);
        }
    puts_(n, tail);
    end_sentence(n, *start);
}

static void
put_emphasis(struct nctx *n, size_t *start)
{
    put_emphasis_side(n, start, 1, "Make ", " prominent and clearly visible");
    put_emphasis_side(n, start, -1, "Keep ", " subtle, in the background");
    if (n->c->spec->n_emphasis)
        prompt_note(n->c, PROMPT_NOTE_TRANSLATED,
                    "emphasis said in words after the subject: %s has no weight syntax",
                    n->c->be->name);
}

static void
put_refs(struct nctx *n, size_t *start)
{
    static const char *const what[] = {"match its style", "keep this character or object",
                                       "follow its composition"};
    const struct prompt_spec *s = n->c->spec;
    if (!n->c->out->params.n_refs)
        return;
    for (size_t i = 0; i < s->n_refs; i++) {
        new_sentence(n, start);
        if (ig_buf_printf(&n->b, "Image %zu is a reference: %s", i + 1, what[s->refs[i].role]) != 0)
            n->rc = -1;
        end_sentence(n, *start);
    }
}

static int
render_prose(struct nctx *n)
{
    struct rctx *c = n->c;
    const struct prompt_spec *s = c->spec;
    size_t st = 0;
    int gpt = c->fam == FAM_GPT_IMAGE;
    int has_neg = (c->be->contract.caps & IG_CAP_NEGATIVE_PROMPT) != 0;

    if (gpt && s->composition) {
        new_sentence(n, &st);
        puts_(n, "Scene: ");
        put_user(n, s->composition);
        end_sentence(n, st);
    }
    new_sentence(n, &st);
    if (gpt) {
        puts_(n, "Subject: ");
        st = n->b.len;
    }
    put_subject(n);
    end_sentence(n, st);
    put_emphasis(n, &st);
    if (s->n_must_include) {
        new_sentence(n, &st);
        puts_(n, gpt ? "Must include: " : "The image also shows ");
        put_list(n, s->must_include, s->n_must_include, "");
        end_sentence(n, st);
    }
    if (!gpt && s->composition) {
        new_sentence(n, &st);
        put_user(n, s->composition);
        end_sentence(n, st);
    }
    if (s->style) {
        new_sentence(n, &st);
        puts_(n, gpt ? "Style: " : "The style is ");
        put_user(n, s->style);
        end_sentence(n, st);
    }
    if (s->n_text) {
        new_sentence(n, &st);
        puts_(n, gpt ? "Text (render exactly, verbatim): " : "The image shows the text ");
        put_list(n, s->text, s->n_text, "\"");
        if (!gpt)
            puts_(n, ", spelled exactly");
        end_sentence(n, st);
    }
    if (s->n_palette) {
        new_sentence(n, &st);
        puts_(n, gpt ? "Colour palette: " : "The colour palette is ");
        put_list(n, s->palette, s->n_palette, "");
        end_sentence(n, st);
    }
    put_refs(n, &st);
    if (s->n_must_avoid && !has_neg) {
        if (gpt) {
            new_sentence(n, &st);
            puts_(n, "Constraints: ");
            for (size_t i = 0; i < s->n_must_avoid; i++) {
                puts_(n, i ? ", no " : "no ");
                put_user(n, s->must_avoid[i]);
            }
            end_sentence(n, st);
            struct ig_buf names = {0};
            for (size_t i = 0; i < s->n_must_avoid; i++)
                if (ig_buf_printf(&names, "%s'%s'", i ? ", " : "", s->must_avoid[i]) != 0)
                    n->rc = -1;
            prompt_note(c, PROMPT_NOTE_TRANSLATED,
                        "must_avoid %s written as prose constraints: %s has no negative prompt",
                        names.data ? names.data : "", c->be->name);
            ig_buf_free(&names);
        } else {
            const char *pos[32];
            size_t k = positive_list(n, pos, 32);
            if (k) {
                new_sentence(n, &st);
                puts_(n, "The image has ");
                for (size_t i = 0; i < k; i++) {
                    if (i)
                        puts_(n, i + 1 == k ? " and " : ", ");
                    puts_(n, pos[i]);
                }
                end_sentence(n, st);
            }
        }
    }
    return n->rc;
}

static json_t *
jstr_plain(struct nctx *n, const char *s)
{
    struct ig_buf t = {0};
    if (prompt_put_plain(&t, s) < 0) {
        ig_buf_free(&t);
        n->rc = -1;
        return json_string("");
    }
    json_t *j = json_string(t.data ? t.data : "");
    ig_buf_free(&t);
    return j;
}

/* BFL's structured prompt: scene, subjects, style, color_palette, ... */
static int
render_flux2_json(struct nctx *n)
{
    const struct prompt_spec *s = n->c->spec;
    json_t *o = json_object(), *subj = json_object(), *subjects = json_array();
    struct nctx scene = {.c = n->c};
    put_subject(&scene);
    for (size_t i = 0; i < s->n_must_include; i++) {
        puts_(&scene, i ? ", " : "; it also shows ");
        put_user(&scene, s->must_include[i]);
    }
    for (size_t i = 0; i < s->n_text; i++) {
        puts_(&scene, "; the text \"");
        put_user(&scene, s->text[i]);
        puts_(&scene, "\" appears, spelled exactly");
    }
    const char *pos[32];
    size_t k = s->n_must_avoid ? positive_list(&scene, pos, 32) : 0;
    for (size_t i = 0; i < k; i++) {
        puts_(&scene, i ? ", " : "; ");
        puts_(&scene, pos[i]);
    }
    n->rc |= scene.rc;
    json_object_set_new(o, "scene", json_string(scene.b.data ? scene.b.data : ""));
    ig_buf_free(&scene.b);
    json_object_set_new(subj, "description", jstr_plain(n, s->subject));
    if (s->n_details) {
        struct nctx d = {.c = n->c};
        put_list(&d, s->details, s->n_details, "");
        n->rc |= d.rc;
        json_object_set_new(subj, "action", json_string(d.b.data ? d.b.data : ""));
        ig_buf_free(&d.b);
    }
    json_array_append_new(subjects, subj);
    json_object_set_new(o, "subjects", subjects);
    static const char *const medium[] = {NULL, "photograph", "illustration",
                                         "product cutout"};
    if (s->style || s->medium) {
        struct nctx st = {.c = n->c};
        if (s->medium)
            puts_(&st, medium[s->medium]);
        if (s->style) {
            if (s->medium)
                puts_(&st, ", ");
            put_user(&st, s->style);
        }
        n->rc |= st.rc;
        json_object_set_new(o, "style", json_string(st.b.data ? st.b.data : ""));
        ig_buf_free(&st.b);
    }
    if (s->n_palette) {
        json_t *pal = json_array();
        for (size_t i = 0; i < s->n_palette; i++)
            json_array_append_new(pal, json_string(s->palette[i]));
        json_object_set_new(o, "color_palette", pal);
    }
    if (s->composition)
        json_object_set_new(o, "composition", jstr_plain(n, s->composition));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return -1;
    puts_(n, text);
    free(text);
    if (s->n_emphasis)
        prompt_note(n->c, PROMPT_NOTE_DROPPED,
                    "emphasis dropped: the structured prompt has no place for it; key order "
                    "puts the subject first");
    prompt_note(n->c, PROMPT_NOTE_WARNING,
                "structured JSON prompt: BFL documents its keys as guidance, not a schema");
    return n->rc;
}

int
prompt_render_natural(struct rctx *c)
{
    const struct prompt_spec *s = c->spec;
    struct nctx n = {.c = c};
    int json = c->opt->structured && c->fam == FAM_FLUX2;
    if (c->opt->structured && !json)
        prompt_note(c, PROMPT_NOTE_WARNING,
                    "structured JSON prompt asked for, but %s is not FLUX.2; sent prose",
                    c->be->name);
    int rc = json ? render_flux2_json(&n) : render_prose(&n);
    if (rc == 0)
        c->out->prompt = prompt_keep(c, &n.b);

    if (rc == 0 && s->n_must_avoid && (c->be->contract.caps & IG_CAP_NEGATIVE_PROMPT)) {
        for (size_t i = 0; i < s->n_must_avoid; i++) {
            if (i)
                puts_(&n, ", ");
            put_user(&n, s->must_avoid[i]);
        }
        if (n.rc == 0)
            c->out->negative_prompt = prompt_keep(c, &n.b);
        rc = n.rc;
    }
    if (rc == 0 && (c->fam == FAM_FLUX1 || c->fam == FAM_FLUX2) && c->out->prompt) {
        /* T5's 512-token budget; about 1.3 tokens per English word. */
        size_t words = 0;
        for (const char *p = c->out->prompt; *p; p++)
            words += !isspace((unsigned char)*p) && (p == c->out->prompt ||
                                                      isspace((unsigned char)p[-1]));
        if (words * 13 / 10 > 512)
            prompt_note(c, PROMPT_NOTE_WARNING,
                        "about %zu T5 tokens (an estimate from %zu words): FLUX reads at most "
                        "512, the rest is cut", words * 13 / 10, words);
    }
    ig_buf_free(&n.b);
    return rc ? -1 : 0;
}
