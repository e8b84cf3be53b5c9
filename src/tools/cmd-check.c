/* SPDX-License-Identifier: MIT */
/* cmd-check.c -- 'imagegate check': reserved in the verb table; it is built by
 * issue #3. Until then it says so and exits with the usage code, so that
 * scripts see a clear refusal rather than a silent success. */
#include "tools/tool.h"

static int
cmd_check_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "imagegate check: not available in this build yet\n");
    return TOOL_USAGE;
}

const struct tool_cmd tool_cmd_check = {
    .name = "check",
    .summary = "compare images perceptually, hash them, run the validation gate",
    .usage = "usage: imagegate check ...\n\ncompare images perceptually, hash them, run the validation gate.\nNot available in this build yet.\n",
    .exec = cmd_check_exec,
};
