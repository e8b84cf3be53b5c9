/* SPDX-License-Identifier: MIT */
/* cmd-test.c -- 'imagegate test': reserved in the verb table; it is built by
 * issue #8. Until then it says so and exits with the usage code, so that
 * scripts see a clear refusal rather than a silent success. */
#include "tools/tool.h"

static int
cmd_test_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "imagegate test: not available in this build yet\n");
    return TOOL_USAGE;
}

const struct tool_cmd tool_cmd_test = {
    .name = "test",
    .summary = "run a suite of image assertions in CI (perceptual, drift-aware)",
    .usage = "usage: imagegate test ...\n\nrun a suite of image assertions in CI (perceptual, drift-aware).\nNot available in this build yet.\n",
    .exec = cmd_test_exec,
};
