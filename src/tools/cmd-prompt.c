/* SPDX-License-Identifier: MIT */
/* cmd-prompt.c -- 'imagegate prompt': reserved in the verb table; it is built by
 * issue #4. Until then it says so and exits with the usage code, so that
 * scripts see a clear refusal rather than a silent success. */
#include "tools/tool.h"

static int
cmd_prompt_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "imagegate prompt: not available in this build yet\n");
    return TOOL_USAGE;
}

const struct tool_cmd tool_cmd_prompt = {
    .name = "prompt",
    .summary = "render a prompt spec for a backend's grammar; lint a raw prompt",
    .usage = "usage: imagegate prompt ...\n\nrender a prompt spec for a backend's grammar; lint a raw prompt.\nNot available in this build yet.\n",
    .exec = cmd_prompt_exec,
};
