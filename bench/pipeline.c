/* SPDX-License-Identifier: MIT */
/* pipeline.c -- the gateway's own cost per request: imagegate's server and
 * job engine with an executor that answers every attempt at once with a
 * fixed PNG, so wrk measures parsing, routing, the store, decoding and the
 * answer, with no vendor in the way. Usage: pipeline PORT DATA_DIR */
#include "core/alloc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "route/gateway.h"
#include "server/server.h"
#include "store/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ig_buf png;

static int
instant(void *ud, const struct route_attempt *a, route_done_fn done, void *cookie,
        struct ig_error *err)
{
    struct route_outcome o;
    memset(&o, 0, sizeof o);
    o.ok = 1;
    o.retry_after_ms = -1;
    o.cost_usd = -1;
    o.images[0].data = ig_malloc(png.len);
    if (!o.images[0].data)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    memcpy(o.images[0].data, png.data, png.len);
    o.images[0].len = png.len;
    strcpy(o.images[0].mime, "image/png");
    o.n_images = 1;
    done(cookie, &o);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: pipeline PORT DATA_DIR\n");
        return 2;
    }
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "server: {listen: 127.0.0.1:%s, threads: 1, workers: 1}\n"
             "backends:\n"
             "  - name: fake\n"
             "    adapter: openai\n"
             "    endpoint: http://127.0.0.1:1/v1\n"
             "    contract:\n"
             "      classes: [generate]\n"
             "      grammar: natural-language\n"
             "      tier: fingerprint\n"
             "      license: {id: proprietary, flags: [commercial]}\n"
             "      price: {model: free}\n"
             "ladders: [{name: g, class: generate, rungs: [{backend: fake}]}]\n"
             "gate: {enabled: false}\n",
             argv[1]);
    struct ig_error err = {0};
    struct ig_config *cfg = ig_config_load("pipeline", yaml, strlen(yaml), NULL, &err);
    struct store *st = cfg ? store_open(argv[2], &err) : NULL;
    if (!st) {
        fprintf(stderr, "pipeline: %s\n", err.message);
        return 1;
    }
    ig_log_setup(NULL, IG_LOG_ERROR);
    struct img *im = img_new(8, 8);
    img_encode(im, IMG_FMT_PNG, 0, NULL, &png, &err);
    img_free(im);
    struct ig_metrics *m = ig_metrics_new();
    struct route_executor ex = {.start = instant};
    struct route_gateway *gw = route_gateway_new(cfg, st, m, &ex, NULL, 1, &err);
    struct srv_deps deps = {.gw = gw, .store = st, .metrics = m};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct srv *s = gw ? srv_start(cfg, &deps, NULL, &err) : NULL;
    if (!s) {
        fprintf(stderr, "pipeline: %s\n", err.message);
        return 1;
    }
    printf("pipeline: listening on http://%s\n", srv_address(s));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    srv_stop(s);
    route_gateway_free(gw);
    ig_metrics_free(m);
    store_close(st);
    ig_config_free(cfg);
    ig_buf_free(&png);
    return 0;
}
