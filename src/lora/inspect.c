/* SPDX-License-Identifier: MIT */
/* inspect.c -- what a LoRA file targets, and what is wrong with it.
 *
 * Every tensor key is split into a module name and a role (down/A, up/B,
 * alpha, LyCORIS factors). Keys are sorted by module so the halves of a pair
 * meet without a hash table, whatever the file's size. The base architecture
 * comes from LORA.md's fingerprints, shapes before names before metadata:
 * block layout names the family (UNet, MMDiT, FLUX double/single stream),
 * then layer widths and block counts pick the member. FLUX.1 and FLUX.2
 * [klein] 4B share their hidden width, so those two are told apart by the
 * MLP widths, the per-block modulation only FLUX.1 has, and block counts. */
#include "lora/lora.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ---- Names ---------------------------------------------------------------- */

static const char *const arch_names[] = {
    [LORA_ARCH_UNKNOWN] = "unknown",         [LORA_ARCH_SD15] = "SD 1.5",
    [LORA_ARCH_SD2] = "SD 2.x",              [LORA_ARCH_SDXL] = "SDXL",
    [LORA_ARCH_SD3] = "SD3",                 [LORA_ARCH_FLUX1] = "FLUX.1",
    [LORA_ARCH_FLUX2_DEV] = "FLUX.2 [dev]",  [LORA_ARCH_FLUX2_KLEIN_4B] = "FLUX.2 [klein] 4B",
    [LORA_ARCH_FLUX2_KLEIN_9B] = "FLUX.2 [klein] 9B",
};

static const char *const conv_names[] = {
    [LORA_CONV_UNKNOWN] = "unknown", [LORA_CONV_KOHYA] = "kohya",
    [LORA_CONV_PEFT] = "peft", [LORA_CONV_BFL] = "bfl", [LORA_CONV_LYCORIS] = "lycoris",
};

const char *
lora_arch_name(enum lora_arch a)
{
    return (unsigned)a < sizeof arch_names / sizeof arch_names[0] ? arch_names[a] : "unknown";
}

const char *
lora_conv_name(enum lora_conv c)
{
    return (unsigned)c < sizeof conv_names / sizeof conv_names[0] ? conv_names[c] : "unknown";
}

enum lora_arch
lora_arch_parse(const char *s)
{
    char n[128];
    size_t k = 0;
    for (; s && *s && k + 1 < sizeof n; s++)
        if (isalnum((unsigned char)*s))
            n[k++] = (char)tolower((unsigned char)*s);
    n[k] = 0;
    if (!k || strstr(n, "chroma"))
        return LORA_ARCH_UNKNOWN;
    if (strstr(n, "flux2")) {
        if (!strstr(n, "klein"))
            return LORA_ARCH_FLUX2_DEV;
        if (strstr(n, "4b"))
            return LORA_ARCH_FLUX2_KLEIN_4B;
        if (strstr(n, "9b"))
            return LORA_ARCH_FLUX2_KLEIN_9B;
        return LORA_ARCH_UNKNOWN;
    }
    if (strstr(n, "flux"))
        return LORA_ARCH_FLUX1;
    if (strstr(n, "sdxl") || strstr(n, "stablediffusionxl"))
        return LORA_ARCH_SDXL;
    if (strstr(n, "sd3") || strstr(n, "stablediffusion3") || !strcmp(n, "medium") ||
        !strcmp(n, "5large") || !strcmp(n, "5medium"))
        return LORA_ARCH_SD3;
    if (strstr(n, "sdv2") || strstr(n, "sd2") || strstr(n, "stablediffusionv2") ||
        strstr(n, "stablediffusion2"))
        return LORA_ARCH_SD2;
    if (strstr(n, "sdv1") || strstr(n, "sd1") || strstr(n, "stablediffusionv1") ||
        strstr(n, "stablediffusion1"))
        return LORA_ARCH_SD15;
    return LORA_ARCH_UNKNOWN;
}

/* ---- Findings ------------------------------------------------------------- */

int
lora_finding_add(struct lora_findings *f, enum lora_level level, const char *code,
                 const char *fmt, ...)
{
    if (ig_grow((void **)&f->v, &f->cap, f->n + 1, sizeof *f->v) != 0)
        return -1;
    struct lora_finding *x = &f->v[f->n++];
    x->level = level;
    snprintf(x->code, sizeof x->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->message, sizeof x->message, fmt, ap);
    va_end(ap);
    return 0;
}

int
lora_findings_has_error(const struct lora_findings *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].level == LORA_ERROR)
            return 1;
    return 0;
}

void
lora_findings_free(struct lora_findings *f)
{
    ig_free(f->v);
    memset(f, 0, sizeof *f);
}

json_t *
lora_findings_json(const struct lora_findings *f)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < f->n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "level",
                                           f->v[i].level == LORA_ERROR ? "error" : "warning",
                                           "code", f->v[i].code, "message", f->v[i].message));
    return a;
}

/* ---- Keys ----------------------------------------------------------------- */

enum role { R_DOWN, R_UP, R_ALPHA, R_OTHER, R_NONE };

static const struct {
    const char *suffix;
    enum role role;
    enum lora_conv conv;     /* UNKNOWN: the prefix decides */
} roles[] = {
    {".lora_down.weight", R_DOWN, LORA_CONV_UNKNOWN},
    {".lora_up.weight", R_UP, LORA_CONV_UNKNOWN},
    {".lora_A.weight", R_DOWN, LORA_CONV_UNKNOWN},
    {".lora_B.weight", R_UP, LORA_CONV_UNKNOWN},
    {".lora_A.default.weight", R_DOWN, LORA_CONV_PEFT},
    {".lora_B.default.weight", R_UP, LORA_CONV_PEFT},
    {".lora_linear_layer.down.weight", R_DOWN, LORA_CONV_PEFT},
    {".lora_linear_layer.up.weight", R_UP, LORA_CONV_PEFT},
    {".lora.down.weight", R_DOWN, LORA_CONV_PEFT},
    {".lora.up.weight", R_UP, LORA_CONV_PEFT},
    {"_lora.down.weight", R_DOWN, LORA_CONV_PEFT},
    {"_lora.up.weight", R_UP, LORA_CONV_PEFT},
    {".alpha", R_ALPHA, LORA_CONV_UNKNOWN},
    {".hada_w1_b", R_DOWN, LORA_CONV_LYCORIS},
    {".hada_w1_a", R_UP, LORA_CONV_LYCORIS},
    {".hada_w2_a", R_OTHER, LORA_CONV_LYCORIS},
    {".hada_w2_b", R_OTHER, LORA_CONV_LYCORIS},
    {".hada_t1", R_OTHER, LORA_CONV_LYCORIS},
    {".hada_t2", R_OTHER, LORA_CONV_LYCORIS},
    {".lokr_w1", R_OTHER, LORA_CONV_LYCORIS},
    {".lokr_w1_a", R_OTHER, LORA_CONV_LYCORIS},
    {".lokr_w1_b", R_OTHER, LORA_CONV_LYCORIS},
    {".lokr_w2", R_OTHER, LORA_CONV_LYCORIS},
    {".lokr_w2_a", R_OTHER, LORA_CONV_LYCORIS},
    {".lokr_w2_b", R_OTHER, LORA_CONV_LYCORIS},
    {".lokr_t2", R_OTHER, LORA_CONV_LYCORIS},
    {".lora_mid.weight", R_OTHER, LORA_CONV_UNKNOWN},
    {".dora_scale", R_OTHER, LORA_CONV_UNKNOWN},
    {".lora_B.bias", R_OTHER, LORA_CONV_PEFT},
    {".diff", R_OTHER, LORA_CONV_UNKNOWN},
    {".diff_b", R_OTHER, LORA_CONV_UNKNOWN},
};

static const struct {
    const char *prefix;
    enum lora_conv conv;
    int part;                /* 0 denoiser, n text encoder n */
} prefixes[] = {
    {"lora_unet_", LORA_CONV_KOHYA, 0},     {"lora_te1_", LORA_CONV_KOHYA, 2},
    {"lora_te2_", LORA_CONV_KOHYA, 3},      {"lora_te3_", LORA_CONV_KOHYA, 4},
    {"lora_te_", LORA_CONV_KOHYA, 1},       {"lora_transformer_", LORA_CONV_KOHYA, 0},
    {"lycoris_", LORA_CONV_LYCORIS, 0},     {"transformer.", LORA_CONV_PEFT, 0},
    {"unet.", LORA_CONV_PEFT, 0},           {"text_encoder.", LORA_CONV_PEFT, 2},
    {"text_encoder_2.", LORA_CONV_PEFT, 3}, {"base_model.model.", LORA_CONV_PEFT, 0},
    {"diffusion_model.", LORA_CONV_BFL, 0}, {"double_blocks.", LORA_CONV_BFL, 0},
    {"single_blocks.", LORA_CONV_BFL, 0},
};

struct key {
    const struct lora_tensor *t;
    size_t base_len;
    enum role role;
    enum lora_conv conv;
    int part;
};

static int
split_key(const char *name, struct key *k)
{
    size_t len = strlen(name);
    k->role = R_NONE;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        size_t sl = strlen(roles[i].suffix);
        if (len > sl && strcmp(name + len - sl, roles[i].suffix) == 0 &&
            (k->role == R_NONE || len - sl < k->base_len)) {
            k->role = roles[i].role;
            k->base_len = len - sl;
            k->conv = roles[i].conv;
        }
    }
    if (k->role == R_NONE)
        return -1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0) {
            if (k->conv == LORA_CONV_UNKNOWN || k->conv == LORA_CONV_PEFT)
                k->conv = k->conv == LORA_CONV_PEFT && prefixes[i].conv == LORA_CONV_KOHYA
                              ? LORA_CONV_PEFT
                              : prefixes[i].conv;
            k->part = prefixes[i].part;
            return 0;
        }
    return -1;
}

static int
by_module(const void *a, const void *b)
{
    const struct key *x = a, *y = b;
    size_t n = x->base_len < y->base_len ? x->base_len : y->base_len;
    int c = memcmp(x->t->name, y->t->name, n);
    if (c)
        return c;
    return x->base_len < y->base_len ? -1 : x->base_len > y->base_len;
}

/* ---- Detection ------------------------------------------------------------ */

struct evidence {
    int joint, dbl, sgl, stb, tb, ldm, unet, mod;
    long hidden, attn2_k, te_width;
    int f1_votes, k4_votes;
};

/* The module name with '.' as '_', so kohya and diffusers spell alike. */
static void
flatten(const char *name, size_t len, char *out, size_t cap)
{
    size_t i;
    for (i = 0; i < len && i + 1 < cap; i++)
        out[i] = name[i] == '.' ? '_' : name[i];
    out[i] = 0;
}

static int
block_index(const char *flat, const char *tag)
{
    const char *p = flat;
    while ((p = strstr(p, tag)) != NULL) {
        if (tag[0] == 't' && p >= flat + 7 && strncmp(p - 7, "single_", 7) == 0) {
            p++;
            continue;
        }
        p += strlen(tag);
        if (isdigit((unsigned char)*p))
            return atoi(p);
    }
    return -1;
}

static void
gather(struct lora_info *info, struct evidence *ev, const char *flat, const struct lora_module *m)
{
    if (m->part) {
        if (strstr(flat, "q_proj") && m->in > 0)
            ev->te_width = m->in;
        return;
    }
    int i;
    if (strstr(flat, "joint_blocks") || strstr(flat, "context_block"))
        ev->joint = 1;
    if ((i = block_index(flat, "double_blocks_")) >= 0) {
        ev->dbl = 1;
        if (i + 1 > info->double_blocks)
            info->double_blocks = i + 1;
    }
    if ((i = block_index(flat, "single_transformer_blocks_")) >= 0) {
        ev->stb = 1;
        if (i + 1 > info->single_blocks)
            info->single_blocks = i + 1;
    } else if ((i = block_index(flat, "single_blocks_")) >= 0) {
        ev->sgl = 1;
        if (i + 1 > info->single_blocks)
            info->single_blocks = i + 1;
    }
    if (!strstr(flat, "attentions_") && (i = block_index(flat, "transformer_blocks_")) >= 0) {
        ev->tb = 1;
        if (i + 1 > info->double_blocks)
            info->double_blocks = i + 1;
    }
    if (strstr(flat, "input_blocks_") || strstr(flat, "output_blocks_") ||
        strstr(flat, "middle_block_"))
        ev->ldm = 1;
    if (strstr(flat, "down_blocks_") || strstr(flat, "up_blocks_") || strstr(flat, "mid_block_"))
        ev->unet = 1;
    if (strstr(flat, "attn2_to_k") && m->in > 0)
        ev->attn2_k = m->in;
    if (m->in > 0 && (ev->hidden == 0 || m->in < ev->hidden) && !ev->unet && !ev->ldm)
        ev->hidden = m->in;
    if (strstr(flat, "mod_lin") || strstr(flat, "modulation_lin") || strstr(flat, "norm1_linear") ||
        strstr(flat, "norm1_context_linear") || strstr(flat, "norm_linear"))
        ev->mod = 1;
    /* FLUX.1 vs FLUX.2 [klein] 4B: both 3072 wide; LORA.md's width table. */
    if (strstr(flat, "linear1"))
        ev->f1_votes += m->out == 21504, ev->k4_votes += m->out == 27648;
    if (strstr(flat, "linear2") || strstr(flat, "proj_out"))
        ev->f1_votes += m->in == 15360, ev->k4_votes += m->in == 12288;
    if (strstr(flat, "mlp_0") || strstr(flat, "ff_net_0_proj") || strstr(flat, "linear_in"))
        ev->f1_votes += m->out == 12288, ev->k4_votes += m->out == 18432;
    if (strstr(flat, "to_qkv_mlp_proj") || strstr(flat, "ff_linear_in") ||
        strstr(flat, "ff_context_linear"))
        ev->k4_votes++;
    if (strstr(flat, "proj_mlp") || strstr(flat, "ff_net_"))
        ev->f1_votes++;
}

static enum lora_arch
decide(struct lora_info *info, const struct evidence *ev)
{
    info->hidden = ev->hidden;
    if (ev->joint)
        return LORA_ARCH_SD3;
    int flux = ev->dbl || ev->sgl || ev->stb;
    if (!flux && ev->tb && !ev->ldm && !ev->unet && (ev->hidden == 1536 || ev->hidden == 2432))
        return LORA_ARCH_SD3;
    if (flux || (ev->tb && ev->hidden >= 3072)) {
        switch (ev->hidden) {
        case 6144:
            return LORA_ARCH_FLUX2_DEV;
        case 4096:
            return LORA_ARCH_FLUX2_KLEIN_9B;
        case 3072: {
            int f1 = ev->f1_votes + (ev->mod ? 3 : 0) + (info->double_blocks > 5) * 3 +
                     (info->single_blocks > 20) * 3;
            if (f1 > ev->k4_votes)
                return LORA_ARCH_FLUX1;
            if (ev->k4_votes > f1)
                return LORA_ARCH_FLUX2_KLEIN_4B;
            lora_finding_add(&info->findings, LORA_WARNING, "architecture_ambiguous",
                             "3072 wide FLUX blocks fit FLUX.1 and FLUX.2 [klein] 4B alike; "
                             "assuming FLUX.1");
            return LORA_ARCH_FLUX1;
        }
        default:
            return LORA_ARCH_UNKNOWN;
        }
    }
    if (ev->ldm || ev->attn2_k == 2048 || (info->te_parts & (1u << 3)))
        return LORA_ARCH_SDXL;
    if (ev->attn2_k == 768)
        return LORA_ARCH_SD15;
    if (ev->attn2_k == 1024)
        return LORA_ARCH_SD2;
    if (ev->unet || (info->te_parts & 2u)) {
        if (ev->te_width == 1024)
            return LORA_ARCH_SD2;
        if (ev->te_width == 768 || ev->unet)
            return LORA_ARCH_SD15;
    }
    return LORA_ARCH_UNKNOWN;
}

/* ---- Inspect -------------------------------------------------------------- */

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void
ranks(struct lora_info *info)
{
    int *r = ig_malloc((info->n_mods ? info->n_mods : 1) * sizeof *r);
    size_t n = 0;
    for (size_t i = 0; r && i < info->n_mods; i++)
        if (info->mods[i].rank > 0)
            r[n++] = info->mods[i].rank;
    if (!r || !n) {
        ig_free(r);
        return;
    }
    qsort(r, n, sizeof *r, cmp_int);
    info->rank_min = r[0];
    info->rank_max = r[n - 1];
    size_t best = 0;
    for (size_t i = 0, run; i < n; i += run) {
        for (run = 1; i + run < n && r[i + run] == r[i]; run++)
            ;
        if (run > best) {
            best = run;
            info->rank_dominant = r[i];
        }
    }
    ig_free(r);
}

static void
declared(struct lora_info *info, const struct lora_st *st)
{
    const char *keys[] = {"modelspec.architecture", "ss_base_model_version", "ss_sd_model_name"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = lora_st_meta(st, keys[i]);
        if (!v || !*v || !strcmp(v, "None"))
            continue;
        enum lora_arch a = lora_arch_parse(v);
        if (info->declared_name[0] == 0)
            snprintf(info->declared_name, sizeof info->declared_name, "%s", v);
        if (a != LORA_ARCH_UNKNOWN && info->declared == LORA_ARCH_UNKNOWN) {
            info->declared = a;
            snprintf(info->declared_name, sizeof info->declared_name, "%s", v);
        }
        if (strstr(v, "schnell"))
            snprintf(info->variant, sizeof info->variant, "schnell");
        else if (strstr(v, "dev") && !info->variant[0])
            snprintf(info->variant, sizeof info->variant, "dev");
    }
    const char *v2 = lora_st_meta(st, "ss_v2");
    if (info->declared == LORA_ARCH_SD15 && v2 && !strcmp(v2, "True"))
        info->declared = LORA_ARCH_SD2;
}

static int
alpha_from_metadata(const struct lora_st *st, double *alpha)
{
    const char *a = lora_st_meta(st, "ss_network_alpha");
    char *end;
    if (a && strcmp(a, "None") != 0) {
        double v = strtod(a, &end);
        if (end != a && *end == 0 && isfinite(v)) {
            *alpha = v;
            return 1;
        }
    }
    const char *peft = lora_st_meta(st, "lora_adapter_metadata");
    if (peft) {
        json_t *j = json_loads(peft, JSON_REJECT_DUPLICATES, NULL);
        json_t *la = j ? json_object_get(j, "lora_alpha") : NULL;
        int ok = json_is_number(la);
        if (ok)
            *alpha = json_number_value(la);
        json_decref(j);
        return ok;
    }
    return 0;
}

static void
check_metadata(struct lora_info *info, const struct lora_st *st)
{
    static const char *const json_keys[] = {"ss_tag_frequency", "ss_datasets", "ss_network_args",
                                            "ss_bucket_info", "training_info", "software",
                                            "lora_adapter_metadata", "ss_dataset_dirs"};
    for (size_t i = 0; i < sizeof json_keys / sizeof json_keys[0]; i++) {
        const char *v = lora_st_meta(st, json_keys[i]);
        if (!v || !strcmp(v, "None"))
            continue;
        json_t *j = json_loads(v, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
            lora_finding_add(&info->findings, LORA_WARNING, "metadata_bad_json",
                             "metadata '%s' should hold JSON but does not parse", json_keys[i]);
        json_decref(j);
    }
    const char *dim = lora_st_meta(st, "ss_network_dim");
    if (dim && info->rank_dominant && atoi(dim) > 0 && atoi(dim) != info->rank_dominant)
        lora_finding_add(&info->findings, LORA_WARNING, "rank_metadata_mismatch",
                         "ss_network_dim says %s but the tensors have rank %d", dim,
                         info->rank_dominant);
}

static int
module_add(struct lora_info *info, size_t *cap, const struct key *k)
{
    if (ig_grow((void **)&info->mods, cap, info->n_mods + 1, sizeof *info->mods) != 0)
        return -1;
    struct lora_module *m = &info->mods[info->n_mods];
    memset(m, 0, sizeof *m);
    m->name = ig_strndup(k->t->name, k->base_len);
    if (!m->name)
        return -1;
    m->part = k->part;
    info->n_mods++;
    return 0;
}

static int
fill_role(struct lora_info *info, struct lora_module *m, const struct key *k)
{
    const struct lora_tensor *t = k->t;
    switch (k->role) {
    case R_DOWN:
        m->has_down = 1;
        if (t->ndim >= 2) {
            m->rank = t->shape[0] > 0x7fffffff ? 0 : (int)t->shape[0];
            m->in = (long)t->shape[1];
        }
        break;
    case R_UP:
        m->has_up = 1;
        if (t->ndim >= 2) {
            m->out = (long)t->shape[0];
            if (m->has_down && m->rank && t->shape[1] != m->rank)
                lora_finding_add(&info->findings, LORA_ERROR, "rank_pair_mismatch",
                                 "%s: down has rank %d, up has %lld", m->name, m->rank,
                                 (long long)t->shape[1]);
        }
        break;
    case R_ALPHA: {
        struct ig_error e;
        if (lora_st_scalar(info->st, t, &m->alpha, &e) != 0 || !isfinite(m->alpha))
            return lora_finding_add(&info->findings, LORA_ERROR, "alpha_not_scalar",
                                    "%s: alpha is not a finite float scalar", t->name);
        m->has_alpha = 1;
        break;
    }
    default:
        break;
    }
    return 0;
}

int
lora_inspect(const struct lora_st *st, struct lora_info *info, struct ig_error *err)
{
    memset(info, 0, sizeof *info);
    info->st = st;
    struct key *keys = ig_calloc(st->n_tensors ? st->n_tensors : 1, sizeof *keys);
    if (!keys)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    size_t nk = 0, conv_count[5] = {0}, cap = 0;
    const char *first_unmatched = NULL;
    for (size_t i = 0; i < st->n_tensors; i++) {
        keys[nk].t = &st->tensors[i];
        if (split_key(st->tensors[i].name, &keys[nk]) != 0) {
            if (!info->unmatched++)
                first_unmatched = st->tensors[i].name;
            continue;
        }
        conv_count[keys[nk].conv]++;
        if (keys[nk].part)
            info->te_parts |= 1u << (keys[nk].part - 1);
        nk++;
    }
    qsort(keys, nk, sizeof *keys, by_module);
    int rc = 0;
    for (size_t i = 0; i < nk && rc == 0; i++) {
        if (i == 0 || by_module(&keys[i - 1], &keys[i]) != 0)
            rc = module_add(info, &cap, &keys[i]);
        if (rc == 0)
            rc = fill_role(info, &info->mods[info->n_mods - 1], &keys[i]);
    }
    ig_free(keys);
    if (rc != 0) {
        lora_info_free(info);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }

    const char *netmod = lora_st_meta(st, "ss_network_module");
    size_t best = 0, kinds = 0;
    for (int c = 1; c < 5; c++) {
        kinds += conv_count[c] > 0;
        if (conv_count[c] > best) {
            best = conv_count[c];
            info->conv = (enum lora_conv)c;
        }
    }
    if (conv_count[LORA_CONV_LYCORIS] || (netmod && strstr(netmod, "lycoris")))
        info->conv = LORA_CONV_LYCORIS;
    info->mixed_conventions = kinds > 1;

    struct evidence ev = {0};
    char flat[512];
    for (size_t i = 0; i < info->n_mods; i++) {
        struct lora_module *m = &info->mods[i];
        flatten(m->name, strlen(m->name), flat, sizeof flat);
        gather(info, &ev, flat, m);
        if ((m->has_down != m->has_up) && (m->has_down || m->has_up))
            lora_finding_add(&info->findings, LORA_ERROR, "unpaired_module",
                             "%s has a %s half but no %s half", m->name,
                             m->has_down ? "down" : "up", m->has_down ? "up" : "down");
    }
    info->arch = decide(info, &ev);
    ranks(info);
    declared(info, st);

    /* Alpha: the tensors win; metadata is what loaders fall back on. */
    size_t with_alpha = 0, paired = 0;
    double alpha_sum = 0;
    for (size_t i = 0; i < info->n_mods; i++) {
        paired += info->mods[i].rank > 0;
        if (info->mods[i].has_alpha) {
            with_alpha++;
            if (info->mods[i].rank == info->rank_dominant || !info->alpha_known) {
                info->alpha = info->mods[i].alpha;
                info->alpha_known = 1;
            }
            alpha_sum += info->mods[i].alpha;
        }
    }
    (void)alpha_sum;
    double meta_alpha;
    int has_meta_alpha = alpha_from_metadata(st, &meta_alpha);
    if (info->alpha_known) {
        info->alpha_source = "tensor";
        if (has_meta_alpha && fabs(meta_alpha - info->alpha) > 1e-3 * fabs(info->alpha) + 1e-6)
            lora_finding_add(&info->findings, LORA_WARNING, "alpha_metadata_mismatch",
                             "metadata says alpha %g but the .alpha tensors hold %g", meta_alpha,
                             info->alpha);
        if (with_alpha < paired)
            lora_finding_add(&info->findings, LORA_WARNING, "alpha_partial",
                             "%zu of %zu modules have no .alpha tensor; those run at scale 1",
                             paired - with_alpha, paired);
    } else if (has_meta_alpha) {
        info->alpha = meta_alpha;
        info->alpha_known = 1;
        info->alpha_source = "metadata";
    }
    if (info->alpha_known && info->rank_dominant > 0) {
        info->scale = info->alpha / info->rank_dominant;
        if (info->scale < 0.1 || info->scale > 2)
            lora_finding_add(&info->findings, LORA_WARNING, "scale_extreme",
                             "alpha/rank = %g/%d = %g is outside 0.1..2", info->alpha,
                             info->rank_dominant, info->scale);
    } else {
        info->scale = 1;
        if (info->rank_dominant > 0)
            lora_finding_add(&info->findings, LORA_WARNING, "alpha_missing",
                             "no .alpha tensors and no alpha in the metadata: loaders use "
                             "alpha = rank, so the scale is 1");
    }

    if (st->n_tensors == 0 || info->n_mods == 0)
        lora_finding_add(&info->findings, LORA_ERROR, "no_lora_modules",
                         "the file holds no LoRA modules any loader would apply");
    else if (info->unmatched)
        lora_finding_add(&info->findings, LORA_WARNING, "unmatched_keys",
                         "%zu keys match no known loader's naming (first: %s); loaders skip "
                         "them silently",
                         info->unmatched, first_unmatched);
    if (info->rank_min != info->rank_max)
        lora_finding_add(&info->findings, LORA_WARNING, "mixed_ranks",
                         "ranks differ across modules: %d..%d (dominant %d)", info->rank_min,
                         info->rank_max, info->rank_dominant);
    if (info->mixed_conventions)
        lora_finding_add(&info->findings, LORA_WARNING, "mixed_conventions",
                         "keys mix naming conventions; most loaders expect one");
    if (info->arch == LORA_ARCH_UNKNOWN && info->n_mods)
        lora_finding_add(&info->findings, LORA_WARNING, "architecture_unknown",
                         "the keys and widths match none of SD 1.5, SDXL, SD3, FLUX.1, FLUX.2");
    if (info->declared != LORA_ARCH_UNKNOWN && info->arch != LORA_ARCH_UNKNOWN &&
        info->declared != info->arch)
        lora_finding_add(&info->findings, LORA_ERROR, "declared_base_mismatch",
                         "metadata declares '%s' (%s) but the tensors are %s",
                         info->declared_name, lora_arch_name(info->declared),
                         lora_arch_name(info->arch));
    if (st->padded_start)
        lora_finding_add(&info->findings, LORA_WARNING, "header_padded",
                         "the header starts with whitespace, not '{'");
    if (st->extra_fields)
        lora_finding_add(&info->findings, LORA_WARNING, "extra_tensor_fields",
                         "%zu tensor entries carry fields beyond dtype, shape, data_offsets",
                         st->extra_fields);
    check_metadata(info, st);
    return 0;
}

void
lora_info_free(struct lora_info *info)
{
    for (size_t i = 0; i < info->n_mods; i++)
        ig_free(info->mods[i].name);
    ig_free(info->mods);
    lora_findings_free(&info->findings);
    memset(info, 0, sizeof *info);
}

/* ---- Output --------------------------------------------------------------- */

/* The module's layer name without its block path: "attn2_to_k". */
static const char *
leaf(const char *flat)
{
    const char *best = flat;
    for (const char *p = flat; *p; p++)
        if (*p == '_' && isdigit((unsigned char)p[1])) {
            const char *q = p + 1;
            while (isdigit((unsigned char)*q))
                q++;
            if (*q == '_')
                best = q + 1;
        }
    return best;
}

static const char *
meta_first(const struct lora_st *st, const char *a, const char *b)
{
    const char *v = lora_st_meta(st, a);
    if ((!v || !strcmp(v, "None")) && b)
        v = lora_st_meta(st, b);
    return v && strcmp(v, "None") ? v : NULL;
}

json_t *
lora_info_json(const struct lora_info *info)
{
    json_t *o = json_object(), *rank = json_object(), *mods = json_object(),
           *targets = json_object(), *meta = json_object(), *tes = json_array();
    if (!o || !rank || !mods || !targets || !meta || !tes) {
        json_decref(o), json_decref(rank), json_decref(mods), json_decref(targets),
            json_decref(meta), json_decref(tes);
        return NULL;
    }
    char flat[512];
    for (size_t i = 0; i < info->n_mods; i++) {
        const struct lora_module *m = &info->mods[i];
        json_object_set_new(mods, m->name, json_integer(m->rank));
        flatten(m->name, strlen(m->name), flat, sizeof flat);
        const char *l = leaf(flat);
        json_t *c = json_object_get(targets, l);
        json_object_set_new(targets, l, json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    static const char *const te_names[] = {"te", "te1", "te2", "te3"};
    for (int i = 0; i < 4; i++)
        if (info->te_parts & (1u << i))
            json_array_append_new(tes, json_string(te_names[i]));
    json_object_set_new(rank, "min", json_integer(info->rank_min));
    json_object_set_new(rank, "max", json_integer(info->rank_max));
    json_object_set_new(rank, "dominant", json_integer(info->rank_dominant));
    json_object_set_new(rank, "modules", mods);

    const struct lora_st *st = info->st;
    const char *v;
    if ((v = meta_first(st, "ss_learning_rate", "ss_unet_lr")))
        json_object_set_new(meta, "learning_rate", json_string(v));
    if ((v = meta_first(st, "ss_num_train_images", NULL)))
        json_object_set_new(meta, "dataset_size", json_string(v));
    if ((v = meta_first(st, "ss_resolution", "modelspec.resolution")))
        json_object_set_new(meta, "resolution", json_string(v));
    if ((v = meta_first(st, "ss_sd_model_name", "modelspec.architecture")) ||
        (v = meta_first(st, "ss_base_model_version", NULL)))
        json_object_set_new(meta, "base_model", json_string(v));
    if ((v = meta_first(st, "modelspec.trigger_phrase", NULL)))
        json_object_set_new(meta, "trigger", json_string(v));
    if (info->declared != LORA_ARCH_UNKNOWN)
        json_object_set_new(meta, "declared_architecture",
                            json_string(lora_arch_name(info->declared)));
    json_t *raw = json_object();
    for (size_t i = 0; raw && i < st->n_meta; i++)
        if (!strncmp(st->meta_keys[i], "ss_", 3) || !strncmp(st->meta_keys[i], "modelspec.", 10))
            json_object_set_new(raw, st->meta_keys[i], json_string(st->meta_vals[i]));
    json_object_set_new(meta, "raw", raw ? raw : json_null());

    json_object_set_new(o, "format", json_string("safetensors"));
    json_object_set_new(o, "architecture", json_string(lora_arch_name(info->arch)));
    json_object_set_new(o, "convention", json_string(lora_conv_name(info->conv)));
    json_object_set_new(o, "modules", json_integer((json_int_t)info->n_mods));
    json_object_set_new(o, "targets", targets);
    json_object_set_new(o, "text_encoders", tes);
    json_object_set_new(o, "hidden", json_integer(info->hidden));
    json_object_set_new(o, "blocks", json_pack("{s:i,s:i}", "double", info->double_blocks,
                                               "single", info->single_blocks));
    json_object_set_new(o, "rank", rank);
    json_object_set_new(o, "alpha", info->alpha_known ? json_real(info->alpha) : json_null());
    json_object_set_new(o, "alpha_source",
                        info->alpha_source ? json_string(info->alpha_source) : json_null());
    json_object_set_new(o, "scale", json_real(info->scale));
    json_object_set_new(o, "metadata", meta);
    json_object_set_new(o, "findings", lora_findings_json(&info->findings));
    return o;
}

/* ---- Routing -------------------------------------------------------------- */

static void
label(const struct lora_info *info, char *out, size_t len)
{
    if (info->arch == LORA_ARCH_FLUX1)
        snprintf(out, len, "FLUX.1 [%s]", info->variant[0] ? info->variant : "dev");
    else
        snprintf(out, len, "%s", lora_arch_name(info->arch));
}

int
lora_fits_backend(const struct lora_info *info, const char *backend_base_model, char *reason,
                  size_t reason_len)
{
    char mine[48];
    label(info, mine, sizeof mine);
    enum lora_arch b = backend_base_model ? lora_arch_parse(backend_base_model)
                                          : LORA_ARCH_UNKNOWN;
    if (info->arch == LORA_ARCH_UNKNOWN) {
        snprintf(reason, reason_len,
                 "the adapter's base model could not be detected; refusing to guess");
        return 0;
    }
    if (!backend_base_model || !*backend_base_model) {
        snprintf(reason, reason_len, "trained on %s; this backend declares no base_model", mine);
        return 0;
    }
    if (b == LORA_ARCH_UNKNOWN) {
        snprintf(reason, reason_len, "trained on %s; this backend runs '%s', not a base model "
                 "imagegate knows", mine, backend_base_model);
        return 0;
    }
    if (b != info->arch) {
        char theirs[48];
        if (b == LORA_ARCH_FLUX1) {
            const char *var = strstr(backend_base_model, "schnell") ? "schnell" : "dev";
            snprintf(theirs, sizeof theirs, "FLUX.1 [%s]", var);
        } else {
            snprintf(theirs, sizeof theirs, "%s", lora_arch_name(b));
        }
        snprintf(reason, reason_len, "trained on %s; this backend runs %s; retrain", mine,
                 theirs);
        return 0;
    }
    if (reason_len)
        reason[0] = 0;
    return 1;
}
