/* SPDX-License-Identifier: MIT */
/* cmd-run.c -- 'imagegate run': reserved in the verb table; it is built by
 * issue #7. Until then it says so and exits with the usage code, so that
 * scripts see a clear refusal rather than a silent success. */
#include "tools/tool.h"

static int
cmd_run_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "imagegate run: not available in this build yet\n");
    return TOOL_USAGE;
}

const struct tool_cmd tool_cmd_run = {
    .name = "run",
    .summary = "run one job without a server (upscale, remove-background, ...)",
    .usage = "usage: imagegate run ...\n\nrun one job without a server (upscale, remove-background, ...).\nNot available in this build yet.\n",
    .exec = cmd_run_exec,
};
