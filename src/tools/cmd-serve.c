/* SPDX-License-Identifier: MIT */
/* cmd-serve.c -- 'imagegate serve': run the gateway until SIGINT or SIGTERM. */
#include "tools/tool.h"
#include "core/config.h"
#include "tools/stack.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"listen", required_argument, NULL, 'l'},
    {NULL, 0, NULL, 0}};

static int
cmd_serve_exec(int argc, char **argv)
{
    const char *config_path = NULL, *listen = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'l': listen = optarg; break;
        default: return tool_usage_error(&tool_cmd_serve, "bad option");
        }
    }
    if (optind < argc)
        return tool_usage_error(&tool_cmd_serve, "unexpected argument '%s'", argv[optind]);

    struct ig_config *cfg = tool_load_config(&tool_cmd_serve, config_path);
    if (!cfg)
        return TOOL_USAGE;

    /* Block the signals before the server's threads start, so that they
     * inherit the mask and only this thread receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* A durable job crosses threads (HTTP, worker, vendor I/O, worker,
     * HTTP again), and under the default policy each hand-off preempted the
     * thread that made it, so every thread ran one request per wake-up.
     * SCHED_BATCH keeps a woken thread waiting until the running one
     * sleeps, which it does as soon as its queue is empty: the same work in
     * fewer, fuller wake-ups. When relays crossed threads too it took them
     * from 11.4k to 14.7k req/s on one core (c=16); now that a relay stays
     * on its HTTP thread, batch and normal measure the same for it (two
     * cores, c=16: 20.0-20.9k against 19.8-20.6k req/s). Set before any
     * thread starts, so every thread inherits it. */
    if (!cfg->server.sched_normal) {
        struct sched_param sp = {.sched_priority = 0};
        if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
            fprintf(stderr, "imagegate: cannot use SCHED_BATCH (%s); running as normal\n",
                    strerror(errno));
    }
    struct ig_error err = {0};
    struct tool_stack stack;
    if (tool_stack_start(&stack, cfg, TOOL_STACK_SERVER, listen, &err) != 0) {
        ig_config_free(cfg);
        return tool_report_error(&tool_cmd_serve, &err, 0);
    }
    printf("imagegate: listening on http://%s (config %s, store %s, %d emulators)\n",
           srv_address(stack.srv), cfg->source, store_kind(stack.store), stack.n_emus);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "imagegate: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    tool_stack_stop(&stack);
    ig_config_free(cfg);
    return TOOL_OK;
}

const struct tool_cmd tool_cmd_serve = {
    .name = "serve",
    .summary = "run the HTTP gateway",
    .usage = "usage: imagegate serve [--config FILE] [--listen HOST:PORT]\n"
             "\n"
             "Runs the gateway until SIGINT or SIGTERM. Without --config it runs the\n"
             "embedded default config ('imagegate config show' prints it). It prints\n"
             "the address it listens on; port 0 picks a free port.\n"
             "\n"
             "  -c, --config FILE       YAML config (see docs/config.md)\n"
             "  -l, --listen HOST:PORT  override server.listen\n",
    .exec = cmd_serve_exec,
};
