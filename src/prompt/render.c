/* SPDX-License-Identifier: MIT */
/* render.c -- what every renderer shares: the backend's model family, size
 * and aspect snapping against its contract, seed, n, references and
 * transparency, the length limit, the notes, and the JSON form.
 *
 * The family comes from the adapter kind and the model name, so the
 * config needs no extra key: a1111 and comfyui adapters pick the dialect,
 * "xl" in a weight-syntax model means SDXL buckets, "flux-2"/"flux2" means
 * FLUX.2 and so on. Sizes are chosen by scoring every size the contract
 * accepts (aspect error first, then area error), so the result is always
 * one ig_contract_accepts_size() agrees with. */
#include "prompt/internal.h"
#include "core/alloc.h"
#include "core/arena.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const family_names[] = {"sd15", "sdxl", "midjourney", "flux1", "flux2",
                                           "gpt-image", "gemini", "sd3", "generic"};

const char *
prompt_family_name(enum prompt_family f)
{
    return family_names[f];
}

static int
has(const char *s, const char *needle)
{
    return s && strcasestr(s, needle) != NULL;
}

enum prompt_family
prompt_family_of(const struct ig_backend_cfg *be)
{
    const char *m = be->model, *a = be->adapter ? be->adapter : "";
    switch (be->contract.grammar) {
    case IG_GRAMMAR_WEIGHT_SYNTAX:
        return has(m, "xl") ? FAM_SDXL : FAM_SD15;
    case IG_GRAMMAR_PARAMETER_FLAG:
        return FAM_MIDJOURNEY;
    case IG_GRAMMAR_NATURAL_LANGUAGE:
        if (strcmp(a, "openai") == 0)
            return FAM_GPT_IMAGE;
        if (strcmp(a, "gemini") == 0)
            return FAM_GEMINI;
        if (has(m, "flux-2") || has(m, "flux.2") || has(m, "flux2"))
            return FAM_FLUX2;
        if (has(m, "flux"))
            return FAM_FLUX1;
        if (strcmp(a, "stability") == 0 || has(m, "sd3") || has(m, "stable-diffusion-3"))
            return FAM_SD3;
        return FAM_GENERIC;
    case IG_GRAMMAR_NONE:
        break;
    }
    return FAM_GENERIC;
}

const char *
prompt_note_kind_name(enum prompt_note_kind k)
{
    static const char *const names[] = {"dropped", "translated", "truncated", "warning"};
    return k <= PROMPT_NOTE_WARNING ? names[k] : "?";
}

void
prompt_options_init(struct prompt_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->stylize = -1;
    opt->chaos = -1;
}

void
prompt_note(struct rctx *c, enum prompt_note_kind k, const char *fmt, ...)
{
    struct prompt_render *r = c->out;
    void *items = r->notes;
    if (ig_grow(&items, &r->cap_notes, r->n_notes + 1, sizeof *r->notes) != 0) {
        c->oom = 1;
        return;
    }
    r->notes = items;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *m = ig_arena_strdup(r->arena, msg);
    if (!m) {
        c->oom = 1;
        return;
    }
    r->notes[r->n_notes].kind = k;
    r->notes[r->n_notes++].message = m;
}

char *
prompt_keep(struct rctx *c, struct ig_buf *b)
{
    char *s = ig_arena_strndup(c->out->arena, b->data ? b->data : "", b->len);
    if (!s)
        c->oom = 1;
    ig_buf_reset(b);
    return s;
}

/* ---- Sizes ------------------------------------------------------------------ */

static int
gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static const struct ig_size sdxl_buckets[] = {
    {1024, 1024}, {1152, 896}, {896, 1152}, {1216, 832}, {832, 1216}, {1344, 768},
    {768, 1344}, {1536, 640}, {640, 1536}};

static double
size_cost(int w, int h, double ratio, double px)
{
    return 4.0 * fabs(log(((double)w / h) / ratio)) + fabs(log((double)w * h / px));
}

/* The aspect the spec asks for, and the area. */
static void
wanted(const struct rctx *c, double *ratio, double *px, int *asked)
{
    const struct prompt_spec *s = c->spec;
    *asked = 1;
    if (s->width) {
        *ratio = (double)s->width / s->height;
        *px = (double)s->width * s->height;
        return;
    }
    *ratio = s->aspect_w ? (double)s->aspect_w / s->aspect_h : 1.0;
    *asked = s->aspect_w != 0;
    double base = c->fam == FAM_SD15 ? 512.0 * 512 : 1024.0 * 1024;
    *px = s->megapixels > 0 ? s->megapixels * 1e6 : base;
}

static void
snap_to_aspect(struct rctx *c, double ratio, int asked)
{
    const struct ig_contract *k = &c->be->contract;
    const char *best = NULL;
    double bc = 0;
    for (size_t i = 0; i < k->n_aspects; i++) {
        int a, b;
        if (sscanf(k->aspects[i], "%d:%d", &a, &b) != 2 || a <= 0 || b <= 0)
            continue;
        double cost = fabs(log(((double)a / b) / ratio));
        if (!best || cost < bc) {
            best = k->aspects[i];
            bc = cost;
        }
    }
    if (!best)
        return;
    snprintf(c->out->params.aspect, sizeof c->out->params.aspect, "%s", best);
    const struct prompt_spec *s = c->spec;
    if (s->width)
        prompt_note(c, PROMPT_NOTE_TRANSLATED,
                    "size %dx%d: %s takes an aspect ratio, not pixels; sent aspect %s", s->width,
                    s->height, c->be->name, best);
    else if (asked && bc > 1e-9)
        prompt_note(c, PROMPT_NOTE_TRANSLATED, "aspect %d:%d is not one %s accepts; sent %s",
                    s->aspect_w, s->aspect_h, c->be->name, best);
}

static int
accepts(const struct rctx *c, int w, int h, int mult, long maxpx)
{
    if (!ig_contract_accepts_size(&c->be->contract, w, h))
        return 0;
    if (mult > 1 && (w % mult || h % mult))
        return 0;
    return !maxpx || (long)w * h <= maxpx;
}

static void
snap_to_pixels(struct rctx *c, double ratio, double px, int asked)
{
    const struct ig_contract *k = &c->be->contract;
    const struct prompt_spec *s = c->spec;
    struct prompt_params *p = &c->out->params;
    int flux = c->fam == FAM_FLUX1 || c->fam == FAM_FLUX2;
    /* FLUX wants multiples of 16 and at most 4 MP when the contract is silent. */
    int mult = k->size_multiple > 1 ? k->size_multiple : flux ? 16 : 8;
    long maxpx = k->max_pixels ? 0 : flux ? 4L << 20 : 0;
    int bw = 0, bh = 0;
    double bc = 0;
    if (s->width && accepts(c, s->width, s->height, mult, maxpx)) {
        bw = s->width;
        bh = s->height;
    } else if (k->n_sizes) {
        for (size_t i = 0; i < k->n_sizes; i++) {
            double cost = size_cost(k->sizes[i].w, k->sizes[i].h, ratio, px);
            if (!bw || cost < bc) {
                bw = k->sizes[i].w;
                bh = k->sizes[i].h;
                bc = cost;
            }
        }
    } else {
        if (c->fam == FAM_SDXL && !s->megapixels)
            for (size_t i = 0; i < sizeof sdxl_buckets / sizeof sdxl_buckets[0]; i++) {
                const struct ig_size *z = &sdxl_buckets[i];
                double cost = size_cost(z->w, z->h, ratio, px);
                if (accepts(c, z->w, z->h, 1, 0) && (!bw || cost < bc)) {
                    bw = z->w;
                    bh = z->h;
                    bc = cost;
                }
            }
        int lo = k->min_side > mult ? k->min_side : mult;
        int hi = k->max_side ? k->max_side : 8192;
        if (!bw)   /* no SDXL bucket fitted: search the contract's grid */
            for (int w = lo + (mult - lo % mult) % mult; w <= hi; w += mult) {
                /* The two grid heights around the ratio, and the extremes,
                 * for ratios the contract's sides cannot reach. */
                int h0 = (int)floor(w / ratio / mult) * mult;
                int lo_h = lo + (mult - lo % mult) % mult, hi_h = hi - hi % mult;
                const int cand[4] = {h0, h0 + mult, lo_h, hi_h};
                for (int ci = 0; ci < 4; ci++) {
                    int h = cand[ci];
                    if (h < lo || h > hi || !accepts(c, w, h, mult, maxpx))
                        continue;
                    double cost = size_cost(w, h, ratio, px);
                    if (!bw || cost < bc) {
                        bw = w;
                        bh = h;
                        bc = cost;
                    }
                }
            }
    }
    if (!bw) {
        prompt_note(c, PROMPT_NOTE_WARNING,
                    "no size fits %s's contract; the backend chooses the size", c->be->name);
        return;
    }
    p->width = bw;
    p->height = bh;
    if (s->width && (bw != s->width || bh != s->height))
        prompt_note(c, PROMPT_NOTE_TRANSLATED, "size %dx%d is not one %s accepts; sent %dx%d",
                    s->width, s->height, c->be->name, bw, bh);
    else if (!s->width && asked && fabs(log(((double)bw / bh) / ratio)) > 0.005)
        prompt_note(c, PROMPT_NOTE_TRANSLATED,
                    "aspect %d:%d snapped to %dx%d, the nearest size %s accepts", s->aspect_w,
                    s->aspect_h, bw, bh, c->be->name);
}

static void
snap_size(struct rctx *c)
{
    double ratio, px;
    int asked;
    wanted(c, &ratio, &px, &asked);
    const struct ig_contract *k = &c->be->contract;
    if (c->fam == FAM_MIDJOURNEY) {
        const struct prompt_spec *s = c->spec;
        int a = s->width ? s->width : s->aspect_w, b = s->width ? s->height : s->aspect_h;
        if (a) {
            int g = gcd(a, b);
            snprintf(c->out->params.aspect, sizeof c->out->params.aspect, "%d:%d", a / g, b / g);
            if (s->width)
                prompt_note(c, PROMPT_NOTE_TRANSLATED,
                            "size %dx%d sent as --ar %d:%d; Midjourney chooses the pixels",
                            s->width, s->height, a / g, b / g);
        }
        return;
    }
    if (k->n_aspects && !k->n_sizes && !k->min_side && !k->max_side && !k->size_multiple)
        snap_to_aspect(c, ratio, asked);
    else
        snap_to_pixels(c, ratio, px, asked);
}

/* ---- Seed, n, references, background ------------------------------------------ */

static void
apply_params(struct rctx *c)
{
    const struct prompt_spec *s = c->spec;
    const struct ig_contract *k = &c->be->contract;
    struct prompt_params *p = &c->out->params;
    c->out->tier = k->tier;
    if (s->has_seed) {
        if (k->caps & IG_CAP_SEED) {
            p->has_seed = 1;
            p->seed = s->seed;
        } else {
            c->out->tier = IG_TIER_NONE;
            if (k->tier != IG_TIER_NONE)
                prompt_note(c, PROMPT_NOTE_DROPPED,
                            "seed %llu dropped: %s takes no seed; reproducibility tier %s -> none",
                            s->seed, c->be->name, ig_tier_name(k->tier));
            else
                prompt_note(c, PROMPT_NOTE_DROPPED,
                            "seed %llu dropped: %s takes no seed (its tier is already none)",
                            s->seed, c->be->name);
        }
    }
    int n = s->n ? s->n : 1;
    if (n > 1 && !(k->caps & IG_CAP_N)) {
        p->calls = n;
        p->n_per_call = 1;
        prompt_note(c, PROMPT_NOTE_TRANSLATED,
                    "n=%d looped: %s makes one image per call, so %d calls", n, c->be->name, n);
    } else {
        p->calls = 1;
        p->n_per_call = n;
    }
    if (s->medium == PROMPT_MEDIUM_CUTOUT) {
        if (k->caps & IG_CAP_TRANSPARENCY)
            p->transparent = 1;
        else
            prompt_note(c, PROMPT_NOTE_TRANSLATED,
                        "transparent background: %s cannot make one; asked for a plain white "
                        "background to cut out later", c->be->name);
    }
    if (s->n_refs && (k->caps & IG_CAP_REFERENCE_IMAGES)) {
        p->n_refs = s->n_refs;
    } else {
        static const char *const roles[] = {"style", "subject", "composition"};
        for (size_t i = 0; i < s->n_refs; i++)
            prompt_note(c, PROMPT_NOTE_DROPPED,
                        "%s reference %s dropped: %s takes no reference images",
                        roles[s->refs[i].role], s->refs[i].url, c->be->name);
    }
}

/* Cuts at a word boundary within the contract's limit. */
static void
apply_limit(struct rctx *c)
{
    int max = c->be->contract.prompt_max_chars;
    char *t = c->out->prompt;
    size_t len = t ? strlen(t) : 0;
    if (!max || len <= (size_t)max)
        return;
    size_t cut = (size_t)max;
    while (cut > 0 && ((unsigned char)t[cut] & 0xc0) == 0x80)
        cut--;
    size_t word = cut;
    while (word > 0 && t[word] != ' ')
        word--;
    if (word > (size_t)max / 2)
        cut = word;
    t[cut] = '\0';
    prompt_note(c, PROMPT_NOTE_TRUNCATED, "prompt cut from %zu to %zu characters (%s's limit is %d)",
                len, cut, c->be->name, max);
}

int
prompt_render(const struct prompt_spec *spec, const struct ig_backend_cfg *be,
              const struct prompt_options *opt, struct prompt_render *out, struct ig_error *err)
{
    struct prompt_options dflt;
    memset(out, 0, sizeof *out);
    if (!opt) {
        prompt_options_init(&dflt);
        opt = &dflt;
    }
    out->arena = ig_arena_new(4096);
    if (!out->arena)
        return ig_error_set(err, 500, "out_of_memory", "out of memory rendering a prompt");
    out->backend = be->name;
    out->grammar = be->contract.grammar;
    if (be->contract.grammar == IG_GRAMMAR_NONE)
        return ig_error_set(err, 400, "backend_takes_no_prompt",
                            "backend '%s' takes no prompt (grammar none)", be->name);
    if (!(be->contract.classes &
          (IG_CLASS_BIT(IG_CLASS_GENERATE) | IG_CLASS_BIT(IG_CLASS_EDIT))))
        return ig_error_set(err, 400, "backend_takes_no_prompt",
                            "backend '%s' neither generates nor edits", be->name);
    if ((opt->stylize != -1 && (opt->stylize < 0 || opt->stylize > 1000)) ||
        (opt->chaos != -1 && (opt->chaos < 0 || opt->chaos > 100)))
        return ig_error_set(err, 400, "bad_option", "stylize is 0..1000 and chaos 0..100");
    if (opt->mj_version != 0 && opt->mj_version != 6 && opt->mj_version != 6.1 &&
        opt->mj_version != 7)
        return ig_error_set(err, 400, "bad_option", "Midjourney version is 6, 6.1 or 7");

    struct rctx c = {.spec = spec, .be = be, .opt = opt, .out = out};
    c.fam = prompt_family_of(be);
    out->family = prompt_family_name(c.fam);
    c.dialect = opt->dialect;
    if (c.dialect == PROMPT_DIALECT_AUTO)
        c.dialect = be->adapter && strcmp(be->adapter, "comfyui") == 0 ? PROMPT_DIALECT_COMFYUI
                                                                       : PROMPT_DIALECT_A1111;
    snap_size(&c);
    apply_params(&c);
    int rc;
    switch (be->contract.grammar) {
    case IG_GRAMMAR_WEIGHT_SYNTAX:
        out->dialect = c.dialect == PROMPT_DIALECT_COMFYUI ? "comfyui" : "a1111";
        rc = prompt_render_weight(&c);
        break;
    case IG_GRAMMAR_PARAMETER_FLAG:
        rc = prompt_render_flag(&c);
        break;
    default:
        rc = prompt_render_natural(&c);
        break;
    }
    if (rc == 0 && !c.oom)
        apply_limit(&c);
    if (rc != 0 || c.oom)
        return ig_error_set(err, 500, "out_of_memory", "out of memory rendering a prompt");
    return 0;
}

void
prompt_render_free(struct prompt_render *r)
{
    ig_free(r->notes);
    ig_arena_free(r->arena);
    memset(r, 0, sizeof *r);
}

json_t *
prompt_render_json(const struct prompt_render *r)
{
    const struct prompt_params *p = &r->params;
    json_t *params = json_object(), *notes = json_array();
    json_t *o = json_object();
    if (!params || !notes || !o) {
        json_decref(params);
        json_decref(notes);
        json_decref(o);
        return NULL;
    }
    if (p->width) {
        json_object_set_new(params, "width", json_integer(p->width));
        json_object_set_new(params, "height", json_integer(p->height));
    }
    if (p->aspect[0])
        json_object_set_new(params, "aspect", json_string(p->aspect));
    if (p->has_seed)
        json_object_set_new(params, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(params, "n", json_integer(p->n_per_call));
    json_object_set_new(params, "calls", json_integer(p->calls));
    if (p->transparent)
        json_object_set_new(params, "background", json_string("transparent"));
    if (p->n_refs)
        json_object_set_new(params, "references", json_integer((json_int_t)p->n_refs));
    json_object_set_new(params, "tier", json_string(ig_tier_name(r->tier)));
    json_object_set_new(params, "family", json_string(r->family ? r->family : "?"));
    if (r->dialect)
        json_object_set_new(params, "dialect", json_string(r->dialect));
    if (r->grammar == IG_GRAMMAR_WEIGHT_SYNTAX) {
        json_object_set_new(params, "clip_tokens", json_integer(r->clip_tokens));
        json_object_set_new(params, "clip_tokens_exact", json_boolean(r->clip_exact));
    }
    for (size_t i = 0; i < r->n_notes; i++)
        json_array_append_new(notes, json_pack("{s:s,s:s}", "kind",
                                               prompt_note_kind_name(r->notes[i].kind), "message",
                                               r->notes[i].message));
    json_object_set_new(o, "backend", json_string(r->backend ? r->backend : ""));
    json_object_set_new(o, "grammar", json_string(ig_grammar_name(r->grammar)));
    json_object_set_new(o, "prompt", r->prompt ? json_string(r->prompt) : json_null());
    json_object_set_new(o, "negative_prompt",
                        r->negative_prompt ? json_string(r->negative_prompt) : json_null());
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "notes", notes);
    return o;
}
