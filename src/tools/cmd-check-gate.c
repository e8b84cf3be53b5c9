/* SPDX-License-Identifier: MIT */
/* cmd-check-gate.c -- 'imagegate check gate': a stand-in. The validation
 * gate and its command line are built on their own branch, which replaces
 * this file; until then the subcommand refuses clearly with the usage
 * code, so a script never mistakes it for a passed gate. */
#include "tools/check.h"
#include "tools/tool.h"

int
tool_check_gate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "imagegate check gate: not built on this branch\n");
    return TOOL_USAGE;
}
