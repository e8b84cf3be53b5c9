/* SPDX-License-Identifier: MIT */
/* test_prompt_render.c -- the renderers: golden outputs per grammar family
 * and dialect (each expected string derived by hand from the rules in
 * PROMPTS.md: 1.1^level weights, A1111's multiplicative nesting against
 * ComfyUI's absolute one, each dialect's escapes, Midjourney's flags and
 * ranges), and properties over many generated specs: no weight syntax or
 * flag reaches a natural-language backend, every must_avoid term is in the
 * negative prompt, translated or named in a note, every size is one the
 * contract accepts, a dropped seed lowers the tier, no prompt passes its
 * backend's length limit. Plus allocation failures and the CLIP count. */
#include "testutil.h"
#include "core/alloc.h"
#include "core/config.h"
#include "prompt/prompt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ig_config *dflt, *extra;

static int
setup(void **state)
{
    (void)state;
    struct ig_error err = {0};
    dflt = ig_config_load_default(NULL, &err);
    extra = ig_config_load_file(tu_data("prompt/backends.yaml"), NULL, &err);
    return dflt && extra ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    ig_config_free(dflt);
    ig_config_free(extra);
    return 0;
}

static const struct ig_backend_cfg *
backend(const char *name)
{
    const struct ig_backend_cfg *b = ig_config_backend(dflt, name);
    if (!b)
        b = ig_config_backend(extra, name);
    assert_non_null(b);
    return b;
}

static struct prompt_spec *
spec(const char *yaml)
{
    struct ig_error err = {0};
    struct prompt_spec *s = prompt_spec_load("t.yaml", yaml, strlen(yaml), NULL, &err);
    if (!s)
        fail_msg("spec did not load: %s", err.message);
    return s;
}

static void
render(const char *yaml, const char *be, const struct prompt_options *opt, struct prompt_render *r)
{
    struct prompt_spec *s = spec(yaml);
    struct ig_error err = {0};
    if (prompt_render(s, backend(be), opt, r, &err) != 0)
        fail_msg("render failed: %s", err.message);
    prompt_spec_free(s);
}

static int
has_note(const struct prompt_render *r, enum prompt_note_kind k, const char *needle)
{
    for (size_t i = 0; i < r->n_notes; i++)
        if (r->notes[i].kind == k && strstr(r->notes[i].message, needle))
            return 1;
    return 0;
}

/* ---- Goldens -------------------------------------------------------------- */

static const char nest_spec[] =
    "subject: wooden cabin\n"
    "details: [\"lamp (lit) [old] AND BREAK\"]\n"
    "emphasis: {wooden cabin: 2, cabin: 1}\n"
    "must_avoid: [fog, \"people (crowd)\"]\n"
    "seed: 7\n";

static void
test_weight_a1111(void **state)
{
    (void)state;
    struct prompt_render r;
    render(nest_spec, "a1111-sdxl", NULL, &r);
    /* 1.1^2 = 1.21 on the tag; cabin's final weight 1.1 inside it is
     * 1.1 / 1.21 = 0.909 in A1111, which multiplies nested groups. */
    assert_string_equal(r.prompt,
                        "(wooden (cabin:0.91):1.21), lamp \\(lit\\) \\[old\\] and break");
    assert_string_equal(r.negative_prompt, "fog, people \\(crowd\\)");
    assert_string_equal(r.dialect, "a1111");
    assert_true(r.params.has_seed);
    assert_int_equal(r.params.seed, 7);
    assert_int_equal(r.params.width, 1024);   /* SDXL's square bucket */
    assert_int_equal(r.params.height, 1024);
    prompt_render_free(&r);
}

static void
test_weight_comfyui(void **state)
{
    (void)state;
    struct prompt_render r;
    render(nest_spec, "comfyui-sdxl", NULL, &r);
    /* ComfyUI's inner weight replaces the outer; only ( ) are escaped. */
    assert_string_equal(r.prompt, "(wooden (cabin:1.1):1.21), lamp \\(lit\\) [old] AND BREAK");
    assert_string_equal(r.negative_prompt, "fog, people \\(crowd\\)");
    assert_string_equal(r.dialect, "comfyui");
    prompt_render_free(&r);

    struct prompt_options o;
    prompt_options_init(&o);
    o.dialect = PROMPT_DIALECT_COMFYUI;
    render(nest_spec, "a1111-sdxl", &o, &r);
    assert_string_equal(r.dialect, "comfyui");
    assert_non_null(strstr(r.prompt, "(cabin:1.1)"));
    prompt_render_free(&r);
}

static void
test_weight_pasted_syntax_and_window(void **state)
{
    (void)state;
    struct prompt_render r;
    render("subject: \"((masterpiece)), (red:1.4) hat <lora:foo:0.8>\"\n", "a1111-sdxl", NULL, &r);
    assert_string_equal(r.prompt, "masterpiece, red hat");
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "use 'emphasis'"));
    prompt_render_free(&r);

    char yaml[4000] = "subject: a castle\ndetails: [";
    for (int i = 0; i < 40; i++)
        strcat(yaml, i ? ", tall tower" : "tall tower");
    strcat(yaml, "]\n");
    render(yaml, "a1111-sdxl", NULL, &r);
    /* "tall tower" is two tokens (each a common word), and 40 of them are
     * 80 tokens, past the window, whatever the vocabulary. */
    assert_true(r.clip_tokens > 75);
    assert_true(has_note(&r, PROMPT_NOTE_WARNING, "75-token window"));
    prompt_render_free(&r);
}

static void
test_sd15_size(void **state)
{
    (void)state;
    struct prompt_render r;
    render("subject: a cat\naspect: \"3:2\"\n", "a1111-sd15", NULL, &r);
    /* 512x512 worth of pixels at 3:2 on the contract's 64-px grid: 576x384
     * is exactly 3:2 (640x448 is closer in area but 1.43:1). */
    assert_int_equal(r.params.width, 576);
    assert_int_equal(r.params.height, 384);
    assert_string_equal(r.family, "sd15");
    prompt_render_free(&r);
}

static const char mj_spec[] =
    "subject: lighthouse --ar 3:2 at dusk\n"
    "must_avoid: [fog, \"boats, gulls\"]\n"
    "seed: 42\n"
    "aspect: \"3:2\"\n"
    "emphasis: {lighthouse: 2}\n"
    "references:\n"
    "  - {url: \"https://a/s.png\", role: style, weight: 300}\n"
    "  - {url: \"https://a/o.png\", role: subject, weight: 400}\n"
    "  - {url: \"https://a/c.png\", role: composition, weight: 500}\n";

static void
test_flag_v7(void **state)
{
    (void)state;
    struct prompt_options o;
    prompt_options_init(&o);
    o.stylize = 250;
    o.chaos = 10;
    o.raw = 1;
    struct prompt_render r;
    render(mj_spec, "midjourney", &o, &r);
    assert_string_equal(r.prompt,
                        "https://a/c.png lighthouse at dusk --ar 3:2 --no fog, boats gulls "
                        "--seed 42 --sref https://a/s.png --oref https://a/o.png --sw 300 "
                        "--ow 400 --iw 3 --v 7 --style raw --stylize 250 --chaos 10");
    assert_null(r.negative_prompt);
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "--ar 3:2 at dusk"));   /* pasted flag */
    assert_true(has_note(&r, PROMPT_NOTE_DROPPED, "emphasis on 'lighthouse'"));
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "--iw 3 (the maximum)"));
    prompt_render_free(&r);
}

static void
test_flag_v6(void **state)
{
    (void)state;
    struct prompt_render r;
    render(mj_spec, "midjourney-v6", NULL, &r);
    /* V6 has --cref/--cw (0..100) instead of --oref, and --iw up to 2. */
    assert_non_null(strstr(r.prompt, "--cref https://a/o.png"));
    assert_non_null(strstr(r.prompt, "--cw 100"));
    assert_non_null(strstr(r.prompt, "--iw 2 --v 6"));
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "--cw 400 is outside 0..100"));
    prompt_render_free(&r);

    struct prompt_spec *s = spec("subject: a\nsize: 1920x1080\n");
    struct ig_error err = {0};
    assert_int_equal(prompt_render(s, backend("midjourney"), NULL, &r, &err), 0);
    assert_string_equal(r.params.aspect, "16:9");
    assert_non_null(strstr(r.prompt, "--ar 16:9"));
    prompt_render_free(&r);
    prompt_spec_free(s);
}

static void
test_natural_gpt(void **state)
{
    (void)state;
    struct prompt_render r;
    render("subject: a coffee cup\nmedium: photo\ncomposition: on a wooden table\n"
           "text: [OPEN]\nmust_avoid: [steam]\naspect: \"2:3\"\nseed: 3\n",
           "openai", NULL, &r);
    assert_string_equal(r.prompt, "Scene: on a wooden table.\n"
                                  "Subject: A photograph of a coffee cup.\n"
                                  "Text (render exactly, verbatim): \"OPEN\".\n"
                                  "Constraints: no steam.");
    assert_null(r.negative_prompt);
    assert_int_equal(r.params.width, 1024);
    assert_int_equal(r.params.height, 1536);
    assert_int_equal(r.tier, IG_TIER_NONE);   /* fingerprint, lowered: seed dropped */
    assert_true(has_note(&r, PROMPT_NOTE_DROPPED, "seed 3 dropped"));
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "'steam'"));
    prompt_render_free(&r);
}

static void
test_natural_flux_and_sd3(void **state)
{
    (void)state;
    const char *y = "subject: a quiet street\nmust_avoid: [cars, graffiti]\n"
                    "emphasis: {street lamps: 1}\nmedium: cutout\n";
    struct prompt_render r;
    render(y, "fal-flux-dev", NULL, &r);
    assert_string_equal(r.prompt,
                        "A product cutout of a quiet street, isolated on a plain white "
                        "background. Make the street lamps prominent and clearly visible. "
                        "The image has empty, car-free streets.");
    assert_null(r.negative_prompt);
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "'cars' rewritten"));
    assert_true(has_note(&r, PROMPT_NOTE_DROPPED, "'graffiti' dropped"));
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "transparent background"));
    prompt_render_free(&r);

    render(y, "stability-core", NULL, &r);
    assert_string_equal(r.negative_prompt, "cars, graffiti");
    assert_string_equal(r.params.aspect, "1:1");
    prompt_render_free(&r);

    render(y, "openai", NULL, &r);   /* openai can do transparency */
    assert_true(r.params.transparent);
    assert_non_null(strstr(r.prompt, "transparent background"));
    prompt_render_free(&r);
}

static void
test_flux2_structured(void **state)
{
    (void)state;
    struct prompt_options o;
    prompt_options_init(&o);
    o.structured = 1;
    struct prompt_render r;
    render("subject: a vase\npalette: [\"#02eb3c\", \"#edfa3c\"]\nstyle: studio photo\n"
           "size: 1000x1000\n", "flux2-pro", &o, &r);
    json_t *j = json_loads(r.prompt, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "style")), "studio photo");
    json_t *pal = json_object_get(j, "color_palette");
    assert_int_equal(json_array_size(pal), 2);
    assert_string_equal(json_string_value(json_array_get(pal, 0)), "#02eb3c");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "subjects"), 0), "description")),
                        "a vase");
    json_decref(j);
    /* 1000 is no multiple of 16; 1008^2 is nearer 10^6 pixels than 992^2. */
    assert_int_equal(r.params.width, 1008);
    assert_int_equal(r.params.height, 1008);
    assert_true(has_note(&r, PROMPT_NOTE_TRANSLATED, "size 1000x1000"));
    prompt_render_free(&r);
}

static void
test_limits_and_errors(void **state)
{
    (void)state;
    char yaml[5000] = "subject: \"";
    for (int i = 0; i < 300; i++)
        strcat(yaml, "long words ");
    strcat(yaml, "\"\n");
    struct prompt_render r;
    struct prompt_spec *s = spec(yaml);
    struct ig_error err = {0};
    assert_int_equal(prompt_render(s, backend("dalle2"), NULL, &r, &err), 0);
    assert_true(strlen(r.prompt) <= 1000);
    assert_true(has_note(&r, PROMPT_NOTE_TRUNCATED, "limit is 1000"));
    prompt_render_free(&r);
    assert_int_equal(prompt_render(s, backend("local-lanczos"), NULL, &r, &err), -1);
    assert_string_equal(err.code, "backend_takes_no_prompt");
    prompt_render_free(&r);
    struct prompt_options o;
    prompt_options_init(&o);
    o.chaos = 101;
    assert_int_equal(prompt_render(s, backend("midjourney"), &o, &r, &err), -1);
    assert_string_equal(err.code, "bad_option");
    prompt_render_free(&r);
    prompt_spec_free(s);
}

static void
test_json_shape(void **state)
{
    (void)state;
    struct prompt_render r;
    render("subject: a cat\nseed: 5\naspect: \"16:9\"\n", "fal-flux-dev", NULL, &r);
    json_t *j = prompt_render_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "backend")), "fal-flux-dev");
    assert_string_equal(json_string_value(json_object_get(j, "grammar")), "natural-language");
    assert_true(json_is_null(json_object_get(j, "negative_prompt")));
    json_t *p = json_object_get(j, "params");
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 5);
    assert_int_equal(json_integer_value(json_object_get(p, "width")) % 16, 0);
    assert_true(json_is_array(json_object_get(j, "notes")));
    json_decref(j);
    prompt_render_free(&r);
}

/* ---- Properties over generated specs ------------------------------------------ */

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const words[] = {
    "a red fox", "steam", "neon sign", "(oak)", "old [map]", "\\\\path", "AND", "blue:1.5",
    "(gold:1.3) crown", "((masterpiece))", "--ar 2:1 wide", "ship::2 sea", "<lora:x:0.7> face",
    "--no trees", "caf\xc3\xa9 au lait", "\"quoted\"", "a \xe2\x80\x94 dash", "tall, thin",
    "BREAK", "cars", "watermark", "blurry", "lens flare", "text"};
#define NW (sizeof words / sizeof words[0])

static void
yaml_str(char *out, size_t size, const char *s)
{
    size_t n = strlen(out);
    n += (size_t)snprintf(out + n, size - n, "\"");
    for (; *s && n + 3 < size; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    snprintf(out + n, size - n, "\"");
}

static void
yaml_list(char *out, size_t size, const char *key, unsigned count)
{
    size_t n = strlen(out);
    snprintf(out + n, size - n, "%s: [", key);
    for (unsigned i = 0; i < count; i++) {
        if (i)
            strncat(out, ", ", size - strlen(out) - 1);
        yaml_str(out, size, words[rnd(NW)]);
    }
    strncat(out, "]\n", size - strlen(out) - 1);
}

static char *
gen_spec(void)
{
    static char y[8192];
    static const char *const aspects[] = {"1:1", "16:9", "9:16", "3:2", "4:5", "7:3", "21:9",
                                          "1:4", "5:1"};
    static const char *const media[] = {"photo", "illustration", "cutout"};
    y[0] = '\0';
    strcat(y, "subject: ");
    yaml_str(y, sizeof y, words[rnd(NW)]);
    strcat(y, "\n");
    if (rnd(2))
        yaml_list(y, sizeof y, "details", 1 + rnd(4));
    if (rnd(2))
        yaml_list(y, sizeof y, "must_avoid", 1 + rnd(4));
    if (rnd(3) == 0)
        yaml_list(y, sizeof y, "must_include", 1 + rnd(2));
    if (rnd(3) == 0)
        yaml_list(y, sizeof y, "text", 1);
    size_t n = strlen(y);
    if (rnd(3) == 0)
        n += (size_t)snprintf(y + n, sizeof y - n, "medium: %s\n", media[rnd(3)]);
    if (rnd(3) == 0)
        n += (size_t)snprintf(y + n, sizeof y - n, "style: watercolour (loose)\n");
    if (rnd(2))
        n += (size_t)snprintf(y + n, sizeof y - n, "emphasis: {\"%s\": %d}\n",
                              rnd(2) ? "fox" : "steam", rnd(2) ? 2 : -1);
    int r = (int)rnd(3);
    if (r == 0)
        n += (size_t)snprintf(y + n, sizeof y - n, "aspect: \"%s\"\n", aspects[rnd(9)]);
    else if (r == 1) {   /* any size within the spec's 8:1 bound */
        unsigned w = 64 + rnd(3000), lo = w / 8 > 64 ? w / 8 : 64;
        unsigned hi = w * 8 < 3064 ? w * 8 : 3064;
        n += (size_t)snprintf(y + n, sizeof y - n, "size: %ux%u\n", w, lo + rnd(hi - lo + 1));
    }
    if (rnd(2))
        n += (size_t)snprintf(y + n, sizeof y - n, "seed: %u\n", rnd(100000));
    if (rnd(3) == 0)
        n += (size_t)snprintf(y + n, sizeof y - n, "n: %u\n", 1 + rnd(10));
    if (rnd(3) == 0)
        n += (size_t)snprintf(y + n, sizeof y - n,
                              "references: [{url: \"https://r/x.png\", role: %s}]\n",
                              rnd(2) ? "style" : "subject");
    if (rnd(3) == 0)
        snprintf(y + n, sizeof y - n, "palette: [\"#112233\"]\n");
    return y;
}

/* The term, with the syntax removed the way renderers remove it, is in s? */
static int
contains_unescaped(const char *hay, const char *term)
{
    char a[4096], b[512];
    size_t k = 0;
    for (const char *p = hay; *p && k + 1 < sizeof a; p++)
        if (*p != '\\')
            a[k++] = *p;
    a[k] = '\0';
    k = 0;
    for (const char *p = term; *p && k + 1 < sizeof b; p++)
        if (*p != '\\')
            b[k++] = *p;
    b[k] = '\0';
    return strcasestr(a, b) != NULL;   /* A1111 lower-cases BREAK to keep it a word */
}

static void
check_render(const struct prompt_spec *s, const struct ig_backend_cfg *be,
             const struct prompt_render *r, const char *yaml)
{
    const struct ig_contract *k = &be->contract;
    if (k->grammar == IG_GRAMMAR_NATURAL_LANGUAGE &&
        (prompt_has_weight_syntax(r->prompt) || prompt_has_flags(r->prompt) ||
         strstr(r->prompt, "::") || (r->negative_prompt && prompt_has_weight_syntax(r->negative_prompt))))
        fail_msg("%s got syntax: %s\nspec:\n%s", be->name, r->prompt, yaml);
    if (k->grammar == IG_GRAMMAR_PARAMETER_FLAG) {
        /* Exactly the flags the renderer wrote: one --v. */
        const char *v = strstr(r->prompt, " --v ");
        if (!v || strstr(v + 1, " --v "))
            fail_msg("%s: flags smuggled in: %s\nspec:\n%s", be->name, r->prompt, yaml);
    }
    for (size_t i = 0; i < s->n_must_avoid; i++) {
        const char *t = s->must_avoid[i];
        int ok = 0;
        char quoted[600];
        snprintf(quoted, sizeof quoted, "'%s'", t);
        for (size_t j = 0; j < r->n_notes && !ok; j++)
            ok = strstr(r->notes[j].message, quoted) != NULL;
        if (!ok && r->negative_prompt)
            ok = contains_unescaped(r->negative_prompt, t);
        if (!ok && k->grammar == IG_GRAMMAR_PARAMETER_FLAG) {
            const char *no = strstr(r->prompt, " --no ");
            ok = no && contains_unescaped(no, t);
        }
        if (!ok)
            fail_msg("%s: must_avoid '%s' lost\nprompt: %s\nneg: %s\nspec:\n%s", be->name, t,
                     r->prompt, r->negative_prompt ? r->negative_prompt : "-", yaml);
    }
    if (r->params.width && !ig_contract_accepts_size(k, r->params.width, r->params.height))
        fail_msg("%s: size %dx%d not accepted\nspec:\n%s", be->name, r->params.width,
                 r->params.height, yaml);
    if (r->params.aspect[0] && k->grammar != IG_GRAMMAR_PARAMETER_FLAG) {
        int found = 0;
        for (size_t i = 0; i < k->n_aspects; i++)
            found |= strcmp(k->aspects[i], r->params.aspect) == 0;
        if (!found)
            fail_msg("%s: aspect %s not in the contract", be->name, r->params.aspect);
    }
    if (!r->params.width && !r->params.aspect[0] && k->grammar != IG_GRAMMAR_PARAMETER_FLAG)
        fail_msg("%s: no size and no aspect\nspec:\n%s", be->name, yaml);
    if (s->has_seed && !r->params.has_seed &&
        (r->tier != IG_TIER_NONE || !has_note(r, PROMPT_NOTE_DROPPED, "seed")))
        fail_msg("%s: seed dropped without a note or a lower tier", be->name);
    if (r->params.calls * r->params.n_per_call != (s->n ? s->n : 1))
        fail_msg("%s: %d x %d images for n=%d", be->name, r->params.calls, r->params.n_per_call,
                 s->n);
    if (k->prompt_max_chars && strlen(r->prompt) > (size_t)k->prompt_max_chars)
        fail_msg("%s: prompt past its limit", be->name);
}

static void
test_properties(void **state)
{
    (void)state;
    const struct ig_config *cfgs[] = {dflt, extra};
    int rendered = 0;
    for (int round = 0; round < 400; round++) {
        const char *yaml = gen_spec();
        struct ig_error err = {0};
        struct prompt_spec *s = prompt_spec_load("gen.yaml", yaml, strlen(yaml), NULL, &err);
        if (!s)
            fail_msg("generated spec rejected: %s\n%s", err.message, yaml);
        for (int c = 0; c < 2; c++)
            for (size_t b = 0; b < cfgs[c]->n_backends; b++) {
                const struct ig_backend_cfg *be = &cfgs[c]->backends[b];
                if (be->contract.grammar == IG_GRAMMAR_NONE)
                    continue;
                struct prompt_options o;
                prompt_options_init(&o);
                o.structured = round % 2;
                o.dialect = (enum prompt_dialect)(round % 3);
                struct prompt_render r;
                if (prompt_render(s, be, &o, &r, &err) != 0)
                    fail_msg("%s: %s", be->name, err.message);
                check_render(s, be, &r, yaml);
                prompt_render_free(&r);
                rendered++;
            }
        prompt_spec_free(s);
    }
    assert_true(rendered > 4000);
}

static void
test_alloc_failures(void **state)
{
    (void)state;
    size_t len;
    char *text = tu_read(tu_data("prompt/poster.yaml"), &len);
    struct ig_error err = {0};
    struct prompt_spec *s = prompt_spec_load("p.yaml", text, len, NULL, &err);
    ig_free(text);
    assert_non_null(s);
    static const char *const names[] = {"a1111-sdxl", "openai", "gemini", "midjourney",
                                        "flux2-pro", "flux2-pro"};
    struct prompt_options o;
    prompt_options_init(&o);
    for (size_t b = 0; b < sizeof names / sizeof names[0]; b++)
        for (unsigned long nth = 1;; nth++) {
            struct prompt_render r;
            o.structured = b == 5;   /* the last round: FLUX.2's JSON prompt */
            ig_alloc_fail_at(nth);
            int rc = prompt_render(s, backend(names[b]), &o, &r, &err);
            ig_alloc_fail_at(0);
            prompt_render_free(&r);
            if (rc == 0)
                break;
            assert_string_equal(err.code, "out_of_memory");
            assert_true(nth < 10000);
        }
    prompt_spec_free(s);
}

static void
test_clip_count(void **state)
{
    (void)state;
    int exact;
    int n = prompt_clip_count("a photo of a cat", NULL, &exact);
    if (!exact)
        skip();   /* the vocabulary is in .deps only after scripts/setup */
    /* CLIP tokenizes this as a</w> photo</w> of</w> a</w> cat</w>. */
    assert_int_equal(n, 5);
    assert_int_equal(prompt_clip_count("", NULL, &exact), 0);
    /* Weight syntax is not counted: brackets and weights vanish. */
    assert_int_equal(prompt_clip_count_weighted("(a photo:1.2) of [a] \\(cat\\)", NULL, &exact),
                     prompt_clip_count("a photo of a (cat)", NULL, &exact));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight_a1111),
        cmocka_unit_test(test_weight_comfyui),
        cmocka_unit_test(test_weight_pasted_syntax_and_window),
        cmocka_unit_test(test_sd15_size),
        cmocka_unit_test(test_flag_v7),
        cmocka_unit_test(test_flag_v6),
        cmocka_unit_test(test_natural_gpt),
        cmocka_unit_test(test_natural_flux_and_sd3),
        cmocka_unit_test(test_flux2_structured),
        cmocka_unit_test(test_limits_and_errors),
        cmocka_unit_test(test_json_shape),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_clip_count),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
