/* SPDX-License-Identifier: MIT */
/* server.h -- the HTTP front of the gateway (libmicrohttpd underneath).
 *
 * Routes: the OpenAI-compatible image endpoints, the native job API, signed
 * file downloads, /metrics, /healthz and /readyz (docs/api.md). Every error
 * is answered in the one shape DESIGN.md names:
 *   {"error":{"code","message","job_id","attempts":[...]}} */
#ifndef IG_SERVER_SERVER_H
#define IG_SERVER_SERVER_H

#include "core/config.h"
#include "core/error.h"
#include "core/metrics.h"

struct srv;
struct route_gateway;
struct store;

struct srv_deps {
    struct route_gateway *gw;     /* NULL: health and metrics only */
    struct store *store;
    struct ig_metrics *metrics;
    const char *signing_key;      /* HMAC key for file URLs; NULL: a random one */
};

/* Starts listening on cfg->server.listen ("HOST:PORT"; port 0 picks a free
 * one). cfg and deps must outlive the server. */
struct srv *srv_start(const struct ig_config *cfg, const struct srv_deps *deps,
                      const char *listen_override, struct ig_error *err);
/* The address actually bound, e.g. "127.0.0.1:8080". */
const char *srv_address(const struct srv *s);
void srv_stop(struct srv *s);

/* Splits "HOST:PORT" or "[V6]:PORT"; host defaults to 127.0.0.1. */
int srv_parse_listen(const char *listen, char *host, size_t host_size, int *port,
                     struct ig_error *err);

#endif
