/* SPDX-License-Identifier: MIT */
/* cmd-prompt.c -- 'imagegate prompt': render a prompt spec for one backend
 * or all of them side by side, and lint a raw prompt against a backend.
 *
 * The backends come from --config FILE or the embedded default config. A
 * bad spec prints every FILE:LINE:COL problem and exits 2; lint exits 1 on
 * an error-level finding. */
#include "tools/tool.h"
#include "core/alloc.h"
#include "core/config.h"
#include "prompt/prompt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct popts {
    const char *spec, *text, *file, *negative, *backend, *config;
    int json, all;
    struct prompt_options ro;
};

static int
parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < -1 || v > 100000)
        return -1;
    *out = (int)v;
    return 0;
}

static int
parse_args(int argc, char **argv, struct popts *o, int render)
{
    memset(o, 0, sizeof *o);
    prompt_options_init(&o->ro);
    int positional = 0;   /* after "--", so a prompt may start with '-' */
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!positional && strcmp(a, "--") == 0) {
            positional = 1;
            takes = 0;
        } else if (positional) {
            takes = 0;
            const char **slot = render ? &o->spec : &o->text;
            if (*slot)
                return tool_usage_error(&tool_cmd_prompt, "one %s only",
                                        render ? "SPEC" : "TEXT");
            *slot = a;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
            takes = 0;
        } else if (strcmp(a, "--all") == 0 && render) {
            o->all = 1;
            takes = 0;
        } else if (strcmp(a, "--structured") == 0 && render) {
            o->ro.structured = 1;
            takes = 0;
        } else if (strcmp(a, "--raw") == 0 && render) {
            o->ro.raw = 1;
            takes = 0;
        } else if (a[0] == '-' && a[1] && !v) {
            return tool_usage_error(&tool_cmd_prompt, "option '%s' needs a value", a);
        } else if (strcmp(a, "--backend") == 0) {
            o->backend = v;
        } else if (strcmp(a, "--config") == 0) {
            o->config = v;
        } else if (strcmp(a, "--clip-vocab") == 0) {
            o->ro.clip_vocab = v;
        } else if (strcmp(a, "--file") == 0 && !render) {
            o->file = v;
        } else if (strcmp(a, "--negative") == 0 && !render) {
            o->negative = v;
        } else if (strcmp(a, "--dialect") == 0 && render) {
            if (strcmp(v, "a1111") == 0)
                o->ro.dialect = PROMPT_DIALECT_A1111;
            else if (strcmp(v, "comfyui") == 0)
                o->ro.dialect = PROMPT_DIALECT_COMFYUI;
            else
                return tool_usage_error(&tool_cmd_prompt, "--dialect is a1111 or comfyui");
        } else if (strcmp(a, "--mj-version") == 0 && render) {
            o->ro.mj_version = strtod(v, NULL);
            if (o->ro.mj_version != 6 && o->ro.mj_version != 6.1 && o->ro.mj_version != 7)
                return tool_usage_error(&tool_cmd_prompt, "--mj-version is 6, 6.1 or 7");
        } else if (strcmp(a, "--stylize") == 0 && render) {
            if (parse_int(v, &o->ro.stylize) != 0 || o->ro.stylize < 0 || o->ro.stylize > 1000)
                return tool_usage_error(&tool_cmd_prompt, "--stylize is 0..1000");
        } else if (strcmp(a, "--chaos") == 0 && render) {
            if (parse_int(v, &o->ro.chaos) != 0 || o->ro.chaos < 0 || o->ro.chaos > 100)
                return tool_usage_error(&tool_cmd_prompt, "--chaos is 0..100");
        } else if (a[0] == '-' && a[1]) {
            return tool_usage_error(&tool_cmd_prompt, "unknown option '%s'", a);
        } else {
            takes = 0;
            const char **slot = render ? &o->spec : &o->text;
            if (*slot)
                return tool_usage_error(&tool_cmd_prompt, "one %s only",
                                        render ? "SPEC" : "TEXT");
            *slot = a;
        }
        i += takes;
    }
    return -1;
}

static void
print_render(const struct prompt_render *r)
{
    printf("== %s (%s, %s%s%s)\n", r->backend, ig_grammar_name(r->grammar), r->family,
           r->dialect ? ", " : "", r->dialect ? r->dialect : "");
    printf("prompt: %s\n", r->prompt ? r->prompt : "");
    if (r->negative_prompt)
        printf("negative: %s\n", r->negative_prompt);
    const struct prompt_params *p = &r->params;
    printf("params:");
    if (p->width)
        printf(" size=%dx%d", p->width, p->height);
    if (p->aspect[0])
        printf(" aspect=%s", p->aspect);
    if (p->has_seed)
        printf(" seed=%llu", p->seed);
    printf(" n=%d calls=%d tier=%s", p->n_per_call, p->calls, ig_tier_name(r->tier));
    if (p->transparent)
        printf(" background=transparent");
    if (r->grammar == IG_GRAMMAR_WEIGHT_SYNTAX)
        printf(" clip_tokens=%d%s", r->clip_tokens, r->clip_exact ? "" : "(estimate)");
    printf("\n");
    for (size_t i = 0; i < r->n_notes; i++)
        printf("  %s: %s\n", prompt_note_kind_name(r->notes[i].kind), r->notes[i].message);
}

static int
prompt_render_cmd(int argc, char **argv)
{
    struct popts o;
    int rc = parse_args(argc, argv, &o, 1);
    if (rc >= 0)
        return rc;
    if (!o.spec)
        return tool_usage_error(&tool_cmd_prompt, "prompt render needs a SPEC file");
    if (!o.backend == !o.all)
        return tool_usage_error(&tool_cmd_prompt, "give --backend NAME or --all");

    struct ig_error err = {0};
    char *text = NULL;
    size_t len = 0;
    if (tool_read_file(o.spec, 1u << 20, &text, &len, &err) != 0)
        return tool_report_error(&tool_cmd_prompt, &err, o.json);
    struct ig_config_diags diags = {0};
    struct prompt_spec *spec = prompt_spec_load(o.spec, text, len, &diags, &err);
    ig_free(text);
    if (!spec) {
        for (size_t i = 0; i < diags.n; i++)
            fprintf(stderr, "%s:%d:%d: %s\n", o.spec, diags.items[i].line, diags.items[i].col,
                    diags.items[i].message);
        ig_config_diags_free(&diags);
        if (o.json)
            tool_report_error(&tool_cmd_prompt, &err, 1);
        return TOOL_USAGE;
    }
    struct ig_config *cfg = tool_load_config(&tool_cmd_prompt, o.config);
    if (!cfg) {
        prompt_spec_free(spec);
        return TOOL_USAGE;
    }
    rc = TOOL_OK;
    json_t *arr = json_array();
    for (size_t i = 0; i < cfg->n_backends && rc == TOOL_OK; i++) {
        const struct ig_backend_cfg *be = &cfg->backends[i];
        if (o.backend ? strcmp(be->name, o.backend) != 0
                      : be->contract.grammar == IG_GRAMMAR_NONE ||
                            !(be->contract.classes & (IG_CLASS_BIT(IG_CLASS_GENERATE) |
                                                      IG_CLASS_BIT(IG_CLASS_EDIT))))
            continue;
        struct prompt_render r;
        if (prompt_render(spec, be, &o.ro, &r, &err) != 0) {
            rc = tool_report_error(&tool_cmd_prompt, &err, o.json);
        } else if (o.json) {
            json_array_append_new(arr, prompt_render_json(&r));
        } else {
            print_render(&r);
        }
        prompt_render_free(&r);
    }
    if (rc == TOOL_OK && o.backend && !ig_config_backend(cfg, o.backend)) {
        ig_error_set(&err, 400, "unknown_backend", "no backend '%s' in %s", o.backend,
                     cfg->source);
        rc = tool_report_error(&tool_cmd_prompt, &err, o.json);
    }
    if (rc == TOOL_OK && o.json) {
        json_t *out = o.all ? arr : json_array_get(arr, 0);
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    }
    json_decref(arr);
    ig_config_free(cfg);
    prompt_spec_free(spec);
    return rc;
}

static int
prompt_lint_cmd(int argc, char **argv)
{
    struct popts o;
    int rc = parse_args(argc, argv, &o, 0);
    if (rc >= 0)
        return rc;
    if (!o.text == !o.file)
        return tool_usage_error(&tool_cmd_prompt, "prompt lint needs TEXT or --file F");
    if (!o.backend)
        return tool_usage_error(&tool_cmd_prompt, "prompt lint needs --backend NAME");
    struct ig_error err = {0};
    char *text = NULL;
    size_t len = 0;
    if (o.file) {
        if (tool_read_file(o.file, 1u << 20, &text, &len, &err) != 0)
            return tool_report_error(&tool_cmd_prompt, &err, o.json);
        if (memchr(text, '\0', len)) {
            ig_free(text);
            ig_error_set(&err, 400, "bad_prompt", "%s contains a NUL byte", o.file);
            return tool_report_error(&tool_cmd_prompt, &err, o.json);
        }
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = '\0';
    }
    struct ig_config *cfg = tool_load_config(&tool_cmd_prompt, o.config);
    if (!cfg) {
        ig_free(text);
        return TOOL_USAGE;
    }
    const struct ig_backend_cfg *be = ig_config_backend(cfg, o.backend);
    if (!be) {
        ig_error_set(&err, 400, "unknown_backend", "no backend '%s' in %s", o.backend,
                     cfg->source);
        ig_free(text);
        ig_config_free(cfg);
        return tool_report_error(&tool_cmd_prompt, &err, o.json);
    }
    struct prompt_lint l;
    prompt_lint_text(text ? text : o.text, o.negative, be, o.ro.clip_vocab, &l);
    if (o.json) {
        json_t *f = json_array();
        for (size_t i = 0; i < l.n; i++)
            json_array_append_new(f, json_pack("{s:s,s:s,s:s}", "level",
                                               prompt_lint_level_name(l.items[i].level), "code",
                                               l.items[i].code, "message", l.items[i].message));
        json_t *out = json_pack("{s:s,s:s,s:s,s:o}", "backend", be->name, "grammar",
                                ig_grammar_name(be->contract.grammar), "detected",
                                ig_grammar_name(l.detected), "findings", f);
        if (out && be->contract.grammar == IG_GRAMMAR_WEIGHT_SYNTAX) {
            json_object_set_new(out, "clip_tokens", json_integer(l.clip_tokens));
            json_object_set_new(out, "clip_tokens_exact", json_boolean(l.clip_exact));
        }
        if (out) {
            json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', stdout);
        }
        json_decref(out);
    } else {
        printf("%s: %s backend; text reads as %s\n", be->name,
               ig_grammar_name(be->contract.grammar), ig_grammar_name(l.detected));
        for (size_t i = 0; i < l.n; i++)
            printf("%s: %s [%s]\n", prompt_lint_level_name(l.items[i].level),
                   l.items[i].message, l.items[i].code);
        if (l.n == 0)
            printf("ok\n");
    }
    rc = prompt_lint_has_error(&l) ? TOOL_FAIL : TOOL_OK;
    ig_free(text);
    ig_config_free(cfg);
    return rc;
}

static int
cmd_prompt_exec(int argc, char **argv)
{
    if (argc < 2)
        return tool_usage_error(&tool_cmd_prompt, "needs 'render' or 'lint'");
    if (strcmp(argv[1], "render") == 0)
        return prompt_render_cmd(argc, argv);
    if (strcmp(argv[1], "lint") == 0)
        return prompt_lint_cmd(argc, argv);
    return tool_usage_error(&tool_cmd_prompt, "unknown subcommand '%s' (render or lint)",
                            argv[1]);
}

const struct tool_cmd tool_cmd_prompt = {
    .name = "prompt",
    .summary = "render a prompt spec for a backend's grammar; lint a raw prompt",
    .usage =
        "usage: imagegate prompt render SPEC (--backend NAME | --all) [--json] [--config FILE]\n"
        "                        [--dialect a1111|comfyui] [--structured] [--mj-version V]\n"
        "                        [--stylize N] [--chaos N] [--raw] [--clip-vocab FILE]\n"
        "       imagegate prompt lint (TEXT | --file F) --backend NAME [--negative TEXT]\n"
        "                        [--json] [--config FILE] [--clip-vocab FILE]\n\n"
        "render compiles a prompt spec (YAML or JSON, docs/prompts.md) into the backend's\n"
        "grammar and parameters and lists what was dropped, translated or truncated.\n"
        "--all renders for every configured backend that takes a prompt.\n"
        "lint says which grammar a raw prompt is written in and what the backend would\n"
        "misread; it exits 1 on an error-level finding.\n"
        "Without --config the embedded default config is used.\n",
    .exec = cmd_prompt_exec,
};
