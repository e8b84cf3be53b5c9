/* SPDX-License-Identifier: MIT */
/* cmd-config.c -- 'imagegate config': check a config, show the embedded one,
 * hash a tenant key for the config's keys list. */
#include "tools/tool.h"
#include "core/alloc.h"
#include "core/config.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

extern const char ig_default_config_yaml[];
extern const size_t ig_default_config_yaml_len;

static int
config_check(int argc, char **argv)
{
    int json = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return tool_usage_error(&tool_cmd_config, "unknown option '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return tool_usage_error(&tool_cmd_config, "config check takes one FILE");
    }
    if (!path)
        return tool_usage_error(&tool_cmd_config, "config check needs a FILE");

    struct ig_error err = {0};
    struct ig_config_diags diags = {0};
    struct ig_config *cfg = ig_config_load_file(path, &diags, &err);
    int rc = cfg ? TOOL_OK : TOOL_USAGE;
    if (json) {
        json_t *arr = json_array(), *o = NULL;
        for (size_t i = 0; arr && i < diags.n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:i,s:i,s:s}", "file", path, "line",
                                                 diags.items[i].line, "col", diags.items[i].col,
                                                 "message", diags.items[i].message));
        if (!cfg && diags.n == 0 && arr)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "file", path, "code", err.code,
                                                 "message", err.message));
        if (arr)
            o = json_pack("{s:b,s:o}", "ok", cfg != NULL, "errors", arr);
        if (o) {
            json_dumpf(o, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_decref(o);
        }
    }
    for (size_t i = 0; i < diags.n; i++)
        fprintf(stderr, "%s:%d:%d: %s\n", path, diags.items[i].line, diags.items[i].col,
                diags.items[i].message);
    if (!cfg && diags.n == 0)
        fprintf(stderr, "%s\n", err.message);
    if (cfg && !json)
        fprintf(stderr, "%s: ok (%zu backends, %zu tenants, %zu ladders)\n", path, cfg->n_backends,
                cfg->n_tenants, cfg->n_ladders);
    ig_config_diags_free(&diags);
    ig_config_free(cfg);
    return rc;
}

static int
hash_key(int argc, char **argv)
{
    if (argc != 2)
        return tool_usage_error(&tool_cmd_config, "config hash-key takes one KEY ('-' reads stdin)");
    char line[1024];
    const char *key = argv[1];
    if (strcmp(key, "-") == 0) {
        if (!fgets(line, sizeof line, stdin))
            return tool_usage_error(&tool_cmd_config, "no key on stdin");
        line[strcspn(line, "\r\n")] = '\0';
        key = line;
    }
    if (!*key)
        return tool_usage_error(&tool_cmd_config, "the key is empty");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "imagegate config: sha256 failed\n");
        return TOOL_USAGE;
    }
    printf("sha256:");
    for (unsigned i = 0; i < mdlen; i++)
        printf("%02x", md[i]);
    putchar('\n');
    return TOOL_OK;
}

static int
cmd_config_exec(int argc, char **argv)
{
    if (argc < 2)
        return tool_usage_error(&tool_cmd_config, "needs a sub-command: check, show, hash-key");
    if (strcmp(argv[1], "check") == 0)
        return config_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0) {
        if (argc > 2)
            return tool_usage_error(&tool_cmd_config, "config show takes no arguments");
        fwrite(ig_default_config_yaml, 1, ig_default_config_yaml_len, stdout);
        return TOOL_OK;
    }
    if (strcmp(argv[1], "hash-key") == 0)
        return hash_key(argc - 1, argv + 1);
    return tool_usage_error(&tool_cmd_config, "unknown sub-command '%s'", argv[1]);
}

const struct tool_cmd tool_cmd_config = {
    .name = "config",
    .summary = "check a config file; show the embedded default; hash a tenant key",
    .usage = "usage: imagegate config check FILE [--json]\n"
             "       imagegate config show\n"
             "       imagegate config hash-key KEY|-\n"
             "\n"
             "check     validate FILE and print every error as FILE:LINE:COL: message;\n"
             "          exit 0 when valid, 2 otherwise. --json prints\n"
             "          {\"ok\":bool,\"errors\":[{\"file\",\"line\",\"col\",\"message\"}]}\n"
             "show      print the embedded default config (a starting point)\n"
             "hash-key  print the sha256:<hex> form of a tenant API key, for the\n"
             "          tenants[].keys list (keys are stored hashed, never in clear)\n",
    .exec = cmd_config_exec,
};
