/* SPDX-License-Identifier: MIT */
/* check.h -- the seam between 'imagegate check' and its gate subcommand.
 *
 * cmd-check.c parses compare and hash itself and hands the word "gate" on,
 * so the validation gate's command line lives beside the gate's own code
 * (cmd-check-gate.c) without either file knowing the other's options. */
#ifndef IG_TOOLS_CHECK_H
#define IG_TOOLS_CHECK_H

/* 'imagegate check gate ...': argv[0] is "gate". Returns an exit code of
 * enum tool_rc. */
int tool_check_gate(int argc, char **argv);

#endif
