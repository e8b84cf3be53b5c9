/* SPDX-License-Identifier: MIT */
/* cmd-lora.c -- 'imagegate lora': inspect LoRA files, lint training specs.
 *
 * inspect maps a .safetensors file, parses its header under limits and
 * prints what lora_inspect found; lint checks a training spec and its
 * dataset folder. Both print findings (level, code, message) and exit 1 when
 * one is an error, 2 when the input itself is unusable. */
#include "tools/tool.h"

#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "lora/lora.h"

static const struct tool_cmd *self(void);

static void
print_findings(const struct lora_findings *f)
{
    for (size_t i = 0; i < f->n; i++)
        printf("%-7s %-24s %s\n", f->v[i].level == LORA_ERROR ? "error" : "warning",
               f->v[i].code, f->v[i].message);
    if (!f->n)
        printf("no findings\n");
}

static void
print_info(const struct lora_info *info, json_t *j)
{
    printf("architecture  %s", lora_arch_name(info->arch));
    if (info->hidden)
        printf(" (hidden %ld, %d double / %d single blocks seen)", info->hidden,
               info->double_blocks, info->single_blocks);
    printf("\nconvention    %s\nmodules       %zu\n", lora_conv_name(info->conv), info->n_mods);
    printf("rank          %d", info->rank_dominant);
    if (info->rank_min != info->rank_max)
        printf(" (min %d, max %d)", info->rank_min, info->rank_max);
    if (info->alpha_known)
        printf("\nalpha         %g (from %s)\n", info->alpha, info->alpha_source);
    else
        printf("\nalpha         none\n");
    printf("scale         %g\n", info->scale);
    json_t *te = json_object_get(j, "text_encoders");
    printf("text encoders ");
    if (!json_array_size(te))
        printf("none");
    for (size_t i = 0; i < json_array_size(te); i++)
        printf("%s%s", i ? ", " : "", json_string_value(json_array_get(te, i)));
    printf("\ntargets      ");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(j, "targets"), k, v)
        printf(" %s x%lld", k, (long long)json_integer_value(v));
    printf("\n");
    json_object_foreach(json_object_get(j, "metadata"), k, v)
        if (json_is_string(v))
            printf("%-13s %s\n", k, json_string_value(v));
    print_findings(&info->findings);
}

static int
do_inspect(int argc, char **argv)
{
    const char *file = NULL;
    int json = 0;
    struct lora_st_limits lim = {0};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--max-header-bytes") && i + 1 < argc) {
            char *end;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end || !v)
                return tool_usage_error(self(), "--max-header-bytes takes a positive integer");
            lim.max_header_bytes = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return tool_usage_error(self(), "unknown option '%s'", argv[i]);
        } else if (file) {
            return tool_usage_error(self(), "inspect takes one file");
        } else {
            file = argv[i];
        }
    }
    if (!file)
        return tool_usage_error(self(), "inspect needs a FILE.safetensors");
    struct lora_st st;
    struct lora_info info;
    struct ig_error err = {0};
    if (lora_st_open(file, &lim, &st, &err) != 0)
        return tool_report_error(self(), &err, json);
    if (lora_inspect(&st, &info, &err) != 0) {
        lora_st_free(&st);
        return tool_report_error(self(), &err, json);
    }
    json_t *j = lora_info_json(&info);
    int rc = lora_findings_has_error(&info.findings) ? TOOL_FAIL : TOOL_OK;
    if (!j) {
        rc = TOOL_USAGE;
        fprintf(stderr, "imagegate lora: out of memory\n");
    } else if (json) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    } else {
        print_info(&info, j);
    }
    json_decref(j);
    lora_info_free(&info);
    lora_st_free(&st);
    return rc;
}

static int
do_lint(int argc, char **argv)
{
    const char *spec = NULL;
    int json = 0;
    struct lora_lint_opts o = {0};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--dataset") && i + 1 < argc)
            o.dataset_dir = argv[++i];
        else if (!strcmp(argv[i], "--dict") && i + 1 < argc)
            o.dict_path = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return tool_usage_error(self(), "unknown option '%s'", argv[i]);
        else if (spec)
            return tool_usage_error(self(), "lint takes one SPEC.yaml");
        else
            spec = argv[i];
    }
    if (!spec)
        return tool_usage_error(self(), "lint needs a SPEC.yaml");
    struct ig_error err = {0};
    if (img_init(&err) != 0)
        return tool_report_error(self(), &err, json);
    struct lora_findings f;
    if (lora_lint(spec, &o, &f, &err) != 0)
        return tool_report_error(self(), &err, json);
    int rc = lora_findings_has_error(&f) ? TOOL_FAIL : TOOL_OK;
    if (json) {
        json_t *j = json_pack("{s:o}", "findings", lora_findings_json(&f));
        if (j)
            json_dumpf(j, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(j);
    } else {
        print_findings(&f);
    }
    lora_findings_free(&f);
    return rc;
}

static int
cmd_lora_exec(int argc, char **argv)
{
    if (tool_wants_help(argc, argv)) {
        fputs(self()->usage, stdout);
        return TOOL_OK;
    }
    if (argc < 2)
        return tool_usage_error(self(), "expected 'inspect' or 'lint'");
    if (!strcmp(argv[1], "inspect"))
        return do_inspect(argc, argv);
    if (!strcmp(argv[1], "lint"))
        return do_lint(argc, argv);
    return tool_usage_error(self(), "unknown subcommand '%s' (expected inspect or lint)", argv[1]);
}

const struct tool_cmd tool_cmd_lora = {
    .name = "lora",
    .summary = "inspect LoRA safetensors files and lint training specs",
    .usage =
        "usage: imagegate lora inspect FILE.safetensors [--json] [--max-header-bytes N]\n"
        "       imagegate lora lint SPEC.yaml [--dataset DIR] [--json] [--dict WORDLIST]\n"
        "\n"
        "inspect: key convention, base architecture, rank, alpha and scale per module,\n"
        "training metadata, and named findings. lint: trainer support, dataset size,\n"
        "resolution, duplicates, lighting and background variety, captions, trigger,\n"
        "rank, alpha and learning rate. Exit 0 ok, 1 an error finding, 2 bad input.\n"
        "See docs/lora.md.\n",
    .exec = cmd_lora_exec,
};

static const struct tool_cmd *
self(void)
{
    return &tool_cmd_lora;
}
