/* SPDX-License-Identifier: MIT */
/* cmd-emulate.c -- 'imagegate emulate VENDOR': run one vendor emulator until
 * SIGINT or SIGTERM (docs/emulators.md). */
#include "tools/tool.h"
#include "emulate/emulate.h"

#include <getopt.h>
#include <signal.h>
#include <string.h>

static const struct option opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"fingerprint", required_argument, NULL, 'f'},
    {"faults", required_argument, NULL, 'F'},
    {"no-auth", no_argument, NULL, 'n'},
    {"knobs", required_argument, NULL, 'k'},
    {NULL, 0, NULL, 0}};

static int
cmd_emulate_exec(int argc, char **argv)
{
    struct emu_options o = {0};
    const char *listen = "127.0.0.1:0";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:f:F:nk:", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'f': o.fingerprint = optarg; break;
        case 'F': o.faults = optarg; break;
        case 'n': o.no_auth = 1; break;
        case 'k': o.knobs = optarg; break;
        default: return tool_usage_error(&tool_cmd_emulate, "bad option");
        }
    }
    if (optind != argc - 1)
        return tool_usage_error(&tool_cmd_emulate, "name one vendor: %s", emu_vendor_list());
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct ig_error err = {0};
    struct emu *e = emu_start(argv[optind], listen, &o, &err);
    if (!e)
        return tool_report_error(&tool_cmd_emulate, &err, 0);
    printf("imagegate emulate: %s listening on http://%s\n", argv[optind], emu_address(e));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    emu_stop(e);
    return TOOL_OK;
}

const struct tool_cmd tool_cmd_emulate = {
    .name = "emulate",
    .summary = "run a local emulator of a vendor's API (openai, bfl, gemini, ...)",
    .usage = "usage: imagegate emulate VENDOR [--listen HOST:PORT] [--fingerprint FP]\n"
             "                          [--faults JSON] [--knobs JSON] [--no-auth]\n"
             "\n"
             "VENDOR: openai, bfl, gemini, stability, removebg, photoroom, replicate, fal,\n"
             "a1111, comfyui.\n"
             "\n"
             "Runs a faithful local copy of VENDOR's API until SIGINT or SIGTERM, for tests\n"
             "and CI (docs/emulators.md). Pictures are real images, deterministic in the\n"
             "prompt, seed, size and fingerprint. Faults are queued with --faults or\n"
             "POST /_emulator/faults; POST /_emulator/rotate changes the fingerprint.\n"
             "\n"
             "  -l, --listen HOST:PORT   where to listen (default 127.0.0.1:0, a free port)\n"
             "  -f, --fingerprint FP     the initial fingerprint (default fp_1)\n"
             "  -F, --faults JSON        e.g. '[{\"kind\":\"rate_limit\",\"retry_after\":2}]'\n"
             "  -k, --knobs JSON         behaviours the vendor reference is unsure of, e.g.\n"
             "                           '{\"sample_ttl_ms\":600000}' (docs/emulators.md)\n"
             "  -n, --no-auth            accept requests without the vendor's auth header\n",
    .exec = cmd_emulate_exec,
};
