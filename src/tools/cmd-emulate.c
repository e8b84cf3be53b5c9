/* SPDX-License-Identifier: MIT */
/* cmd-emulate.c -- 'imagegate emulate': reserved in the verb table; it is built by
 * issue #5. Until then it says so and exits with the usage code, so that
 * scripts see a clear refusal rather than a silent success. */
#include "tools/tool.h"

static int
cmd_emulate_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "imagegate emulate: not available in this build yet\n");
    return TOOL_USAGE;
}

const struct tool_cmd tool_cmd_emulate = {
    .name = "emulate",
    .summary = "run a local emulator of a vendor's API (openai, bfl, gemini, ...)",
    .usage = "usage: imagegate emulate ...\n\nrun a local emulator of a vendor's API (openai, bfl, gemini, ...).\nNot available in this build yet.\n",
    .exec = cmd_emulate_exec,
};
