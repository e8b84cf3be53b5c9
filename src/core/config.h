/* SPDX-License-Identifier: MIT */
/* config.h -- the gateway's configuration: backends and their contracts,
 * tenants, ladders, limits and validation thresholds.
 *
 * A config is loaded from YAML (a file, or the embedded default) into flat
 * structs that live as long as the config. Loading never stops at the first
 * problem: every error is collected with its FILE:LINE:COL so that
 * `imagegate config check` can report them all at once. */
#ifndef IG_CORE_CONFIG_H
#define IG_CORE_CONFIG_H

#include <stdarg.h>
#include <stddef.h>

#include "core/error.h"

/* ---- Job classes ------------------------------------------------------ */
enum ig_class {
    IG_CLASS_GENERATE = 0,
    IG_CLASS_EDIT,
    IG_CLASS_UPSCALE,
    IG_CLASS_REMOVE_BACKGROUND,
    IG_CLASS_COUNT
};
#define IG_CLASS_BIT(c) (1u << (c))
const char *ig_class_name(enum ig_class c);
int ig_class_parse(const char *s, enum ig_class *out);   /* 0 or -1 */

/* ---- Contract: what a backend promises --------------------------------- */
enum ig_tier {            /* strongest first; see DESIGN.md */
    IG_TIER_BYTES = 0,
    IG_TIER_PERCEPTUAL,
    IG_TIER_FINGERPRINT,
    IG_TIER_NONE
};
const char *ig_tier_name(enum ig_tier t);

enum ig_grammar {
    IG_GRAMMAR_NONE = 0,          /* takes no prompt (upscale, cutout) */
    IG_GRAMMAR_WEIGHT_SYNTAX,     /* CLIP-based SD 1.5 / SDXL */
    IG_GRAMMAR_PARAMETER_FLAG,    /* Midjourney */
    IG_GRAMMAR_NATURAL_LANGUAGE   /* FLUX, GPT Image, Gemini, SD 3.5 */
};
const char *ig_grammar_name(enum ig_grammar g);

enum ig_cap {             /* what a backend accepts besides the prompt */
    IG_CAP_SEED            = 1u << 0,
    IG_CAP_NEGATIVE_PROMPT = 1u << 1,
    IG_CAP_MASK            = 1u << 2,
    IG_CAP_REFERENCE_IMAGES= 1u << 3,
    IG_CAP_TRANSPARENCY    = 1u << 4,
    IG_CAP_N               = 1u << 5   /* several images per call */
};

enum ig_license_flag {
    IG_LIC_COMMERCIAL     = 1u << 0,   /* commercial use allowed */
    IG_LIC_ATTRIBUTION    = 1u << 1,   /* attribution required */
    IG_LIC_COPYLEFT       = 1u << 2,
    IG_LIC_NONCOMMERCIAL  = 1u << 3
};

enum ig_price_model {
    IG_PRICE_FREE = 0,
    IG_PRICE_PER_IMAGE,        /* flat, or by size and quality */
    IG_PRICE_PER_MEGAPIXEL,
    IG_PRICE_PER_CREDIT
};

struct ig_size { int w, h; };

#define IG_SIDE_MAX 16384

/* "A<sep>B": two decimal numbers of 1..max and nothing after them; *a
 * and *b are left alone unless it is one. 0, or -1. */
int ig_pair_parse(const char *s, char sep, int max, int *a, int *b);
/* "WIDTHxHEIGHT": two decimal sides of 1..IG_SIDE_MAX and nothing after
 * them. 0, or -1 for anything else. */
int ig_size_parse(const char *s, struct ig_size *out);

struct ig_price_row {          /* one row of a per-image price table */
    char  *size;               /* "1024x1024" or NULL for any */
    char  *quality;            /* "high" or NULL for any */
    double usd;
};

struct ig_contract {
    unsigned classes;                  /* IG_CLASS_BIT set */
    /* Sizes: an explicit list, or a range with a step. */
    struct ig_size *sizes; size_t n_sizes;
    int   min_side, max_side, size_multiple;
    long  max_pixels;
    long  max_output_pixels;           /* upscale: input pixels x scale^2 at most (0: any) */
    char **aspects; size_t n_aspects;  /* "1:1", "16:9"; empty = any */
    int   scales[8]; size_t n_scales;  /* upscale factors */
    unsigned caps;                     /* enum ig_cap bits */
    enum ig_grammar grammar;
    int   prompt_max_chars;
    enum ig_tier tier;
    char *base_model;                  /* optional: "FLUX.2 [dev]"; LoRA jobs must match it */
    struct {
        char    *id;                   /* SPDX-style, "MIT", "proprietary" */
        unsigned flags;                /* enum ig_license_flag bits */
        char    *note;
    } license;
    struct {
        enum ig_price_model model;
        double usd;                    /* per image, per MP or per credit */
        double credits_per_image;
        struct ig_price_row *rows; size_t n_rows;
    } price;
    struct {
        int rpm, ipm, concurrency;     /* 0 = unlimited */
        int connect_timeout_ms, response_timeout_ms, total_timeout_ms;
    } limits;
};

/* ---- Backend ----------------------------------------------------------- */
struct ig_backend_cfg {
    char *name;
    char *adapter;          /* "openai", "bfl", ..., "local-rdn" */
    char *endpoint;         /* base URL; NULL for local adapters */
    char *credential;       /* a reference: "env:OPENAI_API_KEY"; never the secret */
    char *model;            /* vendor model name or local model id */
    char *model_path;       /* local models: where the files are */
    int   emulated;         /* talks to an imagegate emulator */
    struct ig_contract contract;
    int   line, col;        /* where it was declared, for later messages */
};

/* ---- Tenants ----------------------------------------------------------- */
struct ig_tenant_cfg {
    char  *name;
    char **key_hashes; size_t n_key_hashes;   /* "sha256:<hex>" */
    char **allowed_backends; size_t n_allowed; /* empty = all */
    struct {
        int require_commercial;
        int deny_copyleft;
        int deny_noncommercial;
        int deny_attribution;
    } license_policy;
    double budget_daily_usd, budget_monthly_usd;   /* 0 = no ceiling */
    int rpm, ipm, concurrency;
    char *webhook_secret;     /* reference to the key webhooks are signed with */
    int line, col;
};

/* ---- Ladders ----------------------------------------------------------- */
struct ig_rung {
    char *backend;
    int   retries;      /* transport retries on the same rung */
    int   reseeds;      /* new seeds after a validation failure */
    int   line, col;
};

struct ig_ladder_cfg {
    char *name;
    enum ig_class cls;
    char *tenant;       /* NULL: the default for the class */
    struct ig_rung *rungs; size_t n_rungs;
    int line, col;
};

/* ---- Limits ------------------------------------------------------------ */
struct ig_limits {
    long   max_body_bytes;
    long   max_header_bytes;   /* an HTTP connection's memory: its request line and headers */
    long   max_input_bytes;    /* one encoded image */
    int    max_width, max_height;
    long   max_pixels;
    long   max_decoded_bytes;
    int    max_json_depth;
    int    max_attempts;
    int    job_timeout_ms;
    int    request_timeout_ms;
};

/* ---- Validation thresholds: per class, check name -> bound ------------- */
struct ig_threshold {
    enum ig_class cls;
    char  *check;
    double bound;
};

struct ig_server_cfg {
    char *listen;        /* "127.0.0.1:8080" */
    char *data_dir;
    int   threads;       /* HTTP threads */
    int   workers;       /* job worker threads */
    int   log_level;     /* 0 debug, 1 info, 2 warn, 3 error */
    char *signing_key;   /* reference (env:NAME, file:PATH) to the file-URL key */
    int   relay_off;     /* relay: auto (0) relays where nothing differs; off (1) never */
    int   sched_normal;  /* sched: batch (0) runs serve's threads as SCHED_BATCH; normal (1) */
};

/* Where shared state lives (docs/scaling.md). */
struct ig_store_cfg {
    char *url;           /* a SQLite directory (default: server.data_dir) or a
                          * postgresql:// URL, or a reference to one (env:NAME) */
    char *blob_dir;      /* content-addressed outputs (default: data_dir/blobs) */
    char *redis;         /* HOST:PORT for cluster-wide limits; NULL: in memory */
};

/* Outbound fetches of URLs users give (input images, webhooks). */
struct ig_fetch_cfg {
    int allow_http;      /* plain http:// besides https:// */
    int allow_loopback;
    int allow_private;
    int timeout_ms;
};

struct ig_gate_cfg {
    int enabled;         /* 0: outputs are checked to decode, nothing more */
};

struct ig_arena;

struct ig_config {
    struct ig_arena *arena;   /* owns every string and array below */
    char *source;        /* file name, or "<embedded>" */
    struct ig_server_cfg server;
    struct ig_store_cfg store;
    struct ig_gate_cfg gate;
    struct ig_fetch_cfg fetch;
    struct ig_limits limits;
    struct ig_backend_cfg *backends; size_t n_backends;
    struct ig_tenant_cfg *tenants; size_t n_tenants;
    struct ig_ladder_cfg *ladders; size_t n_ladders;
    struct ig_threshold *thresholds; size_t n_thresholds;
};

/* One problem found while loading, already formatted as FILE:LINE:COL. */
struct ig_config_diag {
    int  line, col;
    char message[400];
};

struct ig_config_diags {
    struct ig_config_diag *items;
    size_t n, cap;
};

/* Load YAML text. Returns the config, or NULL with every problem in diags
 * (and a summary in err). name is used in messages. */
struct ig_config *ig_config_load(const char *name, const char *text, size_t len,
                                 struct ig_config_diags *diags, struct ig_error *err);
struct ig_config *ig_config_load_file(const char *path, struct ig_config_diags *diags,
                                      struct ig_error *err);
/* The config compiled into the binary. */
struct ig_config *ig_config_load_default(struct ig_config_diags *diags, struct ig_error *err);
void ig_config_free(struct ig_config *cfg);
void ig_config_diags_free(struct ig_config_diags *d);
/* Adds a diagnostic at line:col (1-based). -1 when out of memory. Every
 * YAML loader (config, prompt specs, test suites) reports through it. */
int ig_config_diag_vadd(struct ig_config_diags *d, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

const struct ig_backend_cfg *ig_config_backend(const struct ig_config *cfg, const char *name);
const struct ig_tenant_cfg *ig_config_tenant(const struct ig_config *cfg, const char *name);
/* The ladder for a class: the tenant's own if it has one, else the default. */
const struct ig_ladder_cfg *ig_config_ladder(const struct ig_config *cfg, enum ig_class cls,
                                             const char *tenant);
const struct ig_ladder_cfg *ig_config_ladder_named(const struct ig_config *cfg, const char *name);
/* The configured bound for a check, or dflt when the config names none. */
/* The check names the validation section may bound (NULL-terminated); a
 * name outside it is a FILE:LINE:COL error. The validation gate owns the
 * list and the binary hands it over before loading; NULL (the default)
 * accepts any name. */
void ig_config_known_checks(const char *const *names);
double ig_config_threshold(const struct ig_config *cfg, enum ig_class cls, const char *check,
                           double dflt);

/* Does the contract accept a w x h output? */
int ig_contract_accepts_size(const struct ig_contract *c, int w, int h);

/* The adapter kinds a config may name (the backends part registers the
 * implementations; the config only has to know the names). */
extern const char *const ig_adapter_kinds[];

#endif
