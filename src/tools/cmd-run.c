/* SPDX-License-Identifier: MIT */
/* cmd-run.c -- 'imagegate run': one job, no server, through the router.
 *
 * The job goes the way a served one does -- ladder, contracts, licence
 * policy, the adapter or local model, the validation gate, provenance -- so
 * what `run` does is what the gateway would do. Only the durability is
 * different: the job store lives in a temporary folder that is removed at
 * the end, because a one-shot command has nothing to resume. Emulators a
 * running `serve` already holds are shared rather than fought over. */
#include "tools/tool.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/log.h"
#include "tools/stack.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct run_opts {
    const char *cls, *input, *output;
    const char *backend, *ladder, *mask, *prompt, *format, *config, *tenant;
    int scale, json;
};

static const struct option long_opts[] = {
    {"backend", required_argument, NULL, 'b'}, {"ladder", required_argument, NULL, 'L'},
    {"scale", required_argument, NULL, 's'},   {"mask", required_argument, NULL, 'm'},
    {"prompt", required_argument, NULL, 'p'},  {"format", required_argument, NULL, 'f'},
    {"config", required_argument, NULL, 'c'},  {"tenant", required_argument, NULL, 't'},
    {"json", no_argument, NULL, 'j'},          {NULL, 0, NULL, 0}};

static int
parse(int argc, char **argv, struct run_opts *o)
{
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "b:L:s:m:p:f:c:t:j", long_opts, NULL)) != -1) {
        switch (c) {
        case 'b': o->backend = optarg; break;
        case 'L': o->ladder = optarg; break;
        case 'm': o->mask = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'f': o->format = optarg; break;
        case 'c': o->config = optarg; break;
        case 't': o->tenant = optarg; break;
        case 'j': o->json = 1; break;
        case 's': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 16)
                return tool_usage_error(&tool_cmd_run, "--scale takes an integer from 1 to 16");
            o->scale = (int)v;
            break;
        }
        default:
            return tool_usage_error(&tool_cmd_run, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 3)
        return tool_usage_error(&tool_cmd_run, "give CLASS INPUT OUTPUT");
    o->cls = argv[optind];
    o->input = argv[optind + 1];
    o->output = argv[optind + 2];
    enum ig_class cls;
    if (ig_class_parse(o->cls, &cls) != 0 || cls == IG_CLASS_GENERATE)
        return tool_usage_error(&tool_cmd_run,
                                "CLASS is one of upscale, remove-background, edit (not '%s')",
                                o->cls);
    if (cls == IG_CLASS_EDIT && !o->prompt)
        return tool_usage_error(&tool_cmd_run, "an edit needs --prompt");
    if (o->backend && o->ladder)
        return tool_usage_error(&tool_cmd_run, "give --backend or --ladder, not both");
    return -1;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Points the config's store at a fresh temporary folder. */
static int
use_scratch_store(struct ig_config *cfg, char dir[PATH_MAX], struct ig_error *err)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, PATH_MAX, "%s/imagegate-run-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return ig_error_set(err, 500, "scratch_failed", "cannot make a folder for the job: %s",
                            strerror(errno));
    /* The config's arena owns its strings; the new one joins them. */
    char *d = ig_arena_strdup(cfg->arena, dir);
    if (!d)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    cfg->server.data_dir = d;
    cfg->store.url = cfg->store.blob_dir = cfg->store.redis = NULL;
    return 0;
}

static json_t *
build_request(const struct run_opts *o, struct store *st, struct ig_error *err)
{
    char in_hex[65], mask_hex[65];
    char *data = NULL;
    size_t len = 0;
    if (tool_read_file(o->input, (size_t)1 << 31, &data, &len, err) != 0)
        return NULL;
    int rc = store_blob_put(st, data, len, in_hex, err);
    ig_free(data);
    if (rc != 0)
        return NULL;
    if (o->mask) {
        if (tool_read_file(o->mask, (size_t)1 << 31, &data, &len, err) != 0)
            return NULL;
        rc = store_blob_put(st, data, len, mask_hex, err);
        ig_free(data);
        if (rc != 0)
            return NULL;
    }
    json_t *req = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s?}", "class", o->cls, "input", in_hex,
                            "mask", o->mask ? mask_hex : NULL, "prompt", o->prompt, "backend",
                            o->backend, "ladder", o->ladder, "output_format", o->format);
    if (req && o->scale)
        json_object_set_new(req, "scale", json_integer(o->scale));
    if (!req)
        ig_error_set(err, 500, "out_of_memory", "out of memory");
    return req;
}

/* Writes the job's first output to path and prints the outcome. Returns the
 * exit code. */
static int
finish(const struct run_opts *o, struct store *st, const char *tenant, const char *id)
{
    struct ig_error err = {0};
    struct store_job sj;
    if (store_job_get(st, id, tenant, &sj, &err) != 0)
        return tool_report_error(&tool_cmd_run, &err, o->json);
    int rc = TOOL_OK;
    json_t *result = sj.result ? json_loads(sj.result, 0, NULL) : NULL;
    json_t *error = sj.error ? json_loads(sj.error, 0, NULL) : NULL;
    if (sj.state != STORE_SUCCEEDED) {
        const char *code = json_string_value(json_object_get(error, "code"));
        const char *msg = json_string_value(json_object_get(error, "message"));
        ig_error_set(&err, 502, code ? code : "job_failed", "job %s %s: %s", id,
                     store_state_name(sj.state), msg ? msg : "no rung could serve it");
        if (o->json) {
            json_t *out = json_pack("{s:s,s:s,s:O?}", "job", id, "state",
                                    store_state_name(sj.state), "error", error);
            json_dumpf(out, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
            json_decref(out);
        }
        fprintf(stderr, "imagegate run: %s [%s]\n", err.message, err.code);
        /* Each rung's own reason: the ladder's verdict alone does not say
         * what to change. */
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(error, "attempts"), i, a) {
            const char *f[] = {"backend", "outcome", "message"}, *v[3];
            for (int k = 0; k < 3; k++) {
                v[k] = json_string_value(json_object_get(a, f[k]));
                v[k] = v[k] ? v[k] : "-";
            }
            fprintf(stderr, "  %s: %s: %s\n", v[0], v[1], v[2]);
        }
        /* A request the router refused as such is the caller's error. */
        rc = code && (strcmp(code, "invalid_request") == 0 || strcmp(code, "no_route") == 0 ||
                      strncmp(code, "image_", 6) == 0 || strstr(code, "_image"))
                 ? TOOL_USAGE
                 : TOOL_FAIL;
        goto out;
    }
    json_t *first = json_array_get(json_object_get(result, "outputs"), 0);
    const char *hex = json_string_value(json_object_get(first, "file"));
    struct ig_buf b = {0};
    if (!hex || store_blob_get(st, hex, &b, &err) != 0) {
        ig_buf_free(&b);
        if (!err.code[0])
            ig_error_set(&err, 500, "no_output", "job %s succeeded without an output", id);
        rc = tool_report_error(&tool_cmd_run, &err, o->json);
        goto out;
    }
    FILE *f = strcmp(o->output, "-") == 0 ? stdout : fopen(o->output, "wb");
    int ok = f && fwrite(b.data, 1, b.len, f) == b.len;
    if (f && f != stdout && fclose(f) != 0)
        ok = 0;
    ig_buf_free(&b);
    if (!ok) {
        ig_error_set(&err, 500, "write_failed", "cannot write %s: %s", o->output, strerror(errno));
        rc = tool_report_error(&tool_cmd_run, &err, o->json);
        goto out;
    }
    json_t *prov = json_object_get(result, "provenance");
    if (o->json) {
        json_t *out = json_pack("{s:s,s:s,s:O?,s:O?}", "job", id, "output", o->output, "image",
                                first, "provenance", prov);
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else {
        fprintf(stderr, "imagegate run: %s -> %s (%lldx%lld, backend %s, tier %s)\n", o->input,
                o->output, (long long)json_integer_value(json_object_get(first, "width")),
                (long long)json_integer_value(json_object_get(first, "height")),
                json_string_value(json_object_get(prov, "backend")),
                json_string_value(json_object_get(prov, "tier")));
    }
out:
    json_decref(result);
    json_decref(error);
    store_job_clear(&sj);
    return rc;
}

static int
cmd_run_exec(int argc, char **argv)
{
    struct run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    struct ig_config *cfg = tool_load_config(&tool_cmd_run, o.config);
    if (!cfg)
        return TOOL_USAGE;
    struct ig_error err = {0};
    const char *tenant = o.tenant ? o.tenant : cfg->n_tenants ? cfg->tenants[0].name : "default";
    if (!ig_config_tenant(cfg, tenant)) {
        ig_error_set(&err, 400, "unknown_tenant", "the config has no tenant '%s'", tenant);
        ig_config_free(cfg);
        return tool_report_error(&tool_cmd_run, &err, o.json);
    }
    char dir[PATH_MAX];
    if (use_scratch_store(cfg, dir, &err) != 0) {
        ig_config_free(cfg);
        return tool_report_error(&tool_cmd_run, &err, o.json);
    }
    /* A one-shot command says what happened in its own words; the
     * engine's info lines are for servers. */
    if (cfg->server.log_level < IG_LOG_WARN)
        cfg->server.log_level = IG_LOG_WARN;
    struct tool_stack t;
    json_t *req = NULL;
    char id[40];
    if (tool_stack_start(&t, cfg, TOOL_STACK_SHARE_EMULATORS, NULL, &err) != 0) {
        rc = tool_report_error(&tool_cmd_run, &err, o.json);
        goto out;
    }
    req = build_request(&o, t.store, &err);
    if (!req || route_gateway_submit(t.gw, tenant, req, NULL, id, &err) < 0) {
        rc = tool_report_error(&tool_cmd_run, &err, o.json);
        tool_stack_stop(&t);
        goto out;
    }
    /* The engine's own deadline ends the job; this only guards against a
     * job that never reports. */
    if (route_gateway_wait(t.gw, id, cfg->limits.job_timeout_ms + 10000) != 1) {
        ig_error_set(&err, 504, "timeout", "job %s did not finish", id);
        rc = tool_report_error(&tool_cmd_run, &err, o.json);
    } else {
        rc = finish(&o, t.store, tenant, id);
    }
    tool_stack_stop(&t);
out:
    json_decref(req);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ig_config_free(cfg);
    return rc;
}

const struct tool_cmd tool_cmd_run = {
    .name = "run",
    .summary = "run one job without a server (upscale, remove-background, edit)",
    .usage =
        "usage: imagegate run CLASS INPUT OUTPUT [options]\n"
        "\n"
        "Runs one job through the router and the validation gate, as the gateway\n"
        "would, and writes its first output to OUTPUT ('-' for stdout). CLASS is\n"
        "upscale, remove-background or edit. The job store is a temporary folder.\n"
        "\n"
        "  --backend NAME   run on this backend only (e.g. local-rdn-slim)\n"
        "  --ladder NAME    run this ladder instead of the tenant's default\n"
        "  --scale N        upscale factor (default: the contract's first)\n"
        "  --prompt TEXT    the edit instruction\n"
        "  --mask FILE      the edit mask\n"
        "  --format F       png, jpeg or webp (default: what the backend returns)\n"
        "  --config FILE    YAML config (default: the embedded one)\n"
        "  --tenant NAME    run as this tenant (default: the config's first)\n"
        "  --json           print the job's provenance as JSON on stdout\n"
        "\n"
        "Exit codes: 0 done, 1 the job failed (every rung failed or was refused),\n"
        "2 usage or input error.\n",
    .exec = cmd_run_exec,
};
