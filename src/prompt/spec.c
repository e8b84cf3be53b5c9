/* SPDX-License-Identifier: MIT */
/* spec.c -- load a prompt spec from YAML or JSON, with LINE:COL diagnostics.
 *
 * Both formats go through libyaml's document API, whose nodes carry marks
 * (JSON is YAML flow syntax); JSON is first checked by jansson so that what
 * YAML tolerates but JSON does not (comments, bare words, trailing commas)
 * is still a syntax error with its line and column. Quoted scalars are
 * strings and plain ones are typed by their look, so `seed: "7"` and
 * `"subject": 5` are type errors in either format. Keys are read from one
 * table; unknown keys, duplicates, wrong types and impossible values are all
 * collected before the load fails. */
#include "prompt/prompt.h"
#include "core/alloc.h"
#include "core/arena.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SPEC_MAX_BYTES (1u << 20)
#define SPEC_MAX_ITEMS 64
#define SPEC_MAX_STR 4000

struct sload {
    yaml_document_t *doc;
    struct prompt_spec *spec;
    struct ig_config_diags *diags;
    int oom;
};

static void sdiag(struct sload *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sdiag(struct sload *L, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ig_config_diag_vadd(L->diags, n ? (int)n->start_mark.line + 1 : 1,
                            n ? (int)n->start_mark.column + 1 : 1, fmt, ap) != 0)
        L->oom = 1;
    va_end(ap);
}

static yaml_node_t *
node(struct sload *L, int id)
{
    return yaml_document_get_node(L->doc, id);
}

static int
is_quoted(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
           n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
           n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
           n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
}

/* A plain scalar that YAML and JSON would read as a number, bool or null. */
static int
plain_is_typed(const char *s)
{
    static const char *const words[] = {"true", "false", "null", "yes", "no", "~", "True",
                                        "False", "Null", "NULL", NULL};
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return 1;
    if (!*s)
        return 1;
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    return *end == '\0';
}

static const char *
kind_name(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return is_quoted(n) || !plain_is_typed((const char *)n->data.scalar.value)
               ? "a string" : "a number, boolean or null";
}

/* A non-empty string, trimmed. NULL (and a diagnostic) otherwise. */
static char *
read_string(struct sload *L, yaml_node_t *n, const char *key)
{
    if (n->type != YAML_SCALAR_NODE ||
        (!is_quoted(n) && plain_is_typed((const char *)n->data.scalar.value))) {
        sdiag(L, n, "'%s' must be a string, not %s", key, kind_name(n));
        return NULL;
    }
    const char *s = (const char *)n->data.scalar.value;
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len) {
        sdiag(L, n, "'%s' must not be empty", key);
        return NULL;
    }
    if (len > SPEC_MAX_STR) {
        sdiag(L, n, "'%s' is longer than %d characters", key, SPEC_MAX_STR);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') {
            sdiag(L, n, "'%s' contains a control character", key);
            return NULL;
        }
    char *p = ig_arena_strndup(L->spec->arena, s, len);
    if (!p)
        L->oom = 1;
    return p;
}

static int
read_number(struct sload *L, yaml_node_t *n, const char *key, double *out)
{
    if (n->type == YAML_SCALAR_NODE && !is_quoted(n)) {
        const char *s = (const char *)n->data.scalar.value;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (*s && !*end && !errno && isfinite(v)) {
            *out = v;
            return 0;
        }
    }
    sdiag(L, n, "'%s' must be a number, not %s", key, kind_name(n));
    return -1;
}

static int
read_int_range(struct sload *L, yaml_node_t *n, const char *key, long long lo, long long hi,
               long long *out)
{
    double v;
    if (read_number(L, n, key, &v) != 0)
        return -1;
    if (v != floor(v) || v < (double)lo || v > (double)hi) {
        sdiag(L, n, "'%s' must be an integer from %lld to %lld, not %s", key, lo, hi,
              (const char *)n->data.scalar.value);
        return -1;
    }
    *out = (long long)v;
    return 0;
}

/* A string or a list of strings. */
static int
read_strings(struct sload *L, yaml_node_t *n, const char *key, char ***out, size_t *count)
{
    size_t len = 1;
    if (n->type == YAML_SEQUENCE_NODE)
        len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    else if (n->type != YAML_SCALAR_NODE) {
        sdiag(L, n, "'%s' must be a string or a list of strings, not %s", key, kind_name(n));
        return -1;
    }
    if (len > SPEC_MAX_ITEMS) {
        sdiag(L, n, "'%s' has more than %d items", key, SPEC_MAX_ITEMS);
        return -1;
    }
    char **v = ig_arena_alloc(L->spec->arena, (len ? len : 1) * sizeof *v);
    if (!v) {
        L->oom = 1;
        return -1;
    }
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *it = n->type == YAML_SEQUENCE_NODE
                              ? node(L, n->data.sequence.items.start[i]) : n;
        char *s = read_string(L, it, key);
        if (s)
            v[k++] = s;
        else
            rc = -1;
    }
    *out = v;
    *count = k;
    return rc;
}

/* Sides and ratio terms alike stay within IG_SIDE_MAX: the 8:1 checks
 * below multiply them. */
static int
parse_ratio(const char *s, char sep, int *a, int *b)
{
    return ig_pair_parse(s, sep, IG_SIDE_MAX, a, b);
}

/* ---- Field readers -------------------------------------------------------- */

typedef int (*sfield_fn)(struct sload *L, yaml_node_t *v, const char *key);

static int
f_subject(struct sload *L, yaml_node_t *v, const char *key)
{
    return (L->spec->subject = read_string(L, v, key)) ? 0 : -1;
}

static int
f_details(struct sload *L, yaml_node_t *v, const char *key)
{
    return read_strings(L, v, key, &L->spec->details, &L->spec->n_details);
}

static int
f_style(struct sload *L, yaml_node_t *v, const char *key)
{
    return (L->spec->style = read_string(L, v, key)) ? 0 : -1;
}

static int
f_composition(struct sload *L, yaml_node_t *v, const char *key)
{
    return (L->spec->composition = read_string(L, v, key)) ? 0 : -1;
}

static int
f_notes(struct sload *L, yaml_node_t *v, const char *key)
{
    return (L->spec->notes = read_string(L, v, key)) ? 0 : -1;
}

static int
f_medium(struct sload *L, yaml_node_t *v, const char *key)
{
    static const char *const names[] = {"photo", "illustration", "cutout", NULL};
    const char *s = read_string(L, v, key);
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0) {
            L->spec->medium = (enum prompt_medium)(i + 1);
            return 0;
        }
    if (s)
        sdiag(L, v, "'medium' must be one of photo, illustration, cutout, not '%s'", s);
    return -1;
}

static int
f_must_include(struct sload *L, yaml_node_t *v, const char *key)
{
    return read_strings(L, v, key, &L->spec->must_include, &L->spec->n_must_include);
}

static int
f_must_avoid(struct sload *L, yaml_node_t *v, const char *key)
{
    return read_strings(L, v, key, &L->spec->must_avoid, &L->spec->n_must_avoid);
}

static int
f_text(struct sload *L, yaml_node_t *v, const char *key)
{
    return read_strings(L, v, key, &L->spec->text, &L->spec->n_text);
}

static int
f_palette(struct sload *L, yaml_node_t *v, const char *key)
{
    struct prompt_spec *s = L->spec;
    if (read_strings(L, v, key, &s->palette, &s->n_palette) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < s->n_palette; i++) {
        const char *c = s->palette[i];
        int ok = c[0] == '#' && strlen(c) == 7;
        for (int j = 1; ok && j < 7; j++)
            ok = isxdigit((unsigned char)c[j]);
        if (!ok) {
            yaml_node_t *at = v->type == YAML_SEQUENCE_NODE
                                  ? node(L, v->data.sequence.items.start[i]) : v;
            sdiag(L, at, "palette colour '%s' must be #rrggbb", c);
            rc = -1;
        }
        for (char *p = s->palette[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    return rc;
}

static int
f_emphasis(struct sload *L, yaml_node_t *v, const char *key)
{
    if (v->type != YAML_MAPPING_NODE) {
        sdiag(L, v, "'emphasis' must be a mapping of term to level (-3..3), not %s",
              kind_name(v));
        return -1;
    }
    size_t len = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (len > SPEC_MAX_ITEMS) {
        sdiag(L, v, "'emphasis' has more than %d terms", SPEC_MAX_ITEMS);
        return -1;
    }
    struct prompt_spec *s = L->spec;
    s->emphasis = ig_arena_alloc(s->arena, (len ? len : 1) * sizeof *s->emphasis);
    if (!s->emphasis) {
        L->oom = 1;
        return -1;
    }
    int rc = 0;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(L, p->key), *val = node(L, p->value);
        char *term = read_string(L, k, "emphasis term");
        long long level;
        if (!term || read_int_range(L, val, "emphasis level", -3, 3, &level) != 0) {
            rc = -1;
            continue;
        }
        if (level == 0) {
            sdiag(L, val, "emphasis level 0 means no emphasis: leave '%s' out", term);
            rc = -1;
            continue;
        }
        s->emphasis[s->n_emphasis].term = term;
        s->emphasis[s->n_emphasis++].level = (int)level;
    }
    return rc;
}

static int
f_aspect(struct sload *L, yaml_node_t *v, const char *key)
{
    const char *s = read_string(L, v, key);
    int a, b;
    if (!s)
        return -1;
    if (parse_ratio(s, ':', &a, &b) != 0) {
        sdiag(L, v, "'aspect' must be W:H with positive integers, e.g. 16:9, not '%s'", s);
        return -1;
    }
    if (a > 8 * b || b > 8 * a) {
        sdiag(L, v, "aspect %d:%d is impossible: no backend goes past 8:1", a, b);
        return -1;
    }
    L->spec->aspect_w = a;
    L->spec->aspect_h = b;
    return 0;
}

static int
f_size(struct sload *L, yaml_node_t *v, const char *key)
{
    const char *s = read_string(L, v, key);
    int w, h;
    if (!s)
        return -1;
    if (parse_ratio(s, 'x', &w, &h) != 0) {
        sdiag(L, v, "'size' must be WIDTHxHEIGHT, e.g. 1024x1024, not '%s'", s);
        return -1;
    }
    if (w < 64 || h < 64 || w > 16384 || h > 16384 || w > 8 * h || h > 8 * w) {
        sdiag(L, v, "size %dx%d is impossible: sides are 64..16384 and at most 8:1", w, h);
        return -1;
    }
    L->spec->width = w;
    L->spec->height = h;
    return 0;
}

static int
f_megapixels(struct sload *L, yaml_node_t *v, const char *key)
{
    double mp;
    if (read_number(L, v, key, &mp) != 0)
        return -1;
    if (mp < 0.05 || mp > 16) {
        sdiag(L, v, "'megapixels' must be from 0.05 to 16");
        return -1;
    }
    L->spec->megapixels = mp;
    return 0;
}

static int
f_seed(struct sload *L, yaml_node_t *v, const char *key)
{
    long long seed;
    if (read_int_range(L, v, key, 0, 4294967295LL, &seed) != 0)
        return -1;
    L->spec->has_seed = 1;
    L->spec->seed = (unsigned long long)seed;
    return 0;
}

static int
f_n(struct sload *L, yaml_node_t *v, const char *key)
{
    long long n;
    if (read_int_range(L, v, key, 1, 10, &n) != 0)
        return -1;
    L->spec->n = (int)n;
    return 0;
}

static int
f_references(struct sload *L, yaml_node_t *v, const char *key)
{
    static const char *const roles[] = {"style", "subject", "composition", NULL};
    if (v->type != YAML_SEQUENCE_NODE) {
        sdiag(L, v, "'references' must be a list of {url, role, weight}, not %s", kind_name(v));
        return -1;
    }
    size_t len = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (len > 16) {
        sdiag(L, v, "'references' has more than 16 images");
        return -1;
    }
    struct prompt_spec *s = L->spec;
    s->refs = ig_arena_alloc(s->arena, (len ? len : 1) * sizeof *s->refs);
    if (!s->refs) {
        L->oom = 1;
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *it = node(L, v->data.sequence.items.start[i]);
        struct prompt_ref r = {0};
        int role_seen = 0, bad = 0;
        if (it->type != YAML_MAPPING_NODE) {
            sdiag(L, it, "a reference must be a mapping {url, role, weight}, not %s",
                  kind_name(it));
            rc = -1;
            continue;
        }
        for (yaml_node_pair_t *p = it->data.mapping.pairs.start; p < it->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = node(L, p->key), *val = node(L, p->value);
            const char *kn = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value
                                                         : "?";
            if (strcmp(kn, "url") == 0) {
                if (!(r.url = read_string(L, val, "url")))
                    bad = 1;
                else if (strncmp(r.url, "https://", 8) && strncmp(r.url, "http://", 7) &&
                         strncmp(r.url, "file:", 5)) {
                    sdiag(L, val, "reference url must be http(s):// or file:, not '%s'", r.url);
                    bad = 1;
                }
            } else if (strcmp(kn, "role") == 0) {
                const char *rs = read_string(L, val, "role");
                int found = 0;
                for (int j = 0; rs && roles[j]; j++)
                    if (strcmp(rs, roles[j]) == 0) {
                        r.role = (enum prompt_ref_role)j;
                        found = 1;
                    }
                if (rs && !found)
                    sdiag(L, val, "'role' must be one of style, subject, composition, not '%s'",
                          rs);
                bad |= !found;
                role_seen = 1;
            } else if (strcmp(kn, "weight") == 0) {
                long long w;
                if (read_int_range(L, val, "weight", 1, 1000, &w) != 0)
                    bad = 1;
                else
                    r.weight = (int)w;
            } else {
                sdiag(L, k, "unknown key '%s' in a reference (expected one of: url, role, weight)",
                      kn);
                bad = 1;
            }
        }
        if (!r.url && !bad) {
            sdiag(L, it, "a reference needs a 'url'");
            bad = 1;
        }
        if (!role_seen && !bad) {
            sdiag(L, it, "a reference needs a 'role' (style, subject or composition)");
            bad = 1;
        }
        if (bad)
            rc = -1;
        else
            s->refs[s->n_refs++] = r;
    }
    return rc;
}

static const struct {
    const char *name;
    sfield_fn fn;
} spec_fields[] = {
    {"subject", f_subject},         {"details", f_details},
    {"style", f_style},             {"medium", f_medium},
    {"composition", f_composition}, {"must_include", f_must_include},
    {"must_avoid", f_must_avoid},   {"text", f_text},
    {"emphasis", f_emphasis},       {"aspect", f_aspect},
    {"size", f_size},               {"megapixels", f_megapixels},
    {"seed", f_seed},               {"n", f_n},
    {"references", f_references},   {"palette", f_palette},
    {"notes", f_notes},
};
#define N_SPEC_FIELDS (sizeof spec_fields / sizeof spec_fields[0])

static void
walk_spec(struct sload *L, yaml_node_t *root)
{
    if (root->type != YAML_MAPPING_NODE) {
        sdiag(L, root, "a prompt spec must be a mapping with at least 'subject', not %s",
              kind_name(root));
        return;
    }
    unsigned seen = 0;
    yaml_node_t *aspect_node = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : NULL;
        size_t i;
        for (i = 0; key && i < N_SPEC_FIELDS; i++)
            if (strcmp(spec_fields[i].name, key) == 0)
                break;
        if (!key || i == N_SPEC_FIELDS) {
            char all[400];
            size_t len = 0;
            for (size_t j = 0; j < N_SPEC_FIELDS; j++)
                len += (size_t)snprintf(all + len, sizeof all - len, "%s%s", j ? ", " : "",
                                        spec_fields[j].name);
            sdiag(L, k, "unknown key '%s' in the spec (expected one of: %s)", key ? key : "?",
                  all);
            continue;
        }
        if (seen & (1u << i)) {
            sdiag(L, k, "duplicate key '%s'", key);
            continue;
        }
        seen |= 1u << i;
        if (strcmp(key, "aspect") == 0)
            aspect_node = k;
        spec_fields[i].fn(L, v, key);
    }
    struct prompt_spec *s = L->spec;
    if (!(seen & 1u))
        sdiag(L, root, "missing required key 'subject'");
    if (s->width && s->aspect_w && (long)s->width * s->aspect_h != (long)s->height * s->aspect_w)
        sdiag(L, aspect_node, "aspect %d:%d contradicts size %dx%d: give one or make them agree",
              s->aspect_w, s->aspect_h, s->width, s->height);
    if (s->width && s->megapixels)
        sdiag(L, root, "'megapixels' and 'size' both set: an exact size fixes the area");
}

/* jansson's syntax check first: YAML would accept what JSON forbids. */
static int
json_syntax_ok(struct sload *L, const char *text, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (j) {
        json_decref(j);
        return 1;
    }
    yaml_node_t at;
    memset(&at, 0, sizeof at);
    at.start_mark.line = (size_t)(je.line > 0 ? je.line - 1 : 0);
    at.start_mark.column = (size_t)(je.column > 0 ? je.column - 1 : 0);
    sdiag(L, &at, "JSON syntax error: %s", je.text);
    return 0;
}

static int
looks_json(const char *name, const char *text, size_t len)
{
    size_t nl = strlen(name);
    if (nl >= 5 && strcmp(name + nl - 5, ".json") == 0)
        return 1;
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)text[i]))
            return text[i] == '{';
    return 0;
}

struct prompt_spec *
prompt_spec_load(const char *name, const char *text, size_t len, struct ig_config_diags *diags,
                 struct ig_error *err)
{
    struct ig_config_diags local = {0};
    if (!diags)
        diags = &local;
    size_t first = diags->n;
    struct ig_arena *arena = ig_arena_new(4096);
    struct prompt_spec *spec = arena ? ig_arena_alloc(arena, sizeof *spec) : NULL;
    if (!spec) {
        ig_arena_free(arena);
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", name);
        return NULL;
    }
    spec->arena = arena;
    struct sload L = {.spec = spec, .diags = diags};

    if (len > SPEC_MAX_BYTES) {
        sdiag(&L, NULL, "the spec is larger than %u bytes", SPEC_MAX_BYTES);
    } else if (memchr(text, '\0', len)) {
        sdiag(&L, NULL, "the spec contains a NUL byte");
    } else if (!looks_json(name, text, len) || json_syntax_ok(&L, text, len)) {
        yaml_parser_t parser;
        yaml_document_t doc;
        if (!yaml_parser_initialize(&parser)) {
            L.oom = 1;
        } else {
            yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
            if (!yaml_parser_load(&parser, &doc)) {
                yaml_node_t at;
                memset(&at, 0, sizeof at);
                at.start_mark = parser.problem_mark;
                if (parser.error == YAML_MEMORY_ERROR)
                    L.oom = 1;
                else
                    sdiag(&L, &at, "syntax error: %s%s%s",
                          parser.problem ? parser.problem : "unknown",
                          parser.context ? " " : "", parser.context ? parser.context : "");
            } else {
                L.doc = &doc;
                yaml_node_t *root = yaml_document_get_root_node(&doc);
                if (!root)
                    sdiag(&L, NULL, "the spec is empty (it needs at least 'subject')");
                else
                    walk_spec(&L, root);
                yaml_document_delete(&doc);
            }
            yaml_parser_delete(&parser);
        }
    }

    int ok = !L.oom && diags->n == first;
    if (L.oom) {
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", name);
    } else if (!ok) {
        const struct ig_config_diag *d = &diags->items[first];
        ig_error_set(err, 400, "bad_spec", "%s:%d:%d: %s%s", name, d->line, d->col, d->message,
                     diags->n - first > 1 ? " (and more)" : "");
    }
    if (diags == &local)
        ig_config_diags_free(&local);
    if (!ok) {
        ig_arena_free(arena);
        return NULL;
    }
    return spec;
}

void
prompt_spec_free(struct prompt_spec *spec)
{
    if (spec)
        ig_arena_free(spec->arena);
}
