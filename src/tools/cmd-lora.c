/* SPDX-License-Identifier: MIT */
/* cmd-lora.c -- 'imagegate lora': reserved in the verb table; it is built by
 * issue #9. Until then it says so and exits with the usage code, so that
 * scripts see a clear refusal rather than a silent success. */
#include "tools/tool.h"

static int
cmd_lora_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "imagegate lora: not available in this build yet\n");
    return TOOL_USAGE;
}

const struct tool_cmd tool_cmd_lora = {
    .name = "lora",
    .summary = "inspect LoRA safetensors files and lint training specs",
    .usage = "usage: imagegate lora ...\n\ninspect LoRA safetensors files and lint training specs.\nNot available in this build yet.\n",
    .exec = cmd_lora_exec,
};
