/* SPDX-License-Identifier: MIT */
/* main.c -- imagegate's entry point: the verb table and its dispatch. */
#include "tools/tool.h"
#include "core/config.h"
#include "validate/gate.h"

#include <errno.h>
#include <string.h>

static const struct tool_cmd *const cmds[] = {
    &tool_cmd_serve, &tool_cmd_emulate, &tool_cmd_check, &tool_cmd_prompt,
    &tool_cmd_test,  &tool_cmd_lora,    &tool_cmd_run,   &tool_cmd_config, NULL};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: imagegate <verb> [options]\n"
            "\n"
            "An image-job gateway: generate, edit, upscale and remove-background jobs\n"
            "routed to vendor APIs and local models through declared contracts,\n"
            "with every output validated before it is served.\n"
            "\n"
            "verbs:\n");
    for (int i = 0; cmds[i]; i++)
        fprintf(out, "  %-9s %s\n", cmds[i]->name, cmds[i]->summary);
    fprintf(out,
            "\n"
            "options:\n"
            "  -h, --help     this text; 'imagegate VERB --help' for a verb\n"
            "  --version      print the version\n"
            "\n"
            "exit codes: 0 ok, 1 a check failed, 2 usage, input or output error\n");
}

/* Exact name first, then a unique prefix (tmux's cmd_find). */
static const struct tool_cmd *
find_cmd(const char *name)
{
    const struct tool_cmd *found = NULL;
    int matches = 0;
    for (int i = 0; cmds[i]; i++) {
        if (strcmp(cmds[i]->name, name) == 0)
            return cmds[i];
        if (strncmp(cmds[i]->name, name, strlen(name)) == 0) {
            found = cmds[i];
            matches++;
        }
    }
    if (matches > 1) {
        fprintf(stderr, "imagegate: ambiguous verb '%s'; it could be:", name);
        for (int i = 0; cmds[i]; i++)
            if (strncmp(cmds[i]->name, name, strlen(name)) == 0)
                fprintf(stderr, " %s", cmds[i]->name);
        fputc('\n', stderr);
        return NULL;
    }
    if (!found)
        fprintf(stderr, "imagegate: unknown verb '%s' (see 'imagegate --help')\n", name);
    return found;
}

/* What a verb printed must have reached stdout: a full disk or a closed
 * pipe is an error (2), not the verb's verdict, which a script would then
 * trust without the output it asked for (coreutils' close_stdout). */
static int
flushed(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "imagegate: cannot write standard output: %s\n", strerror(errno));
        return TOOL_USAGE;
    }
    return rc;
}

static int
run(int argc, char **argv)
{
    ig_config_known_checks(vd_bound_names);
    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return TOOL_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("imagegate %s\n", IG_VERSION);
        return TOOL_OK;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "imagegate: unknown option '%s' (see 'imagegate --help')\n", argv[1]);
        return TOOL_USAGE;
    }
    const struct tool_cmd *cmd = find_cmd(argv[1]);
    if (!cmd)
        return TOOL_USAGE;
    if (tool_wants_help(argc - 1, argv + 1)) {
        fputs(cmd->usage, stdout);
        return TOOL_OK;
    }
    return cmd->exec(argc - 1, argv + 1);
}

int
main(int argc, char **argv)
{
    return flushed(run(argc, argv));
}
