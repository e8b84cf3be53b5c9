/* SPDX-License-Identifier: MIT */
/* prompt.h -- the prompt spec compiler: one plain spec, rendered into each
 * backend's prompt grammar and parameters, plus a linter for raw prompts.
 *
 * A spec (YAML or JSON, docs/prompts.md) is loaded into a prompt_spec that
 * owns its strings in an arena. prompt_render() turns it into the text,
 * negative prompt and parameters one backend takes, reading only that
 * backend's contract (grammar, sizes, caps, length limit, tier) and its
 * adapter kind and model name (which decide the dialect and model family).
 * Whatever it cannot pass as asked it drops, translates or truncates, and
 * says so in a note: nothing is silently ignored. */
#ifndef IG_PROMPT_PROMPT_H
#define IG_PROMPT_PROMPT_H

#include <stddef.h>

#include "core/config.h"
#include "core/error.h"

/* ---- The spec ------------------------------------------------------------ */

enum prompt_medium {
    PROMPT_MEDIUM_UNSET = 0,
    PROMPT_MEDIUM_PHOTO,
    PROMPT_MEDIUM_ILLUSTRATION,
    PROMPT_MEDIUM_CUTOUT          /* product cutout on a transparent background */
};

enum prompt_ref_role {
    PROMPT_REF_STYLE = 0,
    PROMPT_REF_SUBJECT,           /* a character or an object to keep */
    PROMPT_REF_COMPOSITION
};

struct prompt_ref {
    char *url;
    enum prompt_ref_role role;
    int   weight;                 /* 0 = the backend's default; else 1..1000 */
};

struct prompt_emphasis {
    char *term;
    int   level;                  /* -3..3, not 0: weight 1.1^level */
};

struct prompt_spec {
    struct ig_arena *arena;       /* owns everything below */
    char  *subject;
    char **details; size_t n_details;
    char  *style;
    enum prompt_medium medium;
    char  *composition;
    char **must_include; size_t n_must_include;
    char **must_avoid; size_t n_must_avoid;
    char **text; size_t n_text;   /* literal text to render in the image */
    struct prompt_emphasis *emphasis; size_t n_emphasis;
    int    aspect_w, aspect_h;    /* 0 = unset */
    int    width, height;         /* exact size; 0 = unset */
    double megapixels;            /* target area when no exact size; 0 = 1 MP */
    int    has_seed;
    unsigned long long seed;
    int    n;                     /* images wanted; 0 = 1 */
    struct prompt_ref *refs; size_t n_refs;
    char **palette; size_t n_palette;   /* "#rrggbb" */
    char  *notes;                 /* free text for people; never rendered */
};

/* Loads a spec from YAML or JSON text (JSON when name ends in .json or the
 * text starts with '{'). Every problem goes to diags as LINE:COL plus a
 * message; err gets the first as "NAME:LINE:COL: message" (code bad_spec). */
struct prompt_spec *prompt_spec_load(const char *name, const char *text, size_t len,
                                     struct ig_config_diags *diags, struct ig_error *err);
void prompt_spec_free(struct prompt_spec *spec);

/* ---- Rendering ----------------------------------------------------------- */

enum prompt_dialect {             /* weight-syntax dialects */
    PROMPT_DIALECT_AUTO = 0,      /* from the adapter kind */
    PROMPT_DIALECT_A1111,
    PROMPT_DIALECT_COMFYUI
};

struct prompt_options {
    enum prompt_dialect dialect;
    int    structured;            /* FLUX.2: the JSON structured prompt */
    double mj_version;            /* 0 = from the model name, else 6, 6.1, 7 */
    int    stylize;               /* -1 = unset, else 0..1000 */
    int    chaos;                 /* -1 = unset, else 0..100 */
    int    raw;                   /* Midjourney --style raw */
    const char *clip_vocab;       /* CLIP merges file; NULL = look in .deps */
};
/* Options with every field unset. */
void prompt_options_init(struct prompt_options *opt);

enum prompt_note_kind {
    PROMPT_NOTE_DROPPED = 0,
    PROMPT_NOTE_TRANSLATED,
    PROMPT_NOTE_TRUNCATED,
    PROMPT_NOTE_WARNING
};
const char *prompt_note_kind_name(enum prompt_note_kind k);

struct prompt_note {
    enum prompt_note_kind kind;
    char *message;
};

struct prompt_params {
    int   width, height;          /* 0 when the backend takes an aspect */
    char  aspect[16];             /* "16:9" when the backend takes an aspect */
    int   has_seed;
    unsigned long long seed;
    int   n_per_call, calls;      /* n images as calls x n_per_call */
    int   transparent;            /* ask for a transparent background */
    size_t n_refs;                /* reference images passed */
};

struct prompt_render {
    struct ig_arena *arena;       /* owns every string below */
    const char *backend;
    enum ig_grammar grammar;
    const char *family;           /* "sdxl", "flux2", "gpt-image", ... */
    const char *dialect;          /* "a1111", "comfyui", or NULL */
    char *prompt;
    char *negative_prompt;        /* NULL when the backend gets none */
    struct prompt_params params;
    enum ig_tier tier;            /* the contract's, lowered when a seed is dropped */
    int   clip_tokens;            /* weight-syntax: tokens in the positive prompt */
    int   clip_exact;             /* 1: counted with CLIP's BPE; 0: an estimate */
    struct prompt_note *notes; size_t n_notes, cap_notes;
};

/* Renders spec for backend be. Returns 0, or -1 with err set (the backend
 * takes no prompt, bad options, out of memory); free out with
 * prompt_render_free either way. */
int prompt_render(const struct prompt_spec *spec, const struct ig_backend_cfg *be,
                  const struct prompt_options *opt, struct prompt_render *out,
                  struct ig_error *err);
void prompt_render_free(struct prompt_render *r);
/* {"backend","grammar","prompt","negative_prompt","params":{...},"notes":[...]} */
struct json_t *prompt_render_json(const struct prompt_render *r);

/* ---- CLIP tokens ------------------------------------------------------------- */

/* Tokens CLIP's BPE makes of text (BOS/EOS not counted). With the merges
 * file (the one OpenAI's CLIP ships, found through path, $IG_CLIP_VOCAB or
 * .deps) *exact is 1; without it the count is an estimate and *exact 0. */
int prompt_clip_count(const char *text, const char *path, int *exact);
/* The same after removing A1111/ComfyUI weight syntax, as the UIs count. */
int prompt_clip_count_weighted(const char *text, const char *path, int *exact);

/* ---- Lint ------------------------------------------------------------------------ */

enum prompt_lint_level { PROMPT_LINT_INFO = 0, PROMPT_LINT_WARNING, PROMPT_LINT_ERROR };

struct prompt_finding {
    enum prompt_lint_level level;
    char code[40];
    char message[320];
};

struct prompt_lint {
    enum ig_grammar detected;     /* the grammar the text looks written for */
    int clip_tokens, clip_exact;
    struct prompt_finding items[24];
    size_t n;
};

/* Checks a raw prompt (and an optional negative prompt) against backend be. */
void prompt_lint_text(const char *text, const char *negative, const struct ig_backend_cfg *be,
                      const char *clip_vocab, struct prompt_lint *out);
int  prompt_lint_has_error(const struct prompt_lint *l);
const char *prompt_lint_level_name(enum prompt_lint_level l);

/* Syntax detectors shared by the renderers, lint and tests. */
int prompt_has_weight_syntax(const char *text);
int prompt_has_flags(const char *text);

#endif
