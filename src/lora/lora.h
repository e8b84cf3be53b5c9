/* SPDX-License-Identifier: MIT */
/* lora.h -- what a LoRA file is for, and whether a training spec will work.
 *
 * lora_inspect reads a parsed safetensors file (safetensors.h) and says which
 * key convention it uses, which base architecture its key names, widths and
 * block counts belong to, the rank and alpha of every module, and what its
 * training metadata claims; each inconsistency is a named finding.
 * lora_fits_backend is the router's question: may this adapter run on a
 * backend that serves this base model? lora_lint checks a training spec
 * (YAML) and its dataset folder before anyone spends GPU hours on it. */
#ifndef IG_LORA_LORA_H
#define IG_LORA_LORA_H

#include <jansson.h>
#include <stddef.h>

#include "core/error.h"
#include "lora/safetensors.h"

enum lora_arch {
    LORA_ARCH_UNKNOWN = 0,
    LORA_ARCH_SD15,
    LORA_ARCH_SD2,
    LORA_ARCH_SDXL,
    LORA_ARCH_SD3,
    LORA_ARCH_FLUX1,
    LORA_ARCH_FLUX2_DEV,
    LORA_ARCH_FLUX2_KLEIN_4B,
    LORA_ARCH_FLUX2_KLEIN_9B
};

enum lora_conv {
    LORA_CONV_UNKNOWN = 0,
    LORA_CONV_KOHYA,
    LORA_CONV_PEFT,      /* PEFT / diffusers */
    LORA_CONV_BFL,       /* BFL-native diffusion_model.* names */
    LORA_CONV_LYCORIS
};

enum lora_level { LORA_WARNING, LORA_ERROR };

struct lora_finding {
    enum lora_level level;
    char code[40];
    char message[300];
};

struct lora_findings {
    struct lora_finding *v;
    size_t n, cap;
};

struct lora_module {
    char *name;          /* the key without its role suffix */
    int rank;            /* 0 when no down/A half was found */
    long in, out;        /* layer widths from the down and up halves */
    int has_down, has_up, has_alpha;
    double alpha;
    int part;            /* 0 denoiser, 1..3 text encoder n (0 te = 1) */
};

struct lora_info {
    enum lora_arch arch;
    enum lora_conv conv;
    int mixed_conventions;
    struct lora_module *mods;
    size_t n_mods;
    int rank_min, rank_max, rank_dominant;
    int alpha_known;             /* from .alpha tensors or metadata */
    const char *alpha_source;    /* "tensor", "metadata" or NULL */
    double alpha, scale;
    unsigned te_parts;           /* bit n: text encoder n (bit 0: the single "te") */
    long hidden;                 /* denoiser width the detection used */
    int double_blocks, single_blocks;   /* highest index + 1 seen */
    size_t unmatched;            /* keys no loader would match */
    enum lora_arch declared;     /* from metadata; UNKNOWN when absent */
    char declared_name[96];
    char variant[16];            /* "dev" / "schnell" when metadata says so */
    const struct lora_st *st;
    struct lora_findings findings;
};

const char *lora_arch_name(enum lora_arch a);     /* "FLUX.2 [klein] 4B" */
const char *lora_conv_name(enum lora_conv c);     /* "kohya" */
/* Reads a base model name in any of its spellings ("flux.1-dev",
 * "black-forest-labs/FLUX.2-klein-base-4B", "sdxl_base_v1-0",
 * "stable-diffusion-3-5-large/lora"); UNKNOWN when it is none of ours. */
enum lora_arch lora_arch_parse(const char *s);

int lora_inspect(const struct lora_st *st, struct lora_info *info, struct ig_error *err);
void lora_info_free(struct lora_info *info);
/* The --json shape: format, architecture, convention, rank, alpha, scale,
 * metadata, findings. NULL when out of memory. */
json_t *lora_info_json(const struct lora_info *info);
int lora_findings_has_error(const struct lora_findings *f);
int lora_finding_add(struct lora_findings *f, enum lora_level level, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void lora_findings_free(struct lora_findings *f);
json_t *lora_findings_json(const struct lora_findings *f);

/* 1 when the adapter may run on a backend serving backend_base_model, else 0
 * with the reason, e.g. "trained on FLUX.1 [dev]; this backend runs
 * FLUX.2 [dev]; retrain". */
int lora_fits_backend(const struct lora_info *info, const char *backend_base_model, char *reason,
                      size_t reason_len);

/* ---- Training-spec lint (lint.c) ---- */
struct lora_lint_opts {
    const char *dataset_dir;     /* overrides the spec's dataset.path */
    const char *dict_path;       /* NULL: /usr/share/dict/american-english */
};

/* Loads SPEC (YAML) and checks it; findings go to out. Returns -1 with
 * err (code bad_spec, "FILE:LINE:COL: ..." messages) when the spec itself
 * cannot be read, else 0 (findings may still hold errors). */
int lora_lint(const char *spec_path, const struct lora_lint_opts *opts, struct lora_findings *out,
              struct ig_error *err);

#endif
