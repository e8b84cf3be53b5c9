/* SPDX-License-Identifier: MIT */
/* suite.c -- loading a test suite file (see suite.h).
 *
 * The config loader's way (core/config.c): libyaml builds a node tree with
 * the line and column of every node, and each mapping is walked against a
 * table of the keys it takes, so unknown keys, duplicates, wrong types and
 * missing keys are found by one piece of code and reported as
 * FILE:LINE:COL, every problem at once, in the same ig_config_diags. The
 * config's walker is private to config.c and writes struct fields by
 * offset; a suite's keys mostly build JSON and resolve paths, so each key
 * here has a reader function instead of a type and an offset. Prompt specs and case requests are
 * carried as JSON (the job API's form); a spec given as a file is loaded
 * with the prompt compiler first, so its own mistakes point into its file. */
#include "tools/testrun/suite.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "prompt/prompt.h"
#include "image/image.h"
#include "tools/tool.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const char *
tr_drift_name(enum tr_drift d)
{
    static const char *const names[] = {"fail", "warn", "rebaseline"};
    return d <= TR_DRIFT_REBASELINE ? names[d] : "?";
}

struct sl {                        /* the loader's state */
    const char *file;              /* for diagnostics about other files */
    yaml_document_t *doc;
    struct tr_suite *s;
    struct ig_config_diags *diags;
    yaml_node_t *key;              /* the key whose value is being read */
    int oom;
};

static void sl_diag(struct sl *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sl_diag(struct sl *L, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ig_config_diag_vadd(L->diags, n ? (int)n->start_mark.line + 1 : 1,
                            n ? (int)n->start_mark.column + 1 : 1, fmt, ap) != 0)
        L->oom = 1;
    va_end(ap);
}

static yaml_node_t *
sl_node(struct sl *L, int id)
{
    return yaml_document_get_node(L->doc, id);
}

static const char *
sl_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static char *
sl_str(struct sl *L, const char *s)
{
    char *p = ig_arena_strdup(L->s->arena, s);
    if (!p)
        L->oom = 1;
    return p;
}

/* ---- Scalars ------------------------------------------------------------- */

static int
read_string(struct sl *L, yaml_node_t *n, const char *key, char **out)
{
    const char *s = sl_scalar(n);
    if (!s || !*s) {
        sl_diag(L, n, "'%s' must be a non-empty string", key);
        return -1;
    }
    *out = sl_str(L, s);
    return 0;
}

static int
read_number(struct sl *L, yaml_node_t *n, const char *key, double lo, double hi, double *out)
{
    const char *s = sl_scalar(n);
    char *end = NULL;
    errno = 0;
    double v = s && *s ? strtod(s, &end) : NAN;
    if (!s || !*s || errno || *end || !isfinite(v) || v < lo || v > hi) {
        sl_diag(L, n, "'%s' must be a number in %g..%g, not '%s'", key, lo, hi,
                s ? s : "(not a scalar)");
        return -1;
    }
    *out = v;
    return 0;
}

static int
read_integer(struct sl *L, yaml_node_t *n, const char *key, long long lo, long long hi,
             long long *out)
{
    const char *s = sl_scalar(n);
    char *end = NULL;
    errno = 0;
    long long v = s && *s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || errno || *end || v < lo || v > hi) {
        sl_diag(L, n, "'%s' must be an integer in %lld..%lld, not '%s'", key, lo, hi,
                s ? s : "(not a scalar)");
        return -1;
    }
    *out = v;
    return 0;
}

static int
read_boolean(struct sl *L, yaml_node_t *n, const char *key, int *out)
{
    const char *s = sl_scalar(n);
    if (s && (!strcmp(s, "true") || !strcmp(s, "false"))) {
        *out = s[0] == 't';
        return 0;
    }
    sl_diag(L, n, "'%s' must be true or false, not '%s'", key, s ? s : "(not a scalar)");
    return -1;
}

/* A string, or a list of strings, as an array. */
static int
read_strings(struct sl *L, yaml_node_t *n, const char *key, char ***out, size_t *count)
{
    if (n->type == YAML_SCALAR_NODE) {
        *out = ig_arena_alloc(L->s->arena, sizeof **out);
        if (!*out)
            return L->oom = 1, -1;
        *count = 1;
        return read_string(L, n, key, &(*out)[0]);
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        sl_diag(L, n, "'%s' must be a string or a list of strings", key);
        return -1;
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *out = ig_arena_alloc(L->s->arena, (len ? len : 1) * sizeof **out);
    if (!*out)
        return L->oom = 1, -1;
    *count = len;
    int rc = 0;
    for (size_t i = 0; i < len; i++)
        rc |= read_string(L, sl_node(L, n->data.sequence.items.start[i]), key, &(*out)[i]);
    return rc;
}

/* ---- YAML to JSON (specs and request fields travel as the job API's JSON) */

static json_t *
to_json(struct sl *L, yaml_node_t *n, int depth)
{
    if (!n || depth > 32)
        return NULL;
    if (n->type == YAML_MAPPING_NODE) {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; o && p < n->data.mapping.pairs.top;
             p++) {
            const char *k = sl_scalar(sl_node(L, p->key));
            json_t *v = to_json(L, sl_node(L, p->value), depth + 1);
            if (!k || !v || json_object_set_new(o, k, v) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        yaml_node_item_t *it = n->data.sequence.items.start;
        for (; a && it < n->data.sequence.items.top; it++) {
            json_t *v = to_json(L, sl_node(L, *it), depth + 1);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    const char *s = sl_scalar(n);
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        char *end;
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (*s && !*end && !errno)
            return json_integer(i);
        double d = strtod(s, &end);
        if (*s && !*end && isfinite(d))
            return json_real(d);
        if (!strcmp(s, "true") || !strcmp(s, "false"))
            return json_boolean(s[0] == 't');
        if (!strcmp(s, "null") || !strcmp(s, "~"))
            return json_null();
    }
    return json_string(s);
}

/* ---- Key tables ------------------------------------------------------------ */

typedef int (*key_fn)(struct sl *L, yaml_node_t *v, void *base);

struct key {
    const char *name;
    key_fn read;
    int required;
};

static int
walk(struct sl *L, yaml_node_t *n, const char *what, const struct key *tbl, void *base)
{
    if (n->type != YAML_MAPPING_NODE) {
        sl_diag(L, n, "%s must be a mapping", what);
        return -1;
    }
    int rc = 0;
    unsigned seen = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = sl_node(L, p->key), *v = sl_node(L, p->value);
        const char *key = sl_scalar(k);
        int i;
        for (i = 0; key && tbl[i].name && strcmp(tbl[i].name, key); i++)
            ;
        if (!key || !tbl[i].name) {
            char all[400];
            size_t len = 0;
            all[0] = '\0';
            for (int j = 0; tbl[j].name && len < sizeof all; j++)
                len += (size_t)snprintf(all + len, sizeof all - len, "%s%s", j ? ", " : "",
                                        tbl[j].name);
            sl_diag(L, k, "unknown key '%s' in %s (expected one of: %s)", key ? key : "?", what,
                    all);
            rc = -1;
            continue;
        }
        if (seen & (1u << i)) {
            sl_diag(L, k, "duplicate key '%s' in %s", key, what);
            rc = -1;
            continue;
        }
        seen |= 1u << i;
        L->key = k;
        rc |= tbl[i].read(L, v, base);
    }
    for (int i = 0; tbl[i].name; i++)
        if (tbl[i].required && !(seen & (1u << i))) {
            sl_diag(L, n, "missing required key '%s' in %s", tbl[i].name, what);
            rc = -1;
        }
    return rc;
}

/* ---- Assertions ------------------------------------------------------------- */

#define NUM_KEY(fn, member, flag, lo, hi)                                                \
    static int fn(struct sl *L, yaml_node_t *v, void *base)                              \
    {                                                                                    \
        struct tr_assert *a = base;                                                      \
        a->flag = 1;                                                                     \
        return read_number(L, v, #member, lo, hi, &a->member);                           \
    }
NUM_KEY(a_ssimulacra2, ssimulacra2, has_ssimulacra2, -1000, 100)
NUM_KEY(a_ssim, ssim, has_ssim, -1, 1)
NUM_KEY(a_deltae, deltae, has_deltae, 0, 200)
NUM_KEY(a_cost, cost_usd, has_cost, 0, 1e6)
NUM_KEY(a_latency, latency_s, has_latency, 0, 86400)
#undef NUM_KEY

static int
a_phash(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_assert *a = base;
    long long d;
    a->has_phash = 1;
    if (read_integer(L, v, "phash", 0, 64, &d) != 0)
        return -1;
    a->phash = (int)d;
    return 0;
}

static int
a_bytes(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_assert *a = base;
    a->has_bytes = 1;
    return read_boolean(L, v, "bytes", &a->bytes);
}

static int
a_gate(struct sl *L, yaml_node_t *v, void *base)
{
    return read_boolean(L, v, "gate", &((struct tr_assert *)base)->gate);
}

static int
a_alpha(struct sl *L, yaml_node_t *v, void *base)
{
    return read_boolean(L, v, "alpha", &((struct tr_assert *)base)->alpha);
}

static int
a_text(struct sl *L, yaml_node_t *v, void *base)
{
    return read_string(L, v, "text", &((struct tr_assert *)base)->text);
}

static int
a_size(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_assert *a = base;
    const char *s = sl_scalar(v);
    if (!s || ig_pair_parse(s, 'x', IG_SIDE_MAX, &a->width, &a->height) != 0) {
        sl_diag(L, v, "'size' must be WIDTHxHEIGHT, e.g. 1024x1024");
        return -1;
    }
    return 0;
}

static int
a_format(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_assert *a = base;
    enum img_format f;
    if (read_string(L, v, "format", &a->format) != 0)
        return -1;
    if (img_format_parse(a->format, &f) != 0) {
        sl_diag(L, v, "'format' must be an image format such as png, jpeg, webp, not '%s'",
                a->format);
        return -1;
    }
    return 0;
}

static int
a_palette(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_assert *a = base;
    if (read_strings(L, v, "palette", &a->palette, &a->n_palette) != 0)
        return -1;
    for (size_t i = 0; i < a->n_palette; i++) {
        unsigned rgb;
        int used = 0;
        if (sscanf(a->palette[i], "#%6x%n", &rgb, &used) != 1 || used != 7 ||
            a->palette[i][used]) {
            sl_diag(L, v, "palette colour '%s' must be #rrggbb", a->palette[i]);
            return -1;
        }
    }
    return 0;
}

static int
a_palette_deltae(struct sl *L, yaml_node_t *v, void *base)
{
    return read_number(L, v, "palette_deltae", 0, 200,
                       &((struct tr_assert *)base)->palette_deltae);
}

static const struct key assert_keys[] = {
    {"ssimulacra2", a_ssimulacra2, 0}, {"ssim", a_ssim, 0},       {"phash", a_phash, 0},
    {"deltae", a_deltae, 0},           {"bytes", a_bytes, 0},     {"gate", a_gate, 0},
    {"text", a_text, 0},               {"size", a_size, 0},       {"format", a_format, 0},
    {"alpha", a_alpha, 0},             {"palette", a_palette, 0},
    {"palette_deltae", a_palette_deltae, 0},                      {"cost", a_cost, 0},
    {"latency", a_latency, 0},         {NULL, NULL, 0}};

/* ---- Cases ---------------------------------------------------------------- */

static int
c_name(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_case *c = base;
    if (read_string(L, v, "name", &c->name) != 0)
        return -1;
    for (const char *p = c->name; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) || c->name[0] == '.') {
            sl_diag(L, v, "case name '%s' may use only letters, digits, '-', '_' and '.' "
                          "(it names a baseline folder)", c->name);
            return -1;
        }
    return 0;
}

/* Request fields copied into the job as they are (their checking is the
 * gateway's: a suite run reports the gateway's own refusal). */
static int
c_request(struct sl *L, yaml_node_t *k, yaml_node_t *v, struct tr_case *c)
{
    json_t *j = to_json(L, v, 0);
    if (!j || json_object_set_new(c->request, sl_scalar(k), j) != 0) {
        L->oom = 1;
        return -1;
    }
    return 0;
}

static char *
resolve_path(struct sl *L, const char *p)
{
    if (p[0] == '/' || !L->s->dir[0])
        return sl_str(L, p);
    char *r = ig_arena_printf(L->s->arena, "%s/%s", L->s->dir, p);
    if (!r)
        L->oom = 1;
    return r;
}

/* A spec: inline, or a YAML/JSON file checked by the prompt compiler. */
static int
c_spec(struct sl *L, yaml_node_t *v, struct tr_case *c)
{
    json_t *spec = NULL;
    char *text = NULL;
    size_t len = 0;
    struct ig_error e = {0};
    const char *rel = sl_scalar(v);
    char *path = rel ? resolve_path(L, rel) : NULL;
    if (v->type == YAML_MAPPING_NODE) {
        spec = to_json(L, v, 0);
        text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
        len = text ? strlen(text) : 0;
    } else if (!path) {
        sl_diag(L, v, "'spec' must be a mapping (the spec inline) or a file name");
        return -1;
    } else if (tool_read_file(path, 1 << 20, &text, &len, &e) != 0) {
        sl_diag(L, v, "spec file: %s", e.message);
        return -1;
    }
    if (!text) {
        json_decref(spec);
        L->oom = 1;
        return -1;
    }
    struct ig_config_diags d = {0};
    struct prompt_spec *ps = prompt_spec_load(path ? path : "spec", text, len, &d, &e);
    int rc = 0;
    if (!ps) {
        /* Inline specs point into the suite; file specs into their file. */
        sl_diag(L, v, "%s", e.message);
        rc = -1;
    } else if (!spec) {
        yaml_parser_t p;
        yaml_document_t doc;
        if (!yaml_parser_initialize(&p)) {
            L->oom = 1;
            rc = -1;
        } else {
            yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
            if (yaml_parser_load(&p, &doc)) {
                yaml_document_t *keep = L->doc;
                L->doc = &doc;
                spec = to_json(L, yaml_document_get_root_node(&doc), 0);
                L->doc = keep;
                yaml_document_delete(&doc);
            }
            yaml_parser_delete(&p);
            if (!spec) {
                sl_diag(L, v, "spec file %s could not be read as YAML or JSON", path);
                rc = -1;
            }
        }
    }
    prompt_spec_free(ps);
    ig_config_diags_free(&d);
    if (path)
        ig_free(text);
    else
        free(text);
    if (rc == 0 && json_object_set_new(c->request, "spec", spec) != 0) {
        L->oom = 1;
        rc = -1;
    } else if (rc != 0) {
        json_decref(spec);
    }
    return rc;
}

static int
c_image(struct sl *L, yaml_node_t *v, const char *key, char **out)
{
    char *rel;
    if (read_string(L, v, key, &rel) != 0)
        return -1;
    *out = resolve_path(L, rel);
    FILE *f = *out ? fopen(*out, "rb") : NULL;
    if (!f) {
        sl_diag(L, v, "'%s': cannot open %s: %s", key, *out ? *out : rel, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

static int
c_backends(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_case *c = base;
    if (read_strings(L, v, "backends", &c->backends, &c->n_backends) != 0)
        return -1;
    c->backend_line = ig_arena_alloc(L->s->arena, (c->n_backends + 1) * sizeof(int));
    c->backend_col = ig_arena_alloc(L->s->arena, (c->n_backends + 1) * sizeof(int));
    if (!c->backend_line || !c->backend_col)
        return L->oom = 1, -1;
    for (size_t i = 0; i < c->n_backends; i++) {
        yaml_node_t *n = v->type == YAML_SEQUENCE_NODE
                             ? sl_node(L, v->data.sequence.items.start[i])
                             : v;
        c->backend_line[i] = (int)n->start_mark.line + 1;
        c->backend_col[i] = (int)n->start_mark.column + 1;
    }
    return 0;
}

/* The seed plane: a list of seeds, or a count (seeds 1..N). */
static int
c_seeds(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_case *c = base;
    long long n;
    if (v->type == YAML_SCALAR_NODE) {
        if (read_integer(L, v, "seeds", 1, TR_MAX_SEEDS, &n) != 0)
            return -1;
        c->seeds = ig_arena_alloc(L->s->arena, (size_t)n * sizeof *c->seeds);
        if (!c->seeds)
            return L->oom = 1, -1;
        for (long long i = 0; i < n; i++)
            c->seeds[i] = i + 1;
        c->n_seeds = (size_t)n;
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE ||
        v->data.sequence.items.top == v->data.sequence.items.start) {
        sl_diag(L, v, "'seeds' must be a count or a non-empty list of seeds");
        return -1;
    }
    size_t len = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (len > TR_MAX_SEEDS) {
        sl_diag(L, v, "'seeds' lists %zu seeds; at most %d", len, TR_MAX_SEEDS);
        return -1;
    }
    c->seeds = ig_arena_alloc(L->s->arena, len * sizeof *c->seeds);
    if (!c->seeds)
        return L->oom = 1, -1;
    int rc = 0;
    for (size_t i = 0; i < len; i++)
        rc |= read_integer(L, sl_node(L, v->data.sequence.items.start[i]), "seeds", 0,
                           0x7fffffffLL, &c->seeds[i]);
    c->n_seeds = len;
    return rc;
}

static int
c_assert(struct sl *L, yaml_node_t *v, void *base)
{
    return walk(L, v, "an assert mapping", assert_keys, &((struct tr_case *)base)->as);
}

static int
read_drift(struct sl *L, yaml_node_t *v, enum tr_drift *out)
{
    const char *s = sl_scalar(v);
    for (int i = 0; s && i <= TR_DRIFT_REBASELINE; i++)
        if (!strcmp(s, tr_drift_name((enum tr_drift)i))) {
            *out = (enum tr_drift)i;
            return 0;
        }
    sl_diag(L, v, "'on_drift' must be one of fail, warn, rebaseline, not '%s'",
            s ? s : "(not a scalar)");
    return -1;
}

static int
c_on_drift(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_case *c = base;
    c->has_on_drift = 1;
    return read_drift(L, v, &c->on_drift);
}

/* Request fields and images, told apart by the key being read. */
static int
c_field(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_case *c = base;
    const char *k = sl_scalar(L->key);
    if (!strcmp(k, "spec"))
        return c_spec(L, v, c);
    if (!strcmp(k, "input"))
        return c_image(L, v, "input", &c->input);
    if (!strcmp(k, "mask"))
        return c_image(L, v, "mask", &c->mask);
    return c_request(L, L->key, v, c);
}

static const struct key case_keys[] = {
    {"name", c_name, 1},          {"class", c_field, 0},         {"prompt", c_field, 0},
    {"spec", c_field, 0},         {"negative_prompt", c_field, 0}, {"size", c_field, 0},
    {"quality", c_field, 0},      {"output_format", c_field, 0}, {"scale", c_field, 0},
    {"transparent", c_field, 0},  {"input", c_field, 0},         {"mask", c_field, 0},
    {"backends", c_backends, 0},  {"seeds", c_seeds, 0},         {"assert", c_assert, 0},
    {"on_drift", c_on_drift, 0},  {NULL, NULL, 0}};

/* ---- The suite ------------------------------------------------------------- */

static int
g_config(struct sl *L, yaml_node_t *v, void *base)
{
    char *rel;
    if (read_string(L, v, "config", &rel) != 0)
        return -1;
    L->s->config = resolve_path(L, rel);
    return 0;
}

static int
g_url(struct sl *L, yaml_node_t *v, void *base)
{
    if (read_string(L, v, "url", &L->s->url) != 0)
        return -1;
    if (strncmp(L->s->url, "http://", 7) && strncmp(L->s->url, "https://", 8)) {
        sl_diag(L, v, "'url' must start with http:// or https://");
        return -1;
    }
    return 0;
}

static int
g_api_key(struct sl *L, yaml_node_t *v, void *base)
{
    if (read_string(L, v, "api_key", &L->s->api_key) != 0)
        return -1;
    if (strncmp(L->s->api_key, "env:", 4) && strncmp(L->s->api_key, "file:", 5)) {
        sl_diag(L, v, "'api_key' must be a reference (env:NAME or file:PATH), never the key");
        return -1;
    }
    return 0;
}

static int
g_tenant(struct sl *L, yaml_node_t *v, void *base)
{
    return read_string(L, v, "tenant", &L->s->tenant);
}

static const struct key gateway_keys[] = {
    {"config", g_config, 0}, {"url", g_url, 0}, {"api_key", g_api_key, 0},
    {"tenant", g_tenant, 0}, {NULL, NULL, 0}};

static int
s_gateway(struct sl *L, yaml_node_t *v, void *base)
{
    struct tr_suite *s = L->s;
    s->gateway_line = (int)v->start_mark.line + 1;
    s->gateway_col = (int)v->start_mark.column + 1;
    if (walk(L, v, "'gateway'", gateway_keys, s) != 0)
        return -1;
    if (!s->config == !s->url) {
        sl_diag(L, v, "'gateway' needs exactly one of 'config' (run in-process) or 'url'");
        return -1;
    }
    if (s->api_key && !s->url) {
        sl_diag(L, v, "'gateway.api_key' goes with 'url' (an in-process gateway needs none)");
        return -1;
    }
    return 0;
}

static int
s_baselines(struct sl *L, yaml_node_t *v, void *base)
{
    char *rel;
    L->s->baselines_line = (int)v->start_mark.line + 1;
    L->s->baselines_col = (int)v->start_mark.column + 1;
    if (read_string(L, v, "baselines", &rel) != 0)
        return -1;
    L->s->baselines = resolve_path(L, rel);
    return 0;
}

static int
s_on_drift(struct sl *L, yaml_node_t *v, void *base)
{
    return read_drift(L, v, &L->s->on_drift);
}

static int
s_max_cost(struct sl *L, yaml_node_t *v, void *base)
{
    return read_number(L, v, "max_cost_usd", 0, 1e6, &L->s->max_cost_usd);
}

static int
s_timeout(struct sl *L, yaml_node_t *v, void *base)
{
    double t;
    if (read_number(L, v, "timeout_s", 1, 86400, &t) != 0)
        return -1;
    L->s->timeout_ms = (long)(t * 1000);
    return 0;
}

static int
s_version(struct sl *L, yaml_node_t *v, void *base)
{
    long long n;
    return read_integer(L, v, "version", 1, 1, &n);
}

/* defaults: backends, seeds and assert for every case; read before the
 * cases (wherever it stands in the file) so that cases start from it. */
static const struct key defaults_keys[] = {
    {"backends", c_backends, 0}, {"seeds", c_seeds, 0}, {"assert", c_assert, 0},
    {"on_drift", c_on_drift, 0}, {NULL, NULL, 0}};

static int
s_skip(struct sl *L, yaml_node_t *v, void *base)
{
    return 0;
}

static int
s_cases(struct sl *L, yaml_node_t *v, void *base)
{
    const struct tr_case *dflt = base;
    struct tr_suite *s = L->s;
    if (v->type != YAML_SEQUENCE_NODE ||
        v->data.sequence.items.top == v->data.sequence.items.start) {
        sl_diag(L, v, "'cases' must be a non-empty list");
        return -1;
    }
    size_t len = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    s->cases = ig_arena_alloc(s->arena, len * sizeof *s->cases);
    if (!s->cases)
        return L->oom = 1, -1;
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *n = sl_node(L, v->data.sequence.items.start[i]);
        struct tr_case *c = &s->cases[s->n_cases++];
        *c = *dflt;
        c->line = (int)n->start_mark.line + 1;
        c->col = (int)n->start_mark.column + 1;
        c->request = json_object();
        if (!c->request)
            return L->oom = 1, -1;
        if (walk(L, n, "a case", case_keys, c) != 0) {
            rc = -1;
            continue;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(s->cases[k].name, c->name)) {
                sl_diag(L, n, "case '%s' is declared twice (first at line %d)", c->name,
                        s->cases[k].line);
                rc = -1;
            }
        if (!c->n_backends) {
            sl_diag(L, n, "case '%s' names no backends (here or in 'defaults')", c->name);
            rc = -1;
        }
        json_t *cls = json_object_get(c->request, "class");
        const char *cn = json_string_value(cls);
        enum ig_class k = IG_CLASS_GENERATE;
        if (!cls && json_object_set_new(c->request, "class", json_string("generate")) != 0)
            return L->oom = 1, -1;
        if (cls && (!cn || ig_class_parse(cn, &k) != 0)) {
            sl_diag(L, n, "case '%s': 'class' must be generate, edit, upscale or "
                          "remove-background", c->name);
            rc = -1;
        }
        int prompted = json_object_get(c->request, "prompt") || json_object_get(c->request, "spec");
        if ((k == IG_CLASS_GENERATE || k == IG_CLASS_EDIT) && !prompted) {
            sl_diag(L, n, "case '%s': a %s job needs 'spec' or 'prompt'", c->name,
                    ig_class_name(k));
            rc = -1;
        }
        if (k != IG_CLASS_GENERATE && !c->input) {
            sl_diag(L, n, "case '%s': a %s job needs an 'input' image", c->name, ig_class_name(k));
            rc = -1;
        }
    }
    return rc;
}

static const struct key suite_keys[] = {
    {"version", s_version, 0},    {"gateway", s_gateway, 1},     {"baselines", s_baselines, 1},
    {"on_drift", s_on_drift, 0},  {"max_cost_usd", s_max_cost, 0}, {"timeout_s", s_timeout, 0},
    {"defaults", s_skip, 0},      {"cases", s_cases, 1},         {NULL, NULL, 0}};

void
tr_suite_free(struct tr_suite *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_cases; i++)
        json_decref(s->cases[i].request);
    ig_arena_free(s->arena);
}

struct tr_suite *
tr_suite_load(const char *path, const char *text, size_t len, struct ig_config_diags *diags,
              struct ig_error *err)
{
    struct ig_arena *arena = ig_arena_new(8192);
    struct tr_suite *s = arena ? ig_arena_alloc(arena, sizeof *s) : NULL;
    if (!s) {
        ig_arena_free(arena);
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", path);
        return NULL;
    }
    s->arena = arena;
    s->path = ig_arena_strdup(arena, path);
    const char *slash = strrchr(path, '/');
    s->dir = ig_arena_strndup(arena, path, slash ? (size_t)(slash - path) : 0);
    s->timeout_ms = 300000;
    struct sl L = {.file = path, .s = s, .diags = diags, .oom = !s->path || !s->dir};
    size_t first = diags->n;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        tr_suite_free(s);
        ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", path);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_node_t at;
        memset(&at, 0, sizeof at);
        at.start_mark = parser.problem_mark;
        sl_diag(&L, &at, "YAML syntax error: %s", parser.problem ? parser.problem : "unknown");
    } else {
        L.doc = &doc;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        struct tr_case dflt;
        memset(&dflt, 0, sizeof dflt);
        dflt.as.alpha = -1;
        dflt.as.palette_deltae = 10;
        if (!root) {
            sl_diag(&L, NULL, "the suite is empty (it needs 'gateway', 'baselines' and 'cases')");
        } else if (root->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
                 p < root->data.mapping.pairs.top; p++) {
                const char *k = sl_scalar(sl_node(&L, p->key));
                if (k && !strcmp(k, "defaults"))
                    walk(&L, sl_node(&L, p->value), "'defaults'", defaults_keys, &dflt);
            }
        }
        if (root)
            walk(&L, root, "the suite", suite_keys, &dflt);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (L.oom || diags->n > first) {
        if (L.oom)
            ig_error_set(err, 500, "out_of_memory", "out of memory loading %s", path);
        else
            ig_error_set(err, 400, "bad_suite", "%s:%d:%d: %s%s", path, diags->items[first].line,
                         diags->items[first].col, diags->items[first].message,
                         diags->n - first > 1 ? " (and more)" : "");
        tr_suite_free(s);
        return NULL;
    }
    return s;
}

struct tr_suite *
tr_suite_load_file(const char *path, struct ig_config_diags *diags, struct ig_error *err)
{
    char *text;
    size_t len;
    if (tool_read_file(path, 4 << 20, &text, &len, err) != 0)
        return NULL;
    struct tr_suite *s = tr_suite_load(path, text, len, diags, err);
    ig_free(text);
    return s;
}

void
tr_case_effective(const struct tr_case *c, enum ig_tier t, struct tr_assert *out)
{
    *out = c->as;
    int perceptual = out->has_ssimulacra2 || out->has_ssim || out->has_phash || out->has_deltae;
    if (t == IG_TIER_BYTES && !perceptual && !out->has_bytes) {
        out->has_bytes = out->bytes = 1;
    } else if ((t == IG_TIER_PERCEPTUAL || t == IG_TIER_FINGERPRINT) && !perceptual &&
               !out->has_bytes) {
        out->has_ssimulacra2 = 1;
        out->ssimulacra2 = 80;
    } else if (t == IG_TIER_NONE) {
        /* No seed steers the picture: only the task checks mean anything. */
        out->has_ssimulacra2 = out->has_ssim = out->has_phash = out->has_deltae = 0;
        out->has_bytes = out->bytes = 0;
    }
}
