/* SPDX-License-Identifier: MIT */
/* report.c -- what a suite run says: totals, JSON, JUnit XML, HTML.
 *
 * Every form is written from the same results, after the run; none of them
 * decides anything. The HTML report is one self-contained file (images
 * inlined as data: URLs, no script, no external style) so that a CI system
 * can keep it as an artifact and anyone can open it years later. */
#include "tools/testrun/run.h"
#include "core/alloc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void
tr_totals(const struct tr_result *res, size_t n, struct tr_totals *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < n; i++) {
        if (res[i].status == TR_DRIFT)
            t->drifted++;
        else if (res[i].failing)
            t->failed++;
        else
            t->passed++;
    }
}

static json_t *
checks_json(const struct tr_seed_run *run)
{
    json_t *a = json_array();
    for (int i = 0; a && i < run->n_checks; i++) {
        const struct tr_check *c = &run->checks[i];
        json_t *o = json_pack("{s:s,s:b,s:b}", "name", c->name, "pass", c->pass && !c->unsupported,
                              "perceptual", c->perceptual);
        if (o && c->has_value) {
            json_object_set_new(o, "value", json_real(c->value));
            json_object_set_new(o, "op", json_string(c->op));
            json_object_set_new(o, "bound", json_real(c->bound));
        }
        if (o && c->detail[0])
            json_object_set_new(o, "detail", json_string(c->detail));
        if (o && c->unsupported)
            json_object_set_new(o, "unsupported", json_true());
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *
tr_report_json(const struct tr_suite *s, const struct tr_result *res, size_t n)
{
    struct tr_totals t;
    tr_totals(res, n, &t);
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        const struct tr_result *r = &res[i];
        json_t *seeds = json_array();
        for (size_t k = 0; seeds && k < r->n_runs; k++) {
            const struct tr_seed_run *run = &r->runs[k];
            json_t *o = json_pack("{s:I,s:o,s:f,s:f,s:s,s:s,s:b}", "seed", (json_int_t)run->seed,
                                  "checks", checks_json(run), "latency_s", run->out.latency_s,
                                  "cost_usd", run->out.cost_usd, "fingerprint",
                                  tr_prov_fingerprint(run->out.provenance), "build",
                                  tr_prov_build(run->out.provenance), "baseline",
                                  run->base.present);
            if (!o || json_array_append_new(seeds, o) != 0) {
                json_decref(seeds);
                seeds = NULL;
            }
        }
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:o}", "case", r->c->name, "backend",
                              r->backend, "tier", ig_tier_name(r->tier), "status",
                              tr_status_name(r->status), "failing", r->failing, "message",
                              r->message, "seeds", seeds ? seeds : json_array());
        if (o && r->status == TR_DRIFT) {
            json_object_set_new(o, "fingerprint",
                                json_pack("{s:s,s:s}", "old", r->old_fp, "new", r->new_fp));
            json_object_set_new(o, "build",
                                json_pack("{s:s,s:s}", "old", r->old_build, "new", r->new_build));
        }
        if (o && r->baseline_note[0])
            json_object_set_new(o, "baseline", json_string(r->baseline_note));
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    if (!list)
        return NULL;
    return json_pack("{s:s,s:i,s:i,s:i,s:o}", "suite", s->path, "passed", t.passed, "failed",
                     t.failed, "drifted", t.drifted, "results", list);
}

/* ---- Escaping ------------------------------------------------------------- */

static void
put_escaped(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, f);
        }
    }
}

static void
put_check(FILE *f, const struct tr_check *c)
{
    if (c->has_value) {
        fprintf(f, "%s %.4g (want ", c->name, c->value);
        put_escaped(f, c->op);
        fprintf(f, " %.4g)", c->bound);
    } else {
        fprintf(f, "%s: ", c->name);
        put_escaped(f, c->detail);
    }
}

/* ---- JUnit ----------------------------------------------------------------- */

int
tr_report_junit(const char *path, const struct tr_suite *s, const struct tr_result *res,
                size_t n, double secs, struct ig_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return ig_error_set(err, 500, "io_error", "cannot write %s: %s", path, strerror(errno));
    struct tr_totals t;
    tr_totals(res, n, &t);
    int failures = 0;
    for (size_t i = 0; i < n; i++)
        failures += res[i].failing;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    fprintf(f, "  <testsuite name=\"");
    put_escaped(f, s->path);
    fprintf(f, "\" tests=\"%zu\" failures=\"%d\" errors=\"0\" skipped=\"0\" time=\"%.3f\">\n", n,
            failures, secs);
    for (size_t i = 0; i < n; i++) {
        const struct tr_result *r = &res[i];
        double time = 0;
        for (size_t k = 0; k < r->n_runs; k++)
            time += r->runs[k].out.latency_s;
        fprintf(f, "    <testcase classname=\"");
        put_escaped(f, r->c->name);
        fprintf(f, "\" name=\"");
        put_escaped(f, r->backend);
        fprintf(f, "\" time=\"%.3f\">\n", time);
        if (r->failing) {
            fprintf(f, "      <failure type=\"%s\" message=\"", tr_status_name(r->status));
            put_escaped(f, r->message);
            fprintf(f, "\">");
        } else {
            fprintf(f, "      <system-out>%s: ", tr_status_name(r->status));
            put_escaped(f, r->message);
        }
        for (size_t k = 0; k < r->n_runs; k++)
            for (int c = 0; c < r->runs[k].n_checks; c++) {
                fprintf(f, "\nseed %lld: %s ", r->runs[k].seed,
                        r->runs[k].checks[c].pass && !r->runs[k].checks[c].unsupported ? "ok  "
                                                                                       : "FAIL");
                put_check(f, &r->runs[k].checks[c]);
            }
        fprintf(f, "\n      </%s>\n    </testcase>\n", r->failing ? "failure" : "system-out");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    if (fclose(f) != 0)
        return ig_error_set(err, 500, "io_error", "cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* ---- HTML ------------------------------------------------------------------- */

static void
put_data_url(FILE *f, const char *mime, const void *data, size_t len)
{
    if (!data || !len)
        return;
    char *b64 = ig_malloc(len / 3 * 4 + 8);
    if (!b64)
        return;
    EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
    fprintf(f, "data:%s;base64,%s", mime, b64);
    ig_free(b64);
}

static void
put_figure(FILE *f, const char *caption, const char *mime, const void *data, size_t len)
{
    fprintf(f, "<figure><figcaption>%s</figcaption>", caption);
    if (data && len) {
        fprintf(f, "<img alt=\"%s\" src=\"", caption);
        put_data_url(f, mime, data, len);
        fprintf(f, "\">");
    } else {
        fprintf(f, "<div class=\"none\">none</div>");
    }
    fprintf(f, "</figure>");
}

static void
put_json(FILE *f, const json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    fprintf(f, "<pre>");
    put_escaped(f, text ? text : "none");
    fprintf(f, "</pre>");
    free(text);
}

static const char css[] =
    "body{font:14px/1.4 sans-serif;margin:24px;background:#fafafa;color:#222}"
    "h1{font-size:20px}section{background:#fff;border:1px solid #ddd;border-radius:6px;"
    "padding:12px 16px;margin:16px 0}h2{font-size:16px;margin:0 0 8px}"
    ".st{display:inline-block;padding:2px 8px;border-radius:4px;color:#fff;font-size:12px;"
    "margin-right:8px}.pass{background:#2e7d32}.failed,.regression,.flaky,.no-baseline,"
    ".skipped{background:#c62828}.drift{background:#ef6c00}"
    ".imgs{display:flex;gap:12px;flex-wrap:wrap}figure{margin:0}figure img{width:256px;"
    "height:auto;border:1px solid #ccc;background:repeating-conic-gradient(#eee 0 25%,#fff 0 "
    "50%) 0 0/16px 16px}.none{width:256px;height:128px;border:1px dashed #bbb;display:flex;"
    "align-items:center;justify-content:center;color:#999}table{border-collapse:collapse;"
    "margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"
    ".ok{color:#2e7d32}.bad{color:#c62828;font-weight:bold}"
    "details pre{max-height:300px;overflow:auto;background:#f4f4f4;padding:8px;font-size:12px}"
    ".prov{display:flex;gap:12px}.prov>div{flex:1;min-width:0}";

int
tr_report_html(const char *dir, const struct tr_suite *s, const struct tr_result *res, size_t n,
               struct ig_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ig_error_set(err, 500, "io_error", "cannot make %s: %s", dir, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return ig_error_set(err, 500, "io_error", "cannot write %s: %s", path, strerror(errno));
    struct tr_totals t;
    tr_totals(res, n, &t);
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>imagegate test: ");
    put_escaped(f, s->path);
    fprintf(f, "</title><style>%s</style></head><body>\n<h1>imagegate test: ", css);
    put_escaped(f, s->path);
    fprintf(f, "</h1><p><b>%d passed, %d failed, %d drifted</b></p>\n", t.passed, t.failed,
            t.drifted);
    for (size_t i = 0; i < n; i++) {
        const struct tr_result *r = &res[i];
        fprintf(f, "<section><h2><span class=\"st %s\">%s</span>", tr_status_name(r->status),
                tr_status_name(r->status));
        put_escaped(f, r->c->name);
        fprintf(f, " on ");
        put_escaped(f, r->backend);
        fprintf(f, " <small>(tier %s)</small></h2><p>", ig_tier_name(r->tier));
        put_escaped(f, r->message);
        if (r->baseline_note[0]) {
            fprintf(f, "<br>baseline: ");
            put_escaped(f, r->baseline_note);
        }
        fprintf(f, "</p>\n");
        for (size_t k = 0; k < r->n_runs; k++) {
            const struct tr_seed_run *run = &r->runs[k];
            fprintf(f, "<h3>seed %lld</h3><div class=\"imgs\">", run->seed);
            const char *bmime = json_string_value(json_object_get(run->base.sidecar, "mime"));
            put_figure(f, "baseline", bmime ? bmime : "image/png", run->base.bytes.data,
                       run->base.bytes.len);
            put_figure(f, "new", run->out.mime, run->out.bytes.data, run->out.bytes.len);
            put_figure(f, "difference (heatmap)", "image/png", run->heatmap.data,
                       run->heatmap.len);
            fprintf(f, "</div><table><tr><th>check</th><th>result</th></tr>");
            for (int c = 0; c < run->n_checks; c++) {
                const struct tr_check *ck = &run->checks[c];
                int ok = ck->pass && !ck->unsupported;
                fprintf(f, "<tr><td>%s</td><td class=\"%s\">%s ", ck->name, ok ? "ok" : "bad",
                        ok ? "pass" : ck->unsupported ? "unsupported" : "FAIL");
                put_check(f, ck);
                fprintf(f, "</td></tr>");
            }
            fprintf(f, "<tr><td>measured latency</td><td>%.2f s</td></tr><tr><td>measured cost</td>"
                       "<td>$%.4f</td>"
                       "</tr></table>\n<details><summary>provenance</summary><div class=\"prov\">"
                       "<div><b>baseline</b>",
                    run->out.latency_s, run->out.cost_usd);
            put_json(f, json_object_get(run->base.sidecar, "provenance"));
            fprintf(f, "</div><div><b>new</b>");
            put_json(f, run->out.provenance);
            fprintf(f, "</div></div></details>\n");
        }
        fprintf(f, "</section>\n");
    }
    fprintf(f, "</body></html>\n");
    if (fclose(f) != 0)
        return ig_error_set(err, 500, "io_error", "cannot write %s: %s", path, strerror(errno));
    return 0;
}
