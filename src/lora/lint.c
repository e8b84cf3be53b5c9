/* SPDX-License-Identifier: MIT */
/* lint.c -- checks a LoRA training spec and its dataset before training.
 *
 * The spec is a small YAML mapping read with libyaml's document API, so
 * every unknown key or wrong type is reported at its FILE:LINE:COL (the
 * config loader's approach). The checks then follow LORA.md: the trainer's
 * support matrix for the base model; dataset size, resolution,
 * near-duplicates (pHash), lighting and background variety (luma and border
 * colour statistics across images); one caption per image in the style the
 * base model's text encoder was trained on; the trigger first in every
 * caption and not an English word or an overused token; rank and alpha set;
 * the learning rate in range once scaled by alpha/rank. */
#include "lora/lora.h"
#include "validate/metric.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "image/image.h"

#define MAX_IMAGES 2000
#define MAX_CAPTION 65536

struct spec {
    const char *path;
    char *base_model, *trainer, *goal, *optimizer, *trigger, *resume_from;
    char *dataset, *caption_ext;
    double lr;
    int has_lr, rank, has_rank, resolution;
    double alpha;
    int has_alpha;
    struct ig_buf diags;
    int n_diags;
};

/* ---- Spec loading --------------------------------------------------------- */

static void spec_diag(struct spec *s, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
spec_diag(struct spec *s, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ig_buf_printf(&s->diags, "%s%s:%d:%d: %s", s->n_diags ? "\n" : "", s->path,
                  n ? (int)n->start_mark.line + 1 : 1, n ? (int)n->start_mark.column + 1 : 1, msg);
    s->n_diags++;
}

enum stype { S_STR, S_NUM, S_INT, S_MAP };

struct sfield {
    const char *name;
    enum stype type;
    size_t off;
    size_t has_off;          /* offset of the "was set" flag, or 0 */
    const struct sfield *sub;
};

#define SF(nm, ty, m) {nm, ty, offsetof(struct spec, m), 0, NULL}
#define SFH(nm, ty, m, h) {nm, ty, offsetof(struct spec, m), offsetof(struct spec, h), NULL}

static const struct sfield dataset_fields[] = {
    SF("path", S_STR, dataset), SF("caption_ext", S_STR, caption_ext), {NULL, S_STR, 0, 0, NULL}};

static const struct sfield spec_fields[] = {
    SF("base_model", S_STR, base_model),
    SF("trainer", S_STR, trainer),
    SF("goal", S_STR, goal),
    SFH("rank", S_INT, rank, has_rank),
    SFH("alpha", S_NUM, alpha, has_alpha),
    SFH("learning_rate", S_NUM, lr, has_lr),
    SF("optimizer", S_STR, optimizer),
    SF("trigger", S_STR, trigger),
    SF("resolution", S_INT, resolution),
    SF("resume_from", S_STR, resume_from),
    {"dataset", S_MAP, 0, 0, dataset_fields},
    {NULL, S_STR, 0, 0, NULL}};

static void
walk(struct spec *s, yaml_document_t *doc, yaml_node_t *n, const char *what,
     const struct sfield *tbl)
{
    if (n->type != YAML_MAPPING_NODE) {
        spec_diag(s, n, "%s must be a mapping", what);
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : NULL;
        const struct sfield *f = tbl;
        while (key && f->name && strcmp(f->name, key) != 0)
            f++;
        if (!key || !f->name) {
            char names[300] = "";
            for (const struct sfield *g = tbl; g->name; g++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         g == tbl ? "" : ", ", g->name);
            spec_diag(s, k, "unknown key '%s' in %s (expected one of: %s)", key ? key : "?", what,
                      names);
            continue;
        }
        if (f->type == S_MAP) {
            walk(s, doc, v, f->name, f->sub);
            continue;
        }
        if (v->type != YAML_SCALAR_NODE) {
            spec_diag(s, v, "'%s' must be a %s", f->name,
                      f->type == S_STR ? "string" : "number");
            continue;
        }
        const char *val = (const char *)v->data.scalar.value;
        char *p0 = (char *)s + f->off, *end;
        if (f->type == S_STR) {
            ig_free(*(char **)p0);
            if (!(*(char **)p0 = ig_strdup(val)))
                spec_diag(s, v, "out of memory");
        } else if (f->type == S_INT) {
            long x = strtol(val, &end, 10);
            if (end == val || *end || x <= 0 || x > 1 << 20) {
                spec_diag(s, v, "'%s' must be a positive integer, not '%s'", f->name, val);
                continue;
            }
            *(int *)p0 = (int)x;
        } else {
            double x = strtod(val, &end);
            if (end == val || *end || !isfinite(x) || x <= 0) {
                spec_diag(s, v, "'%s' must be a positive number, not '%s'", f->name, val);
                continue;
            }
            *(double *)p0 = x;
        }
        if (f->has_off)
            *(int *)((char *)s + f->has_off) = 1;
    }
}

static int
spec_load(struct spec *s, const char *path, struct ig_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return ig_error_set(err, 400, "bad_spec", "%s: cannot open", path);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    yaml_parser_set_input_file(&parser, fp);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = ig_error_set(err, 400, "bad_spec", "%s:%d:%d: %s", path,
                          (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                          parser.problem ? parser.problem : "malformed YAML");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
            spec_diag(s, NULL, "the spec is empty");
        else
            walk(s, &doc, root, "the spec", spec_fields);
        if (!s->base_model)
            spec_diag(s, root, "missing required key 'base_model'");
        if (!s->trainer)
            spec_diag(s, root, "missing required key 'trainer'");
        yaml_document_delete(&doc);
        if (s->n_diags)
            rc = ig_error_set(err, 400, "bad_spec", "%s", s->diags.data);
    }
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

static void
spec_free(struct spec *s)
{
    char **strs[] = {&s->base_model, &s->trainer, &s->goal, &s->optimizer, &s->trigger,
                     &s->resume_from, &s->dataset, &s->caption_ext};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        ig_free(*strs[i]);
    ig_buf_free(&s->diags);
}

/* ---- Tables from LORA.md -------------------------------------------------- */

/* Support per architecture (enum lora_arch order, UNKNOWN first):
 * 1 supported, 0 not, -1 not verified in the sources LORA.md read. */
static const struct {
    const char *names[4];
    signed char arch[9];
} trainers[] = {
    {{"kohya", "sd-scripts", "kohya-ss", "kohya_ss"}, {-1, 1, 1, 1, 1, 1, 0, 0, 0}},
    {{"ai-toolkit", "ostris", NULL, NULL}, {-1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {{"diffusers", NULL, NULL, NULL}, {-1, 1, -1, 1, 1, 1, 1, 1, 1}},
    {{"fal", "fal.ai", NULL, NULL}, {-1, -1, -1, -1, -1, 1, -1, -1, -1}},
    {{"simpletuner", NULL, NULL, NULL}, {-1, -1, -1, -1, -1, -1, -1, -1, -1}},
    {{"onetrainer", NULL, NULL, NULL}, {-1, -1, -1, -1, -1, -1, -1, -1, -1}},
};

/* Native resolution, text encoder family, and the effective learning rate
 * range (lr x alpha/rank) spanning kohya's alpha=1 recipes and the
 * scale-1 recipes of diffusers and ai-toolkit (LORA.md 4.4). */
static const struct {
    int native;
    int clip_only;     /* 1 tags, 0 sentences, -1 either (SD3: CLIP + T5) */
    double lr_lo, lr_hi;
} bases[] = {
    [LORA_ARCH_UNKNOWN] = {1024, -1, 3e-6, 2e-4},
    [LORA_ARCH_SD15] = {512, 1, 3e-6, 3e-4},
    [LORA_ARCH_SD2] = {768, 1, 3e-6, 3e-4},
    [LORA_ARCH_SDXL] = {1024, 1, 3e-6, 2e-4},
    [LORA_ARCH_SD3] = {1024, -1, 3e-6, 2e-4},
    [LORA_ARCH_FLUX1] = {1024, 0, 3e-6, 2e-4},
    [LORA_ARCH_FLUX2_DEV] = {1024, 0, 3e-6, 2e-4},
    [LORA_ARCH_FLUX2_KLEIN_4B] = {1024, 0, 3e-6, 2e-4},
    [LORA_ARCH_FLUX2_KLEIN_9B] = {1024, 0, 3e-6, 2e-4},
};

/* Triggers so many published LoRAs share that two adapters stacked collide:
 * the DreamBooth paper's "sks", the kohya community's "ohwx", ai-toolkit's
 * example "p3r5on", and the placeholders of diffusers' READMEs. */
static const char *const common_tokens[] = {"sks", "ohwx", "p3r5on", "tok", "zwx", "xyz", NULL};

/* ---- Checks --------------------------------------------------------------- */

static void
check_trainer(const struct spec *s, enum lora_arch arch, struct lora_findings *f)
{
    if (arch == LORA_ARCH_UNKNOWN) {
        lora_finding_add(f, LORA_ERROR, "base_model_unknown",
                         "base_model '%s' is none of SD 1.5, SD 2.x, SDXL, SD3, FLUX.1, FLUX.2 "
                         "[dev], FLUX.2 [klein] 4B/9B",
                         s->base_model);
        return;
    }
    for (size_t i = 0; i < sizeof trainers / sizeof trainers[0]; i++)
        for (int j = 0; j < 4 && trainers[i].names[j]; j++)
            if (strcasecmp(s->trainer, trainers[i].names[j]) == 0) {
                int ok = trainers[i].arch[arch];
                if (ok == 0)
                    lora_finding_add(f, LORA_ERROR, "trainer_unsupported",
                                     "%s cannot train %s LoRAs; use ai-toolkit or diffusers",
                                     trainers[i].names[0], lora_arch_name(arch));
                else if (ok < 0)
                    lora_finding_add(f, LORA_WARNING, "trainer_unverified",
                                     "%s support for %s is not verified", trainers[i].names[0],
                                     lora_arch_name(arch));
                return;
            }
    lora_finding_add(f, LORA_WARNING, "trainer_unknown",
                     "trainer '%s' is not in the support matrix (kohya, ai-toolkit, diffusers, "
                     "fal, simpletuner, onetrainer)",
                     s->trainer);
}

static void
check_hyper(const struct spec *s, enum lora_arch arch, struct lora_findings *f)
{
    if (!s->has_rank)
        lora_finding_add(f, LORA_ERROR, "rank_missing",
                         "rank is not set; trainers' defaults differ (kohya 4, ai-toolkit 32)");
    if (!s->has_alpha)
        lora_finding_add(f, LORA_ERROR, "alpha_missing",
                         "alpha is not set; kohya defaults to 1 (scale 1/rank), others to rank "
                         "(scale 1): the same learning rate then means 16x apart");
    if (!s->has_lr) {
        lora_finding_add(f, LORA_WARNING, "lr_missing", "learning_rate is not set");
        return;
    }
    if (s->optimizer && (strcasestr(s->optimizer, "prodigy") || strcasestr(s->optimizer, "dadapt")))
        return;   /* adaptive: the nominal rate is a multiplier near 1 */
    double scale = s->has_rank && s->has_alpha ? s->alpha / s->rank : 1;
    double eff = s->lr * scale;
    double lo = bases[arch].lr_lo, hi = bases[arch].lr_hi;
    if (eff > hi || eff < lo)
        lora_finding_add(f, eff > 5 * hi || eff < lo / 5 ? LORA_ERROR : LORA_WARNING,
                         eff > hi ? "lr_too_high" : "lr_too_low",
                         "learning rate %g at alpha/rank %g is %g effective; %s LoRAs train at "
                         "%g..%g",
                         s->lr, scale, eff, lora_arch_name(arch), lo, hi);
}

static int
in_dictionary(const char *dict, const char *word, int *missing)
{
    FILE *fp = fopen(dict, "r");
    if (!fp) {
        *missing = 1;
        return 0;
    }
    char line[256];
    int found = 0;
    while (!found && fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = 0;
        found = strcasecmp(line, word) == 0;
    }
    fclose(fp);
    return found;
}

static void
check_trigger(const struct spec *s, const struct lora_lint_opts *o, struct lora_findings *f)
{
    const char *t = s->trigger;
    if (!t || !*t) {
        lora_finding_add(f, LORA_WARNING, "trigger_missing",
                         "no trigger: the LoRA cannot be switched on by a prompt word");
        return;
    }
    for (int i = 0; common_tokens[i]; i++)
        if (strcasecmp(t, common_tokens[i]) == 0)
            lora_finding_add(f, LORA_WARNING, "trigger_common",
                             "trigger '%s' is used by many published LoRAs; stacked adapters "
                             "collide. Pick a rare string of your own",
                             t);
    int missing = 0;
    const char *dict = o && o->dict_path ? o->dict_path : "/usr/share/dict/american-english";
    if (in_dictionary(dict, t, &missing))
        lora_finding_add(f, LORA_WARNING, "trigger_english_word",
                         "trigger '%s' is an English word: it carries its meaning into the "
                         "LoRA; use a rare token",
                         t);
    else if (missing)
        lora_finding_add(f, LORA_WARNING, "dictionary_missing",
                         "%s is missing (Debian wamerican); the English-word check did not run",
                         dict);
    if (strlen(t) < 4)
        lora_finding_add(f, LORA_WARNING, "trigger_short",
                         "trigger '%s' is shorter than 4 characters; short strings are common "
                         "tokens",
                         t);
}

/* ---- Dataset -------------------------------------------------------------- */

struct sample {
    char *name;
    int w, h;
    double luma_mean, luma_std, border[3];
    struct vd_hash hash;
};

static int
is_image(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                   !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".webp"));
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
read_small(const char *path, size_t max, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    struct ig_buf b = {0};
    char chunk[65536];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        ok = b.len + n <= max && ig_buf_append(&b, chunk, n) == 0;
    fclose(fp);
    if (!ok) {
        ig_buf_free(&b);
        return NULL;
    }
    if (!b.data && ig_buf_append(&b, "", 0) != 0)
        return NULL;
    return ig_buf_steal(&b, len);
}

static void
measure(const struct img *im, struct sample *sm)
{
    int step = 1;
    while ((long)(im->width / step) * (im->height / step) > 262144)
        step++;
    double sum = 0, sq = 0, bsum[3] = {0};
    long n = 0, nb = 0;
    int bx = im->width / 10, by = im->height / 10;
    for (int y = 0; y < im->height; y += step)
        for (int x = 0; x < im->width; x += step) {
            const uint8_t *p = im->rgba + ((size_t)y * (size_t)im->width + (size_t)x) * 4;
            double l = 0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2];
            sum += l;
            sq += l * l;
            n++;
            if (x < bx || y < by || x >= im->width - bx || y >= im->height - by) {
                for (int c = 0; c < 3; c++)
                    bsum[c] += p[c];
                nb++;
            }
        }
    sm->luma_mean = sum / (double)n;
    sm->luma_std = sqrt(fmax(0, sq / (double)n - sm->luma_mean * sm->luma_mean));
    for (int c = 0; c < 3; c++)
        sm->border[c] = nb ? bsum[c] / (double)nb : 0;
}

/* Tags: short comma-separated phrases. Sentences: long runs of words. */
static int
caption_style(const char *c)
{
    int commas = 0, words = 0, inword = 0, periods = 0;
    for (const char *p = c; *p; p++) {
        if (*p == ',')
            commas++;
        if (*p == '.' && (p[1] == 0 || isspace((unsigned char)p[1])))
            periods++;
        if (isalnum((unsigned char)*p) && !inword)
            words++;
        inword = isalnum((unsigned char)*p) || *p == '\'' || *p == '-' || *p == '_';
    }
    double per_segment = (double)words / (commas + 1);
    if (commas >= 2 && per_segment <= 3.0 && periods == 0)
        return 1;
    if (per_segment >= 5.0 || (periods > 0 && words >= 6))
        return 0;
    return -1;
}

static void
check_caption(const struct spec *s, enum lora_arch arch, const char *dir, const char *name,
              struct lora_findings *f, int *bad_style)
{
    char path[4096];
    const char *ext = s->caption_ext ? s->caption_ext : "txt";
    const char *dot = strrchr(name, '.');
    snprintf(path, sizeof path, "%s/%.*s.%s", dir, (int)(dot - name), name, ext);
    size_t len;
    char *cap = read_small(path, MAX_CAPTION, &len);
    if (!cap) {
        lora_finding_add(f, LORA_ERROR, "caption_missing", "%s has no caption (%.*s.%s)", name,
                         (int)(dot - name), name, ext);
        return;
    }
    char *c = cap;
    while (isspace((unsigned char)*c))
        c++;
    for (char *e = c + strlen(c); e > c && isspace((unsigned char)e[-1]);)
        *--e = 0;
    if (!*c) {
        lora_finding_add(f, LORA_ERROR, "caption_empty", "%s: the caption is empty", name);
    } else {
        if (s->trigger && *s->trigger) {
            size_t tl = strlen(s->trigger);
            if (strncmp(c, s->trigger, tl) != 0 || isalnum((unsigned char)c[tl]))
                lora_finding_add(f, LORA_ERROR, "trigger_not_first",
                                 "%s: the caption does not start with the trigger '%s'", name,
                                 s->trigger);
        }
        int style = caption_style(c), want = bases[arch].clip_only;
        if (want >= 0 && style >= 0 && style != want && (*bad_style)++ < 5)
            lora_finding_add(f, LORA_WARNING, "caption_style",
                             "%s: %s captions, but %s's text encoder (%s) reads %s", name,
                             style ? "tag" : "sentence", lora_arch_name(arch),
                             want ? "CLIP" : (arch == LORA_ARCH_FLUX1 ? "T5" : arch ==
                                              LORA_ARCH_FLUX2_DEV ? "Mistral" : "Qwen3"),
                             want ? "comma-separated tags" : "full sentences");
    }
    ig_free(cap);
}

static double
spread(const struct sample *v, size_t n, size_t off)
{
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        double x = *(const double *)((const char *)&v[i] + off);
        sum += x;
        sq += x * x;
    }
    double m = sum / (double)n;
    return sqrt(fmax(0, sq / (double)n - m * m));
}

static void
check_dataset(const struct spec *s, enum lora_arch arch, const char *dir, struct lora_findings *f)
{
    DIR *d = opendir(dir);
    if (!d) {
        lora_finding_add(f, LORA_ERROR, "dataset_unreadable", "cannot open dataset folder %s",
                         dir);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAX_IMAGES)
        if (is_image(de->d_name) && ig_grow((void **)&names, &cap, n + 1, sizeof *names) == 0 &&
            (names[n] = ig_strdup(de->d_name)) != NULL)
            n++;
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);

    int style_goal = s->goal && !strcasecmp(s->goal, "style");
    int lo = style_goal ? 50 : 15, hi = style_goal ? 200 : 30;
    if (n < 5)
        lora_finding_add(f, LORA_ERROR, "dataset_too_small",
                         "%zu images; a %s LoRA wants %d..%d", n, style_goal ? "style" : "subject",
                         lo, hi);
    else if (n < (size_t)lo || n > (size_t)hi)
        lora_finding_add(f, LORA_WARNING, n < (size_t)lo ? "dataset_small" : "dataset_large",
                         "%zu images; a %s LoRA wants %d..%d", n,
                         style_goal ? "style" : "subject", lo, hi);

    struct sample *sm = ig_calloc(n ? n : 1, sizeof *sm);
    size_t ok = 0;
    int need = s->resolution > 0 ? s->resolution : bases[arch].native, bad_style = 0;
    struct img_limits lim = {.max_input_bytes = 64L << 20, .max_width = 16384,
                             .max_height = 16384, .max_pixels = 100000000,
                             .max_decoded_bytes = 400000000};
    for (size_t i = 0; sm && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        char *bytes = read_small(path, (size_t)lim.max_input_bytes, &len);
        struct ig_error e = {0};
        struct img *im = bytes ? img_decode(bytes, len, &lim, &e) : NULL;
        ig_free(bytes);
        if (!im) {
            lora_finding_add(f, LORA_ERROR, "image_unreadable", "%s: %s", names[i],
                             bytes || e.message[0] ? e.message : "cannot read");
        } else {
            struct sample *x = &sm[ok++];
            x->name = names[i];
            x->w = im->width;
            x->h = im->height;
            measure(im, x);
            if (vd_hash(im, VD_HASH_PHASH, &x->hash, &e) != 0)
                ok--;
            if ((x->w < x->h ? x->w : x->h) < need)
                lora_finding_add(f, LORA_WARNING, "image_low_resolution",
                                 "%s is %dx%d; %s trains at %d, and trainers never upscale",
                                 names[i], x->w, x->h, lora_arch_name(arch), need);
            img_free(im);
        }
        check_caption(s, arch, dir, names[i], f, &bad_style);
    }
    /* pHash (imagehash's, validate/hash.c) distance 10 of 64 bits:
     * re-encodes, resizes and small crops of one photo, not two photos of
     * one subject from different angles. */
    for (size_t i = 0; i < ok; i++)
        for (size_t j = i + 1; j < ok; j++) {
            int dist = vd_hash_distance(&sm[i].hash, &sm[j].hash);
            if (dist <= 10)
                lora_finding_add(f, LORA_WARNING, "near_duplicate",
                                 "%s and %s are near-duplicates (pHash distance %d)", sm[i].name,
                                 sm[j].name, dist);
        }
    if (ok >= 4) {
        double lm = spread(sm, ok, offsetof(struct sample, luma_mean));
        double ls = spread(sm, ok, offsetof(struct sample, luma_std));
        if (lm < 12 && ls < 8)
            lora_finding_add(f, LORA_WARNING, "lighting_uniform",
                             "every image has the same brightness and contrast (spread %.1f and "
                             "%.1f of 255): the LoRA will learn the lighting too",
                             lm, ls);
        double bg = (spread(sm, ok, offsetof(struct sample, border[0])) +
                     spread(sm, ok, offsetof(struct sample, border[1])) +
                     spread(sm, ok, offsetof(struct sample, border[2]))) / 3;
        if (bg < 10)
            lora_finding_add(f, LORA_WARNING, "background_uniform",
                             "the image borders share one colour (spread %.1f of 255): the LoRA "
                             "will learn the background too",
                             bg);
    }
    ig_free(sm);
    for (size_t i = 0; i < n; i++)
        ig_free(names[i]);
    ig_free(names);
}

static void
check_resume(const struct spec *s, struct lora_findings *f)
{
    struct lora_st st;
    struct lora_info info;
    struct ig_error e = {0};
    if (lora_st_open(s->resume_from, NULL, &st, &e) != 0) {
        lora_finding_add(f, LORA_ERROR, "resume_unreadable", "%s", e.message);
        return;
    }
    if (lora_inspect(&st, &info, &e) != 0) {
        lora_finding_add(f, LORA_ERROR, "resume_unreadable", "%s", e.message);
    } else {
        char reason[256];
        if (!lora_fits_backend(&info, s->base_model, reason, sizeof reason))
            lora_finding_add(f, LORA_ERROR, "resume_base_mismatch", "%s: %s", s->resume_from,
                             reason);
        lora_info_free(&info);
    }
    lora_st_free(&st);
}

/* Paths in a spec are relative to the spec's folder, not the caller's. */
static char *
beside(const char *spec_path, const char *p)
{
    const char *slash = strrchr(spec_path, '/');
    if (p[0] == '/' || !slash)
        return ig_strdup(p);
    struct ig_buf b = {0};
    if (ig_buf_printf(&b, "%.*s/%s", (int)(slash - spec_path), spec_path, p) != 0) {
        ig_buf_free(&b);
        return NULL;
    }
    return ig_buf_steal(&b, NULL);
}

int
lora_lint(const char *spec_path, const struct lora_lint_opts *opts, struct lora_findings *out,
          struct ig_error *err)
{
    struct spec s;
    memset(&s, 0, sizeof s);
    s.path = spec_path;
    memset(out, 0, sizeof *out);
    if (spec_load(&s, spec_path, err) != 0) {
        spec_free(&s);
        return -1;
    }
    char **rel[] = {&s.dataset, &s.resume_from};
    for (size_t i = 0; i < 2; i++)
        if (*rel[i]) {
            char *abs = beside(spec_path, *rel[i]);
            ig_free(*rel[i]);
            *rel[i] = abs;
            if (!abs) {
                spec_free(&s);
                return ig_error_set(err, 500, "out_of_memory", "out of memory");
            }
        }
    enum lora_arch arch = lora_arch_parse(s.base_model);
    check_trainer(&s, arch, out);
    check_hyper(&s, arch, out);
    check_trigger(&s, opts, out);
    if (s.resume_from)
        check_resume(&s, out);
    const char *dir = opts && opts->dataset_dir ? opts->dataset_dir : s.dataset;
    if (dir)
        check_dataset(&s, arch, dir, out);
    else
        lora_finding_add(out, LORA_WARNING, "dataset_unchecked",
                         "no dataset folder (dataset.path or --dataset): images not checked");
    spec_free(&s);
    return 0;
}
