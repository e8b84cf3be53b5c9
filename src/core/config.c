/* SPDX-License-Identifier: MIT */
/* config.c -- load and validate the YAML config.
 *
 * libyaml builds a node tree with the line and column of every node; the
 * loader walks it with field tables (name, type, offset, flags), one per
 * struct, so each key is declared once and unknown keys, wrong types and
 * missing required fields are found by the same code. Cross-references
 * (ladder rungs naming backends, tenants naming backends, a rung whose
 * backend cannot serve the ladder's class) are checked after the walk.
 * Loading collects every problem before failing. */
#include "core/config.h"
#include "core/alloc.h"
#include "core/arena.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

extern const char ig_default_config_yaml[];
extern const size_t ig_default_config_yaml_len;

/* ---- Names -------------------------------------------------------------- */

static const char *const class_names[] = {"generate", "edit", "upscale", "remove-background", NULL};
static const char *const tier_names[] = {"bytes", "perceptual", "fingerprint", "none", NULL};
static const char *const grammar_names[] = {"none", "weight-syntax", "parameter-flag",
                                            "natural-language", NULL};
static const char *const cap_names[] = {"seed", "negative_prompt", "mask", "reference_images",
                                        "transparency", "n", NULL};
static const char *const relay_names[] = {"auto", "off", NULL};
static const char *const sched_names[] = {"batch", "normal", NULL};
static const char *const license_flag_names[] = {"commercial", "attribution", "copyleft",
                                                 "noncommercial", NULL};
static const char *const price_names[] = {"free", "per-image", "per-megapixel", "per-credit", NULL};

const char *const ig_adapter_kinds[] = {
    "openai", "bfl", "gemini", "stability", "replicate", "fal", "removebg", "photoroom",
    "a1111", "comfyui", "local-rdn", "local-lanczos", "local-isnet", NULL};

const char *
ig_class_name(enum ig_class c)
{
    return c < IG_CLASS_COUNT ? class_names[c] : "?";
}

int
ig_class_parse(const char *s, enum ig_class *out)
{
    for (int i = 0; class_names[i]; i++)
        if (strcmp(s, class_names[i]) == 0) {
            *out = (enum ig_class)i;
            return 0;
        }
    return -1;
}

const char *
ig_tier_name(enum ig_tier t)
{
    return t <= IG_TIER_NONE ? tier_names[t] : "?";
}

const char *
ig_grammar_name(enum ig_grammar g)
{
    return g <= IG_GRAMMAR_NATURAL_LANGUAGE ? grammar_names[g] : "?";
}

static int
is_local_adapter(const char *kind)
{
    return strncmp(kind, "local-", 6) == 0;
}

/* ---- Loader state ------------------------------------------------------- */

struct loader {
    const char *name;
    yaml_document_t *doc;
    struct ig_arena *arena;
    struct ig_config_diags *diags;
    int oom;
};

static void diag(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
diag(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    if (!L->diags)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (ig_config_diag_vadd(L->diags, n ? (int)n->start_mark.line + 1 : 1,
                            n ? (int)n->start_mark.column + 1 : 1, fmt, ap) != 0)
        L->oom = 1;
    va_end(ap);
}

static yaml_node_t *
node_at(struct loader *L, int id)
{
    return yaml_document_get_node(L->doc, id);
}

static const char *
scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void *
arena_alloc(struct loader *L, size_t n)
{
    void *p = ig_arena_alloc(L->arena, n);
    if (!p)
        L->oom = 1;
    return p;
}

static char *
arena_str(struct loader *L, const char *s)
{
    char *p = ig_arena_strdup(L->arena, s);
    if (!p)
        L->oom = 1;
    return p;
}

/* ---- Typed scalar readers ---------------------------------------------- */

static int
read_long(struct loader *L, yaml_node_t *n, const char *key, long *out, int byte_suffix)
{
    const char *s = scalar(n);
    if (!s || !*s) {
        diag(L, n, "'%s' must be an integer", key);
        return -1;
    }
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    long mul = 1;
    if (byte_suffix && end != s && *end) {
        static const struct { const char *sfx; long mul; } sfx[] = {
            {"KiB", 1L << 10}, {"MiB", 1L << 20}, {"GiB", 1L << 30},
            {"KB", 1000L}, {"MB", 1000000L}, {"GB", 1000000000L}, {"K", 1L << 10},
            {"M", 1L << 20}, {"G", 1L << 30}, {"B", 1}};
        for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
            if (strcmp(end, sfx[i].sfx) == 0) {
                mul = sfx[i].mul;
                end += strlen(end);
                break;
            }
    }
    if (errno || end == s || *end || v < 0 || (mul > 1 && v > __LONG_MAX__ / mul)) {
        diag(L, n, "'%s' must be a non-negative integer%s, not '%s'", key,
             byte_suffix ? " (optionally with KiB, MiB, GiB)" : "", s);
        return -1;
    }
    *out = v * mul;
    return 0;
}

static int
read_int(struct loader *L, yaml_node_t *n, const char *key, int *out)
{
    long v;
    if (read_long(L, n, key, &v, 0) != 0)
        return -1;
    if (v > 0x7fffffffL) {
        diag(L, n, "'%s' is too large", key);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int
read_double(struct loader *L, yaml_node_t *n, const char *key, double *out)
{
    const char *s = scalar(n);
    char *end;
    if (s && *s) {
        errno = 0;
        double v = strtod(s, &end);
        if (!errno && !*end && isfinite(v)) {
            *out = v;
            return 0;
        }
    }
    diag(L, n, "'%s' must be a number, not '%s'", key, s ? s : "(not a scalar)");
    return -1;
}

static int
read_bool(struct loader *L, yaml_node_t *n, const char *key, int *out)
{
    const char *s = scalar(n);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)) {
        *out = 1;
        return 0;
    }
    if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)) {
        *out = 0;
        return 0;
    }
    diag(L, n, "'%s' must be true or false, not '%s'", key, s ? s : "(not a scalar)");
    return -1;
}

static void
list_names(char *out, size_t size, const char *const *names)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; names[i] && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", i ? ", " : "", names[i]);
}

static int
read_enum(struct loader *L, yaml_node_t *n, const char *key, const char *const *names, int *out)
{
    const char *s = scalar(n);
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    char all[256];
    list_names(all, sizeof all, names);
    diag(L, n, "'%s' must be one of %s, not '%s'", key, all, s ? s : "(not a scalar)");
    return -1;
}

/* A sequence of names from a table, as a bit set. */
static int
read_flags(struct loader *L, yaml_node_t *n, const char *key, const char *const *names,
           unsigned *out)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        diag(L, n, "'%s' must be a list", key);
        return -1;
    }
    unsigned bits = 0;
    int rc = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        int v;
        if (read_enum(L, node_at(L, *it), key, names, &v) == 0)
            bits |= 1u << v;
        else
            rc = -1;
    }
    *out = bits;
    return rc;
}

static int
read_strlist(struct loader *L, yaml_node_t *n, const char *key, char ***out, size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        diag(L, n, "'%s' must be a list of strings", key);
        return -1;
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = arena_alloc(L, (len + 1) * sizeof *v);
    if (!v)
        return -1;
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = node_at(L, n->data.sequence.items.start[i]);
        const char *s = scalar(item);
        if (!s) {
            diag(L, item, "'%s' items must be strings", key);
            rc = -1;
            continue;
        }
        v[k++] = arena_str(L, s);
    }
    *out = v;
    *count = k;
    return rc;
}

/* ---- Field tables -------------------------------------------------------- */

enum ftype {
    F_STR, F_INT, F_LONG, F_BYTES, F_NUM, F_BOOL, F_ENUM, F_FLAGS, F_STRLIST, F_MAP, F_CUSTOM
};

#define REQ 1u

struct field;
typedef int (*custom_fn)(struct loader *L, yaml_node_t *n, void *base);

struct field {
    const char *name;
    enum ftype type;
    size_t off;
    size_t off2;                  /* F_STRLIST: offset of the count */
    unsigned flags;
    const char *const *names;     /* F_ENUM, F_FLAGS */
    const struct field *sub;      /* F_MAP: fields of the nested mapping */
    custom_fn fn;                 /* F_CUSTOM */
};

#define FLD(st, nm, ty, member, fl) {nm, ty, offsetof(st, member), 0, fl, NULL, NULL, NULL}
#define FENUM(st, nm, ty, member, fl, tbl) {nm, ty, offsetof(st, member), 0, fl, tbl, NULL, NULL}
#define FLIST(st, nm, member, count, fl) \
    {nm, F_STRLIST, offsetof(st, member), offsetof(st, count), fl, NULL, NULL, NULL}
#define FMAP(st, nm, member, fl, tbl) {nm, F_MAP, offsetof(st, member), 0, fl, NULL, tbl, NULL}
#define FFN(nm, fl, f) {nm, F_CUSTOM, 0, 0, fl, NULL, NULL, f}
#define FEND {NULL, F_STR, 0, 0, 0, NULL, NULL, NULL}

static int walk_map(struct loader *L, yaml_node_t *n, const char *what, const struct field *tbl,
                    void *base);

static int
read_field(struct loader *L, const struct field *f, yaml_node_t *v, void *base)
{
    char *p = (char *)base + f->off;
    switch (f->type) {
    case F_STR: {
        const char *s = scalar(v);
        if (!s) {
            diag(L, v, "'%s' must be a string", f->name);
            return -1;
        }
        *(char **)p = arena_str(L, s);
        return 0;
    }
    case F_INT:
        return read_int(L, v, f->name, (int *)p);
    case F_LONG:
        return read_long(L, v, f->name, (long *)p, 0);
    case F_BYTES:
        return read_long(L, v, f->name, (long *)p, 1);
    case F_NUM:
        return read_double(L, v, f->name, (double *)p);
    case F_BOOL:
        return read_bool(L, v, f->name, (int *)p);
    case F_ENUM: {
        int e;
        if (read_enum(L, v, f->name, f->names, &e) != 0)
            return -1;
        *(int *)p = e;
        return 0;
    }
    case F_FLAGS:
        return read_flags(L, v, f->name, f->names, (unsigned *)p);
    case F_STRLIST:
        return read_strlist(L, v, f->name, (char ***)p, (size_t *)((char *)base + f->off2));
    case F_MAP:
        return walk_map(L, v, f->name, f->sub, p);
    case F_CUSTOM:
        return f->fn(L, v, base);
    }
    return -1;
}

static int
walk_map(struct loader *L, yaml_node_t *n, const char *what, const struct field *tbl, void *base)
{
    if (n->type != YAML_MAPPING_NODE) {
        diag(L, n, "'%s' must be a mapping", what);
        return -1;
    }
    int rc = 0;
    unsigned seen = 0;   /* tables have fewer than 32 fields */
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node_at(L, pr->key), *v = node_at(L, pr->value);
        const char *key = scalar(k);
        int i;
        for (i = 0; key && tbl[i].name; i++)
            if (strcmp(tbl[i].name, key) == 0)
                break;
        if (!key || !tbl[i].name) {
            char all[512];
            const char *names[40];
            int j;
            for (j = 0; tbl[j].name && j < 39; j++)
                names[j] = tbl[j].name;
            names[j] = NULL;
            list_names(all, sizeof all, names);
            diag(L, k, "unknown key '%s' in %s (expected one of: %s)", key ? key : "?", what, all);
            rc = -1;
            continue;
        }
        if (seen & (1u << i)) {
            diag(L, k, "duplicate key '%s' in %s", key, what);
            rc = -1;
            continue;
        }
        seen |= 1u << i;
        if (read_field(L, &tbl[i], v, base) != 0)
            rc = -1;
    }
    for (int i = 0; tbl[i].name; i++)
        if ((tbl[i].flags & REQ) && !(seen & (1u << i))) {
            diag(L, n, "missing required key '%s' in %s", tbl[i].name, what);
            rc = -1;
        }
    return rc;
}

/* Walks a sequence of mappings into a freshly allocated array. */
static void *
walk_seq(struct loader *L, yaml_node_t *n, const char *what, const struct field *tbl,
         size_t elem, size_t *count, int *rc, void (*mark)(void *item, yaml_node_t *n))
{
    *count = 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        diag(L, n, "'%s' must be a list", what);
        *rc = -1;
        return NULL;
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char *arr = arena_alloc(L, (len ? len : 1) * elem);
    if (!arr) {
        *rc = -1;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = node_at(L, n->data.sequence.items.start[i]);
        if (mark)
            mark(arr + i * elem, item);
        if (walk_map(L, item, what, tbl, arr + i * elem) != 0)
            *rc = -1;
    }
    *count = len;
    return arr;
}

/* ---- Contract ------------------------------------------------------------ */

/* By hand: sscanf's %d is undefined behaviour on a number past INT_MAX,
 * and takes a sign and leading blanks a size or a ratio never has. */
int
ig_pair_parse(const char *s, char sep, int max, int *a, int *b)
{
    int v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (*s < '0' || *s > '9')
            return -1;
        while (*s >= '0' && *s <= '9') {
            v[k] = v[k] * 10 + (*s++ - '0');
            if (v[k] > max)
                return -1;
        }
        if (k == 0 && *s++ != sep)
            return -1;
    }
    if (*s || v[0] == 0 || v[1] == 0)
        return -1;
    *a = v[0];
    *b = v[1];
    return 0;
}

int
ig_size_parse(const char *s, struct ig_size *out)
{
    return ig_pair_parse(s, 'x', IG_SIDE_MAX, &out->w, &out->h);
}

static int
read_sizes(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_contract *c = base;
    char **names;
    size_t count;
    if (read_strlist(L, n, "sizes", &names, &count) != 0)
        return -1;
    c->sizes = arena_alloc(L, (count ? count : 1) * sizeof *c->sizes);
    if (!c->sizes)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        if (ig_size_parse(names[i], &c->sizes[i]) != 0) {
            diag(L, node_at(L, n->data.sequence.items.start[i]),
                 "size '%s' must be WIDTHxHEIGHT, e.g. 1024x1024", names[i]);
            rc = -1;
        }
    }
    c->n_sizes = count;
    return rc;
}

static int
read_aspects(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_contract *c = base;
    if (read_strlist(L, n, "aspects", &c->aspects, &c->n_aspects) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < c->n_aspects; i++) {
        int a, b;
        if (ig_pair_parse(c->aspects[i], ':', IG_SIDE_MAX, &a, &b) != 0) {
            diag(L, node_at(L, n->data.sequence.items.start[i]),
                 "aspect '%s' must be W:H, e.g. 16:9", c->aspects[i]);
            rc = -1;
        }
    }
    return rc;
}

static int
read_scales(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_contract *c = base;
    if (n->type != YAML_SEQUENCE_NODE) {
        diag(L, n, "'scales' must be a list of integers");
        return -1;
    }
    int rc = 0;
    c->n_scales = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        int v;
        yaml_node_t *item = node_at(L, *it);
        if (read_int(L, item, "scales", &v) != 0) {
            rc = -1;
        } else if (v < 1 || v > 16) {
            diag(L, item, "scale %d is out of range 1..16", v);
            rc = -1;
        } else if (c->n_scales >= sizeof c->scales / sizeof c->scales[0]) {
            diag(L, item, "at most 8 scale factors");
            rc = -1;
        } else {
            c->scales[c->n_scales++] = v;
        }
    }
    return rc;
}

static const struct field license_fields[] = {
    FLD(struct ig_contract, "id", F_STR, license.id, REQ),
    FENUM(struct ig_contract, "flags", F_FLAGS, license.flags, REQ, license_flag_names),
    FLD(struct ig_contract, "note", F_STR, license.note, 0),
    FEND};

static const struct field price_row_fields[] = {
    FLD(struct ig_price_row, "size", F_STR, size, 0),
    FLD(struct ig_price_row, "quality", F_STR, quality, 0),
    FLD(struct ig_price_row, "usd", F_NUM, usd, REQ),
    FEND};

static int
read_price_table(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_contract *c = base;
    int rc = 0;
    c->price.rows = walk_seq(L, n, "price table", price_row_fields, sizeof *c->price.rows,
                             &c->price.n_rows, &rc, NULL);
    return rc;
}

static const struct field price_fields[] = {
    FENUM(struct ig_contract, "model", F_ENUM, price.model, REQ, price_names),
    FLD(struct ig_contract, "usd", F_NUM, price.usd, 0),
    FLD(struct ig_contract, "credits_per_image", F_NUM, price.credits_per_image, 0),
    FFN("table", 0, read_price_table),
    FEND};

static const struct field contract_limit_fields[] = {
    FLD(struct ig_contract, "rpm", F_INT, limits.rpm, 0),
    FLD(struct ig_contract, "ipm", F_INT, limits.ipm, 0),
    FLD(struct ig_contract, "concurrency", F_INT, limits.concurrency, 0),
    FLD(struct ig_contract, "connect_timeout_ms", F_INT, limits.connect_timeout_ms, 0),
    FLD(struct ig_contract, "response_timeout_ms", F_INT, limits.response_timeout_ms, 0),
    FLD(struct ig_contract, "total_timeout_ms", F_INT, limits.total_timeout_ms, 0),
    FEND};

/* The nested maps (license, price, limits) write into the contract itself,
 * so their tables take the contract as base: F_MAP with offset 0. */
static const struct field contract_fields[] = {
    FENUM(struct ig_contract, "classes", F_FLAGS, classes, REQ, class_names),
    FFN("sizes", 0, read_sizes),
    FLD(struct ig_contract, "min_side", F_INT, min_side, 0),
    FLD(struct ig_contract, "max_side", F_INT, max_side, 0),
    FLD(struct ig_contract, "size_multiple", F_INT, size_multiple, 0),
    FLD(struct ig_contract, "max_pixels", F_LONG, max_pixels, 0),
    FLD(struct ig_contract, "max_output_pixels", F_LONG, max_output_pixels, 0),
    FFN("aspects", 0, read_aspects),
    FFN("scales", 0, read_scales),
    FENUM(struct ig_contract, "supports", F_FLAGS, caps, 0, cap_names),
    FENUM(struct ig_contract, "grammar", F_ENUM, grammar, REQ, grammar_names),
    FLD(struct ig_contract, "prompt_max_chars", F_INT, prompt_max_chars, 0),
    FENUM(struct ig_contract, "tier", F_ENUM, tier, REQ, tier_names),
    FLD(struct ig_contract, "base_model", F_STR, base_model, 0),
    {"license", F_MAP, 0, 0, REQ, NULL, license_fields, NULL},
    {"price", F_MAP, 0, 0, REQ, NULL, price_fields, NULL},
    {"limits", F_MAP, 0, 0, 0, NULL, contract_limit_fields, NULL},
    FEND};

/* ---- Backends, tenants, ladders ------------------------------------------ */

static const struct field backend_fields[] = {
    FLD(struct ig_backend_cfg, "name", F_STR, name, REQ),
    FLD(struct ig_backend_cfg, "adapter", F_STR, adapter, REQ),
    FLD(struct ig_backend_cfg, "endpoint", F_STR, endpoint, 0),
    FLD(struct ig_backend_cfg, "credential", F_STR, credential, 0),
    FLD(struct ig_backend_cfg, "model", F_STR, model, 0),
    FLD(struct ig_backend_cfg, "model_path", F_STR, model_path, 0),
    FLD(struct ig_backend_cfg, "emulated", F_BOOL, emulated, 0),
    FMAP(struct ig_backend_cfg, "contract", contract, REQ, contract_fields),
    FEND};

static const struct field policy_fields[] = {
    FLD(struct ig_tenant_cfg, "require_commercial", F_BOOL, license_policy.require_commercial, 0),
    FLD(struct ig_tenant_cfg, "deny_copyleft", F_BOOL, license_policy.deny_copyleft, 0),
    FLD(struct ig_tenant_cfg, "deny_noncommercial", F_BOOL, license_policy.deny_noncommercial, 0),
    FLD(struct ig_tenant_cfg, "deny_attribution", F_BOOL, license_policy.deny_attribution, 0),
    FEND};

static const struct field budget_fields[] = {
    FLD(struct ig_tenant_cfg, "daily_usd", F_NUM, budget_daily_usd, 0),
    FLD(struct ig_tenant_cfg, "monthly_usd", F_NUM, budget_monthly_usd, 0),
    FEND};

static const struct field tenant_limit_fields[] = {
    FLD(struct ig_tenant_cfg, "rpm", F_INT, rpm, 0),
    FLD(struct ig_tenant_cfg, "ipm", F_INT, ipm, 0),
    FLD(struct ig_tenant_cfg, "concurrency", F_INT, concurrency, 0),
    FEND};

static const struct field tenant_fields[] = {
    FLD(struct ig_tenant_cfg, "name", F_STR, name, REQ),
    FLIST(struct ig_tenant_cfg, "keys", key_hashes, n_key_hashes, 0),
    FLIST(struct ig_tenant_cfg, "backends", allowed_backends, n_allowed, 0),
    {"license_policy", F_MAP, 0, 0, 0, NULL, policy_fields, NULL},
    {"budget", F_MAP, 0, 0, 0, NULL, budget_fields, NULL},
    {"limits", F_MAP, 0, 0, 0, NULL, tenant_limit_fields, NULL},
    FLD(struct ig_tenant_cfg, "webhook_secret", F_STR, webhook_secret, 0),
    FEND};

static const struct field rung_fields[] = {
    FLD(struct ig_rung, "backend", F_STR, backend, REQ),
    FLD(struct ig_rung, "retries", F_INT, retries, 0),
    FLD(struct ig_rung, "reseeds", F_INT, reseeds, 0),
    FEND};

static void
mark_rung(void *item, yaml_node_t *n)
{
    struct ig_rung *r = item;
    r->line = (int)n->start_mark.line + 1;
    r->col = (int)n->start_mark.column + 1;
}

static int
read_rungs(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_ladder_cfg *l = base;
    int rc = 0;
    l->rungs = walk_seq(L, n, "rung", rung_fields, sizeof *l->rungs, &l->n_rungs, &rc, mark_rung);
    if (rc == 0 && l->n_rungs == 0) {
        diag(L, n, "a ladder needs at least one rung");
        rc = -1;
    }
    return rc;
}

static const struct field ladder_fields[] = {
    FLD(struct ig_ladder_cfg, "name", F_STR, name, REQ),
    FENUM(struct ig_ladder_cfg, "class", F_ENUM, cls, REQ, class_names),
    FLD(struct ig_ladder_cfg, "tenant", F_STR, tenant, 0),
    FFN("rungs", REQ, read_rungs),
    FEND};

static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};

static const struct field server_fields[] = {
    FLD(struct ig_server_cfg, "listen", F_STR, listen, 0),
    FLD(struct ig_server_cfg, "data_dir", F_STR, data_dir, 0),
    FLD(struct ig_server_cfg, "threads", F_INT, threads, 0),
    FLD(struct ig_server_cfg, "workers", F_INT, workers, 0),
    FENUM(struct ig_server_cfg, "log_level", F_ENUM, log_level, 0, log_level_names),
    FLD(struct ig_server_cfg, "signing_key", F_STR, signing_key, 0),
    FENUM(struct ig_server_cfg, "relay", F_ENUM, relay_off, 0, relay_names),
    FENUM(struct ig_server_cfg, "sched", F_ENUM, sched_normal, 0, sched_names),
    FEND};

static const struct field store_fields[] = {
    FLD(struct ig_store_cfg, "url", F_STR, url, 0),
    FLD(struct ig_store_cfg, "blob_dir", F_STR, blob_dir, 0),
    FLD(struct ig_store_cfg, "redis", F_STR, redis, 0),
    FEND};

static const struct field fetch_fields[] = {
    FLD(struct ig_fetch_cfg, "allow_http", F_BOOL, allow_http, 0),
    FLD(struct ig_fetch_cfg, "allow_loopback", F_BOOL, allow_loopback, 0),
    FLD(struct ig_fetch_cfg, "allow_private", F_BOOL, allow_private, 0),
    FLD(struct ig_fetch_cfg, "timeout_ms", F_INT, timeout_ms, 0),
    FEND};

static const struct field gate_fields[] = {
    FLD(struct ig_gate_cfg, "enabled", F_BOOL, enabled, 0),
    FEND};

/* The memory libmicrohttpd gives each connection, where the request line
 * and headers must fit: under 4 KiB a common browser request is refused,
 * and over 1 MiB a thousand idle connections could hold a gigabyte. */
static int
read_header_bytes(struct loader *L, yaml_node_t *n, void *base)
{
    long v;
    if (read_long(L, n, "max_header_bytes", &v, 1) != 0)
        return -1;
    if (v < (4L << 10) || v > (1L << 20)) {
        diag(L, n, "'max_header_bytes' must be from 4KiB to 1MiB, not %ld", v);
        return -1;
    }
    ((struct ig_limits *)base)->max_header_bytes = v;
    return 0;
}

static const struct field limits_fields[] = {
    FLD(struct ig_limits, "max_body_bytes", F_BYTES, max_body_bytes, 0),
    FFN("max_header_bytes", 0, read_header_bytes),
    FLD(struct ig_limits, "max_input_bytes", F_BYTES, max_input_bytes, 0),
    FLD(struct ig_limits, "max_width", F_INT, max_width, 0),
    FLD(struct ig_limits, "max_height", F_INT, max_height, 0),
    FLD(struct ig_limits, "max_pixels", F_LONG, max_pixels, 0),
    FLD(struct ig_limits, "max_decoded_bytes", F_BYTES, max_decoded_bytes, 0),
    FLD(struct ig_limits, "max_json_depth", F_INT, max_json_depth, 0),
    FLD(struct ig_limits, "max_attempts", F_INT, max_attempts, 0),
    FLD(struct ig_limits, "job_timeout_ms", F_INT, job_timeout_ms, 0),
    FLD(struct ig_limits, "request_timeout_ms", F_INT, request_timeout_ms, 0),
    FEND};

static void
mark_backend(void *item, yaml_node_t *n)
{
    struct ig_backend_cfg *b = item;
    b->line = (int)n->start_mark.line + 1;
    b->col = (int)n->start_mark.column + 1;
}

static void
mark_tenant(void *item, yaml_node_t *n)
{
    struct ig_tenant_cfg *t = item;
    t->line = (int)n->start_mark.line + 1;
    t->col = (int)n->start_mark.column + 1;
}

static void
mark_ladder(void *item, yaml_node_t *n)
{
    struct ig_ladder_cfg *l = item;
    l->line = (int)n->start_mark.line + 1;
    l->col = (int)n->start_mark.column + 1;
}

static int
read_backends(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_config *c = base;
    int rc = 0;
    c->backends = walk_seq(L, n, "backend", backend_fields, sizeof *c->backends, &c->n_backends,
                           &rc, mark_backend);
    return rc;
}

static int
read_tenants(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_config *c = base;
    int rc = 0;
    c->tenants = walk_seq(L, n, "tenant", tenant_fields, sizeof *c->tenants, &c->n_tenants, &rc,
                          mark_tenant);
    return rc;
}

static int
read_ladders(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_config *c = base;
    int rc = 0;
    c->ladders = walk_seq(L, n, "ladder", ladder_fields, sizeof *c->ladders, &c->n_ladders, &rc,
                          mark_ladder);
    return rc;
}

/* validation: { CLASS: { CHECK: BOUND, ... }, ... } */
static const char *const *known_checks;

void
ig_config_known_checks(const char *const *names)
{
    known_checks = names;
}

static int
check_known(const char *name)
{
    if (!known_checks)
        return 1;
    for (size_t i = 0; known_checks[i]; i++)
        if (strcmp(known_checks[i], name) == 0)
            return 1;
    return 0;
}

static int
read_validation(struct loader *L, yaml_node_t *n, void *base)
{
    struct ig_config *c = base;
    if (n->type != YAML_MAPPING_NODE) {
        diag(L, n, "'validation' must be a mapping of job class to thresholds");
        return -1;
    }
    size_t total = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *v = node_at(L, p->value);
        if (v->type == YAML_MAPPING_NODE)
            total += (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    }
    c->thresholds = arena_alloc(L, (total ? total : 1) * sizeof *c->thresholds);
    if (!c->thresholds)
        return -1;
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(L, p->key), *v = node_at(L, p->value);
        enum ig_class cls;
        if (!scalar(k) || ig_class_parse(scalar(k), &cls) != 0) {
            diag(L, k, "unknown job class '%s' in validation (expected generate, edit, upscale, "
                       "remove-background)", scalar(k) ? scalar(k) : "?");
            rc = -1;
            continue;
        }
        if (v->type != YAML_MAPPING_NODE) {
            diag(L, v, "validation.%s must be a mapping of check name to bound", scalar(k));
            rc = -1;
            continue;
        }
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            yaml_node_t *ck = node_at(L, q->key), *cv = node_at(L, q->value);
            struct ig_threshold *t = &c->thresholds[c->n_thresholds];
            if (!scalar(ck)) {
                diag(L, ck, "check names must be strings");
                rc = -1;
                continue;
            }
            if (!check_known(scalar(ck))) {
                char list[1024] = "";
                for (size_t i = 0; known_checks[i]; i++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                             i ? ", " : "", known_checks[i]);
                diag(L, ck, "unknown check '%s' in validation.%s (known: %s)", scalar(ck),
                     scalar(k), list);
                rc = -1;
                continue;
            }
            if (read_double(L, cv, scalar(ck), &t->bound) != 0) {
                rc = -1;
                continue;
            }
            t->cls = cls;
            t->check = arena_str(L, scalar(ck));
            c->n_thresholds++;
        }
    }
    return rc;
}

static const struct field top_fields[] = {
    FMAP(struct ig_config, "server", server, 0, server_fields),
    FMAP(struct ig_config, "store", store, 0, store_fields),
    FMAP(struct ig_config, "gate", gate, 0, gate_fields),
    FMAP(struct ig_config, "fetch", fetch, 0, fetch_fields),
    FMAP(struct ig_config, "limits", limits, 0, limits_fields),
    FFN("backends", REQ, read_backends),
    FFN("tenants", 0, read_tenants),
    FFN("ladders", 0, read_ladders),
    FFN("validation", 0, read_validation),
    FEND};

/* ---- Cross-checks --------------------------------------------------------- */

static int
find_backend(const struct ig_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_backends; i++)
        if (c->backends[i].name && strcmp(c->backends[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void diag_at(struct loader *L, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
diag_at(struct loader *L, int line, int col, const char *fmt, ...)
{
    yaml_node_t fake;
    memset(&fake, 0, sizeof fake);
    fake.start_mark.line = (size_t)(line > 0 ? line - 1 : 0);
    fake.start_mark.column = (size_t)(col > 0 ? col - 1 : 0);
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag(L, &fake, "%s", msg);
}

static int
credential_is_reference(const char *s)
{
    return strncmp(s, "env:", 4) == 0 || strncmp(s, "file:", 5) == 0;
}

static int
is_key_hash(const char *s)
{
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
        return 0;
    for (const char *p = s + 7; *p; p++)
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
            return 0;
    return 1;
}

static void
check_backend(struct loader *L, const struct ig_config *c, size_t i)
{
    const struct ig_backend_cfg *b = &c->backends[i];
    if (!b->name || !b->adapter)
        return;   /* already reported as missing */
    if (find_backend(c, b->name) != (int)i)
        diag_at(L, b->line, b->col, "backend '%s' is declared twice", b->name);
    int known = 0;
    for (int k = 0; ig_adapter_kinds[k]; k++)
        if (strcmp(ig_adapter_kinds[k], b->adapter) == 0)
            known = 1;
    if (!known) {
        char all[400];
        list_names(all, sizeof all, ig_adapter_kinds);
        diag_at(L, b->line, b->col, "backend '%s': unknown adapter '%s' (expected one of: %s)",
                b->name, b->adapter, all);
    }
    if (!is_local_adapter(b->adapter) && !b->endpoint)
        diag_at(L, b->line, b->col, "backend '%s': adapter '%s' needs an 'endpoint'", b->name,
                b->adapter);
    /* The secret itself is never repeated in the message. */
    if (b->credential && !credential_is_reference(b->credential))
        diag_at(L, b->line, b->col,
                "backend '%s': 'credential' must be a reference such as env:NAME or file:PATH, "
                "never the secret itself", b->name);
    const struct ig_contract *k = &b->contract;
    if (k->classes == 0)
        diag_at(L, b->line, b->col, "backend '%s': contract serves no job class", b->name);
    if ((k->classes & IG_CLASS_BIT(IG_CLASS_UPSCALE)) && k->n_scales == 0)
        diag_at(L, b->line, b->col, "backend '%s': an upscale contract must list its 'scales'",
                b->name);
    if ((k->classes & (IG_CLASS_BIT(IG_CLASS_GENERATE) | IG_CLASS_BIT(IG_CLASS_EDIT))) &&
        k->grammar == IG_GRAMMAR_NONE)
        diag_at(L, b->line, b->col,
                "backend '%s': a generate or edit contract needs a prompt 'grammar'", b->name);
    if (k->min_side && k->max_side && k->min_side > k->max_side)
        diag_at(L, b->line, b->col, "backend '%s': min_side %d is above max_side %d", b->name,
                k->min_side, k->max_side);
    if ((k->price.model == IG_PRICE_PER_IMAGE || k->price.model == IG_PRICE_PER_MEGAPIXEL ||
         k->price.model == IG_PRICE_PER_CREDIT) && k->price.usd <= 0 && k->price.n_rows == 0)
        diag_at(L, b->line, b->col, "backend '%s': price model '%s' needs 'usd' or a 'table'",
                b->name, price_names[k->price.model]);
    if ((k->license.flags & IG_LIC_COMMERCIAL) && (k->license.flags & IG_LIC_NONCOMMERCIAL))
        diag_at(L, b->line, b->col,
                "backend '%s': licence flags 'commercial' and 'noncommercial' contradict",
                b->name);
}

static void
cross_check(struct loader *L, struct ig_config *c)
{
    for (size_t i = 0; i < c->n_backends; i++)
        check_backend(L, c, i);
    if (c->server.signing_key && !credential_is_reference(c->server.signing_key))
        diag_at(L, 1, 1, "server.signing_key must be a reference such as env:NAME or file:PATH");

    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct ig_tenant_cfg *t = &c->tenants[i];
        for (size_t j = 0; j < c->n_tenants && t->name; j++)
            if (j < i && c->tenants[j].name && strcmp(c->tenants[j].name, t->name) == 0)
                diag_at(L, t->line, t->col, "tenant '%s' is declared twice", t->name);
        for (size_t j = 0; j < t->n_key_hashes; j++)
            if (!is_key_hash(t->key_hashes[j]))
                diag_at(L, t->line, t->col,
                        "tenant '%s': keys are stored hashed, as sha256:<64 lowercase hex> "
                        "(imagegate config hash-key prints one)", t->name ? t->name : "?");
        if (t->webhook_secret && !credential_is_reference(t->webhook_secret))
            diag_at(L, t->line, t->col,
                    "tenant '%s': webhook_secret must be a reference such as env:NAME",
                    t->name ? t->name : "?");
        for (size_t j = 0; j < t->n_allowed; j++)
            if (find_backend(c, t->allowed_backends[j]) < 0)
                diag_at(L, t->line, t->col, "tenant '%s' allows unknown backend '%s'",
                        t->name ? t->name : "?", t->allowed_backends[j]);
    }

    for (size_t i = 0; i < c->n_ladders; i++) {
        const struct ig_ladder_cfg *l = &c->ladders[i];
        if (!l->name)
            continue;
        for (size_t j = 0; j < i; j++)
            if (c->ladders[j].name && strcmp(c->ladders[j].name, l->name) == 0)
                diag_at(L, l->line, l->col, "ladder '%s' is declared twice", l->name);
        if (l->tenant && !ig_config_tenant(c, l->tenant))
            diag_at(L, l->line, l->col, "ladder '%s' names unknown tenant '%s'", l->name,
                    l->tenant);
        for (size_t r = 0; r < l->n_rungs; r++) {
            const struct ig_rung *rg = &l->rungs[r];
            if (!rg->backend)
                continue;
            int b = find_backend(c, rg->backend);
            if (b < 0)
                diag_at(L, rg->line, rg->col, "ladder '%s' names unknown backend '%s'", l->name,
                        rg->backend);
            else if (!(c->backends[b].contract.classes & IG_CLASS_BIT(l->cls)))
                diag_at(L, rg->line, rg->col,
                        "ladder '%s' is for class '%s', but backend '%s' does not serve it",
                        l->name, ig_class_name(l->cls), rg->backend);
            if (rg->retries < 0 || rg->retries > 10 || rg->reseeds < 0 || rg->reseeds > 10)
                diag_at(L, rg->line, rg->col, "ladder '%s': retries and reseeds are 0..10",
                        l->name);
        }
    }
}

static void
apply_defaults(struct ig_config *c)
{
    struct ig_limits *l = &c->limits;
    if (!l->max_body_bytes)    l->max_body_bytes = 32L << 20;
    if (!l->max_header_bytes)  l->max_header_bytes = 16L << 10;
    if (!l->max_input_bytes)   l->max_input_bytes = 25L << 20;
    if (!l->max_width)         l->max_width = 16384;
    if (!l->max_height)        l->max_height = 16384;
    if (!l->max_pixels)        l->max_pixels = 50L * 1000 * 1000;
    if (!l->max_decoded_bytes) l->max_decoded_bytes = 512L << 20;
    if (!l->max_json_depth)    l->max_json_depth = 32;
    if (!l->max_attempts)      l->max_attempts = 6;
    if (!l->job_timeout_ms)    l->job_timeout_ms = 300000;
    if (!l->request_timeout_ms) l->request_timeout_ms = 60000;
    if (!c->server.threads)    c->server.threads = 2;
    if (!c->server.workers)    c->server.workers = 2;
    if (!c->server.data_dir)   c->server.data_dir = "./imagegate-data";
    if (!c->fetch.timeout_ms)  c->fetch.timeout_ms = 15000;
}

/* ---- Entry points ---------------------------------------------------------- */

struct ig_config *
ig_config_load(const char *name, const char *text, size_t len, struct ig_config_diags *diags,
               struct ig_error *err)
{
    struct ig_config_diags local = {0};
    if (!diags)
        diags = &local;
    size_t first_diag = diags->n;

    struct ig_arena *arena = ig_arena_new(16384);
    if (!arena) {
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", name);
        return NULL;
    }
    struct ig_config *cfg = ig_arena_alloc(arena, sizeof *cfg);
    if (!cfg) {
        ig_arena_free(arena);
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", name);
        return NULL;
    }
    cfg->arena = arena;
    cfg->source = ig_arena_strdup(arena, name);

    cfg->server.log_level = 1;   /* info, unless the file says otherwise */
    cfg->gate.enabled = 1;
    struct loader L = {.name = name, .arena = arena, .diags = diags};
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_doc = 0, ok = 0;
    if (!yaml_parser_initialize(&parser)) {
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", name);
        ig_arena_free(arena);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_node_t at;
        memset(&at, 0, sizeof at);
        at.start_mark = parser.problem_mark;
        diag(&L, &at, "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
             parser.context ? " " : "", parser.context ? parser.context : "");
    } else {
        have_doc = 1;
        L.doc = &doc;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            diag(&L, NULL, "the config is empty (it needs at least 'backends')");
        } else {
            walk_map(&L, root, "the config", top_fields, cfg);
            cross_check(&L, cfg);
        }
        ok = diags->n == first_diag && !L.oom;
    }
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);

    if (L.oom) {
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", name);
        ok = 0;
    } else if (!ok) {
        size_t n = diags->n - first_diag;
        const struct ig_config_diag *d = &diags->items[first_diag];
        ig_error_set(err, 400, "bad_config", "%s:%d:%d: %s%s", name, d->line, d->col, d->message,
                     n > 1 ? " (and more)" : "");
    }
    if (diags == &local)
        ig_config_diags_free(&local);
    if (!ok) {
        ig_arena_free(arena);
        return NULL;
    }
    apply_defaults(cfg);
    return cfg;
}

struct ig_config *
ig_config_load_file(const char *path, struct ig_config_diags *diags, struct ig_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ig_error_set(err, 400, "config_unreadable", "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    const size_t max = 16u << 20;   /* a config is text, not data */
    for (;;) {
        void *p = text;
        if (ig_grow(&p, &cap, len + 65536, 1) != 0) {
            ig_free(text);
            fclose(f);
            ig_error_set(err, 500, "out_of_memory", "out of memory reading %s", path);
            return NULL;
        }
        text = p;
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len > max) {
            ig_free(text);
            fclose(f);
            ig_error_set(err, 400, "config_too_large", "%s: larger than 16 MiB", path);
            return NULL;
        }
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        ig_free(text);
        ig_error_set(err, 400, "config_unreadable", "%s: read error", path);
        return NULL;
    }
    struct ig_config *c = ig_config_load(path, text, len, diags, err);
    ig_free(text);
    return c;
}

struct ig_config *
ig_config_load_default(struct ig_config_diags *diags, struct ig_error *err)
{
    return ig_config_load("<embedded>", ig_default_config_yaml, ig_default_config_yaml_len, diags,
                          err);
}

void
ig_config_free(struct ig_config *cfg)
{
    if (cfg)
        ig_arena_free(cfg->arena);
}

int
ig_config_diag_vadd(struct ig_config_diags *d, int line, int col, const char *fmt, va_list ap)
{
    void *items = d->items;
    if (ig_grow(&items, &d->cap, d->n + 1, sizeof *d->items) != 0)
        return -1;
    d->items = items;
    struct ig_config_diag *it = &d->items[d->n++];
    it->line = line;
    it->col = col;
    vsnprintf(it->message, sizeof it->message, fmt, ap);
    return 0;
}

void
ig_config_diags_free(struct ig_config_diags *d)
{
    ig_free(d->items);
    d->items = NULL;
    d->n = d->cap = 0;
}

/* ---- Look-ups --------------------------------------------------------------- */

const struct ig_backend_cfg *
ig_config_backend(const struct ig_config *cfg, const char *name)
{
    int i = find_backend(cfg, name);
    return i < 0 ? NULL : &cfg->backends[i];
}

const struct ig_tenant_cfg *
ig_config_tenant(const struct ig_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_tenants; i++)
        if (cfg->tenants[i].name && strcmp(cfg->tenants[i].name, name) == 0)
            return &cfg->tenants[i];
    return NULL;
}

const struct ig_ladder_cfg *
ig_config_ladder(const struct ig_config *cfg, enum ig_class cls, const char *tenant)
{
    const struct ig_ladder_cfg *fallback = NULL;
    for (size_t i = 0; i < cfg->n_ladders; i++) {
        const struct ig_ladder_cfg *l = &cfg->ladders[i];
        if (l->cls != cls)
            continue;
        if (tenant && l->tenant && strcmp(l->tenant, tenant) == 0)
            return l;
        if (!l->tenant && !fallback)
            fallback = l;
    }
    return fallback;
}

const struct ig_ladder_cfg *
ig_config_ladder_named(const struct ig_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_ladders; i++)
        if (strcmp(cfg->ladders[i].name, name) == 0)
            return &cfg->ladders[i];
    return NULL;
}

double
ig_config_threshold(const struct ig_config *cfg, enum ig_class cls, const char *check, double dflt)
{
    for (size_t i = 0; cfg && i < cfg->n_thresholds; i++)
        if (cfg->thresholds[i].cls == cls && strcmp(cfg->thresholds[i].check, check) == 0)
            return cfg->thresholds[i].bound;
    return dflt;
}

int
ig_contract_accepts_size(const struct ig_contract *c, int w, int h)
{
    if (w <= 0 || h <= 0)
        return 0;
    if (c->n_sizes) {
        for (size_t i = 0; i < c->n_sizes; i++)
            if (c->sizes[i].w == w && c->sizes[i].h == h)
                return 1;
        return 0;
    }
    if (c->min_side && (w < c->min_side || h < c->min_side))
        return 0;
    if (c->max_side && (w > c->max_side || h > c->max_side))
        return 0;
    if (c->size_multiple > 1 && (w % c->size_multiple || h % c->size_multiple))
        return 0;
    if (c->max_pixels && (long)w * h > c->max_pixels)
        return 0;
    if (c->n_aspects) {
        for (size_t i = 0; i < c->n_aspects; i++) {
            int a, b;
            if (ig_pair_parse(c->aspects[i], ':', IG_SIDE_MAX, &a, &b) == 0 &&
                (long)w * b == (long)h * a)
                return 1;
        }
        return 0;
    }
    return 1;
}
