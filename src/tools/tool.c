/* SPDX-License-Identifier: MIT */
/* tool.c -- helpers every verb shares: help detection, errors, file input. */
#include "tools/tool.h"
#include "core/alloc.h"
#include "core/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>

int
tool_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

int
tool_usage_error(const struct tool_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "imagegate %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'imagegate %s --help')\n", cmd->name);
    return TOOL_USAGE;
}

int
tool_report_error(const struct tool_cmd *cmd, const struct ig_error *e, int json)
{
    if (json) {
        json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", e->code, "message", e->message);
        if (o) {
            json_dumpf(o, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_decref(o);
        }
    }
    fprintf(stderr, "imagegate %s: %s [%s]\n", cmd->name, e->message, e->code);
    return TOOL_USAGE;
}

int
tool_read_file(const char *path, size_t max, char **data, size_t *len, struct ig_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return ig_error_set(err, 400, "file_unreadable", "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        void *p = buf;
        if (ig_grow(&p, &cap, n + 65536, 1) != 0) {
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory reading %s", path);
            break;
        }
        buf = p;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > max) {
            rc = ig_error_set(err, 413, "input_too_large", "%s is larger than %zu bytes", path, max);
            break;
        }
        if (got == 0) {
            if (ferror(f))
                rc = ig_error_set(err, 400, "file_unreadable", "%s: read error", path);
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        ig_free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

struct ig_config *
tool_load_config(const struct tool_cmd *cmd, const char *path)
{
    struct ig_error err = {0};
    struct ig_config_diags diags = {0};
    struct ig_config *cfg = path ? ig_config_load_file(path, &diags, &err)
                                 : ig_config_load_default(&diags, &err);
    if (!cfg) {
        for (size_t i = 0; i < diags.n; i++)
            fprintf(stderr, "%s:%d:%d: %s\n", path ? path : "<embedded>", diags.items[i].line,
                    diags.items[i].col, diags.items[i].message);
        tool_report_error(cmd, &err, 0);
    }
    ig_config_diags_free(&diags);
    return cfg;
}
