/* SPDX-License-Identifier: MIT */
/* run.h -- running a suite: the gateway client, baselines, judging, reports.
 *
 * A run is one case on one backend for one seed. The client submits it to
 * the gateway (in-process, or over HTTP) and keeps what came back: the
 * output's bytes and the job's provenance. The judge compares each run
 * with its baseline and the case's bounds, then classifies the case on the
 * backend as a whole: a failed perceptual check is a regression when the
 * fingerprint and build are the baseline's, drift when either changed,
 * flaky when the seed plane disagrees with itself. Reports (terminal,
 * JSON, JUnit, HTML) only read the results. */
#ifndef IG_TOOLS_TESTRUN_RUN_H
#define IG_TOOLS_TESTRUN_RUN_H

#include <jansson.h>

#include "core/buf.h"
#include "tools/testrun/suite.h"

/* ---- The gateway (client.c) ------------------------------------------------- */

struct tr_output {
    int ok;                        /* the job succeeded and has an output */
    char error[600];               /* why not */
    struct ig_buf bytes;           /* the first output, as the backend made it */
    char mime[32];
    json_t *provenance;            /* the job's provenance (owned) */
    double latency_s, cost_usd;
};
void tr_output_clear(struct tr_output *o);

struct tr_gateway;
/* In-process from the suite's config (started with tool_stack), or a
 * client of the suite's URL. Errors name the suite's gateway line. */
struct tr_gateway *tr_gateway_open(const struct tr_suite *s, struct ig_error *err);
/* The config of an in-process gateway; NULL for a URL. */
const struct ig_config *tr_gateway_config(const struct tr_gateway *g);
/* Runs c on backend for seed (has_seed 0: none) and waits for it. Returns
 * -1 only when the gateway could not be asked at all (out->error says);
 * a job that ran and failed is 0 with out->ok 0. Thread-safe. */
int tr_gateway_run(struct tr_gateway *g, const struct tr_case *c, const char *backend,
                   long long seed, struct tr_output *out);
void tr_gateway_close(struct tr_gateway *g);

/* ---- Baselines (baseline.c) ---------------------------------------------------- */

struct tr_baseline {
    int present;
    char image_path[4200], sidecar_path[4200];
    struct ig_buf bytes;
    char sha256[65];
    json_t *sidecar;               /* {case, backend, seed, sha256, mime, provenance} */
};
void tr_baseline_clear(struct tr_baseline *b);
/* The paths of case/backend/seed under dir: <dir>/<case>/<backend>-s<seed>.<ext>. */
void tr_baseline_paths(const char *dir, const char *cas, const char *backend, long long seed,
                       const char *mime, struct tr_baseline *b);
/* Loads a baseline if there is one (present 0 when not). -1 when its files
 * are unreadable, or its sidecar or image corrupt. */
int tr_baseline_load(const char *dir, const char *cas, const char *backend, long long seed,
                     struct tr_baseline *b, struct ig_error *err);
/* Writes the output as the new baseline (image and sidecar). */
int tr_baseline_save(const char *dir, const char *cas, const char *backend, long long seed,
                     const struct tr_output *o, struct ig_error *err);
void tr_sha256_hex(const void *data, size_t len, char out[65]);

/* The fingerprint and model build a provenance reports ("" when none). */
const char *tr_prov_fingerprint(const json_t *prov);
const char *tr_prov_build(const json_t *prov);

/* ---- Judging (judge.c) ------------------------------------------------------------ */

#define TR_MAX_CHECKS 24

struct tr_check {
    char name[24];                 /* "ssimulacra2", "size", ... */
    int pass;
    int unsupported;               /* could not be evaluated here (counts as failed) */
    int perceptual;                /* compares with the baseline's picture */
    int has_value;
    double value, bound;
    char op[4];                    /* ">=", "<=", "==" */
    char detail[200];              /* for non-numeric checks: what was seen */
};

enum tr_status {
    TR_PASS = 0,
    TR_FAILED,                     /* a task check (size, cost, gate...) or the job failed */
    TR_REGRESSION,                 /* same fingerprint and build, the picture changed */
    TR_DRIFT,                      /* fingerprint or build changed */
    TR_FLAKY,                      /* the seed plane disagrees with itself */
    TR_NO_BASELINE,                /* no baseline to compare with */
    TR_SKIPPED                     /* not run: the cost cap was reached */
};
const char *tr_status_name(enum tr_status s);

struct tr_seed_run {
    long long seed;
    struct tr_output out;
    struct tr_baseline base;
    struct tr_check checks[TR_MAX_CHECKS];
    int n_checks;
    int task_ok, picture_ok, drifted;
    struct ig_buf heatmap;         /* PNG of vd_heatmap(baseline, new), when compared */
    int skipped;
};

struct tr_result {
    const struct tr_case *c;
    const char *backend;
    enum ig_tier tier;
    struct tr_assert as;           /* the bounds in force */
    enum tr_drift on_drift;
    struct tr_seed_run *runs;
    size_t n_runs;
    enum tr_status status;
    int failing;                   /* counts against the exit status */
    char message[600];
    char old_fp[64], new_fp[64], old_build[96], new_build[96];
    char baseline_note[1200];       /* what --update-baselines / rebaseline changed */
    int updated;                   /* its baselines were rewritten: no longer failing */
};
void tr_result_clear(struct tr_result *r);

/* Judges one run against its loaded baseline and the bounds in force. */
void tr_judge_run(const struct tr_result *r, struct tr_seed_run *run);
/* Classifies the case on the backend from its judged runs. */
void tr_classify(struct tr_result *r);

/* ---- Reports (report.c) --------------------------------------------------------------- */

struct tr_totals { int passed, failed, drifted; };
void tr_totals(const struct tr_result *res, size_t n, struct tr_totals *t);
json_t *tr_report_json(const struct tr_suite *s, const struct tr_result *res, size_t n);
int tr_report_junit(const char *path, const struct tr_suite *s, const struct tr_result *res,
                    size_t n, double secs, struct ig_error *err);
/* DIR/index.html, self-contained: images as data: URLs. */
int tr_report_html(const char *dir, const struct tr_suite *s, const struct tr_result *res,
                   size_t n, struct ig_error *err);

#endif
