/* SPDX-License-Identifier: MIT */
/* stack.h -- the gateway assembled from a config: store, limits, adapters'
 * I/O loop, job engine, the in-process emulators an emulated config points
 * at, and (for serve) the HTTP server. serve, run and test share it. */
#ifndef IG_TOOLS_STACK_H
#define IG_TOOLS_STACK_H

#include "backends/backend.h"
#include "core/config.h"
#include "core/metrics.h"
#include "emulate/emulate.h"
#include "route/gateway.h"
#include "server/server.h"
#include "store/store.h"

#define TOOL_MAX_EMULATORS 16

struct tool_stack {
    const struct ig_config *cfg;
    struct store *store;
    struct ig_metrics *metrics;
    struct be_loop *loop;
    struct route_executor exec;
    struct route_gateway *gw;
    struct srv *srv;
    struct emu *emus[TOOL_MAX_EMULATORS];
    int n_emus;
};

enum {
    TOOL_STACK_SERVER = 1,             /* start the HTTP server too */
    /* An emulator address already taken is fine: another imagegate (a
     * running `serve`) has its emulator there, and this process uses it. */
    TOOL_STACK_SHARE_EMULATORS = 2
};

/* Starts everything; with TOOL_STACK_SERVER in flags the HTTP server too,
 * on listen (NULL: the config's). */
int tool_stack_start(struct tool_stack *t, const struct ig_config *cfg, int flags,
                     const char *listen, struct ig_error *err);
void tool_stack_stop(struct tool_stack *t);

#endif
