/* SPDX-License-Identifier: MIT */
/* lint.c -- check a raw prompt against the grammar its backend reads.
 *
 * The text's own grammar is guessed from its syntax: weight groups or
 * BREAK mean weight-syntax, Midjourney flags or '::' weights mean
 * parameter-flag, several sentences or long comma-free clauses mean
 * natural language, and short comma-separated tags are the CLIP habit.
 * Each mismatch with the backend's contract is a finding; those the model
 * would read wrongly (syntax it takes literally, a negative prompt it
 * cannot take, a prompt past its length limit) are errors. */
#include "prompt/internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void add(struct prompt_lint *l, enum prompt_lint_level lv, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add(struct prompt_lint *l, enum prompt_lint_level lv, const char *code, const char *fmt, ...)
{
    if (l->n >= sizeof l->items / sizeof l->items[0])
        return;
    struct prompt_finding *f = &l->items[l->n++];
    f->level = lv;
    snprintf(f->code, sizeof f->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

const char *
prompt_lint_level_name(enum prompt_lint_level l)
{
    return l == PROMPT_LINT_ERROR ? "error" : l == PROMPT_LINT_WARNING ? "warning" : "info";
}

int
prompt_lint_has_error(const struct prompt_lint *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].level == PROMPT_LINT_ERROR)
            return 1;
    return 0;
}

/* SD-era quality boosters that prose models take as literal content. */
static const char *const shorthand[] = {
    "masterpiece", "best quality", "highres", "8k", "4k", "uhd", "trending on artstation",
    "ultra detailed", "high quality", "absurdres", "hdr", "octane render", NULL};

int
prompt_is_quality_tag(const char *s)
{
    for (int i = 0; shorthand[i]; i++)
        if (strcasestr(s, shorthand[i]))
            return 1;
    return 0;
}

struct shape {
    int sentences;      /* ". X" boundaries and a final full stop */
    int commas;
    int words;
    int longest_clause; /* words between commas */
};

static struct shape
shape_of(const char *t)
{
    struct shape s = {0};
    int clause = 0;
    for (const char *p = t; *p; p++) {
        if (!isspace((unsigned char)*p) && (p == t || isspace((unsigned char)p[-1]))) {
            s.words++;
            clause++;
        }
        if (*p == ',' || *p == '\n') {
            s.commas += *p == ',';
            if (clause > s.longest_clause)
                s.longest_clause = clause;
            clause = 0;
        }
        if ((*p == '.' || *p == '!' || *p == '?') && (!p[1] || isspace((unsigned char)p[1])) &&
            p > t && isalpha((unsigned char)p[-1]))
            s.sentences++;
    }
    if (clause > s.longest_clause)
        s.longest_clause = clause;
    return s;
}

static enum ig_grammar
detect(const char *t, const struct shape *s)
{
    if (prompt_has_flags(t) || strstr(t, "::"))
        return IG_GRAMMAR_PARAMETER_FLAG;
    if (prompt_has_weight_syntax(t) || strstr(t, ", BREAK,") || strstr(t, " BREAK "))
        return IG_GRAMMAR_WEIGHT_SYNTAX;
    if (s->sentences >= 2 || (s->longest_clause >= 8 && s->sentences >= 1) ||
        (s->words >= 12 && s->commas * 4 < s->words / 2))
        return IG_GRAMMAR_NATURAL_LANGUAGE;
    if (s->commas >= 2 && s->longest_clause <= 5)
        return IG_GRAMMAR_WEIGHT_SYNTAX;
    return IG_GRAMMAR_NONE;   /* too short to tell; fits anything */
}

void
prompt_lint_text(const char *text, const char *negative, const struct ig_backend_cfg *be,
                 const char *clip_vocab, struct prompt_lint *out)
{
    memset(out, 0, sizeof *out);
    const struct ig_contract *k = &be->contract;
    enum prompt_family fam = prompt_family_of(be);
    const char *name = be->name;
    struct shape sh = shape_of(text);
    out->detected = detect(text, &sh);
    size_t len = strlen(text);

    if (!len || sh.words == 0)
        add(out, PROMPT_LINT_ERROR, "empty_prompt", "the prompt is empty");
    if (k->grammar == IG_GRAMMAR_NONE)
        add(out, PROMPT_LINT_ERROR, "no_prompt", "%s takes no prompt", name);
    if (k->prompt_max_chars && len > (size_t)k->prompt_max_chars)
        add(out, PROMPT_LINT_ERROR, "too_long", "%zu characters; %s takes at most %d", len, name,
            k->prompt_max_chars);

    int weights = prompt_has_weight_syntax(text), flags = prompt_has_flags(text);
    int multi = strstr(text, "::") != NULL;
    switch (k->grammar) {
    case IG_GRAMMAR_NATURAL_LANGUAGE:
        if (weights)
            add(out, PROMPT_LINT_ERROR, "weight_syntax",
                "weight syntax such as (term:1.3) is read literally by %s (%s): write the "
                "emphasis in words", name, prompt_family_name(fam));
        if (flags || multi)
            add(out, PROMPT_LINT_ERROR, "flags",
                "Midjourney parameters (--ar, --no, ::) are plain text to %s: use the "
                "request's own fields", name);
        if (fam == FAM_GPT_IMAGE && prompt_is_quality_tag(text))
            add(out, PROMPT_LINT_WARNING, "shorthand",
                "SD quality shorthand (masterpiece, 8k, best quality...) is not an instruction "
                "GPT Image follows: say the intended use and quality in words");
        else if (prompt_is_quality_tag(text))
            add(out, PROMPT_LINT_WARNING, "shorthand",
                "SD quality shorthand (masterpiece, 8k...) means little to %s", name);
        if (!weights && out->detected == IG_GRAMMAR_WEIGHT_SYNTAX &&
            (fam == FAM_GEMINI || fam == FAM_FLUX2 || fam == FAM_GPT_IMAGE))
            add(out, PROMPT_LINT_WARNING, "tag_list",
                "a bare tag list: %s follows described scenes better than keywords", name);
        if (fam == FAM_FLUX1 || fam == FAM_FLUX2) {
            long words = sh.words;
            if (words * 13 / 10 > 512)
                add(out, PROMPT_LINT_WARNING, "t5_window",
                    "about %ld T5 tokens (estimated from %ld words): FLUX reads at most 512",
                    words * 13 / 10, words);
        }
        break;
    case IG_GRAMMAR_WEIGHT_SYNTAX: {
        if (flags)
            add(out, PROMPT_LINT_ERROR, "flags",
                "Midjourney parameters (--ar, --no) are plain text to %s: set size and the "
                "negative prompt as fields", name);
        int exact;
        out->clip_tokens = prompt_clip_count_weighted(text, clip_vocab, &exact);
        out->clip_exact = exact;
        if (out->clip_tokens > 75)
            add(out, out->detected == IG_GRAMMAR_NATURAL_LANGUAGE ? PROMPT_LINT_ERROR
                                                                   : PROMPT_LINT_WARNING,
                "clip_window",
                "%d CLIP tokens (%s), past the 75-token window%s", out->clip_tokens,
                exact ? "CLIP BPE count" : "an estimate: CLIP's vocabulary was not found",
                out->detected == IG_GRAMMAR_NATURAL_LANGUAGE
                    ? ": prose paragraphs are cut or chunked; use short tags" : "");
        else if (out->detected == IG_GRAMMAR_NATURAL_LANGUAGE)
            add(out, PROMPT_LINT_INFO, "prose",
                "prose to a CLIP model: it works, but tags pack more into 75 tokens");
        break;
    }
    case IG_GRAMMAR_PARAMETER_FLAG:
        if (weights)
            add(out, PROMPT_LINT_ERROR, "weight_syntax",
                "(term:1.3) is not Midjourney syntax; use term::1.3 (V6) or word order");
        break;
    case IG_GRAMMAR_NONE:
        break;
    }
    if (negative && *negative && !(k->caps & IG_CAP_NEGATIVE_PROMPT) &&
        k->grammar != IG_GRAMMAR_PARAMETER_FLAG)
        add(out, PROMPT_LINT_ERROR, "negative_prompt",
            "%s has no negative prompt (%s): describe what should be there instead", name,
            fam == FAM_FLUX1 || fam == FAM_FLUX2 ? "FLUX is guidance-distilled"
                                                 : "the field does not exist");
    /* A1111's infotext pasted whole: its negative part would be asked for. */
    if (strcasestr(text, "negative prompt:"))
        add(out, PROMPT_LINT_ERROR, "negative_prompt",
            "a 'Negative prompt:' section in the text is read as wanted content by %s%s", name,
            k->caps & IG_CAP_NEGATIVE_PROMPT ? "; pass it as the negative prompt" : "");
    if (out->detected != IG_GRAMMAR_NONE && out->detected != k->grammar && k->grammar &&
        out->n == 0)
        add(out, PROMPT_LINT_INFO, "grammar",
            "reads like %s; %s takes %s", ig_grammar_name(out->detected), name,
            ig_grammar_name(k->grammar));
}
