/* SPDX-License-Identifier: MIT */
/* tool.h -- the command-line verbs.
 *
 * tmux's cmd_entry shape: each verb is one file, src/tools/cmd-<verb>.c,
 * exporting one const struct tool_cmd; main.c holds the table and dispatches
 * with unique-prefix matching. Every exec returns an exit code from
 * enum tool_rc: the conventions are the same for all verbs. Messages go to
 * stderr; machine output (--json) to stdout. */
#ifndef IG_TOOLS_TOOL_H
#define IG_TOOLS_TOOL_H

#include <stdio.h>

#include "core/error.h"

enum tool_rc {
    TOOL_OK = 0,        /* done; a check passed */
    TOOL_FAIL = 1,      /* a check ran and failed */
    TOOL_USAGE = 2      /* usage or input error */
};

struct tool_cmd {
    const char *name;
    const char *summary;   /* one line, for imagegate --help */
    const char *usage;     /* full text for imagegate VERB --help */
    int (*exec)(int argc, char **argv);   /* argv[0] is the verb */
};

extern const struct tool_cmd tool_cmd_serve, tool_cmd_emulate, tool_cmd_check, tool_cmd_prompt,
    tool_cmd_test, tool_cmd_lora, tool_cmd_run, tool_cmd_config;

/* True when argv asks for help (-h or --help anywhere before "--"). */
int tool_wants_help(int argc, char **argv);
/* Prints "imagegate VERB: message" to stderr and returns TOOL_USAGE. */
int tool_usage_error(const struct tool_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reports an error: as {"error":{"code","message"}} on stdout with --json,
 * else as "imagegate VERB: message [code]" on stderr. Returns TOOL_USAGE. */
int tool_report_error(const struct tool_cmd *cmd, const struct ig_error *e, int json);
/* Loads the config at path, or the embedded one when path is NULL. On
 * failure prints each diagnostic as FILE:LINE:COL and the error, and
 * returns NULL. */
struct ig_config;
struct ig_config *tool_load_config(const struct tool_cmd *cmd, const char *path);
/* Reads a whole file (or "-" for stdin) up to max bytes. */
int tool_read_file(const char *path, size_t max, char **data, size_t *len, struct ig_error *err);

#endif
