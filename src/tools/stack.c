/* SPDX-License-Identifier: MIT */
/* stack.c -- assembling and tearing down the gateway (see stack.h).
 *
 * Order matters on the way down: the server stops taking requests, the
 * adapters' loop ends every call in flight (their jobs hear about it), the
 * job engine stops, then the store closes. */
#include "tools/stack.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/secret.h"
#include "route/exec.h"
#include "route/limit.h"
#include "route/render.h"
#include "validate/gate.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Starts the emulator an emulated backend's loopback endpoint names, once
 * per address. A backend whose adapter has no emulator in this build is
 * left alone: its rungs are skipped with that reason. */
static int
start_emulators(struct tool_stack *t, int share, struct ig_error *err)
{
    for (size_t i = 0; i < t->cfg->n_backends; i++) {
        const struct ig_backend_cfg *b = &t->cfg->backends[i];
        const char *ep = b->endpoint;
        if (!b->emulated || !ep || strncmp(ep, "http://127.0.0.1:", 17) != 0)
            continue;
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", atoi(ep + 17));
        int running = 0;
        for (int k = 0; k < t->n_emus; k++)
            running |= strcmp(emu_address(t->emus[k]), addr) == 0;
        if (running || t->n_emus >= TOOL_MAX_EMULATORS)
            continue;
        struct ig_error e2 = {0};
        struct emu_options o = {.no_auth = 1};
        struct emu *e = emu_start(b->adapter, addr, &o, &e2);
        if (!e) {
            if (strcmp(e2.code, "unknown_vendor") == 0)
                continue;
            if (share && strcmp(e2.code, "listen_failed") == 0) {
                ig_log(IG_LOG_INFO, "emulator_shared",
                       json_pack("{s:s,s:s}", "backend", b->name, "address", addr));
                continue;
            }
            *err = e2;
            ig_error_prefix(err, "emulator for backend %s: ", b->name);
            return -1;
        }
        t->emus[t->n_emus++] = e;
        ig_log(IG_LOG_INFO, "emulator_started",
               json_pack("{s:s,s:s,s:s}", "backend", b->name, "vendor", b->adapter, "address",
                         addr));
    }
    return 0;
}

int
tool_stack_start(struct tool_stack *t, const struct ig_config *cfg, int flags,
                 const char *listen, struct ig_error *err)
{
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    pthread_once(&curl_once, init_curl);
    ig_log_setup(stderr, (enum ig_log_level)cfg->server.log_level);
    char *url = NULL, blobs[4200];
    if (ig_resolve_ref(cfg->store.url ? cfg->store.url : cfg->server.data_dir, &url, err) != 0)
        return -1;
    snprintf(blobs, sizeof blobs, "%s/blobs", cfg->server.data_dir);
    t->store = store_open_url(url, cfg->store.blob_dir ? cfg->store.blob_dir : blobs, err);
    ig_free(url);
    if (!t->store)
        goto fail;
    t->metrics = ig_metrics_new();
    if (!t->metrics) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        goto fail;
    }
    if (start_emulators(t, flags & TOOL_STACK_SHARE_EMULATORS, err) != 0)
        goto fail;
    t->loop = be_loop_new(err);
    if (!t->loop || route_exec_backends(t->loop, cfg, &t->exec, err) != 0)
        goto fail;
    /* The engine calls validate only when gate.enabled is set. */
    struct route_hooks hooks = {.render = route_render_spec, .validate = vd_gate_job};
    t->gw = route_gateway_new(cfg, t->store, t->metrics, &t->exec, &hooks,
                              cfg->server.workers > 0 ? cfg->server.workers : 2, err);
    if (!t->gw)
        goto fail;
    if (cfg->store.redis) {
        struct route_limits *l = route_limits_new_redis(cfg->store.redis, "imagegate", err);
        if (!l)
            goto fail;
        route_gateway_set_limits(t->gw, l);
    }
    if (route_gateway_recover(t->gw, err) < 0)
        goto fail;
    if (flags & TOOL_STACK_SERVER) {
        char *key = NULL;
        if (cfg->server.signing_key && ig_resolve_ref(cfg->server.signing_key, &key, err) != 0)
            goto fail;
        struct srv_deps deps = {.gw = t->gw, .store = t->store, .metrics = t->metrics,
                                .signing_key = key};
        t->srv = srv_start(cfg, &deps, listen, err);
        ig_free(key);
        if (!t->srv)
            goto fail;
    }
    return 0;
fail:
    tool_stack_stop(t);
    return -1;
}

void
tool_stack_stop(struct tool_stack *t)
{
    srv_stop(t->srv);
    t->srv = NULL;
    be_loop_free(t->loop);
    t->loop = NULL;
    route_exec_stop(&t->exec);
    route_gateway_free(t->gw);
    t->gw = NULL;
    route_exec_release(&t->exec);
    for (int i = 0; i < t->n_emus; i++)
        emu_stop(t->emus[i]);
    t->n_emus = 0;
    ig_metrics_free(t->metrics);
    t->metrics = NULL;
    store_close(t->store);
    t->store = NULL;
}
