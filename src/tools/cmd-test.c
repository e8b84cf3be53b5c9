/* SPDX-License-Identifier: MIT */
/* cmd-test.c -- 'imagegate test': a CI runner for image prompts.
 *
 * It loads a suite (docs/testing.md), checks everything that can be checked
 * before spending money (the baseline folder, the backends against the
 * gateway's config, every baseline's integrity), runs each case on each
 * backend for each seed through the gateway with --jobs at a time under a
 * cost cap, judges the outputs against their baselines, and reports: a line
 * per case and backend, the summary line, and optionally JSON, JUnit XML
 * and an HTML report. Exit 0 when nothing failed (drift under 'warn' or
 * 'rebaseline' is not a failure), 1 when something did, 2 when the suite,
 * the config, the gateway or a baseline is broken. */
#include "tools/tool.h"
#include "core/alloc.h"
#include "tools/testrun/run.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct opts {
    const char *suite, *junit, *report_dir;
    int json, jobs, update;
    double max_cost;
};

/* The run's shared state: the work list, the spend so far, progress. */
struct runner {
    const struct tr_suite *suite;
    struct tr_gateway *gw;
    struct tr_result *res;
    size_t n_res;
    size_t *work;                  /* (result << 8 | run) for every run */
    size_t n_work, next, done;
    double spent, cap;
    int tty;
    FILE *out;
    pthread_mutex_t mu;
};

static double
wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
progress(struct runner *R, const struct tr_result *r, const struct tr_seed_run *run)
{
    if (R->tty) {
        int width = 30, fill = (int)(R->done * (size_t)width / R->n_work);
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-40.40s", fill, "##############################",
                width - fill, "", R->done, R->n_work, r->c->name);
        if (R->done == R->n_work)
            fputs("\r\033[K", stderr);
        fflush(stderr);
    } else {
        fprintf(R->out, "run %s on %s seed %lld: %s (%.2f s)\n", r->c->name, r->backend,
                run->seed, run->skipped ? "skipped, cost cap reached" : run->out.ok ? "ok"
                                                                                    : "job failed",
                run->out.latency_s);
    }
}

static void *
worker(void *arg)
{
    struct runner *R = arg;
    for (;;) {
        pthread_mutex_lock(&R->mu);
        if (R->next >= R->n_work) {
            pthread_mutex_unlock(&R->mu);
            return NULL;
        }
        size_t w = R->work[R->next++];
        int over = R->cap > 0 && R->spent >= R->cap;
        pthread_mutex_unlock(&R->mu);
        struct tr_result *r = &R->res[w >> 8];
        struct tr_seed_run *run = &r->runs[w & 0xff];
        if (over)
            run->skipped = 1;
        else if (tr_gateway_run(R->gw, r->c, r->backend, run->seed, &run->out) != 0 &&
                 !run->out.error[0])
            snprintf(run->out.error, sizeof run->out.error, "the gateway could not be asked");
        pthread_mutex_lock(&R->mu);
        R->spent += run->out.cost_usd;
        R->done++;
        progress(R, r, run);
        pthread_mutex_unlock(&R->mu);
    }
}

static int
run_all(struct runner *R, int jobs)
{
    pthread_t th[64];
    int n = jobs < 1 ? 1 : jobs > 64 ? 64 : jobs, started = 0;
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, worker, R) != 0)
            break;
    if (started == 0)
        worker(R);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    return 0;
}

/* Builds one result per case and backend, checks the backends against an
 * in-process gateway's config and loads the baselines. Returns 0, or -1
 * with err naming the suite's line. */
static int
plan(struct runner *R, const struct opts *o, struct ig_error *err)
{
    const struct tr_suite *s = R->suite;
    const struct ig_config *cfg = tr_gateway_config(R->gw);
    size_t n = 0;
    for (size_t i = 0; i < s->n_cases; i++)
        n += s->cases[i].n_backends;
    R->res = ig_calloc(n ? n : 1, sizeof *R->res);
    R->work = ig_calloc(n ? n * TR_MAX_SEEDS : 1, sizeof *R->work);
    if (!R->res || !R->work)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    for (size_t i = 0; i < s->n_cases; i++) {
        const struct tr_case *c = &s->cases[i];
        for (size_t b = 0; b < c->n_backends; b++) {
            struct tr_result *r = &R->res[R->n_res++];   /* counted now: freed on error */
            r->c = c;
            r->backend = c->backends[b];
            r->on_drift = c->has_on_drift ? c->on_drift : s->on_drift;
            r->tier = IG_TIER_FINGERPRINT;
            if (cfg) {
                const struct ig_backend_cfg *bc = ig_config_backend(cfg, r->backend);
                if (!bc)
                    return ig_error_set(err, 400, "unknown_backend",
                                        "%s:%d:%d: case '%s': backend '%s' is not in %s",
                                        s->path, c->backend_line[b], c->backend_col[b], c->name,
                                        r->backend, s->config);
                r->tier = bc->contract.tier;
            }
            size_t seeds = c->n_seeds ? c->n_seeds : 1;
            r->runs = ig_calloc(seeds, sizeof *r->runs);
            if (!r->runs)
                return ig_error_set(err, 500, "out_of_memory", "out of memory");
            r->n_runs = seeds;
            for (size_t k = 0; k < seeds; k++) {
                struct tr_seed_run *run = &r->runs[k];
                run->seed = c->n_seeds ? c->seeds[k] : 1;
                if (tr_baseline_load(s->baselines, c->name, r->backend, run->seed, &run->base,
                                     err) != 0) {
                    if (o->update) {   /* rewriting is the cure for a broken baseline */
                        tr_baseline_clear(&run->base);
                        ig_error_clear(err);
                    } else {
                        ig_error_prefix(err, "%s:%d:%d: case '%s': ", s->path, c->line, c->col,
                                        c->name);
                        return -1;
                    }
                }
                R->work[R->n_work++] = ((R->n_res - 1) << 8) | k;
            }
        }
    }
    return 0;
}

/* Writes the runs of r as its new baselines and says what changed. */
static void
rebaseline(const struct tr_suite *s, struct tr_result *r, const char *why)
{
    int written = 0, same = 0, failed = 0, ran = 0;
    for (size_t k = 0; k < r->n_runs; k++) {
        struct tr_seed_run *run = &r->runs[k];
        if (!run->out.ok)
            continue;
        ran++;
        char sha[65];
        tr_sha256_hex(run->out.bytes.data, run->out.bytes.len, sha);
        if (run->base.present && !strcmp(sha, run->base.sha256)) {
            same++;
            continue;
        }
        struct ig_error err = {0};
        if (tr_baseline_save(s->baselines, r->c->name, r->backend, run->seed, &run->out, &err)) {
            failed++;
            snprintf(r->baseline_note, sizeof r->baseline_note, "not written: %.400s", err.message);
            continue;
        }
        written++;
    }
    if (failed || !ran)
        return;
    const char *old_fp = r->n_runs && r->runs[0].base.present
                             ? tr_prov_fingerprint(json_object_get(r->runs[0].base.sidecar,
                                                                   "provenance"))
                             : NULL;
    const char *new_fp = r->n_runs ? tr_prov_fingerprint(r->runs[0].out.provenance) : "";
    if (!written)
        snprintf(r->baseline_note, sizeof r->baseline_note, "unchanged (%d seed(s))", same);
    else if (!old_fp)
        snprintf(r->baseline_note, sizeof r->baseline_note, "%s: %d seed(s) recorded%s%s", why,
                 written, new_fp[0] ? " at fingerprint " : "", new_fp);
    else
        snprintf(r->baseline_note, sizeof r->baseline_note,
                 "%s: %d seed(s) rewritten, %d unchanged (was %s; fingerprint %s -> %s)", why,
                 written, same, tr_status_name(r->status), old_fp[0] ? old_fp : "none",
                 new_fp[0] ? new_fp : "none");
    if (r->status != TR_FAILED && r->status != TR_SKIPPED) {
        r->failing = 0;
        r->updated = 1;
    }
}

static void
print_result(FILE *f, const struct tr_result *r)
{
    static const char *const tag[] = {"PASS ", "FAIL ", "REGRESSION", "DRIFT", "FLAKY",
                                      "NO-BASELINE", "SKIPPED"};
    fprintf(f, "%-11s %s on %s: %s\n", r->updated ? "UPDATED" : tag[r->status], r->c->name,
            r->backend, r->message);
    if (r->baseline_note[0])
        fprintf(f, "            baseline %s\n", r->baseline_note);
    if (!r->updated &&
        (r->status == TR_REGRESSION || r->status == TR_FLAKY || r->status == TR_FAILED))
        for (size_t k = 0; k < r->n_runs; k++)
            for (int c = 0; c < r->runs[k].n_checks; c++) {
                const struct tr_check *ck = &r->runs[k].checks[c];
                if (ck->pass && !ck->unsupported)
                    continue;
                if (ck->has_value)
                    fprintf(f, "            seed %lld: %s %.4g, want %s %.4g\n", r->runs[k].seed,
                            ck->name, ck->value, ck->op, ck->bound);
                else
                    fprintf(f, "            seed %lld: %s: %s\n", r->runs[k].seed, ck->name,
                            ck->detail);
            }
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"junit", required_argument, NULL, 'u'},  {"report-dir", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'J'},         {"jobs", required_argument, NULL, 'j'},
        {"max-cost", required_argument, NULL, 'm'},
        {"update-baselines", no_argument, NULL, 'U'}, {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->jobs = 2;
    optind = 1;
    int ch;
    char *end;
    while ((ch = getopt_long(argc, argv, "j:", longs, NULL)) != -1) {
        switch (ch) {
        case 'u': o->junit = optarg; break;
        case 'r': o->report_dir = optarg; break;
        case 'J': o->json = 1; break;
        case 'U': o->update = 1; break;
        case 'j':
            o->jobs = (int)strtol(optarg, &end, 10);
            if (*end || o->jobs < 1 || o->jobs > 64)
                return tool_usage_error(&tool_cmd_test, "--jobs takes 1..64");
            break;
        case 'm':
            o->max_cost = strtod(optarg, &end);
            if (*end || !(o->max_cost > 0) || !isfinite(o->max_cost))
                return tool_usage_error(&tool_cmd_test, "--max-cost takes a positive USD amount");
            break;
        default: return tool_usage_error(&tool_cmd_test, "bad option (see --help)");
        }
    }
    if (optind != argc - 1)
        return tool_usage_error(&tool_cmd_test, "give exactly one suite file");
    o->suite = argv[optind];
    return 0;
}

static int
cmd_test_exec(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return TOOL_USAGE;
    struct ig_error err = {0};
    struct ig_config_diags diags = {0};
    struct tr_suite *s = tr_suite_load_file(o.suite, &diags, &err);
    if (!s) {
        for (size_t i = 0; i < diags.n; i++)
            fprintf(stderr, "%s:%d:%d: %s\n", o.suite, diags.items[i].line, diags.items[i].col,
                    diags.items[i].message);
        ig_config_diags_free(&diags);
        return tool_report_error(&tool_cmd_test, &err, o.json);
    }
    ig_config_diags_free(&diags);
    struct stat st;
    if (stat(s->baselines, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (!o.update || mkdir(s->baselines, 0777) != 0) {
            ig_error_set(&err, 400, "no_baselines",
                         "%s:%d:%d: baseline folder %s does not exist (record baselines with "
                         "--update-baselines)",
                         s->path, s->baselines_line, s->baselines_col, s->baselines);
            tr_suite_free(s);
            return tool_report_error(&tool_cmd_test, &err, o.json);
        }
    }
    struct runner R;
    memset(&R, 0, sizeof R);
    R.suite = s;
    R.cap = o.max_cost > 0 ? o.max_cost : s->max_cost_usd;
    R.out = o.json ? stderr : stdout;
    R.tty = isatty(2);
    pthread_mutex_init(&R.mu, NULL);
    int rc = TOOL_USAGE;
    double t0 = wall_s();
    R.gw = tr_gateway_open(s, &err);
    if (!R.gw || plan(&R, &o, &err) != 0) {
        tool_report_error(&tool_cmd_test, &err, o.json);
        goto out;
    }
    run_all(&R, o.jobs);
    for (size_t i = 0; i < R.n_res; i++) {
        struct tr_result *r = &R.res[i];
        /* Over HTTP the tier is known once the gateway has answered. */
        for (size_t k = 0; !tr_gateway_config(R.gw) && k < r->n_runs; k++) {
            const char *tn = json_string_value(json_object_get(r->runs[k].out.provenance, "tier"));
            for (int t = IG_TIER_BYTES; tn && t <= IG_TIER_NONE; t++)
                if (!strcmp(tn, ig_tier_name((enum ig_tier)t)))
                    r->tier = (enum ig_tier)t;
        }
        tr_case_effective(r->c, r->tier, &r->as);
        for (size_t k = 0; k < r->n_runs; k++)
            tr_judge_run(r, &r->runs[k]);
        tr_classify(r);
        if (o.update)
            rebaseline(s, r, "--update-baselines");
        else if (r->status == TR_DRIFT && r->on_drift == TR_DRIFT_REBASELINE)
            rebaseline(s, r, "rebaselined after drift");
        print_result(R.out, r);
    }
    struct tr_totals t;
    tr_totals(R.res, R.n_res, &t);
    fprintf(R.out, "%d passed, %d failed, %d drifted\n", t.passed, t.failed, t.drifted);
    rc = TOOL_OK;
    for (size_t i = 0; i < R.n_res; i++)
        if (R.res[i].failing)
            rc = TOOL_FAIL;
    if (o.json) {
        json_t *j = tr_report_json(s, R.res, R.n_res);
        if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) != 0) {
            ig_error_set(&err, 500, "out_of_memory", "out of memory writing the JSON report");
            rc = tool_report_error(&tool_cmd_test, &err, 0);
        }
        fputc('\n', stdout);
        json_decref(j);
    }
    if (o.junit && tr_report_junit(o.junit, s, R.res, R.n_res, wall_s() - t0, &err) != 0)
        rc = tool_report_error(&tool_cmd_test, &err, 0);
    if (o.report_dir && tr_report_html(o.report_dir, s, R.res, R.n_res, &err) != 0)
        rc = tool_report_error(&tool_cmd_test, &err, 0);
    else if (o.report_dir)
        fprintf(R.out, "report: %s/index.html\n", o.report_dir);
out:
    for (size_t i = 0; i < R.n_res; i++)
        tr_result_clear(&R.res[i]);
    ig_free(R.res);
    ig_free(R.work);
    tr_gateway_close(R.gw);
    pthread_mutex_destroy(&R.mu);
    tr_suite_free(s);
    return rc;
}

const struct tool_cmd tool_cmd_test = {
    .name = "test",
    .summary = "run a suite of image assertions in CI (perceptual, drift-aware)",
    .usage =
        "usage: imagegate test SUITE.yaml [options]\n"
        "\n"
        "Runs every case of the suite on each of its backends for each seed, through\n"
        "the gateway the suite names, and judges the outputs by perception, not bytes:\n"
        "against stored baselines (SSIMULACRA2, SSIM, pHash, CIEDE2000; exact hash for\n"
        "the bytes tier) and task checks (size, format, alpha, palette, gate, text,\n"
        "cost, latency). A changed picture under the baseline's fingerprint and build\n"
        "is a regression; a changed fingerprint or build is drift; seeds that disagree\n"
        "are flaky. See docs/testing.md.\n"
        "\n"
        "  --junit FILE          write JUnit XML\n"
        "  --report-dir DIR      write DIR/index.html (self-contained: baseline, new\n"
        "                        image, heatmap, scores and provenance per case)\n"
        "  --json                the results as JSON on stdout (lines go to stderr)\n"
        "  -j, --jobs N          runs at a time (default 2)\n"
        "  --max-cost USD        stop starting runs once this much is spent\n"
        "                        (overrides the suite's max_cost_usd)\n"
        "  --update-baselines    record the outputs as the new baselines and say\n"
        "                        what changed\n"
        "\n"
        "Prints one line per case and backend, then 'N passed, N failed, N drifted'.\n"
        "exit codes: 0 all passed (drift under on_drift warn/rebaseline included),\n"
        "1 some failed, 2 the suite, config, gateway or a baseline is broken\n",
    .exec = cmd_test_exec,
};
