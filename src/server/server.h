/* SPDX-License-Identifier: MIT */
/* server.h -- the HTTP front of the gateway (libmicrohttpd underneath).
 *
 * The server owns the listening socket and the request handlers; it answers
 * every error in the one shape DESIGN.md names:
 *   {"error":{"code","message","job_id","attempts":[...]}} */
#ifndef IG_SERVER_SERVER_H
#define IG_SERVER_SERVER_H

#include "core/config.h"
#include "core/error.h"

struct srv;

/* Starts listening on cfg->server.listen ("HOST:PORT"; port 0 picks a free
 * one). The config must outlive the server. */
struct srv *srv_start(const struct ig_config *cfg, const char *listen_override,
                      struct ig_error *err);
/* The address actually bound, e.g. "127.0.0.1:8080". */
const char *srv_address(const struct srv *s);
void srv_stop(struct srv *s);

/* Splits "HOST:PORT" or "[V6]:PORT"; host defaults to 127.0.0.1. */
int srv_parse_listen(const char *listen, char *host, size_t host_size, int *port,
                     struct ig_error *err);

#endif
