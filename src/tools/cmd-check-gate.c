/* SPDX-License-Identifier: MIT */
/* cmd-check-gate.c -- 'imagegate check gate CLASS OUTPUT ...': the
 * gateway's validation gate on files, for CI and for trying bounds.
 *
 * The same gate the gateway runs (validate/gate.h), with the bounds of the
 * config given (or the embedded one). The output is what is judged, so an
 * output that does not decode is a failed gate (exit 1, the "decode" check
 * says why); anything wrong with what it is judged against -- an unknown
 * class, an unreadable or corrupt --input or --mask, a missing --input
 * where the class needs one, a mask not the input's size, a bad palette --
 * is an input error (exit 2, with a code). */
#include "tools/check.h"
#include "tools/tool.h"
#include "core/alloc.h"
#include "validate/gate.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct gate_args {
    const char *cls, *output, *input, *mask, *size, *scale, *format, *text, *palette, *config;
    int json;
};

static int
parse_args(int argc, char **argv, struct gate_args *a)
{
    memset(a, 0, sizeof *a);
    static const struct {
        const char *flag;
        size_t off;
    } opts[] = {
        {"--input", offsetof(struct gate_args, input)},
        {"--mask", offsetof(struct gate_args, mask)},
        {"--size", offsetof(struct gate_args, size)},
        {"--scale", offsetof(struct gate_args, scale)},
        {"--format", offsetof(struct gate_args, format)},
        {"--expect-text", offsetof(struct gate_args, text)},
        {"--palette", offsetof(struct gate_args, palette)},
        {"--config", offsetof(struct gate_args, config)},
    };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            a->json = 1;
            continue;
        }
        size_t k = 0;
        while (k < sizeof opts / sizeof *opts && strcmp(argv[i], opts[k].flag) != 0)
            k++;
        if (k < sizeof opts / sizeof *opts) {
            if (i + 1 >= argc)
                return tool_usage_error(&tool_cmd_check, "gate: %s needs a value", argv[i]);
            *(const char **)((char *)a + opts[k].off) = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return tool_usage_error(&tool_cmd_check, "gate: unknown option '%s'", argv[i]);
        } else if (!a->cls) {
            a->cls = argv[i];
        } else if (!a->output) {
            a->output = argv[i];
        } else {
            return tool_usage_error(&tool_cmd_check, "gate takes CLASS and one OUTPUT");
        }
    }
    if (!a->output)
        return tool_usage_error(&tool_cmd_check,
                                "usage: imagegate check gate CLASS OUTPUT [--input IN] [--mask M] "
                                "[--size WxH] [--scale N] [--format FMT] [--expect-text T] "
                                "[--palette '#RRGGBB,...'] [--config FILE] [--json]");
    return 0;
}

/* Reads and decodes an image the output is judged against. */
static struct img *
load(const char *path, const struct ig_config *cfg, const char *what, struct ig_error *err)
{
    char *data = NULL;
    size_t len = 0;
    long max = cfg->limits.max_input_bytes > 0 ? cfg->limits.max_input_bytes : 64L << 20;
    if (tool_read_file(path, (size_t)max, &data, &len, err) != 0)
        return NULL;
    struct img_limits lim;
    img_limits_from_config(&lim, &cfg->limits);
    struct img *im = img_decode(data, len, &lim, err);
    ig_free(data);
    if (!im)
        ig_error_prefix(err, "%s %s: ", what, path);
    return im;
}

static int
build_task(const struct gate_args *a, const struct ig_config *cfg, struct vd_task *t,
           struct img **input, struct img **mask, struct ig_error *err)
{
    if (ig_class_parse(a->cls, &t->cls) != 0)
        return ig_error_set(err, 400, "unknown_class",
                            "unknown class '%.40s': generate, edit, upscale or remove-background",
                            a->cls);
    t->cfg = cfg;
    if (a->size) {
        if (ig_pair_parse(a->size, 'x', IG_SIDE_MAX, &t->want_w, &t->want_h) != 0)
            return ig_error_set(err, 400, "invalid_size", "--size is WIDTHxHEIGHT, not '%.40s'",
                                a->size);
        t->size_exact = 1;
    }
    if (a->scale) {
        char *end;
        long s = strtol(a->scale, &end, 10);
        if (*end || s < 1 || s > 16)
            return ig_error_set(err, 400, "invalid_scale", "--scale is an integer from 1 to 16");
        t->scale = (int)s;
    }
    if (a->format && img_format_parse(a->format, &t->want_format) != 0)
        return ig_error_set(err, 400, "invalid_format", "unknown --format '%.20s'", a->format);
    if (a->palette && vd_palette_parse(a->palette, t, err) != 0)
        return -1;
    t->expect_text = a->text;
    int needs_input = t->cls != IG_CLASS_GENERATE;
    if (needs_input && !a->input)
        return ig_error_set(err, 400, "missing_input", "class %s needs --input",
                            ig_class_name(t->cls));
    if (a->mask && t->cls != IG_CLASS_EDIT)
        return ig_error_set(err, 400, "invalid_request", "--mask is for the edit class only");
    if (a->input && !(*input = load(a->input, cfg, "--input", err)))
        return -1;
    if (a->mask && !(*mask = load(a->mask, cfg, "--mask", err)))
        return -1;
    if (*mask && ((*mask)->width != (*input)->width || (*mask)->height != (*input)->height))
        return ig_error_set(err, 400, "size_mismatch", "the mask is %dx%d, the input %dx%d",
                            (*mask)->width, (*mask)->height, (*input)->width, (*input)->height);
    t->input = *input;
    t->mask = *mask;
    vd_task_derive(t);
    return 0;
}

static void
print_report(const struct vd_report *r)
{
    for (int i = 0; i < r->n; i++) {
        const struct vd_check *c = &r->checks[i];
        printf("%-4s  %-13s %10.4f  bound %-8g %s\n", c->pass ? "pass" : "FAIL", c->name,
               c->score, c->bound, c->note);
    }
    char failed[256];
    vd_report_failed(r, failed, sizeof failed);
    if (r->pass)
        printf("gate: pass\n");
    else
        printf("gate: FAIL (%s)\n", failed);
}

static int
run(const struct gate_args *a, const struct ig_config *cfg, struct ig_error *err)
{
    struct vd_task t;
    memset(&t, 0, sizeof t);
    struct img *input = NULL, *mask = NULL, *output = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = -1;
    struct ig_error derr = {0};
    struct vd_report r;
    if (build_task(a, cfg, &t, &input, &mask, err) != 0)
        goto done;
    long max = cfg->limits.max_input_bytes > 0 ? cfg->limits.max_input_bytes : 64L << 20;
    if (tool_read_file(a->output, (size_t)max, &data, &len, err) != 0)
        goto done;
    struct img_limits lim;
    img_limits_from_config(&lim, &cfg->limits);
    t.format = img_sniff(data, len);
    t.output = output = img_decode(data, len, &lim, &derr);
    t.decode_error = derr.message;
    if (vd_gate_run(&t, &r, err) != 0)
        goto done;
    if (a->json) {
        json_t *j = vd_report_json(&r);
        if (!j) {
            ig_error_set(err, 500, "out_of_memory", "out of memory");
            goto done;
        }
        json_dumpf(j, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(j);
    } else {
        print_report(&r);
    }
    rc = r.pass ? TOOL_OK : TOOL_FAIL;
done:
    ig_free(data);
    img_free(input);
    img_free(mask);
    img_free(output);
    return rc;
}

int
tool_check_gate(int argc, char **argv)
{
    struct gate_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc;
    struct ig_error err = {0};
    struct ig_config_diags diags = {0};
    struct ig_config *cfg = a.config ? ig_config_load_file(a.config, &diags, &err)
                                     : ig_config_load_default(&diags, &err);
    ig_config_diags_free(&diags);
    if (!cfg || img_init(&err) != 0) {
        ig_config_free(cfg);
        return tool_report_error(&tool_cmd_check, &err, a.json);
    }
    rc = run(&a, cfg, &err);
    ig_config_free(cfg);
    return rc < 0 ? tool_report_error(&tool_cmd_check, &err, a.json) : rc;
}
