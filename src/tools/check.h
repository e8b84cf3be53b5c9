/* SPDX-License-Identifier: MIT */
/* check.h -- the sub-verbs of 'imagegate check', each in its own file,
 * dispatched by cmd-check.c. argv[0] is the sub-verb ("gate"). */
#ifndef IG_TOOLS_CHECK_H
#define IG_TOOLS_CHECK_H

int tool_check_gate(int argc, char **argv);

#endif
