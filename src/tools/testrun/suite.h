/* SPDX-License-Identifier: MIT */
/* suite.h -- the test suite file of 'imagegate test' (docs/testing.md).
 *
 * A suite names a gateway (a config run in-process, or the URL of a running
 * one), a baseline folder and cases. A case is one job (a prompt spec, a raw
 * prompt, or an edit/upscale/cutout with its input images) run on each of
 * its backends for each seed of its seed plane, and the assertions its
 * outputs must meet. Everything the loader refuses is reported as
 * FILE:LINE:COL, all problems at once, like the config loader. */
#ifndef IG_TOOLS_TESTRUN_SUITE_H
#define IG_TOOLS_TESTRUN_SUITE_H

#include <jansson.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"

#define TR_MAX_SEEDS 64            /* per case: a seed plane, not a sweep */

enum tr_drift { TR_DRIFT_FAIL = 0, TR_DRIFT_WARN, TR_DRIFT_REBASELINE };
const char *tr_drift_name(enum tr_drift d);

/* The bounds of one case; a has_ flag says the suite set it. A tier's
 * defaults fill in what the suite leaves unset (tr_case_effective). */
struct tr_assert {
    int has_ssimulacra2, has_ssim, has_phash, has_deltae, has_cost, has_latency, has_bytes;
    double ssimulacra2, ssim, deltae, cost_usd, latency_s;
    int phash;                 /* max Hamming distance */
    int bytes;                 /* 1: the output must hash as the baseline */
    int gate;                  /* 1: the gateway's validation gate must pass */
    char *text;                /* must be read in the image (the gate's OCR check) */
    int width, height;         /* 0: unset */
    char *format;              /* "png" */
    int alpha;                 /* -1 unset, 0 opaque, 1 has transparency */
    char **palette; size_t n_palette;   /* "#rrggbb", each present in the image */
    double palette_deltae;     /* how close a pixel must come (default 10) */
};

struct tr_case {
    char *name;
    int line, col;
    json_t *request;           /* the job without backend, seed and images */
    char *input, *mask;        /* image files (resolved against the suite's folder) */
    char **backends; size_t n_backends;
    int *backend_line, *backend_col;
    long long *seeds; size_t n_seeds;
    struct tr_assert as;
    int has_on_drift;
    enum tr_drift on_drift;
};

struct tr_suite {
    struct ig_arena *arena;    /* owns the strings and arrays */
    char *path, *dir;          /* the suite file and its folder */
    char *config;              /* in-process gateway: its config file */
    char *url, *api_key, *tenant;   /* or a running gateway; api_key is a reference */
    int gateway_line, gateway_col;
    char *baselines;
    int baselines_line, baselines_col;
    enum tr_drift on_drift;
    double max_cost_usd;       /* 0: no cap */
    long timeout_ms;           /* per job */
    struct tr_case *cases; size_t n_cases;
};

/* Loads the suite; NULL with every problem in diags and the first in err
 * (code bad_suite, "FILE:LINE:COL: message"). */
struct tr_suite *tr_suite_load(const char *path, const char *text, size_t len,
                               struct ig_config_diags *diags, struct ig_error *err);
struct tr_suite *tr_suite_load_file(const char *path, struct ig_config_diags *diags,
                                    struct ig_error *err);
void tr_suite_free(struct tr_suite *s);

/* The bounds that apply to a case on a backend of tier t: the suite's,
 * and the tier's defaults where the suite set none (bytes: exact hash;
 * perceptual and fingerprint: SSIMULACRA2 >= 80; none: task checks only). */
void tr_case_effective(const struct tr_case *c, enum ig_tier t, struct tr_assert *out);

#endif
